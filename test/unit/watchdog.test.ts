import { describe, expect, it } from 'vitest';
import {
  controlLoopHealth,
  gatewaySummary,
  type NotifyFields,
  notifyArgs,
  ServiceWatchdog,
  stallAfterMs,
  systemdEnv,
} from '../../src/agent/watchdog.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';

const log = componentLogger('test');
log.level = 'silent';

describe('systemd watchdog (sd_notify(3), sd_watchdog_enabled(3))', () => {
  it('is off without NOTIFY_SOCKET, and the watchdog is only for the process WATCHDOG_PID names', () => {
    expect(systemdEnv({}, 42)).toBeUndefined();
    expect(systemdEnv({ WATCHDOG_USEC: '30000000' }, 42)).toBeUndefined();
    expect(systemdEnv({ NOTIFY_SOCKET: '/run/systemd/notify' }, 42)).toEqual({
      socket: '/run/systemd/notify',
      watchdogMs: undefined,
    });
    const env = { NOTIFY_SOCKET: '@sd', WATCHDOG_USEC: '30000000' };
    expect(systemdEnv(env, 42)?.watchdogMs).toBe(30_000);
    expect(systemdEnv({ ...env, WATCHDOG_PID: '42' }, 42)?.watchdogMs).toBe(30_000);
    expect(systemdEnv({ ...env, WATCHDOG_PID: '7' }, 42)?.watchdogMs).toBeUndefined();
    expect(systemdEnv({ ...env, WATCHDOG_USEC: 'x' }, 42)?.watchdogMs).toBeUndefined();
  });

  it('passes each assignment as one systemd-notify argument, newlines flattened', () => {
    expect(notifyArgs({ READY: '1', STATUS: 'a\nb' })).toEqual(['READY=1', 'STATUS=a b']);
  });

  it('lets the control loop be quiet for five primary periods, and at least one watchdog period', () => {
    expect(stallAfterMs(1000, 30_000)).toBe(30_000);
    expect(stallAfterMs(10_000, 30_000)).toBe(50_000);
    expect(controlLoopHealth(null, 0, 1000, 's').ok).toBe(false);
    expect(controlLoopHealth(0, 1000, 1000, 's')).toEqual({ ok: true, status: 'running; s' });
    expect(controlLoopHealth(0, 3000, 1000, 's')).toEqual({
      ok: false,
      status: 'stalled: no control cycle for 3 s; s',
    });
    expect(
      gatewaySummary({
        devices: {
          a: { kind: 'x', backend: 'y', up: true, lastError: null, points: {} },
          b: { kind: 'x', backend: 'y', up: false, lastError: 'timeout', points: {} },
        },
        comms: { backend: 'mqtt', connected: true, endpoint: 'mqtt://b' },
      }),
    ).toBe('1/2 devices up, comms connected');
  });

  it('beats every half watchdog period while cycles complete, stops when they do not, resumes after', async () => {
    const clock = new VirtualClock(0);
    const sent: { t: number; fields: NotifyFields }[] = [];
    let lastCycleAt: number | null = 0;
    const wd = new ServiceWatchdog({
      clock,
      log,
      watchdogMs: 10_000,
      send: async (fields) => {
        sent.push({ t: clock.now(), fields });
      },
      health: () => controlLoopHealth(lastCycleAt, clock.now(), 10_000, 'ok'),
    });
    await wd.ready();
    expect(sent).toEqual([{ t: 0, fields: { READY: '1', STATUS: 'running; ok' } }]);
    // A cycle every second until t = 20 s, then none.
    const cycle = () => {
      lastCycleAt = clock.now();
      if (clock.now() < 20_000) clock.setTimeout(cycle, 1000);
    };
    clock.setTimeout(cycle, 1000);
    await clock.advance(60_000);
    const beats = sent.filter((s) => s.fields.WATCHDOG).map((s) => s.t);
    expect(beats).toEqual([5000, 10_000, 15_000, 20_000, 25_000, 30_000]); // 30 s: last cycle 10 s old
    expect(sent.find((s) => s.fields.STATUS?.startsWith('stalled'))?.t).toBe(35_000);
    lastCycleAt = clock.now();
    await clock.advance(5000);
    expect(sent.at(-1)).toEqual({ t: 65_000, fields: { WATCHDOG: '1', STATUS: 'running; ok' } });
    await wd.stopping();
    await clock.advance(60_000);
    expect(sent.at(-1)?.fields).toEqual({ STOPPING: '1', STATUS: 'stopping: finishing the cycle, saving state' });
  });
});
