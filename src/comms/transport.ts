import type { MessageClass, TopicFilter, TopicParts } from './topics.js';

/**
 * The envelope of every message on the wire (INTERFACES.md, "Messages on the wire"). `sig` is added
 * by the signing layer; a transport moves envelopes and does not look inside `body`.
 */
export interface Envelope<B = unknown> {
  v: 1;
  sender: string;
  /** Changes on every restart that lost the sequence counter; (sender, epoch, seq) is unique. */
  epoch: number;
  seq: number;
  /** ms since the Unix epoch. */
  ts: number;
  /** ms since the Unix epoch after which the message is void. */
  expires: number;
  type: string;
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
}

export type DeliveryHandler = (delivery: Delivery) => void;

/**
 * Publish/subscribe between gateways, with presence. Backends: MQTT (field), in-memory (simulation
 * and tests); the D2D sidelink backend implements the same interface.
 */
export interface Transport {
  start(): Promise<void>;
  publish(cls: MessageClass, type: string, body: unknown, options?: PublishOptions): Promise<void>;
  subscribe(filter: TopicFilter, handler: DeliveryHandler): void;
  peers(): PeerInfo[];
  status(): TransportStatus;
  /** Leaves cleanly: presence is cleared, pending publishes are flushed. */
  close(): Promise<void>;
}

/** Default lifetimes by class: control-loop messages go stale fast, market messages last a round. */
export const DEFAULT_TTL_MS: Record<MessageClass, number> = {
  life: 24 * 3600_000,
  mkt: 60_000,
  dr: 300_000,
  gossip: 10_000,
  meter: 60_000,
  cmd: 30_000,
};

/** Presence body, published retained under `life/online` and cleared by the Will. */
export interface OnlineBody {
  online: true;
  role: string;
  publicKey: string;
  version: string;
}
