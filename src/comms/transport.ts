import type { MessageBody, MessageType } from './messages/catalogue.js';
import type { MessageClass, TopicParts } from './topics.js';

/**
 * The envelope of every message on the wire (docs/interfaces.md, "Messages on the wire"). `sig` is added
 * by the signing layer; the bodies are those of the message catalogue (`src/comms/messages/`).
 */
export interface Envelope<B = unknown, T extends string = string> {
  v: 1;
  sender: string;
  /** Changes on every restart that lost the sequence counter; (sender, epoch, seq) is unique. */
  epoch: number;
  seq: number;
  /** ms since the Unix epoch. */
  ts: number;
  /** ms since the Unix epoch after which the message is void. */
  expires: number;
  type: T;
  body: B;
  sig?: string;
}

export interface Delivery<B = unknown> {
  topic: TopicParts;
  envelope: Envelope<B>;
}

export interface PublishOptions {
  target?: string;
  /** Kept by the broker for late subscribers (presence). */
  retain?: boolean;
  /** Lifetime of the message; the class default when absent. */
  ttlMs?: number;
  /**
   * `false`: a reliable message that means nothing after a restart (a market round's price): it is
   * acknowledged and resent like the others, but kept in memory only, never written to disk.
   */
  persist?: boolean;
}

export interface PeerInfo {
  id: string;
  cell: string;
  role?: string;
  online: boolean;
  /** When presence last changed (ms since epoch). */
  since: number;
}

export interface TransportStatus {
  backend: string;
  connected: boolean;
  /** Where it is connected to (broker URL, bus name). */
  endpoint: string;
  /** Each link of a transport over several (`hybrid`): the transport is connected while any of them is. */
  links?: { backend: string; connected: boolean; endpoint: string }[];
  /** A hybrid transport's D2D relay: the relay it sends through (broker link down), the gateways it relays for. */
  relay?: { via?: string; for: string[] };
}

/**
 * Takes a delivered message. A handler that stores it later (the platform commits meter readings in
 * batches) returns a promise: a reliable message is acknowledged once every handler's promise is
 * fulfilled, and not at all when one is rejected (its resend is then taken as new).
 */
export type DeliveryHandler = ((delivery: Delivery) => void) | ((delivery: Delivery) => Promise<void>);

/** The types of a class a gateway publishes (`ack` is the transport's own). */
export type PublishedType<C extends MessageClass> = Exclude<MessageType<C>, 'ack'>;

/** A received message of one class and type whose body the catalogue took (as its schema parsed it). */
export interface Message<C extends MessageClass, T extends MessageType<C>> {
  topic: TopicParts;
  envelope: Envelope<MessageBody<C, T>, T>;
}

/** Any message of a class, told apart by `envelope.type`. */
export type AnyMessage<C extends MessageClass> = { [T in MessageType<C>]: Message<C, T> }[MessageType<C>];

/** Takes a checked message; a promise as for `DeliveryHandler`. */
export type MessageHandler<M> = ((message: M) => void) | ((message: M) => Promise<void>);

/** Which messages a handler takes: a cell (`+` for all), a class and type, and a target if addressed. */
export interface Route<C extends MessageClass, T extends MessageType<C> = MessageType<C>> {
  cell: string;
  cls: C;
  /** One type of the class; every type when absent (a type the catalogue does not know is refused). */
  type?: T;
  target?: string;
}

/** How well the link works, from this gateway's side. */
export interface LinkQuality {
  connected: boolean;
  /** Reconnections since start. */
  reconnects: number;
  /** Reliable messages waiting for an acknowledgement. */
  outboxPending: number;
  /** Smoothed time from a send to its application-level acknowledgement. */
  ackRttMs?: number;
  /** Per peer heard from: when, and the fraction of its messages that arrived (sequence gaps). */
  peers: { peer: string; lastHeardMs: number; deliveryRatio?: number }[];
  /** Radio figures where the backend has them (LTE modem). */
  radio?: Record<string, number | string>;
}

export interface SubscribeOptions {
  /**
   * False for a reader that only wants the latest message of a kind (a transformer summing its
   * cell's meter readings): it takes what arrives but does not acknowledge it, so senders neither
   * wait for it nor resend to it. Reliable classes are acknowledged by default.
   */
  acknowledge?: boolean;
  /**
   * True for a handler that keeps what it takes by message id (`sender`, `epoch`, `seq`), so that it
   * may be handed a message the replay window can no longer place: one resent from a long outage
   * behind newer ones (the platform's meter readings). Any other handler never sees such a message.
   */
  idempotent?: boolean;
}

/**
 * Publish/subscribe between gateways, with presence and link quality. Backends: MQTT (field), D2D
 * sidelink (UDP over IPv6 multicast), in-memory (simulation and tests). Bodies are those of the
 * message catalogue (`src/comms/messages/catalogue.ts`), typed when sent and checked when received.
 */
export interface Transport {
  start(): Promise<void>;
  /** Sends a body of the catalogue; the compiler checks it against the class and type. */
  publish<C extends MessageClass, T extends PublishedType<C>>(
    cls: C,
    type: T,
    body: MessageBody<C, T>,
    options?: PublishOptions,
  ): Promise<void>;
  /**
   * Hands `handler` the messages of a route whose body the catalogue takes. A body it refuses (or a
   * type it does not know) reaches no handler: it is counted in
   * `p2p_messages_rejected_total{reason="schema"}` and logged, at most once a minute per kind.
   */
  on<C extends MessageClass, T extends MessageType<C>>(
    route: Route<C, T> & { type: T },
    handler: MessageHandler<Message<C, T>>,
    options?: SubscribeOptions,
  ): void;
  on<C extends MessageClass>(route: Route<C>, handler: MessageHandler<AnyMessage<C>>, options?: SubscribeOptions): void;
  peers(): PeerInfo[];
  status(): TransportStatus;
  /** Link quality; optional so that older backends and test doubles still fit. */
  linkQuality?(): LinkQuality;
  /** Leaves cleanly: presence is cleared, pending publishes are flushed. */
  close(): Promise<void>;
}

/** Default lifetimes by class: control-loop messages go stale fast, market messages last a round. */
export const DEFAULT_TTL_MS: Record<MessageClass, number> = {
  life: 24 * 3600_000,
  mkt: 60_000,
  dr: 300_000,
  gossip: 10_000,
  // Settlement data: kept (in the bounded outbox) through a day's outage of the platform.
  meter: 24 * 3600_000,
  cmd: 30_000,
  // Drafts and signatures wait (in the bounded outbox) for a party or platform that is away for a day.
  settle: 24 * 3600_000,
};
