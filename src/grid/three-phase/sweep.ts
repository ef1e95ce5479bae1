import { ErrorCode, P2PError } from '../../core/errors.js';
import { abs, type Mat3, sequenceComponents, vec3 } from './complex.js';
import { PHASES, type ThreePhaseModel } from './feeder.js';

/** Base power of the mismatch tolerance, VA (1 MVA, as the balanced power flow). */
const S_BASE_VA = 1e6;

/** A single-phase injection in SI units: positive pW / qVar flow into the grid (raise the voltage). */
export interface PhaseInjection {
  bus: number;
  phase: number;
  pW: number;
  qVar: number;
}

export interface ThreePhaseOptions {
  /** Largest power mismatch of any bus-phase at convergence, per unit of 1 MVA (1e-9 = 1 mW). */
  tolerancePu?: number;
  maxIterations?: number;
  /** Multiplier of each load's pKW/qKVAr by load id (absent = 1). */
  loadMultipliers?: ReadonlyMap<string, number>;
  /** Multiplier of each generator's pKW/qKVAr by generator id (absent = 1). */
  generatorMultipliers?: ReadonlyMap<string, number>;
  /** Injections on top of the feeder's generators (PV, a probe for sensitivities). */
  extraInjections?: readonly PhaseInjection[];
  /** Complex voltages (V, 6 numbers a bus) to start from, e.g. a previous solution; default flat start. */
  initialVoltage?: Float64Array;
}

export interface ThreePhaseSweepResult {
  converged: boolean;
  iterations: number;
  maxMismatchPu: number;
  /** Complex phase-to-neutral voltages, V: bus i phase p at [6i + 2p] (re) and [6i + 2p + 1] (im). */
  voltage: Float64Array;
  /** Current in the branch feeding each bus (the supply's for the slack), A, same layout. */
  branchCurrent: Float64Array;
}

/** The balanced open-circuit source voltage, V (angles 0, −120°, +120°; the Dyn phase shift does not change magnitudes). */
function sourceVoltage(model: ThreePhaseModel): Float64Array {
  const e = vec3();
  const v = model.vSlackPu * model.vBaseV;
  for (let p = 0; p < 3; p++) {
    e[2 * p] = v * Math.cos((-2 * Math.PI * p) / 3);
    e[2 * p + 1] = v * Math.sin((-2 * Math.PI * p) / 3);
  }
  return e;
}

/** Z·J for the three phases into `zj` (re, im interleaved); J starts at `at` in `current`. */
const zj = new Float64Array(6);
function multiplyZJ(z: Mat3, current: Float64Array, at: number): Float64Array {
  for (let r = 0; r < 3; r++) {
    let re = 0;
    let im = 0;
    for (let c = 0; c < 3; c++) {
      const zr = z[6 * r + 2 * c]!;
      const zi = z[6 * r + 2 * c + 1]!;
      const jr = current[at + 2 * c]!;
      const ji = current[at + 2 * c + 1]!;
      re += zr * jr - zi * ji;
      im += zr * ji + zi * jr;
    }
    zj[2 * r] = re;
    zj[2 * r + 1] = im;
  }
  return zj;
}

/** The z-matrix·current product subtracted from the parent voltage: v[child] = v[parent] − Z·J. */
function dropInto(z: Mat3, current: Float64Array, at: number, from: Float64Array, fromAt: number, out: Float64Array) {
  const d = multiplyZJ(z, current, at);
  for (let k = 0; k < 6; k++) out[at + k] = from[fromAt + k]! - d[k]!;
}

/**
 * Three-phase unbalanced radial power flow by backward/forward sweep (Kersting, Distribution System
 * Modeling and Analysis, ch. 10): load currents from the present phase voltages, branch currents summed
 * from the leaves up, voltages updated from the source down through the 3×3 phase impedance matrices,
 * until the power mismatch of every bus-phase is below tolerance. Pure: no I/O, no clock.
 */
export function sweepThreePhase(model: ThreePhaseModel, options: ThreePhaseOptions = {}): ThreePhaseSweepResult {
  const tolerance = (options.tolerancePu ?? 1e-9) * S_BASE_VA;
  const maxIterations = options.maxIterations ?? 100;
  const n = model.buses.length;
  const parent = model.parent;

  // Constant-power (or banded) consumption and constant-power injection per bus-phase, W / var.
  const loadP = new Float64Array(3 * n);
  const loadQ = new Float64Array(3 * n);
  const genP = new Float64Array(3 * n);
  const genQ = new Float64Array(3 * n);
  for (const l of model.loads) {
    const k = options.loadMultipliers?.get(l.id) ?? 1;
    loadP[3 * l.bus + l.phase]! += l.pW * k;
    loadQ[3 * l.bus + l.phase]! += l.qVar * k;
  }
  for (const g of model.generators) {
    const k = options.generatorMultipliers?.get(g.id) ?? 1;
    genP[3 * g.bus + g.phase]! += g.pW * k;
    genQ[3 * g.bus + g.phase]! += g.qVar * k;
  }
  for (const g of options.extraInjections ?? []) {
    genP[3 * g.bus + g.phase]! += g.pW;
    genQ[3 * g.bus + g.phase]! += g.qVar;
  }
  const band = model.loadModel.type === 'constant-power-band' ? model.loadModel : null;
  const vLow = band ? band.vMinPu * band.ratedV : 0;
  const vHigh = band ? band.vMaxPu * band.ratedV : Number.POSITIVE_INFINITY;

  const e = sourceVoltage(model);
  const v = new Float64Array(6 * n);
  if (options.initialVoltage && options.initialVoltage.length === 6 * n) v.set(options.initialVoltage);
  else for (let i = 0; i < n; i++) v.set(e, 6 * i);
  const j = new Float64Array(6 * n);
  const injRe = new Float64Array(3 * n); // the current each bus-phase draws (load − generation), A
  const injIm = new Float64Array(3 * n);

  /** Net consumption S(V) of a bus-phase at voltage (vr, vi): the load's (banded) power less the injection. */
  const demand = (k: number, vr: number, vi: number): [number, number] => {
    let p = loadP[k]!;
    let q = loadQ[k]!;
    if (band && (p !== 0 || q !== 0)) {
      const m = Math.hypot(vr, vi);
      // Outside the band the load is the constant impedance that draws its rated power at the band edge.
      const scale = m > vHigh ? (m / vHigh) ** 2 : m < vLow ? (m / vLow) ** 2 : 1;
      p *= scale;
      q *= scale;
    }
    return [p - genP[k]!, q - genQ[k]!];
  };

  let iterations = 0;
  let mismatch = Number.POSITIVE_INFINITY;
  let converged = false;
  while (iterations < maxIterations) {
    iterations++;
    // Backward: I = conj(S / V) per bus-phase, summed into the branch feeding each bus, leaves first.
    for (let i = 0; i < n; i++)
      for (let p = 0; p < 3; p++) {
        const k = 3 * i + p;
        const vr = v[6 * i + 2 * p]!;
        const vi = v[6 * i + 2 * p + 1]!;
        const [sp, sq] = demand(k, vr, vi);
        const d = vr * vr + vi * vi;
        injRe[k] = (sp * vr + sq * vi) / d;
        injIm[k] = (sp * vi - sq * vr) / d;
        j[6 * i + 2 * p] = injRe[k]!;
        j[6 * i + 2 * p + 1] = injIm[k]!;
      }
    for (let i = n - 1; i >= 1; i--) {
      const b = 6 * parent[i]!;
      for (let x = 0; x < 6; x++) j[b + x]! += j[6 * i + x]!;
    }
    // Forward: the slack behind the supply impedance (or fixed), then V_child = V_parent − Z·J.
    if (model.supplyZ) dropInto(model.supplyZ, j, 0, e, 0, v);
    else v.set(e, 0);
    for (let i = 1; i < n; i++) dropInto(model.branchZ[i]!, j, 6 * i, v, 6 * parent[i]!, v);
    // Mismatch: what each bus-phase draws at its new voltage with the current just used, against S(V).
    mismatch = 0;
    for (let i = 0; i < n; i++)
      for (let p = 0; p < 3; p++) {
        const k = 3 * i + p;
        const vr = v[6 * i + 2 * p]!;
        const vi = v[6 * i + 2 * p + 1]!;
        const pCalc = vr * injRe[k]! + vi * injIm[k]!;
        const qCalc = vi * injRe[k]! - vr * injIm[k]!;
        const [sp, sq] = demand(k, vr, vi);
        const m = Math.hypot(pCalc - sp, qCalc - sq);
        if (!(m <= mismatch)) mismatch = m;
      }
    if (!Number.isFinite(mismatch)) break;
    if (mismatch <= tolerance) {
      converged = true;
      break;
    }
  }
  if (!Number.isFinite(mismatch))
    throw new P2PError(
      ErrorCode.algorithm,
      `three-phase power flow of ${model.name} diverged (loads beyond what the feeder can carry?)`,
      { component: 'powerflow' },
    );
  return { converged, iterations, maxMismatchPu: mismatch / S_BASE_VA, voltage: v, branchCurrent: j };
}

/** Re(Jᴴ·Z·J): the active power lost in a branch of impedance Z carrying the phase currents J, W. */
function branchLossW(z: Mat3, j: Float64Array, at: number): number {
  const d = multiplyZJ(z, j, at);
  let loss = 0;
  // Σ_r conj(J_r)·(Z·J)_r, real part
  for (let r = 0; r < 3; r++) loss += j[at + 2 * r]! * d[2 * r]! + j[at + 2 * r + 1]! * d[2 * r + 1]!;
  return loss;
}

export interface ThreePhaseResult {
  converged: boolean;
  iterations: number;
  maxMismatchPu: number;
  /** Phase-to-neutral voltage magnitude per `bus.phase` (e.g. `"34.a"`), pu of baseKV/√3. */
  voltagesPu: Record<string, number>;
  /** Voltage unbalance factor |V2|/|V1| per bus, percent. */
  unbalancePct: Record<string, number>;
  minVoltage: { key: string; pu: number };
  maxVoltage: { key: string; pu: number };
  maxUnbalance: { bus: string; pct: number };
  /** Losses in the lines and in the transformer (the upstream network's own losses are not counted). */
  lossesKW: number;
  transformerLossesKW: number;
  /**
   * Current magnitude in each line (input order), per phase and in the neutral/earth return
   * (|Ia + Ib + Ic|), A.
   */
  lineCurrentsA: { id: string; from: string; to: string; a: number; b: number; c: number; neutral: number }[];
  /** Power delivered into the slack bus by the supply, per phase a, b, c. */
  supplyKW: [number, number, number];
  supplyKVAr: [number, number, number];
  sweep: ThreePhaseSweepResult;
}

/** Solves the three-phase power flow and reports per-phase voltages, unbalance and losses. */
export function solveThreePhase(model: ThreePhaseModel, options: ThreePhaseOptions = {}): ThreePhaseResult {
  const sweep = sweepThreePhase(model, options);
  const { voltage: v, branchCurrent: j } = sweep;
  const voltagesPu: Record<string, number> = {};
  const unbalancePct: Record<string, number> = {};
  let minVoltage = { key: '', pu: Number.POSITIVE_INFINITY };
  let maxVoltage = { key: '', pu: Number.NEGATIVE_INFINITY };
  let maxUnbalance = { bus: '', pct: Number.NEGATIVE_INFINITY };
  model.buses.forEach((bus, i) => {
    for (let p = 0; p < 3; p++) {
      const key = `${bus}.${PHASES[p]}`;
      const pu = Math.hypot(v[6 * i + 2 * p]!, v[6 * i + 2 * p + 1]!) / model.vBaseV;
      voltagesPu[key] = pu;
      if (pu < minVoltage.pu) minVoltage = { key, pu };
      if (pu > maxVoltage.pu) maxVoltage = { key, pu };
    }
    const [, v1, v2] = sequenceComponents(v.subarray(6 * i, 6 * i + 6));
    const pct = (100 * abs(v2)) / abs(v1);
    unbalancePct[bus] = pct;
    if (pct > maxUnbalance.pct) maxUnbalance = { bus, pct };
  });
  let lossesW = 0;
  for (let i = 1; i < model.buses.length; i++) lossesW += branchLossW(model.branchZ[i]!, j, 6 * i);
  const transformerLossW = model.transformerZ ? branchLossW(model.transformerZ, j, 0) : 0;
  const supplyKW: [number, number, number] = [0, 0, 0];
  const supplyKVAr: [number, number, number] = [0, 0, 0];
  for (let p = 0; p < 3; p++) {
    // S = V_slack · conj(J_supply)
    const vr = v[2 * p]!;
    const vi = v[2 * p + 1]!;
    const jr = j[2 * p]!;
    const ji = j[2 * p + 1]!;
    supplyKW[p] = (vr * jr + vi * ji) / 1000;
    supplyKVAr[p] = (vi * jr - vr * ji) / 1000;
  }
  const lineCurrentsA: ThreePhaseResult['lineCurrentsA'] = new Array(model.lineCount);
  for (let i = 1; i < model.buses.length; i++) {
    const at = 6 * i;
    const line = model.lines[model.lineIndex[i]!]!;
    lineCurrentsA[model.lineIndex[i]!] = {
      ...line,
      a: Math.hypot(j[at]!, j[at + 1]!),
      b: Math.hypot(j[at + 2]!, j[at + 3]!),
      c: Math.hypot(j[at + 4]!, j[at + 5]!),
      neutral: Math.hypot(j[at]! + j[at + 2]! + j[at + 4]!, j[at + 1]! + j[at + 3]! + j[at + 5]!),
    };
  }
  return {
    converged: sweep.converged,
    iterations: sweep.iterations,
    maxMismatchPu: sweep.maxMismatchPu,
    voltagesPu,
    lineCurrentsA,
    unbalancePct,
    minVoltage,
    maxVoltage,
    maxUnbalance,
    lossesKW: (lossesW + transformerLossW) / 1000,
    transformerLossesKW: transformerLossW / 1000,
    supplyKW,
    supplyKVAr,
    sweep,
  };
}
