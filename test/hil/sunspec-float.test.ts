import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverSunSpec } from '../../src/drivers/sunspec/discovery.js';
import { SunSpecInverter } from '../../src/drivers/sunspec/inverter.js';
import { SunSpecMeter } from '../../src/drivers/sunspec/meter.js';
import { readVoltVar } from '../../src/drivers/sunspec/volt-var.js';
import { readVoltVar1547, writeVoltVarCurve } from '../../src/drivers/sunspec/volt-var-1547.js';
import { readVoltWatt, writeVoltWatt } from '../../src/drivers/sunspec/volt-watt.js';
import { ModbusBus } from '../../src/hal/modbus/bus.js';
import { parseModbusUrl } from '../../src/hal/modbus/url.js';
import { PtyPair } from '../../src/sim/devices/pty-pair.js';
import { eventually, freePort, runCli, startCli } from '../helpers/net.js';
import { requireTool } from '../helpers/system-tools.js';

/** `p2p-edge simulate` as a process of its own, once it printed its ready line. */
async function simulate(args: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const sim = startCli(['simulate', ...args]);
  const line = await eventually(
    () =>
      sim
        .output()
        .split('\n')
        .find((l) => l.startsWith('{"ready":true')),
    30_000,
  );
  return {
    url: (JSON.parse(line) as { url: string }).url,
    async stop() {
      if (sim.child.exitCode === null) {
        sim.child.kill('SIGTERM');
        await sim.exited;
      }
    },
  };
}

async function scan(url: string, unit: number): Promise<Record<string, unknown>[]> {
  const r = await runCli(['scan', '--modbus', url, '--unit', String(unit), '--json'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { devices: Record<string, unknown>[] }).devices;
}

describe('SunSpec float models against `p2p-edge simulate` over Modbus TCP', () => {
  let inverter: { url: string; stop(): Promise<void> };
  let meter: { url: string; stop(): Promise<void> };

  beforeAll(async () => {
    [inverter, meter] = await Promise.all([
      simulate([
        '--device',
        'sunspec-inverter',
        '--float',
        '--curves',
        '--modbus',
        `tcp://127.0.0.1:${await freePort()}`,
        '--unit',
        '1',
        '--rated-w',
        '6000',
        '--available-w',
        '4000',
      ]),
      simulate([
        '--device',
        'sunspec-meter',
        '--float',
        '--modbus',
        `tcp://127.0.0.1:${await freePort()}`,
        '--unit',
        '2',
        '--available-w',
        '1500',
      ]),
    ]);
  }, 60_000);
  afterAll(async () => {
    await inverter?.stop();
    await meter?.stop();
  });

  it('scan reports the float inverter (113) as an inverter with its readings', async () => {
    const [device] = await scan(inverter.url, 1);
    expect(device).toMatchObject({
      unit: 1,
      kind: 'inverter',
      sunspec: { base: 40_000, models: [1, 113, 120, 121, 122, 123, 126, 132, 705] },
      manufacturer: 'p2p-edge',
      readings: { acPowerW: 4000, acVoltageV: [230, 230, 230], frequencyHz: 50, status: 'MPPT' },
    });
  }, 90_000);

  it('scan reports the float meter (213) as a meter: power imported, per-phase voltages, energy', async () => {
    const [device] = await scan(meter.url, 2);
    expect(device).toMatchObject({
      unit: 2,
      kind: 'meter',
      sunspec: { base: 40_000, models: [1, 213] },
      readings: { acPowerW: 1500, acVoltageV: [230, 230, 230], frequencyHz: 50 },
    });
    const readings = device!.readings as Record<string, number>;
    expect(readings.energyWh).toBeGreaterThanOrEqual(1);
    expect(readings.energyExportWh).toBe(1); // the simulated household only imports
  }, 90_000);

  it('the runtime drivers read the float inverter and meter, and `control` limits the float inverter', async () => {
    const bus = new ModbusBus(parseModbusUrl(inverter.url), { timeoutMs: 2000 });
    const meterBus = new ModbusBus(parseModbusUrl(meter.url), { timeoutMs: 2000 });
    try {
      const device = new SunSpecInverter('pv', bus, 1, { ratedW: 5000, revertS: 0 });
      const points = await device.poll(Date.now());
      expect(points).toMatchObject({ acPowerW: 4000, acVoltageV: [230, 230, 230], frequencyHz: 50 });
      expect(points.voltagePu).toBeCloseTo(1, 9);
      expect(device.inverter.ratedW).toBe(6000);
      const m = await new SunSpecMeter('grid', meterBus, 2).poll();
      expect(m).toMatchObject({ acPowerW: 1500, acVoltageV: [230, 230, 230], frequencyHz: 50, reactivePowerVAr: 300 });
      // the contract's control path (model 123) is the same for a float inverter
      const r = await runCli(['control', '--modbus', inverter.url, '--unit', '1', '--limit-pct', '50', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ unit: 1, model: 123, limitPct: 50, limitEnabled: true });
      await eventually(async () => ((await device.poll(Date.now())).acPowerW === 3000 ? true : undefined), 10_000);
      await runCli(['control', '--modbus', inverter.url, '--unit', '1', '--limit-pct', '100', '--json']);
    } finally {
      await bus.close();
      await meterBus.close();
    }
  }, 90_000);

  it('writes volt-watt (132) and volt-var through 705 rather than 126, each read back', async () => {
    const bus = new ModbusBus(parseModbusUrl(inverter.url), { timeoutMs: 2000 });
    try {
      const map = (await discoverSunSpec(bus, 1))!;
      const vw = await writeVoltWatt(bus, 1, map, {
        points: [
          { vPct: 106, wPct: 100 },
          { vPct: 110, wPct: 20 },
        ],
      });
      expect(vw).toMatchObject({ enabled: true, activeCurve: 1 });
      expect(vw.curves[0]!.points).toEqual([
        { vPct: 106, wPct: 100 },
        { vPct: 110, wPct: 20 },
      ]);
      expect((await readVoltWatt(bus, 1, map)).curves[0]!.points[1]).toEqual({ vPct: 110, wPct: 20 });

      const before126 = await readVoltVar(bus, 1, map);
      const curve = {
        points: [
          { vPct: 95, varPct: 30 },
          { vPct: 99, varPct: 0 },
          { vPct: 101, varPct: 0 },
          { vPct: 105, varPct: -40 },
        ],
      };
      const written = await writeVoltVarCurve(bus, 1, map, curve);
      expect(written.model).toBe(705);
      expect(written.settings.enabled).toBe(true);
      expect(written.settings.curves[0]).toEqual(curve); // curve 1: the curve in force, adopted from curve 2
      expect(await readVoltVar1547(bus, 1, map)).toEqual(written.settings);
      expect(await readVoltVar(bus, 1, map)).toEqual(before126); // model 126 untouched
      await expect(
        writeVoltVarCurve(bus, 1, map, {
          points: [
            { vPct: 100, varPct: 0 },
            { vPct: 99, varPct: 0 },
          ],
        }),
      ).rejects.toThrow(/points\[1\]\.vPct must be above/);
    } finally {
      await bus.close();
    }
  }, 90_000);

  it('`control --volt-var/--volt-watt` writes both curves, reads them back, and names a malformed list', async () => {
    const r = await runCli(
      [
        'control',
        '--modbus',
        inverter.url,
        '--unit',
        '1',
        '--volt-var',
        '92:44,98:0,102:0,108:-44',
        '--volt-watt',
        '105:100,109:10',
        '--json',
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.voltVar).toMatchObject({ model: 705, enabled: true });
    expect(out.voltVar.curves[0].points).toEqual([
      { vPct: 92, varPct: 44 },
      { vPct: 98, varPct: 0 },
      { vPct: 102, varPct: 0 },
      { vPct: 108, varPct: -44 },
    ]);
    expect(out.voltWatt).toMatchObject({ model: 132, enabled: true, activeCurve: 1 });
    expect(out.voltWatt.curves[0].points).toEqual([
      { vPct: 105, wPct: 100 },
      { vPct: 109, wPct: 10 },
    ]);
    // What the device now holds, read on its own.
    const bus = new ModbusBus(parseModbusUrl(inverter.url, 'test'), { timeoutMs: 2000 });
    try {
      const map = (await discoverSunSpec(bus, 1))!;
      expect((await readVoltVar1547(bus, 1, map)).curves[0]!.points[3]).toEqual({ vPct: 108, varPct: -44 });
      expect((await readVoltWatt(bus, 1, map)).curves[0]!.points[1]).toEqual({ vPct: 109, wPct: 10 });
    } finally {
      await bus.close();
    }
    const bad = await runCli([
      'control',
      '--modbus',
      inverter.url,
      '--unit',
      '1',
      '--volt-var',
      '98:0,92:44',
      '--json',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--volt-var "98:0,92:44": the voltages must rise/);
  }, 90_000);
});

// socat makes the pty pair: without it the test fails, naming the package.
describe('a float SunSpec meter over Modbus RTU on a pty pair (socat)', () => {
  let pty: PtyPair;
  let meter: { url: string; stop(): Promise<void> };

  beforeAll(async () => {
    requireTool('socat');
    pty = await PtyPair.open();
    meter = await simulate([
      '--device',
      'sunspec-meter',
      '--float',
      '--modbus',
      `rtu://${pty.a}?baud=19200&parity=none`,
      '--unit',
      '7',
      '--available-w',
      '2300',
    ]);
  }, 60_000);
  afterAll(async () => {
    await meter?.stop();
    await pty?.close();
  });

  it('scan finds it as a meter and the runtime driver reads it', async () => {
    const url = `rtu://${pty.b}?baud=19200&parity=none`;
    const devices = await eventually(async () => {
      const d = await scan(url, 7);
      return d.length > 0 ? d : undefined;
    }, 60_000);
    expect(devices[0]).toMatchObject({
      unit: 7,
      kind: 'meter',
      sunspec: { models: [1, 213] },
      readings: { acPowerW: 2300, acVoltageV: [230, 230, 230], frequencyHz: 50 },
    });
    const bus = new ModbusBus(parseModbusUrl(url), { timeoutMs: 5000 });
    try {
      expect(await new SunSpecMeter('grid', bus, 7).poll()).toMatchObject({ acPowerW: 2300, frequencyHz: 50 });
    } finally {
      await bus.close();
    }
  }, 120_000);
});
