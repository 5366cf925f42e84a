// A data source's page in real headless Chromium against the real runtime, served by `uplink ui
// --data-dir <fresh folder>` with the local hub: the simulated source's page is opened from the
// Data sources list; a wildcard search lists its tags; a live value changes on screen, pushed by
// the runtime; a trend of a tag draws the last hour from a plot query (the chart's canvas has
// drawn pixels and the page says how many points); "Try a query" answers rows with the `curl`
// request and the `uplink query` line; Events lists the source's recent alarms with their
// priority in words; Revoke on the page asks first. Screenshots at 1280×800 and 360 wide, light
// and dark.
//
// Needs `ui/dist` built and the `uplink` binary (see ui-process.mjs). Builds nothing.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, artifacts, chromiumPath, dist, shoot, startUi, uplinkBin } from './ui-process.mjs';

// Waiting limits for what the runtime does in the background; they only keep a broken run from
// hanging, nothing here measures time.
const LINK_WAIT = 60_000;
const UPDATE_WAIT = 30_000;

describe('A data source’s page against the real runtime, served by `uplink ui`', { timeout: 300_000 }, () => {
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
    assert.ok(existsSync(uplinkBin), `uplink binary not found at ${uplinkBin} (build it: cargo build -p uplink-cli)`);
    assert.ok(existsSync(path.join(dist, 'index.html')), `no built UI at ${dist} (run \`npm ci && npm run build\` in ui/)`);
    dataDir = mkdtempSync(path.join(tmpdir(), 'uplink-ui-data-'));
    server = startUi(dataDir);
    served = await server.ready;
    userDataDir = mkdtempSync(path.join(tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 800 },
    });
    mkdirSync(artifacts, { recursive: true });
    page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
  });

  after(async () => {
    if (page && !page.isClosed()) {
      await page.screenshot({ path: path.join(artifacts, 'browser-source-page-last.png'), fullPage: true }).catch(() => {});
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

  test('the simulated source’s page is reached from Data sources, with the local hub linked', async () => {
    await page.goto(served.url);
    await page.getByRole('button', { name: 'Use a local hub' }).click();
    await page.getByRole('region', { name: 'Link' }).getByText('Connected', { exact: true }).waitFor({ timeout: LINK_WAIT });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Data sources', exact: true }).click();
    await page.getByRole('link', { name: 'simulated', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'simulated' }).waitFor();
    assert.match(page.url(), /#\/sources\/simulated$/);
    // The navigation still says where the page belongs.
    const current = page.getByRole('navigation', { name: 'Main' }).locator('[aria-current="page"]');
    assert.equal(await current.textContent(), 'Data sources');
  });

  test('a wildcard search lists matching tags, and a live value changes on screen', async () => {
    await page.getByLabel('Find tags').fill('sim.r?mp.*');
    await page.getByRole('button', { name: 'Search' }).click();
    const table = page.getByRole('table', { name: 'Tags' });
    const names = table.getByRole('button', { name: /^Trend of / });
    await page.waitForFunction(
      () => [...document.querySelectorAll('table[aria-label="Tags"] tbody tr')].length > 0 &&
        [...document.querySelectorAll('table[aria-label="Tags"] tbody button')].every((b) => /^sim\.ramp\./.test(b.textContent)),
      null,
      { timeout: UPDATE_WAIT },
    );
    const listed = await names.allTextContents();
    assert.ok(listed.length > 0 && listed.every((n) => /^sim\.ramp\.\d+$/.test(n)), `listed: ${listed}`);

    const first = listed[0];
    const cell = table.locator(`td.value[data-tag="${first}"]`);
    await page.waitForFunction((sel) => /\d/.test(document.querySelector(sel)?.textContent ?? ''), `td.value[data-tag="${first}"]`, {
      timeout: UPDATE_WAIT,
    });
    const before = await cell.textContent();
    // The runtime pushes the next value; the page never asks for it.
    await page.waitForFunction(
      ([sel, was]) => {
        const now = document.querySelector(sel)?.textContent ?? '';
        return /\d/.test(now) && now !== was;
      },
      [`td.value[data-tag="${first}"]`, before],
      { timeout: UPDATE_WAIT },
    );
    const quality = await table.getByRole('row').filter({ has: page.getByRole('button', { name: `Trend of ${first}` }) }).textContent();
    assert.match(quality, /Good/);
  });

  test('a tag’s trend draws the last hour from a plot query and has data on its canvas', async () => {
    const tag = (await page.getByRole('table', { name: 'Tags' }).getByRole('button', { name: /^Trend of / }).first().textContent()).trim();
    await page.getByRole('button', { name: `Trend of ${tag}` }).click();
    const chart = page.getByRole('img', { name: `Trend of ${tag}, last 1 h` });
    await chart.waitFor();
    await page.waitForFunction(
      (label) => Number(document.querySelector(`[aria-label="${label}"]`)?.getAttribute('data-points') ?? 0) > 10,
      `Trend of ${tag}, last 1 h`,
      { timeout: UPDATE_WAIT },
    );
    // The canvas shows a line: some pixels differ from the background.
    const drawn = await chart.locator('canvas').evaluate((canvas) => {
      const context = canvas.getContext('2d');
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
      return painted;
    });
    assert.ok(drawn > 100, `the chart's canvas has only ${drawn} painted pixels`);
    await page.getByRole('button', { name: '8 h', exact: true }).click();
    await page.getByRole('img', { name: `Trend of ${tag}, last 8 h` }).waitFor();
    await page.getByRole('button', { name: '1 h', exact: true }).click();
    await chart.waitFor();
  });

  test('“Try a query” runs a query locally and shows rows, the curl request and the uplink query line', async () => {
    const form = page.getByRole('form', { name: 'Try a query' });
    await form.getByLabel('Query').selectOption('plot');
    await form.getByLabel('Start').fill('*-30m');
    await form.getByLabel('Intervals').fill('10');
    await form.getByRole('button', { name: 'Run query' }).click();
    const results = page.getByRole('table', { name: 'Query results' });
    await results.waitFor({ timeout: UPDATE_WAIT });
    assert.ok((await results.getByRole('row').count()) > 2, 'the query answered no rows');
    const curl = await page.getByLabel('curl command').textContent();
    assert.match(curl, /^curl --cacert "\$CA" -H "Authorization: Bearer \$TOKEN" 'https:\/\/(127\.0\.0\.1|localhost):\d+\/api\/v1\/sources\/[^/]+\/plot\?tag=sim\.[a-z]+\.\d+&start=\*-30m&end=\*&intervals=10'$/);
    const line = await page.getByLabel('uplink query command').textContent();
    assert.match(line, /^uplink query --data-dir \S+ --source simulated plot sim\.[a-z]+\.\d+ --start '\*-30m' --end '\*' --intervals 10$/);
    await page.getByRole('region', { name: 'Try a query' }).scrollIntoViewIfNeeded();
    await shoot(page, 'source-page');
  });

  test('Events lists the simulated source’s recent alarms, newest first, with their priority in words', async () => {
    const events = page.getByRole('region', { name: 'Events' });
    await events.getByRole('heading', { name: 'Events' }).waitFor();
    const table = events.getByRole('table', { name: 'Alarms and events' });
    await table.waitFor({ timeout: UPDATE_WAIT });
    const high = table
      .getByRole('row')
      .filter({ hasText: 'sim.square.1 is above its high limit' })
      .filter({ has: page.getByText('High', { exact: true }) });
    assert.ok((await high.count()) > 0, 'no High alarm of sim.square.1 is listed');
    const priorities = await table.locator('tbody tr td:nth-child(2)').allTextContents();
    assert.ok(priorities.length > 0 && priorities.length <= 200, `${priorities.length} events listed`);
    assert.ok(
      priorities.every((p) => ['Low', 'Medium', 'High', 'Critical'].includes(p.trim())),
      `priorities: ${[...new Set(priorities)]}`,
    );
    await events.getByRole('button', { name: 'Refresh' }).click();
    await events.getByRole('button', { name: 'Refresh' }).waitFor();
    await table.waitFor();
    assert.ok((await high.count()) > 0, 'the High alarm is gone after Refresh');
    await events.scrollIntoViewIfNeeded();
    await shoot(page, 'source-page-events');
  });

  test('who may read it names the demo app, and Revoke asks first', async () => {
    const apps = page.getByRole('list', { name: 'Apps that may read simulated' });
    await apps.waitFor({ timeout: UPDATE_WAIT });
    const revoke = apps.getByRole('button', { name: /^Revoke .+ on simulated$/ });
    const label = await revoke.first().getAttribute('aria-label');
    const appName = label.slice('Revoke '.length, -' on simulated'.length);
    await revoke.first().click();
    const dialog = page.getByRole('alertdialog', { name: `Revoke ${appName}?` });
    await dialog.waitFor();
    await page.screenshot({ path: path.join(artifacts, 'browser-source-page-revoke.png') });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await apps.getByRole('button', { name: label }).count(), 1, 'Cancel revoked the app');
    await revoke.first().click();
    await page.getByRole('alertdialog', { name: `Revoke ${appName}?` }).getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.getByText(`Revoked ${appName}’s access to simulated.`).waitFor({ timeout: UPDATE_WAIT });
    await page.getByText('No app holds a grant on this data source.', { exact: false }).waitFor({ timeout: UPDATE_WAIT });
    assert.deepEqual(problems, []);
  });
});
