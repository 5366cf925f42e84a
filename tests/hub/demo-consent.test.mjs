// `uplink demo` prints a consent page for its demo app; walked in real Chromium as the demo
// user, Deny and Allow each land on the hub's page that says what happened, in the hub's style,
// never on a browser error (the demo app has no page of its own).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumArgs, targetDir, uplinkBin } from './hub-process.mjs';

let demo;
let demoDir;
let context;
let profileDir;
let printed;

before(async () => {
  demoDir = mkdtempSync(join(tmpdir(), 'uplink-demo-consent-'));
  demo = spawn(uplinkBin, ['demo', '--data-dir', demoDir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  printed = await new Promise((resolveOut, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${out}`)), 60_000);
    const onData = (d) => {
      out += d;
      if (/Ctrl-C stops the demo\./.test(out)) {
        clearTimeout(timer);
        resolveOut(out);
      }
    };
    demo.stdout.on('data', onData);
    demo.stderr.on('data', onData);
    demo.once('exit', (code) => reject(new Error(`the demo exited with ${code}:\n${out}`)));
  });
  profileDir = mkdtempSync(join(tmpdir(), 'uplink-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    args: chromiumArgs,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 900, height: 900 },
  });
});

after(async () => {
  await context?.close();
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGINT');
    await exited;
  }
  for (const dir of [profileDir, demoDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the demo app’s Deny and Allow land on a page that says what happened', async () => {
  const consentUrl = printed.match(/^\s+consent page\s+(\S+)$/m)?.[1];
  assert.ok(consentUrl, `the demo prints its consent page:\n${printed}`);
  const [, user, password] = printed.match(/^\s+sign in as\s+(\S+) \/ (\S+)$/m) ?? [];
  assert.ok(password, `the demo prints how to sign in:\n${printed}`);
  mkdirSync(join(targetDir, 'artifacts'), { recursive: true });

  const page = await context.newPage();
  await page.goto(consentUrl);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: /^Allow Uplink demo app to / }).waitFor();
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.getByRole('heading', { level: 1, name: 'You denied access' }).waitFor();
  assert.match(await page.locator('main').textContent(), /got no access to your data/);
  const padding = await page.locator('.card').evaluate((card) => getComputedStyle(card).paddingTop);
  assert.notEqual(padding, '0px', 'styled like every hub page');
  await page.screenshot({ path: join(targetDir, 'artifacts', 'hub-returned-denied.png'), fullPage: true });

  await page.goto(consentUrl);
  await page.getByRole('heading', { name: /^Allow Uplink demo app to / }).waitFor();
  await page.getByRole('checkbox', { name: /^simulated/ }).check();
  await page.getByRole('button', { name: 'Allow access' }).click();
  await page.getByRole('heading', { level: 1, name: 'Access allowed' }).waitFor();
  const text = await page.locator('main').textContent();
  assert.match(text, /reads the data sources you ticked/);
  assert.doesNotMatch(text, new RegExp(new URL(page.url()).searchParams.get('code')), 'the code is never shown');
  await page.screenshot({ path: join(targetDir, 'artifacts', 'hub-returned-allowed.png'), fullPage: true });
  await page.getByRole('link', { name: 'Go to your account settings' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your settings' }).waitFor();
});
