import type { ModbusBus } from '../../hal/modbus/bus.js';
import type { SunSpecMap } from './discovery.js';
import { type LegacyCurveModel, type LegacyCurves, readLegacyCurves, writeLegacyCurve } from './legacy-curve.js';

/** A volt-var curve: voltage in % of VRef, reactive power in % of WMax (positive = injecting). */
export interface VoltVarCurve {
  points: { vPct: number; varPct: number }[];
}

export interface VoltVarSettings {
  enabled: boolean;
  activeCurve: number | null;
  curves: VoltVarCurve[];
}

/** Model 126; DeptRef 1: the curve's reactive power is in % of WMax. */
export const VOLT_VAR_126: LegacyCurveModel = { id: 126, y: 'VAr', deptRef: 1, title: 'volt-var' };

function asVoltVar(c: LegacyCurves): VoltVarSettings {
  return {
    enabled: c.enabled,
    activeCurve: c.activeCurve,
    curves: c.curves.map((x) => ({ points: x.points.map((p) => ({ vPct: p.vPct, varPct: p.yPct })) })),
  };
}

/** The volt-var settings of model 126: whether it is enabled, the active curve and every curve's points. */
export async function readVoltVar(bus: ModbusBus, unit: number, map: SunSpecMap): Promise<VoltVarSettings> {
  return asVoltVar(await readLegacyCurves(bus, unit, map, VOLT_VAR_126));
}

/**
 * Writes `curve` as curve 1 of model 126 (points, DeptRef = % of WMax), makes it the active curve and
 * enables the volt-var mode; scale factors are the device's own. Voltages must rise from point to
 * point. Returns the settings read back (a device that kept other values is an error).
 */
export async function writeVoltVar(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
  curve: VoltVarCurve,
): Promise<VoltVarSettings> {
  const points = curve.points.map((p) => ({ vPct: p.vPct, yPct: p.varPct }));
  return asVoltVar(await writeLegacyCurve(bus, unit, map, VOLT_VAR_126, points));
}
