// What the browser tests share: where the binaries and the built UI are, how Chromium is
// launched, and `uplink ui` started on a data dir with the URL it prints.
//
// Needs `ui/dist` built (`npm run build` in ui/) and the `uplink` binary at $UPLINK_BIN
// (default: ${CARGO_TARGET_DIR:-target}/debug/uplink from the repository root). Builds nothing.

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
 * Starts `uplink ui` on `dataDir`; `ready` resolves with its printed URL (and the origin and
 * token in it) once it is serving, or rejects with its stderr if it exits first.
 */
export function startUi(dataDir) {
  const child = spawn(uplinkBin, ['ui', '--dist', dist, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
