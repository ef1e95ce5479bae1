import { ErrorCode, P2PError } from '../core/errors.js';
import { type PointData, Points } from './natures.js';

/**
 * What a low-voltage device can physically report, per point. A reading outside these bounds is a
 * broken device (garbage registers, a wrong scale factor, a firmware fault), not a grid state: the
 * control must not act on it. Bounds are wide on purpose: a grid outage (0 V, 0 Hz) and a severe
 * sag or swell stay plausible; only what no LV feeder can show is refused.
 */
export const PLAUSIBLE_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  [Points.voltagePu]: [0, 1.5],
  /** Phase-to-neutral, V: 1.5 × 277 V, the highest nominal of LV systems. */
  [Points.acVoltageV]: [0, 416],
  [Points.frequencyHz]: [0, 70],
  /** A whole LV connection (a house, a small farm): 1 MW is no LV device. */
  [Points.acPowerW]: [-1e6, 1e6],
  [Points.reactivePowerVAr]: [-1e6, 1e6],
  [Points.availablePowerW]: [0, 1e6],
  [Points.energyWh]: [0, 1e13],
  [Points.energyExportWh]: [0, 1e13],
  [Points.limitPct]: [0, 100],
};

/** An inverter cannot deliver more than this multiple of its rating, even for a moment. */
const MAX_OVER_RATING = 1.5;

function outOfRange(value: number, [lo, hi]: readonly [number, number]): boolean {
  return !Number.isFinite(value) || value < lo || value > hi;
}

/** Throws a recoverable `driver` error naming the first point of a reading that no device could report. */
export function checkPlausible(deviceId: string, reading: Record<string, PointData>, ratedW?: number): void {
  for (const [point, value] of Object.entries(reading)) {
    let range = PLAUSIBLE_RANGES[point];
    if (!range) continue;
    if (ratedW && ratedW > 0 && (point === Points.acPowerW || point === Points.availablePowerW))
      range = [point === Points.acPowerW ? -MAX_OVER_RATING * ratedW : 0, MAX_OVER_RATING * ratedW];
    const values = typeof value === 'number' ? [value] : Array.isArray(value) ? value : [];
    const bad = values.find((v): v is number => typeof v === 'number' && outOfRange(v, range));
    if (bad !== undefined)
      throw new P2PError(
        ErrorCode.driver,
        `${deviceId}: implausible reading, ${point} = ${bad} outside ${range[0]}..${range[1]}: the reading is not used`,
        { component: deviceId, recoverable: true },
      );
  }
}
