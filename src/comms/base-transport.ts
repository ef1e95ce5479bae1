import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { decodeEnvelope, EnvelopeStamper } from './envelope.js';
import { PresenceTable } from './presence.js';
import { type MessageClass, matchesFilter, parseTopic, type TopicFilter, topicFor } from './topics.js';
import type { DeliveryHandler, OnlineBody, PeerInfo, PublishOptions, Transport, TransportStatus } from './transport.js';

export interface TransportIdentity {
  gatewayId: string;
  cell: string;
  role: string;
  version: string;
  /** Raw Ed25519 public key, base64url (empty until identities are provisioned). */
  publicKey: string;
}

export interface TransportDeps {
  clock: Clock;
  log: Logger;
  metrics?: GatewayMetrics;
}

export interface RawPublish {
  qos: 0 | 1;
  retain: boolean;
}

/** Market and demand-response messages must arrive; gossip and heartbeats tolerate loss. */
export function qosFor(cls: MessageClass): 0 | 1 {
  return cls === 'mkt' || cls === 'dr' ? 1 : 0;
}

/**
 * What every backend shares: stamping envelopes, checking and dispatching received ones, presence,
 * and the message counters. A backend supplies only how bytes move (`sendRaw`, `listen`).
 */
export abstract class BaseTransport implements Transport {
  protected readonly stamper: EnvelopeStamper;
  protected readonly presence: PresenceTable;
  private readonly handlers: { filter: TopicFilter; handler: DeliveryHandler }[] = [];

  constructor(
    protected readonly identity: TransportIdentity,
    protected readonly deps: TransportDeps,
  ) {
    this.stamper = new EnvelopeStamper(identity.gatewayId, deps.clock);
    this.presence = new PresenceTable((peer) => {
      deps.metrics?.peerUp.set({ peer: peer.id }, peer.online ? 1 : 0);
      deps.log.info({ peer: peer.id, online: peer.online }, peer.online ? 'peer online' : 'peer offline');
    });
  }

  abstract start(): Promise<void>;
  abstract close(): Promise<void>;
  abstract status(): TransportStatus;
  protected abstract sendRaw(topic: string, payload: string, options: RawPublish): Promise<void>;
  /** Starts delivering messages that match the MQTT-style patterns of `filter`. */
  protected abstract listen(filter: TopicFilter): void;

  protected get onlineTopic(): string {
    return topicFor({ cell: this.identity.cell, sender: this.identity.gatewayId, cls: 'life', type: 'online' });
  }

  protected onlinePayload(): string {
    const body: OnlineBody = {
      online: true,
      role: this.identity.role,
      publicKey: this.identity.publicKey,
      version: this.identity.version,
    };
    return JSON.stringify(this.stamper.stamp('life', 'online', body));
  }

  async publish(cls: MessageClass, type: string, body: unknown, options: PublishOptions = {}): Promise<void> {
    const topic = topicFor({
      cell: this.identity.cell,
      sender: this.identity.gatewayId,
      cls,
      type,
      ...(options.target ? { target: options.target } : {}),
    });
    const envelope = this.stamper.stamp(cls, type, body, options.ttlMs);
    await this.sendRaw(topic, JSON.stringify(envelope), { qos: qosFor(cls), retain: options.retain ?? false });
    this.deps.metrics?.messagesSent.inc({ class: cls });
  }

  subscribe(filter: TopicFilter, handler: DeliveryHandler): void {
    this.handlers.push({ filter, handler });
    this.listen(filter);
  }

  peers(): PeerInfo[] {
    return this.presence.list();
  }

  /** Entry point for every received message. Never throws: a bad message is counted and dropped. */
  protected handleIncoming(topic: string, payload: Uint8Array | string): void {
    const parts = parseTopic(topic);
    if (!parts) return;
    const now = this.deps.clock.now();
    const empty = typeof payload === 'string' ? payload.length === 0 : payload.byteLength === 0;
    if (parts.cls === 'life' && parts.type === 'online' && empty) {
      this.presence.offline(parts.sender, parts.cell, now);
      return;
    }
    const decoded = decodeEnvelope(payload, now);
    if (!decoded.ok) {
      this.deps.metrics?.messagesRejected.inc({ reason: decoded.reason });
      this.deps.log.debug({ topic, reason: decoded.reason }, 'message rejected');
      return;
    }
    const { envelope } = decoded;
    if (envelope.sender !== parts.sender) {
      this.deps.metrics?.messagesRejected.inc({ reason: 'schema' });
      return;
    }
    if (parts.cls === 'life' && parts.type === 'online') {
      const role = (envelope.body as Partial<OnlineBody> | null)?.role;
      this.presence.online(parts.sender, parts.cell, typeof role === 'string' ? role : undefined, now);
    }
    if (envelope.sender === this.identity.gatewayId) return;
    this.deps.metrics?.messagesReceived.inc({ class: parts.cls });
    for (const { filter, handler } of this.handlers) {
      if (!matchesFilter(parts, filter)) continue;
      try {
        handler({ topic: parts, envelope });
      } catch (err) {
        this.deps.log.error({ err, topic }, 'message handler failed');
      }
    }
  }
}
