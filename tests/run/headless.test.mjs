// `./scripts/run` on a machine with no display, as README promises a new user: it builds and
// starts the headless demo, prints where to point a browser and a curl command, and that
// command's request reads the simulated data source through the hub with the demo app's token.
// The build is the debug one (UPLINK_BUILD=debug) so the check costs no second, optimised build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { caFetch } from '../hub/hub-process.mjs';

const repo = resolve(import.meta.dirname, '../..');

/** Resolves with the process's output once `pattern` appears in it; fails if it exits first. */
function waitForOutput(child, pattern, ms) {
  return new Promise((resolveOutput, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${ms} ms; output:\n${out}`)), ms);
    const onData = (d) => {
      out += d;
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolveOutput(out);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`scripts/run exited (code ${code}, signal ${signal}) before ${pattern}; output:\n${out}`));
    });
  });
}

test('./scripts/run with no display starts the headless demo, and its printed curl command reads data', async () => {
  const demoDir = mkdtempSync(join(tmpdir(), 'uplink-run-demo-'));
  const env = { ...process.env, UPLINK_BUILD: 'debug', UPLINK_DEMO_DIR: demoDir, RUST_LOG: 'warn' };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  const child = spawn(join(repo, 'scripts', 'run'), ['--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const out = await waitForOutput(child, /Ctrl-C stops the demo\./, 600_000);
    assert.match(out, /no display here: running the headless demo/, 'it says why it runs the demo');

    const hub = out.match(/^\s+hub\s+(https:\/\/127\.0\.0\.1:\d+)$/m)?.[1];
    assert.ok(hub, `the hub's address is printed:\n${out}`);
    const [, caPath, token, url] = out.match(/curl --cacert (\S+) -H 'Authorization: Bearer ([^']+)'[\s\\]+'([^']+)'/) ?? [];
    assert.ok(url, `a ready-to-paste curl command is printed:\n${out}`);
    assert.ok(url.startsWith(`${hub}/api/v1/sources/`), url);

    const fetchWithCa = caFetch(readFileSync(caPath, 'utf8'));
    // A browser pointed at the hub ends on its sign-in page (a visitor is not signed in).
    let page = await fetchWithCa(hub);
    const visited = [hub];
    while (page.status === 303 && visited.length < 5) {
      const next = new URL(page.headers.get('location'), hub).href;
      visited.push(next);
      page = await fetchWithCa(next);
    }
    assert.equal(page.status, 200, `the hub's pages are served: ${visited.join(' → ')} answered ${page.status}`);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /<form/i, `${visited.at(-1)} is a sign-in form`);

    const response = await fetchWithCa(url, { headers: { authorization: `Bearer ${token}` } });
    const body = await response.text();
    assert.equal(response.status, 200, body);
    assert.match(body, /sim\.sinusoid\.1/, 'the snapshot names the tag asked for');
    const refused = await fetchWithCa(url, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(refused.status, 401, 'a wrong token is refused');

    child.kill('SIGINT');
    const [code, signal] = await new Promise((r) => child.once('exit', (...a) => r(a)));
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'Ctrl-C stops the demo cleanly');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(demoDir, { recursive: true, force: true });
  }
});
