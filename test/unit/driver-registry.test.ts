import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEVICE_DRIVERS, type DeviceConfig, gatewayConfig, loadGatewayConfig } from '../../src/agent/config.js';
import { buildDevices } from '../../src/agent/wiring.js';
import { benchConfigs } from '../../src/bench/configs.js';
import { BenchGrid } from '../../src/bench/grid.js';
import { loadScenario } from '../../src/bench/scenario.js';
import { VirtualClock } from '../../src/core/clock.js';
import { ErrorCode, exitCodeFor, P2PError } from '../../src/core/errors.js';
import type { Device } from '../../src/drivers/device.js';
import { DeviceUsage, defineDriver } from '../../src/drivers/driver.js';
import { NATURES } from '../../src/drivers/natures.js';
import { createDevice, deviceConfigSchema, FIELD_DRIVERS } from '../../src/drivers/registry.js';
import { ModbusBusRegistry } from '../../src/hal/modbus/bus.js';
import { CompressedDay } from '../../src/sim/profiles.js';
import { tempDir } from '../helpers/net.js';

type DeviceConfigInput = z.input<typeof DeviceConfig>;

const tmp = tempDir();
afterAll(() => tmp.remove());

const gateway = { id: 'g1', kind: 'inverter', cell: 'c1' } as const;

/**
 * One device config per registered driver, with only the fields it needs, and the usage it must get
 * when the config names none (what the gateway counted it as before devices had a usage: the SunSpec
 * and simulated inverters as PV, everything else on the load side; the SunSpec meter, newer, at the grid point).
 */
const SAMPLES: Record<string, { config: Record<string, unknown>; usage: DeviceUsage }[]> = {
  sunspec: [{ config: { driver: 'sunspec', modbus: 'tcp://127.0.0.1:1502', unit: 1 }, usage: 'pv' }],
  sdm630: [
    { config: { driver: 'sdm630', modbus: 'rtu:///dev/ttyUSB0?baud=9600&parity=none', unit: 2 }, usage: 'load' },
  ],
  'register-map': [
    {
      config: {
        driver: 'register-map',
        modbus: 'tcp://127.0.0.1:1502',
        map: join(import.meta.dirname, '..', '..', 'config', 'devices', 'sdm630.register-map.yaml'),
      },
      usage: 'load',
    },
  ],
  'pylontech-can': [{ config: { driver: 'pylontech-can', interface: 'mock:registry' }, usage: 'battery' }],
  'gpio-relay': [{ config: { driver: 'gpio-relay', chip: 'mock:registry', pin: 17 }, usage: 'load' }],
  'gpio-input': [{ config: { driver: 'gpio-input', chip: 'mock:registry', pin: 27, activeLow: true }, usage: 'load' }],
  simulated: [
    { config: { driver: 'simulated', kind: 'pv-inverter', bus: 'b1' }, usage: 'pv' },
    { config: { driver: 'simulated', kind: 'household-meter', bus: 'b1' }, usage: 'load' },
  ],
  'sunspec-meter': [
    // a SunSpec meter is most often the feed-in point's meter (a Fronius Smart Meter)
    { config: { driver: 'sunspec-meter', modbus: 'tcp://127.0.0.1:1502', unit: 240 }, usage: 'grid' },
  ],
};

const samples = Object.values(SAMPLES)
  .flat()
  .map((s, i) => ({ ...s, config: { id: `d${i}`, ...s.config } as DeviceConfigInput }));

function loadError(yaml: string): P2PError {
  const file = join(tmp.dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  try {
    loadGatewayConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(P2PError);
    expect((err as P2PError).message).toContain(file);
    expect(exitCodeFor(err)).toBe(2);
    return err as P2PError;
  }
  throw new Error('config was accepted');
}

const base = 'gateway: { id: g1, kind: inverter, cell: c1 }\n';

describe('driver registry', () => {
  it('holds every driver once, each with a sample config in this test', () => {
    const names = DEVICE_DRIVERS.map((d) => d.driver);
    expect(new Set(names).size).toBe(names.length);
    expect(Object.keys(SAMPLES).sort()).toEqual([...names].sort());
    // The drivers of real devices live in src/drivers; the simulated one is added by the gateway.
    expect(FIELD_DRIVERS.map((d) => d.driver)).not.toContain('simulated');
  });

  it('declares, for every driver, known natures and a default usage among the usages it allows', () => {
    for (const d of DEVICE_DRIVERS) {
      expect(d.usages.length, d.driver).toBeGreaterThan(0);
      for (const u of d.usages) expect(DeviceUsage.options, d.driver).toContain(u);
      const defaults = typeof d.defaultUsage === 'string' ? [d.defaultUsage] : Object.values(d.defaultUsage.byKind);
      for (const u of defaults) expect(d.usages, d.driver).toContain(u);
      const natures = typeof d.nature === 'string' ? [d.nature] : Object.values(d.nature.byKind);
      for (const n of natures) expect(Object.keys(NATURES), d.driver).toContain(n);
    }
  });

  it('parses a config with a device of each driver and fills in the default usage', () => {
    const config = gatewayConfig({ gateway, devices: samples.map((s) => s.config) });
    expect(config.devices.map((d) => d.driver)).toEqual(samples.map((s) => s.config.driver));
    expect(config.devices.map((d) => d.usage)).toEqual(samples.map((s) => s.usage));
  });

  it('keeps a usage the config names', () => {
    const config = gatewayConfig({
      gateway,
      devices: [
        { id: 'm', driver: 'sdm630', modbus: 'tcp://127.0.0.1:1502', usage: 'grid' },
        { id: 'h', driver: 'sunspec', modbus: 'tcp://127.0.0.1:1502', unit: 2, usage: 'battery' },
        { id: 's', driver: 'simulated', kind: 'household-meter', bus: 'b1', usage: 'grid' },
      ],
    });
    expect(config.devices.map((d) => d.usage)).toEqual(['grid', 'battery', 'grid']);
  });

  it('refuses an unknown usage, one the driver does not allow and an unknown driver: exit 2 naming the file and field', () => {
    const sdm = '{ id: m1, driver: sdm630, modbus: "tcp://127.0.0.1:502"';
    const bad = loadError(`${base}devices:\n  - ${sdm} }\n  - ${sdm.replace('m1', 'm2')}, usage: sun }\n`);
    expect(bad.field).toBe('devices[1].usage');
    expect(bad.message).toMatch(/devices\[1\]\.usage: .*"grid"\|"pv"\|"load"\|"battery"/);
    expect(bad.code).toBe(ErrorCode.config);

    const notAllowed = loadError(`${base}devices: [{ id: b1, driver: pylontech-can, interface: can0, usage: pv }]\n`);
    expect(notAllowed.field).toBe('devices[0].usage');
    expect(notAllowed.message).toMatch(/battery/);

    const unknown = loadError(`${base}devices: [{ id: t1, driver: toaster }]\n`);
    expect(unknown.field).toBe('devices[0].driver');
    for (const d of DEVICE_DRIVERS) expect(unknown.message).toContain(d.driver);
  });

  it("still names a bad field of a driver's own", () => {
    expect(loadError(`${base}devices: [{ id: s1, driver: sunspec, modbus: "tcp://h:1", unit: 300 }]\n`).field).toBe(
      'devices[0].unit',
    );
    expect(loadError(`${base}devices: [{ id: s1, driver: sunspec, modbus: "udp://h:1" }]\n`).field).toBe(
      'devices[0].modbus',
    );
    expect(loadError(`${base}devices: [{ id: s1, driver: sdm630, modbus: "tcp://h:1", ratedW: 5 }]\n`).message).toMatch(
      /ratedW/,
    );
  });

  it('builds each device through its driver, the Modbus ones sharing one bus per port', async () => {
    const clock = new VirtualClock(Date.parse('2026-06-21T12:00:00Z'));
    const config = gatewayConfig({
      gateway,
      devices: [
        ...samples.map((s) => s.config),
        { id: 'm9', driver: 'sdm630', modbus: 'tcp://127.0.0.1:1502', unit: 9 },
      ],
    });
    const devices = buildDevices(config, clock);
    try {
      expect(devices.map((d) => [d.id, d.kind, d.backend])).toEqual([
        ['d0', 'sunspec-inverter', 'modbus-tcp'],
        ['d1', 'sdm630', 'modbus-rtu'],
        ['d2', 'register-map:SDM630', 'modbus-tcp'],
        ['d3', 'pylontech-bms', 'can'],
        ['d4', 'relay', 'gpio'],
        ['d5', 'digital-input', 'gpio'],
        ['d6', 'pv-inverter', 'simulated'],
        ['d7', 'household-meter', 'simulated'],
        ['d8', 'sunspec-meter', 'modbus-tcp'],
        ['m9', 'sdm630', 'modbus-tcp'],
      ]);
      const busOf = (d: Device) => (d as unknown as { bus: unknown }).bus;
      expect(busOf(devices[9]!)).toBe(busOf(devices[0]!));
      expect(busOf(devices[8]!)).toBe(busOf(devices[0]!));
      expect(busOf(devices[1]!)).not.toBe(busOf(devices[0]!));
      expect(devices[0]!.inverter?.ratedW).toBe(5000);
      expect(devices[4]!.relay).toBeDefined();
      expect(devices[6]!.inverter?.ratedW).toBe(5000);
      // Both simulated devices live in one standalone cell and answer from it.
      const pv = await devices[6]!.poll(clock.now());
      const meter = await devices[7]!.poll(clock.now());
      expect(pv.voltagePu).toBe(meter.voltagePu);
    } finally {
      await Promise.all(devices.map((d) => d.close()));
    }
  });

  it("loads the bench's generated configs unchanged: each house's inverter is PV, its meter load", () => {
    const scenario = loadScenario('default');
    const now = Date.parse('2026-06-21T12:00:00Z');
    const grid = new BenchGrid(scenario, new CompressedDay(now, scenario.speedup, 12), now);
    const endpoints = Object.fromEntries(
      grid.devices.map((d, i) => [d.id, { url: `tcp://127.0.0.1:${20_000 + i}`, unit: 1 }]),
    );
    const layout = {
      brokerUrls: { '*': 'mqtt://127.0.0.1:1883' },
      stateDir: tmp.dir,
      feederFiles: Object.fromEntries(scenario.cells.map((c) => [c.id, join(tmp.dir, `${c.id}.json`)])),
      endpoints,
      statusPorts: {},
      speedup: scenario.speedup,
    };
    const configs = benchConfigs(scenario, grid.devices, layout).map((c) => gatewayConfig(c));
    const devices = configs.flatMap((c) => c.devices);
    expect(devices.length).toBeGreaterThan(0);
    expect(devices).toHaveLength(grid.devices.length);
    for (const d of devices) {
      const kind = grid.devices.find((g) => g.id === d.id)!.kind;
      expect([d.driver, d.usage]).toEqual(kind === 'pv-inverter' ? ['sunspec', 'pv'] : ['sdm630', 'load']);
    }
    // The scenario's voltageAscent and voltageMarginPu reach every voltage agent (else the defaults).
    const dual = configs.filter((c) => c.voltageControl.method === 'dual');
    expect(dual.length).toBeGreaterThan(0);
    for (const c of dual) {
      expect(c.voltageControl.ascent).toEqual({ overvoltage: 'plain', undervoltage: 'accelerated' });
      expect(c.voltageControl.marginPu).toBe(0.01);
    }
    const overridden = { ...scenario, voltageAscent: 'accelerated' as const, voltageMarginPu: 0.003 };
    const accelerated = benchConfigs(overridden, grid.devices, layout).map((c) => gatewayConfig(c));
    for (const c of accelerated.filter((c) => c.voltageControl.method === 'dual')) {
      expect(c.voltageControl.ascent).toEqual({ overvoltage: 'accelerated', undervoltage: 'accelerated' });
      expect(c.voltageControl.marginPu).toBe(0.003);
    }
  });

  it('a driver is one definition and one entry in the list: its devices parse and are built', async () => {
    const made: string[] = [];
    const thermometer = defineDriver({
      driver: 'thermometer',
      nature: 'meter',
      usages: ['load'],
      defaultUsage: 'load',
      fields: { offsetC: z.number().default(0) },
      create: (d): Device => {
        made.push(`${d.id}:${d.offsetC}:${d.usage}`);
        return { id: d.id, kind: 'thermometer', backend: 'test', poll: async () => ({}), close: async () => {} };
      },
    });
    const drivers = [...FIELD_DRIVERS, thermometer] as const;
    const schema = z.array(deviceConfigSchema(drivers));
    const devices = schema.parse([
      { id: 't1', driver: 'thermometer', offsetC: 0.5 },
      { id: 'm1', driver: 'sdm630', modbus: 'tcp://127.0.0.1:1502' },
    ]);
    expect(devices[0]).toEqual({ id: 't1', driver: 'thermometer', offsetC: 0.5, usage: 'load' });
    expect(schema.safeParse([{ id: 't1', driver: 'thermometer', usage: 'pv' }]).success).toBe(false);
    const modbus = new ModbusBusRegistry();
    const ctx = {
      clock: new VirtualClock(0),
      modbus,
      field: 'devices[0]',
      devices,
      shared: <T>(_k: unknown, make: () => T) => make(),
    };
    const device = createDevice(drivers, devices[0]!, ctx);
    expect(device.kind).toBe('thermometer');
    expect(made).toEqual(['t1:0.5:load']);
    expect(() => createDevice(FIELD_DRIVERS, devices[0]!, ctx)).toThrow(/devices\[0\]: driver "thermometer" of t1/);
  });
});
