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

/** One metering interval's energy as a gateway measured it. */
export interface ClosedInterval extends IntervalEnergy {
  fromMs: number;
  toMs: number;
}

/**
 * A gateway's meter integrated interval by interval as its samples come (the energy it sends the
 * platform, and the figure it checks its settlements against: one computation for both). An interval
 * closes with the first sample of a later one; the last sample of an interval holds into the next.
 * Only what the process saw counts: after a restart, the interval under way is measured from the
 * samples since (its `coveredMs` says how much); after the wall clock steps back, from the first
 * sample after the step.
 */
export class IntervalMeter {
  private samples: PowerSample[] = [];
  private open: number | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly maxHoldMs = 2 * intervalMs,
  ) {}

  /**
   * Takes a sample; returns the intervals it closed: the one under way and, when the gateway missed
   * whole intervals (a stalled process), each of those the last sample still holds into (`maxHoldMs`).
   */
  add(timeMs: number, netW: number): ClosedInterval[] {
    const interval = Math.floor(timeMs / this.intervalMs) * this.intervalMs;
    const closed: ClosedInterval[] = [];
    for (let from = this.open; from !== undefined && from < interval; from += this.intervalMs) {
      const e = intervalEnergy([...this.samples, { timeMs, netW }], from, from + this.intervalMs, this.maxHoldMs);
      if (e) closed.push({ ...e, fromMs: from, toMs: from + this.intervalMs });
      this.samples = this.samples.slice(-1);
      if (!e) break; // nothing holds any further
    }
    // A sample of an earlier interval: the wall clock stepped back. What the interval under way has
    // is stamped wrong and is dropped; measuring starts again from this sample.
    if (this.open !== undefined && interval < this.open) this.samples = [];
    this.open = interval;
    this.samples.push({ timeMs, netW });
    return closed;
  }
}
