// Operating the cluster: a rolling restart under load, an access-token key rotated while
// every replica runs, and how fast a revoke reaches a stream through the store's change feed
// alone. The same real processes as cluster.test.mjs (PostgreSQL, nats-server, three replicas,
// haproxy with docs/cluster.md's configuration, a connector and an app).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import https from 'node:https';
import { admin } from '../hub/hub-process.mjs';
import { consent, eventually, signIn } from '../relay/site.mjs';
import { endpoint, getApi, linksHeld, startCluster, startReplica } from './cluster.mjs';

let cluster;

before(async () => {
  cluster = await startCluster();
}, { timeout: 180000 });

after(async () => {
  await cluster?.stop();
});

const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** The replica holding the connector's link, or null while it is re-linking. */
async function holding() {
  for (const r of cluster.replicas) {
    if (r.proc.child.exitCode === null && r.proc.child.signalCode === null && (await linksHeld(r).catch(() => 0)) > 0) return r;
  }
  return null;
}

test('rolling restart of every replica under load: no wrong answer, only cut bodies or 503s, all serve after', async () => {
  const { ca, token, sourceId, front } = cluster;
  const get = (base, path, timeoutMs) => getApi(base, path, { ca, token, timeoutMs });
  // A fixed window: every whole answer to it is the same bytes.
  const end = new Date(Math.floor(Date.now() / 1000) * 1000 - 60000).toISOString();
  const start = new Date(Date.parse(end) - 86400000).toISOString();
  const rawPath = `sources/${sourceId}/raw?tag=sim.sinusoid.1&start=${start}&end=${end}&maxCount=100000`;
  const snapshotPath = `sources/${sourceId}/snapshot?tags=sim.ramp.1,sim.sinusoid.1`;
  const reference = await get(front.url, rawPath);
  assert.equal(reference.status, 200, reference.body.toString().slice(0, 300));
  assert.ok(reference.complete);
  assert.ok(reference.body.length > 2_000_000, `a multi-megabyte answer (${reference.body.length} bytes)`);
  const referenceSha = sha(reference.body);

  const counts = { raw: 0, snapshot: 0, cut: 0, cutBeforeStatus: 0, unavailable: 0 };
  const wrong = [];
  /** Sorts one answer: right, cut, 503, or wrong (kept to fail the test with). */
  function classify(kind, r) {
    if (r.status === 503) { counts.unavailable += 1; return; }
    if (r.status === 200 && !r.complete) { counts.cut += 1; return; }
    if (r.status !== 200) { wrong.push(`${kind}: status ${r.status}: ${r.body.toString().slice(0, 200)}`); return; }
    if (kind === 'raw') {
      if (sha(r.body) === referenceSha) counts.raw += 1;
      else wrong.push(`raw: ${r.body.length} bytes, not the reference's ${reference.body.length}`);
      return;
    }
    try {
      const tags = JSON.parse(r.body).values.map((v) => v.tag).sort();
      if (JSON.stringify(tags) === JSON.stringify(['sim.ramp.1', 'sim.sinusoid.1'])) counts.snapshot += 1;
      else wrong.push(`snapshot with tags ${tags}`);
    } catch (e) {
      wrong.push(`snapshot not JSON: ${e.message}`);
    }
  }
  let loading = true;
  async function app(worker) {
    for (let i = worker; loading; i += 1) {
      const kind = i % 3 === 0 ? 'raw' : 'snapshot';
      try {
        classify(kind, await get(front.url, kind === 'raw' ? rawPath : snapshotPath, 20000));
      } catch (e) {
        // haproxy closes the app's connection without an answer when the replica dies after
        // its status line reached haproxy but before haproxy passed it on: an answer cut
        // before its status. Anything else is a failure of its own kind.
        if (e.code === 'ECONNRESET' || e.message === 'socket hang up') counts.cutBeforeStatus += 1;
        else wrong.push(`${kind}: request failed: ${e.message}`);
      }
    }
  }
  const apps = [0, 1, 2].map(app);

  const startedAt = Date.now();
  for (let i = 0; i < cluster.replicas.length; i += 1) {
    const old = cluster.replicas[i];
    await old.proc.stop('SIGTERM');
    const fresh = await startReplica(cluster.store, old.port, cluster.issuer, cluster.nats);
    cluster.replicas[i] = fresh;
    await eventually(`replica ${i + 1} ready`, async () => (await get(fresh.url, snapshotPath, 10000)).status === 200, 30000);
    // haproxy takes a replica back after two passing checks 500 ms apart.
    await eventually('haproxy sending to the restarted replica', async () => {
      const r = await get(front.url, snapshotPath, 10000);
      return r.status === 200 && r.replica === `hub${i + 1}`;
    }, 15000);
    await eventually('the connector linked', holding, 30000);
  }
  loading = false;
  await Promise.all(apps);
  console.log(`# rolling restart of 3 replicas in ${Date.now() - startedAt} ms under load: ${counts.raw} whole raw reads `
    + `(${reference.body.length} bytes each) and ${counts.snapshot} snapshots right; ${counts.cut} cut mid-body, `
    + `${counts.cutBeforeStatus} cut before their status, `
    + `${counts.unavailable} answered 503; ${wrong.length} wrong`);
  assert.deepEqual(wrong, [], 'no answer was wrong');
  assert.ok(counts.raw > 0 && counts.snapshot > 0, 'the load was served during the restart');

  // Everything serves again: each replica directly, the same bytes from each.
  for (const r of cluster.replicas) {
    const again = await get(r.url, rawPath);
    assert.equal(again.status, 200, `replica on ${r.port}: ${again.body.toString().slice(0, 200)}`);
    assert.equal(sha(again.body), referenceSha, `replica on ${r.port} answers the same bytes`);
  }
  assert.equal(cluster.plant.status().link, 'connected');
});

/** An endpoint on the issuer's origin whose requests all go to `replica` (pages, OAuth, API). */
function via(replica) {
  const { front, ca, secret } = cluster;
  const direct = endpoint(front.url, ca, secret);
  const viaFront = direct.fetch;
  direct.fetch = (input, init) => viaFront(String(input).replace(front.url, replica.url), init);
  return direct;
}

/** The key id in an access token's footer. */
function keyIdOf(token) {
  const footer = token.split('.')[3];
  return JSON.parse(Buffer.from(footer, 'base64url').toString('utf8')).kid;
}

test('a key rotated beside one replica is in force on every replica at once, without a restart', async () => {
  const { ca, sourceId } = cluster;
  const snapshot = `sources/${sourceId}/snapshot?tags=sim.ramp.1`;
  const before = cluster.token;
  const oldKey = keyIdOf(before);
  // The admin verb on the replicas' data folder and store, as an operator runs it on one machine.
  const out = admin(cluster.store.adminDir, ['key', 'rotate']);
  const newKey = out.match(/current key: (\S+)/)?.[1];
  assert.ok(newKey && newKey !== oldKey, out);
  // A token from the first replica's token endpoint, sealed with the new key once it heard.
  const [issuing, ...others] = cluster.replicas;
  const fresh = await eventually('the first replica issuing with the new key', async () => {
    const t = await consent(via(issuing), ['simulated']);
    return keyIdOf(t) === newKey && t;
  }, 15000);
  // At once, on every replica: the others need not have read the change feed yet.
  for (const r of [...others, issuing]) {
    const answer = await getApi(r.url, snapshot, { ca, token: fresh });
    assert.equal(answer.status, 200, `replica on ${r.port} accepts the new key: ${answer.body}`);
  }
  // The retired key keeps verifying the tokens it made, for their lifetime.
  for (const r of cluster.replicas) {
    assert.equal((await getApi(r.url, snapshot, { ca, token: before })).status, 200, `replica on ${r.port}, old token`);
  }
  cluster.token = fresh;
});

/**
 * Revokes the dashboard app through ada's settings page on `hub`, signing in and reading the
 * page first: resolves with when the revoking POST was sent, so the time to a cut counts from
 * the request that commits the revoke.
 */
async function revokeTimed(hub) {
  const cookie = await signIn(hub);
  const headers = { cookie: `__Host-uplink-session=${cookie}` };
  const page = await (await hub.fetch(`${hub.url}/account/settings`, { headers })).text();
  const form = page.slice(page.indexOf('action="/account/settings/revoke"'));
  const hidden = (name) => form.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
  const fields = new URLSearchParams({ csrf: hidden('csrf'), app: hidden('app'), confirm: 'yes' });
  const sentAt = Date.now();
  const r = await hub.fetch(`${hub.url}/account/settings/revoke`, {
    method: 'POST', headers: { ...headers, origin: hub.url, 'sec-fetch-site': 'same-origin' }, body: fields,
  });
  assert.equal(r.status, 303, 'the revoke was accepted');
  return { sentAt, answeredAt: Date.now() };
}

/** Streams a long raw read on `base`; resolves `flowing` after its first megabyte, `done` at its end. */
function longRead(base, token) {
  let flowing;
  const started = new Promise((resolve) => { flowing = resolve; });
  const path = `sources/${cluster.sourceId}/raw?tag=sim.sinusoid.1&start=*-12d&end=*&maxCount=1000000`;
  const done = new Promise((resolve, reject) => {
    const req = https.get(`${base}/api/v1/${path}`, { ca: cluster.ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let bytes = 0;
      res.on('data', (c) => { bytes += c.length; if (bytes > 1_000_000) flowing(); });
      const end = (complete) => { flowing(); resolve({ status: res.statusCode, complete, at: Date.now() }); };
      res.on('end', () => end(res.complete));
      res.on('aborted', () => end(false));
      res.on('error', () => end(false));
    });
    req.on('error', (e) => { flowing(); reject(e); });
  });
  return { started, done };
}

test('with NATS stopped, a revoke on one replica reaches a stream on another through the change feed', async () => {
  const holder = await eventually('one replica holding the link', async () => {
    for (const r of cluster.replicas) if ((await linksHeld(r)) > 0) return r;
    return null;
  });
  // Sign-ins are rate-limited per replica: the revokes alternate between the two others and
  // the consents go round-robin through haproxy.
  const revoking = cluster.replicas.filter((r) => r !== holder);
  await cluster.nats.stop();
  const latencies = [];
  const answered = [];
  try {
    for (let i = 0; i < 5; i += 1) {
      const token = await consent(cluster.front.hub, ['simulated']);
      // The holder serves its own link without NATS; the revoke's news can travel only the feed.
      const stream = longRead(holder.url, token);
      await stream.started;
      const { sentAt, answeredAt } = await revokeTimed(via(revoking[i % 2]));
      const answer = await stream.done;
      assert.equal(answer.status, 200);
      assert.equal(answer.complete, false, 'the stream was cut, not completed');
      latencies.push(answer.at - sentAt);
      answered.push(answer.at - answeredAt);
    }
  } finally {
    await cluster.nats.start();
  }
  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log(`# revoke-to-cut through the change feed alone (NATS stopped), from the revoking request sent: `
    + `median ${median(latencies)} ms (${latencies.join(', ')} ms); from its answer: median ${median(answered)} ms (${answered.join(', ')} ms)`);
});
