import { join } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { LogThrottle } from '../core/log-throttle.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { OngoingProblems } from '../core/ongoing-problems.js';
import { CommsStateFile } from './comms-state.js';
import { EnvelopeStamper } from './envelope.js';
import { InboundPipeline } from './inbound.js';
import { assertWithinPayloadLimit, type LinkHost, type RawPublish } from './link.js';
import { ACK_TYPE } from './messages/ack.js';
import { isSuperseded, type MessageBody, type MessageType } from './messages/catalogue.js';
import type { OnlineBody } from './messages/life.js';
import { OUTBOX_TICK_MS, type OutboxOptions } from './outbox.js';
import { PresenceTable } from './presence.js';
import { isReliable, qosFor, RELIABLE_CLASSES, ReliableDelivery } from './reliable-delivery.js';
import { ReplayGuard } from './replay-guard.js';
import type { MessageSecurity } from './security.js';
import { type MessageClass, parseTopic, type TopicFilter, type TopicParts, topicFor } from './topics.js';
import type {
  AnyMessage,
  DeliveryHandler,
  Envelope,
  LinkQuality,
  Message,
  MessageHandler,
  PeerInfo,
  PublishedType,
  PublishOptions,
  Route,
  SubscribeOptions,
  Transport,
  TransportStatus,
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
  /** Source of the resend jitter (`Math.random` unless a test fixes it). */
  random?: () => number;
}

export type { RawPublish } from './link.js';

const PERSIST_EVERY_MS = 1000;
const MEMBERS_RELOAD_MS = 5000;
const PRESENCE_REFRESH_MS = 6 * 3600_000;

/**
 * What every backend shares, composed of one part per job: stamping and signing what it sends, the
 * inbound pipeline (`InboundPipeline`: every acceptance check, the message catalogue, the handlers),
 * reliable delivery (`ReliableDelivery`: outbox, acknowledgements, resends), presence, and saving the
 * comms state. A backend supplies only how bytes move (`sendRaw`, `listen`) and its connection
 * (`startBackend`, `closeBackend`); it calls `handleIncoming` for every message and `onLinkUp` after
 * (re)connecting.
 */
export abstract class BaseTransport implements Transport {
  protected readonly stamper: EnvelopeStamper;
  protected readonly presence: PresenceTable;
  protected readonly replay: ReplayGuard;
  private readonly delivery: ReliableDelivery;
  private readonly inbound: InboundPipeline;
  private readonly stateFile: CommsStateFile | undefined;
  private timers: TimerHandle[] = [];
  private running = false;
  private stateDirty = false;
  private reconnectCount = 0;
  private readonly persistProblem = new OngoingProblems<'persist'>();
  private radio: (() => Record<string, number | string> | undefined) | undefined;
  /** Readers left out of a seal for want of a key: logged at most once an hour per kind. */
  private readonly sealLog = new LogThrottle(3600_000);

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
    this.delivery = new ReliableDelivery(identity, deps, {
      seal: (topic, parts, body, ttlMs) =>
        this.encode(topic, parts, this.stamper.stamp(parts.cls, parts.type, body, ttlMs, parts.target !== undefined)),
      send: (topic, payload, options) => this.sendRaw(topic, payload, options),
      peers: () => this.presence.list(),
    });
    this.presence = new PresenceTable((peer) => {
      deps.metrics?.peerUp.set({ peer: peer.id }, peer.online ? 1 : 0);
      deps.log.info({ peer: peer.id, online: peer.online }, peer.online ? 'peer online' : 'peer offline');
      if (!peer.online) this.delivery.peerGone(peer.id);
      else this.delivery.peerBack(peer.id);
    });
    this.inbound = new InboundPipeline(identity, deps, this.replay, this.presence, {
      acknowledge: (parts, envelope, resend) => this.delivery.acknowledge(parts, envelope, resend),
      acknowledged: (parts, ack, now) => this.delivery.acknowledged(parts, ack, now),
      presenceChanged: (sender, cell, online, now) => this.onPresence(sender, cell, online, now),
      replayStateChanged: () => {
        this.stateDirty = true;
      },
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
    const restored = this.delivery.load(now);
    if (restored > 0) this.deps.log.info({ pending: restored }, 'outbox restored');
    for (const cls of RELIABLE_CLASSES)
      this.listen({ cell: '+', cls, type: ACK_TYPE, target: this.identity.gatewayId });
    this.running = true;
    this.every(OUTBOX_TICK_MS, () => this.delivery.resendDue());
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
    this.delivery.releaseAcks();
    try {
      await this.closeBackend();
    } finally {
      this.persist();
      try {
        this.delivery.outbox.close();
      } catch (err) {
        this.deps.log.error({ err: errorMessage(err) }, 'outbox not saved');
      }
    }
  }

  /** Stops as a power cut would: no more timers, nothing written (tests and simulations of crashes). */
  protected halt(): void {
    this.running = false;
    this.stopTimers();
    this.delivery.dropAcks();
  }

  protected get onlineTopic(): string {
    return topicFor({ cell: this.identity.cell, sender: this.identity.gatewayId, cls: 'life', type: 'online' });
  }

  protected onlinePayload(): string {
    const encryptionKey = this.deps.security?.keyring?.publicKey;
    const body: OnlineBody = {
      online: true,
      role: this.identity.role,
      publicKey: this.deps.security?.signer.publicKey ?? this.identity.publicKey,
      version: this.identity.version,
      ...(encryptionKey ? { encryptionKey } : {}),
    };
    // Presence is public: it always has a payload.
    return this.encode(this.onlineTopic, parseTopic(this.onlineTopic)!, this.stamper.stamp('life', 'online', body))!;
  }

  /**
   * The payload of an envelope for `topic`: its body sealed to its readers when confidential (throws
   * when none can be sealed to; undefined when the message has no reader), then signed. Unsigned
   * transports send bodies as they are.
   */
  private encode(topic: string, parts: TopicParts, envelope: Envelope): string | undefined {
    const security = this.deps.security;
    if (!security) return JSON.stringify(envelope);
    const outcome = security.seal(topic, parts, envelope);
    if (!outcome) return undefined;
    const { envelope: sealed, withoutKey } = outcome;
    if (withoutKey.length > 0 && this.sealLog.take(`${parts.cls}/${parts.type}`, this.deps.clock.now()) > 0)
      this.deps.log.warn(
        { kind: `${parts.cls}/${parts.type}`, withoutKey },
        'readers without an encryption key in the members list cannot read this kind of message',
      );
    return security.signedPayload(sealed);
  }

  publish<C extends MessageClass, T extends PublishedType<C>>(
    cls: C,
    type: T,
    body: MessageBody<C, T>,
    options: PublishOptions = {},
  ): Promise<void> {
    return this.publishUnchecked(cls, type, body, options);
  }

  /**
   * Sends any body under any type, unchecked: for tests and benchmarks of the transport itself. The
   * application publishes with `publish`, whose bodies the catalogue types.
   */
  async publishUnchecked(cls: MessageClass, type: string, body: unknown, options: PublishOptions = {}): Promise<void> {
    if (isReliable(cls) && type === ACK_TYPE) {
      throw new P2PError(ErrorCode.comms, `message type "${ACK_TYPE}" is reserved for acknowledgements`, {
        component: 'comms',
      });
    }
    const parts: TopicParts = {
      cell: this.identity.cell,
      sender: this.identity.gatewayId,
      cls,
      type,
      ...(options.target ? { target: options.target } : {}),
    };
    const topic = topicFor(parts);
    const envelope = this.stamper.stamp(cls, type, body, options.ttlMs, options.target !== undefined);
    const payload = this.encode(topic, parts, envelope);
    if (payload === undefined) return;
    this.assertFits(topic, payload);
    const retain = options.retain ?? false;
    // A kind the next message replaces (a reading of every cycle) is sent once, as it is.
    const superseded = isSuperseded(cls, type);
    const tracked = isReliable(cls) && !superseded;
    if (tracked) this.delivery.track(envelope, cls, type, topic, payload, options);
    this.deps.metrics?.messagesSent.inc({ class: cls });
    const sent = this.sendRaw(topic, payload, { qos: tracked ? qosFor(cls) : 0, retain });
    // A reliable message is safe once in the outbox, a superseded one made good by the next: the
    // caller does not wait for the broker.
    if (tracked || superseded) sent.catch((err) => this.deps.log.debug({ err: errorMessage(err) }, 'send failed'));
    else await sent;
  }

  /** Refuses, at the sender and with the sizes in the message, what this backend cannot carry. */
  protected assertFits(topic: string, payload: string): void {
    assertWithinPayloadLimit(topic, payload);
  }

  /** Publishes the presence message again (retained backends: before the retained one expires). */
  protected refreshPresence(): void {
    this.sendRaw(this.onlineTopic, this.onlinePayload(), { qos: 1, retain: true }).catch(() => undefined);
  }

  /** Backends without a broker (D2D) track presence themselves from what is heard. */
  protected onPresence(_sender: string, _cell: string, _online: boolean, _now: number): void {}

  on<C extends MessageClass, T extends MessageType<C>>(
    route: Route<C, T> & { type: T },
    handler: MessageHandler<Message<C, T>>,
    options?: SubscribeOptions,
  ): void;
  on<C extends MessageClass>(route: Route<C>, handler: MessageHandler<AnyMessage<C>>, options?: SubscribeOptions): void;
  on<C extends MessageClass>(
    route: Route<C>,
    handler: MessageHandler<AnyMessage<C>>,
    options: SubscribeOptions = {},
  ): void {
    // The pipeline hands a checked handler only bodies the catalogue took for the message's class and type.
    this.register(route, handler as DeliveryHandler, options, true);
  }

  /**
   * Hands `handler` every message that matches, its body as it arrived: for tests, tools and
   * benchmarks of the transport itself. The application registers with `on`.
   */
  subscribeUnchecked(filter: TopicFilter, handler: DeliveryHandler, options: SubscribeOptions = {}): void {
    this.register(filter, handler, options, false);
  }

  private register(filter: TopicFilter, handler: DeliveryHandler, options: SubscribeOptions, checked: boolean): void {
    this.inbound.register({
      filter,
      handler,
      acknowledge: options.acknowledge ?? true,
      idempotent: options.idempotent ?? false,
      checked,
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
    const peers = [...this.inbound.lastHeard.entries()].map(([peer, lastHeardMs]) => {
      const ratio = this.replay.deliveryRatio(peer);
      return { peer, lastHeardMs, ...(ratio === undefined ? {} : { deliveryRatio: ratio }) };
    });
    const ackRttMs = this.delivery.ackRttMs;
    return {
      connected: this.status().connected,
      reconnects: this.reconnectCount,
      outboxPending: this.delivery.outbox.size,
      ...(ackRttMs === undefined ? {} : { ackRttMs: Math.round(ackRttMs * 10) / 10 }),
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
    this.delivery.resendAll();
  }

  /** A signed `life/offline`: the clean leave of a link without a broker. */
  protected offlinePayload(): { topic: string; payload: string } {
    const bye = this.stamper.stamp('life', 'offline', {}, 10_000);
    return {
      topic: topicFor({ cell: this.identity.cell, sender: this.identity.gatewayId, cls: 'life', type: 'offline' }),
      payload: JSON.stringify(this.deps.security ? this.deps.security.sign(bye) : bye),
    };
  }

  /** What a link over this transport calls: its received bytes go to the one inbound pipeline. */
  protected linkHost(): LinkHost {
    return {
      onlineTopic: this.onlineTopic,
      onlinePayload: () => this.onlinePayload(),
      offlinePayload: () => this.offlinePayload(),
      receive: (topic, payload) => this.handleIncoming(topic, payload),
      linkUp: (reconnect) => this.onLinkUp(reconnect),
      linkDown: () => undefined,
      peerSilent: (peer, cell, now) => this.presence.offline(peer, cell, now),
    };
  }

  /** Entry point for every received message (the inbound pipeline). Never throws. */
  protected handleIncoming(topic: string, payload: Uint8Array | string): void {
    this.inbound.accept(topic, payload);
  }

  private persist(): void {
    const outbox = this.delivery.outbox;
    let problem = outbox.journalError;
    const now = this.deps.clock.now();
    try {
      outbox.flush();
      if (this.stateFile && this.stateDirty) {
        this.stateDirty = false;
        this.stateFile.save(this.stamper.epoch, this.replay.snapshot());
      }
    } catch (err) {
      problem = errorMessage(err);
    }
    // Once per problem (a full disk would otherwise log every second), and once when it is over.
    if (problem) {
      if (this.persistProblem.failed('persist', problem, now))
        this.deps.log.error({ err: problem }, 'comms state not saved: pending messages kept in memory');
    } else {
      const ended = this.persistProblem.ended('persist', now);
      if (ended)
        this.deps.log.info({ failures: ended.failures, durationMs: ended.durationMs }, 'comms state saved again');
    }
  }

  private reloadMembers(): void {
    const security = this.deps.security;
    if (!security) return;
    const keys = security.keyring?.reloadIfChanged();
    if (keys === 'updated') {
      this.deps.log.info('key file changed: encryption keys reloaded');
      this.refreshPresence();
    } else if (keys === 'rejected')
      this.deps.log.warn('key file changed but could not be read: keeping the encryption keys in use');
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
}
