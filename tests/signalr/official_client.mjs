// Runs the official @microsoft/signalr client against a hub, over one transport and in one hub
// protocol (`json`, or `messagepack` with @microsoft/signalr-protocol-msgpack), and prints what
// it observed as one JSON line. Started by interop.test.mjs with NODE_EXTRA_CA_CERTS set (Node
// reads that variable only at start-up, so the client needs its own process).
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

const [url, transportName, protocolName = 'json'] = process.argv.slice(2);
const transport = signalR.HttpTransportType[transportName];
if (transport === undefined) {
  console.error(`unknown transport ${transportName}`);
  process.exit(2);
}

let builder = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport, accessTokenFactory: () => 'interop-token' })
  .configureLogging(signalR.LogLevel.Warning);
if (protocolName === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();

const notified = new Promise((resolve) => connection.on('Notify', (text) => resolve(text)));
// Returning a value answers the server's client-result invocation.
connection.on('Answer', (question) => `answer to ${question}`);
const closed = new Promise((resolve) => connection.onclose((error) => resolve(error ? String(error) : null)));

const results = {};
await connection.start();
results.connectionId = connection.connectionId;
results.transport = await connection.invoke('Transport');
results.protocol = await connection.invoke('Protocol');
if (protocolName === 'messagepack') {
  // A Uint8Array travels as MessagePack bin.
  results.byteSum = await connection.invoke('ByteSum', Uint8Array.from({ length: 256 }, (_, i) => i));
}
results.sum = await connection.invoke('Add', 40, 2);
results.triggered = await connection.invoke('TriggerNotify', 'hello');
results.notified = await notified;
results.answer = await connection.invoke('AskClient', 'life');
results.stream = await new Promise((resolve, reject) => {
  const items = [];
  connection.stream('Counter', 5).subscribe({
    next: (item) => items.push(item),
    complete: () => resolve(items),
    error: reject,
  });
});
try {
  await connection.invoke('Fail');
  results.failError = null;
} catch (error) {
  results.failError = error.message;
}
try {
  await connection.invoke('NoSuchMethod');
  results.unknownError = null;
} catch (error) {
  results.unknownError = error.message;
}
results.bigLength = (await connection.invoke('Echo', 'x'.repeat(16 * 1024))).length;
await connection.stop();
results.closeError = await closed;
results.finalState = connection.state;
console.log(JSON.stringify(results));
process.exit(0);
