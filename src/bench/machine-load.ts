import { readFileSync } from 'node:fs';
import { processStats } from './processes.js';

/** Busy and total CPU ticks of the whole machine since boot (/proc/stat). */
function cpuTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, ...fields] = line.trim().split(/\s+/);
    const n = fields.map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    const idle = (n[3] ?? 0) + (n[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

function busyPct(a: ReturnType<typeof cpuTicks>, b: ReturnType<typeof cpuTicks>): number | null {
  return a && b && b.total > a.total ? (100 * (b.busy - a.busy)) / (b.total - a.total) : null;
}

/** The machine's CPU busier than this over the day: it could not give every gateway what it asked. */
export const SATURATED_CPU_PCT = 90;

/** Resident memory and CPU of the bench's own helpers: this process and the brokers'. */
export interface HelperProcess {
  id: string;
  pid(): number | undefined;
}

/**
 * What the bench asks of the machine while the day runs: the share of its CPU that was busy (all
 * cores, every process on it), the peak resident memory of every bench process together (gateway
 * processes, brokers, the bench itself), and the bench's and brokers' own memory and CPU. A run on a
 * machine that was busy all the time says so in its report: a starved control is not a control failure.
 */
export class MachineLoad {
  private start = cpuTicks();
  private end: ReturnType<typeof cpuTicks>;
  private lastSample = cpuTicks();
  peakTotalRssMB = 0;
  private readonly helpers = new Map<string, { peakRssMB: number; cpuS: number }>();

  constructor(private readonly helperProcesses: readonly HelperProcess[]) {}

  /** The day starts now. */
  restart(): void {
    this.start = cpuTicks();
    this.lastSample = this.start;
  }

  /** One sample: `gatewaysRssMB`, the gateway processes' resident memory now, added to the helpers'. */
  sample(gatewaysRssMB: number): void {
    let total = gatewaysRssMB;
    for (const h of this.helperProcesses) {
      const pid = h.pid();
      const s = pid === undefined ? undefined : processStats(pid);
      if (!s) continue;
      total += s.rssMB;
      const seen = this.helpers.get(h.id) ?? { peakRssMB: 0, cpuS: 0 };
      this.helpers.set(h.id, { peakRssMB: Math.max(seen.peakRssMB, s.rssMB), cpuS: Math.max(seen.cpuS, s.cpuS) });
    }
    this.peakTotalRssMB = Math.max(this.peakTotalRssMB, total);
  }

  /** The machine's CPU busy since the last call (or since the bench began), %; null when unknown. */
  busyPctSinceLastCall(): number | null {
    const a = this.lastSample;
    const b = cpuTicks();
    this.lastSample = b;
    return busyPct(a, b);
  }

  /** The day is over. */
  stop(): void {
    this.end = cpuTicks();
  }

  result(): {
    cpuBusyPct: number | null;
    /** The CPU was (nearly) all taken: a late control or message is the machine's, not the gateways'. */
    saturated: boolean | null;
    peakTotalRssMB: number;
    helpers: { id: string; rssMB: number; cpuS: number }[];
  } {
    const a = this.start;
    const b = this.end ?? cpuTicks();
    const busy = busyPct(a, b);
    return {
      cpuBusyPct: busy === null ? null : Number(busy.toFixed(1)),
      saturated: busy === null ? null : busy >= SATURATED_CPU_PCT,
      peakTotalRssMB: Number(this.peakTotalRssMB.toFixed(1)),
      helpers: [...this.helpers].map(([id, h]) => ({
        id,
        rssMB: Number(h.peakRssMB.toFixed(1)),
        cpuS: Number(h.cpuS.toFixed(2)),
      })),
    };
  }
}
