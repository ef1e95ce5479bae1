import type { SessionInstance } from '../trading/market-interval.js';
import { type OptimalityGap, optimalityGap } from '../trading/optimality-gap.js';

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
  /** Hour of the simulated day, for the report's episodes. */
  hour?: number;
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
  /** The first few spells with some bus beyond a limit: when, where and how far. */
  episodes: { fromHour: number; toHour: number; bus: string; worstPu: number }[];
}

const MAX_EPISODES = 10;

/**
 * Voltage violations folded one sample at a time (each sample holds until the next), so that a run
 * of any length keeps only this state.
 */
export class VoltageTally {
  private violations = 0;
  private violationMs = 0;
  private maxPu = Number.NEGATIVE_INFINITY;
  private minPu = Number.POSITIVE_INFINITY;
  private readonly outside = new Set<string>();
  private readonly episodes: VoltageKpi['episodes'] = [];
  private open: VoltageKpi['episodes'][number] | undefined;
  private last: { tMs: number; any: boolean } | undefined;

  constructor(private readonly limits: { min: number; max: number }) {}

  private excess(v: number): number {
    return Math.max(v - this.limits.max, this.limits.min - v);
  }

  add(s: VoltageSample): void {
    if (this.last?.any) this.violationMs += s.tMs - this.last.tMs;
    let worst: { bus: string; v: number } | undefined;
    for (const [bus, v] of Object.entries(s.voltagesPu)) {
      this.maxPu = Math.max(this.maxPu, v);
      this.minPu = Math.min(this.minPu, v);
      const beyond = v > this.limits.max || v < this.limits.min;
      if (beyond && !this.outside.has(bus)) this.violations++;
      if (beyond) this.outside.add(bus);
      else this.outside.delete(bus);
      if (beyond && (!worst || this.excess(v) > this.excess(worst.v))) worst = { bus, v };
    }
    this.last = { tMs: s.tMs, any: worst !== undefined };
    const hour = Number((s.hour ?? s.tMs / 3_600_000).toFixed(2));
    if (!worst) this.open = undefined;
    else if (this.open) {
      this.open.toHour = hour;
      if (this.excess(worst.v) > this.excess(this.open.worstPu))
        Object.assign(this.open, { bus: worst.bus, worstPu: Number(worst.v.toFixed(4)) });
    } else if (this.episodes.length < MAX_EPISODES) {
      this.open = { fromHour: hour, toHour: hour, bus: worst.bus, worstPu: Number(worst.v.toFixed(4)) };
      this.episodes.push(this.open);
    }
  }

  result(): VoltageKpi {
    return {
      violations: this.violations,
      violationSeconds: this.violationMs / 1000,
      maxPu: Number.isFinite(this.maxPu) ? this.maxPu : Number.NaN,
      minPu: Number.isFinite(this.minPu) ? this.minPu : Number.NaN,
      episodes: this.episodes.map((e) => ({ ...e })),
    };
  }
}

/** Violations over a sampled run: each sample holds until the next one. */
export function voltageKpi(samples: readonly VoltageSample[], limits: { min: number; max: number }): VoltageKpi {
  const tally = new VoltageTally(limits);
  for (const s of samples) tally.add(s);
  return tally.result();
}

/** Energy (kWh) under a power series in kW, folded one point at a time (trapezoids). */
export class EnergyTally {
  kWh = 0;
  private last: { tMs: number; kW: number } | undefined;

  add(p: { tMs: number; kW: number }): void {
    if (this.last) this.kWh += ((this.last.kW + p.kW) / 2) * ((p.tMs - this.last.tMs) / 3_600_000);
    this.last = p;
  }
}

/** Energy (kWh) under a power series in kW sampled at simulated times (trapezoids). */
export function energyKWh(points: readonly { tMs: number; kW: number }[]): number {
  const tally = new EnergyTally();
  for (const p of points) tally.add(p);
  return tally.kWh;
}

/** Delivered / expected, 1 when nothing was expected. */
export function deliveryRatio(delivered: number, expected: number): number {
  return expected > 0 ? Math.min(1, delivered / expected) : 1;
}

export interface TradingGapKpi {
  /** Market intervals whose every trader's instance was seen, so that the optimum could be rebuilt. */
  intervals: number;
  /** Intervals whose cost was within 1e-3 (relative) of the centralised optimum. */
  withinTarget: number;
  worstRelativeGap: number | null;
  medianRelativeGap: number | null;
  /** The interval with the largest gap, to look into. */
  worst: OptimalityGap | null;
  /** The last intervals beyond 1e-3 (at most 20): which sessions to look up in the traders' logs. */
  misses: { session: string; relativeGap: number }[];
  /**
   * Intervals whose centralised optimum the reference solver could not find (their instance is
   * saved nowhere: the session names them in the traders' logs); not counted in `intervals`.
   */
  unsolved: { session: string; error: string }[];
}

/** An interval the reference solver could not solve, with the traders' instances to look into. */
export interface UnsolvedInterval {
  session: string;
  error: string;
  instances: SessionInstance[];
}

/** The relative gap below which an interval's distributed result counts as the optimum. */
export const GAP_TARGET = 1e-3;

/** Sessions held open for late instances before they are solved and folded into the tally. */
const OPEN_SESSIONS = 4;
/** Gaps kept for the median (the count and the worst cover the whole run). */
const KEPT_GAPS = 10_000;
const KEPT_MISSES = 20;

/**
 * The distributed markets' cost against the centralised optimum, interval by interval: the traders'
 * instances of one session are put together and solved at once (`optimalityGap`). A session is
 * solved once newer ones have started (its traders' instances are all in by then); an interval where
 * some trader's instance is missing (it was down, or the bench did not see it) is left out.
 */
export class TradingGapTally {
  /** Instances by session, then by trader: the latest seen of each. */
  private readonly open = new Map<string, Map<string, SessionInstance>>();
  private readonly folded = new Set<string>();
  private readonly gaps: number[] = [];
  private intervals = 0;
  private within = 0;
  private worst: OptimalityGap | null = null;
  private readonly misses: { session: string; relativeGap: number }[] = [];
  private readonly unsolved: UnsolvedInterval[] = [];

  add(i: SessionInstance): void {
    if (this.folded.has(i.session)) return;
    const group = this.open.get(i.session) ?? new Map<string, SessionInstance>();
    group.set(i.agent.id, i);
    this.open.set(i.session, group);
    while (this.open.size > OPEN_SESSIONS) this.fold(oldestSession(this.open.keys()));
  }

  private fold(session: string): void {
    const instances = [...this.open.get(session)!.values()];
    this.open.delete(session);
    let gap: OptimalityGap | undefined;
    try {
      gap = optimalityGap(instances);
    } catch (err) {
      // A bench run reports an interval it cannot check rather than stopping on it.
      this.unsolved.push({ session, error: (err as Error).message, instances });
      if (this.unsolved.length > KEPT_MISSES) this.unsolved.shift();
    }
    this.folded.add(session);
    if (this.folded.size > 4 * OPEN_SESSIONS) this.folded.delete(this.folded.values().next().value!);
    if (!gap) return;
    this.intervals++;
    if (gap.relativeGap <= GAP_TARGET) this.within++;
    else {
      this.misses.push({ session, relativeGap: gap.relativeGap });
      if (this.misses.length > KEPT_MISSES) this.misses.shift();
    }
    if (!this.worst || gap.relativeGap > this.worst.relativeGap) this.worst = gap;
    this.gaps.push(gap.relativeGap);
    if (this.gaps.length > KEPT_GAPS) this.gaps.shift();
  }

  /** The intervals the reference solver could not solve, with their instances (the last 20). */
  unsolvedIntervals(): readonly UnsolvedInterval[] {
    return this.unsolved;
  }

  /** Solves what is still open and returns the tally of the whole run. */
  result(): TradingGapKpi {
    for (const session of [...this.open.keys()]) this.fold(session);
    return {
      intervals: this.intervals,
      withinTarget: this.within,
      worstRelativeGap: this.worst?.relativeGap ?? null,
      medianRelativeGap: this.gaps.length ? percentile(this.gaps, 50) : null,
      worst: this.worst,
      misses: [...this.misses],
      unsolved: this.unsolved.map(({ session, error }) => ({ session, error })),
    };
  }
}

/** Session ids are interval starts (ms), optionally prefixed (`up-`): the oldest is the smallest number. */
function oldestSession(sessions: Iterable<string>): string {
  const start = (s: string) => Number(s.replace(/^\D+/, ''));
  return [...sessions].reduce((a, b) => (start(b) < start(a) ? b : a));
}

/** The gap tally of a finished set of instances. */
export function tradingGapKpi(instances: Iterable<SessionInstance>): TradingGapKpi {
  const tally = new TradingGapTally();
  for (const i of instances) tally.add(i);
  return tally.result();
}
