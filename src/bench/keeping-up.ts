import { type Alarm, AlarmBook } from '../agent/alarms.js';
import { SATURATED_CPU_PCT } from './machine-load.js';

/** What the bench measures of the machine at one sample of the gateway processes (every 2 s). */
export interface MachineSample {
  tMs: number;
  /** The machine's CPU busy since the sample before (all cores, every process), %; null when unknown. */
  cpuBusyPct: number | null;
  /** `p2p_cycle_overruns_total` summed over every gateway (a count since each gateway started). */
  cycleOverruns: number;
  /** The worst gateway process's `nodejs_eventloop_lag_p99_seconds`, ms; null when none exports it. */
  eventLoopLagP99Ms: number | null;
}

/** What the bench's live state says of the machine (`machine` in the bench's `/api/state`). */
export interface MachineStatus {
  keepingUp: boolean;
  cpuBusyPct: number;
  eventLoopLagP99Ms: number | null;
  cycleOverruns: number;
  text: string;
}

/**
 * An event loop late by more than this share of the control cycle: a primary cycle's timer fires
 * that late, so the control acts on readings up to one and a half cycles old.
 */
export const LAG_LIMIT_SHARE_OF_PRIMARY = 0.5;

/** Samples in a row that must show the machine keeping up before an overload counts as over (6 s). */
export const KEEPING_UP_AGAIN_AFTER_SAMPLES = 3;

/**
 * Why the machine could not keep up between two samples; empty when it could. It cannot keep up when
 * any holds: a gateway's control cycle overran (a tick skipped because the one before still ran), an
 * event loop's lag p99 exceeds `LAG_LIMIT_SHARE_OF_PRIMARY` of the primary period, or the machine's CPU
 * was busy `SATURATED_CPU_PCT` % or more. Overruns counted before `before` do not count again; a
 * count that went down (a gateway process restarted) counts as none.
 */
export function overloadReasons(before: MachineSample | undefined, now: MachineSample, primaryMs: number): string[] {
  const reasons: string[] = [];
  const overran = before ? Math.max(0, now.cycleOverruns - before.cycleOverruns) : 0;
  if (overran > 0)
    reasons.push(`${overran} control cycle${overran === 1 ? '' : 's'} overran in ${secondsBetween(before, now)} s`);
  const lagLimitMs = LAG_LIMIT_SHARE_OF_PRIMARY * primaryMs;
  if (now.eventLoopLagP99Ms !== null && now.eventLoopLagP99Ms > lagLimitMs)
    reasons.push(
      `event-loop lag p99 ${now.eventLoopLagP99Ms.toFixed(0)} ms, above ${lagLimitMs} ms (half the ${primaryMs} ms control cycle)`,
    );
  if (now.cpuBusyPct !== null && now.cpuBusyPct >= SATURATED_CPU_PCT)
    reasons.push(`CPU ${now.cpuBusyPct.toFixed(0)} % busy (${SATURATED_CPU_PCT} % or more)`);
  return reasons;
}

function secondsBetween(before: MachineSample | undefined, now: MachineSample): string {
  return before ? ((now.tMs - before.tMs) / 1000).toFixed(0) : '?';
}

const ALARM_ID = 'machine-overloaded:bench';

/**
 * Follows the machine sample by sample: an overload begins at the first sample that cannot keep up
 * and ends once `KEEPING_UP_AGAIN_AFTER_SAMPLES` samples in a row could (it ended at the first of
 * them). Keeps the `machine-overloaded` alarm, how long the machine could not keep up, and the
 * voltage violations that began meanwhile (a violation of a starved control is named as such). Pure:
 * the samples carry the time.
 */
export class MachineWatch {
  readonly alarms = new AlarmBook();
  private last: MachineSample | undefined;
  private overloadedSinceMs: number | undefined;
  /** The first sample of the streak that keeps up, while an overload may be ending. */
  private keepingUpSinceMs: number | undefined;
  private keepingUpSamples = 0;
  private overloadedMs = 0;
  private episodes = 0;
  private violations = 0;
  private reasons: string[] = [];

  constructor(private readonly primaryMs: number) {}

  /** Takes one sample: `began` or `ended` when the overload did (for a line of progress), else undefined. */
  add(sample: MachineSample): 'began' | 'ended' | undefined {
    const reasons = overloadReasons(this.last, sample, this.primaryMs);
    this.last = sample;
    this.reasons = reasons;
    if (reasons.length > 0) {
      this.keepingUpSamples = 0;
      this.keepingUpSinceMs = undefined;
      const began = this.overloadedSinceMs === undefined;
      if (began) {
        this.overloadedSinceMs = sample.tMs;
        this.episodes++;
      }
      this.alarms.raise(
        ALARM_ID,
        {
          kind: 'machine-overloaded',
          severity: 'warning',
          source: 'bench',
          text: `the machine cannot keep up with the gateways: ${reasons.join(', ')}`,
        },
        sample.tMs,
      );
      return began ? 'began' : undefined;
    }
    if (this.overloadedSinceMs === undefined) return undefined;
    this.keepingUpSinceMs ??= sample.tMs;
    if (++this.keepingUpSamples < KEEPING_UP_AGAIN_AFTER_SAMPLES) return undefined;
    this.overloadedMs += this.keepingUpSinceMs - this.overloadedSinceMs;
    this.alarms.clear(ALARM_ID, this.keepingUpSinceMs);
    this.overloadedSinceMs = undefined;
    this.keepingUpSinceMs = undefined;
    this.keepingUpSamples = 0;
    return 'ended';
  }

  /** Whether the machine is in an overload now (from its first sample until it is over). */
  get overloaded(): boolean {
    return this.overloadedSinceMs !== undefined;
  }

  /** `count` voltage violations began now: counted when the machine is in an overload. */
  noteViolations(count: number): void {
    if (count > 0 && this.overloaded) this.violations += count;
  }

  status(): MachineStatus {
    const s = this.last;
    const keepingUp = !this.overloaded;
    const figures = s
      ? `CPU ${s.cpuBusyPct === null ? '?' : s.cpuBusyPct.toFixed(0)} % busy, event-loop lag p99 ${
          s.eventLoopLagP99Ms === null ? 'not exported' : `${s.eventLoopLagP99Ms.toFixed(0)} ms`
        }, ${s.cycleOverruns} control cycles overran in all`
      : 'not measured yet';
    const text = keepingUp
      ? `the machine keeps up: ${figures}`
      : `the machine cannot keep up since ${new Date(this.overloadedSinceMs!).toISOString()}: ${
          this.reasons.length > 0 ? this.reasons.join(', ') : `recovering (${figures})`
        }`;
    return {
      keepingUp,
      cpuBusyPct: s?.cpuBusyPct ?? 0,
      eventLoopLagP99Ms: s?.eventLoopLagP99Ms ?? null,
      cycleOverruns: s?.cycleOverruns ?? 0,
      text,
    };
  }

  /** The day's account at `endMs`: how long and how often the machine could not keep up, and what happened meanwhile. */
  result(endMs: number): { notKeepingUpS: number; overloads: number; violationsWhileOverloaded: number } {
    const ongoing = this.overloadedSinceMs === undefined ? 0 : endMs - this.overloadedSinceMs;
    return {
      notKeepingUpS: Number(((this.overloadedMs + Math.max(0, ongoing)) / 1000).toFixed(1)),
      overloads: this.episodes,
      violationsWhileOverloaded: this.violations,
    };
  }

  /** The bench's alarms (only `machine-overloaded`). */
  alarmList(): Alarm[] {
    return this.alarms.list();
  }
}
