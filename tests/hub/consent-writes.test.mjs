// The consent page's write ticks in real Chromium, against a real hub and a real connector
// whose site turned writing on for one of its two simulated sources: writing is offered in
// plain words, as a box of its own under that source only, unticked; the user ticks it by its
// label; the app then writes to that source and only that one, and the settings page says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { admin, field, chromiumArgs, uplinkBin, USER, PASSWORD } from './hub-process.mjs';
import { serveHub, prepareConnector, eventually } from '../relay/site.mjs';

const CLIENT_ID = 'setpoints';
const APP_NAME = 'Setpoints';
let hub;
let plant;
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
  const dataDir = mkdtempSync(join(tmpdir(), 'uplink-writes-hub-'));
  admin(dataDir, ['user', 'add', USER], `${PASSWORD}\n`);
  admin(dataDir, ['app', 'add', '--name', APP_NAME, '--client-id', CLIENT_ID, '--public',
    '--redirect-uri', 'http://127.0.0.1/callback', '--scope', 'data.read', '--scope', 'data.write']);
  const out = admin(dataDir, ['connector', 'add', '--owner', USER, '--name', 'Plant A']);
  const connector = { id: field(out, 'connector_id'), credential: field(out, 'credential') };
  hub = { dataDir, port: 0 };
  await serveHub(hub);
  plant = prepareConnector(hub, connector);
  const add = (name, ...settings) => execFileSync(uplinkBin, ['sources', 'add', '--data-dir', plant.dataDir,
    '--name', name, '--kind', 'simulated', ...settings.flatMap((s) => ['--set', s])], { stdio: 'pipe' });
  add('line', 'writableTags=sim.ramp.*', 'sampleInterval=100ms');
  add('archive');
  plant.start();
  await eventually('both sources registered on the hub', () => {
    const sources = plant.status().sources.filter((s) => ['line', 'archive'].includes(s.name));
    return sources.length === 2 && sources.every((s) => s.hubId);
  });
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
  await plant?.stop();
  await hub?.stop();
  callback?.server.close();
  if (hub?.dataDir) rmSync(hub.dataDir, { recursive: true, force: true });
  if (plant?.dataDir) rmSync(plant.dataDir, { recursive: true, force: true });
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

async function put(token, sourceId, values) {
  const r = await hub.fetch(`${hub.url}/api/v1/sources/${sourceId}/values`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ values }),
  });
  return { status: r.status, body: await r.json() };
}

test('writing is ticked per data source by its label, only where the site allows it', async () => {
  const page = await context.newPage();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`;
  const authorize = new URL(`${hub.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    scope: 'data.read data.write',
    state: 's',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  await page.goto(authorize.href);
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: `Allow ${APP_NAME} to read your data?` }).waitFor();

  // The scope in plain words; a write box under the writable source only, unticked.
  await page.getByLabel(/Change values in the data sources you choose/).waitFor();
  const write = page.getByLabel('Change values in line', { exact: true });
  assert.equal(await write.isChecked(), false, 'never ticked by default');
  assert.equal(await page.getByLabel('Change values in archive', { exact: true }).count(), 0,
    'no write box where the site has writing off');
  const labels = await page.locator('form[action="/account/consent"] label').allTextContents();
  const at = (words) => labels.findIndex((l) => l.trim() === words);
  assert.equal(at('Change values in line'), at('line') + 1, `the box sits under its source: ${labels.join(' | ')}`);

  // Writing ticked without the source itself: refused, saying what to do.
  await write.check();
  await page.getByRole('button', { name: 'Allow access' }).click();
  await page.getByRole('alert').filter({ hasText: 'To let the app change values in line, tick line as a data source too.' }).waitFor();

  await page.getByRole('checkbox', { name: 'line', exact: true }).check();
  await page.getByRole('checkbox', { name: 'archive', exact: true }).check();
  await page.getByLabel('Change values in line', { exact: true }).check();
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
  const { access_token: token } = await tokenResponse.json();

  const ids = Object.fromEntries(plant.status().sources.map((s) => [s.name, s.hubId]));
  const written = await put(token, ids.line, [{ tag: 'sim.ramp.1', value: 12.5 }]);
  assert.equal(written.status, 200, JSON.stringify(written.body));
  assert.deepEqual(written.body.results, [{ tag: 'sim.ramp.1', result: 'ok' }]);
  const snapshot = await hub.fetch(`${hub.url}/api/v1/sources/${ids.line}/snapshot?tags=sim.ramp.1`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal((await snapshot.json()).values[0].value, 12.5, 'the source holds the written value');
  const refused = await put(token, ids.archive, [{ tag: 'sim.ramp.1', value: 1 }]);
  assert.equal(refused.status, 403, 'read, but not ticked for writing');
  assert.equal(refused.body.code, 'insufficient_scope');

  await page.goto(`${hub.url}/account/settings`);
  await page.getByText('May change values in line').waitFor();
  assert.equal(await page.getByText('Cannot change values').count(), 1, 'archive is read only');
});
