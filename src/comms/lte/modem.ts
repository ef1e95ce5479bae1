import type { Logger } from '../../core/log.js';
import type { GatewayMetrics } from '../../core/metrics.js';
import type { AtChannel } from './at-channel.js';

/**
 * LTE modem manager: registration, signal and data-link supervision over the AT channel, with an
 * escalating recovery ladder (research/comms.md §4; eg25-manager does the same): re-attach the PDP
 * context → radio off/on (`AT+CFUN=0/1`) → modem reset (`AT+CFUN=1,1`) → power cycle through a
 * hook (GPIO PWRKEY or USB power), because AT resets fail on a hung modem. The ladder climbs one
 * step each time the link stays down after a step, and starts again at the bottom after the link
 * has been healthy for `resetLadderAfterMs`.
 */

export type Registration = 'home' | 'roaming' | 'searching' | 'denied' | 'not-registered' | 'unknown';

/** `+CEREG`/`+CREG` <stat> (3GPP TS 27.007 §10.1.22). */
const REGISTRATION: Record<number, Registration> = {
  0: 'not-registered',
  1: 'home',
  2: 'searching',
  3: 'denied',
  4: 'unknown',
  5: 'roaming',
};

/** `+CSQ: <rssi>,<ber>`: rssi 0 → ≤ −113 dBm, n → −113 + 2n dBm up to 31 (≥ −51 dBm), 99 unknown. */
export function parseCsq(line: string): { rssiDbm?: number; ber?: number } {
  const m = /^\+CSQ:\s*(\d+),\s*(\d+)/.exec(line);
  if (!m) return {};
  const rssi = Number(m[1]);
  const ber = Number(m[2]);
  return {
    ...(rssi <= 31 ? { rssiDbm: -113 + 2 * rssi } : {}),
    ...(ber <= 7 ? { ber } : {}),
  };
}

/** Registration from `+CEREG: <n>,<stat>[,...]` (query answer) or the URC `+CEREG: <stat>[,...]`. */
export function parseCereg(line: string, isUrc: boolean): Registration | undefined {
  const m = /^\+C(?:E|G)?REG:\s*(.*)$/.exec(line);
  if (!m) return undefined;
  const fields = m[1]!.split(',').map((f) => f.trim());
  const stat = isUrc ? fields[0] : fields[1];
  // only a decimal <stat> counts: an empty field or "1E0" is no status (Number() would read 0 and 1)
  return stat !== undefined && /^\d{1,3}$/.test(stat) ? (REGISTRATION[Number(stat)] ?? 'unknown') : 'unknown';
}

export interface LteSignal {
  rat?: string;
  rssiDbm?: number;
  rsrpDbm?: number;
  sinrDb?: number;
  rsrqDb?: number;
}

/**
 * Quectel `+QCSQ: "LTE",<rssi>,<rsrp>,<sinr>,<rsrq>` (SINR in 1/5 dB from −20 dB: dB = v/5 − 20)
 * or `+QCSQ: "NOSERVICE"`.
 */
export function parseQcsq(line: string): LteSignal {
  // at most 4 digits a value: longer fields are garbage (and would read as Infinity), not a signal
  const m = /^\+QCSQ:\s*"([^"]+)"(?:,(-?\d{1,4}),(-?\d{1,4}),(-?\d{1,4}),(-?\d{1,4})(?!\d))?/.exec(line);
  if (!m) return {};
  if (m[2] === undefined) return { rat: m[1]! };
  return {
    rat: m[1]!,
    rssiDbm: Number(m[2]),
    rsrpDbm: Number(m[3]),
    sinrDb: Number(m[4]) / 5 - 20,
    rsrqDb: Number(m[5]),
  };
}

export const RECOVERY_STEPS = ['reattach', 'radio-restart', 'modem-reset', 'power-cycle'] as const;
export type RecoveryStep = (typeof RECOVERY_STEPS)[number];

export interface LteModemOptions {
  apn?: string;
  pollMs: number;
  /** Polls in a row with the link down before the next recovery step. */
  failuresBeforeRecovery: number;
  resetLadderAfterMs: number;
  /** Cuts and restores the modem's power (GPIO, USB hub); the last step, absent on some boards. */
  powerCycle?: () => Promise<void>;
  /** An end-to-end check of the data link (e.g. the MQTT connection is up); PDP context state otherwise. */
  dataProbe?: () => Promise<boolean>;
}

export const LTE_DEFAULTS: LteModemOptions = {
  pollMs: 10_000,
  failuresBeforeRecovery: 3,
  resetLadderAfterMs: 10 * 60_000,
};

export interface LteStatus extends LteSignal {
  registration: Registration;
  ber?: number;
  dataLink: boolean;
  /** Next recovery step if the link fails again. */
  nextRecovery: RecoveryStep;
  recoveries: number;
  lastError: string | null;
}

export class LteModem {
  private registration: Registration = 'unknown';
  private signal: LteSignal & { ber?: number } = {};
  private dataLink = false;
  private step = 0;
  private failures = 0;
  private healthySince: number | undefined;
  private recoveries = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  readonly options: LteModemOptions;

  constructor(
    private at: AtChannel,
    options: Partial<LteModemOptions>,
    private readonly deps: { log: Logger; metrics?: GatewayMetrics; now?: () => number },
  ) {
    this.options = { ...LTE_DEFAULTS, ...options };
    at.on('urc', (line) => this.onUrc(line));
  }

  /** After the AT port came back (a USB modem re-enumerates after a reset): talk over the new one. */
  replaceChannel(at: AtChannel): void {
    this.at = at;
    at.on('urc', (line) => this.onUrc(line));
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Echo off, numeric CME errors, registration URCs with location, the APN. */
  async init(): Promise<void> {
    await this.at.send('ATE0');
    await this.at.send('AT+CMEE=1');
    await this.at.send('AT+CEREG=2');
    if (this.options.apn) await this.at.send(`AT+CGDCONT=1,"IP","${this.options.apn.replace(/"/g, '')}"`);
  }

  /** Starts polling and supervising every `pollMs`. */
  start(): void {
    this.running = true;
    const loop = async () => {
      if (!this.running) return;
      await this.supervise().catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'modem poll failed'));
      if (this.running) this.timer = setTimeout(loop, this.options.pollMs);
    };
    void loop();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }

  status(): LteStatus {
    return {
      registration: this.registration,
      ...this.signal,
      dataLink: this.dataLink,
      nextRecovery: RECOVERY_STEPS[this.step]!,
      recoveries: this.recoveries,
      lastError: this.lastError,
    };
  }

  /** Reads registration, signal and the data link. */
  async poll(): Promise<LteStatus> {
    const csq = await this.at.send({ command: 'AT+CSQ', prefix: '+CSQ:', timeoutMs: 1000 });
    const cereg = await this.at.send({ command: 'AT+CEREG?', prefix: '+CEREG:', timeoutMs: 1000 });
    this.registration = parseCereg(cereg.lines[0] ?? '', false) ?? 'unknown';
    let signal: LteSignal & { ber?: number } = parseCsq(csq.lines[0] ?? '');
    try {
      const q = await this.at.send({ command: 'AT+QCSQ', prefix: '+QCSQ:', timeoutMs: 1000 });
      const { rssiDbm: _csqRssi, ...extra } = parseQcsq(q.lines[0] ?? '');
      signal = { ...signal, ...extra };
    } catch {
      // Not a Quectel modem: CSQ is all there is.
    }
    this.signal = signal;
    this.dataLink = await this.checkDataLink();
    this.lastError = null;
    this.publishMetrics();
    return this.status();
  }

  private async checkDataLink(): Promise<boolean> {
    if (this.options.dataProbe) return this.options.dataProbe().catch(() => false);
    const r = await this.at.send({ command: 'AT+CGACT?', prefix: '+CGACT:', timeoutMs: 2000 });
    return r.lines.some((l) => /^\+CGACT:\s*1,\s*1/.test(l));
  }

  /** One supervision round: poll; when the link stayed down, take the next recovery step. */
  async supervise(): Promise<LteStatus> {
    try {
      await this.poll();
    } catch (err) {
      this.lastError = (err as Error).message;
      this.dataLink = false;
    }
    const now = this.now();
    const registered = this.registration === 'home' || this.registration === 'roaming';
    if (registered && this.dataLink) {
      this.failures = 0;
      this.healthySince ??= now;
      if (this.step > 0 && now - this.healthySince >= this.options.resetLadderAfterMs) this.step = 0;
      return this.status();
    }
    this.healthySince = undefined;
    this.failures += 1;
    if (this.failures >= this.options.failuresBeforeRecovery) {
      this.failures = 0;
      await this.recover(RECOVERY_STEPS[this.step]!);
      this.step = Math.min(this.step + 1, RECOVERY_STEPS.length - 1);
    }
    return this.status();
  }

  private async recover(step: RecoveryStep): Promise<void> {
    this.recoveries += 1;
    this.deps.metrics?.lteRecoveries.inc({ step });
    this.deps.log.warn({ step, registration: this.registration }, 'LTE link down: recovering');
    try {
      switch (step) {
        case 'reattach':
          await this.at.send({ command: 'AT+CGACT=0,1', timeoutMs: 40_000 }).catch(() => undefined);
          await this.at.send({ command: 'AT+CGACT=1,1', timeoutMs: 150_000 });
          break;
        case 'radio-restart':
          await this.at.send({ command: 'AT+CFUN=0', timeoutMs: 15_000 });
          await this.at.send({ command: 'AT+CFUN=1', timeoutMs: 15_000 });
          break;
        case 'modem-reset':
          await this.at.send({ command: 'AT+CFUN=1,1', timeoutMs: 15_000 });
          break;
        case 'power-cycle':
          if (!this.options.powerCycle) throw new Error('no power-cycle hook configured');
          await this.options.powerCycle();
          break;
      }
    } catch (err) {
      this.lastError = `${step}: ${(err as Error).message}`;
      this.deps.log.error({ step, err: (err as Error).message }, 'LTE recovery step failed');
    }
  }

  private onUrc(line: string): void {
    const reg = parseCereg(line, true);
    if (reg && line.startsWith('+CEREG:')) {
      if (reg !== this.registration) this.deps.log.info({ registration: reg }, 'LTE registration changed');
      this.registration = reg;
      this.publishMetrics();
    } else if (line === 'RDY' || line === 'POWERED DOWN') {
      this.deps.log.info({ urc: line }, 'modem');
      this.dataLink = false;
    }
  }

  private publishMetrics(): void {
    const m = this.deps.metrics;
    if (!m) return;
    m.lteRegistered.set(this.registration === 'home' || this.registration === 'roaming' ? 1 : 0);
    if (this.signal.rssiDbm !== undefined) m.lteRssi.set(this.signal.rssiDbm);
    if (this.signal.rsrpDbm !== undefined) m.lteRsrp.set(this.signal.rsrpDbm);
    if (this.signal.sinrDb !== undefined) m.lteSinr.set(this.signal.sinrDb);
    if (this.signal.rsrqDb !== undefined) m.lteRsrq.set(this.signal.rsrqDb);
  }
}

/** The modem status as flat radio fields for `LinkQuality.radio`. */
export function radioFields(status: LteStatus | undefined): Record<string, number | string> | undefined {
  if (!status) return undefined;
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(status)) {
    if (typeof v === 'number' || typeof v === 'string') out[k] = v;
    else if (typeof v === 'boolean') out[k] = v ? 1 : 0;
  }
  return out;
}
