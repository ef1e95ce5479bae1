import { type Clock, systemClock } from '../../core/clock.js';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { type ModbusClient, newModbusClient } from './client.js';
import { endpointKey, type ModbusEndpoint, rtuSilenceMs } from './url.js';

/** Control writes go before fast reads, fast reads before slow ones. */
export type ModbusPriority = 'write' | 'fast' | 'slow';
const RANK: Record<ModbusPriority, number> = { write: 0, fast: 1, slow: 2 };

export const MODBUS_EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

export interface ModbusBusOptions {
  timeoutMs?: number;
  /** Silence between two requests; RTU's 3.5 character times at least. */
  interFrameDelayMs?: number;
  /** Back-off of a unit after failures: doubles from `initialMs` up to `maxMs`. */
  backoff?: { initialMs: number; maxMs: number };
  clock?: Clock;
}

interface Job {
  unit: number;
  priority: ModbusPriority;
  seq: number;
  describe: string;
  run: (client: ModbusClient) => Promise<number[] | undefined>;
  resolve: (v: number[] | undefined) => void;
  reject: (err: unknown) => void;
}

export interface ModbusBusStats {
  requests: number;
  failures: number;
  timeouts: number;
  exceptions: number;
  crcErrors: number;
  reconnects: number;
  refusedBackingOff: number;
  queued: number;
}

/** The Modbus exception code an error carries, if it is one. */
export function modbusExceptionOf(err: unknown): number | undefined {
  const cause = err instanceof P2PError ? (err.cause as { modbusException?: number } | undefined) : undefined;
  return cause?.modbusException;
}

/**
 * One physical bus (a serial line or a TCP host:port) with every unit on it: one request in flight,
 * a silence between frames, a priority queue, and a back-off per unit so that a dead device is asked
 * less and less often instead of holding up the others. The link is opened lazily and reopened after
 * it is lost. Every failure is a P2PError (`driver`, recoverable) naming the unit and what happened.
 */
export class ModbusBus {
  private readonly client = newModbusClient();
  private readonly queue: Job[] = [];
  private seq = 0;
  private busy = false;
  private connected = false;
  private everConnected = false;
  private lastFrameEndMs = 0;
  private readonly unitHealth = new Map<number, { failures: number; until: number }>();
  private closed = false;
  readonly stats: ModbusBusStats = {
    requests: 0,
    failures: 0,
    timeouts: 0,
    exceptions: 0,
    crcErrors: 0,
    reconnects: 0,
    refusedBackingOff: 0,
    queued: 0,
  };
  private readonly timeoutMs: number;
  private readonly delayMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly clock: Clock;

  constructor(
    readonly endpoint: ModbusEndpoint,
    options: ModbusBusOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.delayMs = options.interFrameDelayMs ?? (endpoint.kind === 'rtu' ? Math.max(2, rtuSilenceMs(endpoint)) : 0);
    this.backoff = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.clock = options.clock ?? systemClock;
  }

  get key(): string {
    return endpointKey(this.endpoint);
  }

  readHolding(unit: number, address: number, count: number, priority: ModbusPriority = 'fast'): Promise<number[]> {
    return this.enqueue(
      unit,
      priority,
      `read holding ${address}+${count}`,
      async (c) => (await c.readHoldingRegisters(address, count)).data,
    ) as Promise<number[]>;
  }

  readInput(unit: number, address: number, count: number, priority: ModbusPriority = 'fast'): Promise<number[]> {
    return this.enqueue(
      unit,
      priority,
      `read input ${address}+${count}`,
      async (c) => (await c.readInputRegisters(address, count)).data,
    ) as Promise<number[]>;
  }

  async writeRegisters(unit: number, address: number, values: number[]): Promise<void> {
    await this.enqueue(unit, 'write', `write ${address}+${values.length}`, async (c) => {
      await c.writeRegisters(address, values);
      return undefined;
    });
  }

  /** Opens the link now (it is otherwise opened by the first request); rejects when it cannot. */
  async open(): Promise<void> {
    await this.ensureConnected();
  }

  /** Milliseconds until a unit that failed may be asked again (0 when it is healthy). */
  backingOffMs(unit: number): number {
    const h = this.unitHealth.get(unit);
    return h ? Math.max(0, h.until - this.clock.now()) : 0;
  }

  private enqueue(
    unit: number,
    priority: ModbusPriority,
    describe: string,
    run: Job['run'],
  ): Promise<number[] | undefined> {
    if (this.closed) return Promise.reject(this.error(unit, `${describe}: the bus is closed`, false));
    // Writes are never refused: a control decision must reach a device that has just come back.
    if (priority !== 'write' && this.backingOffMs(unit) > 0) {
      this.stats.refusedBackingOff++;
      return Promise.reject(
        this.error(
          unit,
          `${describe}: unit ${unit} is backing off after failures (${this.backingOffMs(unit)} ms left)`,
          true,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ unit, priority, seq: this.seq++, describe, run, resolve, reject });
      this.queue.sort((a, b) => RANK[a.priority] - RANK[b.priority] || a.seq - b.seq);
      this.stats.queued = this.queue.length;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) {
        this.stats.queued = this.queue.length;
        await this.execute(job);
      }
    } finally {
      this.busy = false;
    }
  }

  private async execute(job: Job): Promise<void> {
    try {
      await this.ensureConnected();
      const wait = this.lastFrameEndMs + this.delayMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.client.setID(job.unit);
      this.client.setTimeout(this.timeoutMs);
      this.stats.requests++;
      const value = await job.run(this.client);
      this.lastFrameEndMs = Date.now();
      this.unitHealth.delete(job.unit);
      job.resolve(value);
    } catch (err) {
      this.lastFrameEndMs = Date.now();
      job.reject(this.classify(job, err));
    }
  }

  private async ensureConnected(): Promise<void> {
    if (this.connected && this.client.isOpen) return;
    if (this.everConnected) this.stats.reconnects++;
    try {
      const e = this.endpoint;
      if (e.kind === 'tcp') await this.client.connectTCP(e.host, { port: e.port });
      else await this.connectRtu(e);
      this.connected = true;
      this.everConnected = true;
    } catch (err) {
      this.connected = false;
      if (err instanceof P2PError) throw err;
      throw new P2PError(ErrorCode.driver, `cannot open ${this.key}: ${(err as Error).message}`, {
        component: 'modbus',
        recoverable: true,
        cause: err,
      });
    }
  }

  private async connectRtu(e: Extract<ModbusEndpoint, { kind: 'rtu' }>): Promise<void> {
    try {
      await import('serialport');
    } catch (err) {
      throw new P2PError(ErrorCode.unavailable, `Modbus RTU needs the serialport module, which is not available here`, {
        component: 'modbus',
        cause: err,
        hint: 'npm ci with install scripts allowed for @serialport/bindings-cpp',
      });
    }
    await this.client.connectRTUBuffered(e.path, {
      baudRate: e.baudRate,
      parity: e.parity,
      dataBits: e.dataBits,
      stopBits: e.stopBits,
    });
  }

  /** Turns a client error into a P2PError and keeps the unit's back-off. */
  private classify(job: Job, err: unknown): P2PError {
    if (err instanceof P2PError) {
      this.fail(job.unit);
      return err;
    }
    const e = err as { message?: string; modbusCode?: number; errno?: string };
    const message = e.message ?? String(err);
    if (typeof e.modbusCode === 'number') {
      // An exception is an answer: the device is alive, so no back-off.
      this.stats.exceptions++;
      const name = MODBUS_EXCEPTIONS[e.modbusCode] ?? 'unknown exception';
      return new P2PError(
        ErrorCode.driver,
        `unit ${job.unit} on ${this.key}: ${job.describe}: Modbus exception ${e.modbusCode} (${name})`,
        {
          component: 'modbus',
          recoverable: e.modbusCode === 5 || e.modbusCode === 6,
          cause: { modbusException: e.modbusCode },
        },
      );
    }
    this.fail(job.unit);
    if (e.errno === 'ETIMEDOUT' || /timed out/i.test(message)) {
      this.stats.timeouts++;
      return this.error(job.unit, `${job.describe}: no answer within ${this.timeoutMs} ms`, true);
    }
    if (/crc/i.test(message)) {
      this.stats.crcErrors++;
      return this.error(
        job.unit,
        `${job.describe}: CRC error in the reply (noise on the line or a second master)`,
        true,
      );
    }
    // The link itself is gone (socket closed, port vanished): reopen it next time.
    this.connected = false;
    try {
      this.client.close(() => {});
    } catch {
      // already closed
    }
    return this.error(job.unit, `${job.describe}: ${message}`, true);
  }

  private fail(unit: number): void {
    this.stats.failures++;
    const failures = (this.unitHealth.get(unit)?.failures ?? 0) + 1;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (failures - 1));
    this.unitHealth.set(unit, { failures, until: this.clock.now() + delay });
  }

  private error(unit: number, message: string, recoverable: boolean): P2PError {
    return new P2PError(ErrorCode.driver, `unit ${unit} on ${this.key}: ${message}`, {
      component: 'modbus',
      recoverable,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0))
      job.reject(this.error(job.unit, `${job.describe}: the bus is closed`, false));
    if (this.client.isOpen) await new Promise<void>((resolve) => this.client.close(() => resolve()));
    this.connected = false;
  }
}

/**
 * Buses shared by every device on the same port or host:port (one request in flight per physical
 * bus), released when the last device closes.
 */
export class ModbusBusRegistry {
  private readonly buses = new Map<string, { bus: ModbusBus; users: number }>();

  constructor(private readonly options: ModbusBusOptions = {}) {}

  acquire(endpoint: ModbusEndpoint, timeoutMs?: number): ModbusBus {
    const key = endpointKey(endpoint);
    const options = timeoutMs === undefined ? this.options : { ...this.options, timeoutMs };
    const entry = this.buses.get(key) ?? { bus: new ModbusBus(endpoint, options), users: 0 };
    entry.users++;
    this.buses.set(key, entry);
    return entry.bus;
  }

  async release(bus: ModbusBus): Promise<void> {
    const entry = this.buses.get(bus.key);
    if (!entry) return;
    entry.users--;
    if (entry.users <= 0) {
      this.buses.delete(bus.key);
      await bus.close();
    }
  }
}
