import { ErrorCode, P2PError } from '../../core/errors.js';
import type { ModbusBus } from '../../hal/modbus/bus.js';
import { readModel, type SunSpecMap } from './discovery.js';
import { decodeGroup, decodeModel, encodePoint, type ModelDef, modelDef, pointDef, rawValue } from './models.js';

/**
 * The curve models of the SunSpec 120 series, volt-var (126) and volt-watt (132): a header (ActCrv,
 * ModEna, scale factors) and curves of up to 20 points `V<k>` (% of VRef) and `<y><k>` (% of the
 * curve's DeptRef). A curve is written as curve 1, made the active curve and enabled, then read back.
 */
export interface LegacyCurveModel {
  id: 126 | 132;
  /** Prefix of the curve's dependent points: `VAr` (126) or `W` (132). */
  y: 'VAr' | 'W';
  /** What the dependent points are a percentage of, as written into DeptRef: 1 = % of WMax in both. */
  deptRef: number;
  title: string;
}

export interface CurvePoint {
  vPct: number;
  yPct: number;
}

export interface LegacyCurves {
  enabled: boolean;
  activeCurve: number | null;
  curves: { points: CurvePoint[] }[];
}

export const MAX_CURVE_POINTS = 20;

function location(map: SunSpecMap, unit: number, model: LegacyCurveModel) {
  const loc = map.models.find((m) => m.id === model.id);
  if (!loc)
    throw new P2PError(ErrorCode.driver, `unit ${unit} has no ${model.title} model (${model.id})`, {
      component: 'sunspec',
    });
  return loc;
}

/** Refuses a curve of fewer than 2 or more than `max` points, or whose voltages do not rise. */
export function checkCurve(points: readonly { vPct: number }[], max = MAX_CURVE_POINTS): void {
  const n = points.length;
  if (n < 2 || n > max)
    throw new P2PError(ErrorCode.input, `a curve has 2 to ${max} points (got ${n})`, { field: 'points' });
  points.forEach((p, i) => {
    if (i > 0 && !(p.vPct > points[i - 1]!.vPct))
      throw new P2PError(ErrorCode.input, `points[${i}].vPct must be above the point before`, {
        field: `points[${i}].vPct`,
      });
  });
}

export async function readLegacyCurves(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
  model: LegacyCurveModel,
): Promise<LegacyCurves> {
  const loc = location(map, unit, model);
  const def = modelDef(model.id)!;
  const regs = await readModel(bus, unit, loc, 'slow');
  const header = decodeModel(def, regs);
  const count = Math.floor((loc.length - def.fixedLength) / def.group!.length);
  const curves = Array.from({ length: count }, (_, i) => {
    const c = decodeGroup(def, regs, i);
    const n = Math.min(MAX_CURVE_POINTS, Number(c.ActPt ?? 0));
    // a point whose voltage or dependent value the device leaves out (or scales out of range) is no point
    const value = (name: string) => (typeof c[name] === 'number' ? (c[name] as number) : Number.NaN);
    return {
      points: Array.from({ length: n }, (_, k) => ({
        vPct: value(`V${k + 1}`),
        yPct: value(`${model.y}${k + 1}`),
      })).filter((p) => Number.isFinite(p.vPct) && Number.isFinite(p.yPct)),
    };
  });
  return {
    enabled: (Number(header.ModEna ?? 0) & 1) === 1,
    activeCurve: typeof header.ActCrv === 'number' && header.ActCrv > 0 ? header.ActCrv : null,
    curves,
  };
}

function scaleFactor(def: ModelDef, regs: readonly number[], name: string, unit: number): number {
  const v = rawValue(pointDef(def, name), regs);
  if (typeof v !== 'number')
    throw new P2PError(ErrorCode.driver, `unit ${unit}: ${name} is not implemented; cannot write a curve`, {
      component: 'sunspec',
    });
  return v;
}

/**
 * Writes `points` as curve 1 (DeptRef = `model.deptRef`), makes it the active curve, enables the
 * mode, then reads the model back: a device that kept other values (beyond the rounding its scale
 * factors allow) is reported, not trusted.
 */
export async function writeLegacyCurve(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
  model: LegacyCurveModel,
  points: readonly CurvePoint[],
): Promise<LegacyCurves> {
  checkCurve(points);
  const loc = location(map, unit, model);
  const def = modelDef(model.id)!;
  const regs = await readModel(bus, unit, loc, 'write');
  const vSf = scaleFactor(def, regs, 'V_SF', unit);
  const ySf = scaleFactor(def, regs, 'DeptRef_SF', unit);
  const group = def.group!;
  const gp = (name: string) => group.points.find((p) => p.name === name)!;
  const words = [
    ...encodePoint(gp('ActPt'), points.length),
    ...encodePoint(gp('DeptRef'), model.deptRef),
    ...points.flatMap((p, k) => [
      ...encodePoint(gp(`V${k + 1}`), p.vPct, vSf),
      ...encodePoint(gp(`${model.y}${k + 1}`), p.yPct, ySf),
    ]),
  ];
  const curveStart = loc.address + 2 + def.fixedLength;
  await bus.writeRegisters(unit, curveStart + gp('ActPt').offset, words);
  await bus.writeRegisters(unit, loc.address + pointDef(def, 'ActCrv').offset, [1, 1]); // ActCrv = 1, ModEna = enabled
  const back = await readLegacyCurves(bus, unit, map, model);
  const kept = back.curves[0]?.points ?? [];
  const same =
    kept.length === points.length &&
    points.every(
      (p, k) =>
        Math.abs(kept[k]!.vPct - p.vPct) <= 10 ** vSf / 2 + 1e-9 &&
        Math.abs(kept[k]!.yPct - p.yPct) <= 10 ** ySf / 2 + 1e-9,
    );
  if (!same || !back.enabled || back.activeCurve !== 1)
    throw new P2PError(
      ErrorCode.driver,
      `unit ${unit}: the ${model.title} curve read back differs from the one written (${JSON.stringify(back)})`,
      { component: 'sunspec' },
    );
  return back;
}
