// The real desktop app in a real window. The app is two processes: `uplink-desktop` runs the
// connector and its tray (a StatusNotifierItem on the session bus) with no web view, and starts
// `uplink-window` when the window opens. WebDriver (tauri-driver + WebKitWebDriver) drives the
// window; the tray and its menu are driven over D-Bus exactly as a desktop's tray host would.
// Each app gets a fresh data dir and --local-hub, so it links to an embedded hub with a
// simulated source.
// Run inside `xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- node --test tests/desktop/`
// (scripts/test does).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { prepareConnector, serveHub, startHub } from '../relay/site.mjs';
import { admin } from '../hub/hub-process.mjs';
import { serveNotifications } from './notifications.mjs';

const repo = resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, 'target');
const appBin = process.env.UPLINK_DESKTOP_BIN ?? join(targetDir, 'debug', 'uplink-desktop');
const windowBin = join(appBin, '..', 'uplink-window');
const driverBin = process.env.TAURI_DRIVER ?? join(homedir(), '.cargo', 'bin', 'tauri-driver');
const artifacts = join(targetDir, 'artifacts');
const driverUrl = 'http://127.0.0.1:4444';

// A missing piece is a failure, never a skip.
before(() => {
  assert.ok(process.env.DISPLAY, 'no DISPLAY: run under xvfb-run');
  assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, 'no session bus: run under dbus-run-session');
  for (const [what, path] of [
    ['desktop app', appBin],
    ['desktop window', windowBin],
    ['tauri-driver', driverBin],
    ['WebKitWebDriver', '/usr/bin/WebKitWebDriver'],
    ['python3 with Xlib', '/usr/lib/python3/dist-packages/Xlib'],
  ]) {
    assert.ok(existsSync(path), `${what} not found at ${path}`);
  }
  mkdirSync(artifacts, { recursive: true });
});

const dataDirs = [];
function freshDataDir() {
  const dir = mkdtempSync(join(tmpdir(), 'uplink-desktop-test-'));
  dataDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

const expectedVersion = () => execFileSync(appBin, ['--version'], { encoding: 'utf8' }).trim().split(/\s+/).pop();

/**
 * Saves the whole screen as a test artifact (never into the working tree: `scripts/screenshots`
 * refreshes docs/ from the artifacts on purpose). A window WebKit has not painted yet is one flat
 * colour, a tiny PNG: wait for the paint (it comes late on a loaded machine), and fail if it never
 * comes.
 */
async function screenshot(name) {
  const path = join(artifacts, name);
  await waitFor(`a painted window in ${path}`, () => {
    execFileSync('import', ['-window', 'root', path], { timeout: 20_000 });
    return statSync(path).size > 10_000;
  }, 20_000);
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

/** Starts the app as a child process and remembers it, so no test leaves one running. */
const apps = new Set();
function launch(args, env = {}) {
  const child = spawn(appBin, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
  child.exited = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));
  apps.add(child);
  child.on('exit', () => apps.delete(child));
  return child;
}
const exitWithin = (child, ms) => Promise.race([child.exited, sleep(ms).then(() => 'still running')]);
after(() => {
  for (const child of apps) child.kill('SIGKILL');
});

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

test('the window shows the Status page linked to the local hub, and the UI reads the app over IPC', async () => {
  // The app starts to the tray; WebDriver then starts the window for the same data dir, which
  // finds the app through the bridge file the app publishes there.
  const dataDir = freshDataDir();
  const app = launch(['--data-dir', dataDir, '--local-hub']);
  await waitFor('the app to publish its bridge', () => existsSync(join(dataDir, 'desktop-bridge.json')));
  assert.equal(statSync(join(dataDir, 'desktop-bridge.json')).mode & 0o777, 0o600, 'only the owner may read the bridge file');
  driver = spawn(driverBin, [], { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitFor('tauri-driver', async () => (await fetch(driverUrl + '/status', { signal: AbortSignal.timeout(2_000) })).ok);
  const session = await wd('POST', '/session', {
    capabilities: {
      alwaysMatch: {
        'tauri:options': { application: windowBin, args: ['--data-dir', dataDir] },
      },
    },
  });
  const sid = session.sessionId;
  try {
    const run = (script, args = []) => wd('POST', `/session/${sid}/execute/sync`, { script, args });
    const invoke = async (cmd, args = {}) =>
      wd('POST', `/session/${sid}/execute/async`, {
        script:
          'const [cmd, args, done] = arguments; window.__TAURI_INTERNALS__.invoke(cmd, args)' +
          '.then((value) => done({ ok: value }), (error) => done({ error }));',
        args: [cmd, args],
      });

    // The Status page is open before the link is up: it turns Connected only because the app
    // pushes each status change to the window (the UI does not poll).
    await run("location.hash = '#/status'");
    const page = await waitFor(
      'the Status page showing Connected',
      async () => {
        const text = await run('return document.body.innerText');
        return /Connected/.test(text) && /https:\/\/127\.0\.0\.1:\d+/.test(text) ? text : false;
      },
      90_000,
    );
    assert.match(page, /WebSockets/, 'the Status page names the transport');
    assert.doesNotMatch(page, /went wrong|unauthori[sz]ed/i);
    const title = await wd('GET', `/session/${sid}/title`);
    assert.match(title, /^Status — Uplink$/, 'the document title names the page');

    // The runtime is linked to the embedded hub over WebSockets.
    const status = (await invoke('status')).ok;
    assert.equal(status?.connector?.link, 'connected', JSON.stringify(status));
    assert.equal(status.configured, true);
    assert.ok(status.localHub?.url?.startsWith('https://127.0.0.1'), JSON.stringify(status.localHub));
    assert.ok(page.includes(status.connector.hubUrl), 'the page shows the hub the runtime is linked to');
    assert.equal(status.connector.transport, 'WebSockets');
    assert.ok(status.connector.sources.length >= 1, 'the simulated data source is there');

    // Every change arrives as a `status` event: pausing and resuming from the window.
    await run(
      'window.__statusEvents = []; ' +
        "return window.__TAURI__.event.listen('status', (event) => window.__statusEvents.push(event.payload)).then(() => true);",
    );
    const events = () => run('return window.__statusEvents.map((s) => ({ paused: s.paused, link: s.connector.link }))');
    assert.deepEqual(await invoke('set_paused', { paused: true }), { ok: null });
    await waitFor('a paused status event', async () => (await events()).some((e) => e.paused));
    assert.deepEqual(await invoke('set_paused', { paused: false }), { ok: null });
    await waitFor(
      'a connected status event after resuming',
      async () => {
        const seen = await events();
        const resumed = seen.findIndex((e) => e.paused);
        return resumed >= 0 && seen.slice(resumed + 1).some((e) => !e.paused && e.link === 'connected');
      },
      60_000,
    );
    await waitFor('the page to show Connected again', async () => /Connected/.test(await run('return document.body.innerText')));

    // No remote content: the window refuses to leave the bundled UI.
    const here = await wd('GET', `/session/${sid}/url`);
    assert.match(here, /^(tauri:\/\/localhost|https?:\/\/tauri\.localhost)([/#]|$)/, 'the window shows the bundled UI');
    await run("location.href = 'https://example.invalid/'; return true");
    await sleep(1500);
    assert.equal(await wd('GET', `/session/${sid}/url`), here, 'navigating to a remote page is refused');
    assert.match(await run('return document.body.innerText'), /Connected/);

    // Commands outside the contract are refused inside the real webview too.
    const refused = await invoke('plugin:shell|execute', { program: 'sh' });
    assert.ok(refused.error, 'a command outside the capability is refused');
    const info = await invoke('app_info');
    assert.equal(info.ok?.version, expectedVersion());
    assert.equal(info.ok?.host, 'desktop');

    // Let the compositor paint before the screenshot.
    await sleep(1000);
    await screenshot('desktop-status.png');
  } finally {
    await wd('DELETE', `/session/${sid}`).catch(() => {});
    driver.kill();
    driver = undefined;
    // Stopping the app closes the window it served (its status stream ends), so the next
    // launches find neither running.
    app.kill('SIGTERM');
    assert.deepEqual(await exitWithin(app, 15_000), { code: 0, signal: null }, 'the app stops cleanly on SIGTERM');
    await waitFor('the window to close with the app', () => {
      try {
        execFileSync('pgrep', ['-f', `^${windowBin}`]);
      } catch {
        return true; // pgrep matched nothing
      }
      return false;
    }, 15_000);
    assert.equal(existsSync(join(dataDir, 'desktop-bridge.json')), false, 'the bridge file is withdrawn');
    // Each process keeps its own log in the data folder, the owner's alone.
    for (const log of ['uplink-desktop.log', 'uplink-window.log']) {
      const path = join(dataDir, 'logs', log);
      assert.ok(existsSync(path), `${log} is written`);
      assert.equal(statSync(path).mode & 0o777, 0o600, `only the owner may read ${log}`);
      assert.ok(readFileSync(path, 'utf8').length > 0, `${log} holds what the process logged`);
    }
    assert.match(readFileSync(join(dataDir, 'logs', 'uplink-desktop.log'), 'utf8'), /tray ready/);
  }
});

// --- The tray over D-Bus -------------------------------------------------------------------
const dbus = (dest, path, method, ...args) =>
  execFileSync('dbus-send', ['--session', '--print-reply', `--dest=${dest}`, path, method, ...args], {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

// The app's tray item: a StatusNotifierItem under the name the specification gives it
// (`org.kde.StatusNotifierItem-PID-N`), with its menu at /MenuBar.
function findTray(pid) {
  const names = dbus('org.freedesktop.DBus', '/', 'org.freedesktop.DBus.ListNames');
  const name = names.match(new RegExp(`string "(org\\.kde\\.StatusNotifierItem-${pid}-\\d+)"`))?.[1];
  return name && { dest: name, item: '/StatusNotifierItem', menu: '/MenuBar' };
}

/** A property of the tray item, as `dbus-send` prints it. */
const itemProperty = (tray, property) =>
  dbus(tray.dest, tray.item, 'org.freedesktop.DBus.Properties.Get', 'string:org.kde.StatusNotifierItem', `string:${property}`);

/** The libraries a process has mapped. */
const mappedLibraries = (pid) => readFileSync(`/proc/${pid}/maps`, 'utf8');

/** The menu as the tray host sees it: separators dropped, each item with its id, label, enabled and toggle state. */
function menuItems(tray) {
  const layout = dbus(tray.dest, tray.menu, 'com.canonical.dbusmenu.GetLayout', 'int32:0', 'int32:-1', 'array:string:');
  // Each child is `struct { int32 ID  array [ dict entry( string "KEY" variant TYPE VALUE ) … ] … }`.
  return layout
    .split(/variant\s+struct \{/)
    .slice(1)
    .map((chunk) => {
      const id = Number(chunk.match(/int32 (\d+)/)[1]);
      const label = chunk.match(/string "label"\s+variant\s+string "([^"]*)"/)?.[1];
      const enabled = !/string "enabled"\s+variant\s+boolean false/.test(chunk);
      const separator = /string "type"\s+variant\s+string "separator"/.test(chunk);
      const toggle = chunk.match(/string "toggle-state"\s+variant\s+int32 (\d+)/)?.[1];
      return { id, label, enabled, separator, checked: toggle === undefined ? undefined : toggle === '1' };
    })
    .filter((item) => !item.separator);
}

const click = (tray, id) =>
  dbus(tray.dest, tray.menu, 'com.canonical.dbusmenu.Event', `int32:${id}`, 'string:clicked', 'variant:int32:0', 'uint32:0');

/** Waits until the menu satisfies `check`, reading it afresh each time (the app replaces it on every change). */
const menuWhere = (tray, what, check, timeoutMs = 30_000) =>
  waitFor(what, () => {
    const items = menuItems(tray);
    return check(items) ? items : false;
  }, timeoutMs);
const labelled = (items, label) => items.find((i) => i.label === label);

function windowViewable() {
  try {
    return /Map State: IsViewable/.test(execFileSync('xwininfo', ['-name', 'Uplink'], { encoding: 'utf8', stdio: 'pipe', timeout: 10_000 }));
  } catch {
    return false;
  }
}

// WebKit's web content processes started for the app's window: they descend from the app,
// possibly through a launcher (`ps` cuts their name to 15 characters).
function webContentProcesses(pid) {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/));
  const parent = new Map(rows.map(([p, pp]) => [p, pp]));
  const descends = (p) => {
    for (let q = p, hops = 0; q && q !== '1' && hops < 16; q = parent.get(q), hops++) if (q === String(pid)) return true;
    return false;
  };
  return rows.filter(([p, , name]) => name.startsWith('WebKitWebProc') && descends(p)).map(([p]) => p);
}

// What a window manager's close button sends; the window goes away and the app keeps running.
const closeWindow = () =>
  execFileSync('/usr/bin/python3', [join(import.meta.dirname, 'close_window.py'), 'Uplink'], { stdio: 'pipe', timeout: 10_000 });

test('the tray shows the link, pauses and resumes it, opens the window, closing it keeps the app in the tray, and Quit exits with code 0', async () => {
  // A home of its own, so Start at login writes its autostart entry where the test can see it.
  const home = freshDataDir();
  mkdirSync(join(home, '.config'));
  const autostartDir = join(home, '.config', 'autostart');
  const app = launch(['--data-dir', freshDataDir(), '--local-hub'], { HOME: home });
  try {
    const tray = await waitFor('the tray menu on D-Bus', () => findTray(app.pid));
    const linked = await menuWhere(tray, 'the status line to say connected via WebSockets', (items) =>
      items.some((i) => !i.enabled && /^Uplink — connected via WebSockets — \d+ data sources?$/.test(i.label ?? '')),
    90_000);
    const labels = linked.map((i) => i.label);
    assert.match(itemProperty(tray, 'ToolTip'), /Uplink — connected via WebSockets — \d+ data sources?/, 'the tooltip says the state');
    assert.match(itemProperty(tray, 'IconPixmap'), /int32 64\s+int32 64/, 'the icon is a 64×64 picture');
    // The process that sits in the tray holds no web view, nor any toolkit.
    assert.doesNotMatch(mappedLibraries(app.pid), /libwebkit2gtk|libjavascriptcoregtk|libgtk-3/, 'the tray process maps no WebKit or GTK');
    assert.equal(labels[0], 'Open Uplink', 'Open comes first: some tray hosts deliver no icon clicks');
    assert.equal(labels.at(-1), 'Quit Uplink');
    for (const label of ['Reconnect', 'Pause link']) assert.ok(labelled(linked, label)?.enabled, `${label} is offered: ${labels}`);
    assert.equal(labelled(linked, 'Start at login')?.checked, false, `Start at login is an unchecked toggle: ${labels}`);
    assert.equal(labelled(linked, 'Sign in again'), undefined, 'Sign in again only shows when signed out');

    // Pause closes the link and the menu offers Resume; Resume links again.
    click(tray, labelled(linked, 'Pause link').id);
    const paused = await menuWhere(tray, 'the paused menu', (items) => labelled(items, 'Resume link') && items.some((i) => /— paused —/.test(i.label ?? '')));
    assert.equal(labelled(paused, 'Reconnect')?.enabled, false, 'no Reconnect while paused');
    click(tray, labelled(paused, 'Resume link').id);
    await menuWhere(tray, 'the link back after Resume', (items) => items.some((i) => /connected via WebSockets/.test(i.label ?? '')), 60_000);

    // Start at login writes the desktop's autostart entry and checks the item; again removes it.
    const autostartEntries = () => (existsSync(autostartDir) ? readdirSync(autostartDir).filter((f) => f.endsWith('.desktop')) : []);
    assert.deepEqual(autostartEntries(), []);
    click(tray, labelled(menuItems(tray), 'Start at login').id);
    await menuWhere(tray, 'Start at login checked', (items) => labelled(items, 'Start at login')?.checked === true);
    const [entry] = autostartEntries();
    assert.ok(entry, 'an autostart entry was written');
    assert.match(readFileSync(join(autostartDir, entry), 'utf8'), /^Exec=.*uplink-desktop/m);
    click(tray, labelled(menuItems(tray), 'Start at login').id);
    await menuWhere(tray, 'Start at login unchecked', (items) => labelled(items, 'Start at login')?.checked === false);
    assert.deepEqual(autostartEntries(), [], 'the autostart entry is gone');

    // Starts to the tray: no window on screen until Open, and no web view behind it either.
    assert.equal(windowViewable(), false, 'the window stays hidden at start');
    assert.deepEqual(webContentProcesses(app.pid), [], 'an app in the tray runs no web content process');
    click(tray, labelled(menuItems(tray), 'Open Uplink').id);
    await waitFor('the window to be shown by Open', () => windowViewable(), 15_000);
    // The window carries the app's class, which the desktop entry's StartupWMClass names, so the
    // desktop shows it as Uplink although another process draws it.
    assert.match(execFileSync('xprop', ['-name', 'Uplink', 'WM_CLASS'], { encoding: 'utf8', timeout: 10_000 }), /"uplink-desktop"/);
    await sleep(1500);
    await screenshot('desktop-tray-open.png');

    assert.ok(webContentProcesses(app.pid).length > 0, 'the open window has a web content process');
    closeWindow();
    await waitFor('the window to go on close', () => !windowViewable(), 10_000);
    await waitFor('its web content process to end with it', () => webContentProcesses(app.pid).length === 0, 15_000);
    // The window's size and place outlive its process.
    const windowState = join(home, '.config', 'dev.uplink.desktop', '.window-state.json');
    await waitFor('the window state to be saved as the window closes', () => existsSync(windowState), 10_000);
    const saved = JSON.parse(readFileSync(windowState, 'utf8')).main;
    assert.ok(saved?.width > 0 && saved?.height > 0, `the window's size is remembered: ${JSON.stringify(saved)}`);
    await sleep(1000);
    assert.equal(app.exitCode, null, 'closing the window keeps the app running in the tray');
    // A click on the icon itself (where the tray host delivers one) opens the window too.
    dbus(tray.dest, tray.item, 'org.kde.StatusNotifierItem.Activate', 'int32:0', 'int32:0');
    await waitFor('a click on the icon to show the window again', () => windowViewable(), 15_000);

    click(tray, labelled(menuItems(tray), 'Quit Uplink').id);
    assert.deepEqual(await exitWithin(app, 15_000), { code: 0, signal: null }, 'Quit ends the app with code 0');
    await waitFor('the open window to close with the app', () => !windowViewable(), 15_000);
  } finally {
    if (app.exitCode === null) app.kill('SIGKILL');
  }
});

test('a second launch shows the running app and exits at once', async () => {
  const first = launch(['--data-dir', freshDataDir()]);
  try {
    const tray = await waitFor('the first app in the tray', () => findTray(first.pid));
    await sleep(1000);
    assert.equal(windowViewable(), false, 'the first app starts to the tray');

    const second = launch(['--data-dir', freshDataDir()]);
    assert.deepEqual(await exitWithin(second, 20_000), { code: 0, signal: null }, 'the second launch exits with code 0');
    await waitFor('the first app to show its window', () => windowViewable(), 15_000);
    assert.equal(first.exitCode, null, 'the first app keeps running');

    click(tray, labelled(menuItems(tray), 'Quit Uplink').id);
    assert.deepEqual(await exitWithin(first, 15_000), { code: 0, signal: null });
  } finally {
    if (first.exitCode === null) first.kill('SIGKILL');
  }
});

test('a lost link to a real hub is notified once, however many retries follow, and its return once', async () => {
  const notifications = await serveNotifications();
  const hub = await startHub(['plant']);
  const site = prepareConnector(hub, hub.connectors[0]);
  const app = launch(['--data-dir', site.dataDir]);
  const shown = (pattern) => notifications.received.filter((n) => pattern.test(n.summary));
  try {
    const tray = await waitFor('the tray on D-Bus', () => findTray(app.pid));
    await menuWhere(tray, 'the link to the hub', (items) => items.some((i) => /connected via/.test(i.label ?? '')), 90_000);
    assert.deepEqual(notifications.received, [], 'nothing to announce while the link is up');

    await hub.stop();
    await menuWhere(tray, 'the tray to show the link down', (items) => items.some((i) => /— (reconnecting|offline|connecting) —/.test(i.label ?? '')), 30_000);
    const [lost] = await waitFor('the "link lost" notification', () => {
      const seen = shown(/lost its link/);
      return seen.length > 0 && seen;
    }, 60_000);
    assert.equal(lost.appName, 'Uplink');
    assert.ok(lost.body.length > 0, 'the notification says what happened');
    // The connector keeps retrying; the incident is still announced only once.
    await sleep(8_000);
    assert.equal(shown(/lost its link/).length, 1, JSON.stringify(notifications.received));

    await serveHub(hub);
    await waitFor('the "linked again" notification', () => shown(/linked again/).length > 0, 120_000);
    await menuWhere(tray, 'the tray to show the link back', (items) => items.some((i) => /connected via/.test(i.label ?? '')), 30_000);
    assert.equal(shown(/lost its link/).length, 1);
    assert.equal(shown(/linked again/).length, 1);
    assert.ok(shown(/linked again/)[0].at > lost.at, 'restored comes after lost');
  } finally {
    if (app.exitCode === null) app.kill('SIGKILL');
    await hub.stop().catch(() => {});
    notifications.close();
  }
});

test('a sign-in the hub no longer accepts is notified once, and "Sign in again" in the tray opens the window', async () => {
  const notifications = await serveNotifications();
  const hub = await startHub(['plant']);
  const site = prepareConnector(hub, hub.connectors[0]);
  const app = launch(['--data-dir', site.dataDir]);
  const expired = () => notifications.received.filter((n) => /sign in again/.test(n.summary));
  try {
    const tray = await waitFor('the tray on D-Bus', () => findTray(app.pid));
    await menuWhere(tray, 'the link to the hub', (items) => items.some((i) => /connected via/.test(i.label ?? '')), 90_000);
    assert.equal(labelled(menuItems(tray), 'Sign in again'), undefined, 'no "Sign in again" while the sign-in holds');

    // The hub's operator removes this connector: its credential is refused from the next link on.
    admin(hub.dataDir, ['connector', 'remove', hub.connectors[0].id]);
    click(tray, labelled(menuItems(tray), 'Reconnect').id);
    await menuWhere(tray, '"Sign in again" in the tray menu', (list) => labelled(list, 'Sign in again'), 60_000);
    const [notice] = await waitFor('the "sign in again" notification', () => expired().length > 0 && expired(), 30_000);
    assert.equal(notice.appName, 'Uplink');
    assert.match(notice.body, /Sign in again/, 'the notification says where to act');
    assert.doesNotMatch(JSON.stringify(notifications.received), /lost its link/, 'a refused sign-in is not reported as a lost link');
    await sleep(5_000);
    assert.equal(expired().length, 1, JSON.stringify(notifications.received));

    assert.equal(windowViewable(), false, 'the app is still in the tray');
    click(tray, labelled(menuItems(tray), 'Sign in again').id);
    await waitFor('the window to open for signing in', () => windowViewable(), 30_000);

    click(tray, labelled(menuItems(tray), 'Quit Uplink').id);
    assert.deepEqual(await exitWithin(app, 15_000), { code: 0, signal: null });
  } finally {
    if (app.exitCode === null) app.kill('SIGKILL');
    await hub.stop().catch(() => {});
    notifications.close();
  }
});
