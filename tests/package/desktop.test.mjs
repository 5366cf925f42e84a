// The desktop app's packages as `scripts/package` builds them, installed as people would and
// checked from the installed files: the .deb into a throw-away root with dpkg (its dependencies
// resolved against this Debian's package lists by apt, without installing anything), the .rpm
// unpacked with rpm2cpio and cpio (its file list and Requires read by rpm). From each, the
// installed `uplink-desktop --version` and `uplink-window --version` run.
//
// Run by `scripts/package --check`, which builds the packages first and passes them in
// UPLINK_DESKTOP_DEB and UPLINK_DESKTOP_RPM. A missing package or tool is a failure.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');
const version = readFileSync(join(repo, 'Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)[1];
const deb = process.env.UPLINK_DESKTOP_DEB;
const rpm = process.env.UPLINK_DESKTOP_RPM;

// What both packages must install.
const FILES = [
  '/usr/bin/uplink-desktop',
  '/usr/bin/uplink-window',
  '/usr/share/applications/uplink-desktop.desktop',
  '/usr/share/icons/hicolor/32x32/apps/uplink-desktop.png',
  '/usr/share/icons/hicolor/128x128/apps/uplink-desktop.png',
];

const run = (command, args, options = {}) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...options });

let scratch;
before(() => {
  assert.ok(deb && existsSync(deb), `no .deb to check (UPLINK_DESKTOP_DEB=${deb}): run scripts/package --check`);
  assert.ok(rpm && existsSync(rpm), `no .rpm to check (UPLINK_DESKTOP_RPM=${rpm}): run scripts/package --check`);
  for (const tool of ['dpkg', 'dpkg-deb', 'apt-get', 'rpm', 'rpm2cpio', 'cpio']) {
    assert.doesNotThrow(() => run('sh', ['-c', `command -v ${tool}`]), `${tool} is needed (scripts/package installs it)`);
  }
  scratch = mkdtempSync(join(tmpdir(), 'uplink-package-check-'));
});
after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Checks what the installed tree under `root` holds, and runs its programs. */
function checkInstalled(root, what) {
  for (const file of FILES) {
    assert.ok(existsSync(join(root, file)), `the ${what} installs ${file}`);
  }
  for (const program of ['uplink-desktop', 'uplink-window']) {
    const path = join(root, 'usr/bin', program);
    assert.ok(statSync(path).mode & 0o111, `${program} is executable`);
    assert.equal(run(path, ['--version']).trim(), `${program} ${version}`, `the installed ${program} runs`);
    // Every library it links is found on this machine, which has the packages' dependencies.
    const missing = run('ldd', [path]).split('\n').filter((line) => /not found/.test(line));
    assert.deepEqual(missing, [], `${program} from the ${what} finds its libraries`);
  }
  const entry = readFileSync(join(root, 'usr/share/applications/uplink-desktop.desktop'), 'utf8');
  assert.match(entry, /^Name=Uplink$/m, 'the menu shows "Uplink"');
  assert.match(entry, /^Exec=uplink-desktop$/m, 'the menu starts the tray process');
  assert.match(entry, /^Icon=uplink-desktop$/m);
  // The window (another process) carries this class, so the desktop shows it as Uplink.
  assert.match(entry, /^StartupWMClass=uplink-desktop$/m);
}

test('the .deb is uplink-desktop, its dependencies resolve in Debian, and it installs and runs', () => {
  const field = (name) => run('dpkg-deb', ['-f', deb, name]).trim();
  // Not `uplink`: that is the server package, which may be installed beside it.
  assert.equal(field('Package'), 'uplink-desktop');
  assert.equal(field('Version'), version);
  const depends = field('Depends').split(',').map((d) => d.trim().split(/\s/)[0]);
  for (const needed of ['libwebkit2gtk-4.1-0', 'libgtk-3-0']) {
    assert.ok(depends.includes(needed), `Depends names ${needed}: ${depends}`);
  }
  // apt resolves every dependency against this machine's Debian package lists (a simulation:
  // nothing is installed).
  let plan;
  try {
    plan = run('apt-get', ['install', '--simulate', '--no-install-recommends', '-o', 'Debug::NoLocking=1', resolve(deb)]);
  } catch (e) {
    assert.fail(`apt cannot install the .deb on this Debian: ${e.stderr || e.message}`);
  }
  assert.match(plan, /^Inst uplink-desktop /m, plan);

  const root = join(scratch, 'deb-root');
  for (const folder of ['var/lib/dpkg/updates', 'var/lib/dpkg/info', 'etc']) mkdirSync(join(root, folder), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-not-root', '--force-depends', '--log=/dev/null', '-i', deb]);
  const listed = run('dpkg', [`--root=${root}`, '-L', 'uplink-desktop']).split('\n');
  for (const file of FILES) assert.ok(listed.includes(file), `dpkg lists ${file} as uplink-desktop's`);
  checkInstalled(root, '.deb');
});

test('the .rpm is uplink-desktop, requires the Fedora names of its libraries, and unpacks and runs', () => {
  const query = (format) => run('rpm', ['-qp', '--queryformat', format, rpm]).trim();
  assert.equal(query('%{NAME}'), 'uplink-desktop');
  assert.equal(query('%{VERSION}'), version);
  const requires = run('rpm', ['-qpR', rpm]).split('\n').map((r) => r.trim().split(/\s/)[0]).filter(Boolean);
  for (const needed of ['webkit2gtk4.1', 'gtk3']) {
    assert.ok(requires.includes(needed), `Requires names ${needed}: ${requires}`);
  }
  const debianNames = requires.filter((r) => /^lib.*-\d+(\.\d+)*-\d+$|^libgtk-3-0$/.test(r));
  assert.deepEqual(debianNames, [], 'no Debian package names in an RPM');
  const files = run('rpm', ['-qpl', rpm]).split('\n');
  for (const file of FILES) assert.ok(files.includes(file), `the .rpm lists ${file}: ${files.join(' ')}`);

  const root = join(scratch, 'rpm-root');
  mkdirSync(root);
  run('sh', ['-c', 'rpm2cpio "$1" | cpio -idm --quiet', 'unpack', resolve(rpm)], { cwd: root });
  checkInstalled(root, '.rpm');
});
