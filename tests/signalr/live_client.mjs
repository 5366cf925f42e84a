// The official @microsoft/signalr client on the hub's app hub (`/hubs/app`): live values on one
// connection. Started by live_channels.test.mjs with NODE_EXTRA_CA_CERTS set (Node reads it
// only at start-up) and the token in UPLINK_TOKEN; prints one JSON line per phase and reads a
// line on standard input to go on ("revoked" once the test revoked the app).
//
// Phases: two tag sets on one connection, then one removed (its subscription disposed of)
// while the other goes on; the revoke completes that one with `revoked: …`, and the revoked
// sign-in's token opens no new connection.
import * as signalR from '@microsoft/signalr';
import { createInterface } from 'node:readline';

const [hubUrl, transportName, src] = process.argv.slice(2);
const token = process.env.UPLINK_TOKEN;
const transport = signalR.HttpTransportType[transportName];
if (transport === undefined || !token) {
  console.error(`usage: live_client.mjs HUB TRANSPORT SOURCE (token in UPLINK_TOKEN); got ${transportName}`);
  process.exit(2);
}
const input = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => input.once('line', resolve));
const say = (phase, data) => console.log(JSON.stringify({ phase, ...data }));
const within = (ms, what, promise) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)),
]);

const connection = new signalR.HubConnectionBuilder()
  .withUrl(`${hubUrl}/hubs/app`, { transport, accessTokenFactory: () => token })
  .configureLogging(signalR.LogLevel.Error)
  .build();
await connection.start();

/** A stream's items and end, collected; `wait(n)` resolves once n items came. */
function collect(tags, interval) {
  const got = { items: [], error: null, waiters: [] };
  const settle = () => {
    got.waiters = got.waiters.filter(({ n, resolve }) => {
      if (got.items.length >= n || got.error) { resolve(); return false; }
      return true;
    });
  };
  got.subscription = connection.stream('CreateSnapshotTagValueChannel', src, tags, interval).subscribe({
    next: (item) => { got.items.push(item); settle(); },
    error: (e) => { got.error = e.message; settle(); },
    complete: () => { got.error = 'completed without an error'; settle(); },
  });
  got.wait = (n) => new Promise((resolve) => { got.waiters.push({ n, resolve }); settle(); });
  got.ended = () => new Promise((resolve) => {
    const poll = () => (got.error ? resolve(got.error) : setTimeout(poll, 10));
    poll();
  });
  return got;
}

// Two tag sets on one connection; then the first is removed and the second goes on.
const ramp = collect(['sim.ramp.1'], '0s');
const pair = collect(['sim.noise.1', 'sim.square.1'], '0s');
await within(30000, 'two items on each stream', Promise.all([ramp.wait(2), pair.wait(2)]));
ramp.subscription.dispose();
const rampAtDispose = ramp.items.length;
const pairAtDispose = pair.items.length;
await within(30000, 'more values on the stream kept', pair.wait(pairAtDispose + 2));
say('streaming', {
  transport: transportName,
  connectionId: connection.connectionId,
  ramp: { first: ramp.items[0], second: ramp.items[1], error: ramp.error },
  pair: { first: pair.items[0], count: pair.items.length, error: pair.error },
  rampAfterDispose: ramp.items.length - rampAtDispose,
  pairAfterDispose: pair.items.length - pairAtDispose,
});

// The test revokes the app; the open stream completes with `revoked: …`.
await nextLine();
const revokedError = await within(10000, 'the end after the revoke', pair.ended());
let reconnectError = null;
try {
  const again = new signalR.HubConnectionBuilder()
    .withUrl(`${hubUrl}/hubs/app`, { transport, accessTokenFactory: () => token })
    .configureLogging(signalR.LogLevel.None)
    .build();
  await again.start();
} catch (e) {
  reconnectError = e.message;
}
say('revoked', { revokedError, reconnectError });
await connection.stop().catch(() => {});
input.close();
process.exit(0);
