import { ErrorCode, P2PError } from '../../core/errors.js';
import type { ModbusBus } from '../../hal/modbus/bus.js';
import { type ModelLocation, readModel, type SunSpecMap } from './discovery.js';
import { checkCurve } from './legacy-curve.js';
import { decodeModel, encodePoint, type ModelDef, modelDef, type PointDef, pointDef, rawValue } from './models.js';
import { readVoltVar, type VoltVarCurve, type VoltVarSettings, writeVoltVar } from './volt-var.js';

/**
 * Volt-var through model 705 (DERVoltVar, IEEE 1547-2018). Unlike model 126, curve 1 is the curve in
 * force and is read-only: a curve is written into a writable stored curve, adopted by writing that
 * curve's index to AdptCrvReq (the device checks it and copies it into curve 1, reporting
 * AdptCrvRslt), and the mode enabled with Ena. Each curve has NPt points `Pt[k].V` (% of nominal
 * voltage) and `Pt[k].Var` (in DeptRef units; written as % of WMax, DeptRef = W_MAX_PCT).
 */
const DEPT_REF_W_MAX_PCT = 0;
const READ_ONLY = 1;
const ADOPT_COMPLETED = 1;
const ADOPT_FAILED = 2;
const ADOPT_POLLS = 10;
const ADOPT_POLL_MS = 100;

interface Layout {
  def: ModelDef;
  loc: ModelLocation;
  nPt: number;
  nCrv: number;
  /** Registers of one stored curve: its own points, then NPt curve points. */
  stride: number;
}

function layout(map: SunSpecMap, unit: number, regs?: readonly number[]): Layout {
  const loc = map.models.find((m) => m.id === 705);
  if (!loc)
    throw new P2PError(ErrorCode.driver, `unit ${unit} has no IEEE 1547 volt-var model (705)`, {
      component: 'sunspec',
    });
  const def = modelDef(705)!;
  const header = regs ? decodeModel(def, regs) : {};
  const nPt = Number(header.NPt ?? 0);
  const group = def.group!;
  const stride = group.length + nPt * group.subgroup!.length;
  const nCrv = stride > 0 ? Math.floor((loc.length - def.fixedLength) / stride) : 0;
  return { def, loc, nPt, nCrv, stride };
}

/** Offset (from the model's ID register) of a curve point, `index` 0-based. */
function curvePointOffset(l: Layout, index: number, p: PointDef): number {
  return 2 + l.def.fixedLength + index * l.stride + p.offset;
}

function ptOffset(l: Layout, index: number, k: number, p: PointDef): number {
  return 2 + l.def.fixedLength + index * l.stride + l.def.group!.length + k * l.def.group!.subgroup!.length + p.offset;
}

function decodeCurve(l: Layout, regs: readonly number[], index: number, vSf: number, qSf: number): VoltVarCurve {
  const g = l.def.group!;
  const sub = g.subgroup!;
  const at = (p: PointDef, offset: number) => rawValue({ ...p, offset }, regs);
  const actPtDef = g.points.find((p) => p.name === 'ActPt')!;
  const actPt = at(actPtDef, curvePointOffset(l, index, actPtDef));
  const n = Math.min(l.nPt, typeof actPt === 'number' ? actPt : 0);
  const [vDef, qDef] = [sub.points.find((p) => p.name === 'V')!, sub.points.find((p) => p.name === 'Var')!];
  const points = Array.from({ length: n }, (_, k) => {
    const v = at(vDef, ptOffset(l, index, k, vDef));
    const q = at(qDef, ptOffset(l, index, k, qDef));
    return {
      vPct: typeof v === 'number' ? Number((v * 10 ** vSf).toPrecision(12)) : Number.NaN,
      varPct: typeof q === 'number' ? Number((q * 10 ** qSf).toPrecision(12)) : Number.NaN,
    };
  }).filter((p) => Number.isFinite(p.vPct) && Number.isFinite(p.varPct));
  return { points };
}

function sfOf(def: ModelDef, regs: readonly number[], name: string, unit: number): number {
  const v = rawValue(pointDef(def, name), regs);
  if (typeof v !== 'number' || v < -10 || v > 10)
    throw new P2PError(ErrorCode.driver, `unit ${unit}: ${name} is not implemented; cannot use model 705`, {
      component: 'sunspec',
    });
  return v;
}

/** Model 705's settings: enabled, the curve in force (curve 1) and every stored curve. */
export async function readVoltVar1547(bus: ModbusBus, unit: number, map: SunSpecMap): Promise<VoltVarSettings> {
  const regs = await readModel(bus, unit, layout(map, unit).loc, 'slow');
  const l = layout(map, unit, regs);
  const header = decodeModel(l.def, regs);
  const [vSf, qSf] = [sfOf(l.def, regs, 'V_SF', unit), sfOf(l.def, regs, 'DeptRef_SF', unit)];
  return {
    enabled: header.Ena === 1,
    activeCurve: l.nCrv > 0 ? 1 : null,
    curves: Array.from({ length: l.nCrv }, (_, i) => decodeCurve(l, regs, i, vSf, qSf)),
  };
}

/**
 * Writes `curve` into the first writable stored curve, adopts it (waiting for AdptCrvRslt), enables
 * volt-var, and reads back the curve in force: a device that failed the adoption or kept other
 * values is an error.
 */
export async function writeVoltVar1547(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
  curve: VoltVarCurve,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<VoltVarSettings> {
  const regs = await readModel(bus, unit, layout(map, unit).loc, 'write');
  const l = layout(map, unit, regs);
  checkCurve(curve.points, l.nPt);
  const [vSf, qSf] = [sfOf(l.def, regs, 'V_SF', unit), sfOf(l.def, regs, 'DeptRef_SF', unit)];
  const g = l.def.group!;
  const gp = (name: string) => g.points.find((p) => p.name === name)!;
  const sp = (name: string) => g.subgroup!.points.find((p) => p.name === name)!;
  const target = Array.from({ length: l.nCrv }, (_, i) => i).find(
    (i) => i > 0 && rawValue({ ...gp('ReadOnly'), offset: curvePointOffset(l, i, gp('ReadOnly')) }, regs) !== READ_ONLY,
  );
  if (target === undefined)
    throw new P2PError(ErrorCode.driver, `unit ${unit}: model 705 has no writable stored curve`, {
      component: 'sunspec',
    });
  const base = l.loc.address;
  await bus.writeRegisters(unit, base + curvePointOffset(l, target, gp('ActPt')), [
    ...encodePoint(gp('ActPt'), curve.points.length),
    ...encodePoint(gp('DeptRef'), DEPT_REF_W_MAX_PCT),
  ]);
  await bus.writeRegisters(
    unit,
    base + ptOffset(l, target, 0, sp('V')),
    curve.points.flatMap((p) => [...encodePoint(sp('V'), p.vPct, vSf), ...encodePoint(sp('Var'), p.varPct, qSf)]),
  );
  await bus.writeRegisters(
    unit,
    base + pointDef(l.def, 'AdptCrvReq').offset,
    encodePoint(pointDef(l.def, 'AdptCrvReq'), target + 1),
  );
  let result: number | string | undefined;
  for (let i = 0; i < ADOPT_POLLS; i++) {
    result = decodeModel(l.def, await readModel(bus, unit, l.loc, 'write')).AdptCrvRslt;
    if (result === ADOPT_COMPLETED || result === ADOPT_FAILED) break;
    await sleep(ADOPT_POLL_MS);
  }
  if (result !== ADOPT_COMPLETED)
    throw new P2PError(
      ErrorCode.driver,
      `unit ${unit}: model 705 did not adopt curve ${target + 1} (AdptCrvRslt ${result === ADOPT_FAILED ? 'FAILED' : 'still IN_PROGRESS'})`,
      { component: 'sunspec' },
    );
  await bus.writeRegisters(unit, base + pointDef(l.def, 'Ena').offset, [1]);
  const back = await readVoltVar1547(bus, unit, map);
  const kept = back.curves[0]?.points ?? [];
  const same =
    kept.length === curve.points.length &&
    curve.points.every(
      (p, k) =>
        Math.abs(kept[k]!.vPct - p.vPct) <= 10 ** vSf / 2 + 1e-9 &&
        Math.abs(kept[k]!.varPct - p.varPct) <= 10 ** qSf / 2 + 1e-9,
    );
  if (!same || !back.enabled)
    throw new P2PError(
      ErrorCode.driver,
      `unit ${unit}: the volt-var curve in force (model 705) differs from the one written (${JSON.stringify(back)})`,
      { component: 'sunspec' },
    );
  return back;
}

/**
 * Writes a volt-var curve through model 705 when the device has it, else model 126, and returns the
 * model used with what was read back.
 */
export async function writeVoltVarCurve(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
  curve: VoltVarCurve,
): Promise<{ model: 705 | 126; settings: VoltVarSettings }> {
  if (map.models.some((m) => m.id === 705))
    return { model: 705, settings: await writeVoltVar1547(bus, unit, map, curve) };
  return { model: 126, settings: await writeVoltVar(bus, unit, map, curve) };
}

/** The volt-var settings through model 705 when the device has it, else model 126. */
export async function readVoltVarCurve(
  bus: ModbusBus,
  unit: number,
  map: SunSpecMap,
): Promise<{ model: 705 | 126; settings: VoltVarSettings }> {
  if (map.models.some((m) => m.id === 705)) return { model: 705, settings: await readVoltVar1547(bus, unit, map) };
  return { model: 126, settings: await readVoltVar(bus, unit, map) };
}
