import type { Clock, TimerHandle } from '../core/clock.js';

export const TIME_SCALES = ['primary', 'secondary', 'tertiary'] as const;
export type TimeScale = (typeof TIME_SCALES)[number];
export type SchedulerPeriods = Record<`${TimeScale}Ms`, number>;

export interface SchedulerHooks {
  /** One cycle of a time scale; cycles of all scales run one at a time, in the order they fell due. */
  runCycle(scale: TimeScale, now: number): Promise<void>;
  onCycleDone?(scale: TimeScale, durationMs: number): void;
  /** A tick came while a cycle of the same scale was still waiting or running: it is skipped. */
  onOverrun?(scale: TimeScale): void;
  onError?(scale: TimeScale, err: unknown): void;
}

/**
 * Runs the three time scales of the paper on an injected clock. Ticks are aligned to the period grid
 * (a 15-minute tertiary period ticks at :00, :15, ...), so gateways with roughly synchronised clocks
 * run their market rounds together. Cycles run one at a time; `stop()` resolves after the cycle in
 * progress has finished.
 */
export class Scheduler {
  private readonly timers = new Map<TimeScale, TimerHandle>();
  private readonly queued = new Set<TimeScale>();
  private running: Promise<void> = Promise.resolve();
  private stopped = true;
  readonly cycles: Record<TimeScale, number> = { primary: 0, secondary: 0, tertiary: 0 };
  /** When the last cycle of any scale finished (clock time), or null before the first: the watchdog's sign of life. */
  lastCycleAt: number | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly periods: SchedulerPeriods,
    private readonly hooks: SchedulerHooks,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const scale of TIME_SCALES) this.arm(scale);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const handle of this.timers.values()) this.clock.clearTimeout(handle);
    this.timers.clear();
    this.queued.clear();
    await this.running;
  }

  /** Runs one cycle now, outside the period grid (at start-up, and in tests). */
  runNow(scale: TimeScale): Promise<void> {
    this.enqueue(scale);
    return this.running;
  }

  private periodOf(scale: TimeScale): number {
    return this.periods[`${scale}Ms`];
  }

  /**
   * Arms the next tick on the period grid after `now`, or after the tick just due: a timer may fire a
   * little before its time (the wall clock and the timers' clock drift apart), and the tick it fired
   * for must not be armed again. A tick due more than a period ahead means the wall clock went back:
   * the grid follows the clock, or ticks would stop for as long as the step.
   */
  private arm(scale: TimeScale, due = Number.NEGATIVE_INFINITY): void {
    const period = this.periodOf(scale);
    const now = this.clock.now();
    const from = due > now && due - now < period ? due : now;
    const next = (Math.floor(from / period) + 1) * period;
    this.timers.set(
      scale,
      this.clock.setTimeout(() => {
        if (this.stopped) return;
        this.enqueue(scale);
        this.arm(scale, next);
      }, next - now),
    );
  }

  private enqueue(scale: TimeScale): void {
    if (this.queued.has(scale)) {
      this.hooks.onOverrun?.(scale);
      return;
    }
    this.queued.add(scale);
    this.running = this.running.then(() => this.runOne(scale));
  }

  private async runOne(scale: TimeScale): Promise<void> {
    if (!this.queued.delete(scale)) return; // cleared by stop()
    const started = this.clock.now();
    const t0 = performance.now();
    try {
      await this.hooks.runCycle(scale, started);
      this.cycles[scale]++;
    } catch (err) {
      this.hooks.onError?.(scale, err);
    } finally {
      this.lastCycleAt = this.clock.now();
      this.hooks.onCycleDone?.(scale, performance.now() - t0);
    }
  }
}
