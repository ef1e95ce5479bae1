import { ErrorCode, P2PError } from '../../core/errors.js';

/**
 * Measurement and verification of demand response: customer baselines (what the load would have been
 * without the event) and the flexibility delivered against them. Pure functions over interval energy.
 */

/** One past day's metered energy in the event window, one value per metering interval, kWh. */
export interface BaselineDay {
  date: string;
  intervalKWh: number[];
}

export interface MeterReading {
  meter: string;
  /** End of the metering interval, ms since the epoch. */
  timeMs: number;
  energyKWh: number;
}

function inputError(message: string, field: string): P2PError {
  return new P2PError(ErrorCode.input, message, { component: 'mv', field });
}

/** Readings from one gateway batch must be per meter strictly increasing in time, with no duplicates. */
export function checkReadings(readings: MeterReading[], lastTimeMsByMeter: Record<string, number> = {}): void {
  const last = { ...lastTimeMsByMeter };
  readings.forEach((r, i) => {
    if (!Number.isFinite(r.energyKWh) || r.energyKWh < 0)
      throw inputError(`readings[${i}]: energy must be a non-negative number`, `readings[${i}].energyKWh`);
    const prev = last[r.meter];
    if (prev !== undefined && r.timeMs === prev)
      throw inputError(
        `readings[${i}]: duplicated reading of ${r.meter} at ${new Date(r.timeMs).toISOString()}`,
        `readings[${i}].timeMs`,
      );
    if (prev !== undefined && r.timeMs < prev)
      throw inputError(
        `readings[${i}]: reading of ${r.meter} out of order (${new Date(r.timeMs).toISOString()} after ${new Date(prev).toISOString()})`,
        `readings[${i}].timeMs`,
      );
    last[r.meter] = r.timeMs;
  });
}

function sameLength(days: BaselineDay[]): number {
  const n = days[0]?.intervalKWh.length ?? 0;
  for (const d of days)
    if (d.intervalKWh.length !== n)
      throw inputError(`day ${d.date} has ${d.intervalKWh.length} intervals, expected ${n}`, 'days');
  return n;
}

function meanPerInterval(days: BaselineDay[]): number[] {
  const n = sameLength(days);
  return Array.from({ length: n }, (_, k) => days.reduce((s, d) => s + (d.intervalKWh[k] ?? 0), 0) / days.length);
}

const total = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);

/**
 * "High X of Y": of the last Y eligible days (oldest first in `days`), the X with the highest energy
 * in the event window, averaged interval by interval. Ties keep the more recent day.
 */
export function highXofY(days: BaselineDay[], x: number, y: number): number[] {
  if (x > y) throw inputError(`high ${x} of ${y}: X must not exceed Y`, 'baseline.x');
  if (days.length < y) throw inputError(`high ${x} of ${y} needs ${y} eligible days, got ${days.length}`, 'days');
  const window = days.slice(-y).map((d, i) => ({ d, i, kWh: total(d.intervalKWh) }));
  window.sort((a, b) => b.kWh - a.kWh || b.i - a.i);
  return meanPerInterval(window.slice(0, x).map((w) => w.d));
}

/**
 * Average of the last N days, scaled by a same-day adjustment: the event day's energy in the hours
 * before the event over the same hours' average on the baseline days, the factor capped to
 * 1 ± capPct/100 (CAISO's load-point adjustment is capped at ±20 %).
 */
export function averageWithSameDayAdjustment(
  days: BaselineDay[],
  n: number,
  adjustment: { eventDayPreEventKWh: number; baselineDaysPreEventKWh: number[]; capPct: number },
): { baselineKWh: number[]; factor: number } {
  if (days.length < n) throw inputError(`an average of ${n} days needs ${n} eligible days, got ${days.length}`, 'days');
  const lastN = days.slice(-n);
  if (adjustment.baselineDaysPreEventKWh.length !== n)
    throw inputError(`pre-event energy is needed for each of the ${n} days`, 'adjustment');
  const unadjusted = meanPerInterval(lastN);
  const preMean = total(adjustment.baselineDaysPreEventKWh) / n;
  const raw = preMean > 0 ? adjustment.eventDayPreEventKWh / preMean : 1;
  const cap = adjustment.capPct / 100;
  const factor = Math.min(1 + cap, Math.max(1 - cap, raw));
  return { baselineKWh: unadjusted.map((v) => v * factor), factor };
}

/** Metered before/after: the mean interval energy of the window just before the event stands for every event interval. */
export function meteredBeforeAfter(beforeIntervalKWh: number[], eventIntervals: number): number[] {
  if (beforeIntervalKWh.length === 0) throw inputError('no readings in the window before the event', 'readings');
  const mean = total(beforeIntervalKWh) / beforeIntervalKWh.length;
  return Array.from({ length: eventIntervals }, () => mean);
}

export interface DeliveryResult {
  deliveredKWh: number;
  contractedKWh: number;
  /** Delivered over contracted. */
  performance: number;
  met: boolean;
}

/**
 * Flexibility delivered in one event: baseline minus metered energy, summed over the event
 * intervals; met when it falls short of capacity × duration by no more than the tolerance.
 */
export function deliveredFlexibility(
  baselineKWh: number[],
  meteredKWh: number[],
  contract: { capacityKW: number; meteringIntervalS: number; tolerancePct: number },
): DeliveryResult {
  if (baselineKWh.length !== meteredKWh.length)
    throw inputError(`baseline has ${baselineKWh.length} intervals, metered ${meteredKWh.length}`, 'readings');
  const deliveredKWh = total(baselineKWh.map((b, k) => b - (meteredKWh[k] ?? 0)));
  const contractedKWh = (contract.capacityKW * contract.meteringIntervalS * baselineKWh.length) / 3600;
  const performance = contractedKWh > 0 ? deliveredKWh / contractedKWh : 0;
  // Rounded to the micro-kWh so that a delivery exactly at the tolerance edge is not lost to float error.
  const met = Math.round(deliveredKWh * 1e6) >= Math.round(contractedKWh * (1 - contract.tolerancePct / 100) * 1e6);
  return { deliveredKWh, contractedKWh, performance, met };
}
