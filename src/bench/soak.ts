import { ErrorCode, P2PError } from '../core/errors.js';
import type { ProcessSample } from './sampling.js';

/** One sample of one gateway process in a soak run, at `tS` real seconds after the day started. */
export interface SoakPoint extends Omit<ProcessSample, 'id' | 'gateways'> {
  tS: number;
}

/** A window of whole compressed days: [fromDay, toDay). */
interface DayWindow {
  fromDay: number;
  toDay: number;
}

export interface WindowFigures {
  /** Median resident memory over the window (it swings with each collection; the median does not). */
  rssMB: number | null;
  /** Medians of its parts: anonymous memory, heap committed by V8, memory held by buffers. */
  anonMB: number | null;
  heapTotalMB: number | null;
  externalMB: number | null;
  /** Median heap committed per V8 space. */
  heapSpacesMB: Record<string, number>;
  /**
   * What the process really holds on its heap: the median over the window of the heap in use right
   * after each full collection. For a process that does not report that, the lowest heap in use
   * sampled (an estimate that depends on a sample falling right after a collection).
   */
  heapLiveMB: number | null;
  /** Log written per compressed day in the window. */
  logKBPerDay: number;
  maxOutboxPending: number;
}

export interface SoakProcessResult {
  id: string;
  warm: WindowFigures;
  end: WindowFigures;
  /** end / warm − 1 (median RSS, live heap); null where either window has no sample. */
  rssGrowth: number | null;
  heapGrowth: number | null;
  logGrowth: number | null;
  /** Median RSS of each whole day of the run, first day first: whether memory levels off or keeps rising. */
  dailyRssMB: (number | null)[];
  /**
   * The daily medians after the warm-up fitted with a line (least squares): its rise over those days,
   * against its own value on the first of them. Less swayed than `rssGrowth` by one day's collections.
   */
  rssTrend: number | null;
}

export interface SoakResult {
  days: number;
  warmupDays: number;
  processes: SoakProcessResult[];
  worstRssGrowth: number | null;
  worstRssTrend: number | null;
  worstHeapGrowth: number | null;
  /** Outbox entries waiting at the worst moment of the run, over all gateways. */
  maxOutboxPending: number;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

type MemoryField = 'rssMB' | 'anonMB' | 'heapUsedMB' | 'heapLiveMB' | 'heapTotalMB' | 'externalMB';

const within = (points: readonly SoakPoint[], w: DayWindow, dayS: number) =>
  points.filter((p) => p.tS >= w.fromDay * dayS && p.tS < w.toDay * dayS);

const defined = (points: readonly SoakPoint[], k: MemoryField) =>
  points.flatMap((p) => (p[k] === undefined ? [] : [p[k]!]));

function figures(points: readonly SoakPoint[], w: DayWindow, dayS: number): WindowFigures {
  const inside = within(points, w, dayS);
  const first = inside[0];
  const last = inside.at(-1);
  const spanDays = first && last && last.tS > first.tS ? (last.tS - first.tS) / dayS : 0;
  return {
    rssMB: median(defined(inside, 'rssMB')),
    anonMB: median(defined(inside, 'anonMB')),
    heapTotalMB: median(defined(inside, 'heapTotalMB')),
    externalMB: median(defined(inside, 'externalMB')),
    heapSpacesMB: Object.fromEntries(
      [...new Set(inside.flatMap((p) => Object.keys(p.heapSpacesMB ?? {})))].map((space) => [
        space,
        median(inside.flatMap((p) => (p.heapSpacesMB?.[space] === undefined ? [] : [p.heapSpacesMB[space]!]))) ?? 0,
      ]),
    ),
    heapLiveMB:
      median(defined(inside, 'heapLiveMB')) ??
      defined(inside, 'heapUsedMB').reduce<number | null>((low, v) => (low === null || v < low ? v : low), null),
    logKBPerDay: spanDays > 0 ? (last!.logBytes - first!.logBytes) / 1024 / spanDays : 0,
    maxOutboxPending: Math.max(0, ...inside.map((p) => p.outboxPending ?? 0)),
  };
}

/** Rise of the least-squares line through the days' values (those known) over their span, against its start. */
function trend(daily: readonly (number | null)[]): number | null {
  const points = daily.flatMap((v, day) => (v === null ? [] : [{ day, v }]));
  if (points.length < 2) return null;
  const first = points[0]!.day;
  const last = points.at(-1)!.day;
  const meanDay = points.reduce((s, p) => s + p.day, 0) / points.length;
  const meanV = points.reduce((s, p) => s + p.v, 0) / points.length;
  const slope =
    points.reduce((s, p) => s + (p.day - meanDay) * (p.v - meanV), 0) /
    points.reduce((s, p) => s + (p.day - meanDay) ** 2, 0);
  const start = meanV + slope * (first - meanDay);
  return start > 0 ? (slope * (last - first)) / start : null;
}

const growth = (warm: number | null, end: number | null) =>
  warm === null || end === null || warm <= 0 ? null : end / warm - 1;

const worst = (values: (number | null)[]) => {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? Math.max(...known) : null;
};

/** Throws an input error unless the soak has whole days and at least two of them after the warm-up. */
export function checkSoakDays(o: { days: number; warmupDays: number }): void {
  if (!(Number.isInteger(o.days) && Number.isInteger(o.warmupDays) && o.warmupDays >= 0 && o.days >= o.warmupDays + 2))
    throw new P2PError(
      ErrorCode.input,
      `a soak needs whole days and at least two after the warm-up (days ${o.days}, warm-up ${o.warmupDays})`,
      { component: 'soak' },
    );
}

/**
 * Memory growth of each gateway process over a soak run of `days` compressed days of `dayS` real
 * seconds: the day right after the warm-up against the last day. Whole days are compared so that
 * the daily cycle (PV at noon, the evening peak) weighs the same in both.
 */
export function soakGrowth(
  series: ReadonlyMap<string, readonly SoakPoint[]>,
  o: { dayS: number; days: number; warmupDays: number },
): SoakResult {
  checkSoakDays(o);
  const warmWindow = { fromDay: o.warmupDays, toDay: o.warmupDays + 1 };
  const endWindow = { fromDay: o.days - 1, toDay: o.days };
  const processes = [...series].map(([id, points]) => {
    const warm = figures(points, warmWindow, o.dayS);
    const end = figures(points, endWindow, o.dayS);
    const dailyRssMB = Array.from({ length: o.days }, (_, day) =>
      median(defined(within(points, { fromDay: day, toDay: day + 1 }, o.dayS), 'rssMB')),
    );
    return {
      id,
      warm,
      end,
      rssGrowth: growth(warm.rssMB, end.rssMB),
      heapGrowth: growth(warm.heapLiveMB, end.heapLiveMB),
      logGrowth: growth(warm.logKBPerDay, end.logKBPerDay),
      dailyRssMB,
      rssTrend: trend(dailyRssMB.slice(o.warmupDays)),
    };
  });
  return {
    days: o.days,
    warmupDays: o.warmupDays,
    processes,
    worstRssGrowth: worst(processes.map((p) => p.rssGrowth)),
    worstRssTrend: worst(processes.map((p) => p.rssTrend)),
    worstHeapGrowth: worst(processes.map((p) => p.heapGrowth)),
    maxOutboxPending: Math.max(0, ...[...series.values()].flat().map((p) => p.outboxPending ?? 0)),
  };
}
