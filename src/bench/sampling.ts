import { statSync } from 'node:fs';
import type { CompressedDay } from '../sim/profiles.js';
import type { FaultSchedule } from './fault-injection.js';
import type { BenchGrid } from './grid.js';
import type { MachineSample, MachineWatch } from './keeping-up.js';
import type { MachineLoad } from './machine-load.js';
import type { BenchGateway, ControllerProcess } from './processes.js';
import { parsePrometheus, type Sample, sumOf } from './prometheus.js';
import type { BenchRecorder } from './recorder.js';
import { sleep } from './wait.js';

/** One gateway process at one sample: its memory and what its gateways' metrics say of their outboxes. */
export interface ProcessSample {
  id: string;
  /** The gateways it hosts. */
  gateways: string[];
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

/** What the whole bench looks like at the last sample, for its live status page. */
export interface LiveBench {
  gateways: unknown[];
  metrics: string;
}

const GRID_SAMPLE_EVERY_MS = 250;
const PROCESS_SAMPLE_EVERY_MS = 2000;
const PROGRESS_EVERY_MS = 5000;

/**
 * The bench's sampling loop, from the start of the day until `endAt` (or `signal`): the grid every
 * 250 ms into the recorder; every 2 s each gateway process's memory, each gateway's metrics and state (the message
 * rate, the trading KPIs, the live page, `onProcessSample`); a line of progress every 5 s when
 * `live`; and the faults as they come due.
 */
export class BenchSampler {
  /** The last sample of every gateway, for the live status page. */
  live: LiveBench = { gateways: [], metrics: '' };
  private lastMessages = 0;
  private lastRateAt = Date.now();

  constructor(
    private readonly o: {
      grid: BenchGrid;
      recorder: BenchRecorder;
      processes: readonly ControllerProcess[];
      gateways: readonly BenchGateway[];
      machine?: MachineLoad;
      /** Told at every sample of the processes whether the machine keeps up (a line of progress when that changes). */
      watch?: MachineWatch;
      day: CompressedDay;
      faults: FaultSchedule;
      progress: (line: string) => void;
      live?: boolean;
      signal?: AbortSignal;
      onProcessSample?: (tS: number, processes: readonly ProcessSample[]) => void;
    },
  ) {}

  /** Samples from `startedMs` until `endAtMs` or the signal. */
  async run(startedMs: number, endAtMs: number): Promise<void> {
    const { grid, recorder, day, faults, signal } = this.o;
    let nextProcessSample = 0;
    let nextProgress = startedMs + PROGRESS_EVERY_MS;
    while (Date.now() < endAtMs && !signal?.aborted) {
      const tS = (Date.now() - startedMs) / 1000;
      const violationsBefore = recorder.voltage.result().violations;
      recorder.addGrid(grid.sample(Date.now()));
      this.o.watch?.noteViolations(recorder.voltage.result().violations - violationsBefore);
      if (Date.now() >= nextProcessSample) {
        await this.sampleProcesses(tS);
        nextProcessSample = Date.now() + PROCESS_SAMPLE_EVERY_MS;
      }
      if (this.o.live && Date.now() >= nextProgress) {
        this.o.progress(liveLine(day.hourAt(Date.now()), recorder, this.o.gateways));
        nextProgress += PROGRESS_EVERY_MS;
      }
      faults.startDue(tS);
      await sleep(GRID_SAMPLE_EVERY_MS);
    }
  }

  /** Each process's memory, then each gateway's metrics and state once: for the message rate, the trading KPIs and the live page. */
  private async sampleProcesses(tS: number): Promise<void> {
    const { processes, gateways, recorder, day } = this.o;
    for (const p of processes) p.sample();
    this.o.machine?.sample(processes.reduce((sum, p) => sum + (p.rssMB ?? 0), 0));
    const texts = await Promise.all(gateways.map((g) => g.metrics()));
    const parsed = texts.map((t) => (t === undefined ? undefined : parsePrometheus(t)));
    const total = parsed.reduce((sum, m) => sum + (m ? sumOf(m, 'p2p_messages_received_total') : 0), 0);
    recorder.messageRate.add({
      tS,
      perS: ((total - this.lastMessages) * 1000) / Math.max(1, Date.now() - this.lastRateAt),
    });
    this.watchMachine(parsed);
    const states = await Promise.all(gateways.map((g) => g.state()));
    recorder.addStates(states, day.hourAt(Date.now()));
    for (const [i, g] of gateways.entries()) recorder.delivery.add(g.id, g.host.starts, parsed[i], states[i]);
    this.live = { gateways: states.filter((x) => x !== undefined), metrics: texts.filter(Boolean).join('\n') };
    if (this.o.onProcessSample) {
      const byGateway = new Map(gateways.map((g, i) => [g.id, parsed[i]]));
      this.o.onProcessSample(tS, processSamples(processes, byGateway));
    }
    this.lastMessages = total;
    this.lastRateAt = Date.now();
  }

  /** One machine sample into the watch: a line of progress when an overload begins and when it ends. */
  private watchMachine(parsed: readonly (Sample[] | undefined)[]): void {
    const watch = this.o.watch;
    if (!watch) return;
    const tMs = Date.now();
    const news = watch.add(machineSample(tMs, this.o.machine?.busyPctSinceLastCall() ?? null, parsed));
    if (news === 'began') this.o.progress(watch.status().text);
    else if (news === 'ended') {
      const back = watch.alarmList().find((a) => a.clearedAt !== undefined);
      const lastedS = back ? ((back.clearedAt! - back.since) / 1000).toFixed(0) : '?';
      this.o.progress(`the machine keeps up again (it could not for ${lastedS} s)`);
    }
  }
}

/** The machine at one sample: its CPU, and from the gateways' metrics the overruns and the worst event-loop lag. */
export function machineSample(
  tMs: number,
  cpuBusyPct: number | null,
  parsed: readonly (Sample[] | undefined)[],
): MachineSample {
  const lags = parsed.flatMap((m) =>
    (m ?? []).filter((x) => x.name === 'nodejs_eventloop_lag_p99_seconds').map((x) => x.value * 1000),
  );
  return {
    tMs,
    cpuBusyPct,
    cycleOverruns: parsed.reduce((n, m) => n + (m ? sumOf(m, 'p2p_cycle_overruns_total') : 0), 0),
    eventLoopLagP99Ms: lags.length > 0 ? Math.max(...lags) : null,
  };
}

/**
 * Samples gateways into the delivery tally: their metrics, and with `withState` their states (the
 * metering intervals a house sent). Right before the bench kills a process, and while it waits after the day.
 */
export async function sampleDelivery(
  gateways: readonly BenchGateway[],
  recorder: BenchRecorder,
  withState: boolean,
): Promise<void> {
  for (const g of gateways) {
    const [text, state] = await Promise.all([g.metrics(), withState ? g.state() : undefined]);
    recorder.delivery.add(g.id, g.host.starts, text === undefined ? undefined : parsePrometheus(text), state);
  }
}

/**
 * After the day: waits (at most `maxMs`) until, for every gateway and class, as many reliable
 * messages have been acknowledged or given up as it had sent when the day ended, sampling every
 * gateway into the delivery tally, so that the delivery KPIs count what the retries made good rather
 * than what was still on its way.
 */
export async function awaitDelivery(
  gateways: readonly BenchGateway[],
  recorder: BenchRecorder,
  maxMs: number,
  progress: (line: string) => void,
): Promise<void> {
  const sample = async () => {
    await sampleDelivery(gateways, recorder, false);
    return recorder.delivery.progress();
  };
  const atEnd = await sample();
  recorder.delivery.endOfRun();
  const outstanding = (now: Map<string, { resolved: number }>) =>
    [...atEnd].reduce((n, [key, end]) => n + Math.max(0, end.sent - (now.get(key)?.resolved ?? 0)), 0);
  const deadline = Date.now() + maxMs;
  let left = outstanding(atEnd);
  while (left > 0 && Date.now() < deadline) {
    await sleep(500);
    left = outstanding(await sample());
  }
  if (left > 0)
    progress(`${left} reliable message(s) sent during the run still unacknowledged after ${maxMs / 1000} s`);
}

/** One line of the live demo's output: the simulated hour, the grid, the markets and the gateways. */
export function liveLine(hour: number, r: BenchRecorder, gateways: readonly BenchGateway[]): string {
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
    `${gateways.filter((g) => g.running).length}/${gateways.length} gateways up`,
  ].join(' | ');
}

/** The process's own metrics are on its first gateway's page; the outboxes are each gateway's. */
function processSamples(
  processes: readonly ControllerProcess[],
  byGateway: ReadonlyMap<string, Sample[] | undefined>,
): ProcessSample[] {
  return processes.map((p) => {
    const metrics = byGateway.get(p.gateways[0]!.id);
    const outboxes = p.gateways.map((g) => byGateway.get(g.id));
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
      gateways: p.gateways.map((g) => g.id),
      logBytes: fileBytes(p.logFile),
      ...Object.fromEntries(Object.entries(memory).filter(([, v]) => v !== undefined)),
      ...(spaces.length
        ? { heapSpacesMB: Object.fromEntries(spaces.map((m) => [m.labels.space, m.value / 2 ** 20])) }
        : {}),
      ...(outboxes.every(Boolean)
        ? { outboxPending: outboxes.reduce((sum, m) => sum + sumOf(m!, 'p2p_outbox_pending'), 0) }
        : {}),
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
