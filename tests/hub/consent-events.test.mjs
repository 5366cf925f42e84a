// The consent page in real Chromium for an app asking for values and alarms: a real connector
// process announces its simulated source (which has alarms and events) beside two sources
// without; the page offers "Alarms and events from simulated" as a tick of its own, unticked,
// and none for the others. Ticking the source alone lets the app read values but not events;
// consenting again with the events box ticked lets it read the source's alarms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { admin, caFetch, chromiumArgs, field, serveHubProcess, USER, PASSWORD } from './hub-process.mjs';
import { eventually, prepareConnector } from '../relay/site.mjs';

const CLIENT_ID = 'alarm-board';
const APP_NAME = 'Alarm board';
let hub;
let connector;
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
  const dataDir = mkdtempSync(join(tmpdir(), 'uplink-hub-events-'));
  admin(dataDir, ['user', 'add', USER], `${PASSWORD}\n`);
  const added = admin(dataDir, ['connector', 'add', '--owner', USER, '--name', 'Plant A']);
  const plant = { id: field(added, 'connector_id'), credential: field(added, 'credential') };
  admin(dataDir, ['source', 'add', '--connector', plant.id, '--name', 'historian', '--description', 'Process historian']);
  admin(dataDir, ['app', 'add', '--name', APP_NAME, '--client-id', CLIENT_ID, '--public',
    '--redirect-uri', 'http://127.0.0.1/callback', '--scope', 'data.read', '--scope', 'events.read']);
  const { child, url, caPath } = await serveHubProcess(dataDir, 0);
  hub = { dataDir, child, url, caPath, fetch: caFetch(readFileSync(caPath, 'utf8')) };
  connector = prepareConnector(hub, plant);
  connector.start();
  await eventually('the connector announces its simulated source', () =>
    admin(dataDir, ['source', 'list']).split('\n').some((line) => line.split('\t')[2] === 'simulated'));
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
  await connector?.stop();
  if (hub) {
    hub.child.kill('SIGINT');
    await new Promise((r) => (hub.child.exitCode !== null ? r() : hub.child.on('exit', r)));
    rmSync(hub.dataDir, { recursive: true, force: true });
  }
  if (connector) rmSync(connector.dataDir, { recursive: true, force: true });
  callback?.server.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

/** Opens the consent page for values and events; returns the page and how to finish. */
async function consentPage(signIn) {
  const page = await context.newPage();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`;
  const authorize = new URL(`${hub.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    scope: 'data.read events.read',
    state: 's',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  await page.goto(authorize.href);
  if (signIn) {
    await page.getByLabel('Username').fill(USER);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.getByRole('heading', { name: `Allow ${APP_NAME} to read your data?` }).waitFor();
  async function approve() {
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
    await page.close();
    return (await tokenResponse.json()).access_token;
  }
  return { page, approve };
}

async function sourceId() {
  const line = admin(hub.dataDir, ['source', 'list']).split('\n').find((l) => l.split('\t')[2] === 'simulated');
  return line.split('\t')[0];
}

async function get(token, path) {
  const r = await hub.fetch(`${hub.url}/api/v1/sources/${await sourceId()}/${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: r.status, body: await r.json() };
}

test('alarms and events are a tick of their own per source, unticked by default', async () => {
  const first = await consentPage(true);
  const { page } = first;
  const events = page.getByRole('checkbox', { name: 'Alarms and events from simulated' });
  assert.equal(await events.count(), 1, 'offered for the source that has events');
  assert.equal(await events.isChecked(), false, 'never ticked by default');
  assert.equal(
    await page.getByRole('checkbox', { name: /Alarms and events from historian/ }).count(),
    0,
    'not offered for a source without events',
  );
  const scope = page.getByLabel('See alarms and events from the data sources you choose');
  assert.equal(await scope.isChecked(), true, 'the permission is listed in plain words');
  // The source alone: values, not events.
  await page.getByRole('checkbox', { name: /^simulated/ }).check();
  const valuesOnly = await first.approve();
  const values = await get(valuesOnly, 'snapshot?tags=sim.ramp.1');
  assert.equal(values.status, 200, JSON.stringify(values.body));
  const refused = await get(valuesOnly, 'events?start=*-1h');
  assert.equal(refused.status, 403);
  assert.equal(refused.body.code, 'insufficient_scope');

  // Again, ticking the events box too.
  const second = await consentPage(false);
  await second.page.getByRole('checkbox', { name: /^simulated/ }).check();
  await second.page.getByRole('checkbox', { name: 'Alarms and events from simulated' }).check();
  const withEvents = await second.approve();
  const read = await get(withEvents, 'events?start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z&limit=5');
  assert.equal(read.status, 200, JSON.stringify(read.body));
  assert.equal(read.body.events.length, 5);
  assert.ok(read.body.next, 'more pages follow');
  assert.equal(read.body.events[0].source, 'simulated');
});
