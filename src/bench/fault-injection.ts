import { PLATFORM_ID } from './configs.js';
import type { BenchDeviceServers } from './devices.js';
import { allConnected, cellActivity } from './gateway-processes.js';
import type { BenchNetwork } from './network.js';
import type { BenchGateway, ControllerProcess } from './processes.js';
import type { ScenarioFault } from './scenario.js';
import type { SidelinkNetwork } from './sidelink-network.js';
import { cutUplink, type UplinkCutReport } from './uplink-cut.js';
import { sleep, waitUntil } from './wait.js';

/** How often the bench reads the voltage agents' mode while the brokers are down. */
const MODE_SAMPLE_MS = 500;

export interface FaultReport {
  kind: ScenarioFault['kind'];
  target?: string;
  atS: number;
  /** loss: the fraction of messages dropped on every link. */
  fraction?: number;
  /** loss: it lasted until the end of the run (no `durationS`), so nothing recovered from it. */
  untilEnd?: boolean;
  /** Where it came from when not the scenario's list: the `--loss` option. */
  source?: '--loss';
  recoveredS: number | null;
  /** Not measured yet by the bench (null), rather than a number nobody counted. */
  lostAcked: number | null;
  duplicated: number | null;
  /**
   * partition: what the cell cut off did meanwhile: the market intervals its MG trader cleared, and
   * its voltage agents still on the distributed control (against all of them) at the end of the cut.
   */
  whileCut?: { intervalsCleared: number; agentsDistributed: number; agents: number };
  /**
   * broker-restart: the fewest voltage agents on the distributed control in any read of their mode
   * while the brokers were down (every `MODE_SAMPLE_MS`), against all of them.
   */
  whileDown?: { fewestDistributed: number; agents: number; reads: number };
  /** uplink-cut: what the gateway cut off got through its neighbours' D2D relay meanwhile. */
  throughRelay?: UplinkCutReport;
}

/** What a fault acts on. */
export interface FaultTargets {
  processes: ControllerProcess[];
  gateways: BenchGateway[];
  network: BenchNetwork;
  cellOf: Map<string, string>;
  devices: BenchDeviceServers;
  /** The namespaces of a scenario with sidelinks (where an uplink can be cut). */
  sidelink?: SidelinkNetwork;
  /** The platform's database (what it stored). */
  platformDb: string;
  progress: (l: string) => void;
  /** Called right before a process is killed (the bench reads what its gateways counted so far). */
  beforeKill?: (p: ControllerProcess) => Promise<void>;
}

/**
 * The scenario's faults in time order. Each runs beside the sampling, which must go on while a
 * gateway is down.
 */
export class FaultSchedule {
  private readonly pending: ScenarioFault[];
  private readonly injections: Promise<FaultReport>[] = [];

  constructor(
    faults: readonly ScenarioFault[],
    private readonly targets: FaultTargets,
  ) {
    this.pending = [...faults].sort((a, b) => a.atS - b.atS);
  }

  /** Starts every fault due at `tS` seconds into the day. */
  startDue(tS: number): void {
    while (this.pending[0] && this.pending[0].atS <= tS)
      this.injections.push(injectFault(this.pending.shift()!, tS, this.targets));
  }

  /** The reports of every fault started, once each has recovered (or given up waiting). */
  reports(): Promise<FaultReport[]> {
    return Promise.all(this.injections);
  }
}

/** Injects one fault at `tS` seconds into the day, waits out its duration and the recovery, and reports. */
export async function injectFault(f: ScenarioFault, tS: number, ctx: FaultTargets): Promise<FaultReport> {
  const base = {
    kind: f.kind,
    ...(f.target ? { target: f.target } : {}),
    atS: Number(tS.toFixed(1)),
    lostAcked: null,
    duplicated: null,
  };
  const t = Date.now();
  const durationMs = (f.durationS ?? 5) * 1000;
  const { network } = ctx;
  const recoveredS = (recovered: boolean) => (recovered ? Number(((Date.now() - t) / 1000).toFixed(1)) : null);
  const reconnected = () => waitUntil(async () => (await allConnected(ctx.gateways)) && network.bridgesUp(), 30_000);
  ctx.progress(`fault: ${f.kind}${f.target ? ` ${f.target}` : ''} at ${tS.toFixed(1)} s`);
  switch (f.kind) {
    case 'sigkill': {
      // A gateway a fault kills runs alone in its process (`hostGateways`): the kill takes exactly it.
      const p = ctx.processes.find((x) => x.id === f.target && x.gateways.length === 1);
      if (!p) return { ...base, recoveredS: null };
      await ctx.beforeKill?.(p);
      await p.kill('SIGKILL');
      await sleep(durationMs);
      p.start();
      await p.ready(30_000);
      return { ...base, recoveredS: recoveredS(true) };
    }
    case 'broker-restart': {
      // Every broker: the upstream one and each cell's.
      const brokers = [network.broker, ...[...network.cellBrokers.values()].map((c) => c.broker)];
      for (const b of brokers) await b.stop();
      const whileDown = await watchVoltageModes(ctx.gateways, durationMs);
      for (const b of brokers) await b.start();
      return { ...base, recoveredS: recoveredS(await reconnected()), whileDown };
    }
    case 'partition': {
      // The target cell's uplink (every cell's when no target is given) is cut: the bridge of its
      // broker where each cell has one, else its gateways' link to the one broker.
      const everyCell = new Set([...network.cellBrokers.keys(), ...network.proxies.keys()]);
      const cells = f.target ? [f.target] : [...everyCell].filter((k) => k !== '*');
      const cut = cells.map((c) => network.cellBrokers.get(c)?.uplink ?? network.proxies.get(c));
      const members = ctx.gateways.filter((g) => cells.includes(ctx.cellOf.get(g.id) ?? '') && g.id !== PLATFORM_ID);
      const before = await cellActivity(members);
      for (const p of cut) p?.partition(true);
      await sleep(durationMs);
      const atEnd = await cellActivity(members);
      const whileCut = { ...atEnd, intervalsCleared: atEnd.intervalsCleared - before.intervalsCleared };
      for (const p of cut) p?.partition(false);
      return { ...base, recoveredS: recoveredS(await reconnected()), whileCut };
    }
    case 'modbus-timeout': {
      ctx.devices.setSilent(f.target!, true);
      await sleep(durationMs);
      ctx.devices.setSilent(f.target!, false);
      const owner = ctx.gateways.find((g) => g.id === `inv-${f.target!.split('-')[1]}`);
      const recovered = await waitUntil(async () => {
        const st = await owner?.state();
        return st?.devices[f.target!]?.up === true;
      }, 40_000);
      return { ...base, recoveredS: recoveredS(recovered) };
    }
    case 'uplink-cut': {
      const target = ctx.gateways.find((g) => g.id === f.target);
      if (!target || !ctx.sidelink) return { ...base, recoveredS: null };
      const cell = ctx.cellOf.get(target.id);
      const neighbours = ctx.gateways.filter(
        (g) => g !== target && ctx.sidelink!.of(g.id) && ctx.cellOf.get(g.id) === cell,
      );
      const throughRelay = await cutUplink(ctx.sidelink, target, neighbours, durationMs, ctx.platformDb);
      const back = await waitUntil(
        async () => (await target.state())?.comms?.links?.every((l) => l.connected) === true,
        30_000,
      );
      return { ...base, recoveredS: recoveredS(back), throughRelay };
    }
    case 'loss': {
      // Without a duration it lasts the rest of the run: there is nothing to recover from.
      network.setLoss(f.fraction ?? 0);
      if (f.durationS === undefined) return { ...base, fraction: f.fraction ?? 0, untilEnd: true, recoveredS: null };
      await sleep(durationMs);
      network.setLoss(network.baseLoss);
      return { ...base, fraction: f.fraction ?? 0, recoveredS: recoveredS(await reconnected()) };
    }
  }
}

/** Reads every voltage agent's mode each `MODE_SAMPLE_MS` for `durationMs`: the fewest on the distributed control. */
async function watchVoltageModes(
  gateways: readonly BenchGateway[],
  durationMs: number,
): Promise<NonNullable<FaultReport['whileDown']>> {
  const until = Date.now() + durationMs;
  let fewestDistributed = Number.POSITIVE_INFINITY;
  let agents = 0;
  let reads = 0;
  while (Date.now() < until) {
    const now = await cellActivity(gateways);
    fewestDistributed = Math.min(fewestDistributed, now.agentsDistributed);
    agents = Math.max(agents, now.agents);
    reads++;
    await sleep(Math.min(MODE_SAMPLE_MS, Math.max(0, until - Date.now())));
  }
  return { fewestDistributed: Number.isFinite(fewestDistributed) ? fewestDistributed : 0, agents, reads };
}
