import { ErrorCode, P2PError } from '../core/errors.js';

/** Message classes of the wire format; each has its own QoS and delivery accounting. */
export const MESSAGE_CLASSES = ['life', 'mkt', 'dr', 'gossip', 'meter', 'cmd', 'settle'] as const;
export type MessageClass = (typeof MESSAGE_CLASSES)[number];

export const TOPIC_ROOT = 'p2p/v1';

export interface TopicParts {
  cell: string;
  sender: string;
  cls: MessageClass;
  type: string;
  target?: string;
}

const LEVEL = /^[A-Za-z0-9_-]{1,64}$/;

/** `p2p/v1/<cell>/<sender>/<class>/<type>[/<target>]` */
export function topicFor(parts: TopicParts): string {
  for (const [name, value] of Object.entries(parts)) {
    if (value !== undefined && !LEVEL.test(value)) {
      throw new P2PError(ErrorCode.comms, `topic level ${name} "${value}" must be 1-64 of [A-Za-z0-9_-]`, {
        component: 'topics',
      });
    }
  }
  const base = `${TOPIC_ROOT}/${parts.cell}/${parts.sender}/${parts.cls}/${parts.type}`;
  return parts.target ? `${base}/${parts.target}` : base;
}

/** The parts of a topic, or undefined when it is not one of ours. */
export function parseTopic(topic: string): TopicParts | undefined {
  const levels = topic.split('/');
  if (levels.length < 6 || levels.length > 7 || `${levels[0]}/${levels[1]}` !== TOPIC_ROOT) return undefined;
  const [, , cell, sender, cls, type, target] = levels as [string, string, string, string, string, string, string?];
  if (!(MESSAGE_CLASSES as readonly string[]).includes(cls)) return undefined;
  if (![cell, sender, type, target ?? 'x'].every((l) => LEVEL.test(l))) return undefined;
  return { cell, sender, cls: cls as MessageClass, type, ...(target ? { target } : {}) };
}

export interface TopicFilter {
  /** Cell to listen to; `+` for all cells. */
  cell: string;
  cls: MessageClass;
  /** Message type; any when absent. */
  type?: string;
  /** Only messages addressed to this target (or broadcast when `includeBroadcast`). */
  target?: string;
}

/** MQTT subscription patterns for a filter. */
export function subscriptionPatterns(f: TopicFilter): string[] {
  const base = `${TOPIC_ROOT}/${f.cell}/+/${f.cls}/${f.type ?? '+'}`;
  return f.target ? [`${base}/${f.target}`] : [base, `${base}/+`];
}

export function matchesFilter(parts: TopicParts, f: TopicFilter): boolean {
  return (
    (f.cell === '+' || f.cell === parts.cell) &&
    f.cls === parts.cls &&
    (f.type === undefined || f.type === parts.type) &&
    (f.target === undefined || f.target === parts.target)
  );
}

/** Every gateway's retained presence message in a cell. */
export function presencePattern(cell: string): string {
  return `${TOPIC_ROOT}/${cell}/+/life/online`;
}
