// The official @microsoft/signalr client against our Rust server, over each transport, with a
// real TLS certificate from a private CA (NODE_EXTRA_CA_CERTS) and a bearer token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
let server;
let endpoint;

function startServer() {
  return new Promise((resolve, reject) => {
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
  });
}

function runOfficialClient(transport, protocol = 'json') {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(here, 'official_client.mjs'), endpoint.url, transport, protocol],
      { cwd: path.join(repoRoot, 'tests'), env: { ...process.env, NODE_EXTRA_CA_CERTS: endpoint.ca }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`official client over ${transport} failed: ${error.message}\n${stderr}`));
          return;
        }
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      },
    );
  });
}

before(async () => {
  const started = await startServer();
  server = started.child;
  endpoint = started.info;
  assert.match(endpoint.url, /^https:\/\/localhost:\d+\/hubs\/interop$/);
}, { timeout: 600_000 });

after(() => {
  server?.removeAllListeners('exit');
  server?.stdin.end();
});

const CASES = [
  ['WebSockets', 'json'], ['ServerSentEvents', 'json'], ['LongPolling', 'json'],
  // MessagePack needs a transport that carries binary: not Server-Sent Events.
  ['WebSockets', 'messagepack'], ['LongPolling', 'messagepack'],
];

for (const [transport, protocol] of CASES) {
  test(`official client over ${transport} in ${protocol}: call, server invocation, client result, stream, close`, async () => {
    const r = await runOfficialClient(transport, protocol);
    assert.equal(r.transport, transport, 'the server saw the transport the client forced');
    assert.equal(r.protocol, protocol, 'the server speaks the protocol the client chose');
    if (protocol === 'messagepack') assert.deepEqual(r.byteSum, [256, 255 * 256 / 2], 'bin arrives as bytes');
    assert.ok(r.connectionId, 'negotiate gave a connection id');
    assert.equal(r.sum, 42);
    assert.equal(r.triggered, true);
    assert.equal(r.notified, 'hello');
    assert.equal(r.answer, 'answer to life');
    assert.deepEqual(r.stream, [0, 1, 2, 3, 4]);
    assert.equal(r.failError, "It didn't work!");
    assert.match(r.unknownError, /Unknown hub method 'NoSuchMethod'/);
    assert.equal(r.bigLength, 16 * 1024);
    assert.equal(r.closeError, null, 'a requested stop closes without error');
    assert.equal(r.finalState, 'Disconnected');
  });
}

test('the official client is refused without a valid token', async () => {
  const result = await new Promise((resolve) => {
    const script = `
      import * as signalR from '@microsoft/signalr';
      const c = new signalR.HubConnectionBuilder()
        .withUrl(${JSON.stringify(endpoint.url)}, { accessTokenFactory: () => 'wrong' })
        .configureLogging(signalR.LogLevel.None).build();
      try { await c.start(); console.log('connected'); } catch (e) { console.log(String(e.message ?? e)); }
      process.exit(0);`;
    execFile(process.execPath, ['--input-type=module', '-e', script],
      { cwd: path.join(repoRoot, 'tests'), env: { ...process.env, NODE_EXTRA_CA_CERTS: endpoint.ca }, timeout: 60_000 },
      (_error, stdout) => resolve(stdout.trim()));
  });
  assert.match(result, /401/);
});
