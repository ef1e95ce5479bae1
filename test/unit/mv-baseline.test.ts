import { describe, expect, it } from 'vitest';
import {
  averageWithSameDayAdjustment,
  checkReadings,
  deliveredFlexibility,
  highXofY,
  meteredBeforeAfter,
} from '../../src/platform/mv/baseline.js';

// Event window of two hourly intervals (14:00-16:00); one value per hour, kWh.
const day = (date: string, a: number, b: number) => ({ date, intervalKWh: [a, b] });

describe('M&V baselines (worked by hand)', () => {
  it('high 4 of 5 (CAISO / NYISO style): drop the lowest day, average the rest', () => {
    const days = [day('d1', 5, 5), day('d2', 6, 4), day('d3', 3, 3), day('d4', 7, 5), day('d5', 4, 6)];
    // Window totals: d1 10, d2 10, d3 6, d4 12, d5 10 → the lowest (d3, 6 kWh) is dropped.
    // Hour 1: (5 + 6 + 7 + 4) / 4 = 22 / 4 = 5.5; hour 2: (5 + 4 + 5 + 6) / 4 = 20 / 4 = 5.0
    expect(highXofY(days, 4, 5)).toEqual([5.5, 5.0]);
  });

  it('high 5 of 10 and 10 of 10 use only the last Y days', () => {
    const days = Array.from({ length: 11 }, (_, i) => day(`d${i}`, i, 1));
    // Last 10 days: i = 1..10. 10-of-10 hour 1: (1 + ... + 10) / 10 = 55 / 10 = 5.5; hour 2: 1.
    expect(highXofY(days, 10, 10)).toEqual([5.5, 1]);
    // High 5 of 10: i = 6..10 → (6 + 7 + 8 + 9 + 10) / 5 = 40 / 5 = 8.
    expect(highXofY(days, 5, 10)).toEqual([8, 1]);
    expect(() => highXofY(days.slice(0, 3), 4, 5)).toThrow(/needs 5 eligible days, got 3/);
  });

  it('10-day average with a same-day adjustment, capped at ±20 %', () => {
    const days = Array.from({ length: 10 }, (_, i) => day(`d${i}`, 4, 6));
    const pre = Array.from({ length: 10 }, () => 8); // 8 kWh in 10:00-14:00 on each baseline day
    // Event day used 9 kWh before the event: factor 9 / 8 = 1.125 → baseline [4.5, 6.75].
    const a = averageWithSameDayAdjustment(days, 10, {
      eventDayPreEventKWh: 9,
      baselineDaysPreEventKWh: pre,
      capPct: 20,
    });
    expect(a.factor).toBeCloseTo(1.125, 12);
    expect(a.baselineKWh[0]).toBeCloseTo(4.5, 12);
    expect(a.baselineKWh[1]).toBeCloseTo(6.75, 12);
    // 12 kWh before the event would be 12 / 8 = 1.5, capped at 1.2 → [4.8, 7.2].
    const capped = averageWithSameDayAdjustment(days, 10, {
      eventDayPreEventKWh: 12,
      baselineDaysPreEventKWh: pre,
      capPct: 20,
    });
    expect(capped.factor).toBe(1.2);
    expect(capped.baselineKWh[0]).toBeCloseTo(4.8, 12);
    expect(capped.baselineKWh[1]).toBeCloseTo(7.2, 12);
    // 4 kWh: 0.5, capped at 0.8.
    expect(
      averageWithSameDayAdjustment(days, 10, { eventDayPreEventKWh: 4, baselineDaysPreEventKWh: pre, capPct: 20 })
        .factor,
    ).toBe(0.8);
  });

  it('metered before/after: the pre-event mean stands for each event interval', () => {
    // Four 15-min readings before the event: (1.0 + 1.2 + 0.8 + 1.0) / 4 = 1.0 kWh per interval.
    expect(meteredBeforeAfter([1.0, 1.2, 0.8, 1.0], 3)).toEqual([1, 1, 1]);
  });

  it('delivered flexibility against a 3 kW, 10 % tolerance contract', () => {
    const contract = { capacityKW: 3, meteringIntervalS: 3600, tolerancePct: 10 };
    // Baseline [5.5, 5.0], metered [2.8, 2.4]: delivered (5.5 − 2.8) + (5.0 − 2.4) = 2.7 + 2.6 = 5.3 kWh.
    // Contracted 3 kW × 2 h = 6 kWh; at least 6 × 0.9 = 5.4 kWh needed → not met (performance 5.3 / 6).
    const r = deliveredFlexibility([5.5, 5.0], [2.8, 2.4], contract);
    expect(r.deliveredKWh).toBeCloseTo(5.3, 12);
    expect(r.contractedKWh).toBe(6);
    expect(r.performance).toBeCloseTo(5.3 / 6, 12);
    expect(r.met).toBe(false);
    // Metered [2.7, 2.4]: delivered 2.8 + 2.6 = 5.4 kWh, exactly the tolerance edge → met.
    expect(deliveredFlexibility([5.5, 5.0], [2.7, 2.4], contract).met).toBe(true);
  });
});

describe('meter readings from gateways', () => {
  const t0 = Date.parse('2026-06-01T14:15:00Z');
  it('accepts readings increasing per meter, interleaved between meters', () => {
    expect(() =>
      checkReadings([
        { meter: 'm1', timeMs: t0, energyKWh: 1 },
        { meter: 'm2', timeMs: t0, energyKWh: 2 },
        { meter: 'm1', timeMs: t0 + 900_000, energyKWh: 1 },
      ]),
    ).not.toThrow();
  });
  it('refuses duplicated and out-of-order readings, also against the last stored one', () => {
    expect(() =>
      checkReadings([
        { meter: 'm1', timeMs: t0, energyKWh: 1 },
        { meter: 'm1', timeMs: t0, energyKWh: 1 },
      ]),
    ).toThrow(/readings\[1\]: duplicated reading of m1/);
    expect(() =>
      checkReadings([
        { meter: 'm1', timeMs: t0 + 900_000, energyKWh: 1 },
        { meter: 'm1', timeMs: t0, energyKWh: 1 },
      ]),
    ).toThrow(/readings\[1\]: reading of m1 out of order/);
    expect(() => checkReadings([{ meter: 'm1', timeMs: t0, energyKWh: 1 }], { m1: t0 + 900_000 })).toThrow(
      /out of order/,
    );
    expect(() => checkReadings([{ meter: 'm1', timeMs: t0, energyKWh: -1 }])).toThrow(/non-negative/);
  });
});
