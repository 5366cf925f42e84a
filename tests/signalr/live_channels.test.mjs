// Live values on one connection with the official @microsoft/signalr client: the real `uplink
// hub serve` and `uplink connector run` processes over real TLS on loopback, an app token from
// the hub's consent pages, and the app hub's `CreateSnapshotTagValueChannel` stream over
// WebSockets, Server-Sent Events and long polling: two tag sets on one connection, one
// removed by disposing of its subscription, the other completed with `revoked: …` by the
// owner's revoke, then the revoked sign-in's token refused a new connection; a stream whose
// connection stopped resumes on a new one after its last item's id, with no value lost or
// repeated (or says `restarted` for an id the hub does not hold). The docs/api.md example of
// the app hub runs as written.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { api, consent, eventually, prepareConnector, revokeOnHub, startHub } from '../relay/site.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
let hub;
let plant;
let sourceId;

before(async () => {
  hub = await startHub(['Plant A']);
  plant = prepareConnector(hub, hub.connectors[0]);
  plant.start('websockets');
  await eventually('Plant A registered', () => plant.status().sources?.[0]?.hubId);
  const token = await consent(hub, ['simulated']);
  sourceId = (await eventually('the source online', async () => {
    const { status, body } = await api(hub, token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === 'simulated' && s.connector.online);
  })).id;
}, { timeout: 120000 });

after(async () => {
  await plant?.stop();
  await hub?.stop();
});

/** Runs `script` (args) in its own Node process trusting the hub's CA; yields its JSON lines. */
function client(script, args, token) {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: path.join(repoRoot, 'tests'),
    env: { ...process.env, NODE_EXTRA_CA_CERTS: hub.caPath, UPLINK_TOKEN: token },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    /** The next JSON object line; other lines (the client library's own log) are skipped. */
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
      const code = await exited;
      assert.equal(code, 0, `the client failed: ${stderr}`);
    },
  };
}

for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling']) {
  test(`the official client adds and removes tags on one connection and is cut by a revoke over ${transport}`, async () => {
    // Each run consents afresh: the previous run's revoke ended the grant.
    const token = await consent(hub, ['simulated']);
    const run = client(path.join(here, 'live_client.mjs'), [hub.url, transport, sourceId], token);
    const streaming = await run.next('streaming');
    assert.equal(streaming.phase, 'streaming');
    assert.equal(streaming.ramp.first.event, 'snapshot');
    assert.deepEqual(streaming.ramp.first.values.map((v) => v.tag), ['sim.ramp.1']);
    assert.match(streaming.ramp.first.id, /^g_[0-9a-f]+-\d+-\d+-\d+$/);
    assert.equal(streaming.ramp.second.event, 'values');
    assert.equal(typeof streaming.ramp.second.values[0].value, 'number');
    assert.deepEqual(streaming.pair.first.values.map((v) => v.tag), ['sim.noise.1', 'sim.square.1']);
    assert.equal(streaming.ramp.error, null, 'a disposed stream ends quietly on the client');
    assert.ok(streaming.pairAfterDispose >= 2, 'the other stream goes on');
    await revokeOnHub(hub);
    run.child.stdin.write('revoked\n');
    const revoked = await run.next('the revoke');
    assert.match(revoked.revokedError, /revoked: /);
    assert.match(revoked.reconnectError ?? 'connected', /401|Unauthorized/, 'the token opens no new connection');
    await run.exit();
  }, { timeout: 120000 });
}

for (const [transport, protocol] of [
  ['WebSockets', 'json'],
  ['ServerSentEvents', 'json'],
  ['LongPolling', 'messagepack'],
]) {
  test(`a stream resumes after its last id without a gap or a repeat over ${transport} (${protocol})`, async () => {
    const token = await consent(hub, ['simulated']);
    const run = client(path.join(here, 'resume_client.mjs'), [hub.url, transport, protocol, sourceId], token);
    const seen = await run.next('the resumed stream');
    await run.exit();
    const { last, first, witnessed, between } = seen;
    const seq = (id) => Number(id.split('-')[1]);
    const generation = (id) => id.split('-')[0];
    assert.equal(last.event, 'values', JSON.stringify(last));
    assert.equal(first.event, 'values', `a resume, not a restart: ${JSON.stringify(first)}`);
    assert.equal(generation(first.id), generation(last.id));
    assert.ok(seq(first.id) > seq(last.id) + 1, `values changed while it was away: ${JSON.stringify(seen)}`);
    // No repeat: the resumed value is newer than the last one received.
    assert.ok(Date.parse(first.values[0].time) > Date.parse(last.values[0].time), JSON.stringify(seen));
    // No gap: the values did change while it was away (the witness saw each update), and the
    // resumed stream picks up at the latest one, as the witness got it.
    assert.equal(between.length, seq(first.id) - seq(last.id) - 1, 'the witness saw each update');
    assert.ok(between.length >= 1, JSON.stringify(seen));
    assert.deepEqual(first.values, witnessed.values);
    assert.equal(seen.resumedError, null);
    assert.deepEqual(seen.restarted.map((i) => i.event), ['restarted', 'snapshot']);
    assert.equal(seen.restarted[0].code, 'restarted');
    assert.equal(seen.restartedError, null);
  }, { timeout: 120000 });
}

test('the docs/api.md example of live values on one connection runs as written', async () => {
  const guide = readFileSync(path.join(repoRoot, 'docs', 'api.md'), 'utf8');
  const section = guide.slice(guide.indexOf('### Live values on one connection'));
  const example = section.slice(section.indexOf('```js\n') + 6, section.indexOf('\n```', section.indexOf('```js\n')));
  assert.match(example, /CreateSnapshotTagValueChannel/);
  const token = await consent(hub, ['simulated']);
  // The example's free names: the hub, the token, the data source and what to do with items.
  const script = path.join(here, `.docs-example-${process.pid}.mjs`);
  writeFileSync(script, `
const [hub, src] = process.argv.slice(2);
const token = process.env.UPLINK_TOKEN;
const seen = [];
const show = (item) => seen.push(item);
const ended = (message) => seen.push({ ended: message });
${example}
const deadline = Date.now() + 30000;
while (seen.filter((i) => i.event === 'values').length < 2 && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 50));
}
ramp.dispose();
console.log(JSON.stringify({ seen: seen.slice(0, 6) }));
await connection.stop();
`);
  try {
    const run = client(script, [hub.url, sourceId], token);
    const { seen } = await run.next('the items');
    await run.exit();
    const snapshots = seen.filter((i) => i.event === 'snapshot');
    assert.ok(snapshots.length >= 2, JSON.stringify(seen));
    assert.ok(seen.some((i) => i.event === 'values'), JSON.stringify(seen));
    assert.ok(!seen.some((i) => i.ended), JSON.stringify(seen));
  } finally {
    rmSync(script, { force: true });
  }
}, { timeout: 120000 });
