import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerAcl } from '../../src/comms/broker-acl.js';
import { P2PError } from '../../src/core/errors.js';
import { type Member, MembersList } from '../../src/core/members.js';

const KEY = 'A'.repeat(43);
const member = (id: string, role: Member['role'], cell: string, status: Member['status'] = 'active'): Member => ({
  id,
  publicKey: KEY,
  role,
  cell,
  status,
});
const listOf = (members: Member[]): MembersList => ({ v: 1, operator: 'op', serial: 4, issuedAt: 0, members });

/** Two cells, a prosumer suspended and one revoked, the platform in cell c1. */
const LIST = listOf([
  member('inv-1', 'prosumer', 'c1'),
  member('inv-2', 'prosumer', 'c1'),
  member('inv-9', 'prosumer', 'c1', 'suspended'),
  member('inv-8', 'prosumer', 'c2', 'revoked'),
  member('tx-1', 'mg-trader', 'c1'),
  member('plt', 'platform', 'c1'),
  member('agg', 'aggregator', 'c2'),
  member('inv-21', 'prosumer', 'c2'),
  member('tx-2', 'mg-trader', 'c2'),
]);

/**
 * Mosquitto's reading of an acl_file, written here from its documentation (mosquitto.conf(5)):
 * `user NAME` starts a user's block, `topic [read|write|readwrite] FILTER` adds to it, `#` starts a comment.
 */
function parseAcl(text: string): Map<string, { access: string; filter: string }[]> {
  const users = new Map<string, { access: string; filter: string }[]>();
  let current: { access: string; filter: string }[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [word, ...rest] = line.split(/\s+/);
    if (word === 'user') {
      current = [];
      users.set(rest.join(' '), current);
    } else if (word === 'topic') {
      if (!current) throw new Error(`topic line outside a user block: ${line}`);
      const [access, filter] = rest.length === 1 ? ['readwrite', rest[0]!] : [rest[0]!, rest[1]!];
      current.push({ access, filter });
    } else throw new Error(`unexpected ACL line: ${line}`);
  }
  return users;
}

/** MQTT 3.1.1 section 4.7: `+` one level, `#` the rest (including the parent level). */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const acl = parseAcl(brokerAcl(LIST));
const may = (user: string, access: 'read' | 'write', topic: string) =>
  (acl.get(user) ?? []).some((r) => (r.access === access || r.access === 'readwrite') && matches(r.filter, topic));
const readers = (topic: string) =>
  [...acl.keys()].filter((u) => !u.startsWith('bridge-') && may(u, 'read', topic)).sort();

describe('the brokers ACL from the members list (src/comms/broker-acl.ts)', () => {
  it('a member writes only under its own id in its own cell, presence and Will included', () => {
    expect(may('inv-1', 'write', 'p2p/v1/c1/inv-1/meter/reading')).toBe(true);
    expect(may('inv-1', 'write', 'p2p/v1/c1/inv-1/life/online')).toBe(true);
    expect(may('inv-1', 'write', 'p2p/v1/c1/inv-1/mkt/ack/tx-1')).toBe(true);
    expect(may('inv-1', 'write', 'p2p/v1/c1/inv-2/meter/reading')).toBe(false);
    expect(may('inv-1', 'write', 'p2p/v1/c2/inv-1/meter/reading')).toBe(false);
    expect(may('plt', 'write', 'p2p/v1/c2/plt/settle/head')).toBe(false);
  });

  it("a prosumer reads what is addressed to it, its cell's presence, gossip hellos and market result, the ledger head", () => {
    for (const topic of [
      'p2p/v1/c1/tx-1/mkt/dispatch/inv-1',
      'p2p/v1/c2/agg/dr/dispatch/inv-1',
      'p2p/v1/c1/plt/settle/draft/inv-1',
      'p2p/v1/c1/plt/settle/head/inv-1',
      'p2p/v1/c1/plt/settle/head',
      'p2p/v1/c1/inv-2/gossip/pushsum/inv-1',
      'p2p/v1/c1/tx-1/meter/ack/inv-1',
      'p2p/v1/c1/inv-2/life/online',
      'p2p/v1/c1/inv-2/gossip/hello',
      'p2p/v1/c1/inv-2/gossip/bus-limit',
      'p2p/v1/c1/inv-2/gossip/inverter-trip',
      'p2p/v1/c1/inv-2/gossip/inverter-reconnect',
      'p2p/v1/c1/tx-1/mkt/result',
    ])
      expect(may('inv-1', 'read', topic), topic).toBe(true);
  });

  it("a prosumer reads no other household's readings, offers or addressed messages, nor another cell", () => {
    for (const topic of [
      'p2p/v1/c1/inv-2/meter/reading',
      'p2p/v1/c1/inv-2/mkt/offer',
      'p2p/v1/c1/tx-1/mkt/dispatch/inv-2',
      'p2p/v1/c2/agg/dr/dispatch/inv-21',
      'p2p/v1/c1/plt/settle/draft/inv-2',
      'p2p/v1/c2/inv-21/life/online',
      'p2p/v1/c2/inv-21/gossip/hello',
      'p2p/v1/c2/inv-21/gossip/bus-limit',
      'p2p/v1/c2/inv-21/gossip/inverter-trip',
      'p2p/v1/c2/tx-2/mkt/result',
      '$SYS/broker/connection/bridge-c1/state',
    ])
      expect(may('inv-1', 'read', topic), topic).toBe(false);
  });

  it("the cell's MG trader reads its cell's readings and offers and the price rounds addressed to it", () => {
    expect(may('tx-1', 'read', 'p2p/v1/c1/inv-1/meter/reading')).toBe(true);
    expect(may('tx-1', 'read', 'p2p/v1/c1/inv-1/mkt/offer')).toBe(true);
    expect(may('tx-1', 'read', 'p2p/v1/c1/inv-1/gossip/hello')).toBe(true);
    expect(may('tx-1', 'read', 'p2p/v1/c1/inv-1/gossip/bus-limit')).toBe(true);
    expect(may('tx-1', 'read', 'p2p/v1/c1/inv-1/gossip/inverter-trip')).toBe(true);
    expect(may('tx-1', 'read', 'p2p/v1/c1/inv-1/gossip/inverter-reconnect')).toBe(true);
    expect(may('tx-1', 'read', 'p2p/v1/c2/tx-2/mkt/price-up/tx-1')).toBe(true);
    expect(may('tx-1', 'read', 'p2p/v1/c2/inv-21/meter/reading')).toBe(false);
    expect(may('tx-1', 'read', 'p2p/v1/c2/inv-21/mkt/offer')).toBe(false);
  });

  it("the platform reads what is addressed to it (each house's metering intervals among it), no reading, no offer", () => {
    expect(may('plt', 'read', 'p2p/v1/c1/inv-1/meter/energy/plt')).toBe(true);
    expect(may('plt', 'read', 'p2p/v1/c2/inv-21/meter/energy/plt')).toBe(true);
    expect(may('plt', 'read', 'p2p/v1/c1/inv-1/meter/reading')).toBe(false);
    expect(may('plt', 'read', 'p2p/v1/c2/inv-21/meter/reading')).toBe(false);
    expect(may('plt', 'read', 'p2p/v1/c1/tx-1/mkt/trades/plt')).toBe(true);
    expect(may('plt', 'read', 'p2p/v1/c2/agg/dr/event/plt')).toBe(true);
    expect(may('plt', 'read', 'p2p/v1/c2/inv-21/settle/signature/plt')).toBe(true);
    expect(may('plt', 'read', 'p2p/v1/c1/inv-1/mkt/offer')).toBe(false);
  });

  it('an aggregator reads what is addressed to it and its cell presence only', () => {
    expect(may('agg', 'read', 'p2p/v1/c1/inv-1/dr/ack/agg')).toBe(true);
    expect(may('agg', 'read', 'p2p/v1/c2/inv-21/life/online')).toBe(true);
    expect(may('agg', 'read', 'p2p/v1/c2/inv-21/meter/reading')).toBe(false);
    expect(may('agg', 'read', 'p2p/v1/c2/inv-21/mkt/offer')).toBe(false);
  });

  it('the readers the broker allows are the end-to-end readers: readings, offers, addressed messages', () => {
    expect(readers('p2p/v1/c1/inv-1/meter/reading')).toEqual(['tx-1']);
    expect(readers('p2p/v1/c2/inv-21/meter/reading')).toEqual(['tx-2']);
    expect(readers('p2p/v1/c1/inv-1/meter/energy/plt')).toEqual(['plt']);
    expect(readers('p2p/v1/c1/inv-1/mkt/offer')).toEqual(['tx-1']);
    expect(readers('p2p/v1/c1/tx-1/mkt/dispatch/inv-2')).toEqual(['inv-2']);
    expect(readers('p2p/v1/c1/plt/settle/draft/agg')).toEqual(['agg']);
  });

  it('suspended and revoked members get no line at all', () => {
    const text = brokerAcl(LIST);
    expect(acl.has('inv-9')).toBe(false);
    expect(acl.has('inv-8')).toBe(false);
    expect(text).not.toMatch(/inv-9|inv-8/);
    expect(readers('p2p/v1/c1/tx-1/mkt/dispatch/inv-9')).toEqual([]);
  });

  it("each cell's bridge carries its cell both ways and brings in only what its members may read", () => {
    expect([...acl.keys()].filter((u) => u.startsWith('bridge-')).sort()).toEqual(['bridge-c1', 'bridge-c2']);
    expect(may('bridge-c1', 'write', 'p2p/v1/c1/inv-1/meter/reading')).toBe(true);
    expect(may('bridge-c1', 'read', 'p2p/v1/c1/inv-1/meter/reading')).toBe(true);
    expect(may('bridge-c1', 'write', 'p2p/v1/c2/inv-21/meter/reading')).toBe(false);
    expect(may('bridge-c1', 'read', 'p2p/v1/c2/agg/dr/dispatch/inv-1')).toBe(true);
    // The platform is in c1: the metering intervals c2's houses address to it go down to it, their readings do not.
    expect(may('bridge-c1', 'read', 'p2p/v1/c2/inv-21/meter/energy/plt')).toBe(true);
    expect(may('bridge-c1', 'read', 'p2p/v1/c2/inv-21/meter/reading')).toBe(false);
    expect(may('bridge-c2', 'read', 'p2p/v1/c1/inv-1/meter/reading')).toBe(false);
    expect(may('bridge-c2', 'read', 'p2p/v1/c1/tx-1/mkt/dispatch/inv-1')).toBe(false);
    expect(may('bridge-c2', 'read', 'p2p/v1/c1/plt/settle/head')).toBe(true);
    expect(may('bridge-c2', 'read', 'p2p/v1/c1/tx-1/mkt/price-up/tx-2')).toBe(true);
    expect(may('bridge-c1', 'read', '$SYS/broker/connection/upstream-c1/state')).toBe(true);
    expect(may('bridge-c1', 'write', 'p2p/bridge/c1/state')).toBe(true);
  });

  it('is the same text for the same list', () => {
    expect(brokerAcl(structuredClone(LIST))).toBe(brokerAcl(LIST));
  });

  it('refuses a cell that cannot be a topic level, an id listed twice, an id of a bridge', () => {
    const field = (list: MembersList) => {
      try {
        brokerAcl(list, 'members.json');
      } catch (err) {
        expect(err).toBeInstanceOf(P2PError);
        expect((err as P2PError).code).toBe('input');
        expect((err as P2PError).message).toMatch(/^members\.json: /);
        return (err as P2PError).field;
      }
      return undefined;
    };
    expect(field(listOf([member('inv-1', 'prosumer', 'c1'), member('inv-2', 'prosumer', 'cell/a')]))).toBe(
      'members[1].cell',
    );
    expect(field(listOf([member('inv-1', 'prosumer', 'c1'), member('inv-1', 'mg-trader', 'c1')]))).toBe(
      'members[1].id',
    );
    expect(field(listOf([member('bridge-c1', 'prosumer', 'c1')]))).toBe('members[0].id');
  });

  it('deploy/mosquitto/acl is what the generator makes of deploy/mosquitto/members.example.json', () => {
    const dir = join(import.meta.dirname, '..', '..', 'deploy', 'mosquitto');
    const example = MembersList.parse(JSON.parse(readFileSync(join(dir, 'members.example.json'), 'utf8')));
    expect(readFileSync(join(dir, 'acl'), 'utf8')).toBe(brokerAcl(example));
  });
});
