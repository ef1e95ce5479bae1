import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/core/clock.js';
import type { DeviceConfigBase } from '../../src/drivers/driver.js';
import { createDevice, deviceConfigSchema, FIELD_DRIVERS } from '../../src/drivers/registry.js';
import {
  type DeviceTemplate,
  loadDeviceTemplate,
  loadDeviceTemplates,
  TEMPLATE_DIR,
} from '../../src/drivers/templates/template.js';
import { MockCanBus } from '../../src/hal/can/can-bus.js';
import { ModbusBusRegistry } from '../../src/hal/modbus/bus.js';
import { parseModbusUrl } from '../../src/hal/modbus/url.js';
import { SimulatedModbusServer } from '../../src/sim/devices/modbus-server.js';
import { FixedInverterPlant, FixedMeterPlant, type RegisterDevice } from '../../src/sim/devices/register-device.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';
import { SimulatedSunSpecMeter } from '../../src/sim/devices/sunspec-meter.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** A device answering the register values a vendor document gives, written by hand below. */
class RegisterTable implements RegisterDevice {
  readonly kind = 'table';
  constructor(
    private readonly input: Record<number, number>,
    private readonly holding: Record<number, number> = {},
  ) {}
  readInput(address: number, count: number): number[] {
    return Array.from({ length: count }, (_, i) => this.input[address + i] ?? 0);
  }
  readHolding(address: number, count: number): number[] {
    return Array.from({ length: count }, (_, i) => this.holding[address + i] ?? 0);
  }
  writeHolding(): void {}
}

/** IEEE-754 single precision, high word first (the Eastron manuals' encoding), via DataView. */
function float32At(address: number, value: number): Record<number, number> {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value);
  return { [address]: view.getUint16(0), [address + 1]: view.getUint16(2) };
}

const templates = new Map(loadDeviceTemplates().map((t) => [t.template, t]));

function entryOf(template: string, modbus?: string, index = 0): DeviceConfigBase {
  const t = templates.get(template)!;
  const entry = { ...t.devices[index]!.entry } as Record<string, unknown>;
  if (modbus) entry.modbus = modbus;
  if (typeof entry.map === 'string') entry.map = join(ROOT, entry.map);
  return deviceConfigSchema(FIELD_DRIVERS).parse(entry) as DeviceConfigBase;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/**
 * Serves `device` on the unit id of the template's entry `index` over Modbus TCP and polls it through
 * that entry (the first: the template's own connection's unit id).
 */
async function pollThroughTemplate(
  template: string,
  device: RegisterDevice,
  index = 0,
): Promise<Record<string, unknown>> {
  const t = templates.get(template)!;
  const unit = index === 0 ? t.connection.unit! : Number(t.devices[index]!.entry.unit);
  const server = new SimulatedModbusServer(new Map([[unit, device]]));
  const url = await server.listen(parseModbusUrl('tcp://127.0.0.1:0'));
  const modbus = new ModbusBusRegistry();
  const config = entryOf(template, url, index);
  expect((config as unknown as { unit: number }).unit).toBe(unit);
  const ctx = {
    clock: new VirtualClock(0),
    modbus,
    field: 'devices[0]',
    devices: [config],
    shared: <T>(_k: unknown, make: () => T) => make(),
  };
  const d = createDevice(FIELD_DRIVERS, config, ctx);
  cleanups.push(async () => {
    await d.close();
    await server.close();
  });
  return (await d.poll(0)) as Record<string, unknown>;
}

describe('device templates (config/devices/*.template.yaml)', () => {
  it('every shipped template parses, and its device entries are valid gateway device configs', () => {
    expect([...templates.keys()].sort()).toEqual([
      'carlo-gavazzi-em24',
      'eastron-sdm120',
      'eastron-sdm630',
      'eastron-sdm72',
      'fronius-sunspec',
      'huawei-sun2000',
      'pylontech-can',
      'sma-sunspec',
      'solaredge-sunspec',
      'victron-gx',
    ]);
    for (const t of templates.values()) {
      expect(t.source.document.length).toBeGreaterThan(0);
      for (const d of t.devices) expect(deviceConfigSchema(FIELD_DRIVERS).safeParse(d.entry).success).toBe(true);
    }
  });

  it('a template with a bad field is an error naming the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tpl-'));
    const good = templates.get('huawei-sun2000')!;
    // YAML is a superset of JSON: the file is read as YAML.
    const bad = (name: string, data: unknown) => {
      const file = join(dir, `${name}.template.yaml`);
      writeFileSync(file, JSON.stringify(data));
      return () => loadDeviceTemplate(file);
    };
    expect(bad('huawei-sun2000', { ...good, connection: { ...good.connection, port: 70000 } })).toThrow(
      /huawei-sun2000\.template\.yaml: connection\.port: /,
    );
    expect(bad('huawei-sun2000', { ...good, source: { version: 'x' } })).toThrow(
      /huawei-sun2000\.template\.yaml: source\.document: /,
    );
    const wrongUnit: DeviceTemplate = {
      ...good,
      devices: [{ role: 'inverter', entry: { ...good.devices[0]!.entry, unit: 300 } }],
    };
    expect(bad('huawei-sun2000', wrongUnit)).toThrow(/huawei-sun2000\.template\.yaml: devices\[0\]\.entry\.unit: /);
    const unknownDriver = { ...good, devices: [{ role: 'x', entry: { id: 'a', driver: 'nope' } }] };
    expect(bad('huawei-sun2000', unknownDriver)).toThrow(/devices\[0\]\.entry\.driver: /);
    expect(bad('other-name', good)).toThrow(/other-name\.template\.yaml: template: "huawei-sun2000" differs/);
  });

  it('Huawei SUN2000: holding registers 32069-32106 of the interface definitions, read as a meter', async () => {
    // A known state: 230.1 / 229.8 / 231.0 V (gain 10), 4520 W produced (int32, gain 1), −350 var
    // (int32, gain 1000 in kvar), 50.02 Hz (gain 100), 12 345.67 kWh yield (uint32, gain 100).
    const holding = {
      32069: 2301,
      32070: 2298,
      32071: 2310,
      32080: 0,
      32081: 4520,
      32082: 0xffff,
      32083: 0x10000 - 350,
      32085: 5002,
      32106: 0x12, // 1 234 567 = 0x0012_D687
      32107: 0xd687,
    };
    const r = await pollThroughTemplate('huawei-sun2000', new RegisterTable({}, holding));
    expect(r.acVoltageV).toEqual([230.1, 229.8, 231].map((v) => expect.closeTo(v, 9)));
    expect(r.acPowerW).toBe(-4520); // produced, so flowing out through the meter
    expect(r.reactivePowerVAr).toBe(-350);
    expect(r.frequencyHz).toBeCloseTo(50.02, 9);
    expect(r.energyExportWh).toBeCloseTo(12_345_670, 3);
  });

  it('Victron GX: grid power of com.victronenergy.system (unit 100, input 820-822) summed', async () => {
    const input = { 820: 1200, 821: 0x10000 - 300, 822: 450 }; // int16 W per phase
    const r = await pollThroughTemplate('victron-gx', new RegisterTable(input));
    expect(r.acPowerW).toBe(1200 - 300 + 450);
  });

  it('Eastron SDM630: the sdm630 driver on float32 input registers of the protocol', async () => {
    const input = {
      ...float32At(0x00, 229.7),
      ...float32At(0x02, 231.2),
      ...float32At(0x04, 230.4),
      ...float32At(0x34, 3456.7),
      ...float32At(0x3c, -210.5),
      ...float32At(0x46, 49.98),
      ...float32At(0x48, 8765.43),
      ...float32At(0x4a, 12.5),
    };
    const r = await pollThroughTemplate('eastron-sdm630', new RegisterTable(input));
    expect(r.acVoltageV).toEqual([229.7, 231.2, 230.4].map(Math.fround));
    expect(r.acPowerW).toBe(Math.fround(3456.7));
    expect(r.reactivePowerVAr).toBe(Math.fround(-210.5));
    expect(r.frequencyHz).toBe(Math.fround(49.98));
    expect(r.energyWh).toBeCloseTo(Math.fround(8765.43) * 1000, 6);
    expect(r.energyExportWh).toBe(12_500);
  });

  it('Eastron SDM120: single-phase float32 input registers', async () => {
    const input = {
      ...float32At(0x00, 231.5),
      ...float32At(0x0c, 1840.5),
      ...float32At(0x18, -120.25),
      ...float32At(0x46, 50.01),
      ...float32At(0x48, 1523.25),
      ...float32At(0x4a, 3.5),
    };
    const r = await pollThroughTemplate('eastron-sdm120', new RegisterTable(input));
    expect(r.acVoltageV).toEqual([231.5]);
    expect(r.acPowerW).toBe(1840.5);
    expect(r.reactivePowerVAr).toBe(-120.25);
    expect(r.frequencyHz).toBe(Math.fround(50.01));
    expect(r.energyWh).toBe(1_523_250);
    expect(r.energyExportWh).toBe(3500);
  });

  it('Eastron SDM72D-M: total power and energies', async () => {
    const input = { ...float32At(0x34, 5000), ...float32At(0x48, 100.25), ...float32At(0x4a, 3.5) };
    const r = await pollThroughTemplate('eastron-sdm72', new RegisterTable(input));
    expect(r).toEqual({ acPowerW: 5000, energyWh: 100_250, energyExportWh: 3500 });
  });

  it('Carlo Gavazzi EM24: INT32 low word first, tenths of V, W, Hz and kWh', async () => {
    const input = {
      0: 2305, // 230.5 V
      1: 0,
      2: 2298,
      3: 0,
      4: 2311,
      5: 0,
      40: 0x10000 - 15234, // −1523.4 W: low word of −15234, then the high word 0xFFFF
      41: 0xffff,
      55: 500, // 50.0 Hz
      66: 0xe240, // 123 456 = 0x0001_E240 tenths of kWh
      67: 0x0001,
      92: 789,
      93: 0,
    };
    const r = await pollThroughTemplate('carlo-gavazzi-em24', new RegisterTable(input));
    expect(r.acVoltageV).toEqual([230.5, 229.8, 231.1].map((v) => expect.closeTo(v, 9)));
    expect(r.acPowerW).toBeCloseTo(-1523.4, 9);
    expect(r.frequencyHz).toBe(50);
    expect(r.energyWh).toBe(12_345_600);
    expect(r.energyExportWh).toBe(78_900);
  });

  for (const [template, port] of [
    ['sma-sunspec', 502],
    ['fronius-sunspec', 502],
    ['solaredge-sunspec', 1502],
  ] as const) {
    it(`${template}: the sunspec driver on the template's unit id reads a SunSpec inverter there`, async () => {
      const t = templates.get(template)!;
      expect(t.connection.port).toBe(port);
      expect(String(t.devices[0]!.entry.modbus)).toBe(`tcp://HOST:${port}`);
      const inverter = new SimulatedSunSpecInverter({ ratedW: 5000 }, new FixedInverterPlant(5000, 3200));
      const r = await pollThroughTemplate(template, inverter);
      expect(r.acPowerW).toBeCloseTo(3200, 0);
    });
  }

  it('fronius-sunspec: the sunspec-meter entry reads a float Smart Meter (model 213) on unit 200', async () => {
    const t = templates.get('fronius-sunspec')!;
    expect(t.devices[1]!.entry).toMatchObject({ driver: 'sunspec-meter', unit: 200, usage: 'grid' });
    const meter = new SimulatedSunSpecMeter({ float: true, phases: 3 }, new FixedMeterPlant(2300));
    const r = await pollThroughTemplate('fronius-sunspec', meter, 1);
    expect(r.acPowerW).toBeCloseTo(2300, 0);
  });

  it('Pylontech: the pylontech-can entry reads SOC/SOH from frame 0x355 (little-endian)', async () => {
    const entry = { ...templates.get('pylontech-can')!.devices[0]!.entry, interface: 'mock:tpl' };
    const config = deviceConfigSchema(FIELD_DRIVERS).parse(entry) as DeviceConfigBase;
    const clock = new VirtualClock(0);
    const ctx = {
      clock,
      modbus: new ModbusBusRegistry(),
      field: 'devices[0]',
      devices: [config],
      shared: <T>(_k: unknown, make: () => T) => make(),
    };
    const battery = createDevice(FIELD_DRIVERS, config, ctx);
    const bms = new MockCanBus('tpl');
    bms.send({ id: 0x355, data: Buffer.from([87, 0, 99, 0]) }); // SOC 87 %, SOH 99 %
    await clock.advance(100); // the mock bus delivers on the next turn
    const r = (await battery.poll(clock.now())) as Record<string, unknown>;
    expect(r.socPct).toBe(87);
    expect(r.sohPct).toBe(99);
    await battery.close();
    await bms.close();
  });
});

it('templates live in the folder the gateway ships', () => {
  expect(TEMPLATE_DIR).toBe(`${join(ROOT, 'config', 'devices')}/`);
});
