// A real hub for the Node tests: the `uplink` binary, a fresh data directory, users, apps and
// connectors seeded through the admin CLI, and data sources through `uplink hub source add`
// (until connectors report their sources over the link).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import https from 'node:https';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const targetDir = process.env.CARGO_TARGET_DIR ?? join(repoRoot, 'target');
export const uplinkBin = process.env.UPLINK_BIN ?? join(targetDir, 'debug', 'uplink');

export const USER = 'ada';
export const PASSWORD = 'correct horse battery staple';

/** Runs an admin command; returns its standard output. Fails loudly with stderr on error. */
export function admin(dataDir, args, input) {
  try {
    return execFileSync(uplinkBin, ['hub', ...args, '--data-dir', dataDir], {
      input: input ?? '',
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    throw new Error(`uplink hub ${args.join(' ')} failed: ${e.stderr}`);
  }
}

/** The value after `name: ` in admin output. */
export function field(output, name) {
  const line = output.split('\n').find((l) => l.startsWith(`${name}: `));
  if (!line) throw new Error(`no ${name} in: ${output}`);
  return line.slice(name.length + 2).trim();
}

/**
 * Seeds a user with one connector and two data sources, registers `apps`
 * ([{name, clientId, public, redirectUri, scopes?}]) and more of her connectors (`connectors`:
 * [{name, sources: [name…]}]), then serves the hub on a free loopback port.
 */
export async function startHub(apps, { connectors = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'uplink-hub-test-'));
  admin(dataDir, ['user', 'add', USER], `${PASSWORD}\n`);
  const connector = field(admin(dataDir, ['connector', 'add', '--owner', USER, '--name', 'Plant A']), 'connector_id');
  const historian = field(
    admin(dataDir, ['source', 'add', '--connector', connector, '--name', 'historian', '--description', 'Process historian: pressures, flows, temperatures']),
    'source_id',
  );
  const lab = field(
    admin(dataDir, ['source', 'add', '--connector', connector, '--name', 'lab', '--description', 'Laboratory results']),
    'source_id',
  );
  const more = [];
  for (const extra of connectors) {
    const id = field(admin(dataDir, ['connector', 'add', '--owner', USER, '--name', extra.name]), 'connector_id');
    const sources = {};
    for (const name of extra.sources) {
      sources[name] = field(admin(dataDir, ['source', 'add', '--connector', id, '--name', name]), 'source_id');
    }
    more.push({ id, sources });
  }
  const secrets = {};
  for (const app of apps) {
    const args = ['app', 'add', '--name', app.name, '--client-id', app.clientId, '--redirect-uri', app.redirectUri];
    if (app.public) args.push('--public');
    for (const scope of app.scopes ?? []) args.push('--scope', scope);
    const out = admin(dataDir, args);
    if (!app.public) secrets[app.clientId] = field(out, 'client_secret');
  }
  const { child, url, caPath } = await serveHubProcess(dataDir, 0);
  const ca = readFileSync(caPath, 'utf8');
  return {
    url,
    ca,
    dataDir,
    sources: { historian, lab },
    connectors: more,
    secrets,
    fetch: caFetch(ca),
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `uplink hub serve` on `dataDir` at 127.0.0.1:`port` (0: a free port) and waits until it
 * says it is ready; returns the process, its URL and the path of its loopback CA certificate.
 */
export async function serveHubProcess(dataDir, port) {
  const child = spawn(uplinkBin, ['hub', 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const { url, caPath } = await new Promise((resolveReady, reject) => {
    let out = '';
    let caPath;
    const timer = setTimeout(() => reject(new Error(`hub did not start: ${stderr}`)), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        if (line.startsWith('loopback CA certificate: ')) caPath = line.slice(25).trim();
        if (line.startsWith('hub ready at ')) {
          clearTimeout(timer);
          resolveReady({ url: line.slice(13).trim(), caPath });
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`hub exited with ${code}: ${stderr}`)));
  });
  return { child, url, caPath };
}

/**
 * A `fetch` that trusts the hub's loopback CA (and only it) and never follows redirects,
 * built on node:https so no global trust setting changes.
 */
export function caFetch(ca) {
  return async function fetchWithCa(input, init = {}) {
    const url = new URL(input instanceof Request ? input.url : input);
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    let body = init.body;
    if (body instanceof URLSearchParams) {
      if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      body = body.toString();
    }
    return new Promise((resolveResponse, reject) => {
      const req = https.request(url, { method, headers: Object.fromEntries(headers), ca }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            for (const value of Array.isArray(v) ? v : [v]) responseHeaders.append(k, value);
          }
          const status = res.statusCode;
          const payload = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
          const response = new Response(payload, { status, headers: responseHeaders });
          Object.defineProperty(response, 'url', { value: url.href });
          resolveResponse(response);
        });
      });
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  };
}

/** Bearer request to the protected endpoint; returns the status. */
export async function accessStatus(hub, token, sourceId) {
  const r = await hub.fetch(`${hub.url}/api/v1/sources/${sourceId}/access`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return r.status;
}

/** The Chromium flags for this machine (Debian's chromium, headless, no network extras). */
export const chromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];
