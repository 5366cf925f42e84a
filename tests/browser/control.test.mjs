// The web UI in real headless Chromium against the real control runtime, served by `uplink ui
// --data-dir <fresh folder>`: a first-time user starts the local hub and sees the link come up,
// adds a simulated data source through its form (meeting a field error from the form and one
// from the runtime first), sees it listed, revokes the demo app (after confirming) and sees it
// go, and runs the connectivity test. Every page must fit a 360 px window and load with nothing
// blocked.
//
// Needs `ui/dist` built and the `uplink` binary (see ui-process.mjs). Builds nothing.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, artifacts, chromiumPath, dist, shoot, startUi, uplinkBin } from './ui-process.mjs';


// Waiting limits for what the runtime does in the background (linking, relaying a revoke); they
// only keep a broken run from hanging, nothing here measures time.
const LINK_WAIT = 60_000;
const UPDATE_WAIT = 30_000;


/** Opens a page of the UI through the main navigation, as a person would. */
async function openPage(page, name) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

/** The text shown for an input's problem, found through its aria-describedby. */
function problemOf(page, label) {
  return page.getByLabel(label, { exact: true }).evaluate((input) =>
    (input.getAttribute('aria-describedby') ?? '')
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

describe('The UI against the real runtime, served by `uplink ui`', { timeout: 300_000 }, () => {
  let server;
  let served;
  let context;
  let userDataDir;
  let dataDir;
  let page;
  const problems = [];

  before(async () => {
    // Loud failures, never skips: a missing part means this layer did not run.
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium)`);
    assert.ok(
      existsSync(uplinkBin),
      `uplink binary not found at ${uplinkBin} (build it: cargo build -p uplink-cli, or set UPLINK_BIN)`,
    );
    assert.ok(
      existsSync(path.join(dist, 'index.html')),
      `no built UI at ${dist} (run \`npm ci && npm run build\` in ui/)`,
    );
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
      // The form's deliberate bad value is refused with 422, which Chromium logs; nothing else may be.
      const refusedForm = /status of 422 \(Unprocessable Entity\)/.test(message.text());
      if (message.type() === 'error' && !refusedForm) problems.push(`console error: ${message.text()}`);
    });
  });

  after(async () => {
    if (page && !page.isClosed()) {
      await page.screenshot({ path: path.join(artifacts, 'browser-control-last.png'), fullPage: true }).catch(() => {});
    }
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

  test('a first run offers a local hub, and using it brings the link up', async () => {
    await page.goto(served.url);
    await page.getByRole('heading', { level: 1, name: 'Status' }).waitFor();
    await page.getByRole('heading', { name: 'Uplink is not linked to a hub yet' }).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'browser-status-first-run.png'), fullPage: true });
    await fitsIn360(page, 'status-first-run');

    await page.getByRole('button', { name: 'Use a local hub' }).click();
    const link = page.getByRole('region', { name: 'Link' });
    await link.getByText('Connected', { exact: true }).waitFor({ timeout: LINK_WAIT });
    assert.match(await page.getByTestId('link-explanation').textContent(), /link to the hub is up/);
    const hub = link.locator('dl .row').filter({ has: page.locator('dt', { hasText: /^Hub$/ }) }).locator('dd .value');
    assert.match(await hub.textContent(), /^https:\/\/(127\.0\.0\.1|localhost):\d+\/?$/);
    // Status says the hub is the local demo hub, not an organisation's.
    assert.match(await page.getByTestId('demo-hub').textContent(), /Local demo hub.*only its demo app can ask for data/s);
    await shoot(page, 'status');
  });

  test('the navigation stays in the same place on every page', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    const nav = page.getByRole('navigation', { name: 'Main' });
    const where = () =>
      nav.getByRole('link').evaluateAll((links) => links.map((a) => {
        const box = a.getBoundingClientRect();
        return [a.textContent, Math.round(box.x), Math.round(box.y), Math.round(box.width)];
      }));
    let first = null;
    for (const name of ['Status', 'Data sources', 'Apps', 'Activity', 'Diagnostics', 'Account', 'About']) {
      await openPage(page, name);
      const now = await where();
      first ??= now;
      assert.deepEqual(now, first, `the navigation moved on ${name}`);
    }
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  test('in a 360 px window every page’s link is in view, none hidden past the edge', async () => {
    await page.setViewportSize({ width: 360, height: 720 });
    const links = await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link')
      .evaluateAll((all) => all.map((a) => {
        const box = a.getBoundingClientRect();
        return { name: a.textContent.trim(), left: Math.round(box.left), right: Math.round(box.right) };
      }));
    assert.deepEqual(links.map((l) => l.name), ['Status', 'Data sources', 'Apps', 'Activity', 'Diagnostics', 'Account', 'About']);
    for (const link of links) {
      assert.ok(link.left >= 0 && link.right <= 360, `${link.name} is cut off at 360 px: ${JSON.stringify(link)}`);
    }
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  test('a simulated data source is added through its form, after a field error from each side', async () => {
    await openPage(page, 'Data sources');
    await page.getByRole('button', { name: 'Add data source' }).click();
    const form = page.getByRole('form', { name: 'Add a data source' });
    await form.getByLabel('Kind').selectOption('simulated');
    await form.getByLabel('Name', { exact: true }).fill('line-9');

    // Checked in the page as the field is left.
    await form.getByLabel('Tags per shape').fill('5000');
    await form.getByLabel('Tags per shape').blur();
    assert.equal(await problemOf(page, 'Tags per shape'), 'Tags per shape must be between 1 and 1000.');
    await form.getByLabel('Tags per shape').fill('2');
    await form.getByLabel('Tags per shape').blur();
    assert.equal(await problemOf(page, 'Tags per shape'), '');

    // Checked by the runtime: the page does not judge duration units.
    await form.getByLabel('Sample interval').fill('1x');
    await form.getByRole('button', { name: 'Add data source' }).click();
    await form.getByLabel('Sample interval').and(page.locator('[aria-invalid="true"]')).waitFor();
    assert.match(await problemOf(page, 'Sample interval'), /^Sample interval .+/);
    await page.screenshot({ path: path.join(artifacts, 'browser-source-form-error.png'), fullPage: true });

    await form.getByLabel('Sample interval').fill('1s');
    await form.getByRole('button', { name: 'Test' }).click();
    const result = form.getByRole('region', { name: 'Test result' });
    await result.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await result.textContent(), /Healthy/);
    assert.ok((await result.getByRole('row').count()) > 1, 'the test showed no sample values');
    await fitsIn360(page, 'source-form');

    await form.getByRole('button', { name: 'Add data source' }).click();
    await page.getByText('Added “line-9”.').waitFor({ timeout: UPDATE_WAIT });
    const listed = page.getByRole('list', { name: 'Data sources' }).getByRole('listitem').filter({
      has: page.getByRole('heading', { name: 'line-9', exact: true }),
    });
    await listed.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await listed.textContent(), /Simulated data/);
    await shoot(page, 'sources');
  });

  test('revoking the demo app takes it off the Apps page', async () => {
    await openPage(page, 'Apps');
    const revokeAll = page.getByRole('button', { name: /^Revoke all access for / });
    await revokeAll.first().waitFor({ timeout: UPDATE_WAIT });
    const label = await revokeAll.first().getAttribute('aria-label');
    const appName = label.slice('Revoke all access for '.length);
    await shoot(page, 'apps');

    // Revoking asks first; Cancel keeps the grant.
    await revokeAll.first().click();
    let dialog = page.getByRole('alertdialog', { name: `Revoke all of ${appName}’s access?` });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.getByRole('button', { name: `Revoke all access for ${appName}` }).count(), 1);
    await revokeAll.first().click();
    dialog = page.getByRole('alertdialog', { name: `Revoke all of ${appName}’s access?` });
    await dialog.getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.getByText(`Revoked all of ${appName}’s access.`).waitFor({ timeout: UPDATE_WAIT });
    await page.getByRole('region', { name: appName, exact: true }).waitFor({ state: 'detached', timeout: UPDATE_WAIT });
    assert.equal(await page.getByRole('button', { name: `Revoke all access for ${appName}` }).count(), 0);
  });

  test('Activity uses the width beside the navigation, with no column cut off', async () => {
    await openPage(page, 'Activity');
    for (const [width, height] of [[1280, 800], [960, 680]]) {
      await page.setViewportSize({ width, height });
      // The link history has rows once the link came up (no app has asked for data here).
      const table = page.getByRole('region', { name: 'Link history' }).locator('.table-scroll');
      await table.waitFor({ timeout: UPDATE_WAIT });
      const { clipped, used } = await table.evaluate((scroller) => ({
        clipped: scroller.scrollWidth - scroller.clientWidth,
        used: scroller.getBoundingClientRect().width / (window.innerWidth - document.querySelector('nav').getBoundingClientRect().width),
      }));
      assert.ok(clipped <= 0, `at ${width}×${height} the link history table is cut off by ${clipped}px`);
      assert.ok(used > 0.8, `at ${width}×${height} the link history table uses only ${Math.round(used * 100)}% of the width`);
      await page.screenshot({ path: path.join(artifacts, `browser-activity-${width}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  test('the connectivity test passes its checks against the local hub', async () => {
    await openPage(page, 'Diagnostics');
    await page.getByRole('button', { name: 'Run connectivity test' }).click();
    const checks = page.getByRole('list', { name: 'Checks' });
    const refused = page.getByRole('region', { name: 'Connectivity test' }).getByRole('alert');
    await Promise.race([checks.waitFor({ timeout: LINK_WAIT }), refused.waitFor({ timeout: LINK_WAIT })]);
    assert.equal(await refused.count(), 0, `the test was refused: ${await refused.first().textContent().catch(() => '')}`);
    const outcome = async (id) => {
      const item = checks.locator(`li[data-check="${id}"]`);
      return (await item.count()) === 0 ? 'missing' : (await item.textContent()).match(/Passed|Failed|Skipped/)?.[0];
    };
    for (const id of ['tcp', 'tls', 'negotiate', 'webSockets']) {
      assert.equal(await outcome(id), 'Passed', `check ${id}: ${await checks.textContent()}`);
    }
    assert.equal(await checks.getByText('Failed', { exact: true }).count(), 0, await checks.textContent());

    // The export names the zip it wrote, and it is there, in the data folder.
    await page.getByRole('button', { name: 'Export diagnostics' }).click();
    const written = page.getByText(/^Written to /);
    await written.waitFor({ timeout: UPDATE_WAIT });
    const zip = await written.locator('code').textContent();
    assert.ok(zip.startsWith(path.join(dataDir, 'diagnostics')), `the zip went to ${zip}`);
    assert.ok(existsSync(zip), `no zip at ${zip}`);
    await shoot(page, 'diagnostics');

    // The other pages render against the real runtime too.
    const loaded = { Activity: 'Link history', Account: 'Local hub' };
    for (const [name, region] of Object.entries(loaded)) {
      await openPage(page, name);
      await page.getByRole('region', { name: region }).waitFor();
      assert.equal(await page.getByRole('alert').count(), 0, `the ${name} page shows an error`);
      await shoot(page, name.toLowerCase());
    }
    assert.match(await page.getByRole('region', { name: 'Local hub' }).textContent(), /Running at/);

    // Nothing was blocked by the served content security policy, nothing threw.
    assert.deepEqual(problems, []);
  });

  test('when Uplink stops, the page says so and actions name the trouble', async () => {
    await openPage(page, 'Status');
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    await exited;

    await page.getByText('Live updates stopped.').waitFor({ timeout: UPDATE_WAIT });
    // The badge no longer vouches for a link state the window cannot see.
    const link = page.getByRole('region', { name: 'Link' });
    await link.getByText('Not connected to Uplink').waitFor();
    assert.equal(await link.getByText('Connected', { exact: true }).count(), 0);
    await page.getByRole('button', { name: 'Reconnect' }).click();
    const alert = page.getByRole('region', { name: 'Link' }).getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.textContent(), /Uplink is not answering/);
    await page.screenshot({ path: path.join(artifacts, 'browser-status-unreachable.png'), fullPage: true });
  });
});
