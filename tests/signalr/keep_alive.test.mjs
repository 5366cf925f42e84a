// The official @microsoft/signalr client holds idle links to our Rust server with its default
// timeouts: its server timeout is 30 s, so the server must write at least every 30 s on every
// transport whatever the client sends. The server pings whenever it wrote nothing for its
// keep-alive interval (15 s); the clients here send only their own pings.
//
// How long: UPLINK_IDLE_LINK_SECONDS (default 75). 75 s is two and a half of the client's
// server timeouts and five of the server's keep-alive intervals: with pings late by even one
// interval (the fault this guards against gave gaps of 30 to 67 s) a link drops well inside it,
// while the three transports, held at once, keep this layer's run near a minute and a half.
// The five minutes: UPLINK_IDLE_LINK_SECONDS=300.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const SECONDS = Number(process.env.UPLINK_IDLE_LINK_SECONDS ?? 75);
const KEEP_ALIVE_MS = 15_000;
let server;
let endpoint;

before(async () => {
  assert.ok(SECONDS > 0, 'UPLINK_IDLE_LINK_SECONDS is a number of seconds');
  ({ child: server, info: endpoint } = await new Promise((resolve, reject) => {
    const child = spawn('cargo', ['run', '--quiet', '-p', 'uplink-signalr', '--example', 'interop_server'], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => reject(new Error('interop server did not print its URL within 10 minutes')), 600_000);
    child.on('exit', (code) => reject(new Error(`interop server exited early with code ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ child, info: JSON.parse(line) });
    });
  }));
}, { timeout: 600_000 });

after(() => {
  server?.removeAllListeners('exit');
  server?.stdin.end();
});

function holdIdle(transport) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(here, 'idle_client.mjs'), endpoint.url, transport, String(SECONDS)],
      { cwd: path.join(repoRoot, 'tests'), env: { ...process.env, NODE_EXTRA_CA_CERTS: endpoint.ca }, timeout: (SECONDS + 60) * 1000 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`idle client over ${transport} failed: ${error.message}\n${stderr}`));
          return;
        }
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      },
    );
  });
}

test(`the official client with default timeouts holds an idle link for ${SECONDS} s on every transport`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  const transports = ['WebSockets', 'ServerSentEvents', 'LongPolling'];
  // All three at once: the layer's time is one link's.
  const results = await Promise.all(transports.map(holdIdle));
  for (const [i, transport] of transports.entries()) {
    const r = results[i];
    console.log(`${transport}: ${r.pings} pings in ${SECONDS} s, longest gap ${r.maxGapMs} ms, ${r.reconnecting.length} reconnects`);
    assert.equal(r.serverTimeoutMs, 30_000, 'the client keeps its default server timeout');
    assert.deepEqual(r.reconnecting, [], `${transport}: no reconnect`);
    assert.equal(r.closed, null, `${transport}: not closed while idle`);
    assert.equal(r.sameConnection, true, `${transport}: the same connection throughout`);
    assert.equal(r.transport, transport, `${transport}: the link still answers`);
    // A ping at least every keep-alive interval, with a second for scheduling.
    assert.ok(r.maxGapMs <= KEEP_ALIVE_MS + 1_000, `${transport}: ${r.maxGapMs} ms without a ping`);
    assert.ok(r.pings >= Math.floor(SECONDS * 1000 / KEEP_ALIVE_MS) - 1, `${transport}: only ${r.pings} pings`);
  }
});
