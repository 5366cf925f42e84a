// The consent flow in real Chromium: sign in, see the consent page, tick one of two data
// sources, approve; the app's token reads the ticked source and not the other; the user
// revokes on the settings page (after confirming; Cancel keeps the grant); the app's next
// request is refused and the app stays listed as revoked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startHub, accessStatus, chromiumArgs, targetDir, USER, PASSWORD } from './hub-process.mjs';

const CLIENT_ID = 'browser-test-app';
const APP_NAME = 'Plant Dashboard';
let hub;
let callback;
let context;
let profileDir;

before(async () => {
  // The app's redirect target: a loopback server that records what the browser brings back.
  callback = await new Promise((resolveServer) => {
    const hits = [];
    const server = createServer((req, res) => {
      hits.push(new URL(req.url, 'http://127.0.0.1'));
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Signed in. You can close this page.</p>');
    });
    server.listen(0, '127.0.0.1', () => resolveServer({ server, hits, port: server.address().port }));
  });
  hub = await startHub([
    { name: APP_NAME, clientId: CLIENT_ID, public: true, redirectUri: 'http://127.0.0.1/callback' },
  ]);
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
  callback?.server.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

test('consent with a per-source choice, then revoke on the settings page', async () => {
  const page = await context.newPage();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`;
  const authorize = new URL(`${hub.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    scope: 'tags.read data.read',
    state: 'browser-state',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  await page.goto(authorize.href);
  assert.match(new URL(page.url()).pathname, /\/account\/login$/);
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await page.waitForURL(/\/account\/consent\?request=/);
  await page.getByRole('heading', { name: `Allow ${APP_NAME} to read your data?` }).waitFor();
  const historian = page.getByRole('checkbox', { name: /historian/ });
  const lab = page.getByRole('checkbox', { name: /lab/ });
  assert.equal(await historian.isChecked(), false, 'no data source is ticked by default');
  assert.equal(await lab.isChecked(), false, 'no data source is ticked by default');
  assert.ok(await page.getByText('Read current and historical values').isVisible(), 'scopes are in plain words');
  await historian.check();
  const shot = join(targetDir, 'artifacts', 'hub-consent.png');
  mkdirSync(join(targetDir, 'artifacts'), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });

  await page.getByRole('button', { name: 'Allow access' }).click();
  await page.waitForURL((u) => u.port === String(callback.port));
  // Chromium may also ask the app's origin for /favicon.ico: take the callback itself.
  const back = callback.hits.filter((u) => u.pathname === '/callback').at(-1);
  assert.ok(back, 'the browser came back to the app');
  assert.equal(back.searchParams.get('state'), 'browser-state');
  assert.equal(back.searchParams.get('iss'), hub.url);
  const code = back.searchParams.get('code');
  assert.ok(code, 'the app received a code');

  const tokenResponse = await hub.fetch(`${hub.url}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      client_id: CLIENT_ID,
    }),
  });
  assert.equal(tokenResponse.status, 200);
  const tokens = await tokenResponse.json();
  assert.equal(await accessStatus(hub, tokens.access_token, hub.sources.historian), 200, 'the ticked source is readable');
  assert.equal(await accessStatus(hub, tokens.access_token, hub.sources.lab), 403, 'the other source is not');

  await page.goto(`${hub.url}/account/settings`);
  await page.getByRole('heading', { name: APP_NAME }).waitFor();
  await page.screenshot({ path: join(targetDir, 'artifacts', 'hub-settings.png'), fullPage: true });

  // Revoking asks first, naming the app and the data source; Cancel keeps the grant.
  const revokeButton = page.getByRole('button', { name: `Revoke ${APP_NAME}'s access to historian` });
  await revokeButton.click();
  const question = page.getByRole('heading', { level: 1, name: `Revoke ${APP_NAME}'s access to historian?` });
  await question.waitFor();
  await page.screenshot({ path: join(targetDir, 'artifacts', 'hub-revoke-confirm.png'), fullPage: true });
  await page.getByRole('link', { name: 'Cancel' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your settings' }).waitFor();
  assert.equal(await accessStatus(hub, tokens.access_token, hub.sources.historian), 200, 'Cancel revoked nothing');
  assert.equal(await revokeButton.count(), 1, 'the grant is still listed');

  await revokeButton.click();
  await question.waitFor();
  await page.getByRole('button', { name: 'Revoke', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Access revoked' }).waitFor();
  assert.equal(await accessStatus(hub, tokens.access_token, hub.sources.historian), 403, 'the next request is refused');
  assert.equal(await page.getByRole('heading', { name: APP_NAME }).count(), 0, 'the app no longer holds grants');

  // The app stays listed, as revoked, so its owner still knows of it (and can block it on a site).
  const revoked = page.getByRole('list', { name: 'Revoked apps' }).getByRole('listitem').filter({ hasText: APP_NAME });
  assert.match(await revoked.textContent(), /revoked/);
  await page.screenshot({ path: join(targetDir, 'artifacts', 'hub-settings-revoked.png'), fullPage: true });
});
