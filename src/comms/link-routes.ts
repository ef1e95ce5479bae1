import { ErrorCode, P2PError } from '../core/errors.js';
import { MESSAGE_CLASSES, type MessageClass } from './topics.js';

/** The links a gateway can have side by side: its broker connection and its D2D sidelink. */
export const LINK_NAMES = ['mqtt', 'd2d'] as const;
export type LinkName = (typeof LINK_NAMES)[number];

/**
 * `comms.routes`: for each message class, the link (or links) it is sent over; `default` for every
 * class not named. Presence (`life`) is not routed: it goes on every link, so a peer heard on any link
 * is online.
 */
export type RouteSpec = Partial<Record<string, string | string[]>> & { default?: string };

export interface RouteProblem {
  /** The config field, e.g. `comms.routes.gossip`. */
  field: string;
  message: string;
}

/** The default link of classes not named: the broker where there is one (it reaches the whole cell and the platform). */
export function defaultLink(configured: readonly LinkName[]): LinkName | undefined {
  return configured.includes('mqtt') ? 'mqtt' : configured[0];
}

/** What is wrong with a route spec, each with its field; empty when it is good. */
export function routeProblems(spec: RouteSpec, configured: readonly LinkName[]): RouteProblem[] {
  const problems: RouteProblem[] = [];
  for (const [key, value] of Object.entries(spec)) {
    const field = `comms.routes.${key}`;
    if (key === 'life') {
      problems.push({ field, message: 'presence (life) goes on every link and takes no route' });
      continue;
    }
    if (key !== 'default' && !(MESSAGE_CLASSES as readonly string[]).includes(key)) {
      problems.push({
        field,
        message: `unknown message class "${key}" (classes: ${MESSAGE_CLASSES.filter((c) => c !== 'life').join(', ')}, or default)`,
      });
      continue;
    }
    const names = value === undefined ? [] : Array.isArray(value) ? value : [value];
    if (names.length === 0) problems.push({ field, message: 'names no link' });
    for (const name of names) {
      if (!(LINK_NAMES as readonly string[]).includes(name))
        problems.push({ field, message: `unknown link "${name}" (links: ${LINK_NAMES.join(', ')})` });
      else if (!configured.includes(name as LinkName))
        problems.push({
          field,
          message: `routes to link "${name}", which is not configured (add a comms.${name} section)`,
        });
    }
  }
  return problems;
}

/** Which links carry which message class (pure: built once from the config). */
export class LinkRoutes {
  private readonly byClass: Record<MessageClass, readonly LinkName[]>;

  constructor(
    readonly configured: readonly LinkName[],
    spec: RouteSpec = {},
  ) {
    const [problem] = routeProblems(spec, configured);
    if (problem) throw new P2PError(ErrorCode.config, `${problem.field}: ${problem.message}`, { field: problem.field });
    const fallback = spec.default === undefined ? defaultLink(configured) : (spec.default as LinkName);
    if (fallback === undefined)
      throw new P2PError(
        ErrorCode.config,
        'comms.transport hybrid: configure at least one link (comms.mqtt, comms.d2d)',
        {
          field: 'comms.transport',
        },
      );
    const linksOf = (cls: MessageClass): readonly LinkName[] => {
      if (cls === 'life') return configured;
      const named = spec[cls];
      const names = named === undefined ? [fallback] : Array.isArray(named) ? named : [named];
      return [...new Set(names as LinkName[])];
    };
    this.byClass = Object.fromEntries(MESSAGE_CLASSES.map((c) => [c, linksOf(c)])) as Record<
      MessageClass,
      readonly LinkName[]
    >;
  }

  /** The links a message of `cls` is sent over (and its subscriptions made on). */
  linksFor(cls: MessageClass): readonly LinkName[] {
    return this.byClass[cls];
  }

  carries(link: LinkName, cls: MessageClass): boolean {
    return this.byClass[cls].includes(link);
  }

  /** Every class with its links (status, docs). */
  table(): Record<MessageClass, readonly LinkName[]> {
    return { ...this.byClass };
  }
}
