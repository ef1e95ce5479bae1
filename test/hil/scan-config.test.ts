import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { VirtualClock } from '../../src/core/clock.js';
import type { DeviceConfigBase } from '../../src/drivers/driver.js';
import { createDevice, deviceConfigSchema, FIELD_DRIVERS } from '../../src/drivers/registry.js';
import { ModbusBusRegistry } from '../../src/hal/modbus/bus.js';
import { parseModbusUrl } from '../../src/hal/modbus/url.js';
import { SimulatedModbusServer } from '../../src/sim/devices/modbus-server.js';
import { FixedInverterPlant, FixedMeterPlant, type RegisterDevice } from '../../src/sim/devices/register-device.js';
import { SimulatedSdm630 } from '../../src/sim/devices/sdm630.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';
import { SimulatedSunSpecMeter } from '../../src/sim/devices/sunspec-meter.js';
import { runCli } from '../helpers/net.js';

/** A Modbus device that answers every read with zeros: no SunSpec marker, no plausible meter. */
class ZeroRegisters implements RegisterDevice {
  readonly kind = 'zeros';
  readHolding(_address: number, count: number): number[] {
    return Array(count).fill(0);
  }
  readInput(_address: number, count: number): number[] {
    return Array(count).fill(0);
  }
  writeHolding(): void {}
}

// One link as a Fronius installation with a sub-metered load presents it: a float inverter (unit 1),
// its Smart Meter (unit 2), an SDM630 (unit 3), a device of another protocol (unit 4); unit 5 is absent.
let server: SimulatedModbusServer;
let url: string;
beforeAll(async () => {
  server = new SimulatedModbusServer(
    new Map<number, RegisterDevice>([
      [
        1,
        new SimulatedSunSpecInverter(
          { ratedW: 6000, float: true, manufacturer: 'Fronius', model: 'Symo 6.0-3-M', serial: '3409' },
          new FixedInverterPlant(6000, 4200),
        ),
      ],
      [2, new SimulatedSunSpecMeter({ float: true, phases: 3, manufacturer: 'Fronius' }, new FixedMeterPlant(1800))],
      [3, new SimulatedSdm630(new FixedMeterPlant(900))],
      [4, new ZeroRegisters()],
    ]),
  );
  url = await server.listen(parseModbusUrl('tcp://127.0.0.1:0'));
});
afterAll(() => server.close());

const UNITS = ['--unit', '1', '--unit', '2', '--unit', '3', '--unit', '4', '--unit', '5'];

describe('p2p-edge scan: what answered, as JSON and as a config to paste', () => {
  it('--json lists the devices, the silent unit ids and those that answered without being recognised', async () => {
    const r = await runCli(['scan', '--modbus', url, ...UNITS, '--json'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const scan = JSON.parse(r.stdout);
    expect(scan.devices.map((d: { unit: number; kind: string }) => [d.unit, d.kind])).toEqual([
      [1, 'inverter'],
      [2, 'meter'],
      [3, 'meter'],
    ]);
    expect(scan.silentUnits).toEqual([5]);
    expect(scan.unrecognisedUnits).toEqual([4]);
  }, 90_000);

  it('--config prints a devices: list the gateway config takes, whose entries read the devices found', async () => {
    const r = await runCli(['scan', '--modbus', url, ...UNITS, '--config'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^# silent \(no answer\): unit 5$/m);
    expect(r.stdout).toMatch(/^# answered, but neither SunSpec nor a known meter: unit 4 /m);
    expect(r.stdout).toMatch(
      /# unit 1: inverter Fronius Symo 6\.0-3-M serial 3409 \(SunSpec models 1, 113, 120, 121, 122, 123\)/,
    );
    expect(r.stdout).toMatch(/# setup notes: config\/devices\/fronius-sunspec\.template\.yaml/);
    expect(r.stdout).toMatch(/# setup notes: config\/devices\/eastron-sdm630\.template\.yaml/);
    const { devices } = parse(r.stdout) as { devices: Record<string, unknown>[] };
    expect(devices.map((d) => [d.driver, d.unit])).toEqual([
      ['sunspec', 1],
      ['sunspec-meter', 2],
      ['sdm630', 3],
    ]);
    // Each entry is a valid device config, and the driver it names reads the device behind it.
    const configs = devices.map((d) => deviceConfigSchema(FIELD_DRIVERS).parse(d) as DeviceConfigBase);
    const ctx = {
      clock: new VirtualClock(0),
      modbus: new ModbusBusRegistry(),
      field: 'devices',
      devices: configs,
      shared: <T>(_k: unknown, make: () => T) => make(),
    };
    const polled: Record<string, unknown>[] = [];
    for (const config of configs) {
      const device = createDevice(FIELD_DRIVERS, config, ctx);
      polled.push((await device.poll(0)) as Record<string, unknown>);
      await device.close();
    }
    expect(polled[0]!.acPowerW).toBeCloseTo(4200, 0);
    expect(polled[1]!.acPowerW).toBeCloseTo(1800, 0);
    expect(polled[2]!.acPowerW).toBeCloseTo(900, 0);
  }, 90_000);
});
