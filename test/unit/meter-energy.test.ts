import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnvelopeStamper } from '../../src/comms/envelope.js';
import { VirtualClock } from '../../src/core/clock.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { intervalEnergy } from '../../src/platform/meter-energy.js';
import { type MeterSample, MeterSamples } from '../../src/platform/meter-samples.js';
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

describe('the meter samples a platform stores', () => {
  let files = 0;
  const open = () => new MeterSamples(Ledger.open(join(tmp.dir, `samples-${files++}.db`)).db);
  const T = Date.UTC(2026, 6, 10, 12);
  /** Readings every 10 s from `fromMs`, numbered `step` apart from `firstSeq`. */
  const every10s = (member: string, fromMs: number, n: number, firstSeq = 0, epoch = 1, step = 8): MeterSample[] =>
    Array.from({ length: n }, (_, k) => ({
      member,
      epoch,
      seq: firstSeq + step * k,
      timeMs: fromMs + 10_000 * k,
      netW: 3600,
    }));

  it('the energy of a stored interval is that of its samples, the one before it included', () => {
    const s = open();
    s.addAll(every10s('m', T - 10_000, 8));
    // 3.6 kW over a minute.
    expect(s.energyKWh('m', T, T + MIN, HOLD)).toBeCloseTo(0.06, 12);
    expect(s.intervalEnergy('m', T, T + MIN, HOLD)?.coveredMs).toBe(MIN);
    expect(s.energyKWh('other', T, T + MIN, HOLD)).toBeNull();
    // A resent sample is stored once.
    expect(s.add({ member: 'm', epoch: 1, seq: 8, timeMs: T, netW: 3600 })).toBe(false);
  });

  it('is complete when no number is missing from the reading before the interval to the first after it', () => {
    const s = open();
    const all = every10s('m', T - 10_000, 8);
    // Nothing after the end yet: the last reading of the interval may still be on its way.
    s.addAll(all.slice(0, 7));
    expect(s.isComplete('m', T, T + MIN, 8)).toBe(false);
    s.add(all[7] as MeterSample);
    expect(s.isComplete('m', T, T + MIN, 8)).toBe(true);
    expect(s.isComplete('nobody', T, T + MIN, 8)).toBe(false);
  });

  it('a missing reading inside, at the start or at the end of the interval is a gap', () => {
    const all = every10s('m', T - 10_000, 9);
    // Inside; the one holding at the start (an earlier one stored: the gap shows between the two);
    // the first at or after the end.
    for (const missing of [3, 0, 7]) {
      const s = open();
      s.add({ member: 'm', epoch: 1, seq: -8, timeMs: T - 20_000, netW: 3600 });
      s.addAll(all.filter((_, k) => k !== missing));
      expect(s.isComplete('m', T, T + MIN, 8), `reading ${missing} missing`).toBe(false);
      s.add(all[missing] as MeterSample);
      expect(s.isComplete('m', T, T + MIN, 8), `reading ${missing} stored`).toBe(true);
    }
  });

  it('without the reading holding at the start, only a sender that started in the interval is complete', () => {
    // A sender's first reading of an epoch, numbered as the transport numbers it.
    const first = new EnvelopeStamper('m', new VirtualClock(T)).stamp('meter', 'reading', {}).seq;
    // Its readings from the second on: the first, before the interval, is still on its way.
    const s = open();
    s.addAll(every10s('m', T + 5_000, 8, first + 8));
    expect(s.isComplete('m', T, T + MIN, 8)).toBe(false);
    s.add({ member: 'm', epoch: 1, seq: first, timeMs: T - 5_000, netW: 3600 });
    expect(s.isComplete('m', T, T + MIN, 8)).toBe(true);
    // A sender whose first reading is inside the interval.
    const t = open();
    t.addAll(every10s('m', T + 5_000, 8, first));
    expect(t.isComplete('m', T, T + MIN, 8)).toBe(true);
  });

  it("readings of another member, or of another stream's step, are not counted as a gap", () => {
    const s = open();
    s.addAll([...every10s('m', T - 10_000, 8), ...every10s('n', T - 5_000, 3, 1)]);
    expect(s.isComplete('m', T, T + MIN, 8)).toBe(true);
    // A sender numbering one apart is complete with step 1, not with step 8.
    const t = open();
    t.addAll(every10s('m', T - 10_000, 8, 0, 1, 1));
    expect(t.isComplete('m', T, T + MIN, 1)).toBe(true);
    expect(t.isComplete('m', T, T + MIN, 8)).toBe(false);
  });

  it('a restart (a new epoch) starts the numbers afresh', () => {
    const s = open();
    // Epoch 1 until 20 s into the interval (numbers up to 24), then epoch 2 from 0.
    s.addAll([...every10s('m', T - 10_000, 4, 0, 1), ...every10s('m', T + 30_000, 4, 0, 2)]);
    expect(s.isComplete('m', T, T + MIN, 8)).toBe(true);
    // A gap within the new epoch still counts.
    const t = open();
    t.addAll([...every10s('m', T - 10_000, 4, 0, 1), ...every10s('m', T + 30_000, 4, 0, 2).filter((r) => r.seq !== 8)]);
    expect(t.isComplete('m', T, T + MIN, 8)).toBe(false);
  });

  it('gives the samples an interval was computed from, the one holding at its start first: the evidence of a settlement', () => {
    const s = open();
    s.addAll([...every10s('a', T - 10_000, 8), ...every10s('b', T, 2)]);
    const e = s.intervalEnergy('a', T, T + MIN, HOLD);
    expect(e?.samples.map((r) => [r.member, r.seq, r.time_ms - T])).toEqual(
      Array.from({ length: 7 }, (_, k) => ['a', 8 * k, 10_000 * (k - 1)]),
    );
    // A sample holding from longer ago than the hold is not used, so not named.
    expect(s.intervalEnergy('a', T + 5_000, T + MIN, 4_000)?.samples.map((r) => r.seq)).toEqual([16, 24, 32, 40, 48]);
  });
});
