// A connector written only from docs/protocol.md with the official @microsoft/signalr client:
// it signs in with client credentials, registers one in-memory data source, answers snapshot and
// raw queries in acknowledged chunks, and reports what the hub told it as JSON lines on stdout.
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

async function accessToken() {
  const response = await fetch(`${hubUrl}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${connectorId}:${credential}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=connector',
  });
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}: ${await response.text()}`);
  return (await response.json()).access_token;
}

// The in-memory data source: one tag, a value per second for the last hour.
const TAG = 'Line.Speed';
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
    accessTokenFactory: accessToken,
  })
  .configureLogging(signalR.LogLevel.Warning);
if (messagePack) builder = builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();
const utf8 = new TextEncoder();

connection.on('Grants', (list) => { report({ event: 'grants', grants: list.grants }); });
connection.on('CancelQuery', (queryId, reason) => { report({ event: 'cancelled', queryId, reason }); });
connection.on('Query', (query) => {
  answer(query).catch((e) => report({ event: 'error', message: String(e) }));
});

/** Sends `body` in chunks of at most 64 KiB, at most 4 unacknowledged, then the end. */
async function sendBody(queryId, body) {
  const pieces = [];
  for (let at = 0; at < body.length; at += 16 * 1024) pieces.push(body.slice(at, at + 16 * 1024));
  const inFlight = new Set();
  for (const [seq, data] of pieces.entries()) {
    if (inFlight.size >= 4) await Promise.race(inFlight);
    // A string in JSON; in MessagePack the bytes, which travel as bin.
    const chunk = messagePack ? utf8.encode(data) : data;
    const ack = connection.invoke('QueryChunk', queryId, seq, chunk).finally(() => inFlight.delete(ack));
    inFlight.add(ack);
  }
  await Promise.all(inFlight);
  await connection.invoke('QueryEnd', queryId, {});
}

async function answer(query) {
  report({ event: 'query', queryId: query.queryId, appId: query.appId, type: query.query.type });
  const fail = (code, message) => connection.invoke('QueryEnd', query.queryId, { error: { code, message } });
  if (query.source !== 'npm-source') return fail('unknown_source', `no data source named '${query.source}'`);
  const q = query.query;
  if (q.type === 'snapshot') {
    if (q.tags.some((t) => t !== TAG)) return fail('unknown_tag', `only ${TAG} exists here`);
    const last = samples[samples.length - 1];
    return sendBody(query.queryId, JSON.stringify({ values: [{ tag: TAG, ...last }] }));
  }
  if (q.type === 'raw') {
    if (q.tag !== TAG) return fail('unknown_tag', `no tag named '${q.tag}'`);
    const start = Date.parse(q.start);
    const end = Date.parse(q.end);
    let values = samples.filter((s) => Date.parse(s.time) >= start && Date.parse(s.time) <= end);
    if (q.maxCount != null) values = values.slice(0, q.maxCount);
    return sendBody(query.queryId, JSON.stringify({ tag: TAG, values }));
  }
  return fail('unsupported', `this connector answers snapshot and raw, not ${q.type}`);
}

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
      capabilities: { search: false, snapshot: true, raw: true, plot: false, atTimes: false, processed: [], subscribe: false },
    },
  ],
});
report({ event: 'registered', registered, transport: transportName, protocol: protocolName });
process.stdin.on('end', async () => {
  await connection.stop();
  process.exit(0);
});
process.stdin.resume();
