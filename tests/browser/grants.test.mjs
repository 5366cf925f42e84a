// Grants are never lost by accident, in real headless Chromium against the real runtime
// (`uplink ui` on a fresh folder with the local hub, whose demo app holds a grant on the
// simulated source): renaming the source keeps the demo app's access, and once the app is
// revoked it stays on the Apps page as revoked, where Block on this site still works.
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

describe('Grants follow a renamed source, and a revoked app stays listed', { timeout: 300_000 }, () => {
  let server;
  let context;
  let userDataDir;
  let dataDir;
  let page;
  let appName;
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

  test('renaming the data source keeps the demo app’s access', async () => {
    await openPage(page, 'Apps');
    const onSimulated = page.getByRole('button', { name: /^Revoke .+ on simulated$/ });
    await onSimulated.waitFor({ timeout: UPDATE_WAIT });
    appName = (await onSimulated.getAttribute('aria-label')).replace(/^Revoke /, '').replace(/ on simulated$/, '');

    await openPage(page, 'Data sources');
    await page.getByRole('button', { name: 'Edit simulated', exact: true }).click();
    const form = page.getByRole('form', { name: 'Edit “simulated”' });
    await form.getByLabel('Name', { exact: true }).fill('plant-sim');
    await form.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved “plant-sim”.').waitFor({ timeout: UPDATE_WAIT });

    await openPage(page, 'Apps');
    // The hub learns the new name on the next registration; the grant is the same one.
    await page.getByRole('button', { name: `Revoke ${appName} on plant-sim` }).waitFor({ timeout: UPDATE_WAIT });
    assert.equal(await page.getByRole('button', { name: `Revoke ${appName} on simulated` }).count(), 0);
    await page.screenshot({ path: path.join(artifacts, 'browser-apps-after-rename.png'), fullPage: true });
  });

  test('a revoked app stays listed as revoked, and Block on this site works for it', async () => {
    await page.getByRole('button', { name: `Revoke all access for ${appName}` }).click();
    const dialog = page.getByRole('alertdialog', { name: `Revoke all of ${appName}’s access?` });
    await dialog.getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.getByText(`Revoked all of ${appName}’s access.`).waitFor({ timeout: UPDATE_WAIT });

    const revoked = page.getByRole('list', { name: 'Revoked apps' }).getByRole('listitem').filter({
      has: page.getByRole('heading', { name: appName, exact: true }),
    });
    await revoked.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await revoked.textContent(), /Revoked on /);
    assert.equal(await page.getByRole('button', { name: `Revoke all access for ${appName}` }).count(), 0, 'it holds no grant');

    await revoked.getByRole('button', { name: `Block ${appName} on this site` }).click();
    await page.getByText(`${appName} is blocked on this site.`).waitFor({ timeout: UPDATE_WAIT });
    await revoked.getByRole('button', { name: `Unblock ${appName} on this site` }).waitFor({ timeout: UPDATE_WAIT });
    assert.match(await revoked.textContent(), /Blocked on this site/);
    assert.equal(
      await page.getByRole('list', { name: 'Blocked on this site, with no grants' }).count(),
      0,
      'listed once, among the revoked apps',
    );
    await page.screenshot({ path: path.join(artifacts, 'browser-apps-revoked.png'), fullPage: true });
    assert.deepEqual(problems, []);
  });
});
