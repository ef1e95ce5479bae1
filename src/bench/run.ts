import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { gatewayConfig } from '../agent/config.js';
import { StatusServer } from '../agent/status-server.js';
import { type LossyProxy, startLossyProxy } from '../comms/lossy-proxy.js';
import { provisionIdentities } from '../comms/provision.js';
import { reply } from '../core/http-server.js';
import { componentLogger } from '../core/log.js';
import { freePorts } from '../core/net.js';
import { seededRandom } from '../core/prng.js';
import { demoFeeder } from '../grid/demo-feeder.js';
import { Ledger } from '../platform/ledger/ledger.js';
import { Membership } from '../platform/membership.js';
import { TradeReports } from '../platform/trades.js';
import { CompressedDay } from '../sim/profiles.js';
import { auditMeterSamples, type MeterAudit, meterReadingsInFlight } from './audit.js';
import { type BenchBroker, type CellBroker, describeBrokers, startBenchBroker, startCellBrokers } from './broker.js';
import { benchConfigs, PLATFORM_ID } from './configs.js';
import { BenchDeviceServers } from './devices.js';
import { BenchGrid } from './grid.js';
import { deliveryRatio } from './kpi.js';
import { ControllerProcess } from './processes.js';
import { histogramQuantile, parsePrometheus, type Sample, sumOf } from './prometheus.js';
import { BenchRecorder } from './recorder.js';
import { PLOT_NAMES, type PlotName, renderPlots } from './report-plots.js';
import type { Scenario, ScenarioFault } from './scenario.js';

export interface BenchOptions {
  durationS?: number;
  speedup?: number;
  seed?: number;
  loss?: number;
  broker?: string;
  /** Serves the live status page of the whole bench on this loopback port (0 = none). */
  statusPort?: number;
  /** Called with a line of progress (the CLI prints it on stderr). */
  progress?: (line: string) => void;
  /** Runs until `signal` is aborted (the day repeats), printing a line of progress every few seconds. */
  live?: boolean;
  signal?: AbortSignal;
  /** Called every time the gateway processes are sampled (every 2 s), with the seconds since the day started. */
  onProcessSample?: (tS: number, processes: readonly ProcessSample[]) => void;
}

/** One gateway process at one sample: its memory and what its metrics say of its outbox. */
export interface ProcessSample {
  id: string;
  /** Undefined while the process is down or its status page does not answer. */
  rssMB?: number;
  /** The anonymous part of `rssMB` (what the process allocated, not pages of mapped files). */
  anonMB?: number;
  heapUsedMB?: number;
  /** Heap in use right after the last full collection (`p2p_heap_live_bytes`). */
  heapLiveMB?: number;
  /** Heap committed by V8, used or not. */
  heapTotalMB?: number;
  /** Memory outside the heap held by JS objects (buffers). */
  externalMB?: number;
  /** Heap committed per V8 space (old, code, large_object, ...). */
  heapSpacesMB?: Record<string, number>;
  outboxPending?: number;
  /** Size of its log file so far. */
  logBytes: number;
}

export interface FaultReport {
  kind: ScenarioFault['kind'];
  target?: string;
  atS: number;
  recoveredS: number | null;
  /** Not measured yet by the bench (null), rather than a number nobody counted. */
  lostAcked: number | null;
  duplicated: number | null;
  /**
   * partition: what the cell cut off did meanwhile: the market intervals its MG trader cleared, and
   * its voltage agents still on the distributed control (against all of them) at the end of the cut.
   */
  whileCut?: { intervalsCleared: number; agentsDistributed: number; agents: number };
}

const CLASSES = ['mkt', 'dr', 'meter', 'gossip'] as const;

/**
 * One hardware-in-the-loop bench run: the scenario's feeder simulated with every device served as
 * a real Modbus server, one `p2p-edge run` process per gateway (signed messages, members list), the
 * broker, and the faults of the scenario; then the KPI report, with SVG plots in the run directory.
 */
export async function runBench(scenario: Scenario, o: BenchOptions = {}): Promise<BenchReport> {
  const progress = o.progress ?? (() => {});
  const log = componentLogger('bench');
  const s: Scenario = {
    ...scenario,
    durationS: o.durationS ?? scenario.durationS,
    speedup: o.speedup ?? scenario.speedup,
    seed: o.seed ?? scenario.seed,
  };
  const dir = mkdtempSync(join(tmpdir(), 'p2p-bench-'));
  const now = Date.now();
  const day = new CompressedDay(now, s.speedup, s.startHour);
  // The gateways take a while to start: the day waits for them at its first hour.
  day.hold();
  const grid = new BenchGrid(s, day, now);
  const devices = await BenchDeviceServers.start(grid, progress);
  const broker: BenchBroker = await startBenchBroker(dir, o.broker);
  const cellIds = s.cells.map((c) => c.id);
  const cellBrokers = await startCellBrokers(dir, cellIds, broker, seededRandom(s.seed + 100));
  const lossFault = s.faults.find((f) => f.kind === 'loss');
  // One proxy per cell (its gateways' link to their broker) and one for the gateways of no cell, so
  // that loss applies to every link; a partition cuts a cell's uplink (or its gateways' link, where
  // every cell shares one broker).
  const proxies = new Map<string, LossyProxy>();
  for (const [i, key] of [...cellIds, '*'].entries()) {
    const port = cellBrokers.get(key)?.broker.port ?? broker.port;
    proxies.set(key, await startLossyProxy(port, o.loss ?? 0, seededRandom(s.seed + i)));
  }
  const brokerUrls = Object.fromEntries([...proxies].map(([k, p]) => [k, p.url]));
  progress(
    `${describeBrokers(broker, cellBrokers.size)}; ` +
      `gateways connect through a proxy per cell; run directory ${dir}`,
  );

  const feederFiles: Record<string, string> = {};
  for (const c of s.cells) {
    feederFiles[c.id] = join(dir, `feeder-${c.id}.json`);
    writeFileSync(feederFiles[c.id]!, JSON.stringify(demoFeeder(c.houses, c.segmentOhm, c.vSlackPu)));
  }
  const gatewayIds = [
    ...s.cells.map((c) => `tx-${c.id}`),
    ...new Set(grid.devices.map((d) => d.gateway)),
    ...(s.aggregator ? ['agg-1'] : []),
    PLATFORM_ID,
  ];
  const statusPorts: Record<string, number> = {};
  const ports = await freePorts(gatewayIds.length);
  gatewayIds.forEach((id, i) => {
    statusPorts[id] = ports[i]!;
  });
  const plain = benchConfigs(s, grid.devices, {
    brokerUrls,
    stateDir: join(dir, 'state'),
    feederFiles,
    endpoints: devices.endpoints,
    statusPorts,
    speedup: s.speedup,
  });
  const platformDb = join(dir, 'platform', 'ledger.db');
  mkdirSync(join(dir, 'platform'), { recursive: true });
  plain.push({
    gateway: { id: PLATFORM_ID, kind: 'platform', cell: s.cells[0]!.id },
    // A 15-minute simulated metering interval, in the real seconds the gateways live in.
    platform: {
      db: platformDb,
      cells: s.cells.map((c) => c.id),
      meteringIntervalS: Math.max(1, Math.round(900 / s.speedup)),
      // A simulated day of raw samples, as the field keeps a real one: the database (and SQLite's
      // page cache of it) stays the size it has in the field however many days the bench runs.
      sampleRetentionH: 24 / s.speedup,
    },
    scheduler: { primaryMs: 1000, secondaryMs: 1000, tertiaryMs: 60_000 },
    stateDir: join(dir, 'state'),
    status: { host: '127.0.0.1', port: statusPorts[PLATFORM_ID]! },
    comms: { transport: 'mqtt', mqtt: { url: brokerUrls['*']!, keepaliveS: 5 } },
  });
  const configs = plain.map((c) => gatewayConfig(c));
  const cellOf = new Map(configs.map((c) => [c.gateway.id, c.gateway.cell]));
  const ids = provisionIdentities(
    configs.map((c) => c.gateway),
    join(dir, 'identities'),
    now,
  );
  // The platform's own members table: every gateway admitted, so that it stores their readings.
  {
    const ledger = Ledger.open(platformDb);
    const members = new Membership(ledger.db, { id: 'operator', privateKey: ids.operator.privateKey }, () => now);
    for (const m of ids.members.members) {
      members.register({ id: m.id, publicKey: m.publicKey, role: m.role, cell: m.cell });
      members.admit(m.id);
    }
    ledger.close();
  }
  const processes = configs.map((c) => {
    const file = join(dir, `${c.gateway.id}.yaml`);
    const withKeys = {
      ...plain.find((p) => p.gateway.id === c.gateway.id),
      comms: {
        ...(plain.find((p) => p.gateway.id === c.gateway.id)!.comms as object),
        security: {
          keyFile: ids.keyFile(c.gateway.id),
          membersFile: ids.membersFile,
          operatorPublicKey: ids.operatorPublicKey,
        },
      },
    };
    writeFileSync(file, stringify(withKeys));
    return new ControllerProcess(c.gateway.id, file, join(dir, `${c.gateway.id}.log`), statusPorts[c.gateway.id]!);
  });

  const recorder = new BenchRecorder(s.voltageLimitsPu, s.speedup);
  // The whole bench on one status page: every gateway's state, refreshed in the sampling loop, and
  // the report's charts drawn from what has been recorded so far.
  let live: { gateways: unknown[]; metrics: string } = { gateways: [], metrics: '' };
  const status = o.statusPort
    ? new StatusServer({
        host: '127.0.0.1',
        port: o.statusPort,
        state: () => ({
          simulation: {
            scenario: s.name,
            hourOfDay: day.hourAt(Date.now()),
            speedup: s.speedup,
            broker: broker.url,
            cells: s.cells.map((c) => c.id),
            run: dir,
            plots: PLOT_NAMES,
          },
          gateways: live.gateways,
        }),
        metrics: async () => live.metrics,
        routes: (url) => {
          const name = /^\/plots\/([a-z-]+\.svg)$/.exec(url.pathname)?.[1] as PlotName | undefined;
          const plot = name && PLOT_NAMES.includes(name) ? renderPlots(s, recorder, name)[0] : undefined;
          return plot ? reply(200, 'image/svg+xml', plot[1]) : undefined;
        },
        log: componentLogger('status'),
      })
    : undefined;
  if (status) {
    const address = await status.listen();
    progress(`status page on http://127.0.0.1:${address.port}/`);
  }
  const injections: Promise<FaultReport>[] = [];
  let lastMessages = 0;
  let lastRateAt = Date.now();
  const t0 = Date.now();
  try {
    // Started a few at a time: all of them at once on a small machine take longer than in batches.
    for (let i = 0; i < processes.length; i += 4) {
      const batch = processes.slice(i, i + 4);
      for (const p of batch) p.start();
      await Promise.all(batch.map((p) => p.ready(120_000)));
      if (o.signal?.aborted) break;
    }
    progress(`${processes.length} gateway processes up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The voltage agents start on their local curves and switch to the distributed control once
    // they hear their peers: a field cell runs that way all the time, so the day waits for it.
    const settled = await waitUntil(async () => {
      const states = await Promise.all(processes.map((p) => p.state()));
      return states.every((st) => {
        const agent = (st?.roles as Record<string, { method?: string }> | undefined)?.['voltage-agent'];
        return agent?.method === undefined || agent.method === 'dual';
      });
    }, SETTLE_TIMEOUT_MS);
    if (!settled) progress('some voltage agents still on their local curves: starting the day anyway');
    // ... and runs it a while at the start hour, so that the day begins with the control at work
    // rather than with its multipliers still climbing from where the takeover put them.
    else await new Promise((r) => setTimeout(r, CONTROL_SETTLE_MS));
    // The scenario's day starts now that every gateway runs, not while they were starting.
    day.restartAt(Date.now());
    if (lossFault) for (const p of proxies.values()) p.setLoss(lossFault.fraction ?? 0);
    const pending = [...s.faults.filter((f) => f.kind !== 'loss')].sort((a, b) => a.atS - b.atS);
    const started = Date.now();
    const endAt = o.live ? Number.POSITIVE_INFINITY : started + s.durationS * 1000;
    let nextProcessSample = 0;
    let nextProgress = started + PROGRESS_EVERY_MS;
    while (Date.now() < endAt && !o.signal?.aborted) {
      const tS = (Date.now() - started) / 1000;
      recorder.addGrid(grid.sample(Date.now()));
      if (Date.now() >= nextProcessSample) {
        for (const p of processes) p.sample();
        // Each process's metrics and state once: for the message rate, the trading KPIs and the live page.
        const texts = await Promise.all(processes.map((p) => p.metrics()));
        const parsed = texts.map((t) => (t === undefined ? undefined : parsePrometheus(t)));
        const total = parsed.reduce((sum, m) => sum + (m ? sumOf(m, 'p2p_messages_received_total') : 0), 0);
        recorder.messageRate.add({ tS, perS: ((total - lastMessages) * 1000) / Math.max(1, Date.now() - lastRateAt) });
        const states = await Promise.all(processes.map((p) => p.state()));
        recorder.addStates(states, day.hourAt(Date.now()));
        live = { gateways: states.filter((x) => x !== undefined), metrics: texts.filter(Boolean).join('\n') };
        if (o.onProcessSample) o.onProcessSample(tS, processSamples(processes, parsed));
        lastMessages = total;
        lastRateAt = Date.now();
        nextProcessSample = Date.now() + 2000;
      }
      if (o.live && Date.now() >= nextProgress) {
        progress(liveLine(day.hourAt(Date.now()), recorder, processes));
        nextProgress += PROGRESS_EVERY_MS;
      }
      // Faults run beside the sampling, which must go on while a gateway is down.
      while (pending[0] && pending[0].atS <= tS)
        injections.push(
          inject(pending.shift()!, tS, { processes, broker, cellBrokers, proxies, cellOf, devices, progress }),
        );
      await new Promise((r) => setTimeout(r, 250));
    }
    const faults = await Promise.all(injections);
    progress('collecting the KPIs');
    return await report(s, {
      dir,
      recorder,
      processes,
      broker,
      platformDb,
      faults,
      durationS: (Date.now() - started) / 1000,
      stateDir: join(dir, 'state'),
      loss: lossFault?.fraction ?? o.loss ?? 0,
    });
  } finally {
    await status?.close();
    await Promise.all(processes.map((p) => p.stop()));
    await Promise.all([...proxies.values()].map((p) => p.close()));
    for (const c of cellBrokers.values()) {
      await c.broker.stop().catch(() => {});
      await c.uplink.close();
    }
    await broker.stop().catch(() => {});
    await devices.close();
    log.info({ dir }, 'bench finished');
  }
}

const PROGRESS_EVERY_MS = 5000;
/** How long the bench waits for the voltage agents to find their peers before the day starts. */
const SETTLE_TIMEOUT_MS = 20_000;
/** How long the distributed control runs at the start hour, once every agent is on it, before the day starts. */
export const CONTROL_SETTLE_MS = 3000;

/** The recorded grid as CSV (one row per kept sample), for a spreadsheet or a plotting tool. */
function timeseriesCsv(s: Scenario, r: BenchRecorder): string {
  const cells = s.cells.map((c) => c.id);
  const header = [
    'hour',
    'v_max_pu',
    'v_min_pu',
    'v_max_volt_var_pu',
    'v_min_volt_var_pu',
    'curtailed_kw',
    'curtailed_volt_var_kw',
    ...cells.map((c) => `transformer_${c}_kw`),
  ];
  const rows = r.grid.values.map((g) => {
    const v = Object.values(g.voltagesPu);
    const b = Object.values(g.baselineVoltagesPu);
    return [
      g.hour.toFixed(4),
      Math.max(...v).toFixed(5),
      Math.min(...v).toFixed(5),
      Math.max(...b).toFixed(5),
      Math.min(...b).toFixed(5),
      g.curtailedKW.toFixed(3),
      g.baselineCurtailedKW.toFixed(3),
      ...cells.map((c) => (g.transformerKW[c] ?? 0).toFixed(3)),
    ].join(',');
  });
  return `${[header.join(','), ...rows].join('\n')}\n`;
}

/** The KPI report of a bench run (`p2p-edge bench --json`). */
export type BenchReport = Awaited<ReturnType<typeof report>>;

/** One line of the live demo's output: the simulated hour, the grid, the markets and the gateways. */
function liveLine(hour: number, r: BenchRecorder, processes: readonly ControllerProcess[]): string {
  const g = r.grid.values.at(-1);
  const volts = g ? Object.values(g.voltagesPu) : [];
  const v = r.voltage.result();
  const prices = r.prices.values.at(-1)?.prices ?? {};
  const hh = Math.floor(hour);
  const mm = Math.floor((hour - hh) * 60);
  return [
    `${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}`,
    volts.length ? `V ${Math.min(...volts).toFixed(3)}–${Math.max(...volts).toFixed(3)} pu` : 'V –',
    `violations ${v.violations} (volt-var only ${r.baseline.result().violations})`,
    `curtailed ${g ? g.curtailedKW.toFixed(1) : '–'} kW`,
    `prices ${
      Object.entries(prices)
        .map(([id, p]) => `${id} ${p.toFixed(3)}`)
        .join(', ') || '–'
    }`,
    `${(r.messageRate.values.at(-1)?.perS ?? 0).toFixed(0)} msg/s`,
    `${processes.filter((p) => p.running).length}/${processes.length} gateways up`,
  ].join(' | ');
}

async function inject(
  f: ScenarioFault,
  tS: number,
  ctx: {
    processes: ControllerProcess[];
    broker: BenchBroker;
    cellBrokers: Map<string, CellBroker>;
    proxies: Map<string, LossyProxy>;
    cellOf: Map<string, string>;
    devices: BenchDeviceServers;
    progress: (l: string) => void;
  },
): Promise<FaultReport> {
  const base = {
    kind: f.kind,
    ...(f.target ? { target: f.target } : {}),
    atS: Number(tS.toFixed(1)),
    lostAcked: null,
    duplicated: null,
  };
  const t = Date.now();
  const durationMs = (f.durationS ?? 5) * 1000;
  ctx.progress(`fault: ${f.kind}${f.target ? ` ${f.target}` : ''} at ${tS.toFixed(1)} s`);
  switch (f.kind) {
    case 'sigkill': {
      const p = ctx.processes.find((x) => x.id === f.target);
      if (!p) return { ...base, recoveredS: null };
      await p.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, durationMs));
      p.start();
      await p.ready(30_000);
      return { ...base, recoveredS: Number(((Date.now() - t) / 1000).toFixed(1)) };
    }
    case 'broker-restart': {
      // Every broker: the upstream one and each cell's.
      const brokers = [ctx.broker, ...[...ctx.cellBrokers.values()].map((c) => c.broker)];
      for (const b of brokers) await b.stop();
      await new Promise((r) => setTimeout(r, durationMs));
      for (const b of brokers) await b.start();
      const recovered = await waitUntil(async () => (await allConnected(ctx.processes)) && bridgesUp(ctx), 30_000);
      return { ...base, recoveredS: recovered ? Number(((Date.now() - t) / 1000).toFixed(1)) : null };
    }
    case 'partition': {
      // The target cell's uplink (every cell's when no target is given) is cut: the bridge of its
      // broker where each cell has one, else its gateways' link to the one broker.
      const cells = f.target ? [f.target] : [...ctx.proxies.keys()].filter((k) => k !== '*');
      const cut = cells.map((c) => ctx.cellBrokers.get(c)?.uplink ?? ctx.proxies.get(c));
      const members = ctx.processes.filter((p) => cells.includes(ctx.cellOf.get(p.id) ?? '') && p.id !== PLATFORM_ID);
      const before = await cellActivity(members);
      for (const p of cut) p?.partition(true);
      await new Promise((r) => setTimeout(r, durationMs));
      const atEnd = await cellActivity(members);
      const whileCut = { ...atEnd, intervalsCleared: atEnd.intervalsCleared - before.intervalsCleared };
      for (const p of cut) p?.partition(false);
      const recovered = await waitUntil(async () => (await allConnected(ctx.processes)) && bridgesUp(ctx), 30_000);
      return { ...base, recoveredS: recovered ? Number(((Date.now() - t) / 1000).toFixed(1)) : null, whileCut };
    }
    case 'modbus-timeout': {
      ctx.devices.setSilent(f.target!, true);
      await new Promise((r) => setTimeout(r, durationMs));
      ctx.devices.setSilent(f.target!, false);
      const owner = ctx.processes.find((p) => p.id === `inv-${f.target!.split('-')[1]}`);
      const recovered = await waitUntil(async () => {
        const st = await owner?.state();
        return (st?.devices as Record<string, { up: boolean }> | undefined)?.[f.target!]?.up === true;
      }, 40_000);
      return { ...base, recoveredS: recovered ? Number(((Date.now() - t) / 1000).toFixed(1)) : null };
    }
    case 'loss':
      for (const p of ctx.proxies.values()) p.setLoss(f.fraction ?? 0);
      return { ...base, recoveredS: 0 };
  }
}

async function allConnected(processes: readonly ControllerProcess[]): Promise<boolean> {
  const states = await Promise.all(processes.map((p) => p.state()));
  return states.every((st) => (st?.comms as { connected?: boolean } | undefined)?.connected !== false);
}

/** Every cell broker's bridge connected upstream again. */
function bridgesUp(ctx: { cellBrokers: Map<string, CellBroker> }): boolean {
  return [...ctx.cellBrokers.values()].every((c) => c.uplink.connections > 0);
}

/**
 * What the gateways of a cell are doing, from one read of their states: the market sessions their MG
 * traders have run so far, and their voltage agents with how many run the distributed (dual) control.
 */
async function cellActivity(
  processes: readonly ControllerProcess[],
): Promise<{ intervalsCleared: number; agentsDistributed: number; agents: number }> {
  const roles = (await Promise.all(processes.map((p) => p.state()))).map(
    (st) => st?.roles as Record<string, { sessions?: number; method?: string }> | undefined,
  );
  const methods = roles.flatMap((r) => (r?.['voltage-agent']?.method ? [r['voltage-agent'].method] : []));
  return {
    intervalsCleared: roles.reduce((sum, r) => sum + (r?.['mg-trader']?.sessions ?? 0), 0),
    agentsDistributed: methods.filter((m) => m === 'dual').length,
    agents: methods.length,
  };
}

function processSamples(
  processes: readonly ControllerProcess[],
  parsed: readonly (Sample[] | undefined)[],
): ProcessSample[] {
  return processes.map((p, i) => {
    const metrics = parsed[i];
    const mb = (name: string) => {
      const bytes = metrics?.find((m) => m.name === name)?.value;
      return bytes === undefined ? undefined : bytes / 2 ** 20;
    };
    const memory = {
      rssMB: p.rssMB,
      anonMB: p.anonMB,
      heapUsedMB: mb('nodejs_heap_size_used_bytes'),
      heapLiveMB: mb('p2p_heap_live_bytes'),
      heapTotalMB: mb('nodejs_heap_size_total_bytes'),
      externalMB: mb('nodejs_external_memory_bytes'),
    };
    const spaces = (metrics ?? []).filter((m) => m.name === 'nodejs_heap_space_size_total_bytes' && m.labels.space);
    return {
      id: p.id,
      logBytes: fileBytes(p.logFile),
      ...Object.fromEntries(Object.entries(memory).filter(([, v]) => v !== undefined)),
      ...(spaces.length
        ? { heapSpacesMB: Object.fromEntries(spaces.map((m) => [m.labels.space, m.value / 2 ** 20])) }
        : {}),
      ...(metrics ? { outboxPending: sumOf(metrics, 'p2p_outbox_pending') } : {}),
    };
  });
}

function fileBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function report(
  s: Scenario,
  r: {
    dir: string;
    recorder: BenchRecorder;
    processes: ControllerProcess[];
    broker: BenchBroker;
    platformDb: string;
    faults: FaultReport[];
    durationS: number;
    stateDir: string;
    loss: number;
  },
) {
  const metrics: Sample[] = (
    await Promise.all(r.processes.map(async (p) => parsePrometheus((await p.metrics()) ?? '')))
  ).flat();
  const states = await Promise.all(r.processes.map((p) => p.state()));
  const rec = r.recorder;
  rec.addStates(states, rec.grid.values.at(-1)?.hour ?? 0);
  const delivery: Record<string, number | null> = {};
  for (const cls of CLASSES) {
    const received = sumOf(metrics, 'p2p_messages_received_total', { class: cls });
    const gaps = sumOf(metrics, 'p2p_sequence_gaps_total', { class: cls });
    delivery[cls] = received + gaps > 0 ? Number(deliveryRatio(received, received + gaps).toFixed(4)) : null;
  }
  const live = rec.voltage.result();
  const baseline = rec.baseline.result();
  const roleStates = (role: string) =>
    states.flatMap((st) => {
      const t = (st?.roles as Record<string, Record<string, unknown>> | undefined)?.[role];
      return t ? [t] : [];
    });
  const traders = roleStates('mg-trader');
  const couplers = roleStates('coupling-agent');
  const fewest = (rows: Record<string, unknown>[], key: string) =>
    rows.length ? Math.min(...rows.map((t) => Number(t[key] ?? 0))) : 0;
  const cellGap = rec.cellGap.result();
  const upperGap = rec.upperGap.result();
  const rejected: Record<string, number> = {};
  for (const reason of ['signature', 'replay', 'expired', 'member', 'schema', 'duplicate', 'size'])
    rejected[reason] = sumOf(metrics, 'p2p_messages_rejected_total', { reason });
  // Stopped before the audit: each gateway saves its outbox, the readings still in flight.
  await Promise.all(r.processes.map((p) => p.stop()));
  let ledgerEntries: number | null = null;
  let readings: number | null = null;
  let trades: { stored: number; reports: number; intervals: number } | null = null;
  let audit: Map<string, MeterAudit> | undefined;
  let inFlight = 0;
  try {
    const ledger = Ledger.open(r.platformDb, { mustExist: true });
    ledgerEntries = ledger.entries().length;
    readings = (ledger.db.prepare('SELECT COUNT(*) AS n FROM platform_readings').get() as { n: number }).n;
    const stored = new TradeReports(ledger.db).list();
    trades = {
      stored: stored.length,
      reports: (ledger.db.prepare('SELECT COUNT(*) AS n FROM platform_trade_reports').get() as { n: number }).n,
      intervals: new Set(stored.map((t) => t.interval)).size,
    };
    const pending = meterReadingsInFlight(
      r.stateDir,
      r.processes.map((p) => p.id),
    );
    inFlight = pending.size;
    audit = auditMeterSamples(ledger.db, pending);
    ledger.close();
  } catch {
    // the platform gateway never wrote its database
  }
  const sumAudit = (members: Iterable<MeterAudit>) =>
    [...members].reduce((t, a) => ({ missing: t.missing + a.missing, duplicated: t.duplicated + a.duplicated }), {
      missing: 0,
      duplicated: 0,
    });
  const total = audit ? sumAudit(audit.values()) : undefined;
  // A killed gateway answers for its own readings; the platform, the broker and the network for everyone's.
  const faults = r.faults.map((f) => {
    const gateway = f.kind === 'sigkill' && f.target !== PLATFORM_ID ? f.target : undefined;
    const counted = gateway ? (audit?.get(gateway) ?? (audit ? { missing: 0, duplicated: 0 } : undefined)) : total;
    return { ...f, lostAcked: counted?.missing ?? null, duplicated: counted?.duplicated ?? null };
  });
  const peakTransformerPct = Math.max(
    0,
    ...s.cells.map((c) => (100 * (rec.peakTransformerKW[c.id] ?? 0)) / c.transformerKVA),
  );
  const gaps = [cellGap.worstRelativeGap, upperGap.worstRelativeGap].filter((g): g is number => g !== null);
  const out = {
    scenario: s.name,
    durationS: Number(r.durationS.toFixed(1)),
    speedup: s.speedup,
    gateways: r.processes.length,
    broker: r.broker.kind,
    loss: r.loss,
    delivery,
    latencyMs: {
      p50: Number((histogramQuantile(metrics, 'p2p_message_latency_seconds', 0.5) * 1000).toFixed(2)),
      p99: Number((histogramQuantile(metrics, 'p2p_message_latency_seconds', 0.99) * 1000).toFixed(2)),
    },
    trading: {
      intervals: fewest(traders, 'sessions'),
      converged: fewest(traders, 'convergedSessions'),
      worstCostGap: gaps.length ? Math.max(...gaps) : null,
      worstImbalanceKWh: Math.max(0, ...traders.map((t) => Number(t.worstImbalanceKWh ?? 0))),
      costGap: cellGap,
      upper: {
        intervals: fewest(couplers, 'upwardTrades'),
        converged: fewest(couplers, 'convergedUpwardTrades'),
        costGap: upperGap,
      },
    },
    voltage: {
      ...live,
      maxPu: Number(live.maxPu.toFixed(4)),
      minPu: Number(live.minPu.toFixed(4)),
      voltVarBaseline: {
        violations: baseline.violations,
        violationSeconds: baseline.violationSeconds,
        maxPu: Number(baseline.maxPu.toFixed(4)),
        minPu: Number(baseline.minPu.toFixed(4)),
        curtailedKWh: Number(rec.baselineCurtailed.kWh.toFixed(2)),
      },
    },
    curtailedKWh: Number(rec.curtailed.kWh.toFixed(2)),
    peakTransformerLoadingPct: Number(peakTransformerPct.toFixed(1)),
    rejectedMessages: rejected,
    processes: r.processes.map((p) => ({
      id: p.id,
      rssMB: Number(p.peakRssMB.toFixed(1)),
      cpuS: Number(p.cpuS.toFixed(2)),
      starts: p.starts,
    })),
    ledger: {
      db: r.platformDb,
      entries: ledgerEntries,
      readings,
      /** The trades the traders reported (stored once each), their reports, and the intervals they cover. */
      trades,
      meterReadingsMissing: total?.missing ?? null,
      meterReadingsInFlight: inFlight,
      meterReadingsDuplicated: total?.duplicated ?? null,
    },
    faults,
    plots: renderPlots(s, rec).map(([name, svg]) => {
      const file = join(r.dir, name);
      writeFileSync(file, svg);
      return file;
    }),
  };
  writeFileSync(join(r.dir, 'report.json'), `${JSON.stringify(out, null, 2)}\n`);
  writeFileSync(join(r.dir, 'timeseries.csv'), timeseriesCsv(s, rec));
  return out;
}
