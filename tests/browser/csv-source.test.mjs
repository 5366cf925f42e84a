// The CSV data source's form in real headless Chromium against the real runtime (`uplink ui`
// on a fresh data folder), by visible labels: a relative path is refused with the reason; paths
// are chosen with the picker (the runtime's folder listing); an empty folder and the wrong
// delimiter are refused by the form (naming the delimiter the header uses) instead of passing as
// "Healthy, 0 tags"; a slow Test shows its time, keeps Add disabled and can be stopped, which
// stops the runtime's load (its log says so); bad rows show with their file and line in Test and
// in the list, and adding what Test just read does not read the file again.
//
// Needs `ui/dist` built and the `uplink` binary (see ui-process.mjs). Builds nothing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, artifacts, chromiumPath, dist, shoot, startUi, uplinkBin } from './ui-process.mjs';

// Only keeps a broken run from hanging; nothing here measures time.
const UPDATE_WAIT = 30_000;

/** The text shown for an input's problem, found through its aria-describedby. */
function problemOf(form, label) {
  return form
    .getByLabel(label, { exact: true })
    .evaluate((input) =>
      (input.getAttribute('aria-describedby') ?? '')
        .split(' ')
        .filter((id) => id.endsWith('-error'))
        .map((id) => document.getElementById(id)?.textContent ?? '')
        .join(' '),
    );
}

async function waitForProblem(form, label) {
  await form.getByLabel(label, { exact: true }).and(form.locator('[aria-invalid="true"]')).waitFor({ timeout: UPDATE_WAIT });
  return problemOf(form, label);
}

describe('The CSV data source form, served by `uplink ui`', { timeout: 300_000 }, () => {
  let server;
  let context;
  let userDataDir;
  let dataDir;
  let files;
  let page;
  let form;
  const problems = [];

  before(async () => {
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium)`);
    assert.ok(existsSync(uplinkBin), `uplink binary not found at ${uplinkBin} (cargo build -p uplink-cli)`);
    assert.ok(existsSync(path.join(dist, 'index.html')), `no built UI at ${dist} (npm run build in ui/)`);
    dataDir = mkdtempSync(path.join(tmpdir(), 'uplink-csv-data-'));
    files = mkdtempSync(path.join(tmpdir(), 'uplink-csv-files-'));
    mkdirSync(path.join(files, 'empty'));
    writeFileSync(path.join(files, 'semicolons.csv'), 'tag;timestamp;value\nFIC-1;2026-12-06T08:00:00Z;1.5\n');
    writeFileSync(
      path.join(files, 'plant.csv'),
      [
        'tag,timestamp,value',
        'FIC-1,2026-12-06T08:00:00Z,1.5',
        'FIC-1,2026-12-06T08:01:00Z,high',
        'TIC-2,2026-12-06T08:00:00Z,20.25',
        'TIC-2,yesterday,21',
        '',
      ].join('\n'),
    );
    server = startUi(dataDir);
    const served = await server.ready;
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
      // Refused forms answer 422, which Chromium logs; nothing else may be.
      if (message.type() === 'error' && !/status of 422/.test(message.text())) {
        problems.push(`console error: ${message.text()}`);
      }
    });
    await page.goto(served.url);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Data sources', exact: true }).click();
    await page.getByRole('button', { name: 'Add data source' }).click();
    form = page.getByRole('form', { name: 'Add a data source' });
    await form.getByLabel('Kind').selectOption('csv');
    await form.getByLabel('Name', { exact: true }).fill('plant-files');
  });

  after(async () => {
    if (page && !page.isClosed()) {
      await page.screenshot({ path: path.join(artifacts, 'browser-csv-last.png'), fullPage: true }).catch(() => {});
    }
    await context?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    }
    for (const dir of [userDataDir, dataDir, files]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(problems, []);
  });

  /** Chooses `name` in the picker opened at the folder of test files. */
  async function pick(name, { folder = false } = {}) {
    await form.getByLabel('File or folder', { exact: true }).fill(files);
    // The CSV form's one path field; the button is described by the field's label.
    const browse = form.getByRole('button', { name: 'Browse…' });
    assert.equal(await browse.getAttribute('aria-describedby'), await form.getByText('File or folder', { exact: true }).getAttribute('id'));
    await browse.click();
    const picker = page.getByRole('dialog', { name: 'Choose the file or folder' });
    const entries = picker.getByRole('list', { name: `Folders and files in ${files}` });
    await entries.waitFor({ timeout: UPDATE_WAIT });
    await entries.getByRole('button', { name: folder ? `${name}/` : name, exact: true }).click();
    if (folder) {
      await picker.getByRole('list', { name: `Folders and files in ${path.join(files, name)}` }).waitFor();
      await shoot(page, 'csv-picker');
      await picker.getByRole('button', { name: 'Choose this folder' }).click();
    }
    await picker.waitFor({ state: 'detached' });
    assert.equal(await form.getByLabel('File or folder', { exact: true }).inputValue(), path.join(files, name));
  }

  test('a relative path is refused with the reason, before anything is sent', async () => {
    await form.getByLabel('File or folder', { exact: true }).fill('data/plant.csv');
    await form.getByLabel('File or folder', { exact: true }).blur();
    const problem = await problemOf(form, 'File or folder');
    assert.match(problem, /^File or folder must be a full path from the root/);
    assert.match(problem, /a relative path would point somewhere else/);
  });

  test('an empty folder chosen with the picker is refused, not "Healthy, 0 tags"', async () => {
    await pick('empty', { folder: true });
    await form.getByRole('button', { name: 'Test' }).click();
    assert.match(await waitForProblem(form, 'File or folder'), /is a folder with no \.csv files in it/);
    assert.equal(await form.getByRole('region', { name: 'Test result' }).count(), 0);
  });

  test('the wrong delimiter is refused, naming the one the header uses', async () => {
    await pick('semicolons.csv');
    await form.getByRole('button', { name: 'Test' }).click();
    const problem = await waitForProblem(form, 'Delimiter');
    assert.match(problem, /but ; does: enter ; here/);
    await shoot(page, 'csv-delimiter');
    await form.getByLabel('Delimiter', { exact: true }).fill(';');
    await form.getByRole('button', { name: 'Test' }).click();
    const result = form.getByRole('region', { name: 'Test result' });
    await result.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await result.textContent(), /Healthy\s*1 tag/);
    await form.getByLabel('Delimiter', { exact: true }).fill(',');
  });

  test('a slow Test shows its time, keeps Add disabled, and Stop stops the load in the runtime', async () => {
    // A named pipe: the runtime's load waits on it for as long as this test pleases.
    mkdirSync(path.join(files, 'slow'));
    const feed = path.join(files, 'slow', 'feed.csv');
    execFileSync('mkfifo', [feed]);
    const writer = createWriteStream(feed);
    const writeFailed = new Promise((resolve) => writer.on('error', resolve));
    writer.write('tag,timestamp,value\nFIC-1,2026-12-06T08:00:00Z,1.5\n');
    await form.getByLabel('File or folder', { exact: true }).fill(feed);
    await form.getByLabel('Reload on change').uncheck();
    await form.getByRole('button', { name: 'Test' }).click();

    await form.getByRole('status').filter({ hasText: /^Testing… \d+ s$/ }).waitFor({ timeout: UPDATE_WAIT });
    assert.ok(await form.getByRole('button', { name: 'Add data source' }).isDisabled(), 'Add is enabled while Test runs');
    await page.screenshot({ path: path.join(artifacts, 'browser-csv-testing.png'), fullPage: true });
    await form.getByRole('button', { name: 'Stop test' }).click();
    await form.getByText('Test stopped before it finished; nothing was saved.').waitFor({ timeout: UPDATE_WAIT });
    assert.ok(await form.getByRole('button', { name: 'Add data source' }).isEnabled());
    assert.equal(await form.getByRole('region', { name: 'Test result' }).count(), 0);

    // The load itself stops at its next look at the flag, not at the end of the file.
    const rows = Array.from({ length: 10_000 }, (_, i) => `FIC-1,2026-12-06T08:00:${String(i % 60).padStart(2, '0')}Z,${i}`);
    const written = await Promise.race([
      new Promise((resolve) => writer.end(`${rows.join('\n')}\n`, () => resolve('written'))),
      writeFailed,
    ]);
    assert.equal(written, 'written', `the runtime closed the file early:\n${server.stderr()}`);
    const deadline = Date.now() + UPDATE_WAIT;
    while (!/CSV load abandoned/.test(server.stderr()) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(server.stderr(), /CSV load abandoned/);
    assert.doesNotMatch(server.stderr(), new RegExp(`CSV data loaded.*${feed}`));
    await form.getByLabel('Reload on change').check();
  });

  test('bad rows show with their file and line, in Test and in the list', async () => {
    await pick('plant.csv');
    await form.getByRole('button', { name: 'Test' }).click();
    const result = form.getByRole('region', { name: 'Test result' });
    await result.waitFor({ timeout: UPDATE_WAIT });
    assert.match(await result.textContent(), /Degraded\s*2 tags/);
    const found = result.getByRole('list', { name: 'Problems found' }).getByRole('listitem');
    assert.deepEqual(
      (await found.allTextContents()).map((text) => text.trim()),
      ["plant.csv, line 3: 'high' is not a number.", "plant.csv, line 5: 'yesterday' is not a time in the configured format."],
    );
    assert.equal(await found.first().locator('[title]').getAttribute('title'), path.join(files, 'plant.csv'));
    // In a 360 px window every tag name stays on one line ("FIC-" over "1" reads as two names).
    const size = page.viewportSize();
    await page.setViewportSize({ width: 360, height: 720 });
    const broken = await result.getByRole('table').locator('tbody tr td:first-child').evaluateAll((cells) =>
      cells
        .filter((cell) => {
          const text = document.createRange();
          text.selectNodeContents(cell);
          return text.getClientRects().length > 1;
        })
        .map((cell) => cell.textContent),
    );
    await page.setViewportSize(size);
    assert.deepEqual(broken, [], 'tag names broken across lines at 360 px');
    await shoot(page, 'csv-test-result');

    await form.getByRole('button', { name: 'Add data source' }).click();
    await page.getByText('Added “plant-files”.').waitFor({ timeout: UPDATE_WAIT });
    const listed = page.getByRole('list', { name: 'Data sources' }).getByRole('listitem').filter({
      has: page.getByRole('heading', { name: 'plant-files', exact: true }),
    });
    await listed.getByText("plant.csv, line 3: 'high' is not a number.").waitFor({ timeout: UPDATE_WAIT });
    // Add took the source Test had just read: the file was loaded once.
    const plant = path.join(files, 'plant.csv');
    const loads = server.stderr().split('\n').filter((line) => line.includes('CSV data loaded') && line.includes(plant));
    assert.equal(loads.length, 1, loads.join('\n'));
  });
});
