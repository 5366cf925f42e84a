// Holds one idle link with the official @microsoft/signalr client, its timeouts left at their
// defaults (server timeout 30 s, keep-alive 15 s), over one transport for a number of seconds,
// then prints as one JSON line what happened: reconnects, closes, and the gaps between the
// server's pings as the client received them. Started by keep_alive.test.mjs with
// NODE_EXTRA_CA_CERTS set (Node reads it only at start-up, so each client has its own process).
import * as signalR from '@microsoft/signalr';

const [url, transportName, seconds] = process.argv.slice(2);
const transport = signalR.HttpTransportType[transportName];
if (transport === undefined || !(Number(seconds) > 0)) {
  console.error('usage: idle_client.mjs URL TRANSPORT SECONDS');
  process.exit(2);
}

// The JSON protocol as the client uses it, noting when each of the server's pings arrives.
const pings = [];
class PingCountingProtocol extends signalR.JsonHubProtocol {
  parseMessages(input, logger) {
    const messages = super.parseMessages(input, logger);
    for (const message of messages) {
      if (message.type === signalR.MessageType.Ping) pings.push(performance.now());
    }
    return messages;
  }
}

const connection = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport, accessTokenFactory: () => 'interop-token' })
  .withHubProtocol(new PingCountingProtocol())
  .withAutomaticReconnect()
  .configureLogging(signalR.LogLevel.Warning)
  .build();
const result = { reconnecting: [], reconnected: 0, closed: null };
connection.onreconnecting((error) => result.reconnecting.push(String(error?.message ?? error)));
connection.onreconnected(() => { result.reconnected += 1; });
connection.onclose((error) => { result.closed = String(error?.message ?? error ?? 'closed'); });

await connection.start();
const connectedAt = performance.now();
const connectionId = connection.connectionId;
result.serverTimeoutMs = connection.serverTimeoutInMilliseconds;
result.keepAliveMs = connection.keepAliveIntervalInMilliseconds;
// Idle: no calls until the end.
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
const endedAt = performance.now();
result.sameConnection = connection.connectionId === connectionId;
try {
  result.transport = await connection.invoke('Transport');
} catch (error) {
  result.transport = `call failed: ${error.message}`;
}
const marks = [connectedAt, ...pings.filter((t) => t <= endedAt), endedAt];
result.pings = marks.length - 2;
result.maxGapMs = Math.round(Math.max(...marks.slice(1).map((t, i) => t - marks[i])));
const report = JSON.stringify(result); // before stop(), whose own close is no failure
await connection.stop();
console.log(report);
process.exit(0);
