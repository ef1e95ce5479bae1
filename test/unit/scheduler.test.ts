import { describe, expect, it } from 'vitest';
import { Scheduler, type TimeScale } from '../../src/agent/scheduler.js';
import { VirtualClock } from '../../src/core/clock.js';

const periods = { primaryMs: 1000, secondaryMs: 5000, tertiaryMs: 60_000 };

describe('Scheduler', () => {
  it('runs each time scale on its period grid', async () => {
    const clock = new VirtualClock(0);
    const seen: [TimeScale, number][] = [];
    const s = new Scheduler(clock, periods, {
      runCycle: async (scale, now) => {
        seen.push([scale, now]);
      },
    });
    s.start();
    await clock.advance(120_000);
    await s.stop();
    expect(s.cycles).toEqual({ primary: 120, secondary: 24, tertiary: 2 });
    expect(seen.filter(([sc]) => sc === 'tertiary').map(([, t]) => t)).toEqual([60_000, 120_000]);
  });

  it('ticks once per period when timers fire a little early (wall clock and timers drifting apart)', async () => {
    const clock = new VirtualClock(0);
    const early = {
      now: () => clock.now(),
      setTimeout: (fn: () => void, delayMs: number) => clock.setTimeout(fn, Math.max(0, delayMs - 1)),
      clearTimeout: (h: Parameters<VirtualClock['clearTimeout']>[0]) => clock.clearTimeout(h),
    };
    const ticks: number[] = [];
    const s = new Scheduler(early, periods, {
      runCycle: async (scale, now) => {
        if (scale === 'tertiary') ticks.push(now);
      },
    });
    s.start();
    await clock.advance(180_000);
    await s.stop();
    expect(ticks).toEqual([59_999, 119_999, 179_999]);
  });

  it('goes on ticking when the wall clock steps back or forward (timers run on their own clock)', async () => {
    const timers = new VirtualClock(0);
    let offsetMs = 0;
    const stepped = {
      now: () => timers.now() + offsetMs,
      setTimeout: (fn: () => void, delayMs: number) => timers.setTimeout(fn, delayMs),
      clearTimeout: (h: Parameters<VirtualClock['clearTimeout']>[0]) => timers.clearTimeout(h),
    };
    const ticks: number[] = [];
    const s = new Scheduler(stepped, periods, {
      runCycle: async (scale, now) => {
        if (scale === 'tertiary') ticks.push(now);
      },
    });
    s.start();
    await timers.advance(90_000);
    offsetMs = -3_600_000;
    await timers.advance(60_000);
    offsetMs = 0;
    await timers.advance(60_000);
    await s.stop();
    // 60 s; then, an hour back, the next minute of the stepped clock; then, forward again, the next minute.
    expect(ticks).toEqual([60_000, 120_000 - 3_600_000, 180_000]);
  });

  it('aligns the first tick to the grid, not to the start time', async () => {
    const clock = new VirtualClock(12_345);
    const ticks: number[] = [];
    const s = new Scheduler(clock, periods, {
      runCycle: async (scale, now) => {
        if (scale === 'tertiary') ticks.push(now);
      },
    });
    s.start();
    await clock.advance(60_000);
    await s.stop();
    expect(ticks).toEqual([60_000]);
  });

  it('skips a tick while the previous cycle of that scale still waits, and counts it', async () => {
    const clock = new VirtualClock(0);
    let release: () => void = () => {};
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const overruns: TimeScale[] = [];
    const s = new Scheduler(clock, periods, {
      runCycle: async (scale) => {
        if (scale === 'primary') await blocked;
      },
      onOverrun: (scale) => overruns.push(scale),
    });
    s.start();
    await clock.advance(3000); // first primary cycle blocks; ticks 2 and 3 queue once, then overrun
    expect(overruns).toContain('primary');
    release();
    await s.stop();
  });

  it('stop() waits for the cycle in progress and no cycle starts after it', async () => {
    const clock = new VirtualClock(0);
    let finished = false;
    let started = 0;
    let release: () => void = () => {};
    const s = new Scheduler(clock, periods, {
      runCycle: async () => {
        started++;
        await new Promise<void>((r) => {
          release = r;
        });
        finished = true;
      },
    });
    s.start();
    await clock.advance(1000);
    expect(started).toBe(1);
    const stopped = s.stop();
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    await clock.advance(10);
    expect(done).toBe(false);
    release();
    await stopped;
    expect(finished).toBe(true);
    await clock.advance(10_000);
    expect(started).toBe(1);
  });

  it('a failing cycle is reported and the next one still runs', async () => {
    const clock = new VirtualClock(0);
    const errors: unknown[] = [];
    let runs = 0;
    const s = new Scheduler(clock, periods, {
      runCycle: async (scale) => {
        if (scale !== 'primary') return;
        runs++;
        if (runs === 1) throw new Error('device bus gone');
      },
      onError: (_scale, err) => errors.push(err),
    });
    s.start();
    await clock.advance(3000);
    await s.stop();
    expect(errors).toHaveLength(1);
    expect(runs).toBe(3);
  });
});
