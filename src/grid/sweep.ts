import { ErrorCode, P2PError } from '../core/errors.js';
import type { RadialFeeder } from './feeder.js';

/** Base power of the per-unit system (three-phase), kVA. */
const S_BASE_KVA = 1000;

export interface PowerFlowOptions {
  /** Largest power mismatch at any bus at convergence, per unit of 1 MVA. */
  tolerancePu?: number;
  maxIterations?: number;
  /** Extra net consumption per bus (kW, kVAr; negative = injection) on top of the feeder's loads. */
  extraKW?: ReadonlyMap<string, number>;
  extraKVAr?: ReadonlyMap<string, number>;
}

export interface PowerFlowResult {
  converged: boolean;
  iterations: number;
  voltagesPu: Record<string, number>;
  /** Complex voltages (pu), for sensitivity work. */
  voltageRe: Map<string, number>;
  voltageIm: Map<string, number>;
  lossesKW: number;
  /** One entry per input line in input order, measured at its listed `from` end, positive from → to. */
  lineFlows: { from: string; to: string; pKW: number; qKVAr: number }[];
  maxMismatchPu: number;
}

/**
 * Balanced radial power flow by backward/forward sweep with constant-power loads (Kersting's
 * ladder iteration): load currents from the present voltages, branch currents summed from the leaves
 * up, voltages updated from the slack down, until the power mismatch at every bus is below tolerance.
 */
export function solvePowerFlow(feeder: RadialFeeder, options: PowerFlowOptions = {}): PowerFlowResult {
  const tolerance = options.tolerancePu ?? 1e-9;
  const maxIterations = options.maxIterations ?? 100;
  const zBase = feeder.baseKV ** 2 / (S_BASE_KVA / 1000);
  const buses = feeder.order;
  const n = buses.length;
  const index = new Map(buses.map((b, i) => [b, i]));
  const parent = new Int32Array(n).fill(-1);
  const r = new Float64Array(n);
  const x = new Float64Array(n);
  const sP = new Float64Array(n);
  const sQ = new Float64Array(n);
  buses.forEach((bus, i) => {
    const line = feeder.parentLine.get(bus);
    if (line) {
      parent[i] = index.get(line.parent) as number;
      r[i] = line.rOhm / zBase;
      x[i] = line.xOhm / zBase;
    }
    if (i === 0) return; // the slack's own load is served by the source directly
    sP[i] = ((feeder.loadKW.get(bus) ?? 0) + (options.extraKW?.get(bus) ?? 0)) / S_BASE_KVA;
    sQ[i] = ((feeder.loadKVAr.get(bus) ?? 0) + (options.extraKVAr?.get(bus) ?? 0)) / S_BASE_KVA;
  });

  const vRe = new Float64Array(n).fill(feeder.vSlackPu);
  const vIm = new Float64Array(n);
  const jRe = new Float64Array(n); // current in the line feeding bus i (towards i)
  const jIm = new Float64Array(n);
  let iterations = 0;
  let mismatch = Number.POSITIVE_INFINITY;
  let converged = false;
  while (iterations < maxIterations) {
    iterations++;
    // Backward: load current I = conj(S / V), summed into the feeding line of each bus, leaves first.
    for (let i = n - 1; i >= 1; i--) {
      const d = vRe[i]! ** 2 + vIm[i]! ** 2;
      // conj(S/V) = (P − jQ)·V / |V|²  →  re = (P·Vre + Q·Vim)/|V|², im = (P·Vim − Q·Vre)/|V|²
      jRe[i] = (sP[i]! * vRe[i]! + sQ[i]! * vIm[i]!) / d;
      jIm[i] = (sP[i]! * vIm[i]! - sQ[i]! * vRe[i]!) / d;
    }
    for (let i = n - 1; i >= 1; i--) {
      const p = parent[i]!;
      if (p > 0) {
        jRe[p]! += jRe[i]!;
        jIm[p]! += jIm[i]!;
      }
    }
    // Forward: V_child = V_parent − Z·J.
    for (let i = 1; i < n; i++) {
      const p = parent[i]!;
      vRe[i] = vRe[p]! - (r[i]! * jRe[i]! - x[i]! * jIm[i]!);
      vIm[i] = vIm[p]! - (r[i]! * jIm[i]! + x[i]! * jRe[i]!);
    }
    // Mismatch: the load each bus draws at its new voltage with the currents just used.
    mismatch = 0;
    const childSumRe = new Float64Array(n);
    const childSumIm = new Float64Array(n);
    for (let i = 1; i < n; i++) {
      const p = parent[i]!;
      childSumRe[p]! += jRe[i]!;
      childSumIm[p]! += jIm[i]!;
    }
    for (let i = 1; i < n; i++) {
      const iRe = jRe[i]! - childSumRe[i]!;
      const iIm = jIm[i]! - childSumIm[i]!;
      const pCalc = vRe[i]! * iRe + vIm[i]! * iIm;
      const qCalc = vIm[i]! * iRe - vRe[i]! * iIm;
      mismatch = Math.max(mismatch, Math.hypot(pCalc - sP[i]!, qCalc - sQ[i]!));
    }
    if (!Number.isFinite(mismatch)) break;
    if (mismatch <= tolerance) {
      converged = true;
      break;
    }
  }
  if (!Number.isFinite(mismatch)) {
    throw new P2PError(
      ErrorCode.algorithm,
      `power flow of ${feeder.name} diverged (loads beyond what the feeder can carry?)`,
      {
        component: 'powerflow',
      },
    );
  }

  let lossesPu = 0;
  const flowsByIndex = new Map<number, { from: string; to: string; pKW: number; qKVAr: number }>();
  for (let i = 1; i < n; i++) {
    lossesPu += (jRe[i]! ** 2 + jIm[i]! ** 2) * r[i]!;
    const p = parent[i]!;
    const line = feeder.parentLine.get(buses[i] as string)!;
    // Power leaving the parent into the line: S = V_parent·conj(J); at the child end: V_child·conj(J).
    const atParentP = vRe[p]! * jRe[i]! + vIm[p]! * jIm[i]!;
    const atParentQ = vIm[p]! * jRe[i]! - vRe[p]! * jIm[i]!;
    const atChildP = vRe[i]! * jRe[i]! + vIm[i]! * jIm[i]!;
    const atChildQ = vIm[i]! * jRe[i]! - vRe[i]! * jIm[i]!;
    const [pPu, qPu] = line.reversed ? [-atChildP, -atChildQ] : [atParentP, atParentQ];
    const [from, to] = line.reversed ? [buses[i] as string, line.parent] : [line.parent, buses[i] as string];
    flowsByIndex.set(line.index, { from, to, pKW: pPu * S_BASE_KVA, qKVAr: qPu * S_BASE_KVA });
  }
  const voltagesPu: Record<string, number> = {};
  const voltageRe = new Map<string, number>();
  const voltageIm = new Map<string, number>();
  buses.forEach((bus, i) => {
    voltagesPu[bus] = Math.hypot(vRe[i]!, vIm[i]!);
    voltageRe.set(bus, vRe[i]!);
    voltageIm.set(bus, vIm[i]!);
  });
  return {
    converged,
    iterations,
    voltagesPu,
    voltageRe,
    voltageIm,
    lossesKW: lossesPu * S_BASE_KVA,
    lineFlows: Array.from({ length: feeder.lineCount }, (_, k) => flowsByIndex.get(k)!),
    maxMismatchPu: mismatch,
  };
}
