// The hub as a cluster: PostgreSQL for the store, nats-server, three hub replicas joined by it,
// haproxy in front with the configuration docs/cluster.md ships, a connector and an app — all
// real processes on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, consent, eventually, prepareConnector, revokeOnHub } from '../relay/site.mjs';
import {
  endpoint, freePort, linksHeld, requireServers, seed, sharedStore, startHaproxy, startNats, startPostgres,
  startReplica,
} from './cluster.mjs';

let pg;
let store;
let nats;
let replicas = [];
let front;
let plant;
let token;
let sourceId;
let ca;
let secret;
let seeded;

/** The replica holding the connector's link, and the others. */
async function holder() {
  const held = await Promise.all(replicas.map(async (r) => (r.proc.child.exitCode === null && r.proc.child.signalCode === null ? linksHeld(r) : 0)));
  const at = held.findIndex((n) => n > 0);
  return at < 0 ? null : { holding: replicas[at], others: replicas.filter((_, i) => i !== at && replicas[i].proc.child.signalCode === null) };
}

/** GET on one URL with the token: status, the whole body's bytes, the replica that answered. */
function get(base, path, timeoutMs = 60000, prefix = '/api/v1/') {
  return new Promise((resolve, reject) => {
    const req = https.get(`${base}${prefix}${path}`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), complete: res.complete, replica: res.headers['uplink-replica'] }));
      res.on('error', (e) => resolve({ status: res.statusCode, body: Buffer.concat(chunks), complete: false, error: e }));
      res.on('aborted', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), complete: false }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms: it hung`)));
    req.on('error', reject);
  });
}

/** Starts a long raw read on `base`; resolves `flowing` after its first megabyte, `done` at its end. */
function longStream(base) {
  let flowing;
  const started = new Promise((resolve) => { flowing = resolve; });
  const done = new Promise((resolve, reject) => {
    const path = `sources/${sourceId}/raw?tag=sim.sinusoid.1&start=*-12d&end=*&maxCount=1000000`;
    const req = https.get(`${base}/api/v1/${path}`, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let bytes = 0;
      res.on('data', (c) => { bytes += c.length; if (bytes > 1_000_000) flowing(); });
      const end = (complete) => {
        flowing();
        resolve({ status: res.statusCode, bytes, complete, at: Date.now() });
      };
      res.on('end', () => end(res.complete));
      res.on('aborted', () => end(false));
      res.on('error', () => end(false));
    });
    req.on('error', (e) => { flowing(); reject(e); });
  });
  return { started, done };
}

/** A replica's `/readyz` (status and checks by name) and its backplane and store gauges. */
async function readiness(replica) {
  const r = await get(replica.url, '', 10000, '/readyz');
  const body = JSON.parse(r.body);
  const checks = Object.fromEntries(body.checks.map((c) => [c.name, c]));
  const text = await (await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics`)).text();
  const gauge = (name) => Number(text.split('\n').find((l) => l.startsWith(`uplink_hub_${name} `))?.split(' ').pop());
  return { status: r.status, ...checks, metrics: { backplane_connected: gauge('backplane_connected'), store_ready: gauge('store_ready') } };
}

const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');

before(async () => {
  requireServers();
  const dir = mkdtempSync(join(tmpdir(), 'uplink-cluster-'));
  pg = await startPostgres();
  store = sharedStore(pg);
  const { clientSecret, connector } = seed(store);
  secret = clientSecret;
  seeded = connector;
  nats = await startNats();
  const frontPort = await freePort();
  const issuer = `https://127.0.0.1:${frontPort}`;
  // The first replica alone creates the folder's keys and certificates; the others read them.
  replicas.push(await startReplica(store, await freePort(), issuer, nats));
  replicas.push(await startReplica(store, await freePort(), issuer, nats));
  replicas.push(await startReplica(store, await freePort(), issuer, nats));
  ca = readFileSync(join(store.dataDir, 'tls', 'ca.pem'), 'utf8');
  front = await startHaproxy(dir, store, replicas, frontPort);
  front.hub = endpoint(front.url, ca, secret);
  front.hub.caPath = join(store.dataDir, 'tls', 'ca.pem');
  await eventually('haproxy serving', async () => (await front.hub.fetch(`${front.url}/readyz`)).status === 200, 15000);
  plant = prepareConnector(front.hub, connector);
  plant.start('websockets');
  await eventually('Plant A registered', () => plant.status().sources?.[0]?.hubId);
  token = await consent(front.hub, ['simulated']);
  const listed = await eventually('the simulated source online', async () => {
    const { status, body } = await api(front.hub, token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === 'simulated' && s.connector.online);
  });
  sourceId = listed.id;
}, { timeout: 180000 });

after(async () => {
  await plant?.stop();
  await front?.proc.stop();
  for (const r of replicas) await r.proc.stop('SIGINT');
  await nats?.stop();
  await pg?.remove();
});

test('queries round-robin over every replica while one holds the link; answers are byte-identical', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  assert.equal(others.length, 2);
  const served = new Set();
  for (let i = 0; i < 6; i += 1) {
    const r = await get(front.url, `sources/${sourceId}/snapshot?tags=sim.ramp.1`);
    assert.equal(r.status, 200, r.body.toString());
    served.add(r.replica);
  }
  assert.deepEqual([...served].sort(), ['hub1', 'hub2', 'hub3'], 'every replica answered some of them');

  // A fixed window, so every replica's answer must be the same bytes: the holder's is the
  // single-node answer (in-process), the others' crossed NATS.
  const end = new Date(Math.floor(Date.now() / 1000) * 1000 - 60000).toISOString();
  const start = new Date(Date.parse(end) - 2 * 86400000).toISOString();
  const path = `sources/${sourceId}/raw?tag=sim.sinusoid.1&start=${start}&end=${end}&maxCount=200000`;
  const single = await get(holding.url, path);
  assert.equal(single.status, 200, single.body.toString().slice(0, 300));
  assert.ok(single.complete);
  assert.ok(single.body.length > 5_000_000, `a multi-megabyte answer (${single.body.length} bytes)`);
  for (const other of others) {
    const crossed = await get(other.url, path);
    assert.equal(crossed.status, 200);
    assert.ok(crossed.complete, 'the crossed answer ended normally');
    assert.equal(crossed.body.length, single.body.length);
    assert.equal(sha(crossed.body), sha(single.body), `replica on ${other.port} answered the same bytes`);
  }
});

test('a long-polling link stays on one replica: haproxy hashes the connector header of every poll and send', async () => {
  await plant.stop();
  plant.start('long-polling');
  await eventually('the connector linked over long polling', () => {
    const s = plant.status();
    return s.link === 'connected' && s.transport === 'LongPolling';
  });
  const { holding } = await eventually('one replica holding the link', holder);
  // Polls and sends of one connection spread over replicas would end the link at once.
  for (let i = 0; i < 9; i += 1) {
    const r = await get(front.url, `sources/${sourceId}/raw?tag=sim.ramp.1&start=*-10m&end=*`);
    assert.equal(r.status, 200, r.body.toString());
  }
  const still = await holder();
  assert.equal(still?.holding, holding, 'the same replica holds the link throughout');
  assert.equal(plant.status().link, 'connected');
  // Back on WebSockets for the cases that follow.
  await plant.stop();
  plant.start('websockets');
  await eventually('the connector linked over WebSockets', () => {
    const s = plant.status();
    return s.link === 'connected' && s.transport === 'WebSockets';
  });
});

test('nats-server stopped: same-replica queries keep working, cross-replica ones fail fast, all recover', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  await nats.stop();
  // Every replica stays ready (the balancer keeps them all) and says the backplane is away.
  for (const r of replicas) {
    await eventually(`replica on ${r.port} reporting the backplane away`, async () => {
      const ready = await readiness(r);
      assert.equal(ready.status, 200, 'still ready: its own links serve without NATS');
      return ready.backplane.ok === false && ready.backplane.required === false && ready.store.ok
        && ready.metrics.backplane_connected === 0;
    }, 10000);
  }
  const same = await get(holding.url, `sources/${sourceId}/snapshot?tags=sim.ramp.1`);
  assert.equal(same.status, 200, 'the holding replica serves its own link without NATS');
  for (const other of others) {
    const crossed = await get(other.url, `sources/${sourceId}/snapshot?tags=sim.ramp.1`, 10000);
    assert.equal(crossed.status, 503, crossed.body.toString());
    assert.equal(JSON.parse(crossed.body).code, 'connector_offline');
  }
  await nats.start();
  for (const other of others) {
    await eventually(`replica on ${other.port} relaying again`, async () =>
      (await get(other.url, `sources/${sourceId}/snapshot?tags=sim.ramp.1`, 10000)).status === 200, 30000);
  }
  for (const r of replicas) {
    await eventually(`replica on ${r.port} reporting the backplane back`, async () => {
      const ready = await readiness(r);
      return ready.status === 200 && ready.backplane.ok && ready.metrics.backplane_connected === 1
        && ready.metrics.store_ready === 1;
    }, 10000);
  }
});

test('PostgreSQL stopped: every replica answers 503 without hanging, never from a cache, and recovers', async () => {
  const path = `sources/${sourceId}/snapshot?tags=sim.ramp.1`;
  for (const r of replicas) assert.equal((await get(r.url, path)).status, 200);
  await pg.stop();
  for (const r of replicas) {
    // The grant is read from the store on every request: with the store gone nothing is served.
    const refused = await get(r.url, path, 20000);
    assert.equal(refused.status, 503, refused.body.toString());
    assert.equal(JSON.parse(refused.body).code, 'store_unavailable');
  }
  await pg.start();
  for (const r of replicas) {
    await eventually(`replica on ${r.port} reading its store again`, async () => (await get(r.url, path, 20000)).status === 200, 30000);
  }
});

test('kill -9 of the replica holding the connector: fast 503s, then answers once it re-linked', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  // An answer crossing from the holder to another replica when the holder dies.
  const crossing = longStream(others[0].url);
  await crossing.started;
  process.kill(holding.proc.child.pid, 'SIGKILL');
  const killedAt = Date.now();
  const statuses = [];
  let relinked = null;
  while (Date.now() - killedAt < 30000) {
    const r = await get(others[statuses.length % 2].url, `sources/${sourceId}/snapshot?tags=sim.ramp.1`, 10000);
    statuses.push(r.status);
    if (r.status === 200) { relinked = Date.now() - killedAt; break; }
    assert.equal(r.status, 503, `only 503 until the connector re-linked, got ${r.status}: ${r.body}`);
    assert.equal(JSON.parse(r.body).code, 'connector_offline');
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(relinked !== null, `the connector never re-linked (statuses ${statuses.join(',')})`);
  const broken = await crossing.done;
  assert.equal(broken.status, 200);
  assert.equal(broken.complete, false, 'the answer was cut, never completed, when its holder died');
  console.log(`# the crossing answer was cut ${broken.at - killedAt} ms after kill -9 (${broken.bytes} bytes had arrived)`);
  console.log(`# re-linked and answering ${relinked} ms after kill -9 (${statuses.length - 1} fast 503s before)`);
  const after = await holder();
  assert.ok(after && after.holding !== holding, 'another replica holds the link now');
  // Back to three for the next case.
  const index = replicas.indexOf(holding);
  replicas[index] = await startReplica(store, holding.port, `https://127.0.0.1:${front.port}`, nats);
  // It joins NATS in the background: ready for cross-replica queries once it relays one.
  await eventually('the restarted replica relaying', async () =>
    (await get(replicas[index].url, `sources/${sourceId}/snapshot?tags=sim.ramp.1`, 10000)).status === 200, 30000);
});

test('a revoke on one replica cuts a stream flowing from another and is refused everywhere', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const [streaming, revoking] = others;
  void holding;
  const path = `sources/${sourceId}/raw?tag=sim.sinusoid.1&start=*-12d&end=*&maxCount=1000000`;
  let firstBytes;
  const got = new Promise((resolve) => { firstBytes = resolve; });
  const stream = new Promise((resolve, reject) => {
    const req = https.get(`${streaming.url}/api/v1/${path}`, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let bytes = 0;
      res.on('data', (c) => { bytes += c.length; if (bytes > 1_000_000) firstBytes(); });
      const done = (complete) => {
        firstBytes();
        resolve({ status: res.statusCode, bytes, complete, at: Date.now() });
      };
      res.on('end', () => done(res.complete));
      res.on('aborted', () => done(false));
      res.on('error', () => done(false));
    });
    req.on('error', (e) => { firstBytes(); reject(e); });
  });
  await got;
  // The settings page of the issuer's origin, served by that one replica.
  const direct = endpoint(front.url, ca, secret);
  const viaFront = direct.fetch;
  direct.fetch = (input, init) => viaFront(String(input).replace(front.url, revoking.url), init);
  await revokeOnHub(direct);
  const revokedAt = Date.now();
  const answer = await stream;
  assert.equal(answer.status, 200);
  assert.equal(answer.complete, false, 'the stream was cut, not completed');
  console.log(`# the stream on replica ${streaming.port} was cut ${answer.at - revokedAt} ms after the revoke answered on ${revoking.port} (${answer.bytes} bytes had arrived)`);
  for (const replica of replicas) {
    const r = await get(replica.url, `sources/${sourceId}/snapshot?tags=sim.ramp.1`);
    assert.equal(r.status, 403, `replica on ${replica.port} refuses after the revoke`);
  }
});

test('a newer link of the connector on another replica evicts the older one cluster-wide', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const target = others[0];
  // A second copy of the same connector, linked straight to another replica.
  const direct = endpoint(target.url, ca, secret);
  direct.caPath = join(store.dataDir, 'tls', 'ca.pem');
  const copy = prepareConnector(direct, seeded);
  copy.start('websockets');
  try {
    await eventually('the newer link held by the other replica, the older gone', async () =>
      (await linksHeld(target)) === 1 && (await linksHeld(holding)) === 0);
    // The older copy was told it was replaced, so it does not take the link back.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await linksHeld(holding), 0, 'the older copy stays away');
    assert.equal(await linksHeld(target), 1, 'the newer link stays');
  } finally {
    await copy.stop();
  }
});
