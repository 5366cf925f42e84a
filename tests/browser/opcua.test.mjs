// The Data sources page adds an OPC UA source through its form, in real headless Chromium
// against `uplink ui --data-dir <fresh folder>` and a real OPC UA server (Python asyncua 2.1.0
// serving tests/fixtures/opcua_server.py on loopback with SignAndEncrypt endpoints): the form
// shows the opcua fields, the first attempt is refused with the server certificate's thumbprint
// in plain words, the owner trusts it through the thumbprint field, the Test button reads
// values over the encrypted session, and the source is saved.
//
// Needs `ui/dist` built, the `uplink` binary (see ui-process.mjs) and asyncua
// (UPLINK_ASYNCUA_PYTHON, or the venv `scripts/lib/setup.sh` `ensure_asyncua` makes). Builds
// nothing.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, artifacts, chromiumPath, dist, repo, startUi, uplinkBin } from './ui-process.mjs';

// Waiting limits for what the runtime does in the background; nothing here measures time.
const LINK_WAIT = 60_000;
const UPDATE_WAIT = 30_000;

/** The python with asyncua: UPLINK_ASYNCUA_PYTHON, else the venv scripts/lib/setup.sh makes. */
function asyncuaPython() {
  return process.env.UPLINK_ASYNCUA_PYTHON
    ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'uplink', 'asyncua-2.1.0', 'bin', 'python');
}

/** Starts the fixture server with encrypted endpoints (its certificate made in `pki`). */
function startServer(pki) {
  const child = spawn(asyncuaPython(), [path.join(repo, 'tests', 'fixtures', 'opcua_server.py'), '--encrypted', pki],
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

/** The text shown for an input's problem, found through its aria-describedby. */
function problemOf(input) {
  return input.evaluate((element) =>
    (element.getAttribute('aria-describedby') ?? '')
      .split(' ')
      .filter((id) => id.endsWith('-error'))
      .map((id) => document.getElementById(id)?.textContent ?? '')
      .join(' '),
  );
}

async function fitsIn360(page, what) {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 360, height: 720 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: path.join(artifacts, `browser-${what}-360.png`), fullPage: true });
  await page.setViewportSize(size);
  assert.ok(overflow <= 0, `the ${what} page is ${overflow}px wider than a 360px window`);
}

describe('An OPC UA source added through the Data sources page', { timeout: 300_000 }, () => {
  let opcua;
  let server;
  let served;
  let context;
  let userDataDir;
  let dataDir;
  let pki;
  let page;
  const problems = [];

  before(async () => {
    // Loud failures, never skips: a missing part means this layer did not run.
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium)`);
    assert.ok(existsSync(uplinkBin), `uplink binary not found at ${uplinkBin} (cargo build -p uplink-cli --bins, or set UPLINK_BIN)`);
    assert.ok(existsSync(path.join(dist, 'index.html')), `no built UI at ${dist} (run \`npm ci && npm run build\` in ui/)`);
    assert.ok(existsSync(asyncuaPython()), `${asyncuaPython()} not found: the OPC UA server needs asyncua 2.1.0; run `
      + '`source scripts/lib/setup.sh && ensure_asyncua` or set UPLINK_ASYNCUA_PYTHON');
    pki = mkdtempSync(path.join(tmpdir(), 'uplink-opcua-server-'));
    opcua = await startServer(pki);
    dataDir = mkdtempSync(path.join(tmpdir(), 'uplink-ui-data-'));
    server = startUi(dataDir);
    served = await server.ready;

    userDataDir = mkdtempSync(path.join(tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 800 },
    });
    mkdirSync(artifacts, { recursive: true });
    page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // The refused first attempt answers 422, which Chromium logs; nothing else may be.
      const refusedForm = /status of 422 \(Unprocessable Entity\)/.test(message.text());
      if (message.type() === 'error' && !refusedForm) problems.push(`console error: ${message.text()}`);
    });

    await page.goto(served.url);
    await page.getByRole('button', { name: 'Use a local hub' }).click();
    await page.getByRole('region', { name: 'Link' }).getByText('Connected', { exact: true }).waitFor({ timeout: LINK_WAIT });
  });

  after(async () => {
    if (page && !page.isClosed()) {
      await page.screenshot({ path: path.join(artifacts, 'browser-opcua-last.png'), fullPage: true }).catch(() => {});
    }
    await context?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    }
    opcua?.child.kill('SIGKILL');
    for (const dir of [userDataDir, dataDir, pki]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the form refuses an untrusted server with its thumbprint, then trusts it, tests and saves', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Data sources', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Data sources' }).waitFor();
    await page.getByRole('button', { name: 'Add data source' }).click();
    const form = page.getByRole('form', { name: 'Add a data source' });
    await form.getByLabel('Kind').selectOption('opcua');

    // The OPC UA form's fields, by their visible labels.
    await form.getByRole('group', { name: 'OPC UA server settings' }).waitFor();
    for (const label of ['Endpoint URL', 'Security policy', 'Security mode', 'Trusted server certificate', 'Identity',
      'User name', 'Password', 'User certificate', 'User private key', 'Browse root', 'Tag names', 'Most tags',
      'Request timeout', 'Publishing interval']) {
      assert.equal(await form.getByLabel(label).count(), 1, `no single input labelled ${label}`);
    }
    const policies = await form.getByLabel('Security policy').locator('option').allTextContents();
    assert.deepEqual(policies, ['None', 'Basic256Sha256', 'Aes128Sha256RsaOaep', 'Aes256Sha256RsaPss']);
    assert.equal(await form.getByLabel('Password').getAttribute('type'), 'password', 'the password is a secret field');
    assert.equal(await form.getByLabel('Browse root').inputValue(), 'Objects');
    assert.match(await form.getByText(/RUSTSEC-2023-0071/).textContent(), /timing side-channel/);
    // Help names commands and crates as code, not with literal backticks.
    const trustHelp = form.locator('p.help').filter({ hasText: 'thumbprint (hex)' });
    assert.equal(await trustHelp.locator('code').textContent(), 'uplink sources trust NAME');
    assert.doesNotMatch(await trustHelp.textContent(), /`/);

    await form.getByLabel('Name', { exact: true }).fill('boiler');
    await form.getByLabel('Endpoint URL').fill(`opc.tcp://127.0.0.1:${opcua.port}/uplink/`);
    await form.getByLabel('Security policy').selectOption('Basic256Sha256');
    await form.getByLabel('Security mode').selectOption('SignAndEncrypt');
    await form.getByLabel('Browse root').fill('ns=2;s=Plant');

    // First attempt: the certificate is new, so it is refused beside the thumbprint field,
    // with its thumbprints in plain words; nothing is saved.
    await form.getByRole('button', { name: 'Add data source' }).click();
    const thumbprint = form.getByLabel('Trusted server certificate');
    await thumbprint.and(page.locator('[aria-invalid="true"]')).waitFor({ timeout: UPDATE_WAIT });
    const refusal = await problemOf(thumbprint);
    assert.match(refusal, /^Trusted server certificate the server's certificate is not trusted yet \(SHA-1 [0-9a-f]{40}, SHA-256 [0-9a-f]{64}\); check it on the server, then enter its thumbprint here/);
    const shown = refusal.match(/SHA-256 ([0-9a-f]{64})/)[1];
    const actual = createHash('sha256').update(readFileSync(path.join(pki, 'server-cert.der'))).digest('hex');
    assert.equal(shown, actual, 'the thumbprint shown is the server certificate’s');
    assert.equal(await page.getByText('Added “boiler”.').count(), 0);
    await page.screenshot({ path: path.join(artifacts, 'browser-opcua-untrusted.png'), fullPage: true });
    // A 64-digit thumbprint does not widen the page.
    await fitsIn360(page, 'opcua-untrusted');

    // The owner checks it on the server and trusts it: Test reads values over the encrypted session.
    await thumbprint.fill(shown);
    await form.getByRole('button', { name: 'Test' }).click();
    const result = form.getByRole('region', { name: 'Test result' });
    await result.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await result.textContent(), /Healthy/);
    assert.match(await result.textContent(), /7 tags/);
    const rows = result.getByRole('row');
    assert.ok((await rows.count()) > 1, 'the test showed no sample values');
    const temperature = rows.filter({ hasText: 'Temperature' });
    // Around 20 °C, shown to six significant digits rather than every digit of a double.
    assert.match(await temperature.textContent(), /Temperature\s*\d\d(\.\d{1,4})? °C/);
    const label = rows.filter({ hasText: 'Label' });
    assert.match(await label.textContent(), /Line one/);
    await page.screenshot({ path: path.join(artifacts, 'browser-opcua-tested.png'), fullPage: true });

    await form.getByRole('button', { name: 'Add data source' }).click();
    await page.getByText('Added “boiler”.').waitFor({ timeout: UPDATE_WAIT });
    const listed = page.getByRole('list', { name: 'Data sources' }).getByRole('listitem').filter({
      has: page.getByRole('heading', { name: 'boiler', exact: true }),
    });
    await listed.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await listed.textContent(), /OPC UA server/);
    await page.screenshot({ path: path.join(artifacts, 'browser-opcua-source.png'), fullPage: true });
    await fitsIn360(page, 'opcua-sources');

    assert.deepEqual(problems, []);
  });
});
