import { PLATFORM_ID } from './configs.js';
import type { BenchDeviceServers } from './devices.js';
import { allConnected, cellActivity } from './gateway-processes.js';
import type { BenchNetwork } from './network.js';
import type { ControllerProcess } from './processes.js';
import type { ScenarioFault } from './scenario.js';
import { sleep, waitUntil } from './wait.js';

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

/** What a fault acts on. */
export interface FaultTargets {
  processes: ControllerProcess[];
  network: BenchNetwork;
  cellOf: Map<string, string>;
  devices: BenchDeviceServers;
  progress: (l: string) => void;
}

/**
 * The scenario's faults in time order (a `loss` fault is not among them: the bench sets it for the
 * whole day). Each runs beside the sampling, which must go on while a gateway is down.
 */
export class FaultSchedule {
  private readonly pending: ScenarioFault[];
  private readonly injections: Promise<FaultReport>[] = [];

  constructor(
    faults: readonly ScenarioFault[],
    private readonly targets: FaultTargets,
  ) {
    this.pending = faults.filter((f) => f.kind !== 'loss').sort((a, b) => a.atS - b.atS);
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
  const reconnected = () => waitUntil(async () => (await allConnected(ctx.processes)) && network.bridgesUp(), 30_000);
  ctx.progress(`fault: ${f.kind}${f.target ? ` ${f.target}` : ''} at ${tS.toFixed(1)} s`);
  switch (f.kind) {
    case 'sigkill': {
      const p = ctx.processes.find((x) => x.id === f.target);
      if (!p) return { ...base, recoveredS: null };
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
      await sleep(durationMs);
      for (const b of brokers) await b.start();
      return { ...base, recoveredS: recoveredS(await reconnected()) };
    }
    case 'partition': {
      // The target cell's uplink (every cell's when no target is given) is cut: the bridge of its
      // broker where each cell has one, else its gateways' link to the one broker.
      const cells = f.target ? [f.target] : [...network.proxies.keys()].filter((k) => k !== '*');
      const cut = cells.map((c) => network.cellBrokers.get(c)?.uplink ?? network.proxies.get(c));
      const members = ctx.processes.filter((p) => cells.includes(ctx.cellOf.get(p.id) ?? '') && p.id !== PLATFORM_ID);
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
      const owner = ctx.processes.find((p) => p.id === `inv-${f.target!.split('-')[1]}`);
      const recovered = await waitUntil(async () => {
        const st = await owner?.state();
        return st?.devices[f.target!]?.up === true;
      }, 40_000);
      return { ...base, recoveredS: recoveredS(recovered) };
    }
    case 'loss':
      network.setLoss(f.fraction ?? 0);
      return { ...base, recoveredS: 0 };
  }
}
