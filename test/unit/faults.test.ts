import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { Gateway } from '../../src/agent/gateway.js';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { ClockJumpDetector, VirtualClock } from '../../src/core/clock.js';
import { ErrorCode, P2PError } from '../../src/core/errors.js';
import type { Device } from '../../src/drivers/device.js';
import { checkPlausible } from '../../src/drivers/plausibility.js';
import { tempDir } from '../helpers/net.js';
import { signedCell, signedEndpoint, tick } from '../helpers/signed-cell.js';

const tmp = tempDir('p2p-faults-');
afterAll(() => tmp.remove());
const T0 = 1_800_000_000_000;

/** A logger whose lines are kept, to count what a fault logs. */
function capturingLog() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
  return { log, lines, count };
}

describe('ClockJumpDetector', () => {
  it('sees a step of the wall clock against the monotonic one, either way, and nothing else', () => {
    const d = new ClockJumpDetector(2000);
    expect(d.observe(T0, 0)).toBe(0);
    expect(d.observe(T0 + 100, 100)).toBe(0);
    expect(d.observe(T0 + 1600, 1600)).toBe(0); // a late cycle: both clocks moved alike
    expect(d.observe(T0 + 1600 + 3_600_100, 1700)).toBe(3_600_000);
    expect(d.observe(T0 + 1800 + 3_600_000, 1900)).toBe(0);
    expect(d.observe(T0 + 2000, 2100)).toBe(-3_600_000);
    expect(d.observe(T0 + 3500, 2100)).toBe(0); // within the tolerance (NTP slewing, jitter)
  });
});

describe('checkPlausible', () => {
  it('refuses values no LV device can report, naming the point; takes outages and sags', () => {
    expect(() => checkPlausible('m', { voltagePu: 1.02, frequencyHz: 50, acPowerW: 3000 })).not.toThrow();
    expect(() => checkPlausible('m', { voltagePu: 0, frequencyHz: 0, acVoltageV: [0, 0, 0] })).not.toThrow();
    expect(() => checkPlausible('m', { acVoltageV: [230, null, 231] })).not.toThrow();
    const refused = (reading: Record<string, number | number[]>, ratedW?: number) => {
      try {
        checkPlausible('pv-1', reading, ratedW);
        return undefined;
      } catch (err) {
        expect(err).toBeInstanceOf(P2PError);
        expect((err as P2PError).code).toBe(ErrorCode.driver);
        expect((err as P2PError).recoverable).toBe(true);
        return (err as P2PError).message;
      }
    };
    expect(refused({ voltagePu: 12.4 })).toMatch(/pv-1: implausible reading, voltagePu = 12.4 outside 0..1.5/);
    expect(refused({ acVoltageV: [230, 4000, 230] })).toMatch(/acVoltageV = 4000/);
    expect(refused({ frequencyHz: Number.NaN })).toMatch(/frequencyHz/);
    expect(refused({ energyWh: -5 })).toMatch(/energyWh/);
    expect(refused({ acPowerW: 9000 }, 5000)).toMatch(/acPowerW = 9000 outside -7500..7500/);
    expect(refused({ acPowerW: 7000 }, 5000)).toBeUndefined();
    expect(refused({ availablePowerW: 2e6 })).toMatch(/availablePowerW/);
  });
});

describe('a gateway whose device fails', () => {
  it('logs an outage once however its errors change, keeps garbage out of the process image, and logs the recovery', async () => {
    const clock = new VirtualClock(T0);
    let mode: 'ok' | 'garbage' | 'silent' = 'ok';
    let n = 0;
    const meter: Device = {
      id: 'meter-1',
      kind: 'household-meter',
      backend: 'test',
      async poll() {
        n++;
        if (mode === 'silent') throw new P2PError(ErrorCode.driver, `unit 1: timeout after ${100 + n} ms`);
        return { voltagePu: mode === 'garbage' ? 3 + n : 1.01, acPowerW: 800 };
      },
      async close() {},
    };
    const { log, count, lines } = capturingLog();
    const gw = new Gateway(
      gatewayConfig({
        gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1', bus: 'b1' },
        scheduler: { primaryMs: 100, secondaryMs: 200, tertiaryMs: 60_000 },
        stateDir: tmp.dir,
        status: { port: 0 },
        voltageControl: { method: 'monitor' },
      }),
      { clock, log, devices: [meter] },
    );
    await gw.start();
    await clock.advance(500);
    expect(gw.state().devices['meter-1']!.up).toBe(true);
    mode = 'garbage';
    await clock.advance(1000);
    const during = gw.state().devices['meter-1']!;
    expect(during.up).toBe(false);
    expect(during.points.voltagePu).toMatchObject({ value: 1.01, quality: 'bad' }); // the last good value, marked bad
    mode = 'silent';
    await clock.advance(1000);
    expect(count('device not answering: its values are not used')).toBe(1);
    expect(lines.filter((l) => l.msg === 'device fault changed').length).toBeGreaterThan(0);
    mode = 'ok';
    await clock.advance(300);
    expect(gw.state().devices['meter-1']!.up).toBe(true);
    expect(count('device answers again')).toBe(1);
    const recovered = lines.find((l) => l.msg === 'device answers again')!;
    expect(recovered.failedPolls).toBeGreaterThanOrEqual(19);
    expect(await gw.metrics.registry.getSingleMetricAsString('p2p_device_errors_total')).toMatch(
      /p2p_device_errors_total\{[^}]*device="meter-1"[^}]*\} (19|2\d)/,
    );
    await gw.stop();
  });
});

describe('a gateway that cannot keep up', () => {
  it('counts every skipped cycle, and logs them once a minute with how many there were', async () => {
    const clock = new VirtualClock(T0);
    let slow = false;
    const slowMeter: Device = {
      id: 'meter-1',
      kind: 'household-meter',
      backend: 'test',
      async poll() {
        if (slow) await new Promise<void>((resolve) => clock.setTimeout(resolve, 250)); // 2.5 primary cycles
        return { voltagePu: 1.01, acPowerW: 800 };
      },
      async close() {},
    };
    const { log, lines } = capturingLog();
    const gw = new Gateway(
      gatewayConfig({
        gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1', bus: 'b1' },
        scheduler: { primaryMs: 100, secondaryMs: 200, tertiaryMs: 60_000 },
        stateDir: join(tmp.dir, 'slow'),
        status: { port: 0 },
        voltageControl: { method: 'monitor' },
      }),
      { clock, log, devices: [slowMeter] },
    );
    await gw.start();
    slow = true;
    await clock.advance(90_000);
    const skipped = lines.filter((l) => l.msg === 'cycle skipped: the previous one is still running');
    const metric = await gw.metrics.registry.getSingleMetricAsString('p2p_cycle_overruns_total');
    const counted = [...metric.matchAll(/p2p_cycle_overruns_total\{[^}]*\} (\d+)/g)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
    expect(counted).toBeGreaterThan(500);
    // Per time scale: the first one at once, then one line a minute with the count since.
    expect(skipped.length).toBeGreaterThanOrEqual(2);
    expect(skipped.length).toBeLessThanOrEqual(6);
    expect(skipped.reduce((sum, l) => sum + (l.skipped as number), 0)).toBeLessThanOrEqual(counted);
    expect(skipped.some((l) => (l.skipped as number) > 100)).toBe(true);
    slow = false;
    await clock.advance(1000); // the poll under way finishes, so that the gateway can stop
    await gw.stop();
  });
});

/** A house that resends after 200 ms and a platform on one in-memory bus, signed members of one cell (not started). */
function houseAndPlatform(idsDir: string) {
  const clock = new VirtualClock(T0);
  const bus = new MemoryBus();
  const p = signedCell(['house', 'platform-1'], join(tmp.dir, idsDir), T0, 'c1', { 'platform-1': 'platform' });
  const house = signedEndpoint(bus, p, 'house', clock, { retryInitialMs: 200 });
  const platform = signedEndpoint(bus, p, 'platform-1', clock);
  return { clock, house, platform };
}

describe('a receiver whose handler cannot take a message (its disk is full)', () => {
  it('does not acknowledge it, logs the problem once, and takes the resend once it can', async () => {
    const { clock, house, platform } = houseAndPlatform('ids');
    const { log, count } = capturingLog();
    (platform.t as unknown as { deps: { log: unknown } }).deps.log = log;
    for (const e of [house, platform]) await e.t.start();
    let full = true;
    const stored: number[] = [];
    platform.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'energy' }, ({ envelope }) => {
      if (full) throw new P2PError(ErrorCode.storage, 'database or disk is full');
      stored.push((envelope.body as { netW: number }).netW);
    });
    await tick();
    for (let i = 1; i <= 5; i++)
      await house.t.publishUnchecked('meter', 'energy', { netW: i }, { target: 'platform-1' });
    await clock.advance(3000);
    expect(stored).toEqual([]);
    expect(house.t.linkQuality().outboxPending).toBe(5);
    expect(count('message handler failed: messages not taken')).toBe(1);
    full = false;
    await clock.advance(20_000);
    expect(stored.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(house.t.linkQuality().outboxPending).toBe(0);
    expect(count('message handlers take messages again')).toBe(1);
    await clock.advance(20_000);
    expect(stored).toHaveLength(5); // acknowledged: not sent again, nor taken twice
  });
});

describe('a receiver whose handler stores a message later (group commit)', () => {
  it('acknowledges it once stored, not before; a failed write is not acknowledged and its resend is taken', async () => {
    const { clock, house, platform } = houseAndPlatform('ids-later');
    for (const e of [house, platform]) await e.t.start();
    let full = false;
    const stored: number[] = [];
    const waiting: { netW: number; done: () => void; fail: (err: Error) => void }[] = [];
    platform.t.subscribeUnchecked(
      { cell: 'c1', cls: 'meter', type: 'energy' },
      ({ envelope }) =>
        new Promise<void>((resolve, reject) => {
          const netW = (envelope.body as { netW: number }).netW;
          waiting.push({ netW, done: resolve, fail: reject });
        }),
    );
    const write = async () => {
      for (const w of waiting.splice(0)) {
        if (full) w.fail(new Error('database or disk is full'));
        else {
          stored.push(w.netW);
          w.done();
        }
      }
      await tick();
    };
    await tick();
    for (let i = 1; i <= 3; i++)
      await house.t.publishUnchecked('meter', 'energy', { netW: i }, { target: 'platform-1' });
    await tick();
    // Still being written: no acknowledgement, and a resend meanwhile is neither taken nor answered.
    await clock.advance(300);
    expect(house.t.linkQuality().outboxPending).toBe(3);
    expect(waiting.map((w) => w.netW)).toEqual([1, 2, 3]);
    full = true;
    await write();
    await clock.advance(300);
    expect(stored).toEqual([]);
    expect(house.t.linkQuality().outboxPending).toBe(3);
    full = false;
    for (let k = 0; k < 10 && house.t.linkQuality().outboxPending > 0; k++) {
      await write();
      await clock.advance(500);
    }
    expect(stored.sort()).toEqual([1, 2, 3]);
    expect(house.t.linkQuality().outboxPending).toBe(0);
  });
});
