import { TOPIC_ROOT } from './topics.js';

/**
 * A message carried over the sidelink for a D2D relay: a datagram topic naming the direction and the
 * gateway it is for (`p2p/v1/relay/up/<relay>`: to the relay, to publish on the broker;
 * `p2p/v1/relay/down/<gateway>`: to the gateway cut off from the broker) and, as its payload, the
 * message's own topic and signed envelope exactly as the broker carries them (`<topic>\n<envelope>`).
 * A relay changes neither; the end-to-end signature is checked by every receiver.
 */
export type RelayDirection = 'up' | 'down';

const FRAME_ROOT = `${TOPIC_ROOT}/relay`;
const FRAME_TOPIC = new RegExp(`^${FRAME_ROOT}/(up|down)/([A-Za-z0-9_-]{1,64})$`);

export function relayFrameTopic(direction: RelayDirection, gateway: string): string {
  return `${FRAME_ROOT}/${direction}/${gateway}`;
}

/** The direction and gateway of a relay frame's topic; undefined for any other topic. */
export function parseRelayFrameTopic(topic: string): { direction: RelayDirection; gateway: string } | undefined {
  const match = FRAME_TOPIC.exec(topic);
  if (!match) return undefined;
  return { direction: match[1] as RelayDirection, gateway: match[2]! };
}

export function relayFramePayload(topic: string, payload: string): string {
  return `${topic}\n${payload}`;
}

/** The carried topic and envelope bytes; undefined when the frame has no topic line or no envelope. */
export function parseRelayFramePayload(frame: Uint8Array | string): { topic: string; payload: string } | undefined {
  const text = typeof frame === 'string' ? frame : Buffer.from(frame).toString('utf8');
  const newline = text.indexOf('\n');
  if (newline <= 0 || newline === text.length - 1) return undefined;
  return { topic: text.slice(0, newline), payload: text.slice(newline + 1) };
}
