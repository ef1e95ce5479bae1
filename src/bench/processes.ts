import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { GatewayState } from '../agent/gateway.js';
import { spawnOwned } from '../core/child-processes.js';

/** A gateway's status page that has not answered in this time is taken for absent. */
const STATUS_TIMEOUT_MS = 10_000;
/** A gateway not gone this long after SIGTERM is killed. */
const STOP_GRACE_MS = 30_000;

export const P2P_EDGE_BIN = join(import.meta.dirname, '..', '..', 'bin', 'p2p-edge.mjs');

/**
 * How node runs a gateway, here and in deploy/systemd/p2p-edge.service (a test keeps the two equal).
 * A gateway's hot paths are light (a control cycle every 250 ms to 1 s), so it trades CPU for memory:
 * no optimising compilers and bytecode flushed when unused (`--lite-mode`), a 1 MB young generation,
 * one GC thread and one V8 worker thread, two libuv threads. `npm run bench:node-flags` measures what
 * each saves and costs, side by side on the default bench (docs/deploy.md).
 */
export const GATEWAY_NODE_FLAGS = [
  '--lite-mode',
  '--max-semi-space-size=1',
  '--single-threaded-gc',
  '--v8-pool-size=1',
];
export const GATEWAY_NODE_ENV = { UV_THREADPOOL_SIZE: '2' };

/** How node is started for a gateway: its command-line flags and the environment added. */
export interface NodeSettings {
  flags: readonly string[];
  env: Record<string, string>;
}

/** The gateways' node settings (the systemd unit's). */
export const GATEWAY_NODE: NodeSettings = { flags: GATEWAY_NODE_FLAGS, env: GATEWAY_NODE_ENV };

export interface ProcessStats {
  rssMB: number;
  /**
   * The anonymous part of the resident memory (heaps, buffers, stacks): what the process itself
   * allocated, as opposed to pages of files it maps (its binary, libraries, shared memory).
   */
  anonMB: number;
  /** CPU time, user + system. */
  cpuS: number;
}

/** Resident memory (MB) and CPU time (s) of a running process, from /proc. */
export function processStats(pid: number): ProcessStats | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kB = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
    // Fields after the command name (which may hold spaces) in /proc/<pid>/stat; utime and stime are 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rssMB: kB('VmRSS') / 1024, anonMB: kB('RssAnon') / 1024, cpuS: ticks / 100 };
  } catch {
    return undefined;
  }
}

/** A gateway as the bench reaches it: its status page (state and metrics), and the process hosting it. */
export class BenchGateway {
  constructor(
    readonly id: string,
    readonly configFile: string,
    readonly statusPort: number,
    readonly host: ControllerProcess,
    /** Where its status page listens: loopback, or its address in its namespace (with a token). */
    readonly statusHost = '127.0.0.1',
    private readonly statusToken?: string,
  ) {}

  get running(): boolean {
    return this.host.running;
  }

  /** The gateway's `/api/state` (what `Gateway.state()` gives, as JSON); undefined while it does not answer. */
  state(): Promise<GatewayState | undefined> {
    return this.page('/api/state', async (res) => (await res.json()) as GatewayState);
  }

  metrics(): Promise<string | undefined> {
    return this.page('/metrics', (res) => res.text());
  }

  /** A page of the gateway's status server, read; undefined while it does not answer. */
  private async page<T>(path: string, read: (res: Response) => Promise<T>): Promise<T | undefined> {
    try {
      const res = await fetch(`http://${this.statusHost}:${this.statusPort}${path}`, {
        signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
        ...(this.statusToken ? { headers: { authorization: `Bearer ${this.statusToken}` } } : {}),
      });
      return res.ok ? await read(res) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** What a gateway of the bench is started from. */
export interface HostedGatewayFiles {
  id: string;
  configFile: string;
  statusPort: number;
  statusHost?: string;
  statusToken?: string;
  /** The command prefix that starts its process in its network namespace (such a gateway runs alone). */
  prefix?: string[];
}

/**
 * One controller process of the bench (`p2p-edge run --config FILE ...`) hosting one gateway or
 * several side by side, its output appended to a log file. It can be killed (SIGKILL for the fault
 * scenarios: a gateway a fault targets runs alone, so that the kill takes exactly it) and started
 * again with the same configs, as a supervisor (systemd) would.
 */
export class ControllerProcess {
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  /** Peak resident memory seen, MB, and CPU time over all runs, s. */
  peakRssMB = 0;
  /** Resident memory at the last sample, MB (undefined while the process is down). */
  rssMB: number | undefined;
  /** Anonymous part of it at the last sample, MB. */
  anonMB: number | undefined;
  private cpuOfEarlierRunsS = 0;
  private lastCpuS = 0;
  starts = 0;
  readonly gateways: BenchGateway[];
  /** `ip netns exec NS` for a gateway in a namespace of its own (which execs node: the pid is node's). */
  private readonly prefix: readonly string[];

  constructor(
    /** The gateway's id when it runs alone, else a name for the group. */
    readonly id: string,
    gateways: readonly HostedGatewayFiles[],
    readonly logFile: string,
    /** Other than the unit's only to compare settings (`npm run bench:node-flags`). */
    readonly node: NodeSettings = GATEWAY_NODE,
  ) {
    this.gateways = gateways.map(
      (g) => new BenchGateway(g.id, g.configFile, g.statusPort, this, g.statusHost, g.statusToken),
    );
    this.prefix = gateways.length === 1 ? (gateways[0]!.prefix ?? []) : [];
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    this.log ??= createWriteStream(this.logFile, { flags: 'a' });
    // Started as the systemd unit starts a gateway: the same V8 flags and thread pool.
    const configs = this.gateways.flatMap((g) => ['--config', g.configFile]);
    const [command, ...args] = [...this.prefix, process.execPath, ...this.node.flags, P2P_EDGE_BIN, 'run', ...configs];
    const child = spawnOwned(command!, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '', ...this.node.env },
    });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.child = child;
    this.lastCpuS = 0;
    this.starts++;
  }

  /** Samples memory and CPU; call it regularly while the process runs. */
  sample(): void {
    const pid = this.child?.pid;
    this.rssMB = undefined;
    this.anonMB = undefined;
    if (!pid || !this.running) return;
    const s = processStats(pid);
    if (!s) return;
    this.rssMB = s.rssMB;
    this.anonMB = s.anonMB;
    this.peakRssMB = Math.max(this.peakRssMB, s.rssMB);
    this.lastCpuS = s.cpuS;
  }

  get cpuS(): number {
    return this.cpuOfEarlierRunsS + this.lastCpuS;
  }

  async kill(signal: NodeJS.Signals): Promise<number | null> {
    if (!this.running) return this.exited;
    this.sample();
    const child = this.child!;
    child.kill(signal);
    // A gateway whose event loop is stuck never runs its SIGTERM handler: the bench must not wait forever.
    const stuck = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    const code = await this.exited;
    clearTimeout(stuck);
    this.cpuOfEarlierRunsS += this.lastCpuS;
    this.lastCpuS = 0;
    return code;
  }

  /** Resolves when the status page of every gateway it hosts answers, or rejects after `timeoutMs`. */
  async ready(timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (!this.running) throw new Error(`${this.id} exited while starting (see ${this.logFile})`);
      // Up when each gateway's own status page answers (not another process that took the port).
      const states = await Promise.all(this.gateways.map((g) => g.state()));
      if (states.every((st, i) => st?.id === this.gateways[i]!.id)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.id} did not come up within ${timeoutMs} ms (see ${this.logFile})`);
  }

  async stop(): Promise<number | null> {
    const code = await this.kill('SIGTERM');
    this.log?.end();
    return code;
  }
}
