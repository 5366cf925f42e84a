// Live values and events across hub replicas: PostgreSQL, nats-server, three replicas and
// haproxy as real processes on loopback (the helpers of cluster.mjs), a connector with a fast
// simulated source, and app streams opened on replicas that do not hold the connector's link.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, consent, eventually, prepareConnector, revokeOnHub, uplinkBin } from '../relay/site.mjs';
import {
  endpoint, freePort, linksHeld, requireServers, seed, sharedStore, startHaproxy, startNats, startPostgres,
  startReplica,
} from './cluster.mjs';

const SOURCE = 'fast';
const TAGS = 'sim.ramp.1,sim.sinusoid.1';

let pg;
let store;
let nats;
const replicas = [];
let front;
let plant;
let token;
let sourceId;
let ca;
let secret;

const alive = (r) => r.proc.child.exitCode === null && r.proc.child.signalCode === null;

/** The replica holding the connector's link, and the others still running. */
async function holder() {
  const held = await Promise.all(replicas.map(async (r) => (alive(r) ? linksHeld(r) : 0)));
  const at = held.findIndex((n) => n > 0);
  return at < 0 ? null : { holding: replicas[at], others: replicas.filter((r, i) => i !== at && alive(r)) };
}

/** How many connector subscriptions a replica keeps on its links, from its metrics. */
async function liveSubscriptions(replica) {
  const text = await (await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('uplink_hub_live_subscriptions '));
  if (!line) throw new Error('no uplink_hub_live_subscriptions in the metrics');
  return Number(line.split(' ').pop());
}

/** The parts of one event-stream block; `null` for a comment (a heartbeat). */
function parseBlock(block) {
  const event = { name: 'message', id: undefined, data: '' };
  let seen = false;
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    seen = true;
    if (field === 'event') event.name = value;
    else if (field === 'id') event.id = value;
    else if (field === 'data') event.data += value;
  }
  if (!seen) return null;
  event.data = event.data ? JSON.parse(event.data) : null;
  return event;
}

/**
 * An event stream opened on `base` with the app's token: `opened` resolves with the status
 * (and the error body when it is not 200); `next()` gives the events one by one, `null` once
 * the stream ended, and fails when none came within its time (a hang).
 */
function openStream(base, path, { lastEventId, bearer = token } = {}) {
  const stream = { events: [], read: 0, ended: false, endedAt: null, wake: () => {} };
  const headers = { authorization: `Bearer ${bearer}`, accept: 'text/event-stream' };
  if (lastEventId) headers['last-event-id'] = lastEventId;
  stream.opened = new Promise((resolve, reject) => {
    stream.req = https.get(`${base}/api/v1/${path}`, { ca, headers }, (res) => {
      res.setEncoding('utf8');
      let buffer = '';
      if (res.statusCode !== 200) {
        res.on('data', (text) => { buffer += text; });
        res.on('end', () => {
          let body = buffer;
          try { body = JSON.parse(buffer); } catch { /* kept as text, shown by the failing assertion */ }
          resolve({ status: res.statusCode, body });
        });
        return;
      }
      resolve({ status: 200, type: res.headers['content-type'] });
      res.on('data', (text) => {
        buffer += text;
        for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
          const event = parseBlock(buffer.slice(0, at));
          buffer = buffer.slice(at + 2);
          if (event) {
            event.at = Date.now();
            stream.events.push(event);
            stream.wake();
          }
        }
      });
      const finish = () => {
        if (stream.ended) return;
        stream.ended = true;
        stream.endedAt = Date.now();
        stream.wake();
      };
      res.on('end', finish);
      res.on('aborted', finish);
      res.on('error', finish);
      res.on('close', finish);
    });
    stream.req.on('error', (e) => (stream.ended ? undefined : reject(e)));
  });
  stream.next = async (ms = 15000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      if (stream.read < stream.events.length) return stream.events[stream.read++];
      if (stream.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event on ${path} within ${ms} ms: the stream hung`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        stream.wake = () => { clearTimeout(timer); resolve(); };
      });
    }
  };
  /** The next event that is not `name` (skipping those). */
  stream.nextOtherThan = async (name, ms) => {
    for (;;) {
      const event = await stream.next(ms);
      if (event === null || event.name !== name) return event;
    }
  };
  stream.close = () => stream.req.destroy();
  return stream;
}

/** `generation-seq-arrivals-dropped`: its generation and seq. */
function idParts(id) {
  const [generation, seq] = id.split('-');
  return { generation, seq: Number(seq) };
}

const valuesPath = () => `sources/${sourceId}/subscribe?tags=${TAGS}&interval=0s`;
const eventsPath = () => `sources/${sourceId}/events/subscribe`;

before(async () => {
  requireServers();
  const dir = mkdtempSync(join(tmpdir(), 'uplink-cluster-live-'));
  pg = await startPostgres();
  store = sharedStore(pg);
  const { clientSecret, connector } = seed(store, { scopes: ['data.read', 'events.read'] });
  secret = clientSecret;
  nats = await startNats();
  const frontPort = await freePort();
  const issuer = `https://127.0.0.1:${frontPort}`;
  // The first replica alone creates the folder's keys and certificates; the others read them.
  for (let i = 0; i < 3; i += 1) replicas.push(await startReplica(store, await freePort(), issuer, nats));
  ca = readFileSync(join(store.dataDir, 'tls', 'ca.pem'), 'utf8');
  front = await startHaproxy(dir, store, replicas, frontPort);
  front.hub = endpoint(front.url, ca, secret);
  front.hub.caPath = join(store.dataDir, 'tls', 'ca.pem');
  await eventually('haproxy serving', async () => (await front.hub.fetch(`${front.url}/readyz`)).status === 200, 15000);
  plant = prepareConnector(front.hub, connector);
  // A simulated source that changes ten times a second and alarms every couple of seconds.
  execFileSync(uplinkBin, ['sources', 'add', '--data-dir', plant.dataDir, '--name', SOURCE, '--kind', 'simulated',
    '--set', 'sampleInterval=100ms', '--set', 'period=2s'], { stdio: 'pipe' });
  plant.start('websockets');
  await eventually('Plant A registered', () => plant.status().sources?.some((s) => s.name === SOURCE && s.hubId));
  token = await consent(front.hub, [SOURCE], ['data.read', 'events.read'], { eventsFrom: [SOURCE] });
  const listed = await eventually(`the ${SOURCE} source online`, async () => {
    const { status, body } = await api(front.hub, token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === SOURCE && s.connector.online);
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

test('a live-values stream on a replica without the link: the snapshot, then every change in order, with the holder\'s ids', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const crossed = openStream(others[0].url, valuesPath());
  const opened = await crossed.opened;
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  assert.equal(opened.type, 'text/event-stream');
  const snapshot = await crossed.next();
  assert.equal(snapshot.name, 'snapshot');
  assert.deepEqual(snapshot.data.values.map((v) => v.tag), TAGS.split(','));
  let last = idParts(snapshot.id);
  const times = Object.fromEntries(snapshot.data.values.map((v) => [v.tag, Date.parse(v.time)]));
  for (let n = 0; n < 8; n += 1) {
    const event = await crossed.next();
    assert.equal(event.name, 'values', JSON.stringify(event));
    const id = idParts(event.id);
    assert.equal(id.generation, last.generation, 'one subscription throughout');
    assert.ok(id.seq > last.seq, `ids rise: ${event.id} after ${last.generation}-${last.seq}`);
    last = id;
    for (const v of event.data.values) {
      assert.ok(Date.parse(v.time) > times[v.tag], `${v.tag}: ${v.time} comes after what came before`);
      times[v.tag] = Date.parse(v.time);
    }
  }
  // Streams on every replica share the one connector subscription, kept by the holder (one
  // per app, source and tags, wherever the app's streams are): the same ids everywhere.
  const direct = openStream(holding.url, valuesPath());
  const third = openStream(others[1].url, valuesPath());
  for (const s of [direct, third]) {
    assert.equal((await s.opened).status, 200);
    const first = await s.next();
    assert.equal(first.name, 'snapshot');
    assert.equal(idParts(first.id).generation, last.generation, 'one subscription, wherever the stream is');
  }
  assert.equal(await liveSubscriptions(holding), 1, 'one connector subscription for three streams on three replicas');
  for (const other of others) assert.equal(await liveSubscriptions(other), 0, 'no replica but the holder subscribes');
  for (const s of [crossed, direct, third]) s.close();
});

test('an app reading slowly through a replica without the link gets the latest value per tag and the count of the rest', async () => {
  const { others } = await eventually('one replica holding the link', holder);
  // One event every 2 s while the source changes ten times a second: what is skipped is
  // coalesced (on the holder and on the mirror), never queued, and said in `dropped`.
  const slow = openStream(others[0].url, `sources/${sourceId}/subscribe?tags=${TAGS}&interval=2s`);
  assert.equal((await slow.opened).status, 200);
  assert.equal((await slow.next()).name, 'snapshot');
  const event = await slow.next();
  assert.equal(event.name, 'values');
  assert.deepEqual(event.data.values.map((v) => v.tag), TAGS.split(','), 'each tag once, with its latest value');
  assert.ok(event.data.dropped >= 10, `the values skipped are counted (dropped ${event.data.dropped})`);
  slow.close();
});

test('Last-Event-ID resumes on another replica while the holder still has the values, else "restarted"', async () => {
  const { others } = await eventually('one replica holding the link', holder);
  const first = openStream(others[0].url, valuesPath());
  assert.equal((await first.opened).status, 200);
  assert.equal((await first.next()).name, 'snapshot');
  let lastId;
  for (let n = 0; n < 2; n += 1) lastId = (await first.next()).id;
  first.close();
  const resumed = openStream(others[1].url, valuesPath(), { lastEventId: lastId });
  assert.equal((await resumed.opened).status, 200);
  const next = await resumed.next();
  assert.equal(next.name, 'values', `resumed with the changes since, not ${next.name}`);
  assert.equal(idParts(next.id).generation, idParts(lastId).generation);
  assert.ok(idParts(next.id).seq > idParts(lastId).seq);
  resumed.close();
  const unknown = openStream(others[1].url, valuesPath(), { lastEventId: 'g_unknown-7' });
  assert.equal((await unknown.opened).status, 200);
  assert.equal((await unknown.next()).name, 'restarted');
  assert.equal((await unknown.next()).name, 'snapshot');
  unknown.close();
});

test('an events stream on a replica without the link gets the holder\'s events in order, none lost', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const direct = openStream(holding.url, eventsPath());
  const crossed = openStream(others[0].url, eventsPath());
  for (const s of [direct, crossed]) {
    const opened = await s.opened;
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
  }
  const ids = async (stream) => {
    const seen = [];
    while (seen.length < 12) {
      const event = await stream.next();
      assert.equal(event?.name, 'events', JSON.stringify(event));
      assert.ok(event.id, 'every events event has an id');
      assert.equal(event.data.dropped, undefined, 'nothing dropped');
      seen.push(...event.data.events.map((e) => e.id));
    }
    return seen;
  };
  const [mine, theirs] = await Promise.all([ids(direct), ids(crossed)]);
  // Both streams started at about the same time: from the first event both have, they agree.
  const from = theirs.findIndex((id) => mine.includes(id));
  assert.ok(from >= 0, `the streams share events (${mine.join(' ')} / ${theirs.join(' ')})`);
  const start = mine.indexOf(theirs[from]);
  const common = Math.min(mine.length - start, theirs.length - from);
  assert.ok(common >= 6, `at least six events in common, got ${common}`);
  assert.deepEqual(theirs.slice(from, from + common), mine.slice(start, start + common), 'the same events, in the same order');
  direct.close();
  crossed.close();
});

test('NATS stopped: a cross-replica stream ends with offline, a new one is refused with 503 at once, the holder\'s own go on', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const crossed = openStream(others[0].url, valuesPath());
  const direct = openStream(holding.url, valuesPath());
  for (const s of [crossed, direct]) {
    assert.equal((await s.opened).status, 200);
    assert.equal((await s.next()).name, 'snapshot');
  }
  await nats.stop();
  const stoppedAt = Date.now();
  const end = await crossed.nextOtherThan('values', 10000);
  assert.equal(end?.name, 'offline', JSON.stringify(end));
  assert.equal(end.data.code, 'connector_offline');
  assert.equal(await crossed.next(), null, 'nothing after the final event');
  console.log(`# the cross-replica stream ended with offline ${end.at - stoppedAt} ms after nats-server stopped`);
  const refused = openStream(others[1].url, valuesPath());
  const answer = await refused.opened;
  assert.equal(answer.status, 503, JSON.stringify(answer.body));
  assert.equal(answer.body.code, 'connector_offline');
  // The holder's own stream keeps flowing without NATS.
  const flowing = direct.events.length;
  await eventually('values on the holder\'s own stream', () => direct.events.length >= flowing + 3, 10000);
  assert.ok(direct.events.slice(flowing).every((e) => e.name === 'values'));
  direct.close();
  await nats.start();
  await eventually('cross-replica streams again', async () => {
    const again = openStream(others[0].url, valuesPath());
    const { status } = await again.opened;
    const ok = status === 200 && (await again.next()).name === 'snapshot';
    again.close();
    return ok;
  }, 30000);
});

test('a revoke committed on a third replica cuts streams flowing through another at once', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const [streaming, revoking] = others;
  const values = openStream(streaming.url, valuesPath());
  const events = openStream(streaming.url, eventsPath());
  assert.equal((await values.opened).status, 200);
  assert.equal((await events.opened).status, 200);
  assert.equal((await values.next()).name, 'snapshot');
  // The settings page of the issuer's origin, served by the third replica.
  const direct = endpoint(front.url, ca, secret);
  const viaFront = direct.fetch;
  direct.fetch = (input, init) => viaFront(String(input).replace(front.url, revoking.url), init);
  await revokeOnHub(direct);
  const revokedAt = Date.now();
  for (const [what, stream] of [['values', values], ['events', events]]) {
    const end = await stream.nextOtherThan(what === 'values' ? 'values' : 'events', 10000);
    assert.equal(end?.name, 'revoked', JSON.stringify(end));
    assert.equal(end.data.code, 'no_grant');
    assert.equal(await stream.next(), null, 'nothing after the final event');
    console.log(`# the ${what} stream on replica ${streaming.port} ended with revoked ${end.at - revokedAt} ms after the revoke answered on ${revoking.port} (holder ${holding.port})`);
  }
  for (const replica of [holding, streaming, revoking]) {
    const again = openStream(replica.url, valuesPath());
    assert.equal((await again.opened).status, 403, `replica on ${replica.port} refuses a new stream`);
  }
  token = await consent(front.hub, [SOURCE], ['data.read', 'events.read'], { eventsFrom: [SOURCE] });
});

test('kill -9 of the holder ends a cross-replica stream with offline, never a silent hang', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const values = openStream(others[0].url, valuesPath());
  const events = openStream(others[1].url, eventsPath());
  assert.equal((await values.opened).status, 200);
  assert.equal((await events.opened).status, 200);
  assert.equal((await values.next()).name, 'snapshot');
  process.kill(holding.proc.child.pid, 'SIGKILL');
  const killedAt = Date.now();
  for (const [what, stream] of [['values', values], ['events', events]]) {
    const end = await stream.nextOtherThan(what, 10000);
    assert.equal(end?.name, 'offline', JSON.stringify(end));
    assert.equal(end.data.code, 'connector_offline');
    assert.equal(await stream.next(), null, 'nothing after the final event');
    console.log(`# the ${what} stream ended with offline ${end.at - killedAt} ms after kill -9 of the holder`);
  }
  // The connector re-links to another replica; streams then open again anywhere.
  await eventually('a stream again once the connector re-linked', async () => {
    const again = openStream(others[0].url, valuesPath());
    const { status } = await again.opened;
    const ok = status === 200 && (await again.next()).name === 'snapshot';
    again.close();
    return ok;
  }, 30000);
});
