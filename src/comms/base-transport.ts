import { join } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { LogThrottle } from '../core/log-throttle.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { CommsStateFile } from './comms-state.js';
import { decodeEnvelope, EnvelopeStamper, MAX_PAYLOAD_BYTES } from './envelope.js';
import {
  DEFAULT_OUTBOX,
  mustReachEveryReceiver,
  Outbox,
  type OutboxDropReason,
  type OutboxEntry,
  type OutboxOptions,
} from './outbox.js';
import { PresenceTable } from './presence.js';
import { ReplayGuard, STREAM_COUNT, TARGETED_STREAM } from './replay-guard.js';
import type { MessageSecurity } from './security.js';
import { type MessageClass, matchesFilter, parseTopic, type TopicFilter, type TopicParts, topicFor } from './topics.js';
import {
  DEFAULT_TTL_MS,
  type DeliveryHandler,
  type Envelope,
  type LinkQuality,
  type OnlineBody,
  type PeerInfo,
  type PublishOptions,
  type SubscribeOptions,
  type Transport,
  type TransportStatus,
} from './transport.js';

export interface TransportIdentity {
  gatewayId: string;
  cell: string;
  role: string;
  version: string;
  /** Raw Ed25519 public key, base64url (empty for an unsigned transport). */
  publicKey: string;
}

export interface TransportDeps {
  clock: Clock;
  log: Logger;
  metrics?: GatewayMetrics;
  /**
   * Signs outgoing and checks incoming envelopes. Without it the transport is unsigned (simulation,
   * tests, a lab bench configured `comms.security.unsigned: true`) and accepts unsigned messages.
   */
  security?: MessageSecurity;
  /** Directory for the comms state (epoch, replay state) and the outbox; in memory only when absent. */
  stateDir?: string;
  outbox?: Partial<OutboxOptions>;
  /** Per-sender, per-stream replay window in messages. */
  replayWindow?: number;
  /**
   * Receivers a message of the class to the whole cell always waits for, heard from yet or not: the
   * platform, for the meter readings it settles from (a house that starts before it still gets them
   * there).
   */
  requiredReceivers?: Partial<Record<MessageClass, readonly string[]>>;
}

export interface RawPublish {
  qos: 0 | 1;
  retain: boolean;
}

/** Classes that must arrive: QoS 1, outbox, application-level acknowledgement. */
export function isReliable(cls: MessageClass): boolean {
  return cls === 'mkt' || cls === 'dr' || cls === 'meter';
}

/** Market, demand-response and meter messages must arrive; gossip and heartbeats tolerate loss. */
export function qosFor(cls: MessageClass): 0 | 1 {
  return isReliable(cls) ? 1 : 0;
}

const messageKey = (e: Envelope): string => `${e.sender}:${e.epoch}:${e.seq}`;

/** Message type of the application-level acknowledgement (reserved in every reliable class). */
export const ACK_TYPE = 'ack';
const ACK_TTL_MS = 30_000;
/** A receiver that acknowledged a broadcast type within this time is awaited for the next ones. */
const RECEIVER_MEMORY_MS = 10 * 60_000;
const PERSIST_EVERY_MS = 1000;
const OUTBOX_TICK_MS = 100;
/** Messages the outbox gives up are logged at most this often per class and reason (the metric counts each). */
const GIVEN_UP_LOG_EVERY_MS = 60_000;
const MEMBERS_RELOAD_MS = 5000;
const PRESENCE_REFRESH_MS = 6 * 3600_000;

/** Body of an acknowledgement: which message (`epoch`, `seq`) of the receiver's, and its type. */
interface AckBody {
  epoch: number;
  seq: number;
  type: string;
}

/**
 * What every backend shares: stamping, signing and checking envelopes, replay protection and gap
 * accounting, presence, the reliable-class outbox with its acknowledgements, and the metrics. A
 * backend supplies only how bytes move (`sendRaw`, `listen`) and its connection (`startBackend`,
 * `closeBackend`); it calls `handleIncoming` for every message and `onLinkUp` after (re)connecting.
 */
export abstract class BaseTransport implements Transport {
  protected readonly stamper: EnvelopeStamper;
  protected readonly presence: PresenceTable;
  protected readonly replay: ReplayGuard;
  protected readonly outbox: Outbox;
  private readonly stateFile: CommsStateFile | undefined;
  private readonly handlers: {
    filter: TopicFilter;
    handler: DeliveryHandler;
    acknowledge: boolean;
    idempotent: boolean;
  }[] = [];
  /** Messages whose handlers have not finished yet (`messageKey`): not acknowledged before they have. */
  private readonly inHandlers = new Set<string>();
  /** Per `<class>/<type>`: peers that acknowledged it and when. */
  private readonly receivers = new Map<string, Map<string, number>>();
  private readonly lastHeard = new Map<string, number>();
  /** Received and missing messages per class over all peers (gap accounting). */
  private readonly classCounts = new Map<MessageClass, { received: number; missing: number }>();
  private timers: TimerHandle[] = [];
  private running = false;
  private stateDirty = false;
  private reconnectCount = 0;
  private ackRttMs: number | undefined;
  private persistProblem: string | undefined;
  /** Per kind of message (`cls/type`), the problem its handlers have now. */
  private readonly handlerProblems = new Map<string, string>();
  private readonly givenUpLog = new LogThrottle(GIVEN_UP_LOG_EVERY_MS);
  private radio: (() => Record<string, number | string> | undefined) | undefined;

  constructor(
    protected readonly identity: TransportIdentity,
    protected readonly deps: TransportDeps,
  ) {
    if (deps.security && deps.security.signer.gatewayId !== identity.gatewayId) {
      throw new P2PError(ErrorCode.config, `the signing key is for ${deps.security.signer.gatewayId}`, {
        component: 'comms',
        field: 'comms.security.keyFile',
      });
    }
    this.stamper = new EnvelopeStamper(identity.gatewayId, deps.clock);
    this.replay = new ReplayGuard(deps.replayWindow);
    this.stateFile = deps.stateDir ? new CommsStateFile(join(deps.stateDir, 'comms-state.json')) : undefined;
    this.outbox = new Outbox(
      { ...DEFAULT_OUTBOX, ...deps.outbox },
      deps.stateDir ? join(deps.stateDir, 'outbox.json') : undefined,
    );
    this.presence = new PresenceTable((peer) => {
      deps.metrics?.peerUp.set({ peer: peer.id }, peer.online ? 1 : 0);
      deps.log.info({ peer: peer.id, online: peer.online }, peer.online ? 'peer online' : 'peer offline');
      if (!peer.online) this.outbox.peerGone(peer.id);
      else this.outbox.peerBack(peer.id, deps.clock.now());
    });
    if (deps.security) {
      deps.metrics?.membersSerial.set(deps.security.members.serial);
      if (!deps.security.members.active(identity.gatewayId))
        deps.log.warn(
          { gateway: identity.gatewayId, serial: deps.security.members.serial },
          'this gateway is not an active member of the members list: its peers will drop its messages',
        );
    }
  }

  protected abstract startBackend(): Promise<void>;
  protected abstract closeBackend(): Promise<void>;
  abstract status(): TransportStatus;
  /** Sends bytes; best effort (no throw when the link is down: the outbox resends reliable classes). */
  protected abstract sendRaw(topic: string, payload: string, options: RawPublish): Promise<void>;
  /** Starts delivering messages that match the MQTT-style patterns of `filter`. */
  protected abstract listen(filter: TopicFilter): void;

  async start(): Promise<void> {
    const now = this.deps.clock.now();
    if (this.stateFile) {
      const { epoch, peers } = this.stateFile.begin(now);
      this.stamper.epoch = epoch;
      this.replay.restore(peers);
    }
    const restored = this.outbox.load(now);
    if (restored > 0) this.deps.log.info({ pending: restored }, 'outbox restored');
    for (const cls of ['mkt', 'dr', 'meter'] as const)
      this.listen({ cell: '+', cls, type: ACK_TYPE, target: this.identity.gatewayId });
    this.running = true;
    this.every(OUTBOX_TICK_MS, () => this.resendDue());
    this.every(PERSIST_EVERY_MS, () => this.persist());
    if (this.deps.security?.members) this.every(MEMBERS_RELOAD_MS, () => this.reloadMembers());
    // The retained presence message lives a day (DEFAULT_TTL_MS.life): renew it well before.
    this.every(PRESENCE_REFRESH_MS, () => this.refreshPresence());
    try {
      await this.startBackend();
    } catch (err) {
      this.stopTimers();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopTimers();
    try {
      await this.closeBackend();
    } finally {
      this.persist();
      try {
        this.outbox.close();
      } catch (err) {
        this.deps.log.error({ err: errorMessage(err) }, 'outbox not saved');
      }
    }
  }

  /** Stops as a power cut would: no more timers, nothing written (tests and simulations of crashes). */
  protected halt(): void {
    this.running = false;
    this.stopTimers();
  }

  protected get onlineTopic(): string {
    return topicFor({ cell: this.identity.cell, sender: this.identity.gatewayId, cls: 'life', type: 'online' });
  }

  protected onlinePayload(): string {
    const body: OnlineBody = {
      online: true,
      role: this.identity.role,
      publicKey: this.deps.security?.signer.publicKey ?? this.identity.publicKey,
      version: this.identity.version,
    };
    return this.encode(this.stamper.stamp('life', 'online', body));
  }

  private encode(envelope: Envelope): string {
    const signed = this.deps.security ? this.deps.security.sign(envelope) : envelope;
    return JSON.stringify(signed);
  }

  async publish(cls: MessageClass, type: string, body: unknown, options: PublishOptions = {}): Promise<void> {
    if (isReliable(cls) && type === ACK_TYPE) {
      throw new P2PError(ErrorCode.comms, `message type "${ACK_TYPE}" is reserved for acknowledgements`, {
        component: 'comms',
      });
    }
    const topic = topicFor({
      cell: this.identity.cell,
      sender: this.identity.gatewayId,
      cls,
      type,
      ...(options.target ? { target: options.target } : {}),
    });
    const envelope = this.stamper.stamp(cls, type, body, options.ttlMs, options.target !== undefined);
    const payload = this.encode(envelope);
    this.assertFits(topic, payload);
    const retain = options.retain ?? false;
    if (isReliable(cls)) {
      const awaiting = options.target
        ? [options.target]
        : [...new Set([...this.knownReceivers(cls, type), ...(this.deps.requiredReceivers?.[cls] ?? [])])];
      const dropped = this.outbox.add(
        {
          id: `${envelope.epoch}:${envelope.seq}`,
          cls,
          type,
          topic,
          payload,
          retain,
          expires: envelope.expires,
          awaiting,
          blind: awaiting.length === 0,
          ...(options.persist === false ? { volatile: true } : {}),
        },
        this.deps.clock.now(),
      );
      if (dropped) this.givenUp(dropped, 'overflow');
      this.updateOutboxGauge();
    }
    this.deps.metrics?.messagesSent.inc({ class: cls });
    const sent = this.sendRaw(topic, payload, { qos: qosFor(cls), retain });
    // A reliable message is safe once in the outbox: the caller does not wait for the broker.
    if (isReliable(cls)) sent.catch((err) => this.deps.log.debug({ err: errorMessage(err) }, 'send failed'));
    else await sent;
  }

  /** Refuses, at the sender and with the sizes in the message, what this backend cannot carry. */
  protected assertFits(topic: string, payload: string): void {
    const size = Buffer.byteLength(payload);
    if (size > MAX_PAYLOAD_BYTES) {
      throw new P2PError(
        ErrorCode.comms,
        `${topic}: message of ${size} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte limit`,
        { component: 'comms', hint: 'send less per message (split the body)' },
      );
    }
  }

  /** Publishes the presence message again (retained backends: before the retained one expires). */
  protected refreshPresence(): void {
    this.sendRaw(this.onlineTopic, this.onlinePayload(), { qos: 1, retain: true }).catch(() => undefined);
  }

  /** Backends without a broker (D2D) track presence themselves from what is heard. */
  protected onPresence(_sender: string, _cell: string, _online: boolean, _now: number): void {}

  subscribe(filter: TopicFilter, handler: DeliveryHandler, options: SubscribeOptions = {}): void {
    this.handlers.push({
      filter,
      handler,
      acknowledge: options.acknowledge ?? true,
      idempotent: options.idempotent ?? false,
    });
    this.listen(filter);
  }

  peers(): PeerInfo[] {
    return this.presence.list();
  }

  /** Where the link's radio figures come from (the LTE modem manager). */
  attachRadio(source: () => Record<string, number | string> | undefined): void {
    this.radio = source;
  }

  linkQuality(): LinkQuality {
    const radio = this.radio?.();
    const peers = [...this.lastHeard.entries()].map(([peer, lastHeardMs]) => {
      const ratio = this.replay.deliveryRatio(peer);
      return { peer, lastHeardMs, ...(ratio === undefined ? {} : { deliveryRatio: ratio }) };
    });
    return {
      connected: this.status().connected,
      reconnects: this.reconnectCount,
      outboxPending: this.outbox.size,
      ...(this.ackRttMs === undefined ? {} : { ackRttMs: Math.round(this.ackRttMs * 10) / 10 }),
      peers: peers.sort((a, b) => a.peer.localeCompare(b.peer)),
      ...(radio ? { radio } : {}),
    };
  }

  /** Backends call this after every (re)connection: everything pending in the outbox goes out again. */
  protected onLinkUp(reconnect: boolean): void {
    if (reconnect) {
      this.reconnectCount += 1;
      this.deps.metrics?.reconnects.inc();
    }
    const now = this.deps.clock.now();
    for (const e of this.outbox.all()) {
      if (e.expires <= now) continue;
      this.sendRaw(e.topic, e.payload, { qos: qosFor(e.cls), retain: e.retain }).catch(() => undefined);
    }
  }

  private knownReceivers(cls: MessageClass, type: string): string[] {
    const known = this.receivers.get(`${cls}/${type}`);
    if (!known) return [];
    const now = this.deps.clock.now();
    const online = new Map(this.presence.list().map((p) => [p.id, p.online]));
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

  private resendDue(): void {
    const { resend, dropped } = this.outbox.takeDue(this.deps.clock.now());
    for (const { entry, reason } of dropped) this.givenUp(entry, reason);
    for (const e of resend) {
      this.deps.metrics?.retransmits.inc({ class: e.cls });
      this.sendRaw(e.topic, e.payload, { qos: qosFor(e.cls), retain: e.retain }).catch((err) =>
        this.deps.log.debug({ err: errorMessage(err) }, 'resend failed'),
      );
    }
    if (resend.length > 0 || dropped.length > 0) this.updateOutboxGauge();
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
    for (const cls of ['mkt', 'dr', 'meter'] as const) metrics.outboxPending.set({ class: cls }, pending.get(cls) ?? 0);
  }

  private persist(): void {
    let problem = this.outbox.journalError;
    try {
      this.outbox.flush();
      if (this.stateFile && this.stateDirty) {
        this.stateDirty = false;
        this.stateFile.save(this.stamper.epoch, this.replay.snapshot());
      }
    } catch (err) {
      problem = errorMessage(err);
    }
    // Once per problem (a full disk would otherwise log every second), and once when it is over.
    if (problem !== this.persistProblem) {
      if (problem) this.deps.log.error({ err: problem }, 'comms state not saved: pending messages kept in memory');
      else this.deps.log.info('comms state saved again');
      this.persistProblem = problem;
    }
  }

  private reloadMembers(): void {
    const security = this.deps.security;
    if (!security) return;
    const result = security.members.reloadIfChanged();
    if (result === 'updated') {
      this.deps.metrics?.membersSerial.set(security.members.serial);
      this.deps.log.info({ serial: security.members.serial }, 'members list updated');
    } else if (result === 'rejected') {
      this.deps.log.warn(
        { serial: security.members.serial },
        'members list file changed but was not taken (bad signature, older serial or invalid); keeping the current list',
      );
    }
  }

  private every(ms: number, fn: () => void): void {
    const slot = this.timers.length;
    const arm = () => {
      this.timers[slot] = this.deps.clock.setTimeout(() => {
        if (!this.running) return;
        fn();
        arm();
      }, ms);
    };
    arm();
  }

  private stopTimers(): void {
    for (const t of this.timers) this.deps.clock.clearTimeout(t);
    this.timers = [];
  }

  private reject(reason: string, topic: string): void {
    this.deps.metrics?.messagesRejected.inc({ reason });
    this.deps.log.debug({ topic, reason }, 'message rejected');
  }

  /**
   * Entry point for every received message. Never throws: a bad message is counted and dropped.
   * Order: topic, size/schema/time window, sender = topic sender, membership and signature, replay
   * and duplicates; only then presence, acknowledgements and the handlers.
   */
  protected handleIncoming(topic: string, payload: Uint8Array | string): void {
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
    const own = envelope.sender === this.identity.gatewayId;
    if (own) {
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
        this.acknowledge(parts, envelope);
      this.reject(result.verdict, topic);
      return;
    }
    this.stateDirty = true;
    if (envelope.seq % STREAM_COUNT !== TARGETED_STREAM)
      this.accountDelivery(parts.cls, envelope.sender, result.gap, result.filled);
    if (isAck) {
      if (parts.target === this.identity.gatewayId) this.onAck(parts, envelope as Envelope<AckBody>, now);
      return;
    }
    if (parts.cls === 'life' && parts.type === 'online') {
      const role = (envelope.body as Partial<OnlineBody> | null)?.role;
      this.presence.online(parts.sender, parts.cell, typeof role === 'string' ? role : undefined, now);
      this.onPresence(parts.sender, parts.cell, true, now);
    } else if (parts.cls === 'life' && parts.type === 'offline') {
      // A signed leave (D2D has no broker to send a Will).
      this.presence.offline(parts.sender, parts.cell, now);
      this.onPresence(parts.sender, parts.cell, false, now);
      return;
    }
    this.deps.metrics?.messagesReceived.inc({ class: parts.cls });
    this.deps.metrics?.messageLatency.observe({ class: parts.cls }, Math.max(0, now - envelope.ts) / 1000);
    this.deliver(parts, envelope, topic, reliable, () => true);
  }

  /** Hands a message to the matching handlers (of those `which` admits), then acknowledges it once they took it. */
  private deliver(
    parts: TopicParts,
    envelope: Envelope,
    topic: string,
    reliable: boolean,
    which: (h: { idempotent: boolean }) => boolean,
  ): void {
    let failed: string | undefined;
    const later: Promise<void>[] = [];
    for (const h of this.handlers) {
      const { filter, handler } = h;
      if (!which(h) || !matchesFilter(parts, filter)) continue;
      try {
        const taken = handler({ topic: parts, envelope });
        if (taken instanceof Promise) later.push(taken);
      } catch (err) {
        failed ??= errorMessage(err);
      }
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
    if (this.mustAcknowledge(parts, reliable)) this.acknowledge(parts, envelope);
  }

  /**
   * A failing handler is logged once per kind of message and problem (a full disk fails every
   * message), and once when that kind is taken again.
   */
  private noteHandlerProblem(kind: string, problem: string | undefined, topic: string): void {
    if (problem === this.handlerProblems.get(kind)) return;
    if (problem) {
      this.deps.log.error({ err: problem, topic }, 'message handler failed: messages not taken');
      this.handlerProblems.set(kind, problem);
    } else {
      this.deps.log.info({ topic }, 'message handlers take messages again');
      this.handlerProblems.delete(kind);
    }
  }

  /**
   * A reliable message is acknowledged when it is for this gateway (to it, or to the whole cell) and
   * the application takes it (a handler that acknowledges matches): the ack means "delivered".
   */
  private mustAcknowledge(parts: TopicParts, reliable: boolean): boolean {
    if (!reliable) return false;
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

  private acknowledge(parts: TopicParts, envelope: Envelope): void {
    const body: AckBody = { epoch: envelope.epoch, seq: envelope.seq, type: envelope.type };
    const ack = this.stamper.stamp(parts.cls, ACK_TYPE, body, ACK_TTL_MS, true);
    const topic = topicFor({
      cell: this.identity.cell,
      sender: this.identity.gatewayId,
      cls: parts.cls,
      type: ACK_TYPE,
      target: envelope.sender,
    });
    this.sendRaw(topic, this.encode(ack), { qos: 0, retain: false }).catch(() => undefined);
  }

  private onAck(parts: TopicParts, ack: Envelope<AckBody>, now: number): void {
    const body = ack.body;
    if (typeof body?.epoch !== 'number' || typeof body?.seq !== 'number') return;
    if (typeof body.type === 'string' && parts.target === this.identity.gatewayId) {
      const key = `${parts.cls}/${body.type}`;
      const known = this.receivers.get(key) ?? new Map<string, number>();
      known.set(ack.sender, now);
      this.receivers.set(key, known);
    }
    const id = `${body.epoch}:${body.seq}`;
    if (this.outbox.awaits(parts.sender, id))
      this.deps.metrics?.acksReceived.inc({ class: parts.cls, peer: parts.sender });
    const done = this.outbox.ack(parts.sender, id);
    if (done) {
      this.observeAckRtt(done, now);
      this.updateOutboxGauge();
    }
  }

  /** Round trip of the last attempt: from its send to the acknowledgement (smoothed). */
  private observeAckRtt(entry: OutboxEntry, now: number): void {
    const rtt = Math.max(0, now - entry.lastSentAt);
    this.ackRttMs = this.ackRttMs === undefined ? rtt : 0.9 * this.ackRttMs + 0.1 * rtt;
  }
}
