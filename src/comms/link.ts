import { ErrorCode, P2PError } from '../core/errors.js';
import { MAX_PAYLOAD_BYTES } from './envelope.js';
import type { TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

export interface RawPublish {
  qos: 0 | 1;
  retain: boolean;
}

/**
 * What a link needs from the transport over it: the presence message to announce (stamped and signed
 * afresh on every call), where received bytes go (the transport's one inbound pipeline), and the
 * link's ups and downs.
 */
export interface LinkHost {
  readonly onlineTopic: string;
  onlinePayload(): string;
  /** A signed `life/offline` (a clean leave where there is no broker to clear presence). */
  offlinePayload(): { topic: string; payload: string };
  receive(topic: string, payload: Uint8Array | string): void;
  /** After every (re)connection: the outbox resends what waits for an acknowledgement. */
  linkUp(reconnect: boolean): void;
  linkDown(): void;
  /** A peer that a link without a broker (D2D) no longer hears. */
  peerSilent(peer: string, cell: string, now: number): void;
}

/**
 * One way bytes move between gateways (an MQTT broker connection, a D2D sidelink): connect and
 * close, send a topic and payload, listen to a filter, say how it is. Stamping, signing, the replay
 * guard and reliable delivery are the transport's, shared by every link under it.
 */
export interface Link {
  /** `mqtt` or `d2d`: the name routes and metrics know the link by. */
  readonly backend: string;
  start(host: LinkHost): Promise<void>;
  close(): Promise<void>;
  /** Best effort: no throw when the link is down (the outbox resends reliable classes). */
  send(topic: string, payload: string, options: RawPublish): Promise<void>;
  /** Starts delivering messages that match the MQTT-style patterns of `filter`. */
  listen(filter: TopicFilter): void;
  /** Stops delivering what `filter` alone asked for (links with subscriptions: the broker's). */
  unlisten?(filter: TopicFilter): void;
  status(): TransportStatus;
  /** Throws, naming the sizes, when the link cannot carry the message. */
  assertFits(topic: string, payload: string): void;
  /** A peer's presence as the transport's inbound pipeline took it (links that track presence themselves). */
  presenceHeard?(peer: string, cell: string, online: boolean, now: number): void;
}

/** The payload limit every link shares (a D2D datagram's MTU is smaller still). */
export function assertWithinPayloadLimit(topic: string, payload: string): void {
  const size = Buffer.byteLength(payload);
  if (size > MAX_PAYLOAD_BYTES) {
    throw new P2PError(
      ErrorCode.comms,
      `${topic}: message of ${size} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte limit`,
      {
        component: 'comms',
        hint: 'send less per message (split the body)',
      },
    );
  }
}
