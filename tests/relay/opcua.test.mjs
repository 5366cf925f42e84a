// An OPC UA tag end to end: a real OPC UA server (Python asyncua 2.1.0 serving
// tests/fixtures/opcua_server.py on loopback), `uplink connector run` with an `opcua` source added
// by `uplink sources add`, `uplink hub serve`, and an app whose token comes from the hub's real
// consent flow reading the tag's current value and its history, over real TLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../hub/hub-process.mjs';
import { api, consent, eventually, prepareConnector, startHub, uplinkBin } from './site.mjs';

/** The python with asyncua: UPLINK_ASYNCUA_PYTHON, else the venv scripts/lib/setup.sh makes. */
function asyncuaPython() {
  const python = process.env.UPLINK_ASYNCUA_PYTHON
    ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'uplink', 'asyncua-2.1.0', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`${python} not found: the OPC UA test needs asyncua 2.1.0 in a venv; run `
      + '`source scripts/lib/setup.sh && ensure_asyncua` (./scripts/test does it) or set UPLINK_ASYNCUA_PYTHON');
  }
  return python;
}

/** Starts the fixture server on a free port; resolves once it listens. */
function startServer() {
  const child = spawn(asyncuaPython(), [join(repoRoot, 'tests', 'fixtures', 'opcua_server.py')],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const port = line.match(/^PORT (\d+)$/)?.[1];
      if (port) resolve({ child, port: Number(port) });
    });
    child.once('exit', (code) => reject(new Error(`the OPC UA fixture exited (${code}) before listening`)));
  });
}

let server;
let hub;
let plant;
let token;

before(async () => {
  server = await startServer();
  hub = await startHub(['Plant O']);
  plant = prepareConnector(hub, hub.connectors[0]);
  // Added with its check: the connector's certificate is made and the server answers.
  const added = execFileSync(uplinkBin, ['sources', 'add', '--data-dir', plant.dataDir, '--name', 'boiler',
    '--kind', 'opcua', '--set', `endpointUrl=opc.tcp://127.0.0.1:${server.port}/uplink/`,
    '--set', 'browseRoot=ns=2;s=Plant', '--set', 'publishingInterval=200ms'], { stdio: 'pipe' });
  assert.match(added.toString(), /added data source 'boiler' \(opcua\)/);
  plant.start('websockets');
  await eventually('Plant O announced boiler', () => plant.status().sources?.some((s) => s.name === 'boiler' && s.hubId));
  token = await consent(hub, ['boiler']);
}, { timeout: 120000 });

after(async () => {
  await plant?.stop();
  await hub?.stop();
  server?.child.kill('SIGKILL');
});

test('an app reads OPC UA tags through the hub with its token', async () => {
  const source = await eventually('boiler online', async () => {
    const { status, body } = await api(hub, token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === 'boiler' && s.connector.online);
  });
  assert.equal(source.kind, 'opcua');
  assert.equal(source.capabilities.snapshot, true);
  assert.equal(source.capabilities.raw, true);

  // Browsed on the server: names by browse path under the root, units and descriptions kept.
  const tags = await api(hub, token, `sources/${source.id}/tags?pattern=*`);
  assert.equal(tags.status, 200, JSON.stringify(tags.body));
  const names = tags.body.tags.map((t) => t.name).sort();
  assert.deepEqual(names, ['Counter', 'Label', 'Line1/Speed', 'Pressure', 'Running', 'Setpoint', 'Temperature']);
  const temperature = tags.body.tags.find((t) => t.name === 'Temperature');
  assert.equal(temperature.units, '°C');
  assert.equal(temperature.description, 'Boiler temperature');

  const snapshot = await api(hub, token, `sources/${source.id}/snapshot?tags=Temperature,Line1/Speed,Label`);
  assert.equal(snapshot.status, 200, JSON.stringify(snapshot.body));
  const values = Object.fromEntries(snapshot.body.values.map((v) => [v.tag, v]));
  // The fixture moves the temperature around 20 ± 5; the speed and the label never change.
  assert.ok(values.Temperature.value >= 15 && values.Temperature.value <= 25, JSON.stringify(values.Temperature));
  assert.equal(values['Line1/Speed'].value, 1.25);
  assert.equal(values.Label.text, 'Line one');
  for (const v of snapshot.body.values) assert.equal(v.status, 'good', JSON.stringify(v));

  // History through HistoryRead: the fixture stored value i at one a second before it started,
  // so a minute of it, five minutes back, climbs by one each second.
  const raw = await api(hub, token, `sources/${source.id}/raw?tag=Temperature&start=*-5m&end=*-4m`);
  assert.equal(raw.status, 200, JSON.stringify(raw.body));
  assert.equal(raw.body.tag, 'Temperature');
  const history = raw.body.values;
  assert.ok(history.length >= 59 && history.length <= 61, `${history.length} values in a minute`);
  for (let i = 1; i < history.length; i += 1) {
    assert.equal(history[i].value - history[i - 1].value, 1, JSON.stringify(history.slice(i - 1, i + 1)));
    assert.equal(Date.parse(history[i].time) - Date.parse(history[i - 1].time), 1000);
  }

  // A tag the server does not have: a stable code, not a hang.
  const unknown = await api(hub, token, `sources/${source.id}/snapshot?tags=No/Such/Tag`);
  assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
  assert.equal(unknown.body.code, 'unknown_tag');
});
