import { ErrorCode, P2PError } from '../../core/errors.js';
import type { ModbusBus } from '../../hal/modbus/bus.js';
import type { Device } from '../device.js';
import { defineDriver } from '../driver.js';
import { acquireModbusBus, modbusConnectionFields } from '../modbus-connection.js';
import { type MeterReading, Points } from '../natures.js';
import { discoverSunSpec, readModel, type SunSpecMap } from './discovery.js';
import { isMeterModel, perPhase } from './measurement-models.js';
import { decodeModel, type ModelDef, modelDef } from './models.js';

/**
 * A SunSpec meter's measurement model (201-204 or 211-214) in the meter nature's points. SunSpec
 * meters count power flowing in as positive (imported at a connection point), as the nature does.
 */
export function meterReading(def: ModelDef, regs: readonly number[], nominalPhaseV = 230): MeterReading {
  const v = decodeModel(def, regs);
  const voltages = perPhase(def.id, v, 'PhVph');
  const present = voltages.filter((x): x is number => x !== null);
  const out: MeterReading = { [Points.acVoltageV]: voltages };
  if (present.length > 0) out[Points.voltagePu] = present.reduce((a, b) => a + b, 0) / present.length / nominalPhaseV;
  if (typeof v.W === 'number') out[Points.acPowerW] = v.W;
  if (typeof v.VAR === 'number') out[Points.reactivePowerVAr] = v.VAR;
  if (typeof v.Hz === 'number') out[Points.frequencyHz] = v.Hz;
  if (typeof v.TotWhImp === 'number') out[Points.energyWh] = v.TotWhImp;
  if (typeof v.TotWhExp === 'number') out[Points.energyExportWh] = v.TotWhExp;
  return out;
}

/** The readings of a SunSpec meter in the contract's names (`scan`). */
export function meterScanReadings(def: ModelDef, regs: readonly number[]): Record<string, unknown> {
  const r = meterReading(def, regs);
  const out: Record<string, unknown> = {};
  if (r.acPowerW !== undefined) out.acPowerW = r.acPowerW;
  out.acVoltageV = r.acVoltageV;
  if (r.frequencyHz !== undefined) out.frequencyHz = r.frequencyHz;
  if (r.energyWh !== undefined) out.energyWh = r.energyWh;
  if (r.energyExportWh !== undefined) out.energyExportWh = r.energyExportWh;
  return out;
}

/**
 * A SunSpec meter as a gateway device (a Fronius Smart Meter behind its inverter, a Carlo Gavazzi
 * EM24 in SunSpec mode, ...). The model chain is discovered on the first poll and again after a
 * failed one.
 */
export class SunSpecMeter implements Device {
  readonly kind = 'sunspec-meter';
  readonly backend: string;
  private map: SunSpecMap | undefined;

  constructor(
    readonly id: string,
    private readonly bus: ModbusBus,
    private readonly unit: number,
    private readonly nominalPhaseV = 230,
    private readonly release: () => Promise<void> = async () => {},
  ) {
    this.backend = bus.endpoint.kind === 'tcp' ? 'modbus-tcp' : 'modbus-rtu';
  }

  async poll(): Promise<MeterReading> {
    try {
      this.map ??= await discoverSunSpec(this.bus, this.unit);
      if (!this.map)
        throw new P2PError(ErrorCode.driver, `${this.id}: unit ${this.unit} has no SunSpec map`, {
          component: this.id,
        });
      const loc = this.map.models.find((m) => isMeterModel(m.id));
      if (!loc)
        throw new P2PError(ErrorCode.driver, `${this.id}: unit ${this.unit} has no meter model (201-204, 211-214)`, {
          component: this.id,
        });
      return meterReading(modelDef(loc.id)!, await readModel(this.bus, this.unit, loc), this.nominalPhaseV);
    } catch (err) {
      this.map = undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.release();
  }
}

/** Driver `sunspec-meter`: a SunSpec meter (models 201-204 or their float variants 211-214) on Modbus TCP or RTU. */
export const sunspecMeterDriver = defineDriver({
  driver: 'sunspec-meter',
  nature: 'meter',
  usages: ['grid', 'pv', 'load', 'battery'],
  defaultUsage: 'grid',
  fields: modbusConnectionFields,
  create: (d, ctx) => {
    const { bus, release } = acquireModbusBus(d, ctx);
    return new SunSpecMeter(d.id, bus, d.unit, 230, release);
  },
});
