import type { Duplex } from 'node:stream';

/**
 * A scripted Quectel-like modem on the far end of a pty: answers the AT commands the modem manager
 * sends, with state that a test changes (registration, signal, PDP context, failures, hangs), and
 * can send URCs. It records the commands in the order they arrived and flags any command that
 * arrived while the previous one was still unanswered.
 */
export class MockModem {
  stat = 1;
  csqRssi = 20;
  pdpActive = true;
  /** Commands the modem never answers. */
  hung = new Set<string>();
  /** The command that brings the data link back (a recovery step that works), or none. */
  fixedBy: string | undefined;
  /** Commands answered with `+CME ERROR: 30` (no network service). */
  failing = new Set<string>();
  answerDelayMs = 5;
  readonly received: string[] = [];
  overlapped = false;
  private busy = false;
  private buffer = '';

  constructor(private readonly port: Duplex) {
    port.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      for (;;) {
        const i = this.buffer.indexOf('\r');
        if (i < 0) break;
        const cmd = this.buffer.slice(0, i).trim();
        this.buffer = this.buffer.slice(i + 1);
        if (cmd) this.onCommand(cmd);
      }
    });
  }

  urc(line: string): void {
    this.port.write(`\r\n${line}\r\n`);
  }

  private onCommand(cmd: string): void {
    if (this.busy) this.overlapped = true;
    this.received.push(cmd);
    if (this.hung.has(cmd)) return;
    this.busy = true;
    setTimeout(() => {
      this.busy = false;
      this.port.write(
        this.answer(cmd)
          .map((l) => `\r\n${l}\r\n`)
          .join(''),
      );
    }, this.answerDelayMs);
  }

  private answer(cmd: string): string[] {
    if (this.failing.has(cmd)) return ['+CME ERROR: 30'];
    if (cmd === this.fixedBy) this.pdpActive = true;
    switch (cmd) {
      case 'ATE0':
      case 'AT+CMEE=1':
      case 'AT+CEREG=2':
      case 'AT+CGACT=0,1':
      case 'AT+CGACT=1,1':
      case 'AT+CFUN=0':
      case 'AT+CFUN=1':
      case 'AT+CFUN=1,1':
        return ['OK'];
      case 'AT+CSQ':
        return [`+CSQ: ${this.csqRssi},99`, 'OK'];
      case 'AT+CEREG?':
        return [`+CEREG: 2,${this.stat},"1A2B","01A2D001",7`, 'OK'];
      case 'AT+QCSQ':
        return ['+QCSQ: "LTE",-65,-95,150,-9', 'OK'];
      case 'AT+CGACT?':
        return [`+CGACT: 1,${this.pdpActive ? 1 : 0}`, 'OK'];
      default:
        return cmd.startsWith('AT+CGDCONT=') ? ['OK'] : ['ERROR'];
    }
  }
}
