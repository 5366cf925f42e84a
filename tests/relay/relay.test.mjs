// The relay end to end with real processes over real TLS on loopback: `uplink hub serve`,
// `uplink connector run` (and a connector built on the official @microsoft/signalr client from
// docs/protocol.md alone), and an app whose token comes from the hub's real consent flow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  APP, api, consent, eventually, memoryOf, prepareConnector, revokeOnHub, serveHub, startHub, streamLines,
} from './site.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TRANSPORTS = { websockets: 'WebSockets', 'server-sent-events': 'ServerSentEvents', 'long-polling': 'LongPolling' };

let hub;
let plant;
let token;
let sourceId;

/** The data source the token reads, once the connector announced it and is online. */
async function onlineSource(name) {
  return eventually(`data source ${name} online`, async () => {
    const { status, body } = await api(hub, token, 'sources');
    if (status !== 200) return null;
    return body.sources.find((s) => s.name === name && s.connector.online);
  });
}

before(async () => {
  hub = await startHub(['Plant A', 'npm site']);
  plant = prepareConnector(hub, hub.connectors[0]);
  plant.start('websockets');
  // Consent needs the source on the hub, which the connector announces when it links.
  await eventually('Plant A registered', () => plant.status().sources?.[0]?.hubId);
  token = await consent(hub, ['simulated']);
  sourceId = (await onlineSource('simulated')).id;
}, { timeout: 120000 });

after(async () => {
  await plant?.stop();
  await hub?.stop();
});

for (const [flag, transport] of Object.entries(TRANSPORTS)) {
  test(`an app reads snapshot, raw, plot and processed through the relay over ${transport}`, async () => {
    await plant.stop();
    plant.start(flag);
    await eventually(`the connector linked over ${transport}`, () => {
      const s = plant.status();
      return s.link === 'connected' && s.transport === transport;
    });
    await onlineSource('simulated');

    const snapshot = await api(hub, token, `sources/${sourceId}/snapshot?tags=sim.sinusoid.1,sim.ramp.1`);
    assert.equal(snapshot.status, 200, JSON.stringify(snapshot.body));
    assert.match(snapshot.type, /application\/json/);
    assert.deepEqual(snapshot.body.values.map((v) => v.tag), ['sim.sinusoid.1', 'sim.ramp.1']);
    assert.equal(typeof snapshot.body.values[0].value, 'number');

    const raw = await api(hub, token, `sources/${sourceId}/raw?tag=sim.ramp.1&start=*-10m&end=*`);
    assert.equal(raw.status, 200, JSON.stringify(raw.body));
    assert.equal(raw.body.tag, 'sim.ramp.1');
    assert.ok(raw.body.values.length >= 599 && raw.body.values.length <= 601, `${raw.body.values.length} values in 10 minutes`);
    const times = raw.body.values.map((v) => Date.parse(v.time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'raw values come in time order');

    const plot = await api(hub, token, `sources/${sourceId}/plot?tag=sim.sinusoid.1&start=*-1h&end=*&intervals=10`);
    assert.equal(plot.status, 200, JSON.stringify(plot.body));
    assert.ok(plot.body.values.length > 0 && plot.body.values.length <= 40, `plot gave ${plot.body.values.length} values`);

    const processed = await api(hub, token, `sources/${sourceId}/processed?tag=sim.sinusoid.1&start=*-1h&end=*&interval=10m&functions=AVG,MAX`);
    assert.equal(processed.status, 200, JSON.stringify(processed.body));
    assert.equal(processed.body.functions.AVG.length, 6);
    processed.body.functions.MAX.forEach((max, i) => assert.ok(max.value >= processed.body.functions.AVG[i].value));

    // The running connector rewrites its status file at most once a second.
    await eventually('the connector recording the query in its activity trail', () =>
      (plant.status().recentActivity ?? []).some((a) => a.appId === APP && a.operation === 'processed'), 5000);
  });
}

test('1 M raw values stream through with bounded memory on hub and connector', async () => {
  const before = { hub: memoryOf(hub.child.pid), connector: memoryOf(plant.child.pid) };
  let peak = { hub: 0, connector: 0 };
  let sampled = 0;
  const answer = await streamLines(hub, token, `sources/${sourceId}/raw?tag=sim.sinusoid.1&start=*-12d&end=*&maxCount=1000000`, () => {
    if (sampled++ % 50 !== 0) return;
    peak = { hub: Math.max(peak.hub, memoryOf(hub.child.pid).now), connector: Math.max(peak.connector, memoryOf(plant.child.pid).now) };
  });
  assert.equal(answer.status, 200);
  assert.match(answer.type, /application\/x-ndjson/);
  assert.ok(answer.complete, 'the body ended normally');
  assert.equal(answer.lines, 1_000_000, 'one line per value');
  assert.ok(answer.bytes > 50_000_000, `${answer.bytes} bytes`);
  // The body is ~70 MB: a side that held it whole would grow by at least that much.
  for (const side of ['hub', 'connector']) {
    const growth = (Math.max(peak[side], memoryOf(side === 'hub' ? hub.child.pid : plant.child.pid).peak) - before[side].now) / 1024;
    assert.ok(growth < 40, `${side} grew by ${growth.toFixed(1)} MiB while streaming 70 MB`);
  }
});

test("the connector's local veto refuses the app on site, whatever the hub says", async () => {
  plant.policy('block-app', APP);
  const refused = await api(hub, token, `sources/${sourceId}/snapshot?tags=sim.ramp.1`);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.code, 'vetoed');
  plant.policy('unblock-app', APP);
  assert.equal((await api(hub, token, `sources/${sourceId}/snapshot?tags=sim.ramp.1`)).status, 200);
});

test('bad queries get a 400 naming the field, before anything is relayed', async () => {
  const reversed = await api(hub, token, `sources/${sourceId}/raw?tag=sim.ramp.1&start=*&end=*-1h`);
  assert.equal(reversed.status, 400);
  assert.match(reversed.body.message, /start|end/);
  const intervals = await api(hub, token, `sources/${sourceId}/plot?tag=sim.ramp.1&start=*-1h&end=*&intervals=0`);
  assert.equal(intervals.status, 400);
  assert.match(intervals.body.message, /intervals/);
  const unknownTag = await api(hub, token, `sources/${sourceId}/snapshot?tags=no.such.tag`);
  assert.equal(unknownTag.status, 404);
  assert.equal(unknownTag.body.code, 'unknown_tag');
});

test('connector killed → 503 with a clear message; restarted → served again, hub untouched', async () => {
  // On WebSockets the hub sees the kill at once (a long-polling link is only missed when its
  // next poll does not come).
  await plant.stop();
  plant.start();
  await eventually('the connector linked', () => plant.status().transport === 'WebSockets');
  await plant.stop('SIGKILL');
  let last;
  const offline = await eventually('the hub noticing the connector is gone', async () => {
    last = await api(hub, token, `sources/${sourceId}/snapshot?tags=sim.ramp.1`);
    return last.status === 503 ? last : null;
  }).catch((e) => { throw new Error(`${e.message}; last answer ${last?.status} ${JSON.stringify(last?.body)}`); });
  assert.equal(offline.body.code, 'connector_offline');
  assert.match(offline.body.message, /Plant A|offline/);
  plant.start();
  await onlineSource('simulated');
  assert.equal((await api(hub, token, `sources/${sourceId}/snapshot?tags=sim.ramp.1`)).status, 200);
});

test('hub restarted → the connector reconnects by itself', async () => {
  // The status file trails the link by up to a second.
  const linkedBefore = await eventually('the connector showing its link', () => {
    const s = plant.status();
    return s.link === 'connected' && Date.parse(s.connectedSince);
  });
  await hub.stop();
  await serveHub(hub);
  await onlineSource('simulated');
  assert.equal((await api(hub, token, `sources/${sourceId}/snapshot?tags=sim.ramp.1`)).status, 200);
  let seen;
  await eventually('the connector showing its new link', () => {
    seen = plant.status();
    return seen.link === 'connected' && Date.parse(seen.connectedSince) > linkedBefore;
  }, 10000).catch((e) => {
    const { link, connectedSince, reconnects, updatedAt, lastError, pid } = seen ?? {};
    throw new Error(`${e.message}; before ${new Date(linkedBefore).toISOString()}, status ${JSON.stringify({ link, connectedSince, reconnects, updatedAt, lastError, pid })}`);
  });
});

test('a connector built on the official SignalR client from docs/protocol.md serves queries', async () => {
  const npmSite = hub.connectors[1];
  const dir = mkdtempSync(join(tmpdir(), 'uplink-npm-connector-'));
  const credentialFile = join(dir, 'credential.txt');
  writeFileSync(credentialFile, npmSite.credential, { mode: 0o600 });
  // JSON over each transport, and MessagePack (with chunks as bytes) where the transport carries binary.
  const cases = [...Object.values(TRANSPORTS).map((t) => [t, 'json']), ['WebSockets', 'messagepack'], ['LongPolling', 'messagepack']];
  for (const [transport, protocol] of cases) {
    const child = spawn(process.execPath, [join(here, 'npm_connector.mjs'), hub.url, npmSite.id, credentialFile, transport, protocol], {
      cwd: join(here, '..'),
      env: { ...process.env, NODE_EXTRA_CA_CERTS: hub.caPath },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const events = [];
    createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
    try {
      const registered = await eventually(`the npm connector registered over ${transport} in ${protocol}`, () => events.find((e) => e.event === 'registered'));
      assert.equal(registered.registered.connectorId, npmSite.id);
      assert.match(registered.registered.sources[0].id, /^src_/);
      const npmToken = await consent(hub, ['simulated', 'npm-source']);
      const npmSource = await eventually('npm-source online', async () => {
        const { body } = await api(hub, npmToken, 'sources');
        return body.sources.find((s) => s.name === 'npm-source' && s.connector.online);
      });
      const snapshot = await api(hub, npmToken, `sources/${npmSource.id}/snapshot?tags=Line.Speed`);
      assert.equal(snapshot.status, 200, JSON.stringify(snapshot.body));
      assert.equal(snapshot.body.values[0].tag, 'Line.Speed');
      const raw = await api(hub, npmToken, `sources/${npmSource.id}/raw?tag=Line.Speed&start=*-2h&end=*`);
      assert.equal(raw.status, 200);
      assert.equal(raw.body.values.length, 3600, 'a 200 KB answer in acknowledged chunks arrives whole');
      // §3: relative times arrive resolved, with a fraction of a second (up to nanoseconds).
      const relayedRaw = events.find((e) => e.event === 'query' && e.type === 'raw');
      assert.match(relayedRaw.query.start, /T\d\d:\d\d:\d\d\.\d{3,9}Z$/, JSON.stringify(relayedRaw.query));
      assert.equal(relayedRaw.query.maxCount, undefined, 'maxCount absent when the app set none');
      // §4: a Tag as the guide describes it reaches the app as written.
      const tags = await api(hub, npmToken, `sources/${npmSource.id}/tags?pattern=line.*`);
      assert.equal(tags.status, 200, JSON.stringify(tags.body));
      assert.deepEqual(tags.body, {
        tags: [{ id: 'line-speed-1', name: 'Line.Speed', description: 'Speed of the press line', units: 'm/min', dataType: 'float', properties: {} }],
        nextOffset: null,
      });
      const unknown = await api(hub, npmToken, `sources/${npmSource.id}/snapshot?tags=Nope`);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.code, 'unknown_tag');
      assert.ok(events.some((e) => e.event === 'query' && e.appId === APP), 'every relayed query names the app');
      assert.ok(events.some((e) => e.event === 'grants' && e.grants.some((g) => g.source === 'npm-source' && g.appId === APP)),
        'the hub pushed the new grant to the connector');
    } finally {
      child.stdin.end();
      await new Promise((r) => child.once('exit', r));
    }
  }
});

test('a newer link of the same connector replaces the older, which stops instead of fighting back (docs/protocol.md §5)', async () => {
  const npmSite = hub.connectors[1];
  const dir = mkdtempSync(join(tmpdir(), 'uplink-npm-replace-'));
  const credentialFile = join(dir, 'credential.txt');
  writeFileSync(credentialFile, npmSite.credential, { mode: 0o600 });
  const launch = (transport) => {
    const child = spawn(process.execPath, [join(here, 'npm_connector.mjs'), hub.url, npmSite.id, credentialFile, transport], {
      cwd: join(here, '..'),
      env: { ...process.env, NODE_EXTRA_CA_CERTS: hub.caPath },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const events = [];
    createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    return { child, events, exited };
  };
  const older = launch('WebSockets');
  let newer = null;
  try {
    await eventually('the older link registered', () => older.events.find((e) => e.event === 'registered'));
    newer = launch('LongPolling');
    await eventually('the newer link registered', () => newer.events.find((e) => e.event === 'registered'));
    const stopped = await eventually('the older connector told it was replaced', () => older.events.find((e) => e.event === 'stopped'));
    assert.match(stopped.reason, /replaced by a newer link of the same connector$/);
    assert.equal(await older.exited, 0, 'the replaced connector ends by itself');
    assert.equal(older.events.filter((e) => e.event === 'registered').length, 1, 'and never registered again');
    // The newer link keeps the connector and serves it.
    const npmToken = await consent(hub, ['simulated', 'npm-source']);
    const npmSource = await eventually('npm-source online', async () => {
      const { body } = await api(hub, npmToken, 'sources');
      return body.sources.find((s) => s.name === 'npm-source' && s.connector.online);
    });
    const snapshot = await api(hub, npmToken, `sources/${npmSource.id}/snapshot?tags=Line.Speed`);
    assert.equal(snapshot.status, 200, JSON.stringify(snapshot.body));
    assert.ok(newer.events.some((e) => e.event === 'query' && e.type === 'snapshot'), 'the newer link answered');
    assert.ok(!newer.events.some((e) => e.event === 'stopped' || e.event === 'lost'), JSON.stringify(newer.events));
  } finally {
    for (const side of [older, newer].filter(Boolean)) {
      if (side.child.exitCode === null && side.child.signalCode === null) {
        side.child.stdin.end();
        await side.exited;
      }
    }
  }
});

test('revoke on the hub → the next request is refused and the connector is told', async () => {
  await eventually('the connector listing the app as consented', () =>
    plant.status().sources.some((s) => s.apps.some((a) => a.appId === APP)));
  await revokeOnHub(hub);
  const refused = await api(hub, token, `sources/${sourceId}/snapshot?tags=sim.ramp.1`);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.code, 'no_grant');
  await eventually('the connector dropping the app from its consented apps', () =>
    plant.status().sources.every((s) => s.apps.every((a) => a.appId !== APP)), 10000);
});
