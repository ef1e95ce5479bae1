import type { Phase, ThreePhaseModel } from '../../grid/three-phase/feeder.js';
import type { ThreePhaseSensitivities } from '../../grid/three-phase/sensitivities.js';
import { type PhaseInjection, sweepThreePhase, type ThreePhaseOptions } from '../../grid/three-phase/sweep.js';
import { bestResponse, gershgorinStep, MultiplierAscent, projectOntoCapability } from './dual-ascent.js';
import { piecewise, VOLT_VAR_CAT_B, VOLT_WATT_CAT_B } from './volt-var.js';

/**
 * Voltage control of single-phase PV inverters closed in a loop with the three-phase power flow: the
 * feeder stands in for the real one, each inverter measures its own phase voltage. Two methods, the
 * local IEEE 1547-2018 Category B curves (the primary-level fallback) and dual ascent on the
 * voltage limits of the inverters' own bus-phases through the per-phase sensitivities (the paper's
 * dual-decomposition method with the multipliers known exactly, i.e. what push-sum converges to).
 */
export interface LvInverter {
  id: string;
  bus: string;
  phase: Phase;
  /** What the panels could deliver now, kW. */
  pAvailableKW: number;
  sRatedKVA: number;
  qMaxKVAr: number;
  /** Weight of reactive power in the cost Σ (pAvailable − p)² + qWeight·q². */
  qWeight: number;
}

export interface LvSetpoints {
  pKW: number[];
  /** Positive = injected (raises the voltage). */
  qKVAr: number[];
  steps: number;
  converged: boolean;
  /** |V| at each inverter's own bus-phase with these setpoints, pu. */
  voltagePu: number[];
  /** The feeder's solution with these setpoints (for all bus-phases). */
  voltage: Float64Array;
}

function makeSolver(model: ThreePhaseModel, inverters: readonly LvInverter[], operatingPoint: ThreePhaseOptions) {
  const at = inverters.map((inv) => ({ bus: model.busIndex.get(inv.bus)!, phase: ['a', 'b', 'c'].indexOf(inv.phase) }));
  let warm: Float64Array | undefined = operatingPoint.initialVoltage;
  return (p: readonly number[], q: readonly number[]) => {
    const extra: PhaseInjection[] = at.map((x, i) => ({ ...x, pW: p[i]! * 1000, qVar: q[i]! * 1000 }));
    const r = sweepThreePhase(model, {
      ...operatingPoint,
      extraInjections: [...(operatingPoint.extraInjections ?? []), ...extra],
      ...(warm ? { initialVoltage: warm } : {}),
    });
    warm = r.voltage;
    const v = at.map(
      (x) => Math.hypot(r.voltage[6 * x.bus + 2 * x.phase]!, r.voltage[6 * x.bus + 2 * x.phase + 1]!) / model.vBaseV,
    );
    return { v, voltage: r.voltage };
  };
}

/**
 * Every inverter follows its own volt-var and volt-watt curves with its own phase voltage; where they
 * settle is found by damped fixed-point iteration with the power flow.
 */
export function settleCurves(
  model: ThreePhaseModel,
  inverters: readonly LvInverter[],
  operatingPoint: ThreePhaseOptions = {},
  maxSteps = 200,
): LvSetpoints {
  const solve = makeSolver(model, inverters, operatingPoint);
  const p = inverters.map((i) => i.pAvailableKW);
  const q = inverters.map(() => 0);
  let state = solve(p, q);
  let steps = 0;
  let converged = false;
  while (steps < maxSteps) {
    steps++;
    let moved = 0;
    inverters.forEach((inv, i) => {
      const v = state.v[i]!;
      const [pc, qc] = projectOntoCapability(
        inv,
        Math.min(inv.pAvailableKW, piecewise(VOLT_WATT_CAT_B, v) * inv.sRatedKVA),
        piecewise(VOLT_VAR_CAT_B, v) * inv.sRatedKVA,
      );
      const pNew = p[i]! + 0.5 * (pc - p[i]!);
      const qNew = q[i]! + 0.5 * (qc - q[i]!);
      moved = Math.max(moved, Math.abs(pNew - p[i]!), Math.abs(qNew - q[i]!));
      p[i] = pNew;
      q[i] = qNew;
    });
    state = solve(p, q);
    if (moved < 1e-4) {
      converged = true;
      break;
    }
  }
  return { pKW: p, qKVAr: q, steps, converged, voltagePu: state.v, voltage: state.voltage };
}

/**
 * Dual ascent on the upper voltage limit of each inverter's own bus-phase: multiplier μ_k grows with
 * the measured excess V_k − vMax; each inverter's best response to the multipliers minimises
 * (pAvailable − p)² + qWeight·q² + Σ_k μ_k·V_k, i.e. p = pAvailable − Σ_k μ_k·dV_k/dP_i / 2 and
 * q = −Σ_k μ_k·dV_k/dQ_i / (2·qWeight), projected onto its limits. Each multiplier moves by the
 * dual-ascent core's accelerated ascent (`MultiplierAscent`) from a Gershgorin step on its row of the
 * dual Hessian. The voltages are measured from the power flow, so model error in the sensitivities is
 * corrected by the loop.
 */
export function dualAscent(
  model: ThreePhaseModel,
  inverters: readonly LvInverter[],
  sens: ThreePhaseSensitivities,
  options: { operatingPoint?: ThreePhaseOptions; vMaxPu?: number; maxSteps?: number; tolerancePu?: number } = {},
): LvSetpoints {
  const vMax = options.vMaxPu ?? 1.05;
  const tolerance = options.tolerancePu ?? 1e-4;
  const maxSteps = options.maxSteps ?? 500;
  const n = inverters.length;
  const solve = makeSolver(model, inverters, options.operatingPoint ?? {});
  // Sensitivities per kW (kVAr) injected at inverter i on the voltage at inverter k's bus-phase.
  const sp = sens.dvdp;
  const sq = sens.dvdq;
  // Momentum speeds up the many nearly parallel constraints of houses on the same phase.
  const multipliers = inverters.map(
    (_, k) => new MultiplierAscent(gershgorinStep({ dvdp: sp, dvdq: sq }, k, (i) => inverters[i]!.qWeight)),
  );
  const look = new Float64Array(n); // the extrapolated multipliers the setpoints respond to
  const p = inverters.map((i) => i.pAvailableKW);
  const q = inverters.map(() => 0);
  let state = solve(p, q);
  let steps = 0;
  let converged = false;
  while (steps < maxSteps) {
    steps++;
    for (let k = 0; k < n; k++) look[k] = multipliers[k]!.step(state.v[k]! - vMax);
    let moved = 0;
    inverters.forEach((inv, i) => {
      let gp = 0;
      let gq = 0;
      for (let k = 0; k < n; k++) {
        gp += look[k]! * sp[k]![i]!;
        gq += look[k]! * sq[k]![i]!;
      }
      const { pKW: pc, qKVAr: qc } = bestResponse(inv, inv.qWeight, { gp, gq });
      moved = Math.max(moved, Math.abs(pc - p[i]!), Math.abs(qc - q[i]!));
      p[i] = pc;
      q[i] = qc;
    });
    state = solve(p, q);
    const excess = Math.max(0, ...state.v.map((v) => v - vMax));
    if (excess <= tolerance && moved < 1e-2) {
      converged = true;
      break;
    }
  }
  return { pKW: p, qKVAr: q, steps, converged, voltagePu: state.v, voltage: state.voltage };
}
