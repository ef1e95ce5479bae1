import { join } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { LogThrottle } from '../core/log-throttle.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { ACK_TYPE, type AckBody, type AckedMessage, MAX_ACKED_PER_ACK } from './messages/ack.js';
import {
  DEFAULT_OUTBOX,
  mustReachEveryReceiver,
  Outbox,
  type OutboxDropReason,
  type OutboxEntry,
  type OutboxOptions,
  retransmitTimerFor,
} from './outbox.js';
import type { RetransmitTimer } from './retransmit-timer.js';
import { type MessageClass, type TopicParts, topicFor } from './topics.js';
import { DEFAULT_TTL_MS, type Envelope, type PeerInfo, type PublishOptions } from './transport.js';

/** Classes that must arrive: QoS 1, outbox, application-level acknowledgement. */
export function isReliable(cls: MessageClass): boolean {
  return (RELIABLE_CLASSES as readonly MessageClass[]).includes(cls);
}

/** Market, demand-response and meter messages must arrive; gossip and heartbeats tolerate loss. */
export function qosFor(cls: MessageClass): 0 | 1 {
  return isReliable(cls) ? 1 : 0;
}

export const RELIABLE_CLASSES = ['mkt', 'dr', 'meter', 'settle'] as const satisfies readonly MessageClass[];

const ACK_TTL_MS = 30_000;
/** A receiver that acknowledged a broadcast type within this time is awaited for the next ones. */
const RECEIVER_MEMORY_MS = 10 * 60_000;
/**
 * A receiver holds an acknowledgement at most this long after the message was stamped, so that one
 * acknowledgement covers the further messages of the same sender and class that arrive meanwhile (as
 * TCP's delayed acks), and at most a third of its own first retransmit delay (a fleet shares its
 * reliability settings), so that the sender's first resend is not due before it comes.
 */
const ACK_HOLD_MAX_MS = 150;
/** Messages the outbox gives up are logged at most this often per class and reason (the metric counts each). */
const GIVEN_UP_LOG_EVERY_MS = 60_000;

/** The transport's dependencies reliable delivery reads (the transport's own `TransportDeps` object). */
export interface ReliableDeliveryDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: GatewayMetrics | undefined;
  readonly stateDir?: string | undefined;
  readonly outbox?: Partial<OutboxOptions> | undefined;
  /** Source of the resend jitter (`Math.random` unless a test fixes it). */
  readonly random?: (() => number) | undefined;
}

/** How reliable delivery reaches the wire and the rest of the transport. */
export interface ReliableDeliveryLinks {
  /** Stamps, signs and serialises a body of this gateway's (an acknowledgement). */
  /** Stamps, seals (a confidential body) and signs a body for `topic`; the payload to send (none without a reader). */
  seal(topic: string, parts: TopicParts, body: unknown, ttlMs: number): string | undefined;
  /** Sends bytes; best effort. */
  send(topic: string, payload: string, options: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /** Who is online now (a receiver that left is no longer awaited, unless its class must reach it). */
  peers(): PeerInfo[];
}

/**
 * Makes the reliable classes arrive: each message waits in the outbox (bounded, on disk unless
 * `persist: false`) for the acknowledgements of the receivers it awaits, and is resent with back-off
 * until they come or it expires; sends the acknowledgements of what this gateway took; learns who
 * reads each type from the acknowledgements it receives; counts and logs what it gives up.
 */
export class ReliableDelivery {
  readonly outbox: Outbox;
  /** Per `<class>/<type>`: peers that acknowledged it and when. */
  private readonly receivers = new Map<string, Map<string, number>>();
  private readonly givenUpLog = new LogThrottle(GIVEN_UP_LOG_EVERY_MS);
  /**
   * One retransmission timer for the whole gateway rather than one per receiver: this gateway's own
   * link (LTE) dominates every round trip, and most receivers (a cell's traders, the platform) are
   * heard from too seldom for an estimate of their own to leave its initial value.
   */
  private readonly timer: RetransmitTimer;
  /** Acknowledgements held, per `<class>/<sender>`, until `ackHoldMs` after the first or a full one. */
  private readonly heldAcks = new Map<
    string,
    { cls: MessageClass; peer: string; acked: AckedMessage[]; timer: TimerHandle }
  >();
  private readonly ackHoldMs: number;

  constructor(
    private readonly identity: { gatewayId: string; cell: string },
    /** Shared with the transport (read at each use: a test may swap its logger). */
    private readonly deps: ReliableDeliveryDeps,
    private readonly links: ReliableDeliveryLinks,
  ) {
    const options = { ...DEFAULT_OUTBOX, ...deps.outbox };
    this.timer = retransmitTimerFor(options, deps.random);
    this.outbox = new Outbox(options, deps.stateDir ? join(deps.stateDir, 'outbox.json') : undefined, this.timer);
    this.publishTimer();
    this.ackHoldMs = Math.min(ACK_HOLD_MAX_MS, Math.floor(this.outbox.options.retryInitialMs / 3));
  }

  /** Smoothed round trip from a send to the acknowledgement that completed it (SRTT), once measured. */
  get ackRttMs(): number | undefined {
    return this.timer.srttMs;
  }

  /** How long a message waits for its acknowledgement before its first resend, before jitter (RTO). */
  get retransmitTimeoutMs(): number {
    return this.timer.rtoMs;
  }

  /** Loads what was pending before a restart; how many messages. */
  load(now: number): number {
    return this.outbox.load(now);
  }

  /** Keeps a reliable message just sent until the receivers it awaits acknowledge it. */
  track(
    envelope: Envelope,
    cls: MessageClass,
    type: string,
    topic: string,
    payload: string,
    options: PublishOptions,
  ): void {
    const awaiting = options.target ? [options.target] : this.knownReceivers(cls, type);
    const dropped = this.outbox.add(
      {
        id: `${envelope.epoch}:${envelope.seq}`,
        cls,
        type,
        topic,
        payload,
        retain: options.retain ?? false,
        expires: envelope.expires,
        awaiting,
        blind: awaiting.length === 0,
        ...(options.persist === false ? { volatile: true } : {}),
      },
      this.deps.clock.now(),
    );
    this.deps.metrics?.reliableSent.inc({ class: cls, type });
    if (dropped) this.givenUp(dropped, 'overflow');
    this.updateOutboxGauge();
  }

  /**
   * Everything pending goes out again (after a (re)connection), spread over a short jittered window
   * (the resends themselves go through `resendDue`): the gateways of a cell back from a broker
   * restart do not send their backlogs in the same instant.
   */
  resendAll(): void {
    this.outbox.spreadDue(this.deps.clock.now());
  }

  /** Resends what is due, gives up what expired or waited too long. */
  resendDue(): void {
    const now = this.deps.clock.now();
    const { resend, dropped } = this.outbox.takeDue(now);
    for (const { entry, reason } of dropped) this.givenUp(entry, reason);
    if (resend.length > 0) {
      this.timer.timedOut(now);
      this.publishTimer();
    }
    for (const e of resend) {
      this.deps.metrics?.retransmits.inc({ class: e.cls });
      this.links
        .send(e.topic, e.payload, { qos: qosFor(e.cls), retain: e.retain })
        .catch((err) => this.deps.log.debug({ err: errorMessage(err) }, 'resend failed'));
    }
    if (resend.length > 0 || dropped.length > 0) this.updateOutboxGauge();
  }

  peerGone(peer: string): void {
    this.outbox.peerGone(peer);
  }

  /** What waits for a peer back online goes out at once rather than after its back-off. */
  peerBack(peer: string): void {
    this.outbox.peerBack(peer, this.deps.clock.now());
  }

  /**
   * Tells the sender of a message this gateway took that it arrived: held until `ackHoldMs` after the
   * message was stamped (at most that long after it arrived, whatever the sender's clock says) with
   * the next ones of the same sender and class, then sent as one acknowledgement (`more` lists all but
   * the first). One already late (a queue, a resend whose acknowledgement was lost) goes at once, first,
   * with those held: a loaded receiver adds no wait that would bring on resends, and a sender of
   * before cumulative acknowledgements, which reads only the first message of one, gets it.
   */
  acknowledge(parts: TopicParts, envelope: Envelope, resend = false): void {
    const acked: AckedMessage = { epoch: envelope.epoch, seq: envelope.seq, type: envelope.type };
    const key = `${parts.cls}/${envelope.sender}`;
    const holdMs = Math.min(this.ackHoldMs, envelope.ts + this.ackHoldMs - this.deps.clock.now());
    let held = this.heldAcks.get(key);
    if (resend || holdMs <= 0) {
      if (held) {
        this.deps.clock.clearTimeout(held.timer);
        this.heldAcks.delete(key);
      }
      this.sendAck(parts.cls, envelope.sender, [acked, ...(held?.acked ?? [])]);
      return;
    }
    if (!held) {
      const timer = this.deps.clock.setTimeout(() => this.releaseAck(key), holdMs);
      held = { cls: parts.cls, peer: envelope.sender, acked: [], timer };
      this.heldAcks.set(key, held);
    }
    held.acked.push(acked);
    if (held.acked.length >= MAX_ACKED_PER_ACK) {
      this.deps.clock.clearTimeout(held.timer);
      this.releaseAck(key);
    }
  }

  /** Sends every held acknowledgement now (before the transport closes). */
  releaseAcks(): void {
    for (const [key, held] of this.heldAcks) {
      this.deps.clock.clearTimeout(held.timer);
      this.releaseAck(key);
    }
  }

  /** Forgets the held acknowledgements (a halt: their senders resend, and get them again). */
  dropAcks(): void {
    for (const held of this.heldAcks.values()) this.deps.clock.clearTimeout(held.timer);
    this.heldAcks.clear();
  }

  private releaseAck(key: string): void {
    const held = this.heldAcks.get(key);
    if (!held) return;
    this.heldAcks.delete(key);
    this.sendAck(held.cls, held.peer, held.acked);
  }

  private sendAck(cls: MessageClass, peer: string, acked: AckedMessage[]): void {
    const [first, ...more] = acked;
    if (!first) return;
    const body: AckBody = more.length > 0 ? { ...first, more } : first;
    const ackParts: TopicParts = {
      cell: this.identity.cell,
      sender: this.identity.gatewayId,
      cls,
      type: ACK_TYPE,
      target: peer,
    };
    const topic = topicFor(ackParts);
    let payload: string | undefined;
    try {
      payload = this.links.seal(topic, ackParts, body, ACK_TTL_MS);
    } catch (err) {
      this.deps.log.debug({ err: errorMessage(err), peer }, 'acknowledgement not sent');
      return;
    }
    if (payload === undefined) return;
    this.links.send(topic, payload, { qos: 0, retain: false }).catch(() => undefined);
  }

  /** An acknowledgement addressed to this gateway (its body checked against the catalogue): each message it covers. */
  acknowledged(parts: TopicParts, ack: Envelope<AckBody>, now: number): void {
    const { more, ...first } = ack.body;
    this.acknowledgedOne(parts, ack.sender, first, now);
    for (const acked of more ?? []) this.acknowledgedOne(parts, ack.sender, acked, now);
  }

  private acknowledgedOne(parts: TopicParts, peer: string, body: AckedMessage, now: number): void {
    if (body.type !== undefined) {
      const key = `${parts.cls}/${body.type}`;
      const known = this.receivers.get(key) ?? new Map<string, number>();
      known.set(peer, now);
      this.receivers.set(key, known);
    }
    const id = `${body.epoch}:${body.seq}`;
    if (this.outbox.awaits(peer, id)) this.deps.metrics?.acksReceived.inc({ class: parts.cls, peer });
    const pending = this.outbox.get(id);
    const heardBefore = pending?.heard === true;
    const done = this.outbox.ack(peer, id);
    // A blind message that must reach every receiver stays for its other attempts once heard: its
    // first acknowledgement is the one that delivered it.
    const firstHeard = !done && pending !== undefined && !heardBefore && pending.heard === true;
    const delivered = done ?? (firstHeard ? pending : undefined);
    if (delivered) this.delivered(delivered, now);
    if (done) this.updateOutboxGauge();
  }

  private knownReceivers(cls: MessageClass, type: string): string[] {
    const known = this.receivers.get(`${cls}/${type}`);
    if (!known) return [];
    const now = this.deps.clock.now();
    const online = new Map(this.links.peers().map((p) => [p.id, p.online]));
    // A class that must reach every receiver also waits for one that is away, as long as its messages
    // live; the others forget a receiver once it is offline.
    const keepAway = mustReachEveryReceiver(cls);
    const memoryMs = keepAway ? DEFAULT_TTL_MS[cls] : RECEIVER_MEMORY_MS;
    const out: string[] = [];
    for (const [peer, at] of known) {
      if (now - at > memoryMs || (!keepAway && online.get(peer) === false)) known.delete(peer);
      else out.push(peer);
    }
    return out;
  }

  /**
   * A reliable message that will not be delivered: counted, and logged at most once a minute per class
   * and reason with how many there were (a long outage gives up messages by the hundred).
   */
  private givenUp(entry: OutboxEntry, reason: OutboxDropReason): void {
    this.deps.metrics?.outboxDropped.inc({ class: entry.cls, reason });
    this.deps.log.debug({ id: entry.id, cls: entry.cls, type: entry.type, reason }, 'outbox gave up a message');
    const messages = this.givenUpLog.take(`${entry.cls}/${reason}`, this.deps.clock.now());
    if (messages > 0) this.deps.log.warn({ cls: entry.cls, reason, messages }, 'outbox gave up messages');
  }

  private updateOutboxGauge(): void {
    const metrics = this.deps.metrics;
    if (!metrics) return;
    const pending = this.outbox.pendingByClass();
    for (const cls of RELIABLE_CLASSES) metrics.outboxPending.set({ class: cls }, pending.get(cls) ?? 0);
  }

  /** The timer's round trip and timeout as metrics. */
  private publishTimer(): void {
    if (this.timer.srttMs !== undefined) this.deps.metrics?.ackRtt.set(this.timer.srttMs / 1000);
    this.deps.metrics?.retransmitTimeout.set(this.timer.rtoMs / 1000);
  }

  /**
   * A message that reached the receivers it awaited: counted (first try or after resends), its
   * delivery time observed, and its round trip fed to the retransmission timer unless it was resent
   * (Karn's rule) or sent before a restart. One that stopped awaiting a receiver that went offline
   * did not reach all it was sent for and is not counted.
   */
  private delivered(entry: OutboxEntry, now: number): void {
    const resent = entry.attempts > 1;
    if (this.timer.observe(now - entry.lastSentAt, resent || entry.restored === true)) this.publishTimer();
    if (entry.receiverGone) return;
    const attempt = resent ? 'retried' : 'first';
    this.deps.metrics?.reliableDelivered.inc({ class: entry.cls, type: entry.type, attempt });
    this.deps.metrics?.deliverySeconds.observe(
      { class: entry.cls, attempt },
      Math.max(0, now - entry.firstSentAt) / 1000,
    );
  }
}
