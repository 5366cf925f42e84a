// A mistyped address on the hub, in real Chromium: a page in the hub's style that says what is
// missing and leads back to the account, never a bare browser error; a mistyped API path stays
// the JSON `{code, message}` an app's error handling expects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startHub, chromiumArgs } from './hub-process.mjs';

let hub;
let context;
let profileDir;

before(async () => {
  hub = await startHub([]);
  profileDir = mkdtempSync(join(tmpdir(), 'uplink-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    args: chromiumArgs,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 900, height: 700 },
  });
});

after(async () => {
  await context?.close();
  await hub?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

test('an unknown page is a styled 404 that leads back to the account', async () => {
  const page = await context.newPage();
  const response = await page.goto(`${hub.url}/account/setings`);
  assert.equal(response.status(), 404);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  assert.match(await page.getByRole('alert').textContent(), /no page at \/account\/setings/);
  // Styled like every hub page: the stylesheet applies (the card has a border and padding).
  const padding = await page.locator('.card').evaluate((card) => getComputedStyle(card).paddingTop);
  assert.notEqual(padding, '0px');
  await page.getByRole('link', { name: 'Go to your account settings' }).click();
  await page.waitForURL(/\/account\/(login|settings)/);
  await page.close();
});

test('an unknown API path answers JSON with a stable code', async () => {
  const page = await context.newPage();
  const response = await page.goto(`${hub.url}/api/v1/no-such-route`);
  assert.equal(response.status(), 404);
  assert.match(response.headers()['content-type'], /application\/json/);
  const body = JSON.parse(await response.text());
  assert.equal(body.code, 'not_found');
  assert.match(body.message, /no route GET \/api\/v1\/no-such-route/);
  await page.close();
});
