// The official @microsoft/signalr client on one replica's app hub (`/hubs/app`): one
// `CreateSnapshotTagValueChannel` stream. Started by app_streams.test.mjs with
// NODE_EXTRA_CA_CERTS set (Node reads it only at start-up) and the token in UPLINK_TOKEN;
// prints one JSON line per phase: `streaming` once four items came, then, after a line on
// standard input, `ended` with how the stream ended and when (Date.now() on this machine).
import * as signalR from '@microsoft/signalr';
import { createInterface } from 'node:readline';

const [hubUrl, transportName, src, tags] = process.argv.slice(2);
const token = process.env.UPLINK_TOKEN;
const transport = signalR.HttpTransportType[transportName];
if (transport === undefined || !token || !tags) {
  console.error(`usage: app_hub_client.mjs HUB TRANSPORT SOURCE TAGS (token in UPLINK_TOKEN); got ${process.argv.slice(2).join(' ')}`);
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

const got = { items: [], error: null, endedAt: null };
let wake = () => {};
connection.stream('CreateSnapshotTagValueChannel', src, tags.split(','), '0s').subscribe({
  next: (item) => { got.items.push(item); wake(); },
  error: (e) => { got.error = e.message; got.endedAt = Date.now(); wake(); },
  complete: () => { got.error = 'completed without an error'; got.endedAt = Date.now(); wake(); },
});
const until = (done) => new Promise((resolve) => {
  const check = () => (done() ? resolve() : (wake = check));
  check();
});

await within(30000, 'four items', until(() => got.items.length >= 4 || got.error));
say('streaming', { connectionId: connection.connectionId, items: got.items.slice(0, 4), error: got.error });

// The test revokes the app on another replica; the stream ends with `revoked: …`.
await nextLine();
await within(10000, 'the end after the revoke', until(() => got.error));
say('ended', { error: got.error, endedAt: got.endedAt, items: got.items.length });
await connection.stop().catch(() => {});
input.close();
process.exit(0);
