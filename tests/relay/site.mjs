// Real processes for the relay tests: `uplink hub serve` with a user, an app and connectors
// seeded through the admin CLI; `uplink connector run` processes signed in with their
// administrator-issued credentials; and an app that obtains its token through the hub's real
// sign-in and consent pages.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import { admin, caFetch, field, serveHubProcess, uplinkBin, USER, PASSWORD } from '../hub/hub-process.mjs';

export { uplinkBin };
export const APP = 'dashboard';
export const REDIRECT = 'https://dashboard.example/callback';

/** Waits until `check()` returns a truthy value, or fails after `ms` with `what`. */
export async function eventually(what, check, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Peak and current resident memory of a process, in KiB. */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))[1]);
  return { peak: kib('VmHWM'), now: kib('VmRSS') };
}

function exited(child) {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
}

/** A hub on loopback: user ada, the confidential app `dashboard`, and `connectors` registered. */
export async function startHub(connectorNames) {
  const dataDir = mkdtempSync(join(tmpdir(), 'uplink-relay-hub-'));
  admin(dataDir, ['user', 'add', USER], `${PASSWORD}\n`);
  const app = admin(dataDir, ['app', 'add', '--name', 'Energy dashboard', '--client-id', APP, '--redirect-uri', REDIRECT]);
  const clientSecret = field(app, 'client_secret');
  const connectors = connectorNames.map((name) => {
    const out = admin(dataDir, ['connector', 'add', '--owner', USER, '--name', name]);
    return { name, id: field(out, 'connector_id'), credential: field(out, 'credential') };
  });
  const hub = { dataDir, clientSecret, connectors, port: 0 };
  await serveHub(hub);
  return hub;
}

/** (Re)starts the hub process of `hub` (same data dir; same port once it has one). */
export async function serveHub(hub) {
  const { child, url, caPath } = await serveHubProcess(hub.dataDir, hub.port);
  Object.assign(hub, {
    child,
    url,
    caPath,
    ca: readFileSync(caPath, 'utf8'),
    port: Number(new URL(url).port),
  });
  hub.fetch = caFetch(hub.ca);
  hub.stop = async () => {
    child.removeAllListeners('exit');
    child.kill('SIGINT');
    await exited(child);
  };
  return hub;
}

/** A connector process for `connector` (from startHub), signed in with its credential. */
export function prepareConnector(hub, connector) {
  const dataDir = mkdtempSync(join(tmpdir(), 'uplink-relay-connector-'));
  const credentialFile = join(dataDir, 'credential.txt');
  writeFileSync(credentialFile, `${connector.credential}\n`, { mode: 0o600 });
  execFileSync(uplinkBin, ['connector', 'register', '--hub', hub.url, '--id', connector.id,
    '--credential-file', credentialFile, '--ca-cert', hub.caPath, '--data-dir', dataDir], { stdio: 'pipe' });
  rmSync(credentialFile);
  return {
    dataDir,
    child: null,
    /** Starts `uplink connector run`, pinned to `transport` when given. */
    start(transport) {
      const args = ['connector', 'run', '--data-dir', dataDir];
      if (transport) args.push('--transport', transport);
      this.child = spawn(uplinkBin, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
      this.stderr = '';
      this.child.stderr.on('data', (d) => { this.stderr += d; });
      return this.child;
    },
    async stop(signal = 'SIGINT') {
      if (!this.child) return;
      this.child.kill(signal);
      await exited(this.child);
      this.child = null;
    },
    status() {
      const out = execFileSync(uplinkBin, ['connector', 'status', '--json', '--data-dir', dataDir], { encoding: 'utf8' });
      return JSON.parse(out);
    },
    policy(...args) {
      execFileSync(uplinkBin, ['connector', 'policy', ...args, '--data-dir', dataDir], { stdio: 'pipe' });
    },
  };
}

const SESSION = '__Host-uplink-session';

function sameOrigin(hub, cookie) {
  const headers = { origin: hub.url, 'sec-fetch-site': 'same-origin' };
  if (cookie) headers.cookie = `${SESSION}=${cookie}`;
  return headers;
}

function hiddenInput(html, name) {
  const marker = `name="${name}" value="`;
  const at = html.indexOf(marker);
  if (at < 0) throw new Error(`no hidden input ${name}`);
  return html.slice(at + marker.length, html.indexOf('"', at + marker.length));
}

/** Signs ada in through the login page; returns the session cookie. */
export async function signIn(hub) {
  const r = await hub.fetch(`${hub.url}/account/login`, {
    method: 'POST',
    headers: sameOrigin(hub),
    body: new URLSearchParams({ username: USER, password: PASSWORD }),
  });
  if (r.status !== 303) throw new Error(`sign-in answered ${r.status}`);
  return r.headers.get('set-cookie').match(new RegExp(`${SESSION}=([^;]+)`))[1];
}

/**
 * The dashboard app's authorization-code flow with PKCE through the hub's real pages, ada
 * ticking the data sources named `sourceNames` (and the alarms-and-events box of those named
 * in `eventsFrom`, with scope `events.read`); returns the access token.
 */
export async function consent(hub, sourceNames, scopes = ['data.read', 'tags.read'], { eventsFrom = [] } = {}) {
  const cookie = await signIn(hub);
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const query = new URLSearchParams({
    response_type: 'code', client_id: APP, redirect_uri: REDIRECT, scope: scopes.join(' '),
    state: 'relay-test', code_challenge: challenge, code_challenge_method: 'S256',
  });
  const authorize = await hub.fetch(`${hub.url}/oauth/authorize?${query}`, { headers: { cookie: `${SESSION}=${cookie}` } });
  const consentPath = authorize.headers.get('location');
  if (!consentPath?.startsWith('/account/consent')) throw new Error(`authorize sent us to ${consentPath}`);
  const page = await (await hub.fetch(`${hub.url}${consentPath}`, { headers: { cookie: `${SESSION}=${cookie}` } })).text();
  const form = page.slice(page.indexOf('action="/account/consent"'));
  const fields = new URLSearchParams({ request: hiddenInput(form, 'request'), csrf: hiddenInput(form, 'csrf'), decision: 'approve' });
  for (const scope of scopes) fields.append('scope', scope);
  for (const name of sourceNames) {
    // Each source's checkbox is followed by its label with the source's name.
    const boxes = [...form.matchAll(/name="source" value="(src_[^"]+)"[^>]*>\s*<label[^>]*>\s*(?:<[^>]+>\s*)*([^<]+)/g)];
    const match = boxes.find((m) => m[2].trim() === name);
    if (!match) throw new Error(`the consent page does not offer ${name}: ${boxes.map((m) => m[2]).join(', ')}`);
    fields.append('source', match[1]);
    if (eventsFrom.includes(name)) fields.append('events_source', match[1]);
  }
  const approved = await hub.fetch(`${hub.url}/account/consent`, { method: 'POST', headers: sameOrigin(hub, cookie), body: fields });
  const back = new URL(approved.headers.get('location'));
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`consent answered ${approved.status} ${back}`);
  const tokens = await hub.fetch(`${hub.url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${APP}:${hub.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
  });
  if (tokens.status !== 200) throw new Error(`token endpoint answered ${tokens.status}: ${await tokens.text()}`);
  return (await tokens.json()).access_token;
}

/** Revokes the dashboard app on every source through ada's settings page. */
export async function revokeOnHub(hub) {
  const cookie = await signIn(hub);
  const page = await (await hub.fetch(`${hub.url}/account/settings`, { headers: { cookie: `${SESSION}=${cookie}` } })).text();
  const form = page.slice(page.indexOf('action="/account/settings/revoke"'));
  const fields = new URLSearchParams({ csrf: hiddenInput(form, 'csrf'), app: hiddenInput(form, 'app'), confirm: 'yes' });
  const r = await hub.fetch(`${hub.url}/account/settings/revoke`, { method: 'POST', headers: sameOrigin(hub, cookie), body: fields });
  if (r.status !== 303) throw new Error(`revoke answered ${r.status}`);
}

/** GET on the data API with the token; the status and parsed JSON body. */
export async function api(hub, token, path) {
  const r = await hub.fetch(`${hub.url}/api/v1/${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: r.status, body, type: r.headers.get('content-type') };
}

/**
 * Streams a GET without keeping the body: counts NDJSON lines and bytes as they arrive,
 * calling `onChunk` after each piece (to sample memory while the answer flows).
 */
export function streamLines(hub, token, path, onChunk) {
  return new Promise((resolve, reject) => {
    const req = https.get(`${hub.url}/api/v1/${path}`, { ca: hub.ca, headers: { authorization: `Bearer ${token}`, accept: 'application/x-ndjson' } }, (res) => {
      let lines = 0;
      let bytes = 0;
      let first = null;
      let tail = '';
      res.on('data', (chunk) => {
        bytes += chunk.length;
        for (const byte of chunk) if (byte === 10) lines += 1;
        if (first === null) first = chunk.toString('utf8').split('\n')[0];
        tail = (tail + chunk.toString('utf8')).slice(-300);
        onChunk?.();
      });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], lines, bytes, first, tail, complete: res.complete }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
