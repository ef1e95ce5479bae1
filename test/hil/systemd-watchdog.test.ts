import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { Gateway } from '../../src/agent/gateway.js';
import { gatewayWatchdog } from '../../src/agent/watchdog.js';
import { systemClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import type { Device } from '../../src/drivers/device.js';
import { eventually, startCli, tempDir } from '../helpers/net.js';
import { NotifyReceiver, requireNotifyTools } from '../helpers/notify-socket.js';

// systemd's side played by a real unix datagram socket (python3) and the gateway's side by the real
// `systemd-notify`, as under `Type=notify` + `WatchdogSec=` + `NotifyAccess=all`.
const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A device whose poll never answers while `hung` is set: a control cycle that never ends. */
class HangingDevice implements Device {
  readonly kind = 'meter';
  readonly backend = 'test';
  hung = false;
  private release: (() => void) | undefined;
  constructor(readonly id: string) {}
  async poll(): Promise<Record<string, never>> {
    if (this.hung) await new Promise<void>((r) => (this.release = r));
    return {};
  }
  unhang(): void {
    this.hung = false;
    this.release?.();
  }
  async close(): Promise<void> {}
}

describe('systemd notify and watchdog', () => {
  beforeAll(requireNotifyTools);
  it('READY=1 after start, WATCHDOG=1 every half period, none while a control cycle hangs, STOPPING=1', async () => {
    const receiver = await NotifyReceiver.open(tmp.dir);
    const device = new HangingDevice('m1');
    const config = gatewayConfig({
      gateway: { id: 'wd-1', kind: 'dso', cell: 'c1' },
      scheduler: { primaryMs: 100, secondaryMs: 200, tertiaryMs: 60_000 },
      stateDir: join(tmp.dir, 'var'),
      status: { port: 0 },
    });
    const gateway = new Gateway(config, { clock: systemClock, log, devices: [device] });
    // WatchdogSec=1 s: a heartbeat every 500 ms; the loop may be quiet for max(5 × 100 ms, 1 s).
    const env = { NOTIFY_SOCKET: receiver.path, WATCHDOG_USEC: '1000000' };
    const watchdog = gatewayWatchdog(gateway, { clock: systemClock, log, env });
    expect(watchdog).toBeDefined();
    expect(gatewayWatchdog(gateway, { clock: systemClock, log, env: {} })).toBeUndefined();
    try {
      await gateway.start();
      await watchdog?.ready();
      const ready = receiver.with('READY')[0];
      expect(ready?.fields).toEqual({ READY: '1', STATUS: 'running; 1/1 devices up, no comms' });
      await eventually(() => (receiver.with('WATCHDOG').length >= 4 ? true : undefined), 10_000);
      const beats = receiver.with('WATCHDOG').map((m) => m.t);
      const gaps = beats.slice(1).map((t, i) => t - (beats[i] as number));
      for (const gap of gaps) expect(gap).toBeGreaterThan(300);
      for (const gap of gaps) expect(gap).toBeLessThan(1000); // always inside WatchdogSec

      // The control loop hangs in a device poll: the event loop runs on, the heartbeats stop.
      device.hung = true;
      const hungAt = Date.now();
      const stalled = await eventually(() => receiver.messages.find((m) => m.fields.STATUS?.startsWith('stalled')));
      expect(stalled.fields.WATCHDOG).toBeUndefined();
      expect(stalled.t - hungAt).toBeLessThan(1000 + 500 + 500); // stall limit + one beat + slack
      await sleep(1500); // systemd would have killed it by now: more than a watchdog period without a heartbeat
      expect(receiver.with('WATCHDOG', stalled.t)).toEqual([]);

      // The cycle finishes: heartbeats come back with a running status.
      device.unhang();
      const back = await eventually(() => receiver.with('WATCHDOG', stalled.t)[0]);
      expect(back.fields.STATUS).toBe('running; 1/1 devices up, no comms');
      await watchdog?.stopping();
      expect(receiver.messages.at(-1)?.fields.STOPPING).toBe('1');
      const stoppedAt = Date.now();
      await sleep(1200);
      expect(receiver.with('WATCHDOG', stoppedAt)).toEqual([]);
    } finally {
      device.unhang();
      await gateway.stop();
      receiver.close();
    }
  });

  it('`p2p-edge run` under NOTIFY_SOCKET: ready, heartbeats, none while the process is frozen, STOPPING=1 on SIGTERM', async () => {
    const dir = join(tmp.dir, 'run');
    const receiver = await NotifyReceiver.open(tmp.dir);
    const file = join(tmp.dir, 'gw.yaml');
    writeFileSync(
      file,
      [
        'gateway: { id: inv-wd, kind: inverter, cell: c1, bus: b1 }',
        'status: { port: 0 }',
        'scheduler: { primaryMs: 200, secondaryMs: 400, tertiaryMs: 60000 }',
        'devices:',
        '  - { id: pv, driver: simulated, kind: pv-inverter, bus: b1 }',
        `stateDir: ${dir}`,
      ].join('\n'),
    );
    const gw = startCli(['run', '--config', file], { NOTIFY_SOCKET: receiver.path, WATCHDOG_USEC: '1000000' });
    try {
      const ready = await eventually(() => receiver.with('READY')[0], 20_000);
      expect(ready.fields.STATUS).toBe('running; 1/1 devices up, no comms');
      await eventually(() => (receiver.with('WATCHDOG', ready.t).length >= 3 ? true : undefined), 10_000);

      // SIGSTOP: a process that does not run (like a blocked event loop) sends nothing.
      gw.child.kill('SIGSTOP');
      const frozenAt = Date.now();
      await sleep(2000);
      expect(receiver.with('WATCHDOG', frozenAt + 100)).toEqual([]);
      gw.child.kill('SIGCONT');
      await eventually(() => receiver.with('WATCHDOG', frozenAt + 2000)[0], 10_000);

      gw.child.kill('SIGTERM');
      expect(await gw.exited).toBe(0);
      expect(receiver.messages.at(-1)?.fields).toMatchObject({ STOPPING: '1' });
      expect(gw.output()).toMatch(/"msg":"systemd watchdog on"/);
    } finally {
      gw.child.kill('SIGKILL');
      receiver.close();
    }
  });
});
