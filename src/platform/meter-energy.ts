/**
 * Energy from power samples (pure), the same way on the platform and on the gateway that sent them:
 * each sample's power holds until the next sample, for at most `maxHoldMs` (a longer gap, the
 * gateway being away, is not filled in); the last sample before the interval covers its start.
 */

export interface PowerSample {
  timeMs: number;
  /** Net consumption, W (negative = export). */
  netW: number;
}

export interface IntervalEnergy {
  /** Net energy taken in the interval, kWh of real time. */
  kWh: number;
  /** Milliseconds of the interval some sample covers. */
  coveredMs: number;
}

/**
 * `points` in time order: at most one before `fromMs` (the one holding at the start), then those in
 * [fromMs, toMs). Null when no sample covers any of the interval.
 */
export function intervalEnergy(
  points: readonly PowerSample[],
  fromMs: number,
  toMs: number,
  maxHoldMs: number,
): IntervalEnergy | null {
  let wh = 0;
  let coveredMs = 0;
  points.forEach((p, i) => {
    const start = Math.max(fromMs, p.timeMs);
    const end = Math.min(toMs, points[i + 1]?.timeMs ?? toMs, p.timeMs + maxHoldMs);
    if (end > start) {
      wh += (p.netW * (end - start)) / 3_600_000;
      coveredMs += end - start;
    }
  });
  return coveredMs > 0 ? { kWh: wh / 1000, coveredMs } : null;
}
