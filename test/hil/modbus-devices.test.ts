import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRegisterPoint, loadRegisterMap, RegisterMapDevice } from '../../src/drivers/register-map.js';
import { Sdm630Meter } from '../../src/drivers/sdm630.js';
import { discoverSunSpec } from '../../src/drivers/sunspec/discovery.js';
import { SunSpecControls, SunSpecInverter } from '../../src/drivers/sunspec/inverter.js';
import { readVoltVar, writeVoltVar } from '../../src/drivers/sunspec/volt-var.js';
import { ModbusBus, modbusExceptionOf } from '../../src/hal/modbus/bus.js';
import { parseModbusUrl } from '../../src/hal/modbus/url.js';
import { SimulatedModbusServer } from '../../src/sim/devices/modbus-server.js';
import { FixedInverterPlant, FixedMeterPlant } from '../../src/sim/devices/register-device.js';
import { SimulatedSdm630 } from '../../src/sim/devices/sdm630.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';

describe('SunSpec inverter and SDM630 over real Modbus TCP', () => {
  const inverter = new SimulatedSunSpecInverter({ ratedW: 6000, serial: 'INV-42' }, new FixedInverterPlant(6000, 4800));
  const odd = new SimulatedSunSpecInverter(
    {
      ratedW: 3680,
      base: 0,
      endMarker: false,
      phases: 1,
      scaleFactors: { W_SF: 1, V_SF: -2, WMaxLimPct_SF: 0 },
      notImplemented: ['VAr', 'Hz', 'WAval'],
    },
    new FixedInverterPlant(3680, 2000),
  );
  const meter = new SimulatedSdm630(new FixedMeterPlant(2300));
  const server = new SimulatedModbusServer(
    new Map<number, SimulatedSunSpecInverter | SimulatedSdm630>([
      [1, inverter],
      [2, meter],
      [3, odd],
    ]),
  );
  let bus: ModbusBus;

  beforeAll(async () => {
    const url = await server.listen(parseModbusUrl('tcp://127.0.0.1:0'));
    bus = new ModbusBus(parseModbusUrl(url), { timeoutMs: 300, backoff: { initialMs: 200, maxMs: 1000 } });
  });
  afterAll(async () => {
    await bus.close();
    await server.close();
  });

  it('discovers the model chain at 40000 and reads scaled measurements', async () => {
    const map = await discoverSunSpec(bus, 1);
    expect(map?.base).toBe(40_000);
    expect(map?.models.map((m) => m.id)).toEqual([1, 103, 120, 121, 122, 123]);
    // The research's worked example: model 1 at 40002, 103 at 40070, 123 at 40228 (with 122 at 40182).
    expect(map?.models.map((m) => m.address)).toEqual([40_002, 40_070, 40_122, 40_150, 40_182, 40_228]);
    const device = new SunSpecInverter('pv-1', bus, 1, { ratedW: 5000 });
    const points = await device.poll(Date.now());
    expect(points.acPowerW).toBe(4800);
    expect(points.availablePowerW).toBe(4800);
    expect(points.voltagePu).toBeCloseTo(1, 6);
    expect(device.inverter.ratedW).toBe(6000); // from the nameplate (model 120)
  });

  it('a device at base 0 without end marker, odd scale factors and unimplemented points', async () => {
    const map = await discoverSunSpec(bus, 3);
    expect(map?.base).toBe(0);
    expect(map?.models.map((m) => m.id)).toEqual([1, 101, 120, 121, 122, 123]);
    const device = new SunSpecInverter('pv-3', bus, 3, { ratedW: 3680 });
    const points = await device.poll(Date.now());
    expect(points.acPowerW).toBe(2000); // W_SF = 1: stored as 200
    expect(points.acVoltageV).toEqual([230]);
    expect(points).not.toHaveProperty('reactivePowerVAr'); // not implemented: omitted, never 0
    expect(points).not.toHaveProperty('frequencyHz');
  });

  it('writes a limit through model 123 with its enable flag and revert timer, and reads it back', async () => {
    const map = (await discoverSunSpec(bus, 1))!;
    const controls = new SunSpecControls(bus, 1, map);
    await controls.setLimit(37.5, 900);
    expect(await controls.readBack()).toEqual({
      unit: 1,
      model: 123,
      limitPct: 37.5,
      limitEnabled: true,
      varPct: null,
      revertS: 900,
    });
    const device = new SunSpecInverter('pv-1', bus, 1, { ratedW: 6000 });
    expect((await device.poll(Date.now())).acPowerW).toBe(2250); // 37.5 % of 6000 W
    await controls.setVarPct(-20);
    expect((await controls.readBack()).varPct).toBe(-20);
    await expect(controls.setLimit(120)).rejects.toThrow(/outside 0..100/);
  });

  it('a write to a read-only register is refused with the exception named', async () => {
    const err = await bus.writeRegisters(1, 40_084, [1]).catch((e) => e);
    expect(modbusExceptionOf(err)).toBe(2);
    expect(String(err.message)).toMatch(/Modbus exception 2 \(illegal data address\)/);
  });

  it('reads the SDM630 (FC4 float32)', async () => {
    const m = new Sdm630Meter('meter-1', bus, 2);
    const p = await m.poll();
    expect(p.acPowerW).toBeCloseTo(2300, 1);
    expect(p.acVoltageV).toEqual([230, 230, 230]);
    expect(p.frequencyHz).toBe(50);
  });

  it('a device that stops answering times out, backs off without holding up the others, and comes back', async () => {
    meter.silent = true;
    const m = new Sdm630Meter('meter-1', bus, 2);
    await expect(m.poll()).rejects.toThrow(/no answer within 300 ms/);
    expect(bus.backingOffMs(2)).toBeGreaterThan(0);
    await expect(m.poll()).rejects.toThrow(/backing off/);
    // The inverter on the same bus is still read at once: nothing of the meter's waits ahead of it,
    // and no request of the meter's timed out in between.
    expect(bus.stats.queued).toBe(0);
    const timeoutsBefore = bus.stats.timeouts;
    await new SunSpecInverter('pv-1', bus, 1, { ratedW: 6000 }).poll(Date.now());
    expect(bus.stats.timeouts).toBe(timeoutsBefore);
    meter.silent = false;
    await new Promise((r) => setTimeout(r, 250));
    expect((await m.poll()).acPowerW).toBeCloseTo(2300, 1);
    expect(bus.backingOffMs(2)).toBe(0);
  });

  it('an exception is an answer: named, and no back-off', async () => {
    meter.forcedException = 4;
    const err = await new Sdm630Meter('meter-1', bus, 2).poll().catch((e) => e);
    expect(String(err.message)).toMatch(/Modbus exception 4 \(server device failure\)/);
    expect(bus.backingOffMs(2)).toBe(0);
    meter.forcedException = undefined;
  });
});

describe('a meter described by a register-map file', () => {
  it('reads the SDM630 through the shipped map the same as the built-in driver', async () => {
    const server = new SimulatedModbusServer(new Map([[7, new SimulatedSdm630(new FixedMeterPlant(3100))]]));
    const url = await server.listen(parseModbusUrl('tcp://127.0.0.1:0'));
    const bus = new ModbusBus(parseModbusUrl(url), { timeoutMs: 300 });
    const map = loadRegisterMap(join(import.meta.dirname, '..', '..', 'config', 'devices', 'sdm630.register-map.yaml'));
    const generic = await new RegisterMapDevice('m', bus, 7, map).poll();
    const builtIn = await new Sdm630Meter('m', bus, 7).poll();
    expect(generic.acPowerW).toBeCloseTo(builtIn.acPowerW as number, 1);
    expect(generic.frequencyHz).toBe(50);
    await bus.close();
    await server.close();
  });

  it('word order and scaling of 32-bit values', () => {
    const p = { point: 'x', address: 0, type: 'int32' as const, wordOrder: 'little' as const, scale: 0.1, offset: 0 };
    expect(decodeRegisterPoint(p, [0xfffe, 0xffff])).toBeCloseTo(-0.2, 12); // −2 with the low word first
  });
});

describe('volt-var through SunSpec model 126', () => {
  it('reads the default curve, writes a new one, and the inverter follows it at its voltage', async () => {
    // The inverter sits at 1.05 pu.
    class HighVoltage extends FixedInverterPlant {
      override read(now: number) {
        return { ...super.read(now), voltagePu: 1.05 };
      }
    }
    const server = new SimulatedModbusServer(
      new Map([[1, new SimulatedSunSpecInverter({ ratedW: 5000, voltVar: true }, new HighVoltage(5000, 4000))]]),
    );
    const url = await server.listen(parseModbusUrl('tcp://127.0.0.1:0'));
    const bus = new ModbusBus(parseModbusUrl(url), { timeoutMs: 300 });
    const map = (await discoverSunSpec(bus, 1))!;
    expect(map.models.map((m) => m.id)).toContain(126);
    const before = await readVoltVar(bus, 1, map);
    expect(before.enabled).toBe(false);
    // IEEE 1547-2018 Category B: (92 %, +44 %), (98 %, 0), (102 %, 0), (108 %, −44 %).
    expect(before.curves[0]!.points).toEqual([
      { vPct: 92, varPct: 44 },
      { vPct: 98, varPct: 0 },
      { vPct: 102, varPct: 0 },
      { vPct: 108, varPct: -44 },
    ]);
    await writeVoltVar(bus, 1, map, {
      points: [
        { vPct: 95, varPct: 30 },
        { vPct: 100, varPct: 0 },
        { vPct: 104, varPct: 0 },
        { vPct: 106, varPct: -40 },
      ],
    });
    const after = await readVoltVar(bus, 1, map);
    expect(after).toMatchObject({ enabled: true, activeCurve: 1 });
    expect(after.curves[0]!.points[3]).toEqual({ vPct: 106, varPct: -40 });
    // At 105 % the curve asks halfway between 0 and −40 % of WMax: −1000 VAr.
    const points = await new SunSpecInverter('pv', bus, 1, { ratedW: 5000 }).poll(Date.now());
    expect(points.reactivePowerVAr).toBe(-1000);
    await expect(
      writeVoltVar(bus, 1, map, {
        points: [
          { vPct: 100, varPct: 0 },
          { vPct: 99, varPct: 0 },
        ],
      }),
    ).rejects.toThrow(/points\[1\]\.vPct must be above/);
    await bus.close();
    await server.close();
  });
});
