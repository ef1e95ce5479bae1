/**
 * Key performance indicators of a bench run, computed from what the bench sampled (pure functions).
 */

/** The p-th percentile (0..100) by linear interpolation between order statistics; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export interface VoltageSample {
  /** Simulated time, ms. */
  tMs: number;
  /** Voltage at every bus, pu. */
  voltagesPu: Record<string, number>;
}

export interface VoltageKpi {
  /** Times some bus went beyond a limit (a bus that stays beyond counts once). */
  violations: number;
  /** Simulated seconds during which at least one bus was beyond a limit. */
  violationSeconds: number;
  maxPu: number;
  minPu: number;
}

/** Violations over a sampled run: each sample holds until the next one. */
export function voltageKpi(samples: readonly VoltageSample[], limits: { min: number; max: number }): VoltageKpi {
  let violations = 0;
  let violationMs = 0;
  let maxPu = Number.NEGATIVE_INFINITY;
  let minPu = Number.POSITIVE_INFINITY;
  const outside = new Set<string>();
  samples.forEach((s, i) => {
    let any = false;
    for (const [bus, v] of Object.entries(s.voltagesPu)) {
      maxPu = Math.max(maxPu, v);
      minPu = Math.min(minPu, v);
      const beyond = v > limits.max || v < limits.min;
      if (beyond && !outside.has(bus)) violations++;
      if (beyond) outside.add(bus);
      else outside.delete(bus);
      any ||= beyond;
    }
    const next = samples[i + 1];
    if (any && next) violationMs += next.tMs - s.tMs;
  });
  return {
    violations,
    violationSeconds: violationMs / 1000,
    maxPu: Number.isFinite(maxPu) ? maxPu : Number.NaN,
    minPu: Number.isFinite(minPu) ? minPu : Number.NaN,
  };
}

/** Energy (kWh) under a power series in kW sampled at simulated times (trapezoids). */
export function energyKWh(points: readonly { tMs: number; kW: number }[]): number {
  let e = 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!;
    const b = points[i]!;
    e += ((a.kW + b.kW) / 2) * ((b.tMs - a.tMs) / 3_600_000);
  }
  return e;
}

/** Delivered / expected, 1 when nothing was expected. */
export function deliveryRatio(delivered: number, expected: number): number {
  return expected > 0 ? Math.min(1, delivered / expected) : 1;
}
