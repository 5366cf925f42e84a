// An MQTT tag end to end: a real mosquitto on loopback (a configuration and password file of
// the test's own), `uplink connector run` with an `mqtt` source added by `uplink sources add`,
// `uplink hub serve`, and an app whose token comes from the hub's real consent flow reading the
// tags' current values — a retained one and one published while the connector runs — over
// real TLS. The broker and publisher come from mosquitto.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PASSWORD, USER, publish, startBroker } from './mosquitto.mjs';
import { api, consent, eventually, prepareConnector, startHub, uplinkBin } from './site.mjs';

let broker;
let hub;
let plant;
let token;

before(async () => {
  broker = await startBroker();
  publish(broker, 'plant/boiler/temp', '{"v": 71.5}', true);
  hub = await startHub(['Plant Q']);
  plant = prepareConnector(hub, hub.connectors[0]);
  execFileSync(uplinkBin, ['sources', 'add', '--data-dir', plant.dataDir, '--name', 'broker', '--kind', 'mqtt',
    '--set', `brokerUrl=mqtt://127.0.0.1:${broker.port}`, '--set', `username=${USER}`, '--set', `password=${PASSWORD}`,
    '--set', 'subscriptions=plant/+/+ json value=$.v quality=$.q name={2}.{3}'], { stdio: 'pipe' });
  plant.start('websockets');
  await eventually('Plant Q announced broker', () => plant.status().sources?.some((s) => s.name === 'broker' && s.hubId));
  token = await consent(hub, ['broker']);
}, { timeout: 120000 });

after(async () => {
  await plant?.stop();
  await hub?.stop();
  broker?.child.kill('SIGKILL');
});

test('an app reads MQTT tags through the hub with its token', async () => {
  const source = await eventually('broker online', async () => {
    const { status, body } = await api(hub, token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === 'broker' && s.connector.online);
  });
  assert.equal(source.kind, 'mqtt');
  assert.equal(source.capabilities.snapshot, true);
  assert.equal(source.capabilities.raw, false);

  const snapshot = (tags) => api(hub, token, `sources/${source.id}/snapshot?tags=${tags}`);
  // The retained value seeds the tag: it was published before the connector ran.
  await eventually('the retained value relayed', async () => {
    const { status, body } = await snapshot('boiler.temp');
    return status === 200 && body.values[0].value === 71.5;
  });
  publish(broker, 'plant/boiler/temp', '{"v": 72.25, "q": "good"}');
  publish(broker, 'plant/pump/speed', '{"v": 1450, "q": 64}');
  const values = await eventually('both values relayed', async () => {
    const { status, body } = await snapshot('boiler.temp,pump.speed');
    if (status !== 200) return false;
    const byTag = Object.fromEntries(body.values.map((v) => [v.tag, v]));
    return byTag['boiler.temp']?.value === 72.25 && byTag['pump.speed']?.value === 1450 && byTag;
  });
  assert.equal(values['boiler.temp'].status, 'good');
  assert.equal(values['pump.speed'].status, 'uncertain');

  const tags = await api(hub, token, `sources/${source.id}/tags?pattern=*.*`);
  assert.equal(tags.status, 200, JSON.stringify(tags.body));
  assert.deepEqual(tags.body.tags.map((t) => t.name).sort(), ['boiler.temp', 'pump.speed']);
  assert.equal(tags.body.tags.find((t) => t.name === 'boiler.temp').properties.topic, 'plant/boiler/temp');

  // No stored values yet: refused before it is relayed, with a stable code.
  const raw = await api(hub, token, `sources/${source.id}/raw?tag=boiler.temp&start=*-1h&end=*`);
  assert.equal(raw.status, 400, JSON.stringify(raw.body));
  assert.equal(raw.body.code, 'unsupported');

  // The password reached the broker (the source is connected) but not the connector's listing.
  const listed = execFileSync(uplinkBin, ['sources', 'list', '--data-dir', plant.dataDir], { encoding: 'utf8' });
  assert.ok(!listed.includes(PASSWORD), listed);
  assert.ok(!plant.stderr.includes(PASSWORD), plant.stderr);
});
