// The official @microsoft/signalr client resuming a live-values stream on the app hub
// (`/hubs/app`). Started by live_channels.test.mjs with NODE_EXTRA_CA_CERTS set and the token in
// UPLINK_TOKEN; prints one JSON line with what it saw.
//
// A witness connection keeps a stream on the tag open throughout and records every item by
// its id. A second connection streams the same tag, is stopped (as a dropped connection stops
// it) while values go on changing, and a third calls again with the last id it got: what the
// resumed stream says first, the witness's items in between, and a call with an id the hub
// does not hold are reported for the test to check.
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

const [hubUrl, transportName, protocolName, src] = process.argv.slice(2);
const token = process.env.UPLINK_TOKEN;
const transport = signalR.HttpTransportType[transportName];
if (transport === undefined || !token || !['json', 'messagepack'].includes(protocolName)) {
  console.error(`usage: resume_client.mjs HUB TRANSPORT json|messagepack SOURCE (token in UPLINK_TOKEN)`);
  process.exit(2);
}
const TAG = 'sim.ramp.1';
const within = (ms, what, promise) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)),
]);

async function connect() {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(`${hubUrl}/hubs/app`, { transport, accessTokenFactory: () => token })
    .configureLogging(signalR.LogLevel.Error);
  if (protocolName === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  await connection.start();
  return connection;
}

/** A stream's items, collected; `until(check)` resolves once `check(items)` holds. */
function collect(connection, ...args) {
  const got = { items: [], error: null, waiters: [] };
  const settle = () => {
    got.waiters = got.waiters.filter(({ check, resolve }) => {
      if (got.error || check(got.items)) { resolve(); return false; }
      return true;
    });
  };
  got.subscription = connection.stream('CreateSnapshotTagValueChannel', src, ...args).subscribe({
    next: (item) => { got.items.push(item); settle(); },
    error: (e) => { got.error = e.message; settle(); },
    complete: () => { got.error = 'completed without an error'; settle(); },
  });
  got.until = (what, check) => within(30000, what, new Promise((resolve) => {
    got.waiters.push({ check, resolve });
    settle();
  }));
  return got;
}

const witnessConnection = await connect();
const witness = collect(witnessConnection, [TAG], '0s');
await witness.until('the witness snapshot', (items) => items.length >= 1);

// Three arguments, as before: a snapshot, then values; then the connection goes.
let connection = await connect();
const before = collect(connection, [TAG], '0s');
await before.until('a snapshot and two values', (items) => items.length >= 3);
await connection.stop();
const last = before.items.at(-1);
// Values change while it is away (the simulated source samples every second).
await new Promise((resolve) => setTimeout(resolve, 3500));

connection = await connect();
const resumed = collect(connection, [TAG], '0s', last.id);
await resumed.until('the first resumed item', (items) => items.length >= 1);
const first = resumed.items[0];
const seq = (id) => Number(id.split('-')[1]);
await witness.until('the witness at the resumed id', (items) => items.some((i) => i.id === first.id));
const between = witness.items.filter((i) => seq(i.id) > seq(last.id) && seq(i.id) < seq(first.id));
const witnessed = witness.items.find((i) => i.id === first.id);
resumed.subscription.dispose();

const restarted = collect(connection, [TAG], '0s', `g_gone-${seq(last.id)}`);
await restarted.until('restarted and a snapshot', (items) => items.length >= 2);
restarted.subscription.dispose();
witness.subscription.dispose();

console.log(JSON.stringify({
  last,
  first,
  witnessed,
  between,
  resumedError: resumed.error,
  restarted: restarted.items.slice(0, 2),
  restartedError: restarted.error,
}));
await connection.stop();
await witnessConnection.stop();
process.exit(0);
