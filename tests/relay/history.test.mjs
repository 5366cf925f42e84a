// History end to end: an app with a token from the hub's real consent flow reads, through
// `uplink hub serve` and `uplink connector run`, (1) an MQTT tag's history recorded by the
// connector's edge historian (`record=all`) from a real mosquitto, and (2) a `postgres` source's
// snapshot and raw values from a real PostgreSQL server the test starts: the Debian server
// binaries run as the `postgres` user (PostgreSQL refuses root) on a loopback port, with a
// socket and data folder of the test's own and fsync off. Missing binaries fail loudly
// (scripts/lib/setup.sh installs the postgresql package).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PASSWORD, USER, freePort, publish, startBroker } from './mosquitto.mjs';
import { api, consent, eventually, prepareConnector, startHub, uplinkBin } from './site.mjs';

const PG_USER = 'uplink';
const PG_PASSWORD = 'relay-pg-pa55word';

/** The newest installed PostgreSQL server's bin folder (the Debian layout). */
function postgresBin() {
  const root = '/usr/lib/postgresql';
  const bins = existsSync(root)
    ? readdirSync(root).map((v) => join(root, v, 'bin')).filter((b) => existsSync(join(b, 'initdb')))
    : [];
  if (bins.length === 0) {
    throw new Error('PostgreSQL server binaries are missing: the history relay test needs a real server; '
      + 'run scripts/lib/setup.sh (it installs the postgresql package)');
  }
  return bins.sort((a, b) => Number(a.split('/').at(-2)) - Number(b.split('/').at(-2))).at(-1);
}

function asPostgres(program, args) {
  execFileSync('runuser', ['-u', 'postgres', '--', program, ...args], { stdio: 'pipe' });
}

async function startPostgres() {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'uplink-relay-pg-'));
  const passwordFile = join(dir, 'pw');
  writeFileSync(passwordFile, PG_PASSWORD);
  execFileSync('chown', ['-R', 'postgres:', dir]);
  chmodSync(passwordFile, 0o600);
  const data = join(dir, 'data');
  asPostgres(join(bin, 'initdb'), ['-D', data, '--auth=scram-sha-256', '-U', PG_USER, '--no-sync', `--pwfile=${passwordFile}`]);
  const port = await freePort();
  asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-o',
    `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off`, 'start']);
  return {
    port,
    /** Runs `sql` as the test's database user over TCP, stopping at the first error. */
    sql(sql) {
      execFileSync(join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', PG_USER, '-d', 'postgres',
        '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: 'pipe', env: { ...process.env, PGPASSWORD: PG_PASSWORD } });
    },
    stop() {
      try {
        asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

// A long table: one row per value, OPC quality (192 good, 64 uncertain), a NULL value is bad.
const ROWS = [
  ['line1.flow', '2026-01-05T08:00:00.000Z', 12.5, 192],
  ['line1.flow', '2026-01-05T08:00:10.000Z', 13.25, 192],
  ['line1.flow', '2026-01-05T08:00:20.000Z', 14.125, 64],
  ['line1.flow', '2026-01-05T08:00:30.000Z', null, 192],
  ['line1.flow', '2026-01-05T08:00:40.000Z', 15.5, 192],
  ['line1.temp', '2026-01-05T08:00:05.000Z', 61, 192],
  ['line1.temp', '2026-01-05T08:00:45.000Z', 62.75, 192],
];

// The MQTT tag's retained value (there before the connector runs, so the recorder finds the
// tag when the source opens), then the series published while it records.
const SEED = 40.5;
const SERIES = [41.25, 42, 43.5, 42.75, 44.125, 39.875];

let broker;
let pg;
let hub;
let plant;
let token;
let startedAt;

before(async () => {
  startedAt = Date.now();
  broker = await startBroker();
  publish(broker, 'plant/line1/level', JSON.stringify({ v: SEED }), true);
  pg = await startPostgres();
  pg.sql(`CREATE TABLE readings (tag text NOT NULL, time timestamptz NOT NULL, value double precision, quality integer);
    INSERT INTO readings VALUES ${ROWS.map(([tag, time, value, quality]) => `('${tag}', '${time}', ${value ?? 'NULL'}, ${quality})`).join(', ')};`);
  hub = await startHub(['Plant H']);
  plant = prepareConnector(hub, hub.connectors[0]);
  execFileSync(uplinkBin, ['sources', 'add', '--data-dir', plant.dataDir, '--name', 'broker', '--kind', 'mqtt',
    '--set', `brokerUrl=mqtt://127.0.0.1:${broker.port}`, '--set', `username=${USER}`, '--set', `password=${PASSWORD}`,
    '--set', 'subscriptions=plant/+/+ json value=$.v name={2}.{3}', '--set', 'record=all'], { stdio: 'pipe' });
  execFileSync(uplinkBin, ['sources', 'add', '--data-dir', plant.dataDir, '--name', 'historian', '--kind', 'postgres',
    '--set', 'host=127.0.0.1', '--set', `port=${pg.port}`, '--set', 'database=postgres', '--set', `user=${PG_USER}`,
    '--set', `password=${PG_PASSWORD}`, '--set', 'tls=disable', '--set', 'table=readings', '--set', 'qualityColumn=quality'],
  { stdio: 'pipe' });
  plant.start('websockets');
  await eventually('Plant H announced both sources', () => {
    const sources = plant.status().sources ?? [];
    return ['broker', 'historian'].every((name) => sources.some((s) => s.name === name && s.hubId));
  });
  token = await consent(hub, ['broker', 'historian']);
}, { timeout: 120000 });

after(async () => {
  await plant?.stop();
  await hub?.stop();
  broker?.child.kill('SIGKILL');
  pg?.stop();
});

async function online(name) {
  return eventually(`${name} online`, async () => {
    const { status, body } = await api(hub, token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === name && s.connector.online);
  });
}

const iso = (ms) => new Date(ms).toISOString();

test('an app reads an MQTT tag history recorded by the edge historian through the hub', async () => {
  const source = await online('broker');
  assert.equal(source.kind, 'mqtt');
  // Recording gives a kind without history of its own raw, plot and processed.
  assert.equal(source.capabilities.raw, true, JSON.stringify(source.capabilities));
  assert.equal(source.capabilities.plot, true, JSON.stringify(source.capabilities));
  assert.ok(source.capabilities.processed.some((f) => f.name === 'MIN'), JSON.stringify(source.capabilities));

  // The recorder lists the tag when it subscribes, and records the retained value first.
  const tag = await eventually('the retained value recorded', async () => {
    const { status, body } = await api(hub, token, `sources/${source.id}/tags?pattern=line1.*`);
    return status === 200 && body.tags.find((t) => t.name === 'line1.level' && t.properties?.recordedSince);
  }, 60000);
  assert.ok(Date.parse(tag.properties.recordedSince) >= startedAt - 1000, JSON.stringify(tag));

  const raw = () => api(hub, token, `sources/${source.id}/raw?tag=line1.level&start=${iso(startedAt - 60000)}&end=*`);
  // Each value is published once the one before it is recorded (committed within 200 ms).
  for (const value of SERIES) {
    publish(broker, 'plant/line1/level', JSON.stringify({ v: value }));
    await eventually(`${value} recorded`, async () => {
      const { status, body } = await raw();
      return status === 200 && body.values.at(-1)?.value === value;
    });
  }

  const { status, body } = await raw();
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.tag, 'line1.level');
  assert.deepEqual(body.values.map((v) => v.value), [SEED, ...SERIES]);
  body.values.forEach((v) => assert.equal(v.status, 'good', JSON.stringify(v)));
  const times = body.values.map((v) => Date.parse(v.time));
  for (let i = 1; i < times.length; i += 1) assert.ok(times[i] > times[i - 1], `times in order: ${body.values.map((v) => v.time)}`);
  assert.ok(times[0] >= startedAt - 1000 && times.at(-1) <= Date.now() + 1000, `times while the test ran: ${times}`);

  // One interval over the recording: plot keeps its extremes, processed computes them.
  const [from, to] = [iso(times[0] - 1000), iso(times.at(-1) + 1000)];
  const plot = await api(hub, token, `sources/${source.id}/plot?tag=line1.level&start=${from}&end=${to}&intervals=1`);
  assert.equal(plot.status, 200, JSON.stringify(plot.body));
  const plotted = plot.body.values.map((v) => v.value);
  assert.ok(plotted.includes(Math.min(SEED, ...SERIES)) && plotted.includes(Math.max(SEED, ...SERIES)), `plot: ${plotted}`);
  plotted.forEach((v) => assert.ok([SEED, ...SERIES].includes(v), `plot value ${v} was recorded`));

  const processed = await api(hub, token, `sources/${source.id}/processed?tag=line1.level&start=${from}&end=${to}&interval=1h&functions=MIN,MAX`);
  assert.equal(processed.status, 200, JSON.stringify(processed.body));
  assert.equal(processed.body.functions.MIN.length, 1, JSON.stringify(processed.body));
  assert.equal(processed.body.functions.MIN[0].value, 39.875);
  assert.equal(processed.body.functions.MAX[0].value, 44.125);
});

test('an app reads a PostgreSQL tag snapshot and raw values through the hub', async () => {
  const source = await online('historian');
  assert.equal(source.kind, 'postgres');
  assert.equal(source.capabilities.snapshot, true);
  assert.equal(source.capabilities.raw, true);

  const tags = await api(hub, token, `sources/${source.id}/tags?pattern=*`);
  assert.equal(tags.status, 200, JSON.stringify(tags.body));
  assert.deepEqual(tags.body.tags.map((t) => t.name).sort(), ['line1.flow', 'line1.temp']);

  // The latest row of each tag.
  const snapshot = await api(hub, token, `sources/${source.id}/snapshot?tags=line1.flow,line1.temp`);
  assert.equal(snapshot.status, 200, JSON.stringify(snapshot.body));
  assert.deepEqual(snapshot.body.values.map((v) => [v.tag, Date.parse(v.time), v.value, v.status]), [
    ['line1.flow', Date.parse('2026-01-05T08:00:40Z'), 15.5, 'good'],
    ['line1.temp', Date.parse('2026-01-05T08:00:45Z'), 62.75, 'good'],
  ]);

  // Every row of the tag in the range, in time order, quality and a NULL (bad) value included.
  const raw = await api(hub, token, `sources/${source.id}/raw?tag=line1.flow&start=2026-01-05T07:59:00Z&end=2026-01-05T08:01:00Z`);
  assert.equal(raw.status, 200, JSON.stringify(raw.body));
  assert.equal(raw.body.tag, 'line1.flow');
  const flow = ROWS.filter((r) => r[0] === 'line1.flow');
  assert.deepEqual(raw.body.values.map((v) => Date.parse(v.time)), flow.map((r) => Date.parse(r[1])));
  assert.deepEqual(raw.body.values.map((v) => v.status), ['good', 'good', 'uncertain', 'bad', 'good']);
  assert.deepEqual(raw.body.values.filter((v) => v.status !== 'bad').map((v) => v.value), [12.5, 13.25, 14.125, 15.5]);

  // A narrower range leaves out the rows outside it.
  const part = await api(hub, token, `sources/${source.id}/raw?tag=line1.flow&start=2026-01-05T08:00:05Z&end=2026-01-05T08:00:25Z`);
  assert.equal(part.status, 200, JSON.stringify(part.body));
  assert.deepEqual(part.body.values.map((v) => v.value), [13.25, 14.125]);

  // The database password reached PostgreSQL (the source answers) but not the listing or logs.
  const listed = execFileSync(uplinkBin, ['sources', 'list', '--data-dir', plant.dataDir], { encoding: 'utf8' });
  assert.ok(!listed.includes(PG_PASSWORD), listed);
  assert.ok(!plant.stderr.includes(PG_PASSWORD), plant.stderr);
});
