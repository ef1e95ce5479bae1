import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { Device, InverterControl } from '../drivers/device.js';
import { type DeviceConfigBase, type DeviceConfigOf, DeviceUsage, defineDriver, sharedKey } from '../drivers/driver.js';
import { type InverterReading, type MeterReading, Points } from '../drivers/natures.js';
import { buildRadialFeeder } from '../grid/feeder.js';
import { CompressedDay } from './profiles.js';
import { SimulatedCell, type SimulatedDeviceKind } from './simulated-cell.js';

/** A device of an in-process simulated cell (the demo, and bench rigs without Modbus). */
export class SimulatedDevice implements Device {
  readonly backend = 'simulated';
  readonly inverter: InverterControl | undefined;

  constructor(
    readonly id: string,
    readonly kind: SimulatedDeviceKind,
    private readonly cell: SimulatedCell,
    ratedW = 0,
  ) {
    this.inverter =
      kind === 'pv-inverter'
        ? {
            ratedW,
            setActivePowerLimitPct: async (pct) => cell.setLimitPct(id, pct),
            setReactivePowerVAr: async (vAr) => cell.setReactiveVAr(id, vAr),
          }
        : undefined;
  }

  async poll(now: number): Promise<InverterReading | MeterReading> {
    const r = this.cell.read(this.id, now);
    if (!r)
      throw new P2PError(ErrorCode.driver, `simulated device ${this.id} is not in the cell`, { component: this.id });
    const v = SimulatedCell.phaseVolts(r.voltagePu);
    const common = { [Points.voltagePu]: r.voltagePu, [Points.acVoltageV]: [v, v, v] };
    if (this.kind === 'pv-inverter') {
      return {
        ...common,
        [Points.acPowerW]: r.powerW,
        [Points.reactivePowerVAr]: r.reactiveVAr,
        [Points.energyWh]: r.energyWh,
        [Points.limitPct]: r.limitPct,
        [Points.availablePowerW]: this.cell.availableW(this.id, now),
      };
    }
    return { ...common, [Points.acPowerW]: r.powerW, [Points.energyWh]: r.energyWh, [Points.energyExportWh]: 0 };
  }

  async close(): Promise<void> {}
}

/** The simulated cell the simulated devices of one gateway live in. */
export const SIMULATED_CELL = sharedKey<SimulatedCell>('simulated-cell');

const simulatedFields = {
  kind: z.enum(['pv-inverter', 'household-meter']),
  /** Inverter rating or the household's peak load. */
  ratedW: z.number().positive().default(5000),
  /** Bus of the simulated feeder the device is connected to. */
  bus: z.string().min(1),
};
type SimulatedDeviceConfig = DeviceConfigOf<'simulated', typeof simulatedFields, DeviceUsage>;

/** Driver `simulated`: a device simulated inside the process (bench rigs without hardware, the demo). */
export const simulatedDriver = defineDriver({
  driver: 'simulated',
  nature: { byKind: { 'pv-inverter': 'inverter', 'household-meter': 'meter' } },
  usages: DeviceUsage.options,
  defaultUsage: { byKind: { 'pv-inverter': 'pv', 'household-meter': 'load' } },
  fields: simulatedFields,
  create: (d, ctx): Device =>
    new SimulatedDevice(
      d.id,
      d.kind,
      ctx.shared(SIMULATED_CELL, () => standaloneCell(ctx.devices.filter(isSimulated), ctx.clock)),
      d.ratedW,
    ),
});

function isSimulated(d: DeviceConfigBase): d is SimulatedDeviceConfig {
  return d.driver === 'simulated';
}

/**
 * A simulated cell for the simulated devices of one gateway run on its own (a bench rig without
 * hardware): each device bus hangs off the transformer through one LV cable segment, and the day
 * runs in real time starting at the current wall-clock hour.
 */
export function standaloneCell(devices: readonly SimulatedDeviceConfig[], clock: Clock): SimulatedCell {
  const buses = [...new Set(devices.map((d) => d.bus))];
  const now = clock.now();
  const startHour = new Date(now).getHours() + new Date(now).getMinutes() / 60;
  const cell = new SimulatedCell(
    buildRadialFeeder({
      name: 'standalone',
      baseKV: 0.4,
      slack: 'tx',
      vSlackPu: 1.0,
      buses: [],
      lines: buses.map((bus) => ({ from: 'tx', to: bus, rOhm: 0.1, xOhm: 0.04 })),
    }),
    new CompressedDay(now, 1, startHour),
  );
  for (const d of devices) cell.addDevice({ id: d.id, kind: d.kind, bus: d.bus, ratedW: d.ratedW }, now);
  return cell;
}
