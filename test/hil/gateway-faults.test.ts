import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { auditMeterIntervals, meterIntervalsInFlight } from '../../src/bench/audit.js';
import { parseModbusUrl } from '../../src/hal/modbus/url.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { SimulatedModbusServer } from '../../src/sim/devices/modbus-server.js';
import { FixedInverterPlant, type MeterPlant } from '../../src/sim/devices/register-device.js';
import { SimulatedSdm630 } from '../../src/sim/devices/sdm630.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';
import { BROKERS } from '../helpers/brokers.js';
import { eventually, freePort, startCli, tempDir } from '../helpers/net.js';
import { signedCell } from '../helpers/signed-cell.js';
import { requireTool } from '../helpers/system-tools.js';

const tmp = tempDir('p2p-gateway-faults-');
afterAll(() => tmp.remove());

interface LogLine {
  level: number;
  msg: string;
  device?: string;
  jumpS?: number;
}
const WARN = 40;
const logLines = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

/** Warnings and errors of a process, by message and device: a fault logged in a loop shows as a large count. */
function problems(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of logLines(output)) {
    if (l.level < WARN) continue;
    const key = l.device ? `${l.msg} (${l.device})` : l.msg;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

type Process = ReturnType<typeof startCli>;
const statusOf = async (port: number) => {
  const r = await fetch(`http://127.0.0.1:${port}/api/state`);
  return (await r.json()) as {
    devices: Record<string, { up: boolean; points: Record<string, { value: unknown; quality: string }> }>;
    cycles: { primary: number };
    roles: { prosumer?: { readingsPublished: number; intervalsSent: number[] } };
  };
};
const healthy = (port: number) =>
  fetch(`http://127.0.0.1:${port}/healthz`)
    .then((r) => r.ok || undefined)
    .catch(() => undefined);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class SettableMeterPlant implements MeterPlant {
  voltagePu = 1;
  read() {
    return { powerW: 1200, reactiveVAr: 200, voltagePu: this.voltagePu, importWh: 10, exportWh: 0 };
  }
}

describe('a gateway whose Modbus devices fail', () => {
  it('garbage registers, exception codes and an implausible reading: values kept out, each outage logged once, recovered', async () => {
    const inverter = new SimulatedSunSpecInverter({ ratedW: 5000 }, new FixedInverterPlant(5000, 4000));
    const plant = new SettableMeterPlant();
    const meter = new SimulatedSdm630(plant);
    const server = new SimulatedModbusServer(
      new Map<number, SimulatedSunSpecInverter | SimulatedSdm630>([
        [1, inverter],
        [2, meter],
      ]),
    );
    const url = await server.listen(parseModbusUrl('tcp://127.0.0.1:0'));
    const port = await freePort();
    const config = join(tmp.dir, 'modbus.yaml');
    writeFileSync(
      config,
      stringify({
        gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1', bus: 'b1' },
        scheduler: { primaryMs: 200, secondaryMs: 400, tertiaryMs: 60_000 },
        stateDir: join(tmp.dir, 'modbus-state'),
        status: { port },
        log: { level: 'info' },
        voltageControl: { method: 'volt-var' },
        devices: [
          { id: 'pv-1', driver: 'sunspec', modbus: url, unit: 1, timeoutMs: 200 },
          { id: 'meter-1', driver: 'sdm630', modbus: url, unit: 2, timeoutMs: 200 },
        ],
      }),
    );
    const gw = startCli(['run', '--config', config]);
    const upIs = (device: string, up: boolean) =>
      eventually(async () => ((await statusOf(port)).devices[device]?.up === up ? true : undefined), 15_000);
    try {
      await upIs('pv-1', true);
      await upIs('meter-1', true);
      const good = (await statusOf(port)).devices['pv-1']!.points.acPowerW!.value;
      expect(good).toBe(4000);

      inverter.garbage = true;
      await upIs('pv-1', false);
      const before = (await statusOf(port)).cycles.primary;
      await sleep(2000);
      const during = await statusOf(port);
      // The control loop goes on; the last good value stays visible, marked bad: garbage never shows.
      expect(during.cycles.primary).toBeGreaterThan(before + 5);
      expect(during.devices['pv-1']!.points.acPowerW).toMatchObject({ value: 4000, quality: 'bad' });
      expect(during.devices['meter-1']!.up).toBe(true);
      inverter.garbage = false;
      await upIs('pv-1', true);

      meter.forcedException = 4; // Slave Device Failure on every request
      await upIs('meter-1', false);
      await sleep(2000);
      meter.forcedException = undefined;
      await upIs('meter-1', true);

      plant.voltagePu = 3.2; // a broken voltage input: 736 V phase-to-neutral
      await upIs('meter-1', false);
      await sleep(2000);
      const swell = await statusOf(port);
      expect(swell.devices['meter-1']!.points.voltagePu!.quality).toBe('bad');
      expect(swell.devices['meter-1']!.points.voltagePu!.value).toBeCloseTo(1, 5);
      plant.voltagePu = 1;
      await upIs('meter-1', true);
    } finally {
      gw.child.kill('SIGTERM');
      expect(await gw.exited).toBe(0);
      await server.close();
    }
    const lines = logLines(gw.output());
    const outages = (device: string) =>
      lines.filter((l) => l.msg === 'device not answering: its values are not used' && l.device === device).length;
    const recoveries = (device: string) =>
      lines.filter((l) => l.msg === 'device answers again' && l.device === device).length;
    // Once per outage, although each lasted about ten polls and garbage failed with changing errors.
    expect(outages('pv-1')).toBe(1);
    expect(recoveries('pv-1')).toBe(1);
    expect(outages('meter-1')).toBe(2);
    expect(recoveries('meter-1')).toBe(2);
    for (const [msg, n] of problems(gw.output())) expect(n, msg).toBeLessThanOrEqual(2);
  }, 90_000);
});

/**
 * A house gateway (simulated PV and meter, volt-var) sends its meter readings to the platform
 * (`p2p-edge run` both, signed, over a broker). `house` and `platform` set where each keeps its
 * state and the platform its database; `houseEnv` is the house process's environment.
 */
async function houseAndPlatform(o: { dir: string; houseState: string; platformDir: string }) {
  const broker = await BROKERS[0]!.start();
  const ids = signedCell(['platform-1', 'house-1'], join(o.dir, 'ids'), Date.now(), 'c1', { 'platform-1': 'platform' });
  mkdirSync(o.platformDir, { recursive: true });
  const db = join(o.platformDir, 'platform.db');
  {
    const ledger = Ledger.open(db);
    const members = new Membership(ledger.db, { id: 'operator', privateKey: ids.operator.privateKey }, () => 0);
    members.register({ id: 'house-1', publicKey: ids.keys.get('house-1')!.publicKey, role: 'prosumer', cell: 'c1' });
    members.admit('house-1');
    ledger.close();
  }
  const ports = { house: await freePort(), platform: await freePort() };
  const comms = (id: string) => ({
    transport: 'mqtt',
    mqtt: { url: broker.url, keepaliveS: 5 },
    reliability: { platform: 'platform-1', retryInitialMs: 200, retryMaxMs: 1000 },
    security: { keyFile: ids.keyFile(id), membersFile: ids.membersFile, operatorPublicKey: ids.operatorPublicKey },
  });
  const files = { house: join(o.dir, 'house.yaml'), platform: join(o.dir, 'platform.yaml') };
  writeFileSync(
    files.house,
    stringify({
      gateway: { id: 'house-1', kind: 'inverter', cell: 'c1', bus: 'b1' },
      // A metering interval (the market's) of a second: the house sends the platform an interval's energy every second.
      scheduler: { primaryMs: 100, secondaryMs: 200, tertiaryMs: 1000 },
      stateDir: o.houseState,
      status: { host: '127.0.0.1', port: ports.house },
      log: { level: 'info' },
      comms: comms('house-1'),
      voltageControl: { method: 'volt-var' },
      devices: [
        { id: 'pv-1', driver: 'simulated', kind: 'pv-inverter', ratedW: 5000, bus: 'b1' },
        { id: 'meter-1', driver: 'simulated', kind: 'household-meter', ratedW: 4000, bus: 'b1' },
      ],
    }),
  );
  writeFileSync(
    files.platform,
    stringify({
      gateway: { id: 'platform-1', kind: 'platform', cell: 'c1' },
      platform: { db, cells: ['c1'], meteringIntervalS: 1 },
      scheduler: { primaryMs: 100, secondaryMs: 100, tertiaryMs: 60_000 },
      stateDir: join(o.platformDir, 'state'),
      status: { host: '127.0.0.1', port: ports.platform },
      log: { level: 'info' },
      comms: comms('platform-1'),
    }),
  );
  /** The house's metering intervals the platform stored (`where` on their start, `from_ms`). */
  const intervals = (where = '1 = 1', ...args: number[]) => {
    const ledger = Ledger.open(db, { mustExist: true });
    try {
      return (
        ledger.db
          .prepare(`SELECT COUNT(*) AS n FROM platform_meter_intervals WHERE member = 'house-1' AND ${where}`)
          .get(...args) as { n: number }
      ).n;
    } finally {
      ledger.close();
    }
  };
  // What the house says it sent (the last intervals listed in its state), read as an auditor would.
  const sent = new Set<number>();
  const watchSent = setInterval(async () => {
    const prosumer = await statusOf(ports.house)
      .then((st) => st.roles.prosumer)
      .catch(() => undefined);
    for (const fromMs of prosumer?.intervalsSent ?? []) sent.add(fromMs);
  }, 500);
  const audit = () => {
    const ledger = Ledger.open(db, { mustExist: true });
    try {
      const inFlight = meterIntervalsInFlight(o.houseState, ['house-1']);
      return auditMeterIntervals(ledger.db, new Map([['house-1', sent]]), inFlight).get('house-1');
    } finally {
      ledger.close();
    }
  };
  return {
    ports,
    intervals,
    audit,
    /** Metering intervals the house said it sent so far. */
    sent: () => sent.size,
    start(houseEnv: NodeJS.ProcessEnv = {}): { house: Process; platform: Process } {
      return {
        platform: startCli(['run', '--config', files.platform]),
        house: startCli(['run', '--config', files.house], houseEnv),
      };
    },
    close: () => {
      clearInterval(watchSent);
      return broker.close();
    },
  };
}

/** Stops both with SIGTERM (the house first, so that its last readings are still taken) and checks a clean exit. */
async function stopBoth(p: { house: Process; platform: Process }): Promise<void> {
  p.house.child.kill('SIGTERM');
  expect(await p.house.exited).toBe(0);
  await sleep(1500);
  p.platform.child.kill('SIGTERM');
  expect(await p.platform.exited).toBe(0);
}

/** Fills a file system to the last byte; returns the filler's path. */
function fill(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(16 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // Smaller writes may still fit in the last block.
  const rest = openSync(filler, 'a');
  try {
    for (;;) writeSync(rest, Buffer.alloc(512));
  } catch {
    // full
  } finally {
    closeSync(rest);
  }
  return filler;
}

/** Why a tmpfs cannot be mounted here (not root, or a container without CAP_SYS_ADMIN); undefined if it can. */
const cannotMount = ((): string | undefined => {
  if (process.getuid?.() !== 0) return 'not root';
  const probe = join(tmp.dir, 'mount-probe');
  mkdirSync(probe, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
})();

// The full disk is a small tmpfs made for the test (`mount` itself is on every Debian).
// Without the privileges to mount it, the suite fails rather than passing by skipping.
describe('a full disk under the house gateway and the platform', () => {
  beforeAll(() => {
    if (cannotMount) throw new Error(`cannot mount a tmpfs for the full disk (${cannotMount}): run the tests as root`);
  });
  it('both keep running, log the fault once, and store every metering interval once the disk has room again', async () => {
    const disk = join(tmp.dir, 'disk');
    mkdirSync(disk, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', disk]);
    const rig = await houseAndPlatform({ dir: join(tmp.dir, 'full'), houseState: disk, platformDir: disk });
    const p = rig.start();
    try {
      await eventually(() => healthy(rig.ports.house), 20_000);
      await eventually(() => healthy(rig.ports.platform), 20_000);
      await eventually(() => (rig.intervals() >= 5 ? true : undefined), 20_000);
      const filler = fill(disk);
      const fullAt = Date.now();
      const cycles = (await statusOf(rig.ports.house)).cycles.primary;
      await sleep(6000);
      // The control loop and the platform go on.
      expect((await statusOf(rig.ports.house)).cycles.primary).toBeGreaterThan(cycles + 30);
      expect(await healthy(rig.ports.house)).toBe(true);
      expect(await healthy(rig.ports.platform)).toBe(true);
      const freedAt = Date.now();
      rmSync(filler);
      // What the house measured while the platform could not store it arrives once there is room.
      await eventually(
        () => (rig.intervals('from_ms > ? AND from_ms < ?', fullAt, freedAt - 1000) >= 4 ? true : undefined),
        30_000,
      );
      await sleep(3000);
    } finally {
      await stopBoth(p).finally(() => rig.close());
    }
    const audit = rig.audit();
    expect(rig.sent()).toBeGreaterThan(10);
    expect(audit).toEqual({ missing: 0, duplicated: 0 });
    for (const [id, proc] of Object.entries(p)) {
      const counts = problems(proc.output());
      for (const [msg, n] of counts) expect(n, `${id}: ${msg}`).toBeLessThanOrEqual(2);
      expect(counts.size, `${id} logged the full disk`).toBeGreaterThan(0);
    }
    expect(p.platform.output()).toContain('message handlers take messages again');
    expect(p.house.output()).toContain('comms state saved again');
    execFileSync('umount', [disk]);
  }, 120_000);
});

// libfaketime steps one real process's wall clock.
describe("a step of the house gateway's wall clock, an hour ahead and back", () => {
  let libfaketime = '';
  beforeAll(() => {
    libfaketime = requireTool('faketime/libfaketime.so.1');
  });
  it('logs each jump once, keeps its control loop, is refused while ahead, and trades readings again once back', async () => {
    const rig = await houseAndPlatform({
      dir: join(tmp.dir, 'jump'),
      houseState: join(tmp.dir, 'jump', 'house'),
      platformDir: join(tmp.dir, 'jump', 'platform'),
    });
    const offset = join(tmp.dir, 'jump', 'faketime');
    writeFileSync(offset, '+0\n');
    const p = rig.start({
      LD_PRELOAD: libfaketime,
      FAKETIME_TIMESTAMP_FILE: offset,
      FAKETIME_NO_CACHE: '1',
      // Only the wall clock steps; timers run on the monotonic clock, as under NTP.
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    const expiredAtPlatform = async () => {
      const text = await (await fetch(`http://127.0.0.1:${rig.ports.platform}/metrics`)).text();
      return Number(/p2p_messages_rejected_total\{[^}]*reason="expired"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    try {
      await eventually(() => healthy(rig.ports.house), 20_000);
      await eventually(() => healthy(rig.ports.platform), 20_000);
      await eventually(() => (rig.intervals() >= 5 ? true : undefined), 20_000);
      writeFileSync(offset, '+1h\n');
      const aheadAt = Date.now();
      await eventually(async () => ((await expiredAtPlatform()) >= 10 ? true : undefined), 15_000);
      const cycles = (await statusOf(rig.ports.house)).cycles.primary;
      await sleep(3000);
      expect((await statusOf(rig.ports.house)).cycles.primary).toBeGreaterThan(cycles + 15);
      // Nothing stamped an hour ahead was taken.
      expect(rig.intervals('from_ms > ?', Date.now() + 60_000)).toBe(0);
      writeFileSync(offset, '+0\n');
      const backAt = Date.now();
      await eventually(() => (rig.intervals('from_ms > ?', backAt + 500) >= 5 ? true : undefined), 20_000);
      expect(rig.intervals('from_ms > ? AND from_ms < ?', aheadAt + 1000, backAt - 1000)).toBe(0);
    } finally {
      await stopBoth(p).finally(() => rig.close());
    }
    const jumps = logLines(p.house.output()).filter((l) => l.msg === 'wall clock jumped');
    expect(jumps.map((l) => Math.round((l.jumpS ?? 0) / 60))).toEqual([60, -60]);
    for (const [id, proc] of Object.entries(p))
      for (const [msg, n] of problems(proc.output())) expect(n, `${id}: ${msg}`).toBeLessThanOrEqual(2);
    // Intervals of the hour ahead stay refused (their stamps are wrong); everything else arrived once.
    expect(rig.audit()?.duplicated).toBe(0);
  }, 120_000);
});
