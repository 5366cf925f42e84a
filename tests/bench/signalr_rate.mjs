// The official @microsoft/signalr client's echo rate against our SignalR server, for the
// alternatives benchmark (crates/cli/benches/alternatives.rs), which starts it with
// NODE_EXTRA_CA_CERTS set to its private CA. Arguments: URL, protocol (`json` or
// `messagepack`), payload size in bytes, messages per run, calls in flight, runs. Prints one
// JSON line: every run's duration in milliseconds, measured here so Node's start-up is not in it.
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

const [url, protocol, sizeArg, countArg, windowArg, runsArg] = process.argv.slice(2);
const [size, count, window, runs] = [sizeArg, countArg, windowArg, runsArg].map(Number);
if (!url || !['json', 'messagepack'].includes(protocol) || ![size, count, window, runs].every((n) => n > 0)) {
  console.error('usage: signalr_rate.mjs URL json|messagepack SIZE COUNT WINDOW RUNS');
  process.exit(2);
}

let builder = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport: signalR.HttpTransportType.WebSockets, skipNegotiation: false })
  .configureLogging(signalR.LogLevel.Warning);
if (protocol === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();
await connection.start();

const payload = 'x'.repeat(size);
// Keeps `window` echoes in flight until `total` have come back, each checked.
async function echoes(total) {
  let sent = 0;
  const worker = async () => {
    while (sent < total) {
      sent += 1;
      const echoed = await connection.invoke('Echo', payload);
      if (echoed.length !== size) throw new Error(`echo of ${size} bytes came back with ${echoed.length}`);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
}

await echoes(Math.min(count, 500));
const runsMs = [];
for (let i = 0; i < runs; i += 1) {
  const started = performance.now();
  await echoes(count);
  runsMs.push(performance.now() - started);
}
await connection.stop();
console.log(JSON.stringify({ protocol, size, count, window, runsMs }));
