import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { IntervalMeter, intervalEnergy } from '../../src/platform/meter-energy.js';
import { type MeterInterval, MeterIntervals } from '../../src/platform/meter-intervals.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const MIN = 60_000;
const HOLD = 2 * MIN;

describe('energy from power samples', () => {
  it('each sample holds until the next; the one before the interval covers its start', () => {
    // 3.6 kW from 30 s before the interval, 7.2 kW from 20 s in, over a one-minute interval:
    // 20 s · 3.6 kW = 0.02 kWh, 40 s · 7.2 kW = 0.08 kWh.
    const e = intervalEnergy(
      [
        { timeMs: -30_000, netW: 3600 },
        { timeMs: 20_000, netW: 7200 },
      ],
      0,
      MIN,
      HOLD,
    );
    expect(e?.kWh).toBeCloseTo(0.1, 12);
    expect(e?.coveredMs).toBe(MIN);
    // Export is negative.
    expect(intervalEnergy([{ timeMs: 0, netW: -3600 }], 0, MIN, HOLD)?.kWh).toBeCloseTo(-0.06, 12);
  });

  it('a gap longer than the hold is not filled in, and the coverage says so', () => {
    // A sample at 0 holds 15 s at most; the next at 45 s: 30 s of the minute are covered.
    const e = intervalEnergy(
      [
        { timeMs: 0, netW: 3600 },
        { timeMs: 45_000, netW: 3600 },
      ],
      0,
      MIN,
      15_000,
    );
    expect(e?.coveredMs).toBe(30_000);
    expect(e?.kWh).toBeCloseTo(0.03, 12);
    // A sample before the interval that stopped holding before it starts covers nothing.
    expect(intervalEnergy([{ timeMs: -20_000, netW: 3600 }], 0, MIN, 15_000)).toBeNull();
    // Held up to exactly the start: still nothing.
    expect(intervalEnergy([{ timeMs: -15_000, netW: 3600 }], 0, MIN, 15_000)).toBeNull();
  });

  it('no samples, or only samples at or after the end, give null; several before the start count once', () => {
    expect(intervalEnergy([], 0, MIN, HOLD)).toBeNull();
    expect(intervalEnergy([{ timeMs: MIN, netW: 1000 }], 0, MIN, HOLD)).toBeNull();
    const e = intervalEnergy(
      [
        { timeMs: -50_000, netW: 99_999 },
        { timeMs: -10_000, netW: 3600 },
        { timeMs: MIN, netW: 99_999 },
      ],
      0,
      MIN,
      HOLD,
    );
    expect(e).toEqual({ kWh: expect.closeTo(0.06, 12), coveredMs: MIN });
    // Two samples at the same time: the later one holds.
    expect(
      intervalEnergy(
        [
          { timeMs: 0, netW: 99_999 },
          { timeMs: 0, netW: 3600 },
        ],
        0,
        MIN,
        HOLD,
      )?.kWh,
    ).toBeCloseTo(0.06, 12);
  });
});

describe("a gateway's meter, interval by interval", () => {
  it('closes an interval at the first sample of a later one; the last sample holds into the next', () => {
    const meter = new IntervalMeter(MIN);
    const T = Date.UTC(2026, 6, 10, 12);
    expect(meter.add(T - 30_000, 3600)).toEqual([]);
    // The interval before T: 30 s at 3.6 kW.
    const [before] = meter.add(T + 20_000, 7200);
    expect(before).toMatchObject({ fromMs: T - MIN, toMs: T, coveredMs: 30_000 });
    expect(before?.kWh).toBeCloseTo(0.03, 12);
    // T's: 20 s at 3.6 kW (held from before T), then 40 s at 7.2 kW = 0.02 + 0.08 kWh.
    const [closed] = meter.add(T + MIN + 1_000, 0);
    expect(closed).toMatchObject({ fromMs: T, toMs: T + MIN, coveredMs: MIN });
    expect(closed?.kWh).toBeCloseTo(0.1, 12);
  });

  it('a stalled gateway still sends the whole intervals it missed, as far as its last sample holds', () => {
    const meter = new IntervalMeter(MIN); // a sample holds two intervals at most
    const T = Date.UTC(2026, 6, 10, 12);
    meter.add(T + 30_000, 3600);
    // Next sample 2.5 intervals on: T's interval, the whole next one (held), the one after until the hold ends.
    const closed = meter.add(T + 3 * MIN + 30_000, 0);
    expect(closed.map((c) => [c.fromMs - T, c.coveredMs])).toEqual([
      [0, 30_000],
      [MIN, MIN],
      [2 * MIN, 30_000],
    ]);
    expect(closed[1]?.kWh).toBeCloseTo(0.06, 12);
    // Beyond the hold nothing is made up: the sample at 3.5 intervals holds to 5.5; one at 8 closes
    // the three intervals it reaches into, none after.
    const later = meter.add(T + 8 * MIN, 0);
    expect(later.map((c) => [c.fromMs - T, c.coveredMs])).toEqual([
      [3 * MIN, 30_000],
      [4 * MIN, MIN],
      [5 * MIN, 30_000],
    ]);
  });

  it('after the wall clock steps back, measures again from the first sample after the step', () => {
    const meter = new IntervalMeter(MIN);
    const T = Date.UTC(2026, 6, 10, 12);
    meter.add(T, 3600);
    meter.add(T + 3_600_000, 3600); // an hour ahead: T's interval closes, the one an hour on opens
    expect(meter.add(T + MIN + 5_000, 1800)).toEqual([]); // back: that one is dropped
    expect(meter.add(T + 2 * MIN, 1800)).toMatchObject([{ fromMs: T + MIN, coveredMs: MIN - 5_000 }]);
  });
});

describe('the metering intervals a platform stores', () => {
  let files = 0;
  const open = () => new MeterIntervals(Ledger.open(join(tmp.dir, `intervals-${files++}.db`)).db);
  const T = Date.UTC(2026, 6, 10, 12);
  /** `n` consecutive intervals of `lengthMs` from `fromMs`, one message each, at 3.6 kW. */
  const intervals = (member: string, fromMs: number, n: number, lengthMs = MIN, epoch = 1): MeterInterval[] =>
    Array.from({ length: n }, (_, k) => ({
      member,
      epoch,
      seq: 15 + 8 * k,
      fromMs: fromMs + k * lengthMs,
      toMs: fromMs + (k + 1) * lengthMs,
      netKWh: (3.6 * lengthMs) / 3_600_000,
      coveredMs: lengthMs,
    }));

  it('the energy of a span is that of the intervals inside it; a resend or a second report of an interval is stored once', () => {
    const s = open();
    expect(s.addAll(intervals('m', T, 2))).toEqual([true, true]);
    expect(s.energy('m', T, T + 2 * MIN)?.kWh).toBeCloseTo(0.12, 12);
    expect(s.energy('m', T, T + MIN)?.coveredMs).toBe(MIN);
    expect(s.energy('other', T, T + MIN)).toBeNull();
    const [first] = intervals('m', T, 1);
    // The same message again, and the same interval under another message (a sender re-stamped it).
    expect(s.addAll([first!, { ...first!, epoch: 2, netKWh: 9 }])).toEqual([false, false]);
    expect(s.energy('m', T, T + MIN)?.kWh).toBeCloseTo(0.06, 12);
  });

  it('a span is complete when its intervals tile it with no gap', () => {
    const s = open();
    const quarter = MIN / 4;
    const all = intervals('m', T, 4, quarter);
    s.addAll([all[0]!, all[1]!, all[3]!]);
    expect(s.isComplete('m', T, T + MIN)).toBe(false);
    expect(s.energy('m', T, T + MIN)?.rows.map((r) => r.from_ms - T)).toEqual([0, quarter, 3 * quarter]);
    s.addAll([all[2]!]);
    expect(s.isComplete('m', T, T + MIN)).toBe(true);
    expect(s.isComplete('nobody', T, T + MIN)).toBe(false);
  });

  it('gives the intervals ending in a span in time order, and prunes the oldest', () => {
    const s = open();
    s.addAll([...intervals('m', T, 3), ...intervals('n', T, 1)]);
    expect(s.endedBetween('m', T, T + 2 * MIN, 10).map((r) => r.to_ms - T)).toEqual([MIN, 2 * MIN]);
    expect(s.membersSince(T + 2 * MIN)).toEqual(['m']);
    // Oldest first in the order stored, up to the first one not older: m's first interval only.
    expect(s.prune(T + 2 * MIN)).toBe(1);
    expect(s.energy('m', T, T + 3 * MIN)?.rows).toHaveLength(2);
  });
});
