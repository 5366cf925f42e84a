// Real processes for the cluster test: nats-server, three `uplink hub serve` replicas joined by
// it, and haproxy in front running the configuration docs/cluster.md ships, copied from the page.
// Every process is started here on loopback and stopped by its PID.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, caFetch, field, repoRoot, uplinkBin, USER, PASSWORD } from '../hub/hub-process.mjs';
import { APP, REDIRECT, api, consent, eventually, prepareConnector } from '../relay/site.mjs';

export const NATS_SERVER = '/usr/sbin/nats-server';
export const HAPROXY = '/usr/sbin/haproxy';

/** Fails loudly when a server the cluster needs is not installed (never a quiet skip). */
export function requireServers() {
  for (const [bin, pkg] of [[NATS_SERVER, 'nats-server'], [HAPROXY, 'haproxy']]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: install the Debian package ${pkg} (./scripts/test does)`);
  }
}

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function exited(child) {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
}

/** A child process with its standard error kept, stopped by PID. */
function run(bin, args, env = {}) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const proc = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { proc.stdout += d; });
  child.stderr.on('data', (d) => { proc.stderr += d; });
  proc.stop = async (signal = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid, signal);
    await exited(child);
  };
  return proc;
}

/** The haproxy configuration exactly as docs/cluster.md shows it. */
export function haproxyConfigFromDocs() {
  const doc = readFileSync(join(repoRoot, 'docs', 'cluster.md'), 'utf8');
  const block = doc.match(/<!-- haproxy.cfg begins -->\n```haproxy\n([\s\S]*?)```\n<!-- haproxy.cfg ends -->/);
  if (!block) throw new Error('docs/cluster.md has no haproxy configuration block');
  return block[1];
}

/** The newest installed PostgreSQL server's binaries (Debian's `postgresql` package). */
function postgresBin() {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${root}: install the Debian package postgresql (./scripts/test does)`);
  return join(root, versions.sort((a, b) => Number(a) - Number(b)).pop(), 'bin');
}

/** `program` as the `postgres` user when the test runs as root (the server refuses root). */
function asPostgres(program, args) {
  if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', program, ...args], { stdio: 'pipe' });
  else execFileSync(program, args, { stdio: 'pipe' });
}

/**
 * PostgreSQL on a loopback port of its own, in a folder of its own, with password sign-in for
 * the `uplink` role; `stop()` and `start()` take it down and bring it back on the same port
 * (`pg_ctl`, which waits for either).
 */
export async function startPostgres() {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'uplink-cluster-pg-'));
  const password = 'cluster-test-password';
  writeFileSync(join(dir, 'pw'), password);
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres:', dir]);
  asPostgres(join(bin, 'initdb'), ['-D', join(dir, 'data'), '--auth=scram-sha-256', '-U', 'uplink', '--no-sync', `--pwfile=${join(dir, 'pw')}`]);
  const port = await freePort();
  const pg = {
    port,
    url: (database) => `postgres://uplink:${password}@127.0.0.1:${port}/${database}?sslmode=disable`,
  };
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c max_connections=200`;
  pg.start = async () => asPostgres(join(bin, 'pg_ctl'), ['start', '-w', '-t', '60', '-D', join(dir, 'data'), '-l', join(dir, 'log'), '-o', options]);
  // Fast shutdown: connections are cut, the data folder kept.
  pg.stop = async () => asPostgres(join(bin, 'pg_ctl'), ['stop', '-w', '-m', 'fast', '-D', join(dir, 'data')]);
  pg.remove = async () => {
    try { await pg.stop(); } catch { /* already stopped */ }
    rmSync(dir, { recursive: true, force: true });
  };
  await pg.start();
  execFileSync(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'uplink', 'uplink_hub'],
    { env: { ...process.env, PGPASSWORD: password }, stdio: 'pipe' });
  return pg;
}

/**
 * The store every replica shares: one PostgreSQL database (`--database`), as docs/cluster.md
 * runs a cluster. The replicas also share one data folder for the files that stay out of the
 * database (the token keys, the loopback certificates), which `--backplane` allows.
 */
export function sharedStore(pg) {
  const dataDir = mkdtempSync(join(tmpdir(), 'uplink-cluster-hub-'));
  // By environment, as the admin verbs read it too: the URL holds a password, which a command
  // line would show to every user of the machine.
  process.env.UPLINK_HUB_DATABASE = pg.url('uplink_hub');
  return { dataDir, serveArgs: ['--data-dir', dataDir], adminDir: dataDir };
}

/** nats-server on a loopback port; `restart` brings it back on the same port. */
export async function startNats(port) {
  port ??= await freePort();
  const nats = { port, url: `nats://127.0.0.1:${port}` };
  nats.start = async () => {
    nats.proc = run(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)]);
    await eventually('nats-server listening', () => nats.proc.stderr.includes('Server is ready')
      || (nats.proc.child.exitCode !== null && Promise.reject(new Error(nats.proc.stderr))), 10000);
  };
  nats.stop = () => nats.proc.stop();
  await nats.start();
  return nats;
}

/** One hub replica on `port`, joined to `nats` (with `extraArgs` for `uplink hub serve`); resolves once it prints that it is ready. */
export async function startReplica(store, port, issuer, nats, extraArgs = []) {
  const metricsPort = await freePort();
  const proc = run(uplinkBin, ['hub', 'serve', ...store.serveArgs, '--listen', `127.0.0.1:${port}`,
    '--issuer', issuer, '--backplane', nats.url, '--metrics-listen', `127.0.0.1:${metricsPort}`, ...extraArgs],
  { RUST_LOG: process.env.RUST_LOG ?? 'warn' });
  await eventually(`replica on ${port} ready`, () => {
    if (proc.child.exitCode !== null) throw new Error(`replica exited: ${proc.stderr}`);
    return proc.stdout.includes('hub ready at');
  }, 30000);
  return { proc, port, metricsPort, url: `https://127.0.0.1:${port}` };
}

/** How many connector links a replica holds, from its metrics. */
export async function linksHeld(replica) {
  const r = await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics`);
  const text = await r.text();
  return text.split('\n').filter((l) => l.startsWith('uplink_hub_links{') || l.startsWith('uplink_hub_links '))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** haproxy in front of `replicas`, with the docs' configuration. */
export async function startHaproxy(dir, store, replicas, port) {
  const config = join(dir, 'uplink.cfg');
  writeFileSync(config, haproxyConfigFromDocs());
  // haproxy wants the certificate chain and its key in one file.
  const tls = join(store.dataDir, 'tls');
  const pem = join(dir, 'hub.pem');
  writeFileSync(pem, readFileSync(join(tls, 'cert.pem'), 'utf8') + readFileSync(join(tls, 'key.pem'), 'utf8'), { mode: 0o600 });
  const env = {
    UPLINK_LISTEN: `127.0.0.1:${port}`,
    UPLINK_CERT: pem,
    UPLINK_CA: join(tls, 'ca.pem'),
  };
  replicas.forEach((r, i) => { env[`UPLINK_HUB${i + 1}`] = `127.0.0.1:${r.port}`; });
  execFileSync(HAPROXY, ['-c', '-q', '-f', config], { env: { ...process.env, ...env }, stdio: 'pipe' });
  const proc = run(HAPROXY, ['-db', '-f', config], env);
  return { proc, port, url: `https://127.0.0.1:${port}`, config };
}

/** Seeds ada, the dashboard app (asking for `scopes`, else the default ones) and one connector through the admin CLI. */
export function seed(store, { scopes = [] } = {}) {
  admin(store.adminDir, ['user', 'add', USER], `${PASSWORD}\n`);
  const app = admin(store.adminDir, ['app', 'add', '--name', 'Energy dashboard', '--client-id', APP, '--redirect-uri', REDIRECT,
    ...scopes.flatMap((scope) => ['--scope', scope])]);
  const out = admin(store.adminDir, ['connector', 'add', '--owner', USER, '--name', 'Plant A']);
  return { clientSecret: field(app, 'client_secret'), connector: { name: 'Plant A', id: field(out, 'connector_id'), credential: field(out, 'credential') } };
}

/** A `hub` object the relay helpers (consent, api, streamLines) accept, for `url`. */
export function endpoint(url, ca, clientSecret) {
  return { url, ca, caPath: null, clientSecret, fetch: caFetch(ca) };
}

/**
 * The whole cluster as the test files use it: PostgreSQL, nats-server, three replicas (each
 * given `replicaArgs`), haproxy with the docs' configuration, the connector Plant A linked
 * through haproxy, and an app token for its simulated source. `stop()` ends every process it
 * started.
 */
export async function startCluster({ replicaArgs = [] } = {}) {
  requireServers();
  const dir = mkdtempSync(join(tmpdir(), 'uplink-cluster-'));
  const c = { replicas: [] };
  c.pg = await startPostgres();
  c.store = sharedStore(c.pg);
  const { clientSecret, connector } = seed(c.store);
  c.secret = clientSecret;
  c.seeded = connector;
  c.nats = await startNats();
  const frontPort = await freePort();
  c.issuer = `https://127.0.0.1:${frontPort}`;
  // The first replica alone creates the folder's keys and certificates; the others read them.
  for (let i = 0; i < 3; i += 1) c.replicas.push(await startReplica(c.store, await freePort(), c.issuer, c.nats, replicaArgs));
  c.ca = readFileSync(join(c.store.dataDir, 'tls', 'ca.pem'), 'utf8');
  c.front = await startHaproxy(dir, c.store, c.replicas, frontPort);
  c.front.hub = endpoint(c.front.url, c.ca, c.secret);
  c.front.hub.caPath = join(c.store.dataDir, 'tls', 'ca.pem');
  await eventually('haproxy serving', async () => (await c.front.hub.fetch(`${c.front.url}/readyz`)).status === 200, 15000);
  c.plant = prepareConnector(c.front.hub, connector);
  c.plant.start('websockets');
  await eventually('Plant A registered', () => c.plant.status().sources?.[0]?.hubId);
  c.token = await consent(c.front.hub, ['simulated']);
  const listed = await eventually('the simulated source online', async () => {
    const { status, body } = await api(c.front.hub, c.token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === 'simulated' && s.connector.online);
  });
  c.sourceId = listed.id;
  c.stop = async () => {
    await c.plant?.stop();
    await c.front?.proc.stop();
    for (const r of c.replicas) await r.proc.stop('SIGINT');
    await c.nats?.stop();
    await c.pg?.remove();
  };
  return c;
}

/** GET of an API path with `token`: status, the whole body's bytes, whether it ended normally. */
export function getApi(base, path, { ca, token, timeoutMs = 60000 }) {
  return new Promise((resolve, reject) => {
    const req = https.get(`${base}/api/v1/${path}`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), complete: res.complete, replica: res.headers['uplink-replica'] }));
      res.on('error', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), complete: false }));
      res.on('aborted', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), complete: false }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms: it hung`)));
    req.on('error', reject);
  });
}
