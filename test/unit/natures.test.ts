import { describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { ProcessImage } from '../../src/agent/process-image.js';
import { connectionPoint } from '../../src/agent/roles/prosumer.js';
import { VirtualClock } from '../../src/core/clock.js';
import { ErrorCode, P2PError } from '../../src/core/errors.js';
import { GpioDevice } from '../../src/drivers/gpio.js';
import {
  batteryNature,
  consumedPowerW,
  inverterNature,
  meterNature,
  NATURES,
  type PointData,
  type PointDefinition,
  Points,
  switchNature,
} from '../../src/drivers/natures.js';
import { PylontechBattery } from '../../src/drivers/pylontech-bms.js';
import { Sdm630Meter } from '../../src/drivers/sdm630.js';
import { SunSpecInverter } from '../../src/drivers/sunspec/inverter.js';
import { SunSpecMeter } from '../../src/drivers/sunspec/meter.js';
import { buildRadialFeeder } from '../../src/grid/feeder.js';
import { MockCanBus } from '../../src/hal/can/can-bus.js';
import { openGpio } from '../../src/hal/gpio.js';
import type { ModbusBus } from '../../src/hal/modbus/bus.js';
import { SimulatedPylontechBms } from '../../src/sim/devices/pylontech-bms.js';
import {
  FixedInverterPlant,
  FixedMeterPlant,
  ModbusException,
  type RegisterDevice,
} from '../../src/sim/devices/register-device.js';
import { SimulatedSdm630 } from '../../src/sim/devices/sdm630.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';
import { SimulatedSunSpecMeter } from '../../src/sim/devices/sunspec-meter.js';
import { CompressedDay } from '../../src/sim/profiles.js';
import { SimulatedCell } from '../../src/sim/simulated-cell.js';
import { SimulatedDevice } from '../../src/sim/simulated-device.js';

function shapeOf(value: PointData): PointDefinition['shape'] {
  if (Array.isArray(value)) return 'phases';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'flag';
  return 'text';
}

/** Every point of a reading is one of the nature's, in the nature's shape (a text list is a text). */
function expectOfNature(reading: Record<string, PointData>, nature: Record<string, PointDefinition>): void {
  for (const [point, value] of Object.entries(reading)) {
    expect(Object.keys(nature), point).toContain(point);
    const shape = nature[point]!.shape;
    expect(shapeOf(value), point).toBe(shape === 'text-list' ? 'text' : shape);
  }
}

/** A Modbus bus answered by a simulated device in the same process (exceptions as the real bus reports them). */
function busTo(device: RegisterDevice, clock: VirtualClock): ModbusBus {
  const call = async <T>(f: () => T): Promise<T> => {
    try {
      return f();
    } catch (err) {
      const code = err instanceof ModbusException ? err.modbusErrorCode : undefined;
      throw new P2PError(ErrorCode.driver, `Modbus exception ${code}`, { cause: { modbusException: code } });
    }
  };
  return {
    endpoint: { kind: 'tcp', host: '127.0.0.1', port: 502 },
    readHolding: (_unit: number, address: number, count: number) =>
      call(() => device.readHolding(address, count, clock.now())),
    readInput: (_unit: number, address: number, count: number) =>
      call(() => device.readInput(address, count, clock.now())),
    writeRegisters: (_unit: number, address: number, values: number[]) =>
      call(() => device.writeHolding(address, values, clock.now())),
  } as unknown as ModbusBus;
}

describe('natures', () => {
  it('name every point once: a point shared by natures has one unit and one shape', () => {
    const seen = new Map<string, PointDefinition>();
    for (const nature of Object.values(NATURES)) {
      for (const [name, def] of Object.entries(nature as Record<string, PointDefinition>)) {
        expect(Points[name as keyof typeof Points]).toBe(name);
        const other = seen.get(name);
        if (other) expect({ unit: def.unit, shape: def.shape }, name).toEqual({ unit: other.unit, shape: other.shape });
        seen.set(name, def);
      }
    }
    expect(Object.keys(Points).sort()).toEqual([...seen.keys()].sort());
  });

  it('say which way power is positive: a meter imports, an inverter produces', () => {
    expect(meterNature.acPowerW.meaning).toMatch(/positive = imported/);
    expect(inverterNature.acPowerW.meaning).toMatch(/positive = produced/);
    expect(inverterNature.reactivePowerVAr.meaning).toMatch(/positive = injected/);
    expect(batteryNature.currentA.meaning).toMatch(/positive = charging/);
    expect(consumedPowerW('meter', 1200)).toBe(1200);
    expect(consumedPowerW('inverter', 3000)).toBe(-3000);
  });

  it('a SunSpec inverter reports inverter points; producing 4 kW reads +4000 W', async () => {
    const clock = new VirtualClock(1_000_000);
    const sim = new SimulatedSunSpecInverter({ ratedW: 5000 }, new FixedInverterPlant(5000, 4000));
    const inverter = new SunSpecInverter('pv', busTo(sim, clock), 1, { ratedW: 5000, clock });
    const reading = await inverter.poll(clock.now());
    expectOfNature(reading, inverterNature);
    expect(reading.acPowerW).toBeCloseTo(4000, 0);
    expect(consumedPowerW('inverter', reading.acPowerW as number)).toBeCloseTo(-4000, 0);
    expect(reading.acVoltageV).toHaveLength(3);
  });

  it('an SDM630 reports meter points; a household drawing 1.5 kW reads +1500 W', async () => {
    const clock = new VirtualClock(1_000_000);
    const meter = new Sdm630Meter('m', busTo(new SimulatedSdm630(new FixedMeterPlant(1500)), clock), 1);
    const reading = await meter.poll();
    expectOfNature(reading, meterNature);
    expect(reading.acPowerW).toBeCloseTo(1500, 3);
    expect(reading.energyExportWh).toBe(0);
  });

  it('a SunSpec meter (integer 203 or float 213) reports meter points; a household drawing 1.5 kW reads +1500 W', async () => {
    for (const float of [false, true]) {
      const clock = new VirtualClock(1_000_000);
      const sim = new SimulatedSunSpecMeter({ float }, new FixedMeterPlant(1500));
      const reading = await new SunSpecMeter('m', busTo(sim, clock), 1).poll();
      expectOfNature(reading, meterNature);
      expect(reading.acPowerW).toBe(1500);
      expect(reading.acVoltageV).toEqual([230, 230, 230]);
      expect(reading.reactivePowerVAr).toBe(300);
    }
  });

  it('a float SunSpec inverter (113) reports the same inverter points as the integer one', async () => {
    const clock = new VirtualClock(1_000_000);
    const sim = new SimulatedSunSpecInverter({ ratedW: 5000, float: true }, new FixedInverterPlant(5000, 4000));
    const reading = await new SunSpecInverter('pv', busTo(sim, clock), 1, { ratedW: 5000, clock }).poll(clock.now());
    expectOfNature(reading, inverterNature);
    expect(reading).toMatchObject({
      acPowerW: 4000,
      acVoltageV: [230, 230, 230],
      frequencyHz: 50,
      availablePowerW: 4000,
    });
  });

  it('simulated devices report the points of the nature of their kind', async () => {
    const clock = new VirtualClock(Date.parse('2026-06-21T12:00:00Z'));
    const cell = new SimulatedCell(
      buildRadialFeeder({
        name: 't',
        baseKV: 0.4,
        slack: 'tx',
        vSlackPu: 1,
        buses: [],
        lines: [{ from: 'tx', to: 'b1', rOhm: 0.1, xOhm: 0.04 }],
      }),
      new CompressedDay(clock.now(), 1, 12),
    );
    cell.addDevice({ id: 'pv', kind: 'pv-inverter', bus: 'b1', ratedW: 5000 }, clock.now());
    cell.addDevice({ id: 'house', kind: 'household-meter', bus: 'b1', ratedW: 3000 }, clock.now());
    await clock.advance(1000);
    const pv = await new SimulatedDevice('pv', 'pv-inverter', cell, 5000).poll(clock.now());
    const house = await new SimulatedDevice('house', 'household-meter', cell, 3000).poll(clock.now());
    expectOfNature(pv, inverterNature);
    expectOfNature(house, meterNature);
    expect(pv.acPowerW as number).toBeGreaterThan(0); // noon: producing
    expect(house.acPowerW as number).toBeGreaterThan(0); // a household consumes
  });

  it('a Pylontech BMS reports battery points; discharging reads as negative current and power', async () => {
    const clock = new VirtualClock(0);
    const bms = new SimulatedPylontechBms(new MockCanBus('natures'), clock, { capacityAh: 100, socPct: 60 });
    bms.currentA = -10;
    const battery = new PylontechBattery('bat', new MockCanBus('natures'), { clock });
    await clock.advance(2000);
    const reading = await battery.poll(clock.now());
    expectOfNature(reading, batteryNature);
    expect(reading.currentA).toBe(-10);
    expect(reading.batteryPowerW as number).toBeLessThan(0);
    await battery.close();
    await bms.close();
  });

  it('a GPIO relay or contact reports the switch point', async () => {
    const relay = new GpioDevice('r', 'relay', () => openGpio('mock:natures', 3, 'out'));
    await relay.relay!.set(true);
    expectOfNature(await relay.poll(), switchNature);
  });
});

describe("the prosumer's connection point by usage", () => {
  const image = (values: Record<string, number>) => {
    const img = new ProcessImage(10_000);
    for (const [point, value] of Object.entries(values)) img.write(point, value, 0);
    return img.freeze(0);
  };
  const modbus = 'tcp://127.0.0.1:1502';

  it('without usage: SunSpec and simulated inverters are PV, meters are load (as before usage existed)', () => {
    const { devices } = gatewayConfig({
      gateway: { id: 'g', kind: 'inverter', cell: 'c' },
      devices: [
        { id: 'pv', driver: 'sunspec', modbus },
        { id: 'm', driver: 'sdm630', modbus, unit: 2 },
        { id: 'spv', driver: 'simulated', kind: 'pv-inverter', bus: 'b1' },
        { id: 'sm', driver: 'simulated', kind: 'household-meter', bus: 'b1' },
        { id: 'bat', driver: 'pylontech-can', interface: 'mock:x' },
      ],
    });
    const reading = connectionPoint(
      devices,
      image({
        'pv.acPowerW': 3000,
        'm.acPowerW': 800,
        'spv.acPowerW': 1000,
        'sm.acPowerW': 700,
        'bat.batteryPowerW': 500,
      }),
    );
    expect(reading).toEqual({ netW: 800 + 700 - 3000 - 1000, pvW: 4000, loadW: 1500, voltagePu: null });
  });

  it('a grid meter gives the net; the load is what is left after PV and battery', () => {
    const { devices } = gatewayConfig({
      gateway: { id: 'g', kind: 'inverter', cell: 'c' },
      devices: [
        { id: 'grid', driver: 'sdm630', modbus, usage: 'grid' },
        { id: 'pv', driver: 'sunspec', modbus, unit: 2 },
        { id: 'bat', driver: 'sunspec', modbus, unit: 3, usage: 'battery' },
      ],
    });
    // 3 kW PV, the battery inverter discharging 1 kW, 500 W exported: the house uses 3.5 kW.
    const reading = connectionPoint(
      devices,
      image({ 'grid.acPowerW': -500, 'pv.acPowerW': 3000, 'bat.acPowerW': 1000, 'grid.voltagePu': 1.02 }),
    );
    expect(reading).toEqual({ netW: -500, pvW: 3000, loadW: 3500, voltagePu: 1.02 });
  });

  it('a meter in front of the PV system counts its export as generation; a charging battery as consumption', () => {
    const { devices } = gatewayConfig({
      gateway: { id: 'g', kind: 'inverter', cell: 'c' },
      devices: [
        { id: 'pvm', driver: 'sdm630', modbus, usage: 'pv' },
        { id: 'house', driver: 'sdm630', modbus, unit: 2 },
        { id: 'batm', driver: 'sdm630', modbus, unit: 3, usage: 'battery' },
      ],
    });
    const reading = connectionPoint(
      devices,
      image({ 'pvm.acPowerW': -2500, 'house.acPowerW': 900, 'batm.acPowerW': 600 }),
    );
    expect(reading).toEqual({ netW: 900 + 600 - 2500, pvW: 2500, loadW: 900, voltagePu: null });
  });

  it('nothing fresh: no reading', () => {
    const { devices } = gatewayConfig({
      gateway: { id: 'g', kind: 'inverter', cell: 'c' },
      devices: [{ id: 'm', driver: 'sdm630', modbus }],
    });
    expect(connectionPoint(devices, image({}))).toBeUndefined();
  });
});
