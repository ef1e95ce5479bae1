/**
 * Two gateway processes (`p2p-edge run`, D2D transport, signed messages, the distributed voltage
 * control) in two network namespaces joined by a veth link: gw-a at bus b3 reads a SunSpec inverter
 * (Modbus TCP, simulated in this process) whose terminal voltage this script steps beyond 1.05 pu and
 * back, `count` times, and which it then trips (at 0.9515 pu: the output lost takes b3 below the band)
 * and reconnects (at 1.046 pu: the 4 kW coming back take it above); gw-b at b2 has a simulated PV
 * inverter. Run inside gw-a's namespace by the HIL test and `npm run bench:primary-events`:
 *   ip netns exec NS_A node --import tsx test/helpers/primary-events-scenario.ts NS_B COUNT
 * Prints one JSON line: for each event, when the voltage was stepped (the inverter tripped,
 * reconnected), when gw-a saw it (its log line "voltage outside limits", "inverter tripped: out of
 * service", "inverter reconnected: in service") and when gw-b's voltage agent had acted on gw-a's
 * `gossip/bus-limit` (`inverter-trip`, `inverter-reconnect`; its log line "acted on a peer's …",
 * written once its inverter had the new setpoints), and what gw-b did. Both processes log the same
 * host clock's milliseconds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionIdentities } from '../../src/comms/provision.js';
import { SimulatedModbusServer } from '../../src/sim/devices/modbus-server.js';
import { FixedInverterPlant, type InverterPlant } from '../../src/sim/devices/register-device.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';
import { BIN } from './net.js';

const [nsB, countArg = '5', waitArg = '3000'] = process.argv.slice(2);
if (!nsB) throw new Error('usage: primary-events-scenario.ts NS_B [COUNT] [WAIT_MS]');
const count = Number(countArg);
/** Longest wait for each step of an event (a lost event is counted as such, not waited for forever). */
const waitMs = Number(waitArg);
const PRIMARY_MS_A = 20;
const FEEDER = join(import.meta.dirname, '..', '..', 'config', 'feeder.example.json');

/**
 * An inverter with fixed sun whose terminal voltage the script sets (the feeder's other loads, a tap
 * step), and which it trips (no output, the sun still there: SunSpec's WAval stays) and reconnects.
 */
class SteppedVoltagePlant implements InverterPlant {
  voltagePu = 1.0;
  tripped = false;
  private readonly inner = new FixedInverterPlant(5000, 4000);
  availableW(): number {
    return this.inner.availableW();
  }
  read(now: number) {
    const r = this.inner.read(now);
    return { ...r, voltagePu: this.voltagePu, ...(this.tripped ? { powerW: 0, reactiveVAr: 0 } : {}) };
  }
  setLimitPct(pct: number): void {
    this.inner.setLimitPct(pct);
  }
  setReactiveVAr(vAr: number): void {
    this.inner.setReactiveVAr(vAr);
  }
}

type LogLine = { time: number; msg: string; [field: string]: unknown };

/** A gateway process whose JSON log lines are kept as they come. */
function gateway(command: string, args: string[]): { child: ChildProcess; lines: LogLine[]; text: () => string } {
  const child = spawn(command, args, {
    env: { ...process.env, P2P_EDGE_FROM_SOURCE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  let raw = '';
  let partial = '';
  const take = (chunk: Buffer) => {
    raw += chunk;
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const line of complete) {
      try {
        const parsed = JSON.parse(line) as LogLine;
        if (typeof parsed.time === 'number' && typeof parsed.msg === 'string') lines.push(parsed);
      } catch {
        // not a log line
      }
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return { child, lines, text: () => raw };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(1);
  }
  return true;
}
const count_ = (lines: LogLine[], msg: string) => lines.filter((l) => l.msg === msg).length;

const dir = mkdtempSync(join(tmpdir(), 'p2p-primary-events-'));
const ids = provisionIdentities(
  [
    { id: 'gw-a', cell: 'c1', kind: 'inverter' },
    { id: 'gw-b', cell: 'c1', kind: 'inverter' },
  ],
  join(dir, 'ids'),
  Date.now(),
);
const plant = new SteppedVoltagePlant();
const server = new SimulatedModbusServer(
  new Map([[1, new SimulatedSunSpecInverter({ ratedW: 5000, float: true }, plant)]]),
);
const modbusUrl = await server.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });

const config = (id: string, bus: string, primaryMs: number, device: string) =>
  [
    `gateway: { id: ${id}, kind: inverter, cell: c1, bus: ${bus} }`,
    'roles: [voltage-agent]',
    `scheduler: { primaryMs: ${primaryMs}, secondaryMs: 1000, tertiaryMs: 900000 }`,
    'status: { port: 0 }',
    `stateDir: ${join(dir, 'var')}`,
    'log: { level: info }',
    'comms:',
    '  transport: d2d',
    '  d2d: { interface: d2d0, heartbeatMs: 500 }',
    `  security: { keyFile: ${ids.keyFile(id)}, membersFile: ${ids.membersFile}, operatorPublicKey: ${ids.operatorPublicKey} }`,
    `voltageControl: { method: dual, feederFile: ${FEEDER} }`,
    'devices:',
    `  - ${device}`,
  ].join('\n');
writeFileSync(
  join(dir, 'a.yaml'),
  config('gw-a', 'b3', PRIMARY_MS_A, `{ id: pv-a, driver: sunspec, modbus: "${modbusUrl}", unit: 1, timeoutMs: 200 }`),
);
writeFileSync(
  join(dir, 'b.yaml'),
  config('gw-b', 'b2', 100, '{ id: pv-b, driver: simulated, kind: pv-inverter, ratedW: 5000, bus: b2 }'),
);

const a = gateway(process.execPath, [BIN, 'run', '--config', join(dir, 'a.yaml')]);
const b = gateway('ip', ['netns', 'exec', nsB, process.execPath, BIN, 'run', '--config', join(dir, 'b.yaml')]);

const DUAL = 'peers heard: distributed voltage control';
const OUTSIDE = 'voltage outside limits';
const BACK = 'voltage back within limits';
const ACTED = "acted on a peer's bus-limit";
const TRIPPED = 'inverter tripped: out of service';
const TRIP_ACTED = "acted on a peer's inverter-trip";
const RECONNECTED = 'inverter reconnected: in service';
const RECONNECT_ACTED = "acted on a peer's inverter-reconnect";

type Event = {
  voltagePu: number;
  injectedMs: number;
  seenMs?: number;
  /** Trips and reconnects: the voltage before, as gw-a logged (and sent) it. */
  seenVoltagePu?: number;
  actedMs?: number;
  acted?: LogLine;
};
const events: Event[] = [];
const trips: Event[] = [];
const reconnects: Event[] = [];

/** Does `change` to the plant and times it: when gw-a logs `seenMsg`, when gw-b logs `actedMsg`. */
async function timed(voltagePu: number, change: () => void, seenMsg: string, actedMsg: string): Promise<Event> {
  const seen = count_(a.lines, seenMsg);
  const acted = count_(b.lines, actedMsg);
  const event: Event = { voltagePu, injectedMs: Date.now() };
  change();
  if (await until(() => count_(a.lines, seenMsg) > seen, waitMs)) {
    const line = a.lines.filter((l) => l.msg === seenMsg)[seen]!;
    event.seenMs = line.time;
    if (typeof line.voltageBeforePu === 'number') event.seenVoltagePu = line.voltageBeforePu;
  }
  if (await until(() => count_(b.lines, actedMsg) > acted, waitMs)) {
    event.acted = b.lines.filter((l) => l.msg === actedMsg)[acted]!;
    event.actedMs = event.acted.time;
  }
  return event;
}

let ready = false;
try {
  ready = await until(() => count_(a.lines, DUAL) > 0 && count_(b.lines, DUAL) > 0, 60_000);
  if (ready) {
    for (let k = 0; k < count; k++) {
      // A different value each time (float32 SunSpec points carry it): the event is told by its voltage.
      const voltagePu = 1.06 + (k % 50) * 2e-4;
      const back = count_(a.lines, BACK);
      events.push(await timed(voltagePu, () => (plant.voltagePu = voltagePu), OUTSIDE, ACTED));
      plant.voltagePu = 1.0;
      await until(() => count_(a.lines, BACK) > back, waitMs);
      // The trip at another point of gw-a's primary cycle, once gw-a has read the voltage before it
      // (which its event reports) for a few cycles; on a busy machine gw-a may not have, and then
      // reports the voltage before that (the bench counts such events apart).
      const beforeTripPu = 0.9515 + (k % 50) * 1e-5;
      plant.voltagePu = beforeTripPu;
      await sleep((6 + Math.random()) * PRIMARY_MS_A);
      trips.push(await timed(beforeTripPu, () => (plant.tripped = true), TRIPPED, TRIP_ACTED));
      const beforeReconnectPu = 1.046 + (k % 50) * 2e-5;
      plant.voltagePu = beforeReconnectPu;
      await sleep((6 + Math.random()) * PRIMARY_MS_A);
      reconnects.push(await timed(beforeReconnectPu, () => (plant.tripped = false), RECONNECTED, RECONNECT_ACTED));
      plant.voltagePu = 1.0;
      // The next step at another point of gw-a's primary cycle.
      await sleep((2 + Math.random()) * PRIMARY_MS_A);
    }
  }
} finally {
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  await sleep(500);
  await server.close();
}
rmSync(dir, { recursive: true, force: true });

function reported(e: Event) {
  return {
    voltagePu: e.voltagePu,
    injectedMs: e.injectedMs,
    seenMs: e.seenMs ?? null,
    ...(e.seenVoltagePu !== undefined ? { seenVoltagePu: e.seenVoltagePu } : {}),
    actedMs: e.actedMs ?? null,
    acted: e.acted
      ? {
          peer: e.acted.peer,
          bus: e.acted.bus,
          voltagePu: e.acted.voltagePu,
          multiplier: e.acted.multiplier,
          setpoints: e.acted.setpoints,
          ...(e.acted.limit !== undefined ? { limit: e.acted.limit } : {}),
          ...(e.acted.inverter !== undefined ? { inverter: e.acted.inverter, predictedPu: e.acted.predictedPu } : {}),
        }
      : null,
  };
}

process.stdout.write(
  `${JSON.stringify({
    ready,
    primaryMsA: PRIMARY_MS_A,
    events: events.map(reported),
    trips: trips.map(reported),
    reconnects: reconnects.map(reported),
    ...(ready ? {} : { logA: a.text().slice(-3000), logB: b.text().slice(-3000) }),
  })}\n`,
  // Exit once the line is out: a pipe takes a long line in parts, and exiting at once cuts it.
  () => process.exit(0),
);
