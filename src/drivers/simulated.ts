import type { PointData } from '../agent/process-image.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { SimulatedCell } from '../sim/simulated-cell.js';
import { type Device, type InverterControl, Points } from './device.js';

/** A device of an in-process simulated cell (the demo, and bench rigs without Modbus). */
export class SimulatedDevice implements Device {
  readonly backend = 'simulated';
  readonly inverter: InverterControl | undefined;

  constructor(
    readonly id: string,
    readonly kind: 'pv-inverter' | 'household-meter',
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

  async poll(now: number): Promise<Record<string, PointData>> {
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
