import { piecewiseLinear } from '../../core/interpolate.js';
import { projectOntoCapability } from './dual-ascent.js';
import { voltagesWithSetpoints } from './feeder-response.js';
import type { InverterSpec, VoltageProblem } from './problem.js';

/**
 * IEEE 1547-2018 Category B default curves, the local (primary) fallback when comms are lost.
 * Volt-var: (0.92, +0.44), (0.98, 0), (1.02, 0), (1.08, −0.44) in pu of voltage and of the rating
 * (positive = injecting VArs). Volt-watt: full power up to 1.06 pu, falling linearly to 0 at 1.10 pu.
 * The rating is sRatedKVA, else max(pAvailableKW, qMaxKVAr / 0.44) (docs/interfaces.md).
 */
export const VOLT_VAR_CAT_B: [number, number][] = [
  [0.92, 0.44],
  [0.98, 0],
  [1.02, 0],
  [1.08, -0.44],
];
export const VOLT_WATT_CAT_B: [number, number][] = [
  [1.06, 1],
  [1.1, 0],
];

/** Piecewise-linear interpolation through a curve (constant beyond its ends). */
export const piecewise = piecewiseLinear;

export function inverterRating(inv: InverterSpec): number {
  return inv.sRatedKVA ?? Math.max(inv.pAvailableKW, inv.qMaxKVAr / 0.44);
}

/**
 * Setpoints an inverter's own curves give at a voltage. Within the kVA rating reactive power has
 * priority: active power gives way to the VArs the volt-var curve asks for (`projectOntoCapability`).
 */
export function curveSetpoint(inv: InverterSpec, voltagePu: number, shiftPu = 0): [number, number] {
  const rating = inverterRating(inv);
  const v = voltagePu + shiftPu;
  return projectOntoCapability(inv, piecewise(VOLT_WATT_CAT_B, v) * rating, piecewise(VOLT_VAR_CAT_B, v) * rating);
}

/** Share of the way to its curves' setpoint an inverter moves in one step (its open-loop filter). */
const CURVE_RESPONSE = 0.3;

/** IEEE 1547 Category B: reactive power up to 44 % of the rating. */
export const Q_SHARE_OF_RATING = 0.44;

/** An inverter of `ratedKVA` with Category B reactive capability, as a curve follower sees it. */
export function categoryBInverter(id: string, bus: string, ratedKVA: number, pAvailableKW: number): InverterSpec {
  return { id, bus, pAvailableKW, qMaxKVAr: Q_SHARE_OF_RATING * ratedKVA, qWeight: 1, sRatedKVA: ratedKVA };
}

/**
 * One step of an inverter following its curves from `last`. `limitPct` (of the rating) is set only
 * where the curves ask for less than is available; 100 otherwise.
 */
export function followCurves(
  inv: InverterSpec,
  voltagePu: number,
  last: { pKW: number; qKVAr: number },
  shiftPu = 0,
): { pKW: number; qKVAr: number; limitPct: number } {
  const [targetP, targetQ] = curveSetpoint(inv, voltagePu, shiftPu);
  const pKW = last.pKW + CURVE_RESPONSE * (targetP - last.pKW);
  const qKVAr = last.qKVAr + CURVE_RESPONSE * (targetQ - last.qKVAr);
  const curtailing = targetP < inv.pAvailableKW - 1e-6;
  return { pKW, qKVAr, limitPct: curtailing ? Math.min(100, (100 * pKW) / inverterRating(inv)) : 100 };
}

/**
 * Every inverter follows its own curves with the voltage at its bus; the feeder's response is found by
 * damped fixed-point iteration with the power flow (the curves' open-loop time response is the
 * inverter's own; this finds where they settle). `shiftPu` moves both curves that much lower in
 * voltage (a utility's tighter settings).
 */
export function voltVarVoltWatt(
  problem: VoltageProblem,
  maxSteps = 500,
  shiftPu = 0,
): { p: number[]; q: number[]; steps: number; converged: boolean } {
  const p = problem.inverters.map((i) => i.pAvailableKW);
  const q = problem.inverters.map(() => 0);
  for (let step = 1; step <= maxSteps; step++) {
    const v = voltagesWithSetpoints(problem, p, q);
    let moved = 0;
    problem.inverters.forEach((inv, i) => {
      const { pKW: np, qKVAr: nq } = followCurves(inv, v[inv.bus]!, { pKW: p[i]!, qKVAr: q[i]! }, shiftPu);
      moved = Math.max(moved, Math.abs(np - p[i]!), Math.abs(nq - q[i]!));
      p[i] = np;
      q[i] = nq;
    });
    if (moved < 1e-5) return { p, q, steps: step, converged: true };
  }
  return { p, q, steps: maxSteps, converged: false };
}

/**
 * The smallest downward shift of the curves with which local control alone keeps every bus within
 * the limits (bisection to 0.1 mV), or undefined when even a 0.1 pu shift does not.
 */
export function tightestCurveShift(problem: VoltageProblem): number | undefined {
  const within = (shift: number) => {
    const r = voltVarVoltWatt(problem, 2000, shift);
    const v = Object.values(voltagesWithSetpoints(problem, r.p, r.q));
    return Math.max(...v) <= problem.vMaxPu && Math.min(...v) >= problem.vMinPu;
  };
  if (within(0)) return 0;
  let lo = 0;
  let hi = 0.1;
  if (!within(hi)) return undefined;
  while (hi - lo > 1e-4) {
    const mid = (lo + hi) / 2;
    if (within(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
