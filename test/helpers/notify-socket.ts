import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { eventually } from './net.js';
import { requireTool } from './system-tools.js';

/** Fails, naming the Debian packages, where the notify tests' tools are missing. */
export function requireNotifyTools(): void {
  requireTool('python3'); // plays the notify socket
  requireTool('systemd-notify'); // sends the notifications
}

// A unix datagram socket like systemd's /run/systemd/notify: prints each datagram as one JSON line
// and closes the file descriptors that systemd-notify's barrier (BARRIER=1) passes along.
const RECEIVER = `
import array, json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(json.dumps({"t": time.time() * 1000, "msg": data.decode()}), flush=True)
`;

export interface NotifyMessage {
  /** Receive time, ms since the epoch. */
  t: number;
  /** The assignments of one datagram, e.g. { READY: '1', STATUS: '...' }. */
  fields: Record<string, string>;
}

/** A notify socket in `dir` that records what arrives (BARRIER=1 datagrams left out). */
export class NotifyReceiver {
  readonly path: string;
  readonly messages: NotifyMessage[] = [];
  private readonly child: ChildProcess;
  private listening = false;

  private static opened = 0;

  private constructor(dir: string) {
    this.path = join(dir, `notify-${++NotifyReceiver.opened}.sock`);
    this.child = spawn('python3', ['-c', RECEIVER, this.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffer = '';
    this.child.stdout?.on('data', (d) => {
      buffer += d;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = JSON.parse(buffer.slice(0, nl)) as { listening?: true; t: number; msg: string };
        buffer = buffer.slice(nl + 1);
        if (line.listening) this.listening = true;
        else if (line.msg !== 'BARRIER=1') {
          const fields = Object.fromEntries(
            line.msg.split('\n').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
          );
          this.messages.push({ t: line.t, fields });
        }
      }
    });
  }

  static async open(dir: string): Promise<NotifyReceiver> {
    const r = new NotifyReceiver(dir);
    await eventually(() => (r.listening ? true : undefined), 10_000, 20);
    return r;
  }

  /** Messages that carry `key` (e.g. 'WATCHDOG'), optionally only those received after `since`. */
  with(key: string, since = 0): NotifyMessage[] {
    return this.messages.filter((m) => m.fields[key] !== undefined && m.t > since);
  }

  close(): void {
    this.child.kill();
  }
}
