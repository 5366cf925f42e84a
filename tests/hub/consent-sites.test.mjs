// Two of a user's sites may carry the same name (two machines both called "Boiler house"): the
// consent page, in real Chromium, shows them as two connectors, each with its own data sources
// and a line that tells them apart, never merged under one heading.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startHub, chromiumArgs, targetDir, USER, PASSWORD } from './hub-process.mjs';

const CLIENT_ID = 'sites-test-app';
const APP_NAME = 'Energy Report';
const SITE = 'Boiler house';
let hub;
let context;
let profileDir;

before(async () => {
  hub = await startHub(
    [{ name: APP_NAME, clientId: CLIENT_ID, public: true, redirectUri: 'http://127.0.0.1/callback' }],
    { connectors: [{ name: SITE, sources: ['steam'] }, { name: SITE, sources: ['feedwater'] }] },
  );
  profileDir = mkdtempSync(join(tmpdir(), 'uplink-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    args: chromiumArgs,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 900, height: 1000 },
  });
});

after(async () => {
  await context?.close();
  await hub?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

test('two connectors with the same name appear as two on the consent page', async () => {
  const page = await context.newPage();
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  const authorize = new URL(`${hub.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: 'http://127.0.0.1/callback',
    scope: 'data.read',
    state: 'sites',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  await page.goto(authorize.href);
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: `Allow ${APP_NAME} to read your data?` }).waitFor();

  const headings = page.getByRole('heading', { level: 2, name: SITE, exact: true });
  assert.equal(await headings.count(), 2, 'each connector has its own heading');
  const apart = page.getByText(new RegExp(`^One of 2 connectors named ${SITE}: this one was added `));
  assert.equal(await apart.count(), 2, 'each says it is one of two, and when it was added');
  assert.match(await apart.nth(0).textContent(), /offering (steam|feedwater)\.$/);
  assert.notEqual(await apart.nth(0).textContent(), await apart.nth(1).textContent());
  // The one connector with a name of its own needs no such line.
  assert.equal(await page.getByRole('heading', { level: 2, name: 'Plant A', exact: true }).count(), 1);
  assert.equal(await page.getByText(/connectors named Plant A/).count(), 0);
  for (const source of ['steam', 'feedwater', 'historian', 'lab']) {
    assert.equal(await page.getByRole('checkbox', { name: source }).count(), 1, `${source} is offered once`);
  }
  mkdirSync(join(targetDir, 'artifacts'), { recursive: true });
  await page.screenshot({ path: join(targetDir, 'artifacts', 'hub-consent-two-sites.png'), fullPage: true });
});
