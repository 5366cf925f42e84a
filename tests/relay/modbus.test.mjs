// A Modbus tag end to end: a real Modbus TCP device (pymodbus 3.16.1 serving
// tests/fixtures/modbus_server.py on loopback), `uplink connector run` with a `modbus` source added
// by `uplink sources add --map-file`, `uplink hub serve`, and an app whose token comes from the
// hub's real consent flow reading the tag's current value, over real TLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../hub/hub-process.mjs';
import { api, consent, eventually, prepareConnector, startHub, uplinkBin } from './site.mjs';

/** The python with pymodbus: UPLINK_PYMODBUS_PYTHON, else the venv scripts/lib/setup.sh makes. */
function pymodbusPython() {
  const python = process.env.UPLINK_PYMODBUS_PYTHON
    ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'uplink', 'pymodbus-3.16.1', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`${python} not found: the Modbus test needs pymodbus 3.16.1 in a venv; run `
      + '`source scripts/lib/setup.sh && ensure_pymodbus` (./scripts/test does it) or set UPLINK_PYMODBUS_PYTHON');
  }
  return python;
}

/** Starts the fixture device on a free port; resolves once it listens. */
function startDevice() {
  const child = spawn(pymodbusPython(), [join(repoRoot, 'tests', 'fixtures', 'modbus_server.py'), '0'],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const port = line.match(/^PORT (\d+)$/)?.[1];
      if (port) resolve({ child, port: Number(port) });
    });
    child.once('exit', (code) => reject(new Error(`the Modbus fixture exited (${code}) before listening`)));
  });
}

const MAP = [
  'name,table,address,type,order,scale,offset,units,description',
  'tank.level,holding register,100,u16,,0.1,-50,%,Tank level',
  'inlet.flow,input register,6,f32,ABCD,,,m3/h,Inlet flow',
  'pump.running,coil,0,bool,,,,,Main pump',
].join('\n');

let device;
let hub;
let plant;
let token;

before(async () => {
  device = await startDevice();
  hub = await startHub(['Plant M']);
  plant = prepareConnector(hub, hub.connectors[0]);
  const mapFile = join(mkdtempSync(join(tmpdir(), 'uplink-modbus-map-')), 'map.csv');
  writeFileSync(mapFile, MAP);
  execFileSync(uplinkBin, ['sources', 'add', '--data-dir', plant.dataDir, '--name', 'plc', '--kind', 'modbus',
    '--set', 'host=127.0.0.1', '--set', `port=${device.port}`, '--set', 'pollInterval=200ms',
    '--map-file', mapFile], { stdio: 'pipe' });
  plant.start('websockets');
  await eventually('Plant M announced plc', () => plant.status().sources?.some((s) => s.name === 'plc' && s.hubId));
  token = await consent(hub, ['plc']);
}, { timeout: 120000 });

after(async () => {
  await plant?.stop();
  await hub?.stop();
  device?.child.kill('SIGKILL');
});

test('an app reads Modbus tags through the hub with its token', async () => {
  const source = await eventually('plc online', async () => {
    const { status, body } = await api(hub, token, 'sources');
    return status === 200 && body.sources.find((s) => s.name === 'plc' && s.connector.online);
  });
  assert.equal(source.kind, 'modbus');
  assert.equal(source.capabilities.snapshot, true);
  assert.equal(source.capabilities.raw, false);

  const tags = await api(hub, token, `sources/${source.id}/tags?pattern=*.*`);
  assert.equal(tags.status, 200, JSON.stringify(tags.body));
  const level = tags.body.tags.find((t) => t.name === 'tank.level');
  assert.equal(level.units, '%');
  assert.equal(level.properties.table, 'holding register');

  const snapshot = await api(hub, token, `sources/${source.id}/snapshot?tags=tank.level,inlet.flow,pump.running`);
  assert.equal(snapshot.status, 200, JSON.stringify(snapshot.body));
  const values = Object.fromEntries(snapshot.body.values.map((v) => [v.tag, v]));
  // 1234 raw × 0.1 − 50; the fixture's ABCD f32 at input register 6; coil 0 is on.
  assert.ok(Math.abs(values['tank.level'].value - 73.4) < 1e-9, JSON.stringify(values['tank.level']));
  assert.equal(values['inlet.flow'].value, -1234.5);
  assert.equal(values['pump.running'].value, 1);
  for (const v of snapshot.body.values) assert.equal(v.status, 'good', JSON.stringify(v));

  // No stored values yet: refused before it is relayed, with a stable code.
  const raw = await api(hub, token, `sources/${source.id}/raw?tag=tank.level&start=*-1h&end=*`);
  assert.equal(raw.status, 400, JSON.stringify(raw.body));
  assert.equal(raw.body.code, 'unsupported');
});
