import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { ErrorCode, P2PError } from '../../core/errors.js';

/**
 * The AT command layer of a cellular modem (3GPP TS 27.007 and the Quectel EC25 manual): one command
 * in flight at a time, the rest queued; a timeout per command (Quectel lists a maximum response time
 * for each: CSQ < 300 ms, CFUN up to 15 s, COPS=? minutes); final results `OK`, `ERROR`,
 * `+CME ERROR: <n>`, `+CMS ERROR: <n>`; echo dropped; unsolicited result codes (URCs such as
 * `+CEREG: 1`, `RDY`, `POWERED DOWN`) interleaved with responses are told apart by the command's
 * response prefix and emitted as `urc` events.
 */

export interface AtCommand {
  command: string;
  /** Information lines of this command start with this (e.g. "+CSQ:"); other lines are URCs. */
  prefix?: string;
  timeoutMs?: number;
}

export interface AtResponse {
  command: string;
  lines: string[];
}

/** The modem answered with an error (`ERROR`, `+CME ERROR: n`): a clean failure, not a timeout. */
export class AtCommandError extends P2PError {
  constructor(
    readonly atCommand: string,
    readonly result: string,
    /** The numeric CME/CMS error code, when the modem gave one (`AT+CMEE=1`). */
    readonly cmeError: number | undefined,
  ) {
    super(ErrorCode.comms, `modem: ${atCommand} failed: ${result}`, { component: 'lte', recoverable: true });
  }
}

const FINAL_OK = /^OK$/;
const FINAL_ERROR = /^(ERROR|NO CARRIER|NO DIALTONE|BUSY|NO ANSWER|\+CM[ES] ERROR:\s*(.+))$/;
const DEFAULT_TIMEOUT_MS = 2000;
/**
 * Longest line kept while waiting for its line end (the longest answers, `+COPS=?`, are about 1 kB).
 * Bytes without a line end beyond it are noise (a wrong baud rate, a modem booting) and are dropped.
 */
export const MAX_AT_LINE = 4096;

interface Pending extends Required<Pick<AtCommand, 'command'>> {
  prefix: string | undefined;
  timeoutMs: number;
  lines: string[];
  resolve: (r: AtResponse) => void;
  reject: (e: Error) => void;
}

export interface AtChannelEvents {
  urc: [line: string];
}

export class AtChannel extends EventEmitter<AtChannelEvents> {
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private buffer = '';
  /** Keeps a UTF-8 character that a read cut in two whole (operator names are UTF-8). */
  private readonly decoder = new StringDecoder('utf8');
  private closed = false;

  constructor(private readonly port: Duplex) {
    super();
    port.on('data', (chunk: Buffer | string) =>
      this.onData(typeof chunk === 'string' ? chunk : this.decoder.write(chunk)),
    );
  }

  /** Queues a command; resolves with its information lines on `OK`. */
  send(cmd: AtCommand | string): Promise<AtResponse> {
    const c = typeof cmd === 'string' ? { command: cmd } : cmd;
    if (this.closed) return Promise.reject(new P2PError(ErrorCode.comms, 'modem: port closed', { component: 'lte' }));
    return new Promise((resolve, reject) => {
      this.queue.push({
        command: c.command,
        prefix: c.prefix,
        timeoutMs: c.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        lines: [],
        resolve,
        reject,
      });
      this.next();
    });
  }

  get pending(): number {
    return this.queue.length + (this.current ? 1 : 0);
  }

  /** Fails everything queued; later sends fail at once. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const err = new P2PError(ErrorCode.comms, 'modem: port closed', { component: 'lte' });
    this.current?.reject(err);
    for (const p of this.queue.splice(0)) p.reject(err);
    this.current = undefined;
  }

  private next(): void {
    if (this.current || this.closed) return;
    const p = this.queue.shift();
    if (!p) return;
    this.current = p;
    this.timer = setTimeout(() => {
      this.current = undefined;
      p.reject(
        new P2PError(ErrorCode.comms, `modem: no answer to ${p.command} within ${p.timeoutMs} ms`, {
          component: 'lte',
          recoverable: true,
        }),
      );
      this.next();
    }, p.timeoutMs);
    this.port.write(`${p.command}\r`);
  }

  private onData(text: string): void {
    this.buffer += text;
    for (;;) {
      const i = this.buffer.search(/[\r\n]/);
      if (i < 0) break;
      const line = this.buffer.slice(0, i).trim();
      this.buffer = this.buffer.slice(i + 1);
      if (line.length > 0) this.onLine(line);
    }
    if (this.buffer.length > MAX_AT_LINE) this.buffer = '';
  }

  private onLine(line: string): void {
    const p = this.current;
    if (!p) {
      this.emit('urc', line);
      return;
    }
    if (line === p.command) return; // echo (ATE1)
    if (FINAL_OK.test(line)) {
      this.finish(p, undefined);
      return;
    }
    const error = FINAL_ERROR.exec(line);
    if (error) {
      const code = error[2] !== undefined && /^\d+$/.test(error[2].trim()) ? Number(error[2]) : undefined;
      this.finish(p, new AtCommandError(p.command, line, code));
      return;
    }
    if (p.prefix ? line.startsWith(p.prefix) : !looksLikeUrc(line)) p.lines.push(line);
    else this.emit('urc', line);
  }

  private finish(p: Pending, err: Error | undefined): void {
    if (this.timer) clearTimeout(this.timer);
    this.current = undefined;
    if (err) p.reject(err);
    else p.resolve({ command: p.command, lines: p.lines });
    this.next();
  }
}

/** URCs a command without a response prefix must not swallow. */
function looksLikeUrc(line: string): boolean {
  return /^(\+CEREG:|\+CREG:|\+CGREG:|\+QIURC:|\+QIND:|\+CPIN:|RDY$|POWERED DOWN$|\+CFUN:)/.test(line);
}
