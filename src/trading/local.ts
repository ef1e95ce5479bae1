import type { QuadraticCost, StorageUnit } from './model.js';

/**
 * Best responses of an agent's own devices to its local price λ: each minimises its cost minus the
 * value λ gives the energy it supplies. These are the "decide its own generation / DR / storage" steps
 * of Algorithm 1 and are exact (closed form, or an exact small QP for storage).
 */

export const clip = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/** Generator output, demand-response curtailment or grid import: argmin a·v² + b·v − λ·v over [0, max]. */
export function supplyResponse(d: QuadraticCost, t: number, price: number): number {
  return clip((price - d.b[t]!) / (2 * d.a[t]!), 0, d.max[t]!);
}

/** Grid export: argmin a·x² − b·x + λ·x over [0, max]. */
export function exportResponse(d: QuadraticCost, t: number, price: number): number {
  return clip((d.b[t]! - price) / (2 * d.a[t]!), 0, d.max[t]!);
}

export function quadraticCost(d: QuadraticCost, t: number, v: number): number {
  return d.a[t]! * v * v + d.b[t]! * v;
}

/** Cost of grid export x: a·x² − b·x. */
export function exportCost(d: QuadraticCost, t: number, x: number): number {
  return d.a[t]! * x * x - d.b[t]! * x;
}

export interface StorageSchedule {
  charge: number[];
  discharge: number[];
  /** horizon + 1 entries, soc[0] = initial. */
  soc: number[];
}

/**
 * Storage over the horizon: min Σ a(c_t² + d_t²) + λ_t(c_t − d_t) subject to the charge/discharge
 * limits and lo_t ≤ soc_t ≤ hi_t, with soc_{t+1} = soc_t + η·c_t − d_t/η.
 *
 * Solved in the dual of the soc bounds: one multiplier ν_t per soc_t (positive when the upper bound
 * binds, negative for the lower one), which shifts the value of stored energy for every earlier slot.
 * Given ν, each slot's c and d are clipped closed forms; cyclic coordinate ascent sets each ν_t exactly
 * (the soc it yields is monotone and piecewise linear in ν_t, so the root is found between breakpoints).
 * `warm` carries ν from the previous call: prices move little between rounds, so few sweeps are needed.
 */
export class StorageSolver {
  private nu: Float64Array;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;

  constructor(
    private readonly unit: StorageUnit,
    private readonly horizon: number,
  ) {
    this.nu = new Float64Array(horizon + 1);
    this.lo = new Float64Array(horizon + 1);
    this.hi = new Float64Array(horizon + 1).fill(unit.capacityKWh);
    if (unit.socEndMinKWh !== undefined) this.lo[horizon] = unit.socEndMinKWh;
  }

  private chargeAt(price: number, phi: number): number {
    const u = this.unit;
    return clip(-(price + u.efficiency * phi) / (2 * u.a), 0, u.maxChargeKWh);
  }

  private dischargeAt(price: number, phi: number): number {
    const u = this.unit;
    return clip((price + phi / u.efficiency) / (2 * u.a), 0, u.maxDischargeKWh);
  }

  solve(prices: ArrayLike<number>, maxSweeps = 500): StorageSchedule {
    const T = this.horizon;
    const eta = this.unit.efficiency;
    const phi = new Float64Array(T); // Φ_s = Σ_{t > s} ν_t
    const recomputePhi = () => {
      let acc = 0;
      for (let s = T - 1; s >= 0; s--) {
        acc += this.nu[s + 1]!;
        phi[s] = acc;
      }
    };
    recomputePhi();
    const scale = Math.max(1e-9, ...Array.from(prices, Math.abs));
    for (let sweep = 0; sweep < maxSweeps; sweep++) {
      let largestStep = 0;
      for (let t = 1; t <= T; t++) {
        const step = this.optimiseCoordinate(t, prices, phi);
        if (step !== 0) {
          this.nu[t]! += step;
          for (let s = 0; s < t; s++) phi[s]! += step;
          largestStep = Math.max(largestStep, Math.abs(step));
        }
      }
      // A multiplier step this small moves the schedule by about 1e-11·scale/(2a) kWh: settled.
      if (largestStep <= 1e-11 * scale) break;
    }
    const charge: number[] = [];
    const discharge: number[] = [];
    const soc = [this.unit.socKWh];
    for (let s = 0; s < T; s++) {
      const c = this.chargeAt(prices[s]!, phi[s]!);
      const d = this.dischargeAt(prices[s]!, phi[s]!);
      charge.push(c);
      discharge.push(d);
      soc.push(soc[s]! + eta * c - d / eta);
    }
    return { charge, discharge, soc };
  }

  /** The change of ν_t that puts soc_t inside [lo_t, hi_t] with complementary slackness. */
  private optimiseCoordinate(t: number, prices: ArrayLike<number>, phi: Float64Array): number {
    const u = this.unit;
    const eta = u.efficiency;
    const socAfter = (delta: number) => {
      let soc = u.socKWh;
      for (let s = 0; s < t; s++)
        soc += eta * this.chargeAt(prices[s]!, phi[s]! + delta) - this.dischargeAt(prices[s]!, phi[s]! + delta) / eta;
      return soc;
    };
    const current = this.nu[t]!;
    // Without this multiplier (ν_t = 0) the soc must already be within bounds, else it binds.
    const free = socAfter(-current);
    let target: number;
    if (free > this.hi[t]!) target = this.hi[t]!;
    else if (free < this.lo[t]!) target = this.lo[t]!;
    else return -current;
    // soc(δ) is non-increasing and piecewise linear; its breakpoints are where a clip switches.
    const points: number[] = [];
    for (let s = 0; s < t; s++) {
      const p = prices[s]!;
      const f = phi[s]!;
      points.push(
        -p / eta - f,
        (-2 * u.a * u.maxChargeKWh - p) / eta - f,
        -eta * p - f,
        eta * (2 * u.a * u.maxDischargeKWh - p) - f,
      );
    }
    points.sort((a, b) => a - b);
    let left = -current;
    let socLeft = free;
    const rising = target > free; // need a lower multiplier to raise the soc
    const ordered = rising ? points.filter((x) => x < left).reverse() : points.filter((x) => x > left);
    // soc is monotone along `ordered`: binary search for the first breakpoint that reaches the target.
    const reaches = (x: number) => {
      const socX = socAfter(x);
      return rising ? socX >= target : socX <= target;
    };
    let lo = 0;
    let hi = ordered.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (reaches(ordered[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    // Target not reachable (bounds that cannot be met): move to the last breakpoint and let the
    // caller's residual show the infeasibility.
    if (lo === ordered.length) return ordered.length > 0 ? ordered[ordered.length - 1]! : left;
    if (lo > 0) {
      left = ordered[lo - 1]!;
      socLeft = socAfter(left);
    }
    const x = ordered[lo]!;
    const socX = socAfter(x);
    // soc is linear between consecutive breakpoints.
    return socX === socLeft ? x : left + ((target - socLeft) * (x - left)) / (socX - socLeft);
  }
}
