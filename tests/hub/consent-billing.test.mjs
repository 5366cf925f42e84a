// The consent page in real Chromium for an app asking for the profile, billing and data:
// the choices come in that order, in plain words; the user picks a monthly spending limit by
// its label; the app charges within it; on the settings page the user sees what was spent,
// raises the limit, downloads the ledger and revokes billing, and the app's next debit fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startHub, admin, chromiumArgs, USER, PASSWORD } from './hub-process.mjs';

const CLIENT_ID = 'meter-app';
const APP_NAME = 'Meter';
let hub;
let callback;
let context;
let profileDir;

before(async () => {
  callback = await new Promise((resolveServer) => {
    const hits = [];
    const server = createServer((req, res) => {
      hits.push(new URL(req.url, 'http://127.0.0.1'));
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Signed in.</p>');
    });
    server.listen(0, '127.0.0.1', () => resolveServer({ server, hits, port: server.address().port }));
  });
  hub = await startHub([
    {
      name: APP_NAME,
      clientId: CLIENT_ID,
      public: true,
      redirectUri: 'http://127.0.0.1/callback',
      scopes: ['openid', 'profile', 'account.debit', 'data.read'],
    },
  ]);
  admin(hub.dataDir, ['account', 'credit', USER, '2000', '--note', 'top-up']);
  profileDir = mkdtempSync(join(tmpdir(), 'uplink-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    args: chromiumArgs,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 900, height: 1400 },
  });
});

after(async () => {
  await context?.close();
  await hub?.stop();
  callback?.server.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

async function debit(token, amount, key) {
  const r = await hub.fetch(`${hub.url}/api/v1/account/debits`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'idempotency-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ amount, description: 'a report' }),
  });
  return { status: r.status, body: await r.json() };
}

test('profile, billing with a chosen limit, then data: consent, charge, settings, revoke', async () => {
  const page = await context.newPage();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`;
  const authorize = new URL(`${hub.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    // Asked in another order: the page still shows profile, billing, data.
    scope: 'data.read account.debit openid profile',
    state: 's',
    nonce: 'n-1',
    spending_limit: '300',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  await page.goto(authorize.href);
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: `Allow ${APP_NAME} to read your data?` }).waitFor();

  const labels = await page.locator('form[action="/account/consent"] label').allTextContents();
  const at = (words) => labels.findIndex((l) => l.includes(words));
  assert.ok(at('Sign you in') >= 0 && at('See your name') > at('Sign you in'), labels.join(' | '));
  assert.ok(at('Charge your hub account') > at('See your name'), 'billing after the profile');
  assert.ok(at('Monthly spending limit') > at('Charge your hub account'), 'the limit under billing');
  assert.ok(at('historian') > at('Monthly spending limit'), 'data sources last');

  const limit = page.getByLabel(`Monthly spending limit for ${APP_NAME} (EUR)`);
  assert.equal(await limit.inputValue(), '3.00', "the app's suggestion");
  assert.equal(await page.getByLabel(/No monthly limit/).isChecked(), false, 'never unlimited by default');
  await limit.fill('7.50');
  await page.getByRole('checkbox', { name: /historian/ }).check();
  await page.getByRole('button', { name: 'Allow access' }).click();
  await page.waitForURL((u) => u.port === String(callback.port));
  const back = callback.hits.filter((u) => u.pathname === '/callback').at(-1);
  const tokenResponse = await hub.fetch(`${hub.url}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: back.searchParams.get('code'),
      redirect_uri: redirectUri,
      code_verifier: verifier,
      client_id: CLIENT_ID,
    }),
  });
  assert.equal(tokenResponse.status, 200);
  const tokens = await tokenResponse.json();
  assert.ok(tokens.id_token, 'openid was granted');

  assert.equal((await debit(tokens.access_token, 500, 'd1')).status, 201);
  const over = await debit(tokens.access_token, 300, 'd2');
  assert.equal(over.status, 402);
  assert.equal(over.body.code, 'limit_reached');
  assert.equal(over.body.limitRemaining, 250, 'the 7.50 the user chose, less 5.00');

  await page.goto(`${hub.url}/account/settings`);
  await page.getByText('Spent this month: 5.00 EUR of your 7.50 EUR monthly limit.').waitFor();
  await page.getByLabel(`Monthly spending limit for ${APP_NAME} (EUR)`).fill('10');
  await page.getByRole('button', { name: `Save limit for ${APP_NAME}` }).click();
  await page.getByRole('status').filter({ hasText: 'Spending limit saved' }).waitFor();
  assert.equal((await debit(tokens.access_token, 300, 'd3')).status, 201, 'the raised limit holds');
  await page.reload();
  await page.getByText('Spent this month: 8.00 EUR of your 10.00 EUR monthly limit.').waitFor();
  await page.getByRole('cell', { name: /a report/ }).first().waitFor();

  const csv = await (await page.request.get(`${hub.url}/account/settings/ledger.csv`)).text();
  const rows = csv.trim().split('\n');
  assert.equal(rows[0], 'id,time,kind,app,amount,currency,description,refund_of,idempotency_key,grant');
  assert.equal(rows.length, 4, 'the credit and two debits');
  assert.ok(rows.some((r) => r.includes(',debit,meter-app,-300,EUR,a report,')), csv);

  await page.getByRole('button', { name: `Revoke billing of ${APP_NAME}` }).click();
  await page.getByRole('status').filter({ hasText: 'Billing revoked' }).waitFor();
  const after = await debit(tokens.access_token, 1, 'd4');
  assert.equal(after.status, 403, 'the next debit is refused');
  assert.equal(after.body.code, 'no_grant');
});
