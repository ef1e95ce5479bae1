/**
 * Time is injected everywhere so that algorithms and the scheduler run the same on a gateway (the
 * system clock) and in tests or fast simulation (a virtual clock advanced by hand).
 */
export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /**
   * A clock that never jumps (ms from an arbitrary origin), where there is one: the wall clock
   * (`now`) is stepped by NTP or an operator, the timers run on this one.
   */
  monotonicMs?(): number;
}

export const systemClock: Clock = (() => {
  const timers = new Map<number, NodeJS.Timeout>();
  let next = 1;
  return {
    now: () => Date.now(),
    monotonicMs: () => performance.now(),
    setTimeout(fn, delayMs) {
      const id = next++;
      timers.set(
        id,
        setTimeout(
          () => {
            timers.delete(id);
            fn();
          },
          Math.max(0, delayMs),
        ),
      );
      return { id };
    },
    clearTimeout(handle) {
      const t = timers.get(handle.id);
      if (t) clearTimeout(t);
      timers.delete(handle.id);
    },
  };
})();

/**
 * Notices a step of the wall clock: between two observations the wall clock and the monotonic
 * clock should advance alike; a difference beyond `toleranceMs` is a jump (forward when positive).
 */
export class ClockJumpDetector {
  private last: { wallMs: number; monoMs: number } | undefined;

  constructor(private readonly toleranceMs = 2000) {}

  /** The jump since the last observation, ms; 0 when there was none. */
  observe(wallMs: number, monoMs: number): number {
    const last = this.last;
    this.last = { wallMs, monoMs };
    if (!last) return 0;
    const jump = wallMs - last.wallMs - (monoMs - last.monoMs);
    return Math.abs(jump) > this.toleranceMs ? jump : 0;
  }
}

interface PendingTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A clock that moves only when told to; timers fire in time order, ties in creation order. */
export class VirtualClock implements Clock {
  private current: number;
  private nextId = 1;
  private pending: PendingTimer[] = [];

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.current + Math.max(0, delayMs), fn };
    this.pending.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.pending = this.pending.filter((t) => t.id !== handle.id);
  }

  get pendingTimers(): number {
    return this.pending.length;
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way (including timers those timers set).
   * Between timers it yields to the event loop so that promise chains started by a timer settle
   * before the next one fires, as they would in real time.
   */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      const due = this.takeNextDue(target);
      if (!due) break;
      this.current = due.at;
      due.fn();
      await settle();
    }
    this.current = target;
    await settle();
  }

  private takeNextDue(limit: number): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const t of this.pending) {
      if (t.at <= limit && (!best || t.at < best.at || (t.at === best.at && t.id < best.id))) best = t;
    }
    if (best) this.pending = this.pending.filter((t) => t !== best);
    return best;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
