// The real desktop app in a real window: WebDriver (tauri-driver + WebKitWebDriver) drives the
// window, and the tray menu is driven over D-Bus exactly as a desktop's tray host would.
// Run inside `xvfb-run -a dbus-run-session -- node --test tests/desktop/` (scripts/test does).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const repo = resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, 'target');
const appBin = process.env.UPLINK_DESKTOP_BIN ?? join(targetDir, 'debug', 'uplink-desktop');
const driverBin = process.env.TAURI_DRIVER ?? join(homedir(), '.cargo', 'bin', 'tauri-driver');
const artifacts = join(targetDir, 'artifacts');
const driverUrl = 'http://127.0.0.1:4444';

// A missing piece is a failure, never a skip.
before(() => {
  assert.ok(process.env.DISPLAY, 'no DISPLAY: run under xvfb-run');
  assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, 'no session bus: run under dbus-run-session');
  for (const [what, path] of [['desktop app', appBin], ['tauri-driver', driverBin], ['WebKitWebDriver', '/usr/bin/WebKitWebDriver']]) {
    assert.ok(existsSync(path), `${what} not found at ${path}`);
  }
  mkdirSync(artifacts, { recursive: true });
});

const expectedVersion = () => execFileSync(appBin, ['--version'], { encoding: 'utf8' }).trim().split(/\s+/).pop();

function screenshot(name) {
  const path = join(artifacts, name);
  execFileSync('import', ['-window', 'root', path]);
  assert.ok(statSync(path).size > 10_000, `${path} looks empty`);
  return path;
}

async function waitFor(what, probe, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

// --- WebDriver, with a timeout on every call ---------------------------------------------
async function wd(method, path, body) {
  const res = await fetch(driverUrl + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${res.status} ${JSON.stringify(json.value)}`);
  return json.value;
}

let driver;
after(() => driver?.kill());

test('the window shows the UI, which reads the app over IPC', async () => {
  // A driver left over from an earlier run would hold the port.
  try { execFileSync('pkill', ['-f', 'tauri-driver']); } catch { /* none running */ }
  driver = spawn(driverBin, [], { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitFor('tauri-driver', async () => (await fetch(driverUrl + '/status')).ok);
  const session = await wd('POST', '/session', {
    capabilities: { alwaysMatch: { 'tauri:options': { application: appBin, args: ['--show-window'] } } },
  });
  const sid = session.sessionId;
  try {
    const text = () => wd('POST', `/session/${sid}/execute/sync`, { script: 'return document.body.innerText', args: [] });
    const page = await waitFor('the About page with the version', async () => {
      const t = await text();
      return t.includes('About Uplink') && t.includes(expectedVersion()) ? t : false;
    });
    assert.match(page, /Desktop app/, 'the UI knows it runs in the desktop window');
    assert.doesNotMatch(page, /unauthori[sz]ed|unreachable|went wrong/i);
    const title = await wd('GET', `/session/${sid}/title`);
    assert.match(title, /^About — Uplink$/, 'the document title names the page');
    // Let the compositor paint before the screenshot.
    await sleep(1000);
    screenshot('desktop-about.png');
  } finally {
    await wd('DELETE', `/session/${sid}`).catch(() => {});
    driver.kill();
    driver = undefined;
  }
});

// --- The tray over D-Bus -------------------------------------------------------------------
const dbus = (dest, path, method, ...args) =>
  execFileSync('dbus-send', ['--session', '--print-reply', `--dest=${dest}`, path, method, ...args], {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

// The app's connection that exports the tray item (libayatana-appindicator's object path).
function findTray(pid) {
  const names = [...dbus('org.freedesktop.DBus', '/', 'org.freedesktop.DBus.ListNames').matchAll(/string "(:[\d.]+)"/g)].map((m) => m[1]);
  for (const name of names) {
    let owner;
    try {
      owner = dbus('org.freedesktop.DBus', '/', 'org.freedesktop.DBus.GetConnectionUnixProcessID', `string:${name}`);
    } catch { continue; }
    if (!owner.includes(`uint32 ${pid}`)) continue;
    let xml;
    try {
      xml = dbus(name, '/org/ayatana/NotificationItem', 'org.freedesktop.DBus.Introspectable.Introspect');
    } catch { continue; }
    const node = xml.match(/node name="([^"]+)"/);
    if (node) return { dest: name, menu: `/org/ayatana/NotificationItem/${node[1]}/Menu` };
  }
  return undefined;
}

function menuItems(tray) {
  const layout = dbus(tray.dest, tray.menu, 'com.canonical.dbusmenu.GetLayout', 'int32:0', 'int32:-1', 'array:string:');
  // Each child is `struct { int32 ID  array [ dict entry( string "KEY" variant TYPE VALUE ) … ] … }`.
  return layout.split(/variant\s+struct \{/).slice(1).map((chunk) => {
    const id = Number(chunk.match(/int32 (\d+)/)[1]);
    const label = chunk.match(/string "label"\s+variant\s+string "([^"]*)"/)?.[1];
    const enabled = !/string "enabled"\s+variant\s+boolean false/.test(chunk);
    const separator = /string "type"\s+variant\s+string "separator"/.test(chunk);
    return { id, label, enabled, separator };
  });
}

const click = (tray, id) =>
  dbus(tray.dest, tray.menu, 'com.canonical.dbusmenu.Event', `int32:${id}`, 'string:clicked', 'variant:int32:0', 'uint32:0');

function windowViewable() {
  try {
    return /Map State: IsViewable/.test(execFileSync('xwininfo', ['-name', 'Uplink'], { encoding: 'utf8', stdio: 'pipe' }));
  } catch {
    return false;
  }
}

// What a window manager's close button sends; the app must hide the window and keep running.
const closeWindow = () =>
  execFileSync('/usr/bin/python3', [join(import.meta.dirname, 'close_window.py'), 'Uplink'], { stdio: 'pipe', timeout: 10_000 });

test('the tray opens the window, closing only hides it, and Quit exits with code 0', async () => {
  const app = spawn(appBin, [], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((done) => app.on('exit', (code, signal) => done({ code, signal })));
  try {
    const tray = await waitFor('the tray menu on D-Bus', () => findTray(app.pid));
    const items = await waitFor('menu items', () => {
      const found = menuItems(tray);
      return found.some((i) => i.label === 'Quit Uplink') ? found : false;
    });
    const labelled = items.filter((i) => !i.separator);
    assert.equal(labelled[0].label, 'Open Uplink', 'Open comes first: some tray hosts deliver no icon clicks');
    assert.equal(labelled.at(-1).label, 'Quit Uplink');
    const status = labelled.find((i) => !i.enabled);
    assert.ok(status && /not linked to a hub/.test(status.label), 'a disabled line tells the link state');

    // Starts to the tray: no window on screen until Open.
    await sleep(1500);
    assert.equal(windowViewable(), false, 'the window stays hidden at start');
    click(tray, labelled[0].id);
    await waitFor('the window to be shown by Open', () => windowViewable(), 15_000);
    await sleep(1500);
    screenshot('desktop-tray-open.png');

    closeWindow();
    await waitFor('the window to hide on close', () => !windowViewable(), 10_000);
    await sleep(1000);
    assert.equal(app.exitCode, null, 'closing the window keeps the app running in the tray');
    click(tray, labelled[0].id);
    await waitFor('Open to show the window again', () => windowViewable(), 15_000);

    click(tray, labelled.at(-1).id);
    const result = await Promise.race([exited, sleep(15_000).then(() => 'still running')]);
    assert.deepEqual(result, { code: 0, signal: null }, 'Quit ends the app with code 0');
  } finally {
    if (app.exitCode === null) app.kill('SIGKILL');
  }
});
