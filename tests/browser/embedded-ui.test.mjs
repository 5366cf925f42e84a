// `uplink ui` as the README runs it: from any folder, with no --dist, it serves the web UI built
// into the binary. Started from an empty temporary folder, the page loads in Chromium with its
// assets and no error.
//
// Needs the `uplink` binary built after `ui/dist` (see ui-process.mjs).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, chromiumPath, startUi, uplinkBin } from './ui-process.mjs';

const cleanup = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

test('`uplink ui` started in another folder serves the UI built into it', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath}`);
  assert.ok(existsSync(uplinkBin), `uplink binary not found at ${uplinkBin}`);
  const elsewhere = mkdtempSync(path.join(tmpdir(), 'uplink-elsewhere-'));
  cleanup.push(() => rmSync(elsewhere, { recursive: true, force: true }));
  const server = startUi(path.join(elsewhere, 'data'), { embedded: true, cwd: elsewhere });
  cleanup.push(async () => {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    }
  });
  const served = await server.ready;
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'uplink-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: chromiumPath, args: CHROMIUM_ARGS });
  cleanup.push(async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('requestfailed', (request) => problems.push(`${request.url()} failed`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.url()} answered ${response.status()}`);
  });
  await page.goto(served.url);
  await page.getByRole('heading', { level: 1, name: 'Status' }).waitFor();
  const styled = await page.evaluate(() => document.styleSheets.length);
  assert.ok(styled > 0, 'the page has no style sheet');
  assert.deepEqual(problems, []);
});
