// The window signed in to a real hub (`uplink hub serve` with ada, seeded through the admin CLI),
// in real headless Chromium against the real runtime (`uplink ui`): signing in through the hub's
// own pages (the authorize address the window shows, opened in a tab), after which Account offers
// "Switch hub…" instead of a second sign-in form; the demo's simulated source left out when the
// owner never touched it, and kept when they edited it; the site renamed from Account, with the
// hub's settings page showing the new name; and the connectivity test's Stop button stopping the
// test against a hub that never answers.
//
// Needs `ui/dist` built and the `uplink` binary (see ui-process.mjs). Builds nothing.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { PASSWORD, USER } from '../hub/hub-process.mjs';
import { eventually, startHub } from '../relay/site.mjs';
import { CHROMIUM_ARGS, artifacts, chromiumPath, dist, startUi, uplinkBin } from './ui-process.mjs';

// Waiting limits for what the runtime does in the background; nothing here measures time.
const LINK_WAIT = 60_000;
const UPDATE_WAIT = 30_000;

async function openPage(page, name) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

function listedSource(page, name) {
  return page.getByRole('list', { name: 'Data sources' }).getByRole('listitem').filter({
    has: page.getByRole('heading', { name, exact: true }),
  });
}

/** A fresh `uplink ui` and a page on it; `prepare(dataDir)` runs before it starts. */
async function openWindow(context, prepare = () => {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'uplink-ui-data-'));
  prepare(dataDir);
  // The sign-in "opens the system browser" with a command that does nothing: the test opens the
  // address the window shows, as a person would when no browser came up.
  const server = startUi(dataDir, { env: { BROWSER: 'true' } });
  const served = await server.ready;
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(served.url);
  await page.getByRole('heading', { level: 1, name: 'Status' }).waitFor();
  return {
    dataDir,
    server,
    page,
    problems,
    async close() {
      await page.close();
      if (server.child.exitCode === null && server.child.signalCode === null) {
        const exited = new Promise((resolve) => server.child.once('exit', resolve));
        server.child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Signs the window in to `hub` through the hub's own sign-in and consent pages. */
async function signInThroughTheHub(context, page, hub) {
  await openPage(page, 'Account');
  const form = page.getByRole('form', { name: 'Sign in to a hub' });
  await form.getByLabel('Hub address').fill(hub.url);
  await form.getByText('The hub uses a private certificate authority').click();
  await form.getByLabel('Certificate authority (PEM)').fill(hub.ca);
  await form.getByRole('button', { name: 'Sign in' }).click();
  const address = page.getByRole('status').locator('code', { hasText: '/oauth/authorize?' });
  await address.waitFor({ timeout: UPDATE_WAIT });
  const tab = await context.newPage();
  await tab.goto(await address.textContent());
  if (await tab.getByLabel('Username').count()) {
    await tab.getByLabel('Username').fill(USER);
    await tab.getByLabel('Password').fill(PASSWORD);
    await tab.getByRole('button', { name: 'Sign in' }).click();
  }
  await tab.getByRole('heading', { name: 'Connect a site connector to your account?' }).waitFor({ timeout: UPDATE_WAIT });
  await tab.getByRole('button', { name: 'Allow access' }).click();
  await tab.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/, { timeout: UPDATE_WAIT });
  await tab.close();
  await page.getByRole('region', { name: 'Hub' }).getByText('Connected', { exact: true }).waitFor({ timeout: LINK_WAIT });
}

describe('Signed in to a real hub', { timeout: 300_000 }, () => {
  let hub;
  let context;
  let userDataDir;

  before(async () => {
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium)`);
    assert.ok(existsSync(uplinkBin), `uplink binary not found at ${uplinkBin} (cargo build -p uplink-cli)`);
    assert.ok(existsSync(path.join(dist, 'index.html')), `no built UI at ${dist} (npm ci && npm run build in ui/)`);
    mkdirSync(artifacts, { recursive: true });
    hub = await startHub([]);
    userDataDir = mkdtempSync(path.join(tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 800 },
      // The test hub's certificate comes from its own authority; the window is given it as PEM.
      ignoreHTTPSErrors: true,
    });
  });

  after(async () => {
    await context?.close();
    await hub?.stop();
    for (const dir of [userDataDir, hub?.dataDir]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Account offers Switch hub…, the untouched demo source is left out, and the site is renamed on the hub', async () => {
    const window = await openWindow(context);
    const { page } = window;
    try {
      await openPage(page, 'Data sources');
      await listedSource(page, 'simulated').waitFor({ timeout: UPDATE_WAIT });

      await signInThroughTheHub(context, page, hub);
      // Signed in to a real hub: no second sign-in form, but Switch hub….
      assert.equal(await page.getByRole('form', { name: 'Sign in to a hub' }).count(), 0, 'a second sign-in form');
      await page.getByRole('region', { name: 'Hub' }).getByRole('button', { name: 'Switch hub…' }).click();
      const switching = page.getByRole('region', { name: 'Switch to another hub' });
      assert.match(await switching.textContent(), new RegExp(`stays linked to ${hub.url}`));
      await switching.getByRole('form', { name: 'Sign in to a hub' }).waitFor();
      await page.screenshot({ path: path.join(artifacts, 'browser-account-switch-hub.png'), fullPage: true });
      await switching.getByRole('button', { name: 'Cancel' }).click();
      await switching.waitFor({ state: 'detached' });

      // The demo's simulated source, never touched, is not offered to the real hub.
      await openPage(page, 'Data sources');
      await page.getByText('No data sources yet.', { exact: false }).waitFor({ timeout: UPDATE_WAIT });
      assert.equal(await listedSource(page, 'simulated').count(), 0);

      // The site gets a name of the owner's choosing, checked in the form.
      await openPage(page, 'Account');
      const site = page.getByRole('region', { name: 'Site' });
      await site.getByRole('button', { name: 'Rename site…' }).click();
      const rename = site.getByRole('form', { name: 'Rename this site' });
      await rename.getByLabel('Site name').fill('   ');
      await rename.getByRole('button', { name: 'Save' }).click();
      await rename.getByText('Enter a name for this site, such as “Plant A, line 2”.').waitFor();
      await rename.getByLabel('Site name').fill('x'.repeat(65));
      await rename.getByRole('button', { name: 'Save' }).click();
      await rename.getByText('Use at most 64 characters (this one has 65).').waitFor();
      await rename.getByLabel('Site name').fill('Press shop 7');
      await rename.getByRole('button', { name: 'Save' }).click();
      await page.getByText('This site is now called “Press shop 7”; the hub shows the new name.').waitFor({
        timeout: UPDATE_WAIT,
      });
      assert.match(await site.textContent(), /Press shop 7/);
      await page.screenshot({ path: path.join(artifacts, 'browser-account-site.png'), fullPage: true });

      // The hub's settings page (signed in from the sign-in above) shows the site by its new name.
      const settings = await context.newPage();
      await eventually('the hub shows the new site name', async () => {
        await settings.goto(`${hub.url}/account/settings`);
        return (await settings.getByText('Press shop 7').count()) > 0;
      }, UPDATE_WAIT);
      await settings.close();
      assert.deepEqual(window.problems, []);
    } finally {
      await window.close();
    }
  });

  test('a demo source the owner edited stays on a real-hub sign-in', async () => {
    const window = await openWindow(context);
    const { page } = window;
    try {
      await openPage(page, 'Data sources');
      await page.getByRole('button', { name: 'Edit simulated', exact: true }).click();
      const form = page.getByRole('form', { name: 'Edit “simulated”' });
      await form.getByLabel('Description').fill('Line 2 simulator, kept on purpose');
      await form.getByRole('button', { name: 'Save', exact: true }).click();
      await page.getByText('Saved “simulated”.').waitFor({ timeout: UPDATE_WAIT });

      await signInThroughTheHub(context, page, hub);
      await openPage(page, 'Data sources');
      const kept = listedSource(page, 'simulated');
      await kept.waitFor({ timeout: UPDATE_WAIT });
      assert.match(await kept.textContent(), /Line 2 simulator, kept on purpose/);
      assert.deepEqual(window.problems, []);
    } finally {
      await window.close();
    }
  });
});

describe('The connectivity test stops when asked', { timeout: 120_000 }, () => {
  let context;
  let userDataDir;
  let silent;
  const sockets = new Set();
  let accepted = 0;

  before(async () => {
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium)`);
    assert.ok(existsSync(uplinkBin), `uplink binary not found at ${uplinkBin} (cargo build -p uplink-cli)`);
    // A "hub" that accepts connections and never says a word: the TLS step waits on it.
    silent = createServer((socket) => {
      accepted += 1;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      // Read (and drop) what comes, so the client's close is seen.
      socket.resume();
    });
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    userDataDir = mkdtempSync(path.join(tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 800 },
    });
  });

  after(async () => {
    await context?.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  test('Stop test ends the test under way and closes its connection', async () => {
    const { port } = silent.address();
    const window = await openWindow(context, (dataDir) => {
      // Set up for the silent hub, paused, so only the connectivity test connects to it.
      writeFileSync(
        path.join(dataDir, 'credentials.json'),
        JSON.stringify({
          hubUrl: `https://127.0.0.1:${port}`,
          connectorId: 'con_connectivitytest0000000',
          secret: { kind: 'clientCredential', credential: 'not-used-while-paused' },
        }),
        { mode: 0o600 },
      );
      writeFileSync(path.join(dataDir, 'control.json'), JSON.stringify({ paused: true }), { mode: 0o600 });
    });
    const { page } = window;
    try {
      await openPage(page, 'Diagnostics');
      assert.equal(accepted, 0, 'something connected before the test ran');
      await page.getByRole('button', { name: 'Run connectivity test' }).click();
      await page.getByText(/^Testing… /).waitFor();
      await eventually('the test connects to the hub', () => sockets.size === 1, UPDATE_WAIT);
      await page.getByRole('button', { name: 'Stop test' }).click();
      await page.getByText('The connectivity test was stopped before it finished.').waitFor({ timeout: UPDATE_WAIT });
      // Really stopped: its connection is closed, and no report came.
      await eventually('the test’s connection closes', () => sockets.size === 0, UPDATE_WAIT);
      assert.equal(await page.getByRole('list', { name: 'Checks' }).count(), 0, 'a report came after Stop');
      assert.equal(accepted, 1, 'the test went on to other steps after Stop');
      await page.getByRole('button', { name: 'Run connectivity test' }).waitFor();
      await page.screenshot({ path: path.join(artifacts, 'browser-diagnostics-stopped.png'), fullPage: true });
      assert.deepEqual(window.problems, []);
    } finally {
      await window.close();
    }
  });
});
