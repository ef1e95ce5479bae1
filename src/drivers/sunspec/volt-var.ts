import { ErrorCode, P2PError } from '../../core/errors.js';
import type { ModbusBus } from '../../hal/modbus/bus.js';
import { readModel, type SunSpecMap } from './discovery.js';
import { decodeGroup, decodeModel, encodePoint, modelDef, pointDef, rawValue } from './models.js';

/** A volt-var curve: voltage in % of VRef, reactive power in % of WMax (positive = injecting). */
export interface VoltVarCurve {
  points: { vPct: number; varPct: number }[];
}

const MAX_POINTS = 20;
/** DeptRef: the curve's reactive power is in % of WMax. */
const DEPT_REF_W_MAX_PCT = 1;

function location(map: SunSpecMap, unit: number) {
  const loc = map.models.find((m) => m.id === 126);
  if (!loc) throw new P2PError(ErrorCode.driver, `unit ${unit} has no volt-var model (126)`, { component: 'sunspec' });
  return loc;
}

/** The volt-var settings of model 126: whether it is enabled, the active curve and every curve's points. */
export async function readVoltVar(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
): Promise<{ enabled: boolean; activeCurve: number | null; curves: VoltVarCurve[] }> {
  const loc = location(map, unit);
  const def = modelDef(126)!;
  const regs = await readModel(bus, unit, loc, 'slow');
  const header = decodeModel(def, regs);
  const count = Math.floor((loc.length - def.fixedLength) / def.group!.length);
  const curves = Array.from({ length: count }, (_, i) => {
    const c = decodeGroup(def, regs, i);
    const n = Math.min(MAX_POINTS, Number(c.ActPt ?? 0));
    // a point whose voltage or reactive power the device leaves out (or scales out of range) is no point
    const value = (name: string) => (typeof c[name] === 'number' ? (c[name] as number) : Number.NaN);
    return {
      points: Array.from({ length: n }, (_, k) => ({ vPct: value(`V${k + 1}`), varPct: value(`VAr${k + 1}`) })).filter(
        (p) => Number.isFinite(p.vPct) && Number.isFinite(p.varPct),
      ),
    };
  });
  return {
    enabled: (Number(header.ModEna ?? 0) & 1) === 1,
    activeCurve: typeof header.ActCrv === 'number' && header.ActCrv > 0 ? header.ActCrv : null,
    curves,
  };
}

/**
 * Writes `curve` as curve 1 (points, DeptRef = % of WMax), makes it the active curve and enables the
 * volt-var mode; scale factors are the device's own. Voltages must rise from point to point.
 */
export async function writeVoltVar(bus: ModbusBus, unit: number, map: SunSpecMap, curve: VoltVarCurve): Promise<void> {
  const n = curve.points.length;
  if (n < 2 || n > MAX_POINTS)
    throw new P2PError(ErrorCode.input, `a volt-var curve has 2 to ${MAX_POINTS} points (got ${n})`, {
      field: 'points',
    });
  curve.points.forEach((p, i) => {
    if (i > 0 && !(p.vPct > curve.points[i - 1]!.vPct))
      throw new P2PError(ErrorCode.input, `points[${i}].vPct must be above the point before`, {
        field: `points[${i}].vPct`,
      });
  });
  const loc = location(map, unit);
  const def = modelDef(126)!;
  const regs = await readModel(bus, unit, loc, 'write');
  const sf = (name: string) => {
    const v = rawValue(pointDef(def, name), regs);
    if (typeof v !== 'number')
      throw new P2PError(ErrorCode.driver, `unit ${unit}: ${name} is not implemented; cannot write a curve`, {
        component: 'sunspec',
      });
    return v;
  };
  const group = def.group!;
  const gp = (name: string) => group.points.find((p) => p.name === name)!;
  const words = [
    ...encodePoint(gp('ActPt'), n),
    ...encodePoint(gp('DeptRef'), DEPT_REF_W_MAX_PCT),
    ...curve.points.flatMap((p, k) => [
      ...encodePoint(gp(`V${k + 1}`), p.vPct, sf('V_SF')),
      ...encodePoint(gp(`VAr${k + 1}`), p.varPct, sf('DeptRef_SF')),
    ]),
  ];
  const curveStart = loc.address + 2 + def.fixedLength;
  await bus.writeRegisters(unit, curveStart + gp('ActPt').offset, words);
  await bus.writeRegisters(unit, loc.address + pointDef(def, 'ActCrv').offset, [1, 1]); // ActCrv = 1, ModEna = enabled
}
