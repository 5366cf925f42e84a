// Live-value streams across replicas, with their caps: PostgreSQL, nats-server, three replicas
// (at most two live-value streams per sign-in) and haproxy as real processes on loopback (the
// helpers of cluster.mjs), the connector Plant A linked to one of them.
//
// - The official @microsoft/signalr client on the app hub of a replica that does not hold the
//   connector's link: `CreateSnapshotTagValueChannel` values arrive (the holder's ids), and a
//   revoke answered by the third replica ends the stream within a second.
// - An ID-token signing key rotated by the admin command is published by every replica's JWKS,
//   and the key it replaced stays published beside it.
// - The caps hold for the cluster: two streams on two replicas fill the sign-in's cap, a third
//   on the holder is refused (429), and the places of a replica killed with SIGKILL are free
//   again once its leases lapse (docs/cluster.md), without any replica restarting.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { admin } from '../hub/hub-process.mjs';
import { consent, eventually, revokeOnHub } from '../relay/site.mjs';
import { endpoint, linksHeld, startCluster } from './cluster.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CAP = 2;
const TAGS = 'sim.ramp.1,sim.sinusoid.1';

let c;

const alive = (r) => r.proc.child.exitCode === null && r.proc.child.signalCode === null;

/** The replica holding the connector's link, and the others still running. */
async function holder() {
  const held = await Promise.all(c.replicas.map(async (r) => (alive(r) ? linksHeld(r) : 0)));
  const at = held.findIndex((n) => n > 0);
  return at < 0 ? null : { holding: c.replicas[at], others: c.replicas.filter((r, i) => i !== at && alive(r)) };
}

before(async () => {
  c = await startCluster({ replicaArgs: ['--max-live-streams-per-sign-in', String(CAP)] });
}, { timeout: 180000 });

after(async () => {
  await c?.stop();
});

/** The app's settings page on `replica` (the issuer's origin, served there): its revoke. */
function onReplica(replica) {
  const direct = endpoint(c.front.url, c.ca, c.secret);
  const viaFront = direct.fetch;
  direct.fetch = (input, init) => viaFront(String(input).replace(c.front.url, replica.url), init);
  return direct;
}

/** Runs the SignalR client against `replica`'s app hub; yields its JSON lines. */
function appHubClient(replica, token) {
  const child = spawn(process.execPath, [join(here, 'app_hub_client.mjs'), replica.url, 'WebSockets', c.sourceId, TAGS], {
    cwd: join(here, '..'),
    env: { ...process.env, NODE_EXTRA_CA_CERTS: c.front.hub.caPath, UPLINK_TOKEN: token },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    async next(what) {
      const timer = setTimeout(() => child.kill(), 60000);
      try {
        for (;;) {
          const { value, done } = await lines.next();
          if (done) throw new Error(`the client ended before ${what}: ${stderr}`);
          if (value.startsWith('{')) return JSON.parse(value);
        }
      } finally {
        clearTimeout(timer);
      }
    },
    async exit() {
      assert.equal(await exited, 0, `the client failed: ${stderr}`);
    },
  };
}

/**
 * A live-values event stream opened on `replica` with `token`: resolves with its status (and
 * the error body when it is not 200, or the first event's name when it is); `close()` ends it.
 */
function openValues(replica, token) {
  return new Promise((resolve, reject) => {
    const req = https.get(`${replica.url}/api/v1/sources/${c.sourceId}/subscribe?tags=${TAGS}&interval=0s`,
      { ca: c.ca, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
        res.setEncoding('utf8');
        let buffer = '';
        res.on('error', () => {});
        res.on('data', (text) => {
          buffer += text;
          if (res.statusCode === 200) {
            const event = buffer.match(/^event: (\S+)$/m);
            if (event) resolve({ status: 200, first: event[1], close: () => req.destroy() });
          }
        });
        res.on('end', () => {
          if (res.statusCode === 200) return;
          let body = buffer;
          try { body = JSON.parse(buffer); } catch { /* kept as text for the assertion */ }
          resolve({ status: res.statusCode, body, close: () => req.destroy() });
        });
      });
    req.on('error', reject);
  });
}

test('an app-hub stream on a replica without the link gets the values, and a revoke on a third replica ends it', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const [streaming, revoking] = others;
  const token = await consent(c.front.hub, ['simulated']);
  const run = appHubClient(streaming, token);
  try {
    const flowing = await run.next('the stream');
    assert.equal(flowing.phase, 'streaming');
    assert.equal(flowing.error, null, 'the stream flows');
    const [first, ...rest] = flowing.items;
    assert.equal(first.event, 'snapshot', JSON.stringify(first));
    assert.deepEqual(first.values.map((v) => v.tag), TAGS.split(','));
    // Opaque to apps; the hub writes `generation-seq-arrivals-dropped` (crates/hub/src/live.rs).
    const seq = (id) => Number(id.split('-')[1]);
    const generation = (id) => id.split('-')[0];
    let last = first.id;
    for (const item of rest) {
      assert.equal(item.event, 'values', JSON.stringify(item));
      assert.equal(typeof item.values[0].value, 'number');
      assert.equal(generation(item.id), generation(first.id), 'one subscription, the holder\'s');
      assert.ok(seq(item.id) > seq(last), `ids rise: ${item.id} after ${last}`);
      last = item.id;
    }
    await revokeOnHub(onReplica(revoking));
    const revokedAt = Date.now();
    run.child.stdin.write('revoked\n');
    const ended = await run.next('the end');
    // Two ends race here, both caused by the revoke: the streaming replica's own cut and the
    // holder's, whose connector ended the shared subscription once its grant list lost the app.
    // Both say `revoked`.
    assert.match(ended.error, /^revoked: /);
    const took = ended.endedAt - revokedAt;
    console.log(`# the app-hub stream on replica ${streaming.port} ended ${took} ms after the revoke answered on ${revoking.port} (holder ${holding.port}): ${ended.error}`);
    // At once through NATS (the goal is 200 ms); a second leaves room for a loaded
    // machine while still telling "cut by the revoke's news" from any slower path.
    assert.ok(took <= 1000, `ended ${took} ms after the revoke`);
    await run.exit();
  } finally {
    // A failed assertion must not leave the client holding the test file open.
    if (run.child.exitCode === null) run.child.kill();
  }
});

test('an ID-token key rotated by the admin command is published by every replica, beside the one it replaced', async () => {
  const kids = async (replica) => {
    const r = await c.front.hub.fetch(`${replica.url}/oauth/jwks`);
    assert.equal(r.status, 200);
    return (await r.json()).keys.map((k) => k.kid);
  };
  const before = await kids(c.replicas[0]);
  for (const replica of c.replicas) assert.deepEqual(await kids(replica), before, 'one key set on every replica');
  const out = admin(c.store.adminDir, ['key', 'rotate-id-token']);
  const rotated = out.match(/current ID-token key: (\S+)/)?.[1];
  assert.ok(rotated, out);
  for (const replica of c.replicas) {
    assert.deepEqual(await kids(replica), [rotated, ...before], `replica ${replica.port} publishes the new key first`);
  }
});

test('the cap on streams per sign-in holds across replicas, and a killed replica\'s streams free their places', async () => {
  const { holding, others } = await eventually('one replica holding the link', holder);
  const [b, doomed] = others;
  const token = await consent(c.front.hub, ['simulated']);
  const onB = await openValues(b, token);
  const onDoomed = await openValues(doomed, token);
  for (const s of [onB, onDoomed]) {
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(s.first, 'snapshot');
  }
  // The sign-in's two places are taken on two replicas: a third stream is refused on any.
  for (const replica of [holding, b]) {
    const refused = await openValues(replica, token);
    assert.equal(refused.status, 429, `replica ${replica.port}: ${JSON.stringify(refused.body)}`);
    assert.equal(refused.body.code, 'too_many_subscriptions');
    assert.match(refused.body.message, /already has 2 live-value streams open/);
  }
  // A replica killed without a word: its stream's place is free again once its lease lapsed.
  process.kill(doomed.proc.child.pid, 'SIGKILL');
  const killedAt = Date.now();
  const again = await eventually('a place again after the kill', async () => {
    const s = await openValues(holding, token);
    if (s.status === 200) return s;
    if (s.status !== 429) throw new Error(`refused otherwise than by the cap: ${s.status} ${JSON.stringify(s.body)}`);
    s.close();
    return null;
  }, 30000);
  console.log(`# a killed replica's stream freed its place ${Date.now() - killedAt} ms after SIGKILL`);
  assert.equal(again.first, 'snapshot');
  // Full again (one on b, one on the holder); a stream that ends frees its place at once.
  assert.equal((await openValues(b, token)).status, 429);
  onB.close();
  const replaced = await eventually('a place again after a stream closed', async () => {
    const s = await openValues(b, token);
    if (s.status === 200) return s;
    s.close();
    return null;
  }, 10000);
  assert.equal(replaced.first, 'snapshot');
  again.close();
  replaced.close();
});
