import { ErrorCode, P2PError } from '../core/errors.js';
import type { Member, MemberRole, MembersList } from '../core/members.js';
import { TOPIC_ROOT } from './topics.js';

/**
 * The Mosquitto ACL (`acl_file`) of the cell and upstream brokers, made from the operator-signed
 * members list: each gateway reads only what its roles subscribe to and writes only under its own id.
 * The user name is the client certificate's CN (`use_identity_as_username true`), the gateway id.
 *
 * Mosquitto denies what no line allows once an `acl_file` is set, so a suspended or revoked member
 * (which gets no line) can connect but neither read nor write. It checks read rules when it delivers
 * a message, not when a client subscribes: a gateway subscribed to `p2p/v1/#` gets only what its
 * lines allow. The end-to-end signature stays the layer that decides what an application accepts;
 * this one keeps a household's readings and addressed messages away from the other members.
 */

/**
 * One ACL line, written with placeholders that are filled in per member:
 * `{id}` the member's id, `{cell}` its cell, `{everyCell}` each cell of the list (one line per cell),
 * `{platform}` `<cell>/<id>` of each active platform member (one line per platform).
 */
export interface AclRule {
  access: 'read' | 'write';
  topic: string;
  /** Which code needs it, so the generated file explains itself. */
  why: string;
}

const P = TOPIC_ROOT;

/** What every active member may do, whatever its role. */
export const EVERY_MEMBER_RULES: readonly AclRule[] = [
  { access: 'write', topic: `${P}/{cell}/{id}/#`, why: 'its own messages in its own cell, its presence and Will' },
  {
    access: 'read',
    topic: `${P}/+/+/+/+/{id}`,
    why: 'messages addressed to it: market and DR dispatches, price rounds, push-sum, settlement drafts and heads, acknowledgements',
  },
  { access: 'read', topic: `${P}/{cell}/+/life/#`, why: "its cell's presence (every transport)" },
  { access: 'read', topic: `${P}/{platform}/settle/head`, why: "the platform's ledger head (settlement party)" },
];

/**
 * What each role reads on top of `EVERY_MEMBER_RULES`, from the routes its gateway roles subscribe
 * to (`src/agent/roles`, `src/agent/settlement`). A member role runs these gateway roles (`DEFAULT_ROLES`,
 * `ROLE_OF_KIND`): prosumer → prosumer + voltage-agent; mg-trader → mg-trader + coupling-agent (and
 * voltage-agent where configured); aggregator → dr-aggregator; dso → dso; platform → platform.
 * Everything else they read is addressed to them.
 */
export const ROLE_RULES: Readonly<Record<MemberRole, readonly AclRule[]>> = {
  prosumer: [
    { access: 'read', topic: `${P}/{cell}/+/gossip/hello`, why: "voltage agent: its cell's gossip neighbours" },
    { access: 'read', topic: `${P}/{cell}/+/gossip/bus-limit`, why: "voltage agent: its cell's buses beyond a limit" },
    {
      access: 'read',
      topic: `${P}/{cell}/+/gossip/inverter-trip`,
      why: "voltage agent: its cell's inverters tripping",
    },
    {
      access: 'read',
      topic: `${P}/{cell}/+/gossip/inverter-reconnect`,
      why: "voltage agent: its cell's inverters reconnecting",
    },
    { access: 'read', topic: `${P}/{cell}/+/mkt/result`, why: "its cell's cleared market (the MG trader's prices)" },
  ],
  'mg-trader': [
    {
      access: 'read',
      topic: `${P}/{cell}/+/meter/reading`,
      why: "MG trader and coupling agent: its cell's meter readings (cell balance, transformer loading)",
    },
    { access: 'read', topic: `${P}/{cell}/+/mkt/offer`, why: "MG trader: its cell's prosumers' offers" },
    { access: 'read', topic: `${P}/{cell}/+/gossip/hello`, why: "voltage agent, where configured: its cell's gossip" },
    {
      access: 'read',
      topic: `${P}/{cell}/+/gossip/bus-limit`,
      why: "voltage agent, where configured: its cell's buses beyond a limit",
    },
    {
      access: 'read',
      topic: `${P}/{cell}/+/gossip/inverter-trip`,
      why: "voltage agent, where configured: its cell's inverters tripping",
    },
    {
      access: 'read',
      topic: `${P}/{cell}/+/gossip/inverter-reconnect`,
      why: "voltage agent, where configured: its cell's inverters reconnecting",
    },
  ],
  aggregator: [],
  dso: [],
  operator: [],
  // Everything the platform reads is addressed to it (each house's metering intervals, trade reports,
  // DR events, settlement signatures and disputes): it gets no cell's readings.
  platform: [],
};

/** The user name of the bridge between a cell's broker and the upstream broker (its certificate's CN). */
export const bridgeUser = (cell: string): string => `bridge-${cell}`;

const TOPIC_LEVEL = /^[A-Za-z0-9_-]{1,64}$/;

interface Expansion {
  everyCell: readonly string[];
  platforms: readonly Member[];
}

/** The concrete topic filters of `rule` for `member`. */
function expand(rule: AclRule, member: Member, x: Expansion): string[] {
  let topics = [rule.topic.replaceAll('{id}', member.id).replaceAll('{cell}', member.cell)];
  if (rule.topic.includes('{everyCell}'))
    topics = topics.flatMap((t) => x.everyCell.map((cell) => t.replaceAll('{everyCell}', cell)));
  if (rule.topic.includes('{platform}'))
    topics = topics.flatMap((t) => x.platforms.map((p) => t.replaceAll('{platform}', `${p.cell}/${p.id}`)));
  return topics;
}

/** The rules of one member: `access topic` pairs, without repeats. */
function memberRules(member: Member, x: Expansion): { access: AclRule['access']; topic: string }[] {
  const seen = new Set<string>();
  const out: { access: AclRule['access']; topic: string }[] = [];
  for (const rule of [...EVERY_MEMBER_RULES, ...ROLE_RULES[member.role]]) {
    for (const topic of expand(rule, member, x)) {
      const key = `${rule.access} ${topic}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ access: rule.access, topic });
    }
  }
  return out;
}

/** Refuses a list whose ids or cells cannot be topic levels, or whose ids collide with each other or a bridge. */
function checkList(list: MembersList, file: string | undefined): void {
  const cells = new Set(list.members.map((m) => m.cell));
  const ids = new Set<string>();
  list.members.forEach((m, i) => {
    const field = (name: string) => `members[${i}].${name}`;
    const fail = (name: string, why: string): never => {
      throw new P2PError(ErrorCode.input, `${file ? `${file}: ` : ''}${field(name)}: ${why}`, {
        field: field(name),
        component: 'broker-acl',
        ...(file ? { file } : {}),
      });
    };
    if (!TOPIC_LEVEL.test(m.cell)) fail('cell', `"${m.cell}" must be 1-64 of [A-Za-z0-9_-] (it is a topic level)`);
    if (!TOPIC_LEVEL.test(m.id)) fail('id', `"${m.id}" must be 1-64 of [A-Za-z0-9_-] (it is a topic level)`);
    if (ids.has(m.id)) fail('id', `"${m.id}" is listed twice`);
    ids.add(m.id);
    if ([...cells].some((cell) => bridgeUser(cell) === m.id))
      fail('id', `"${m.id}" is the user name of a cell's bridge (bridge-<cell>)`);
  });
}

const header = (list: MembersList) =>
  [
    '# Mosquitto ACL (acl_file) generated by `p2p-edge platform broker-acl` from the members list of',
    `# operator ${list.operator}, serial ${list.serial}. Do not edit: regenerate it whenever the list changes,`,
    '# then reload Mosquitto (SIGHUP). The user name is the client certificate CN (the gateway id).',
    '# Nothing is allowed unless a line below allows it: suspended and revoked members have no lines.',
    '# Read rules are checked on delivery, so a subscription to p2p/v1/# gets only what they allow.',
    '#',
    '# The rules ({id}: the member, {cell}: its cell, {everyCell}: each cell of the list,',
    '# {platform}: <cell>/<id> of each platform member).',
    '# Every active member:',
    ...EVERY_MEMBER_RULES.map((r) => `#   ${r.access} ${r.topic}: ${r.why}`),
    ...Object.entries(ROLE_RULES).flatMap(([role, rules]) =>
      rules.length === 0
        ? []
        : [`# A member with role ${role} also:`, ...rules.map((r) => `#   ${r.access} ${r.topic}: ${r.why}`)],
    ),
    '# The bridge of a cell (bridge-<cell>): readwrite p2p/v1/<cell>/# and, from the other cells, what',
    "# the cell's members may read; its notification topic p2p/bridge/<cell>/state; broker status.",
  ].join('\n');

/**
 * The ACL text for `list` (its signature is the caller's to check). Only active members get lines; the
 * cells, the platforms and the bridges are those of the active members. Deterministic: the same list
 * gives the same text. `file`: where the list came from, named in errors.
 */
export function brokerAcl(list: MembersList, file?: string): string {
  checkList(list, file);
  const active = list.members.filter((m) => m.status === 'active');
  const x: Expansion = {
    everyCell: [...new Set(active.map((m) => m.cell))],
    platforms: active.filter((m) => m.role === 'platform'),
  };
  const blocks: string[] = [header(list)];
  const readsOfCell = new Map<string, string[]>();
  for (const member of active) {
    const rules = memberRules(member, x);
    blocks.push(
      [`# ${member.id}: ${member.role}, cell ${member.cell}`, `user ${member.id}`]
        .concat(rules.map((r) => `topic ${r.access} ${r.topic}`))
        .join('\n'),
    );
    const reads = readsOfCell.get(member.cell) ?? [];
    for (const r of rules) if (r.access === 'read') reads.push(r.topic);
    readsOfCell.set(member.cell, reads);
  }
  for (const cell of x.everyCell) {
    const own = `${P}/${cell}/`;
    // Only from the other cells: its own cell's topics are all allowed by the readwrite line.
    const fromOtherCells = [...new Set(readsOfCell.get(cell))].filter((t) => !t.startsWith(own));
    blocks.push(
      [
        `# the bridge of cell ${cell} to the upstream broker`,
        `user ${bridgeUser(cell)}`,
        `topic readwrite ${P}/${cell}/#`,
        ...fromOtherCells.map((t) => `topic read ${t}`),
        `topic write p2p/bridge/${cell}/state`,
        'topic read $SYS/broker/connection/#',
      ].join('\n'),
    );
  }
  return `${blocks.join('\n\n')}\n`;
}
