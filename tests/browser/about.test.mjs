// The web UI in real headless Chromium, served by the real `uplink ui`: the About page shows
// what the binary reports, the access token leaves the address bar, and a page without the
// token shows the server's refusal in plain words.
//
// Needs `ui/dist` built and the `uplink` binary (see ui-process.mjs). Builds nothing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, artifacts, chromiumPath, dist, shoot, startUi, uplinkBin } from './ui-process.mjs';



/** The `dd` value of a row of the About page's detail list. */
function detail(page, label) {
  return page
    .locator('dl .row')
    .filter({ has: page.locator('dt', { hasText: new RegExp(`^${label}$`) }) })
    .locator('dd .value');
}

// The limit only keeps a broken run from hanging CI; nothing here measures time.
describe('About page in Chromium, served by `uplink ui`', { timeout: 120_000 }, () => {
  let server;
  let served;
  let context;
  let userDataDir;
  let dataDir;
  let version;

  before(async () => {
    // Loud failures, never skips: a missing part means this layer did not run.
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium)`);
    assert.ok(
      existsSync(uplinkBin),
      `uplink binary not found at ${uplinkBin} (build it: cargo build -p uplink-cli, or set UPLINK_BIN)`,
    );
    assert.ok(
      existsSync(path.join(dist, 'index.html')),
      `no built UI at ${dist} (run \`npm ci && npm run build\` in ui/)`,
    );

    const printed = execFileSync(uplinkBin, ['--version'], { encoding: 'utf8' }).trim();
    const match = /^uplink (\S+)$/.exec(printed);
    assert.ok(match, `\`uplink --version\` printed ${JSON.stringify(printed)}`);
    version = match[1];

    dataDir = mkdtempSync(path.join(tmpdir(), 'uplink-ui-data-'));
    server = startUi(dataDir);
    served = await server.ready;

    userDataDir = mkdtempSync(path.join(tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      args: CHROMIUM_ARGS,
      viewport: { width: 1024, height: 640 },
    });
    mkdirSync(artifacts, { recursive: true });
  });

  after(async () => {
    await context?.close();
    if (server && server.child.exitCode === null) {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    }
    for (const dir of [userDataDir, dataDir]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('shows the version, host and platform the binary reports, and hides the token', async () => {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });

    await page.goto(served.url);
    // Home is the Status page; the token has left the address bar before anything else.
    await page.getByRole('heading', { level: 1, name: 'Status' }).waitFor();
    const address = page.url();
    assert.ok(!address.includes(served.token), `token still in the address bar: ${address}`);
    assert.ok(!address.includes('token='), `token fragment still in the address bar: ${address}`);
    assert.equal(address, served.origin);
    assert.equal(await page.evaluate(() => window.location.hash), '');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('uplink.accessToken')), served.token);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'About' }).click();
    await detail(page, 'Version').waitFor();

    assert.equal(await detail(page, 'Version').textContent(), version);
    assert.equal(await detail(page, 'Running in').textContent(), 'Browser');
    assert.match(await detail(page, 'Platform').textContent(), /^\S+ \S+$/);
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'About Uplink');
    assert.equal(await page.getByRole('banner').first().textContent().then((t) => t.trim()), 'Uplink');
    assert.equal(
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'About' }).getAttribute('aria-current'),
      'page',
    );
    assert.equal(await page.title(), 'About — Uplink');

    assert.equal(page.url(), `${served.origin}#/about`);

    // Nothing was blocked by the served content security policy, nothing threw.
    assert.deepEqual(problems, []);

    // A reload keeps working: the token lives on in this tab, not in the URL.
    await page.reload();
    await detail(page, 'Version').waitFor();
    assert.equal(await detail(page, 'Version').textContent(), version);

    // 1280×800 and 360 wide, light and dark.
    await shoot(page, 'about');

    // Dark when the system is dark: the page background follows the colour scheme.
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await background();
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.notEqual(await background(), light, 'the page looks the same in dark mode');
    await page.emulateMedia({ colorScheme: 'light' });

    // Readable at 360 px: nothing wider than the window, navigation above the page.
    await page.setViewportSize({ width: 360, height: 720 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 360px window`);

    // Keyboard: the first Tab reaches the skip link, which moves focus to the page.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    await page.close();
  });

  test('a page opened without the token shows the server refusal in plain words', async () => {
    // The server's own sentence, as any client without the token gets it.
    const refusal = await fetch(new URL('ipc/app_info', served.origin), { method: 'POST', body: '{}' });
    assert.equal(refusal.status, 401);
    const { code, message } = await refusal.json();
    assert.equal(code, 'unauthorized');
    const shown = (text) => text.replaceAll('`', '').toLowerCase();

    for (const address of [served.origin, `${served.origin}#token=not-this-runs-token`]) {
      const page = await context.newPage(); // a new tab: its sessionStorage is empty
      await page.goto(address);
      const alert = page.getByRole('alert');
      await alert.waitFor();
      const text = await alert.textContent();
      assert.ok(shown(text).includes(shown(message)), `alert ${JSON.stringify(text)} lacks ${JSON.stringify(message)}`);
      assert.equal(await alert.getByRole('heading').textContent(), 'Open Uplink with its access link');
      assert.equal(await detail(page, 'Version').count(), 0, 'no release details without the token');
      assert.ok(!page.url().includes('token='), `token fragment still in the address bar: ${page.url()}`);
      if (address === served.origin) {
        await page.screenshot({ path: path.join(artifacts, 'browser-about-unauthorized.png'), fullPage: true });
      }
      await page.close();
    }
  });
});
