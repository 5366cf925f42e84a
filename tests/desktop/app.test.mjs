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
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, consent, prepareConnector, serveHub, startHub, uplinkBin } from '../relay/site.mjs';
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
    ['xclip (reads the clipboard back)', '/usr/bin/xclip'],
    ['uplink (adds a data source, registers a connector)', uplinkBin],
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
  const dataDir = freshDataDir();
  const app = launch(['--data-dir', dataDir, '--local-hub'], { HOME: home });
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
    // The window appears only once its page has loaded, so its first frames are the UI and not
    // an empty window waiting for the page: the window process says it showed the window for
    // that reason, before the window was seen mapped.
    const openDeadline = Date.now() + 15_000;
    while (!windowViewable()) {
      assert.ok(Date.now() < openDeadline, 'the window is shown by Open');
      await sleep(5);
    }
    const mappedAt = Date.now();
    const windowLog = readFileSync(join(dataDir, 'logs', 'uplink-window.log'), 'utf8');
    const loaded = windowLog.split('\n').find((line) => line.includes("the window's page has loaded: showing the window"));
    assert.ok(loaded, `the window was shown because its page had loaded:\n${windowLog}`);
    assert.ok(Date.parse(loaded.split(/\s+/)[0]) <= mappedAt, `the page loaded before the window was mapped: ${loaded}`);
    assert.doesNotMatch(windowLog, /showing the window anyway/);
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

/** What the X clipboard holds, as another program reads it. */
const clipboardText = () =>
  execFileSync('xclip', ['-o', '-selection', 'clipboard'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });

test('the tray menu opens the hub, copies the connector id, and tells the last error and the latest request', async () => {
  const hub = await startHub(['plant']);
  const site = prepareConnector(hub, hub.connectors[0]);
  execFileSync(uplinkBin, ['sources', 'add', '--data-dir', site.dataDir, '--name', 'line1', '--kind', 'simulated'], { stdio: 'pipe' });
  // The system browser is a script that writes down what it was asked to open: $BROWSER is
  // where the app looks first, as every desktop's "open a web page" does.
  const browserDir = freshDataDir();
  const opened = join(browserDir, 'opened.txt');
  const browser = join(browserDir, 'browser.sh');
  writeFileSync(browser, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`, { mode: 0o755 });
  const app = launch(['--data-dir', site.dataDir], { BROWSER: browser });
  const informative = (items) => items.filter((i) => !i.enabled && /^Last (error|request): /.test(i.label ?? '')).map((i) => i.label);
  try {
    const tray = await waitFor('the tray on D-Bus', () => findTray(app.pid));
    const linked = await menuWhere(tray, 'the link to the hub', (items) => items.some((i) => /connected via/.test(i.label ?? '')), 90_000);
    const labels = linked.map((i) => i.label);
    assert.equal(labels[1], 'Open the hub', `the hub's pages are one click from the top: ${labels}`);
    assert.ok(labelled(linked, 'Open the hub').enabled, `Open the hub is offered: ${labels}`);
    assert.ok(labelled(linked, 'Copy connector id')?.enabled, `Copy connector id is offered: ${labels}`);
    assert.deepEqual(informative(linked), [], 'no error and no request to tell yet');

    // Copy connector id: another program reads the id from the clipboard.
    let held = '';
    try {
      held = clipboardText();
    } catch {
      // Nothing on the clipboard yet.
    }
    assert.notEqual(held, hub.connectors[0].id, 'the clipboard does not hold the id before the click');
    click(tray, labelled(linked, 'Copy connector id').id);
    const copied = await waitFor('the connector id on the clipboard', () => clipboardText(), 15_000);
    assert.equal(copied, hub.connectors[0].id);
    assert.equal(app.exitCode, null, 'the app keeps running (and serving its clipboard)');
    assert.equal(clipboardText(), hub.connectors[0].id, 'the id stays on the clipboard');

    // Open the hub: the system browser is asked for the hub's address.
    click(tray, labelled(linked, 'Open the hub').id);
    const url = await waitFor('the browser to be asked for the hub', () => existsSync(opened) && readFileSync(opened, 'utf8').trim(), 15_000);
    assert.equal(url.replace(/\/$/, ''), hub.url.replace(/\/$/, ''));

    // An app reads the data source through the hub: the menu names the latest request.
    const token = await consent(hub, ['line1']);
    const source = await waitFor('line1 online on the hub', async () => {
      const { status, body } = await api(hub, token, 'sources');
      return status === 200 && body.sources.find((s) => s.name === 'line1' && s.connector.online);
    }, 60_000);
    const read = await api(hub, token, `sources/${source.id}/snapshot?tags=sim.sinusoid.1`);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    const served = await menuWhere(tray, 'the latest request in the menu', (items) => informative(items).some((l) => l.startsWith('Last request: ')), 30_000);
    assert.match(informative(served).at(-1), /^Last request: Energy dashboard · line1 · (just now|\d+ min ago)$/, 'the app by its name, the source, how long ago');

    // The hub goes away: the reason is a disabled line under the state, with the request kept.
    await hub.stop();
    const failing = await menuWhere(tray, 'the last error in the menu', (items) => informative(items).some((l) => l.startsWith('Last error: ')), 60_000);
    const [error, request] = informative(failing);
    assert.match(error, /^Last error: \S.{3,}/, 'the error says what went wrong');
    assert.ok(error.length <= 73, `one short line: ${error}`);
    assert.match(request, /^Last request: Energy dashboard · line1 · /);
    assert.equal(labelled(failing, 'Copy connector id')?.enabled, true, 'the id is still there to copy while offline');

    click(tray, labelled(menuItems(tray), 'Quit Uplink').id);
    assert.deepEqual(await exitWithin(app, 15_000), { code: 0, signal: null });
  } finally {
    if (app.exitCode === null) app.kill('SIGKILL');
    await hub.stop().catch(() => {});
  }
});

// --- The window's live values and folder picker, under WebDriver ---------------------------

/** A WebDriver session on a window of the app running on `dataDir`, with helpers by visible label. */
async function windowSession(dataDir) {
  driver = spawn(driverBin, [], { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitFor('tauri-driver', async () => (await fetch(driverUrl + '/status', { signal: AbortSignal.timeout(2_000) })).ok);
  const session = await wd('POST', '/session', {
    capabilities: { alwaysMatch: { 'tauri:options': { application: windowBin, args: ['--data-dir', dataDir] } } },
  });
  const sid = session.sessionId;
  const element = (found) => Object.values(found)[0];
  const xpath = (value) => wd('POST', `/session/${sid}/element`, { using: 'xpath', value }).then(element);
  const literal = (text) => (text.includes('"') ? `'${text}'` : `"${text}"`);
  const w = {
    sid,
    run: (script, args = []) => wd('POST', `/session/${sid}/execute/sync`, { script, args }),
    /** The control a `<label>` with exactly this text names. */
    byLabel: (label) => xpath(`//*[@id=//label[normalize-space()=${literal(label)}]/@for]`),
    /** A button with exactly this text. */
    button: (text) => xpath(`//button[normalize-space()=${literal(text)}]`),
    xpath,
    click: (id) => wd('POST', `/session/${sid}/element/${id}/click`, {}),
    type: async (id, text) => {
      await wd('POST', `/session/${sid}/element/${id}/clear`, {});
      await wd('POST', `/session/${sid}/element/${id}/value`, { text });
    },
    property: (id, name) => wd('GET', `/session/${sid}/element/${id}/property/${name}`),
    text: () => wd('POST', `/session/${sid}/execute/sync`, { script: 'return document.body.innerText', args: [] }),
    async end() {
      await wd('DELETE', `/session/${sid}`).catch(() => {});
      driver?.kill();
      driver = undefined;
    },
  };
  return w;
}

test('in the desktop window a source page’s live values come from the runtime’s tag-values event, and Browse… picks a file from the runtime’s folder listing', async () => {
  const dataDir = freshDataDir();
  const files = freshDataDir();
  mkdirSync(join(files, 'archive'));
  writeFileSync(join(files, 'plant.csv'), 'time,tag,value\n2026-01-01T00:00:00Z,line1.flow,1.5\n');
  const app = launch(['--data-dir', dataDir, '--local-hub']);
  await waitFor('the app to publish its bridge', () => existsSync(join(dataDir, 'desktop-bridge.json')));
  const w = await windowSession(dataDir);
  try {
    await w.run("location.hash = '#/status'");
    await waitFor('the link to the local hub', async () => /Connected/.test(await w.text()), 90_000);

    // The simulated source's page, with every command the page sends from now on written down
    // and every `tag-values` event the window receives counted.
    await w.run("location.hash = '#/sources/simulated'");
    await waitFor('the source page', () => w.xpath("//h1[normalize-space()='simulated']"), 30_000);
    // Commands leave the page as requests to `ipc://localhost/<command>` (Tauri's IPC), so a
    // wrapped fetch sees each one.
    const installed = await w.run(
      'window.__commands = []; window.__tagValues = []; const real = window.fetch.bind(window);' +
        'window.fetch = (url, options) => {' +
        "  const match = /^ipc:\\/\\/localhost\\/([^?#]+)/.exec(String(url));" +
        '  if (match) window.__commands.push(decodeURIComponent(match[1]));' +
        '  return real(url, options);' +
        '};' +
        "return window.__TAURI__.event.listen('tag-values', (e) => window.__tagValues.push(e.payload)).then(() => window.__commands.length > 0);",
    );
    assert.equal(installed, true, 'the command log is in place');
    await w.type(await w.byLabel('Find tags'), 'sim.r?mp.*');
    await w.click(await w.button('Search'));
    const firstValue = () =>
      w.run(
        "const cell = document.querySelector('table[aria-label=\"Tags\"] td.value[data-tag^=\"sim.ramp.\"]');" +
          'return cell && /\\d/.test(cell.textContent) ? { tag: cell.dataset.tag, text: cell.textContent.trim() } : null;',
      );
    const before = await waitFor('a live value on screen', firstValue, 30_000);
    const after = await waitFor('the value on screen to change', async () => {
      const now = await w.run(
        `const cell = document.querySelector('td.value[data-tag="${before.tag}"]'); return cell ? cell.textContent.trim() : null;`,
      );
      return /\d/.test(now ?? '') && now !== before.text ? now : false;
    }, 30_000);
    assert.notEqual(after, before.text);
    const commands = await w.run('return window.__commands');
    assert.ok(commands.includes('search_tags'), `the search went through the logged path: ${commands}`);
    assert.ok(commands.includes('watch_tags'), `the page started a watch: ${commands}`);
    const asked = commands.filter((c) => !['search_tags', 'watch_tags', 'stop_watch'].includes(c) && !c.startsWith('plugin:event|'));
    assert.deepEqual(asked, [], 'the page asked for nothing else: the values were pushed');
    // The value on screen may first come from the search's own answer, so one event can be
    // all that changed it so far: the tag keeps changing, and more events keep coming.
    const carried = () =>
      w.run(
        `return window.__tagValues.filter((list) => JSON.stringify(list).includes(${JSON.stringify(JSON.stringify(before.tag))})).length`,
      );
    await waitFor(`two tag-values events carrying ${before.tag}`, async () => (await carried()) >= 2, 30_000);
    await sleep(500);
    await screenshot('desktop-source-page.png');

    // Browse…: the CSV form's picker lists the folder through the runtime and fills the path.
    await w.run("location.hash = '#/sources'");
    await w.click(await waitFor('the Data sources page', () => w.button('Add data source'), 30_000));
    await w.click(await w.xpath(`//*[@id=//label[normalize-space()='Kind']/@for]/option[@value='csv']`));
    const path = await w.byLabel('File or folder');
    await w.type(path, files);
    await w.click(await w.button('Browse…'));
    const listing = `//*[@role='dialog']//ul[@aria-label=${JSON.stringify(`Folders and files in ${files}`)}]`;
    await waitFor('the picker listing the folder', () => w.xpath(listing), 30_000);
    const entries = await w.run(
      `return [...document.querySelectorAll('[role="dialog"] ul button')].map((b) => b.textContent.trim())`,
    );
    assert.deepEqual(entries.sort(), ['archive/', 'plant.csv'], 'the folder’s entries, folders marked');
    await sleep(500);
    await screenshot('desktop-csv-picker.png');
    await w.click(await w.xpath(`${listing}//button[normalize-space()='plant.csv']`));
    await waitFor('the picker to close', async () => (await w.run('return document.querySelectorAll(\'[role="dialog"]\').length')) === 0, 10_000);
    assert.equal(await w.property(await w.byLabel('File or folder'), 'value'), join(files, 'plant.csv'));
  } finally {
    await w.end();
    app.kill('SIGTERM');
    assert.deepEqual(await exitWithin(app, 15_000), { code: 0, signal: null });
  }
});
