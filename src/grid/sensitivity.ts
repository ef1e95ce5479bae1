import type { RadialFeeder } from './feeder.js';

/**
 * Voltage sensitivities of a radial feeder from the linearised DistFlow equations (Baran & Wu 1989):
 * injecting 1 kW at bus j raises the voltage at bus i by R_ij / V², with R_ij the resistance of the
 * path that i and j share from the slack (X_ij likewise for 1 kVAr). In pu per kW (or kVAr).
 * An inverter agent receives its row at commissioning (or estimates it, `estimateSensitivity`).
 */
export interface Sensitivities {
  buses: string[];
  /** dV_i/dP_j and dV_i/dQ_j, pu per kW / kVAr, indexed like `buses`. */
  dvdp: number[][];
  dvdq: number[][];
}

export function feederSensitivities(feeder: RadialFeeder, buses: readonly string[]): Sensitivities {
  const toPu = 1 / (feeder.baseKV ** 2 * 1000);
  const rCum = new Map<string, number>([[feeder.slack, 0]]);
  const xCum = new Map<string, number>([[feeder.slack, 0]]);
  const depth = new Map<string, number>([[feeder.slack, 0]]);
  for (const bus of feeder.order.slice(1)) {
    const line = feeder.parentLine.get(bus)!;
    rCum.set(bus, rCum.get(line.parent)! + line.rOhm * toPu);
    xCum.set(bus, xCum.get(line.parent)! + line.xOhm * toPu);
    depth.set(bus, depth.get(line.parent)! + 1);
  }
  const ancestorShared = (a: string, b: string): string => {
    let x = a;
    let y = b;
    while (depth.get(x)! > depth.get(y)!) x = feeder.parentLine.get(x)!.parent;
    while (depth.get(y)! > depth.get(x)!) y = feeder.parentLine.get(y)!.parent;
    while (x !== y) {
      x = feeder.parentLine.get(x)!.parent;
      y = feeder.parentLine.get(y)!.parent;
    }
    return x;
  };
  const dvdp = buses.map((i) => buses.map((j) => rCum.get(ancestorShared(i, j))! / feeder.vSlackPu));
  const dvdq = buses.map((i) => buses.map((j) => xCum.get(ancestorShared(i, j))! / feeder.vSlackPu));
  return { buses: [...buses], dvdp, dvdq };
}

/**
 * What an agent can learn alone: least-squares fit of its own voltage change to its own power changes,
 * ΔV ≈ s_p·ΔP + s_q·ΔQ, from (ΔP, ΔQ, ΔV) samples of its own measurements and small perturbations.
 */
export function estimateSensitivity(samples: readonly { dPkW: number; dQkVAr: number; dVpu: number }[]): {
  dvdp: number;
  dvdq: number;
} {
  let spp = 0;
  let spq = 0;
  let sqq = 0;
  let spv = 0;
  let sqv = 0;
  for (const s of samples) {
    spp += s.dPkW * s.dPkW;
    spq += s.dPkW * s.dQkVAr;
    sqq += s.dQkVAr * s.dQkVAr;
    spv += s.dPkW * s.dVpu;
    sqv += s.dQkVAr * s.dVpu;
  }
  const det = spp * sqq - spq * spq;
  if (Math.abs(det) < 1e-18) return { dvdp: spp > 0 ? spv / spp : 0, dvdq: sqq > 0 ? sqv / sqq : 0 };
  return { dvdp: (spv * sqq - sqv * spq) / det, dvdq: (sqv * spp - spv * spq) / det };
}
