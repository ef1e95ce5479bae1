import { execFile } from 'node:child_process';
import { ErrorCode, P2PError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { GatewayMetrics } from '../../core/metrics.js';
import { Backoff } from '../backoff.js';
import { AtChannel } from './at-channel.js';
import { LteModem, type LteStatus } from './modem.js';

export interface LteServiceConfig {
  /** The modem's AT port (e.g. /dev/ttyUSB2 of a Quectel EC25; keep ModemManager off it). */
  port: string;
  baudRate: number;
  apn?: string;
  pollMs: number;
  failuresBeforeRecovery: number;
  /** Command that cuts and restores the modem's power (GPIO PWRKEY, USB hub port); the last recovery step. */
  powerCycleCommand?: string[];
}

/**
 * The modem manager as a gateway service: opens the serial port (the `serialport` package is an
 * optional dependency, loaded only here), initialises the modem and supervises the link until stopped.
 */
export class LteService {
  private modem: LteModem | undefined;
  private channel: AtChannel | undefined;
  private closePort: (() => Promise<void>) | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Delays before reopening a vanished AT port: equal jitter from 0.5–1 s, doubling up to 15–30 s. */
  private readonly reopenBackoff: Backoff;

  constructor(
    private readonly config: LteServiceConfig,
    private readonly deps: {
      log: Logger;
      metrics?: GatewayMetrics;
      dataProbe?: () => Promise<boolean>;
      random?: () => number;
    },
  ) {
    this.reopenBackoff = new Backoff(REOPEN_INITIAL_MS, REOPEN_MAX_MS, deps.random);
  }

  async start(): Promise<void> {
    this.stopping = false;
    const channel = await this.open();
    const command = this.config.powerCycleCommand;
    this.modem = new LteModem(
      channel,
      {
        pollMs: this.config.pollMs,
        failuresBeforeRecovery: this.config.failuresBeforeRecovery,
        ...(this.config.apn ? { apn: this.config.apn } : {}),
        ...(command && command.length > 0 ? { powerCycle: () => run(command) } : {}),
        ...(this.deps.dataProbe ? { dataProbe: this.deps.dataProbe } : {}),
      },
      { log: this.deps.log, ...(this.deps.metrics ? { metrics: this.deps.metrics } : {}) },
    );
    await this.initModem();
    this.modem.start();
  }

  private async initModem(): Promise<void> {
    try {
      await this.modem?.init();
    } catch (err) {
      // A modem that does not answer yet is the supervisor's job (it climbs the recovery ladder).
      this.deps.log.warn({ err: (err as Error).message }, 'modem initialisation failed; supervising anyway');
    }
  }

  /** Opens the AT port; when it vanishes (USB reset, re-enumeration) it is opened again with back-off. */
  private async open(): Promise<AtChannel> {
    let SerialPort: typeof import('serialport').SerialPort;
    try {
      ({ SerialPort } = await import('serialport'));
    } catch (err) {
      throw new P2PError(
        ErrorCode.unavailable,
        `comms.lte: the serialport package is not installed: ${(err as Error).message}`,
        { component: 'lte', field: 'comms.lte.port' },
      );
    }
    const port = new SerialPort({ path: this.config.port, baudRate: this.config.baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) =>
      port.open((err) =>
        err
          ? reject(
              new P2PError(ErrorCode.unavailable, `comms.lte.port: cannot open ${this.config.port}: ${err.message}`, {
                component: 'lte',
                field: 'comms.lte.port',
                recoverable: true,
                hint: 'check the device path and that ModemManager does not hold the port',
              }),
            )
          : resolve(),
      ),
    );
    const channel = new AtChannel(port);
    this.channel = channel;
    this.closePort = () => new Promise((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
    port.on('close', () => {
      channel.close();
      if (this.stopping) return;
      this.deps.log.warn({ port: this.config.port }, 'modem AT port vanished; reopening');
      this.reopenBackoff.reset();
      this.reopen();
    });
    return channel;
  }

  private reopen(): void {
    this.reopenTimer = setTimeout(async () => {
      if (this.stopping) return;
      try {
        const channel = await this.open();
        this.modem?.replaceChannel(channel);
        await this.initModem();
        this.deps.log.info({ port: this.config.port }, 'modem AT port back');
      } catch {
        this.reopen();
      }
    }, this.reopenBackoff.next());
  }

  status(): LteStatus | undefined {
    return this.modem?.status();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.modem?.stop();
    this.channel?.close();
    await this.closePort?.();
  }
}

const REOPEN_INITIAL_MS = 1000;
const REOPEN_MAX_MS = 30_000;

function run(command: string[]): Promise<void> {
  const [file, ...args] = command;
  return new Promise((resolve, reject) =>
    execFile(file as string, args, { timeout: 60_000 }, (err) => (err ? reject(err) : resolve())),
  );
}
