// The local hub from the window, in real headless Chromium against the real runtime (`uplink ui`
// on a fresh folder, Use a local hub): a data source blocked on this site stays blocked when it
// is renamed, and the owner lets the demo app read a data source added later through the local
// hub's consent page, which the window opens in a new tab already signed in.
//
// Needs `ui/dist` built and the `uplink` binary (see ui-process.mjs). Builds nothing.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, artifacts, chromiumPath, dist, startUi, uplinkBin } from './ui-process.mjs';

// Waiting limits for what the runtime does in the background; nothing here measures time.
const LINK_WAIT = 60_000;
const UPDATE_WAIT = 30_000;

async function openPage(page, name) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

async function openSource(page, name) {
  await openPage(page, 'Data sources');
  await page.getByRole('list', { name: 'Data sources' }).getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

function listedSource(page, name) {
  return page.getByRole('list', { name: 'Data sources' }).getByRole('listitem').filter({
    has: page.getByRole('heading', { name, exact: true }),
  });
}

describe('The local hub from the window', { timeout: 300_000 }, () => {
  let server;
  let context;
  let userDataDir;
  let dataDir;
  let page;
  const problems = [];

  before(async () => {
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium)`);
    assert.ok(existsSync(uplinkBin), `uplink binary not found at ${uplinkBin} (cargo build -p uplink-cli)`);
    assert.ok(existsSync(path.join(dist, 'index.html')), `no built UI at ${dist} (npm ci && npm run build in ui/)`);
    dataDir = mkdtempSync(path.join(tmpdir(), 'uplink-ui-data-'));
    server = startUi(dataDir);
    const served = await server.ready;
    userDataDir = mkdtempSync(path.join(tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 800 },
      // The local hub's certificate comes from its own authority, which this browser does not know.
      ignoreHTTPSErrors: true,
    });
    mkdirSync(artifacts, { recursive: true });
    page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(served.url);
    await page.getByRole('button', { name: 'Use a local hub' }).click();
    await page.getByRole('region', { name: 'Link' }).getByText('Connected', { exact: true }).waitFor({ timeout: LINK_WAIT });
  });

  after(async () => {
    await context?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    }
    for (const dir of [userDataDir, dataDir]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a data source blocked on this site stays blocked when renamed', async () => {
    await openSource(page, 'simulated');
    const access = page.getByRole('region', { name: 'Who may read it' });
    await access.getByRole('button', { name: 'Block simulated on this site' }).click();
    await page.getByText('simulated is blocked on this site: no app can read it, whatever the hub grants.').waitFor({
      timeout: UPDATE_WAIT,
    });
    await access.getByRole('button', { name: 'Unblock simulated on this site' }).waitFor({ timeout: UPDATE_WAIT });

    await openPage(page, 'Data sources');
    await page.getByRole('button', { name: 'Edit simulated', exact: true }).click();
    const form = page.getByRole('form', { name: 'Edit “simulated”' });
    await form.getByLabel('Name', { exact: true }).fill('plant-sim');
    await form.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved “plant-sim”.').waitFor({ timeout: UPDATE_WAIT });

    const renamed = listedSource(page, 'plant-sim');
    await renamed.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await renamed.textContent(), /Blocked on this site/, 'the block followed the rename');
    await openSource(page, 'plant-sim');
    await page
      .getByRole('region', { name: 'Who may read it' })
      .getByRole('button', { name: 'Unblock plant-sim on this site' })
      .click();
    await page.getByText('plant-sim is no longer blocked on this site.').waitFor({ timeout: UPDATE_WAIT });
    await openPage(page, 'Data sources');
    await listedSource(page, 'plant-sim').waitFor();
    assert.doesNotMatch(await listedSource(page, 'plant-sim').textContent(), /Blocked on this site/);
  });

  test('the demo app is let read a new data source from its page, through the local hub’s consent page', async () => {
    await openPage(page, 'Data sources');
    await page.getByRole('button', { name: 'Add data source' }).click();
    const form = page.getByRole('form', { name: 'Add a data source' });
    await form.getByLabel('Kind').selectOption('simulated');
    await form.getByLabel('Name', { exact: true }).fill('line-7');
    await form.getByRole('button', { name: 'Add data source' }).click();
    await page.getByText('Added “line-7”.').waitFor({ timeout: UPDATE_WAIT });

    await openSource(page, 'line-7');
    const access = page.getByRole('region', { name: 'Who may read it' });
    const [consentTab] = await Promise.all([
      context.waitForEvent('page'),
      access.getByRole('button', { name: 'Let the demo app read this source' }).click(),
    ]);
    // Signed in already: the consent page, never the sign-in form.
    await consentTab.getByRole('heading', { level: 1, name: /to read your data\?/ }).waitFor({ timeout: UPDATE_WAIT });
    assert.equal(await consentTab.getByLabel('Password').count(), 0, 'asked to sign in');
    await consentTab.getByLabel('line-7', { exact: true }).check();
    await consentTab.screenshot({ path: path.join(artifacts, 'browser-local-hub-consent.png'), fullPage: true });
    await consentTab.getByRole('button', { name: 'Allow access' }).click();
    await consentTab.getByRole('heading', { level: 1 }).filter({ hasNotText: /to read your data\?/ }).waitFor({ timeout: UPDATE_WAIT });
    await consentTab.close();

    // The window learns of the new grant from the hub; its Apps page lists the demo app on line-7.
    await openPage(page, 'Apps');
    await page.getByRole('button', { name: /^Revoke .+ on line-7$/ }).waitFor({ timeout: UPDATE_WAIT });
    await openSource(page, 'line-7');
    assert.equal(
      await page.getByRole('button', { name: 'Let the demo app read this source' }).count(),
      0,
      'offered again once granted',
    );
    assert.match(await page.getByRole('list', { name: 'Apps that may read line-7' }).textContent(), /data\.read/);
    assert.deepEqual(problems, []);
  });
});
