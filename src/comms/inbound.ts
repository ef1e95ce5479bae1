import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { LogThrottle } from '../core/log-throttle.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { OngoingProblems } from '../core/ongoing-problems.js';
import { decodeEnvelope } from './envelope.js';
import { ACK_TYPE, type AckBody } from './messages/ack.js';
import { checkBody, isSuperseded } from './messages/catalogue.js';
import type { OnlineBody } from './messages/life.js';
import type { PresenceTable } from './presence.js';
import { isReliable } from './reliable-delivery.js';
import { type ReplayGuard, STREAM_COUNT, TARGETED_STREAM } from './replay-guard.js';
import type { MessageSecurity, OpenedBody } from './security.js';
import { type MessageClass, matchesFilter, parseTopic, type TopicFilter, type TopicParts } from './topics.js';
import type { DeliveryHandler, Envelope } from './transport.js';

/** Bodies refused by the catalogue are logged at most this often per kind and problem (the metric counts each). */
const SCHEMA_LOG_EVERY_MS = 60_000;

const messageKey = (e: Envelope): string => `${e.sender}:${e.epoch}:${e.seq}`;

/** The transport's dependencies the pipeline reads (the transport's own `TransportDeps` object). */
export interface InboundDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: GatewayMetrics | undefined;
  readonly security?: MessageSecurity | undefined;
}

export interface InboundHandler {
  filter: TopicFilter;
  handler: DeliveryHandler;
  acknowledge: boolean;
  idempotent: boolean;
  /** Registered with `Transport.on`: handed only bodies the message catalogue takes, as it parsed them. */
  checked: boolean;
}

/** What the inbound pipeline hands on: acknowledgements to send and received, presence to a backend, state to save. */
export interface InboundSinks {
  /** Sends the acknowledgement of a message its handlers took (`resend`: of one taken before). */
  acknowledge(parts: TopicParts, envelope: Envelope, resend?: boolean): void;
  /** An acknowledgement addressed to this gateway arrived. */
  acknowledged(parts: TopicParts, ack: Envelope<AckBody>, now: number): void;
  /** Backends without a broker (D2D) track presence themselves from what is heard. */
  presenceChanged(sender: string, cell: string, online: boolean, now: number): void;
  /** The replay state changed (the transport saves it with its next write). */
  replayStateChanged(): void;
}

/**
 * Everything a received message goes through before the application sees it, in this order: topic,
 * size, JSON and envelope schema, time window, sender = topic sender, membership and signature,
 * replay and duplicates; then presence and acknowledgements; then a confidential body opened (or
 * refused: in the clear, not sealed to this gateway, failing authentication); then, for the handlers
 * registered with `Transport.on`, the body against the message catalogue (`checkBody`); then the
 * handlers, and the acknowledgement once they took it. Every refusal is counted in `p2p_messages_rejected_total{reason}`;
 * nothing here throws.
 */
export class InboundPipeline {
  private readonly handlers: InboundHandler[] = [];
  /** Messages whose handlers have not finished yet (`messageKey`): not acknowledged before they have. */
  private readonly inHandlers = new Set<string>();
  /** When each peer was last heard from (ms). */
  readonly lastHeard = new Map<string, number>();
  /** Received and missing messages per class over all peers (gap accounting). */
  private readonly classCounts = new Map<MessageClass, { received: number; missing: number }>();
  /** Per kind of message (`cls/type`), the problem its handlers have now. */
  private readonly handlerProblems = new OngoingProblems<string>();
  private readonly schemaLog = new LogThrottle(SCHEMA_LOG_EVERY_MS);

  constructor(
    private readonly identity: { gatewayId: string; role: string },
    /** Shared with the transport (read at each use: a test may swap its logger). */
    private readonly deps: InboundDeps,
    private readonly replay: ReplayGuard,
    private readonly presence: PresenceTable,
    private readonly sinks: InboundSinks,
  ) {}

  register(handler: InboundHandler): void {
    this.handlers.push(handler);
  }

  /** Entry point for every received message. Never throws: a bad message is counted and dropped. */
  accept(topic: string, payload: Uint8Array | string): void {
    const parts = parseTopic(topic);
    if (!parts) return;
    const now = this.deps.clock.now();
    const empty = typeof payload === 'string' ? payload.length === 0 : payload.byteLength === 0;
    if (parts.cls === 'life' && parts.type === 'online' && empty) {
      // The Will (or a clean leave) clears the retained presence; on MQTT the broker's ACL makes
      // sure only the gateway itself can write under its own id.
      this.presence.offline(parts.sender, parts.cell, now);
      return;
    }
    const decoded = decodeEnvelope(payload, now);
    if (!decoded.ok) {
      this.reject(decoded.reason, topic);
      return;
    }
    const { envelope } = decoded;
    if (envelope.sender !== parts.sender) {
      this.reject('schema', topic);
      return;
    }
    const security = this.deps.security;
    if (security) {
      const reason = security.check(envelope, parts);
      if (reason) {
        this.reject(reason, topic);
        return;
      }
    }
    if (envelope.sender === this.identity.gatewayId) {
      if (parts.cls === 'life' && parts.type === 'online')
        this.presence.online(parts.sender, parts.cell, this.identity.role, now);
      return;
    }
    const reliable = isReliable(parts.cls);
    const isAck = reliable && parts.type === ACK_TYPE;
    const result = this.replay.check(envelope.sender, envelope.epoch, envelope.seq);
    this.lastHeard.set(envelope.sender, now);
    if (
      result.unknown &&
      reliable &&
      !isAck &&
      this.handlers.some((h) => h.idempotent && matchesFilter(parts, h.filter))
    ) {
      // Too old for the window to tell: only handlers that keep messages by id take it (they drop
      // it if they have it), so a reading resent from a long outage is not refused for good.
      this.deliver(parts, envelope, topic, reliable, (h) => h.idempotent);
      return;
    }
    if (result.verdict !== 'new') {
      // A resend whose first acknowledgement was lost: acknowledge again, deliver nothing. A resend of
      // one its handlers are still storing gets no answer yet: the next resend finds it stored.
      const storing = this.inHandlers.has(messageKey(envelope));
      if (result.verdict === 'duplicate' && !storing && this.mustAcknowledge(parts, reliable && !isAck))
        this.sinks.acknowledge(parts, envelope, true);
      this.reject(result.verdict, topic);
      return;
    }
    this.sinks.replayStateChanged();
    if (envelope.seq % STREAM_COUNT !== TARGETED_STREAM)
      this.accountDelivery(parts.cls, envelope.sender, result.gap, result.filled);
    if (isAck) {
      if (parts.target !== this.identity.gatewayId) return;
      const opened = this.open(topic, parts, envelope);
      if (!opened) return;
      const ack = checkBody(parts, opened.body);
      if (!ack.ok) this.refuseBody(parts, envelope, ack.problem, ack.detail);
      else this.sinks.acknowledged(parts, { ...envelope, body: ack.body as AckBody }, now);
      return;
    }
    if (parts.cls === 'life' && parts.type === 'online') {
      // Presence counts whatever the body holds: a peer is online even when its role is unreadable.
      const role = (envelope.body as Partial<OnlineBody> | null)?.role;
      this.presence.online(parts.sender, parts.cell, typeof role === 'string' ? role : undefined, now);
      this.sinks.presenceChanged(parts.sender, parts.cell, true, now);
    } else if (parts.cls === 'life' && parts.type === 'offline') {
      // A signed leave (D2D has no broker to send a Will).
      this.presence.offline(parts.sender, parts.cell, now);
      this.sinks.presenceChanged(parts.sender, parts.cell, false, now);
      return;
    }
    this.deps.metrics?.messagesReceived.inc({ class: parts.cls });
    this.deps.metrics?.messageLatency.observe({ class: parts.cls }, Math.max(0, now - envelope.ts) / 1000);
    this.deliver(parts, envelope, topic, reliable, () => true);
  }

  /**
   * Hands a message to the matching handlers (of those `which` admits), then acknowledges it once they
   * took it. The body is checked against the catalogue once, when the first checked handler matches;
   * a body it refuses reaches none of them, is counted and logged, and is still acknowledged like one
   * taken (a resend of the same bytes would be refused the same way).
   */
  private deliver(
    parts: TopicParts,
    envelope: Envelope,
    topic: string,
    reliable: boolean,
    which: (h: InboundHandler) => boolean,
  ): void {
    let failed: string | undefined;
    let checked: Envelope | false | undefined;
    let opened: OpenedBody | undefined;
    let unreadable = false;
    const later: Promise<void>[] = [];
    const openOnce = (): OpenedBody => {
      opened ??= this.deps.security
        ? this.deps.security.open(topic, parts, envelope, this.deps.clock.now())
        : { ok: true, body: envelope.body };
      return opened;
    };
    for (const h of this.handlers) {
      if (!which(h) || !matchesFilter(parts, h.filter)) continue;
      let delivered = envelope;
      if (!h.checked) {
        // Tools and tests of the transport: the body opened when this gateway can, else as it arrived.
        const body = openOnce();
        if (body.ok) delivered = { ...envelope, body: body.body };
      } else {
        if (checked === undefined) {
          const body = openOnce();
          const check = body.ok ? checkBody(parts, body.body) : undefined;
          if (check?.ok) checked = { ...envelope, body: check.body };
          else {
            checked = false;
            if (check) this.refuseBody(parts, envelope, check.problem, check.detail);
            else {
              unreadable = true;
              this.refuseSealed(parts, envelope, body);
            }
          }
        }
        if (checked === false) continue;
        delivered = checked;
      }
      try {
        const taken = h.handler({ topic: parts, envelope: delivered });
        if (taken instanceof Promise) later.push(taken);
      } catch (err) {
        failed ??= errorMessage(err);
      }
    }
    if (unreadable && reliable) {
      // Not taken: no acknowledgement (a reader whose key was rotated takes the resend once it has
      // its key file again), and the resend is new again.
      this.replay.forget(envelope.sender, envelope.epoch, envelope.seq);
      return;
    }
    if (later.length === 0) {
      this.afterHandlers(parts, envelope, topic, reliable, failed);
      return;
    }
    const key = messageKey(envelope);
    this.inHandlers.add(key);
    void Promise.allSettled(later).then((outcomes) => {
      this.inHandlers.delete(key);
      for (const o of outcomes) if (o.status === 'rejected') failed ??= errorMessage(o.reason);
      this.afterHandlers(parts, envelope, topic, reliable, failed);
    });
  }

  private afterHandlers(
    parts: TopicParts,
    envelope: Envelope,
    topic: string,
    reliable: boolean,
    failed: string | undefined,
  ): void {
    this.noteHandlerProblem(`${parts.cls}/${parts.type}`, failed, topic);
    if (failed !== undefined && reliable) {
      // Not taken (e.g. the platform's disk is full): no acknowledgement, and the sender's resend is
      // new again, so the message is stored once the handler can store it.
      this.replay.forget(envelope.sender, envelope.epoch, envelope.seq);
      return;
    }
    // After the handlers: an acknowledgement says the message was taken, and what a handler stores
    // (the platform's meter readings) is on disk by then.
    if (this.mustAcknowledge(parts, reliable)) this.sinks.acknowledge(parts, envelope);
  }

  /**
   * The body as handlers get it: opened when sealed. Undefined when this gateway cannot take it: a
   * confidential body sent in the clear, sealed to others only, or failing authentication; counted
   * with reason `confidential` and logged at most once a minute per kind and problem.
   */
  private open(topic: string, parts: TopicParts, envelope: Envelope): { body: unknown } | undefined {
    const security = this.deps.security;
    if (!security) return { body: envelope.body };
    const opened = security.open(topic, parts, envelope, this.deps.clock.now());
    if (opened.ok) return { body: opened.body };
    this.refuseSealed(parts, envelope, opened);
    return undefined;
  }

  private refuseSealed(parts: TopicParts, envelope: Envelope, opened: OpenedBody): void {
    if (opened.ok) return;
    this.deps.metrics?.messagesRejected.inc({ reason: 'confidential' });
    const kind = `${parts.cls}/${parts.type}`;
    const messages = this.schemaLog.take(`${kind}/${opened.problem}`, this.deps.clock.now());
    if (messages > 0)
      this.deps.log.warn(
        { kind, problem: opened.problem, sender: envelope.sender, messages },
        'confidential body not opened',
      );
  }

  /**
   * A body the catalogue refuses: counted with reason `schema` (an unknown type of a known class
   * too), and logged at warn level at most once a minute per kind and problem, with how many there
   * were since the line before and the first problem found (a peer running other software sends
   * them by the thousand).
   */
  private refuseBody(parts: TopicParts, envelope: Envelope, problem: string, detail: string | undefined): void {
    this.deps.metrics?.messagesRejected.inc({ reason: 'schema' });
    const kind = `${parts.cls}/${parts.type}`;
    const messages = this.schemaLog.take(`${kind}/${problem}`, this.deps.clock.now());
    if (messages > 0)
      this.deps.log.warn(
        { kind, problem, ...(detail ? { detail } : {}), sender: envelope.sender, messages },
        'message body refused',
      );
  }

  /**
   * A failing handler is logged once per kind of message and problem (a full disk fails every
   * message), and once when that kind is taken again.
   */
  private noteHandlerProblem(kind: string, problem: string | undefined, topic: string): void {
    const now = this.deps.clock.now();
    if (problem) {
      if (this.handlerProblems.failed(kind, problem, now))
        this.deps.log.error({ err: problem, topic }, 'message handler failed: messages not taken');
      return;
    }
    const ended = this.handlerProblems.ended(kind, now);
    if (ended)
      this.deps.log.info(
        { topic, failures: ended.failures, durationMs: ended.durationMs },
        'message handlers take messages again',
      );
  }

  /**
   * A reliable message is acknowledged when it is for this gateway (to it, or to the whole cell) and
   * the application takes it (a handler that acknowledges matches): the ack means "delivered".
   */
  private mustAcknowledge(parts: TopicParts, reliable: boolean): boolean {
    if (!reliable || isSuperseded(parts.cls, parts.type)) return false;
    if (parts.target !== undefined && parts.target !== this.identity.gatewayId) return false;
    return this.handlers.some(({ filter, acknowledge }) => acknowledge && matchesFilter(parts, filter));
  }

  private accountDelivery(cls: MessageClass, sender: string, gap: number, filled: boolean): void {
    const metrics = this.deps.metrics;
    if (!metrics) return;
    if (gap > 0) metrics.sequenceGaps.inc({ class: cls }, gap);
    const ratio = this.replay.deliveryRatio(sender);
    if (ratio !== undefined) metrics.peerDeliveryRatio.set({ peer: sender }, ratio);
    const t = this.classCounts.get(cls) ?? { received: 0, missing: 0 };
    t.received += 1;
    t.missing = Math.max(0, t.missing + gap - (filled ? 1 : 0));
    this.classCounts.set(cls, t);
    metrics.deliveryRatio.set({ class: cls }, t.received / (t.received + t.missing));
  }

  private reject(reason: string, topic: string): void {
    this.deps.metrics?.messagesRejected.inc({ reason });
    this.deps.log.debug({ topic, reason }, 'message rejected');
  }
}
