import { ErrorCode, P2PError } from '../../core/errors.js';
import { profileMultipliers, type ThreePhaseFeederInput, type ThreePhaseModel } from './feeder.js';
import { solveThreePhase } from './sweep.js';

export interface DayStep {
  minute: number;
  converged: boolean;
  minVoltage: { key: string; pu: number };
  maxVoltage: { key: string; pu: number };
  maxUnbalance: { bus: string; pct: number };
  lossesKW: number;
  /** Total over the three phases, kW (negative = the feeder exports). */
  supplyKW: number;
}

export interface DaySummary {
  stepMinutes: number;
  steps: DayStep[];
  /** Extremes over the day, with the minute of the step. */
  maxVoltage: { key: string; pu: number; minute: number };
  minVoltage: { key: string; pu: number; minute: number };
  maxUnbalance: { bus: string; pct: number; minute: number };
  /** Hours in which some bus-phase is above / below the limit. */
  hoursAbovePu: Record<string, number>;
  hoursBelowPu: Record<string, number>;
  lossesKWh: number;
  allConverged: boolean;
}

/**
 * The feeder through the day of its load profiles, one power flow per profile step (warm-started from
 * the previous step), with the extremes and the hours outside common limits (EN 50160: ±10 %; the
 * tighter ±5 % many operators plan for).
 */
export function solveDay(input: ThreePhaseFeederInput, model: ThreePhaseModel): DaySummary {
  const profiles = input.profiles;
  if (!profiles)
    throw new P2PError(ErrorCode.input, `feeder ${input.name} has no load profiles`, {
      component: 'powerflow',
      field: 'profiles',
    });
  const stepMinutes = profiles.stepMinutes;
  const hours = stepMinutes / 60;
  const above = [1.05, 1.1];
  const below = [0.95, 0.9];
  const hoursAbovePu: Record<string, number> = Object.fromEntries(above.map((v) => [v.toFixed(2), 0]));
  const hoursBelowPu: Record<string, number> = Object.fromEntries(below.map((v) => [v.toFixed(2), 0]));
  const steps: DayStep[] = [];
  let warm: Float64Array | undefined;
  let maxVoltage = { key: '', pu: Number.NEGATIVE_INFINITY, minute: 0 };
  let minVoltage = { key: '', pu: Number.POSITIVE_INFINITY, minute: 0 };
  let maxUnbalance = { bus: '', pct: Number.NEGATIVE_INFINITY, minute: 0 };
  let lossesKWh = 0;
  for (let minute = 0; minute < 1440; minute += stepMinutes) {
    const r = solveThreePhase(model, {
      loadMultipliers: profileMultipliers(input, minute),
      ...(warm ? { initialVoltage: warm } : {}),
    });
    warm = r.sweep.voltage;
    const supplyKW = r.supplyKW[0] + r.supplyKW[1] + r.supplyKW[2];
    steps.push({
      minute,
      converged: r.converged,
      minVoltage: r.minVoltage,
      maxVoltage: r.maxVoltage,
      maxUnbalance: r.maxUnbalance,
      lossesKW: r.lossesKW,
      supplyKW,
    });
    if (r.maxVoltage.pu > maxVoltage.pu) maxVoltage = { ...r.maxVoltage, minute };
    if (r.minVoltage.pu < minVoltage.pu) minVoltage = { ...r.minVoltage, minute };
    if (r.maxUnbalance.pct > maxUnbalance.pct) maxUnbalance = { ...r.maxUnbalance, minute };
    for (const v of above) if (r.maxVoltage.pu > v) hoursAbovePu[v.toFixed(2)]! += hours;
    for (const v of below) if (r.minVoltage.pu < v) hoursBelowPu[v.toFixed(2)]! += hours;
    lossesKWh += r.lossesKW * hours;
  }
  return {
    stepMinutes,
    steps,
    maxVoltage,
    minVoltage,
    maxUnbalance,
    hoursAbovePu,
    hoursBelowPu,
    lossesKWh,
    allConverged: steps.every((s) => s.converged),
  };
}
