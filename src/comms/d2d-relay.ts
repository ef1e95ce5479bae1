import type { Clock, TimerHandle } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { GatewayMetrics } from '../core/metrics.js';
import type { Link } from './link.js';
import type { RelayBody } from './messages/life.js';
import { RelayBudget } from './relay-budget.js';
import {
  parseRelayFramePayload,
  parseRelayFrameTopic,
  type RelayDirection,
  relayFramePayload,
  relayFrameTopic,
} from './relay-frame.js';
import { qosFor } from './reliable-delivery.js';
import { MESSAGE_CLASSES, type MessageClass, parseTopic, type TopicFilter, type TopicParts } from './topics.js';
import type { Delivery } from './transport.js';

export interface RelayOptions {
  /** Offer to relay for the cell while this gateway's broker link is up. */
  offer: boolean;
  /** Messages a second, each way, per gateway relayed for. */
  ratePerS: number;
  /** Messages waiting, each way, per gateway relayed for. */
  queueMax: number;
}

/** What the relay needs from the hybrid transport it works for. */
export interface RelayHost {
  readonly gatewayId: string;
  readonly cell: string;
  readonly mqtt: Link;
  readonly d2d: Link;
  /** How often offers and requests are repeated; an offer or a request is void after three of these. */
  readonly heartbeatMs: number;
  /** Publishes a signed `life/relay` over the sidelink (to the cell, or to `target`). */
  announce(body: RelayBody, target?: string): void;
  /** A message that came down through a relay: the transport's inbound pipeline, as for any link. */
  deliver(topic: string, payload: string): void;
  /** The outbox sends what waits for an acknowledgement again (a way to the broker opened). */
  resendAll(): void;
}

/**
 * Frames remembered to drop the sidelink's copies of one (it sends each datagram twice, milliseconds
 * apart), for less than the outbox's first resend, whose identical bytes must go through again.
 */
const RECENT_FRAMES = 512;
const COPY_WINDOW_MS = 500;

/** The classes a relay carries: everything but presence, which is tied to the gateway's own broker session. */
const RELAYED_CLASSES = MESSAGE_CLASSES.filter((c): c is Exclude<MessageClass, 'life'> => c !== 'life');

/**
 * D2D relay of a hybrid gateway, both roles. As a relay (broker link up): it offers itself to its cell
 * every heartbeat; for each member of its cell that asked (a signed `life/relay` request, renewed every
 * heartbeat), it publishes on the broker what that gateway sends it over the sidelink, and subscribes
 * to that gateway's addressed topics (acknowledgements included) and sends them down over the
 * sidelink, each way at most `ratePerS` a second with `queueMax` waiting, dropping and counting beyond.
 * As a gateway cut off (broker link down): it asks a relay it heard offering, and once it has asked,
 * what it would send over the broker goes to the relay instead (and the outbox resends at once); when
 * its broker link is back it says so and sends directly again. Messages go through unchanged: a relay
 * can drop them, not forge or read them (signed and sealed end to end).
 */
export class D2DRelay {
  /** Relays heard offering (gateway → when). */
  private readonly offers = new Map<string, number>();
  /** Gateways relayed for (gateway → last request). */
  private readonly clients = new Map<string, number>();
  private readonly budget: RelayBudget<{ direction: RelayDirection; topic: string; payload: string }>;
  private readonly recent = new Map<string, number>();
  /** The relay asked on the last heartbeat, and the one in use (asked on two heartbeats running). */
  private asked: string | undefined;
  private via: string | undefined;
  private timer: TimerHandle | undefined;
  private drainTimer: TimerHandle | undefined;

  constructor(
    private readonly host: RelayHost,
    private readonly options: RelayOptions,
    private readonly deps: { clock: Clock; log: Logger; metrics?: GatewayMetrics | undefined },
  ) {
    this.budget = new RelayBudget(options.ratePerS, options.queueMax);
  }

  start(): void {
    const beat = () => {
      this.timer = this.deps.clock.setTimeout(() => {
        this.tick(this.deps.clock.now());
        beat();
      }, this.host.heartbeatMs);
    };
    beat();
  }

  close(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    if (this.drainTimer) this.deps.clock.clearTimeout(this.drainTimer);
    this.timer = undefined;
    this.drainTimer = undefined;
    if (this.via) this.host.announce({ request: false }, this.via);
    for (const client of [...this.clients.keys()]) this.stopRelayingFor(client, 'closing');
    this.via = undefined;
  }

  /** The relay this gateway sends through, and the gateways it relays for. */
  status(): { via?: string; for: string[] } {
    return { ...(this.via ? { via: this.via } : {}), for: [...this.clients.keys()].sort() };
  }

  tick(now: number): void {
    const lease = 3 * this.host.heartbeatMs;
    const brokerUp = this.host.mqtt.status().connected;
    const sidelinkUp = this.host.d2d.status().connected;
    for (const [client, at] of this.clients) if (now - at > lease) this.stopRelayingFor(client, 'request expired');
    for (const [relay, at] of this.offers) if (now - at > lease) this.offers.delete(relay);
    if (brokerUp && sidelinkUp && this.options.offer) this.host.announce({ offer: true });
    if (!brokerUp && sidelinkUp) {
      const relay = this.via && this.offers.has(this.via) ? this.via : [...this.offers.keys()].sort()[0];
      if (relay === undefined) {
        this.asked = undefined;
        if (this.via) this.deps.log.warn({ relay: this.via }, 'D2D relay no longer heard');
        this.via = undefined;
        return;
      }
      this.host.announce({ request: true }, relay);
      // The relay takes frames only once it has the request: they go a heartbeat after the first one.
      if (this.asked === relay && this.via !== relay) {
        this.via = relay;
        this.deps.log.info({ relay }, 'broker link down: sending through a D2D relay');
        this.host.resendAll();
      }
      this.asked = relay;
    } else if (this.via || this.asked) {
      const relay = this.via ?? this.asked!;
      this.host.announce({ request: false }, relay);
      if (this.via) this.deps.log.info({ relay }, 'broker link back: no longer sending through the D2D relay');
      this.via = undefined;
      this.asked = undefined;
    }
  }

  /** A `life/relay` the inbound pipeline took (signature and membership checked). */
  heard(delivery: Delivery): void {
    const { sender, cell, target } = delivery.topic;
    if (cell !== this.host.cell || sender === this.host.gatewayId) return;
    const body = delivery.envelope.body as RelayBody;
    const now = this.deps.clock.now();
    if ('offer' in body) {
      this.offers.set(sender, now);
      return;
    }
    if (target !== this.host.gatewayId) return;
    if (!body.request) {
      this.stopRelayingFor(sender, 'asked to stop');
      return;
    }
    if (!this.options.offer || !this.host.mqtt.status().connected) return;
    if (!this.clients.has(sender)) {
      this.deps.log.info({ peer: sender }, 'relaying for a gateway cut off from the broker');
      for (const filter of this.filtersFor(sender)) this.host.mqtt.listen(filter);
    }
    this.clients.set(sender, now);
  }

  /** Sends a message meant for the broker through the relay; false when there is none in use. */
  sendUp(topic: string, payload: string): boolean {
    const relay = this.via;
    if (!relay || parseTopic(topic)?.cls === 'life') return false;
    this.sendFrame('up', relay, relay, topic, payload);
    return true;
  }

  /** A datagram of the sidelink: true when it was a relay frame (taken or refused here). */
  frame(frameTopic: string, frame: Uint8Array | string): boolean {
    const addressed = parseRelayFrameTopic(frameTopic);
    if (!addressed) return false;
    if (addressed.gateway !== this.host.gatewayId) return true;
    const carried = parseRelayFramePayload(frame);
    const parts = carried && parseTopic(carried.topic);
    if (!carried || !parts) {
      this.count('unknown', addressed.direction, 'refused');
      return true;
    }
    if (addressed.direction === 'down') {
      this.count(this.via ?? 'unknown', 'down', 'received');
      this.host.deliver(carried.topic, carried.payload);
      return true;
    }
    // Only for the members of this cell that asked, and only their own messages.
    if (!this.clients.has(parts.sender) || parts.cell !== this.host.cell || parts.cls === 'life') {
      this.count(parts.sender, 'up', 'refused');
      return true;
    }
    this.queue(parts.sender, 'up', carried.topic, carried.payload);
    return true;
  }

  /** A message from the broker: sent down when addressed to a gateway relayed for. */
  fromBroker(parts: TopicParts, topic: string, payload: Uint8Array | string): void {
    const target = parts.target;
    if (!target || !this.clients.has(target)) return;
    this.queue(target, 'down', topic, typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  }

  private queue(client: string, direction: RelayDirection, topic: string, payload: string): void {
    const now = this.deps.clock.now();
    const key = `${direction}\n${topic}\n${payload}`;
    const seen = this.recent.get(key);
    if (seen !== undefined && now - seen < COPY_WINDOW_MS) return; // the sidelink's second copy of a frame
    this.recent.delete(key);
    this.recent.set(key, now);
    if (this.recent.size > RECENT_FRAMES) this.recent.delete(this.recent.keys().next().value!);
    if (!this.budget.offer(`${client}\n${direction}`, { direction, topic, payload }, now)) {
      this.count(client, direction, 'dropped_queue');
      return;
    }
    this.drain();
  }

  private drain(): void {
    for (const { key, item } of this.budget.take(this.deps.clock.now())) {
      const client = key.slice(0, key.indexOf('\n'));
      if (item.direction === 'up') {
        const cls = parseTopic(item.topic)!.cls;
        this.host.mqtt
          .send(item.topic, item.payload, { qos: qosFor(cls), retain: false })
          .catch((err) => this.deps.log.debug({ err: errorMessage(err) }, 'relayed publish failed'));
        this.count(client, 'up', 'relayed');
      } else {
        this.sendFrame('down', client, client, item.topic, item.payload);
      }
    }
    if (this.budget.pending > 0 && !this.drainTimer)
      this.drainTimer = this.deps.clock.setTimeout(
        () => {
          this.drainTimer = undefined;
          this.drain();
        },
        Math.ceil(1000 / this.options.ratePerS),
      );
  }

  private sendFrame(direction: RelayDirection, to: string, peer: string, topic: string, payload: string): void {
    const frameTopic = relayFrameTopic(direction, to);
    const frame = relayFramePayload(topic, payload);
    try {
      this.host.d2d.assertFits(frameTopic, frame);
    } catch {
      this.count(peer, direction, 'too_big');
      return;
    }
    this.host.d2d
      .send(frameTopic, frame, { qos: 0, retain: false })
      .catch((err) => this.deps.log.debug({ err: errorMessage(err) }, 'relay frame not sent'));
    this.count(peer, direction, direction === 'up' ? 'handed' : 'relayed');
  }

  private stopRelayingFor(client: string, why: string): void {
    if (!this.clients.delete(client)) return;
    for (const filter of this.filtersFor(client)) this.host.mqtt.unlisten?.(filter);
    for (const direction of ['up', 'down'] as const) {
      const dropped = this.budget.forget(`${client}\n${direction}`);
      if (dropped > 0)
        this.deps.metrics?.relayMessages.inc({ peer: client, direction, outcome: 'dropped_queue' }, dropped);
    }
    this.deps.log.info({ peer: client, why }, 'no longer relaying for the gateway');
  }

  private filtersFor(client: string): TopicFilter[] {
    return RELAYED_CLASSES.map((cls) => ({ cell: '+', cls, target: client }));
  }

  private count(peer: string, direction: RelayDirection, outcome: string): void {
    this.deps.metrics?.relayMessages.inc({ peer, direction, outcome });
  }
}
