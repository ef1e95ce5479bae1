import type { ModbusBus } from '../../hal/modbus/bus.js';
import type { SunSpecMap } from './discovery.js';
import { type LegacyCurveModel, type LegacyCurves, readLegacyCurves, writeLegacyCurve } from './legacy-curve.js';

/** A volt-watt curve: voltage in % of VRef, the active power allowed in % of WMax. */
export interface VoltWattCurve {
  points: { vPct: number; wPct: number }[];
}

export interface VoltWattSettings {
  enabled: boolean;
  activeCurve: number | null;
  curves: VoltWattCurve[];
}

/** Model 132; DeptRef 1: the curve's power is in % of WMax (2 would be % of the available power). */
export const VOLT_WATT_132: LegacyCurveModel = { id: 132, y: 'W', deptRef: 1, title: 'volt-watt' };

function asVoltWatt(c: LegacyCurves): VoltWattSettings {
  return {
    enabled: c.enabled,
    activeCurve: c.activeCurve,
    curves: c.curves.map((x) => ({ points: x.points.map((p) => ({ vPct: p.vPct, wPct: p.yPct })) })),
  };
}

export async function readVoltWatt(bus: ModbusBus, unit: number, map: SunSpecMap): Promise<VoltWattSettings> {
  return asVoltWatt(await readLegacyCurves(bus, unit, map, VOLT_WATT_132));
}

/**
 * Writes `curve` as curve 1 of model 132 (DeptRef = % of WMax), makes it the active curve and
 * enables the volt-watt mode, then reads it back (a device that kept other values is an error).
 */
export async function writeVoltWatt(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
  curve: VoltWattCurve,
): Promise<VoltWattSettings> {
  const points = curve.points.map((p) => ({ vPct: p.vPct, yPct: p.wPct }));
  return asVoltWatt(await writeLegacyCurve(bus, unit, map, VOLT_WATT_132, points));
}
