// A real mosquitto on loopback for the relay tests: a configuration and password file of the
// test's own, values published with mosquitto_pub (the mosquitto and mosquitto-clients packages;
// ./scripts/test installs them). Missing binaries fail loudly.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './site.mjs';

export const USER = 'plant';
export const PASSWORD = 'relay-pa55word';

function need(binary, candidates) {
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(`${binary} is not installed: the MQTT relay tests need a real broker; `
      + 'run `sudo apt-get install mosquitto mosquitto-clients` (./scripts/test installs them)');
  }
  return found;
}

const MOSQUITTO = () => need('mosquitto', ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']);
const PASSWD = () => need('mosquitto_passwd', ['/usr/bin/mosquitto_passwd']);
const PUB = () => need('mosquitto_pub', ['/usr/bin/mosquitto_pub']);

/** A TCP port free on loopback right now. */
export function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts mosquitto with user `USER`/`PASSWORD` on a free loopback port: `{ child, port }`. */
export async function startBroker() {
  const dir = mkdtempSync(join(tmpdir(), 'uplink-relay-mqtt-'));
  const port = await freePort();
  const passwords = join(dir, 'passwords');
  writeFileSync(passwords, '');
  execFileSync(PASSWD(), ['-b', passwords, USER, PASSWORD], { stdio: 'pipe' });
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(config, ['user root', 'per_listener_settings false', 'persistence false', 'allow_anonymous false',
    `password_file ${passwords}`, `log_dest file ${join(dir, 'mosquitto.log')}`, `listener ${port} 127.0.0.1`, ''].join('\n'));
  const child = spawn(MOSQUITTO(), ['-c', config], { stdio: 'ignore' });
  await eventually('mosquitto listening', () => new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
    socket.on('error', () => resolve(false));
  }));
  return { child, port };
}

/** Publishes `message` on `topic` with QoS 1 (retained when asked). */
export function publish(broker, topic, message, retain = false) {
  const args = ['-h', '127.0.0.1', '-p', String(broker.port), '-u', USER, '-P', PASSWORD, '-q', '1', '-t', topic, '-m', message];
  if (retain) args.push('-r');
  execFileSync(PUB(), args, { stdio: 'pipe' });
}
