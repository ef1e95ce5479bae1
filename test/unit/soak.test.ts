import { describe, expect, it } from 'vitest';
import { type SoakPoint, soakGrowth } from '../../src/bench/soak.js';

const DAY_S = 100;

/** Samples every 2 s over `days` days: memory that swings with a daily cycle and GC, plus `leakMBPerDay`. */
function series(days: number, leakMBPerDay: number): SoakPoint[] {
  const points: SoakPoint[] = [];
  for (let tS = 0; tS < days * DAY_S; tS += 2) {
    const day = tS / DAY_S;
    const daily = 3 * Math.sin((2 * Math.PI * tS) / DAY_S);
    const garbage = (tS % 20) / 2; // a full collection every 20 s drops the heap back to its floor
    points.push({
      tS,
      rssMB: 70 + daily + leakMBPerDay * day,
      heapUsedMB: 12 + garbage + leakMBPerDay * day,
      outboxPending: tS === 500 ? 40 : 1,
      logBytes: 1000 * tS,
    });
  }
  return points;
}

describe('soak growth', () => {
  it('finds no growth in memory that only swings with the day and the collections', () => {
    const r = soakGrowth(new Map([['inv-1', series(10, 0)]]), { dayS: DAY_S, days: 10, warmupDays: 2 });
    const p = r.processes[0]!;
    expect(Math.abs(p.rssGrowth!)).toBeLessThan(0.005);
    expect(Math.abs(p.rssTrend!)).toBeLessThan(0.005);
    expect(p.heapGrowth).toBeCloseTo(0, 6);
    expect(p.warm.heapLiveMB).toBeCloseTo(12, 6);
    expect(p.warm.logKBPerDay).toBeCloseTo((1000 * DAY_S) / 1024, 0);
    expect(r.maxOutboxPending).toBe(40);
  });

  it('finds a leak, in the window right after the warm-up against the last day', () => {
    const r = soakGrowth(
      new Map([
        ['steady', series(10, 0)],
        ['leaky', series(10, 0.5)],
      ]),
      { dayS: DAY_S, days: 10, warmupDays: 2 },
    );
    const leaky = r.processes.find((p) => p.id === 'leaky')!;
    // Day 3 (index 2) against day 10 (index 9): 7 days of 0.5 MB on a heap floor of about 13 MB.
    expect(leaky.heapGrowth!).toBeGreaterThan(0.2);
    expect(leaky.rssGrowth!).toBeGreaterThan(0.04);
    expect(r.worstHeapGrowth).toBe(leaky.heapGrowth);
    // The fitted line rises by the leak over the 8 days after the warm-up: 3.5 MB on about 71.25.
    expect(leaky.rssTrend!).toBeCloseTo(3.5 / (70 + 0.5 * 2.5), 2);
    expect(r.worstRssTrend).toBe(leaky.rssTrend);
    // The daily curve keeps rising by the leak, about 0.5 MB a day.
    expect(leaky.dailyRssMB).toHaveLength(10);
    const steps = leaky.dailyRssMB.slice(1).map((v, i) => v! - leaky.dailyRssMB[i]!);
    for (const step of steps) expect(step).toBeCloseTo(0.5, 1);
  });

  it("takes the heap after full collections where the gateway reports it, whatever the samples' timing", () => {
    // The samples never fall right after a collection (4 MB of garbage at the least), the live heap is reported.
    const reported = (leak: number) =>
      series(10, leak).map((p) => ({ ...p, heapUsedMB: p.heapUsedMB! + 4, heapLiveMB: 12 + (leak * p.tS) / DAY_S }));
    const r = soakGrowth(
      new Map([
        ['steady', reported(0)],
        ['leaky', reported(0.5)],
      ]),
      { dayS: DAY_S, days: 10, warmupDays: 2 },
    );
    const [steady, leaky] = r.processes;
    expect(steady!.warm.heapLiveMB).toBeCloseTo(12, 6);
    expect(steady!.heapGrowth).toBeCloseTo(0, 6);
    // Medians of days 3 and 10: 13.25 and 16.75 MB.
    expect(leaky!.heapGrowth).toBeCloseTo(16.75 / 13.25 - 1, 2);
  });

  it('leaves a process out of the verdict for a window where it was never sampled', () => {
    const restarted = series(10, 0).filter((p) => p.tS >= 3 * DAY_S);
    const r = soakGrowth(new Map([['inv-1', restarted]]), { dayS: DAY_S, days: 10, warmupDays: 2 });
    expect(r.processes[0]!.rssGrowth).toBeNull();
    expect(r.worstRssGrowth).toBeNull();
  });

  it('needs whole days, two of them after the warm-up', () => {
    expect(() => soakGrowth(new Map(), { dayS: DAY_S, days: Number.NaN, warmupDays: 2 })).toThrow(/whole days/);
    expect(() => soakGrowth(new Map(), { dayS: DAY_S, days: 3, warmupDays: 2 })).toThrow(/two after the warm-up/);
  });
});
