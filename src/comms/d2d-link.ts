import { createSocket, type Socket } from 'node:dgram';
import type { Clock, TimerHandle } from '../core/clock.js';
import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { GatewayMetrics } from '../core/metrics.js';
import type { Link, LinkHost, RawPublish } from './link.js';
import { isUrgent, URGENT_PRIORITY } from './messages/catalogue.js';
import { type MessageClass, parseTopic, type TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

/**
 * D2D sidelink link: UDP over IPv6 link-local multicast on the sidelink module's interface (a
 * C-V2X module exposes PC5 as an IP interface, e.g. `rmnet_data0`; research/comms.md §5). The
 * radio has no acknowledgement, so every datagram goes out `copies` times and receivers drop the
 * copies by (sender, epoch, seq); the reliable classes still use the outbox and acks on top.
 *
 * Priority: each message class has a sidelink priority (0 most urgent … 7 background, the PPPP of
 * the module). Node cannot set IPV6_TCLASS on a socket, so the priority is the destination port
 * (`port + priority`) and the kernel sets the traffic class from it (`trafficClassRules`, nftables),
 * which the module maps to the radio priority. An urgent message of the catalogue (a bus beyond its
 * voltage limit) goes at priority 0, above its class's.
 *
 * Presence: there is no broker to keep a retained message or send a Will, so `life/online` is a
 * heartbeat every `heartbeatMs`; a peer not heard for `3 × heartbeatMs` is offline; a clean leave
 * sends a signed `life/offline`.
 *
 * Datagram: `<topic>\n<envelope JSON>` in UTF-8, at most `mtu − 48` bytes (IPv6 and UDP headers);
 * a bigger message is refused at the sender with an error naming the sizes (no fragmentation: a lost
 * fragment loses the message, and control messages are small by design).
 */

export interface D2DOptions {
  /** Network interface of the sidelink module (IPv6 link-local multicast is scoped to it). */
  interface: string;
  /** Link-local multicast group of the cell's D2D traffic. */
  group: string;
  /** Base UDP port; priority p uses port + p. */
  port: number;
  /** Link MTU in bytes (IPv6 minimum 1280). */
  mtu: number;
  /** Copies of each datagram (blind repetition). */
  copies: number;
  /** Gap between the copies. */
  copyGapMs: number;
  heartbeatMs: number;
}

export const D2D_DEFAULTS: Omit<D2DOptions, 'interface'> = {
  group: 'ff02::7032',
  port: 47_000,
  mtu: 1280,
  copies: 2,
  copyGapMs: 2,
  heartbeatMs: 1000,
};

const IPV6_UDP_HEADERS = 48;

/** Sidelink priority by class: control loops first, market next, readings and presence last. */
export const D2D_PRIORITY: Record<MessageClass, number> = {
  cmd: 1,
  dr: 1,
  gossip: 2,
  mkt: 3,
  meter: 5,
  settle: 5,
  life: 6,
};

/** IPv6 traffic class (DSCP << 2) for each priority: EF for 0-1, AF41, AF31, AF21, CS1 (background). */
export const PRIORITY_DSCP = [46, 46, 34, 26, 18, 18, 8, 8] as const;

/** nftables rules that set the traffic class from the priority port (loaded with `nft -f`). */
export function trafficClassRules(o: Pick<D2DOptions, 'interface' | 'port'>, table = 'p2p_d2d'): string {
  const rules = PRIORITY_DSCP.map(
    (dscp, p) => `    oifname "${o.interface}" udp dport ${o.port + p} counter ip6 dscp set ${dscp}`,
  ).join('\n');
  return `table ip6 ${table} {\n  chain out {\n    type filter hook output priority mangle; policy accept;\n${rules}\n  }\n}\n`;
}

export class D2DLink implements Link {
  readonly backend = 'd2d';
  private sockets: Socket[] = [];
  private sender: Socket | undefined;
  private heartbeat: TimerHandle | undefined;
  private readonly heard = new Map<string, { cell: string; at: number }>();
  private up = false;
  private host: LinkHost | undefined;
  readonly options: D2DOptions;

  constructor(
    options: Partial<D2DOptions> & { interface: string },
    private readonly deps: { clock: Clock; log: Logger; metrics?: GatewayMetrics | undefined },
  ) {
    this.options = { ...D2D_DEFAULTS, ...options };
    if (this.options.mtu < 1280)
      throw new P2PError(ErrorCode.config, `comms.d2d.mtu ${this.options.mtu}: IPv6 needs at least 1280`, {
        field: 'comms.d2d.mtu',
      });
  }

  async start(host: LinkHost): Promise<void> {
    this.host = host;
    const { interface: iface, group, port } = this.options;
    try {
      for (let p = 0; p < PRIORITY_DSCP.length; p++) {
        const socket = createSocket({ type: 'udp6', reuseAddr: true });
        socket.on('message', (msg) => this.onDatagram(msg));
        socket.on('error', (err) => this.deps.log.warn({ err: err.message }, 'D2D socket error'));
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind(port + p, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        socket.addMembership(group, `::%${iface}`);
        this.sockets.push(socket);
      }
      const sender = createSocket({ type: 'udp6', reuseAddr: true });
      await new Promise<void>((resolve) => sender.bind(0, () => resolve()));
      sender.setMulticastInterface(`::%${iface}`);
      sender.setMulticastLoopback(true); // other gateways' processes on the same host (bench, tests)
      sender.setMulticastTTL(1);
      this.sender = sender;
    } catch (err) {
      this.closeSockets();
      throw new P2PError(ErrorCode.comms, `D2D: cannot use ${group} on interface ${iface}: ${errorMessage(err)}`, {
        component: 'd2d',
        field: 'comms.d2d.interface',
        hint: 'the interface must exist, be up and have the MULTICAST flag (ip link set IFACE multicast on)',
        recoverable: true,
      });
    }
    this.up = true;
    await this.beat();
    host.linkUp(false);
  }

  private async beat(): Promise<void> {
    const now = this.deps.clock.now();
    const host = this.host!;
    await this.send(host.onlineTopic, host.onlinePayload(), { qos: 0, retain: false });
    for (const [id, h] of this.heard) {
      if (now - h.at > 3 * this.options.heartbeatMs) {
        this.heard.delete(id);
        host.peerSilent(id, h.cell, now);
      }
    }
    this.heartbeat = this.deps.clock.setTimeout(() => {
      if (this.up) this.beat().catch(() => undefined);
    }, this.options.heartbeatMs);
  }

  async close(): Promise<void> {
    if (!this.up) return;
    if (this.heartbeat) this.deps.clock.clearTimeout(this.heartbeat);
    const bye = this.host!.offlinePayload();
    await this.send(bye.topic, bye.payload, { qos: 0, retain: false });
    this.up = false;
    this.closeSockets();
    this.host!.linkDown();
  }

  private closeSockets(): void {
    for (const s of this.sockets) s.close();
    this.sender?.close();
    this.sockets = [];
    this.sender = undefined;
  }

  status(): TransportStatus {
    return {
      backend: 'd2d',
      connected: this.up,
      endpoint: `[${this.options.group}%${this.options.interface}]:${this.options.port}`,
    };
  }

  assertFits(topic: string, payload: string): void {
    const size = Buffer.byteLength(topic) + 1 + Buffer.byteLength(payload);
    const limit = this.options.mtu - IPV6_UDP_HEADERS;
    if (size > limit) {
      throw new P2PError(
        ErrorCode.comms,
        `D2D: a datagram of ${size} bytes does not fit the ${this.options.mtu}-byte MTU (at most ${limit} bytes of topic and envelope)`,
        { component: 'd2d', hint: 'send less per message over the sidelink, or send it over MQTT' },
      );
    }
  }

  async send(topic: string, payload: string, _options: RawPublish): Promise<void> {
    const sender = this.sender;
    if (!sender || !this.up) return;
    const parts = parseTopic(topic);
    const priority = !parts ? 7 : isUrgent(parts.cls, parts.type) ? URGENT_PRIORITY : D2D_PRIORITY[parts.cls];
    const datagram = Buffer.from(`${topic}\n${payload}`);
    const address = `${this.options.group}%${this.options.interface}`;
    const port = this.options.port + priority;
    for (let copy = 0; copy < this.options.copies; copy++) {
      if (copy > 0 && this.options.copyGapMs > 0) await new Promise((r) => setTimeout(r, this.options.copyGapMs));
      await new Promise<void>((resolve) => {
        sender.send(datagram, port, address, (err) => {
          if (err) this.deps.log.debug({ err: err.message }, 'D2D send failed');
          resolve();
        });
      });
    }
  }

  /** Every message is heard on the interface; the handlers' filters pick what they want. */
  listen(_filter: TopicFilter): void {}

  private onDatagram(msg: Buffer): void {
    const newline = msg.indexOf(0x0a);
    if (newline <= 0 || newline === msg.length - 1) {
      this.deps.metrics?.messagesRejected.inc({ reason: 'schema' });
      return;
    }
    const topic = msg.subarray(0, newline).toString('utf8');
    this.host?.receive(topic, msg.subarray(newline + 1));
  }

  presenceHeard(sender: string, cell: string, online: boolean, now: number): void {
    if (online) this.heard.set(sender, { cell, at: now });
    else this.heard.delete(sender);
  }
}
