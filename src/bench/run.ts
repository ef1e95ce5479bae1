import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '../core/errors.js';
import { componentLogger } from '../core/log.js';
import { MembersList } from '../core/members.js';
import { loadDataFile } from '../core/validate.js';
import { CompressedDay } from '../sim/profiles.js';
import { describeBrokers } from './broker.js';
import { benchControlStepMs } from './configs.js';
import { BenchDeviceServers } from './devices.js';
import { FaultSchedule } from './fault-injection.js';
import { controlSettleMs, settleDistributedControl, startGateways } from './gateway-processes.js';
import { BenchGrid } from './grid.js';
import { hostProcesses } from './hosting.js';
import { MachineWatch } from './keeping-up.js';
import { benchStatusPage } from './live-status.js';
import { MachineLoad } from './machine-load.js';
import { BenchNetwork } from './network.js';
import type { NodeSettings } from './processes.js';
import { cellGateways, gatewayStateDir, provisionBench } from './provision.js';
import { BenchRecorder } from './recorder.js';
import { type BenchReport, benchReport } from './report.js';
import { awaitDelivery, BenchSampler, type ProcessSample, sampleDelivery } from './sampling.js';
import type { Scenario } from './scenario.js';
import { awaitSettlement, SETTLEMENT_DRAIN_MS } from './settlement-drain.js';
import { SidelinkNetwork } from './sidelink-network.js';
import { WireObserver } from './wire-audit.js';

/** How long the bench waits, after the run, for the reliable messages sent during it to be acknowledged. */
const DELIVERY_DRAIN_MS = 15_000;

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
  /**
   * How node is started for each gateway, when not as the systemd unit starts it: only to compare
   * settings side by side in one run (`npm run bench:node-flags`).
   */
  nodeSettings?: (gatewayId: string) => NodeSettings | undefined;
}

/**
 * One hardware-in-the-loop bench run: the scenario's feeder simulated with every device served as
 * a real Modbus server, the gateways in `p2p-edge run` processes hosting several each (signed messages, members list), the
 * broker, and the faults of the scenario; then the KPI report, with SVG plots in the run directory.
 * A wire observer (`wire-audit.ts`) listens on the brokers throughout and reports what a third party saw.
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
  // What the run started, closed in the reverse order whether it ends or fails part way.
  const teardown: (() => unknown)[] = [];
  try {
    const grid = new BenchGrid(s, day, now);
    // Each cell's gateways in namespaces of their own on the cell's sidelink, the brokers and devices
    // where those namespaces reach them.
    const sidelink = s.sidelink ? SidelinkNetwork.create(cellGateways(s, grid)) : undefined;
    if (sidelink) {
      teardown.push(() => sidelink.close());
      progress(
        `each cell's gateways in network namespaces on a D2D sidelink per cell; brokers on ${sidelink.brokerAddress}`,
      );
    }
    const devices = await BenchDeviceServers.start(grid, progress, sidelink?.lanAddress);
    teardown.push(() => devices.close());
    const network = await BenchNetwork.start(s, {
      dir,
      broker: o.broker,
      loss: o.loss,
      ...(sidelink ? { host: sidelink.brokerAddress } : {}),
    });
    teardown.push(() => network.close());
    const { broker } = network;
    progress(
      `${describeBrokers(broker, network.cellBrokers.size)}; ` +
        `gateways connect ${network.proxies.size > 0 ? 'through a lossy proxy per cell' : 'directly'}; run directory ${dir}`,
    );
    const state = gatewayStateDir(dir);
    teardown.push(() => state.release());
    const bench = await provisionBench(s, grid, {
      dir,
      stateDir: state.path,
      brokerUrls: network.brokerUrls,
      endpoints: devices.endpoints,
      now,
      ...(sidelink ? { sidelink } : {}),
    });
    // A third party on the brokers, with nothing but the public members list: audits every message.
    const wire = await WireObserver.start(
      network.observedBrokerUrls,
      loadDataFile(bench.membersFile, MembersList, ErrorCode.config),
      bench.operatorPublicKey,
    );
    teardown.push(() => wire.close());
    const processes = hostProcesses(s, bench.gateways, { dir, cellOf: bench.cellOf, nodeSettings: o.nodeSettings });
    teardown.push(() => Promise.all(processes.map((p) => p.stop())));
    const gateways = processes.flatMap((p) => p.gateways);
    const recorder = new BenchRecorder(s.voltageLimitsPu, s.speedup);
    const machine = new MachineLoad([
      { id: 'bench', pid: () => process.pid },
      { id: 'broker', pid: () => broker.pid?.() },
      ...[...network.cellBrokers].map(([cell, c]) => ({ id: `broker-${cell}`, pid: () => c.broker.pid?.() })),
    ]);
    const watch = new MachineWatch(benchControlStepMs(s.speedup));
    const lossFault = s.faults.find((f) => f.kind === 'loss');
    const faults = new FaultSchedule(s.faults, {
      processes,
      gateways,
      network,
      cellOf: bench.cellOf,
      devices,
      ...(sidelink ? { sidelink } : {}),
      platformDb: bench.platformDb,
      progress,
      beforeKill: (p) => sampleDelivery(p.gateways, recorder, true),
    });
    const sampler = new BenchSampler({
      grid,
      recorder,
      processes,
      gateways,
      machine,
      watch,
      day,
      faults,
      progress,
      live: o.live,
      signal: o.signal,
      onProcessSample: o.onProcessSample,
    });
    const status = o.statusPort
      ? benchStatusPage({
          port: o.statusPort,
          scenario: s,
          day,
          brokerUrl: broker.url,
          dir,
          recorder,
          live: () => sampler.live,
          watch,
        })
      : undefined;
    if (status) {
      teardown.push(() => status.close());
      const address = await status.listen();
      progress(`status page on http://127.0.0.1:${address.port}/`);
    }
    const t0 = Date.now();
    await startGateways(processes, o.signal);
    progress(
      `${gateways.length} gateways up in ${processes.length} processes in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    if (!(await settleDistributedControl(gateways, controlSettleMs(benchControlStepMs(s.speedup)))))
      progress('some voltage agents still on their local curves: starting the day anyway');
    // The scenario's day starts now that every gateway runs, not while they were starting.
    day.restartAt(Date.now());
    machine.restart();
    const started = Date.now();
    await sampler.run(started, o.live ? Number.POSITIVE_INFINITY : started + s.durationS * 1000);
    const ended = Date.now();
    machine.stop();
    const load = machine.result();
    if (load.saturated)
      progress(`the machine's CPU was ${load.cpuBusyPct} % busy over the day: it could not keep up with every gateway`);
    await awaitDelivery(gateways, recorder, DELIVERY_DRAIN_MS, progress);
    await awaitSettlement(bench.platformDb, ended, SETTLEMENT_DRAIN_MS, progress);
    // `--loss` is a fault too: every link lost that fraction from the start to the end.
    const faultReports = [
      ...(o.loss
        ? [
            {
              kind: 'loss' as const,
              source: '--loss' as const,
              atS: 0,
              fraction: o.loss,
              untilEnd: true,
              recoveredS: null,
              lostAcked: null,
              duplicated: null,
            },
          ]
        : []),
      ...(await faults.reports()),
    ];
    progress('collecting the KPIs');
    return await benchReport(s, {
      dir,
      recorder,
      processes,
      gateways,
      machine,
      keepingUp: watch.result(ended),
      broker,
      platformDb: bench.platformDb,
      faults: faultReports,
      durationS: (ended - started) / 1000,
      settledBeforeMs: ended,
      stateDir: bench.stateDir,
      loss: lossFault?.fraction ?? o.loss ?? 0,
      wire,
    });
  } finally {
    for (const close of teardown.reverse())
      await Promise.resolve()
        .then(close)
        .catch((err: unknown) => log.warn({ err: String(err) }, 'could not close part of the bench'));
    log.info({ dir }, 'bench finished');
  }
}
