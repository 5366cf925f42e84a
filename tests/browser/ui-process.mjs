// What the browser tests share: where the binaries and the built UI are, how Chromium is
// launched, and `uplink ui` started on a data dir with the URL it prints.
//
// Needs `ui/dist` built (`npm run build` in ui/) and the `uplink` binary at $UPLINK_BIN
// (default: ${CARGO_TARGET_DIR:-target}/debug/uplink from the repository root). Builds nothing.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const targetDir = path.resolve(repo, process.env.CARGO_TARGET_DIR || 'target');
export const uplinkBin = path.resolve(repo, process.env.UPLINK_BIN || path.join(targetDir, 'debug/uplink'));
export const dist = path.join(repo, 'ui/dist');
export const chromiumPath = '/usr/bin/chromium';
export const artifacts = path.join(targetDir, 'artifacts');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Starts `uplink ui` on `dataDir` (from `cwd` when given, with `env` added to its environment); `ready` resolves with its printed URL (and the origin and
 * token in it) once it is serving, or rejects with its stderr if it exits first.
 */
export function startUi(dataDir, { embedded = false, cwd = undefined, env: extraEnv = {} } = {}) {
  // `embedded`: the UI built into the binary, as a user runs it; otherwise ui/dist as built now.
  const args = embedded ? ['ui', '--data-dir', dataDir] : ['ui', '--dist', dist, '--data-dir', dataDir];
  const env = { ...process.env, ...extraEnv };
  delete env.UPLINK_UI_DIST;
  const child = spawn(uplinkBin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd, env });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const ready = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const match = /^UI ready at (http:\/\/127\.0\.0\.1:\d+\/)#token=([0-9a-f]{64})$/.exec(line);
      if (match) {
        resolve({ url: line.slice('UI ready at '.length), origin: match[1], token: match[2] });
      } else {
        reject(new Error(`unexpected line on stdout of \`uplink ui\`: ${line}`));
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      reject(new Error(`\`uplink ui\` exited (code ${code}, signal ${signal}) before it was ready:\n${stderr}`)),
    );
  });
  return { child, ready, stderr: () => stderr };
}

/** Screenshots of the page as it is: 1280×800 and 360 wide, light and dark; it must fit 360. */
export async function shoot(page, what) {
  const size = page.viewportSize();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    const suffix = scheme === 'dark' ? '-dark' : '';
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: path.join(artifacts, `browser-${what}${suffix}.png`), fullPage: true });
    await page.setViewportSize({ width: 360, height: 720 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: path.join(artifacts, `browser-${what}-360${suffix}.png`), fullPage: true });
    assert.ok(overflow <= 0, `the ${what} page is ${overflow}px wider than a 360px window`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(size);
}
