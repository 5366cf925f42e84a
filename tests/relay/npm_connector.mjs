// A connector written only from docs/protocol.md with the official @microsoft/signalr client:
// it signs in with client credentials and renews its token before expiry, registers one
// in-memory data source, answers search, snapshot and raw queries in acknowledged chunks,
// reconnects after a loss with backoff (and stops for good when the hub's Close says so), and
// reports what the hub told it as JSON lines on stdout. Each rule it follows cites the guide.
//
// Usage: node npm_connector.mjs HUB_URL CONNECTOR_ID CREDENTIAL_FILE TRANSPORT [PROTOCOL]
// (the hub's CA comes from NODE_EXTRA_CA_CERTS; PROTOCOL is `json`, the default, or
// `messagepack`, in which answer chunks go as bytes)
import { readFileSync } from 'node:fs';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

const [hubUrl, connectorId, credentialFile, transportName, protocolName = 'json'] = process.argv.slice(2);
const credential = readFileSync(credentialFile, 'utf8').trim();
const report = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

// §5: the Close reasons after which a connector must not reconnect.
const STOP_REASONS = [
  'replaced by a newer link of the same connector',
  'the connector was removed from the hub',
  "the connector's sign-in was revoked; sign it in again",
];

/** §1 "Getting an access token": client credentials; the answer says how long it lives. */
async function fetchToken() {
  const response = await fetch(`${hubUrl}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${connectorId}:${credential}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=connector',
  });
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}: ${await response.text()}`);
  return response.json();
}

let token = null;
let renewTimer = null;

/** §1: renew two thirds into `expires_in` less one second; RenewToken, and the factory's token. */
function scheduleRenewal(expiresIn) {
  clearTimeout(renewTimer);
  renewTimer = setTimeout(async () => {
    try {
      const fresh = await fetchToken();
      await connection.invoke('RenewToken', fresh.access_token);
      token = fresh.access_token;
      scheduleRenewal(fresh.expires_in);
    } catch (e) {
      report({ event: 'error', message: `token renewal: ${e}` });
    }
  }, Math.max(1, (expiresIn * 2) / 3 - 1) * 1000);
}

// The in-memory data source: one tag, a value per second for the last hour.
const TAG = { id: 'line-speed-1', name: 'Line.Speed', description: 'Speed of the press line', units: 'm/min', dataType: 'float', properties: {} };
const now = Date.now();
const samples = Array.from({ length: 3600 }, (_, i) => ({
  time: new Date(now - (3600 - i) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  value: 100 + (i % 60),
  status: 'good',
}));

const messagePack = protocolName === 'messagepack';
let builder = new signalR.HubConnectionBuilder()
  .withUrl(`${hubUrl}/hubs/connector`, {
    transport: signalR.HttpTransportType[transportName],
    accessTokenFactory: () => token,
  })
  .configureLogging(signalR.LogLevel.Warning);
if (messagePack) builder = builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();
const utf8 = new TextEncoder();
const cancelled = new Set();

// §2 Register: the Grants handler goes on before Register is called.
connection.on('Grants', (list) => { report({ event: 'grants', grants: list.grants }); });
connection.on('CancelQuery', (queryId, reason) => {
  cancelled.add(queryId);
  report({ event: 'cancelled', queryId, reason });
});
connection.on('Query', (query) => {
  answer(query).catch((e) => report({ event: 'error', message: String(e) }));
});

/**
 * §2 QueryChunk: chunks of at most 65 536 bytes of UTF-8, at most 4 unacknowledged, then the end.
 * A piece of 16 384 UTF-16 code units is at most 49 152 bytes of UTF-8 (3 bytes per code unit at
 * worst), so it always fits; a piece never splits a surrogate pair, so each is whole characters.
 * An error completion means stop: nothing more for this query, and no QueryEnd.
 */
async function sendBody(queryId, body) {
  const pieces = [];
  for (let at = 0; at < body.length;) {
    let end = Math.min(at + 16 * 1024, body.length);
    if (end < body.length && /[\uD800-\uDBFF]/.test(body[end - 1])) end -= 1;
    pieces.push(body.slice(at, end));
    at = end;
  }
  const inFlight = new Set();
  let failed = null;
  for (const [seq, data] of pieces.entries()) {
    if (inFlight.size >= 4) await Promise.race(inFlight);
    if (failed || cancelled.has(queryId)) break;
    // A string in JSON; in MessagePack the bytes, which travel as bin.
    const chunk = messagePack ? utf8.encode(data) : data;
    const ack = connection.invoke('QueryChunk', queryId, seq, chunk)
      .catch((e) => { failed ??= e; })
      .finally(() => inFlight.delete(ack));
    inFlight.add(ack);
  }
  await Promise.all(inFlight);
  if (failed || cancelled.has(queryId)) {
    report({ event: 'stopped-answer', queryId, reason: String(failed ?? 'cancelled') });
    return;
  }
  await connection.invoke('QueryEnd', queryId, {});
}

/** A glob of §3's `search`: `*` any run, `?` one character, case-insensitive. */
function globMatches(pattern, name) {
  const source = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`, 'is').test(name);
}

async function answer(query) {
  report({ event: 'query', queryId: query.queryId, appId: query.appId, type: query.query.type, query: query.query });
  const fail = (code, message) => connection.invoke('QueryEnd', query.queryId, { error: { code, message } });
  if (query.source !== 'npm-source') return fail('unknown_source', `no data source named '${query.source}'`);
  // §3: `format` is optional, default json.
  const ndjson = (query.format ?? 'json') === 'ndjson';
  const q = query.query;
  if (q.type === 'search') {
    // §3: offset default 0, limit default 100.
    const offset = q.offset ?? 0;
    const limit = q.limit ?? 100;
    const matching = [TAG].filter((t) => globMatches(q.pattern, t.name));
    const page = matching.slice(offset, offset + limit);
    const nextOffset = offset + page.length < matching.length ? offset + page.length : null;
    const body = ndjson ? page.map((t) => `${JSON.stringify(t)}\n`).join('') : JSON.stringify({ tags: page, nextOffset });
    return sendBody(query.queryId, body);
  }
  if (q.type === 'snapshot') {
    if (q.tags.some((t) => t !== TAG.name)) return fail('unknown_tag', `only ${TAG.name} exists here`);
    const last = { tag: TAG.name, ...samples[samples.length - 1] };
    return sendBody(query.queryId, ndjson ? `${JSON.stringify(last)}\n` : JSON.stringify({ values: [last] }));
  }
  if (q.type === 'raw') {
    if (q.tag !== TAG.name) return fail('unknown_tag', `no tag named '${q.tag}'`);
    // §1 conventions: times carry up to nanoseconds; Date.parse keeps milliseconds, enough
    // for samples a second apart.
    const start = Date.parse(q.start);
    const end = Date.parse(q.end);
    if (Number.isNaN(start) || Number.isNaN(end)) return fail('invalid_query', `unreadable time in ${JSON.stringify(q)}`);
    const at = (s) => Date.parse(s.time);
    let values = samples.filter((s) => at(s) >= start && at(s) <= end);
    // §3: boundary optional, default inside; outside adds the neighbours of the range.
    if ((q.boundary ?? 'inside') === 'outside') {
      const before = samples.filter((s) => at(s) < start).at(-1);
      const after = samples.find((s) => at(s) > end);
      if (!values.length || at(values[0]) !== start) values = before ? [before, ...values] : values;
      if (!values.length || at(values.at(-1)) !== end) values = after ? [...values, after] : values;
    }
    // §3: maxCount absent means no limit.
    if (q.maxCount != null) values = values.slice(0, q.maxCount);
    const body = ndjson ? values.map((v) => `${JSON.stringify(v)}\n`).join('') : JSON.stringify({ tag: TAG.name, values });
    return sendBody(query.queryId, body);
  }
  return fail('unsupported', `this connector answers search, snapshot and raw, not ${q.type}`);
}

async function linkUp() {
  const fresh = await fetchToken();
  token = fresh.access_token;
  await connection.start();
  const registered = await connection.invoke('Register', {
    connectorId,
    name: 'npm-connector',
    software: 'protocol test connector (@microsoft/signalr)',
    sources: [
      {
        name: 'npm-source',
        kind: 'memory',
        description: 'One tag held in memory by a connector built on the official SignalR client',
        capabilities: { search: true, snapshot: true, raw: true, plot: false, atTimes: false, processed: [], subscribe: false },
      },
    ],
  });
  scheduleRenewal(fresh.expires_in);
  report({ event: 'registered', registered, transport: transportName, protocol: protocolName });
}

/** §5: reconnect with capped exponential backoff and jitter, forever, with a fresh token each time. */
async function linkWithRetries() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await linkUp();
      return;
    } catch (e) {
      const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      report({ event: 'retrying', error: String(e), delay });
      try { await connection.stop(); } catch { /* already stopped */ }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

let stopping = false;
connection.onclose((error) => {
  clearTimeout(renewTimer);
  if (stopping) return;
  const reason = error?.message ?? '';
  // §5: after these Close reasons, stop for good (the replaced case: reconnecting would take
  // the connector back from its newer link, and the two would fight for ever).
  if (STOP_REASONS.some((r) => reason.endsWith(r))) {
    report({ event: 'stopped', reason });
    process.exit(0);
  }
  report({ event: 'lost', reason });
  linkWithRetries();
});

await linkWithRetries();
process.stdin.on('end', async () => {
  stopping = true;
  clearTimeout(renewTimer);
  await connection.stop();
  process.exit(0);
});
process.stdin.resume();
