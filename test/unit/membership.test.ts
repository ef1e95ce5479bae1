import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { activeMember, type MembersList, verifyMembersList } from '../../src/core/members.js';
import { generateKeyPair, hasValidSignature, withSignature } from '../../src/core/signing.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { Membership } from '../../src/platform/membership.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const operator = generateKeyPair();
let n = 0;
function membership(): Membership {
  const db = openDatabase(join(tmp.dir, `members-${n++}.db`));
  let now = 1_780_000_000_000;
  return new Membership(db, { id: 'cell-op', privateKey: operator.privateKey }, () => now++);
}

/** What comms does with an incoming message: the sender must be an active member and the signature must check. */
function accepts(list: MembersList, message: { from: string; sig: string }): boolean {
  const sender = activeMember(list, message.from);
  return sender !== undefined && hasValidSignature(message, sender.publicKey);
}

describe('membership', () => {
  it('register, admit, suspend, readmit and revoke raise the serial of a list the operator signs', () => {
    const m = membership();
    const house = generateKeyPair();
    m.register({ id: 'house-1', publicKey: house.publicKey, role: 'prosumer', cell: 'c1' });
    expect(m.get('house-1')?.status).toBe('pending');
    expect(m.membersList().members).toEqual([]);
    const admitted = m.admit('house-1');
    expect(admitted.serial).toBe(1);
    expect(verifyMembersList(admitted, operator.publicKey)).toBe(true);
    expect(activeMember(admitted, 'house-1')?.publicKey).toBe(house.publicKey);
    const suspended = m.suspend('house-1');
    expect(suspended.serial).toBe(2);
    expect(activeMember(suspended, 'house-1')).toBeUndefined();
    expect(m.admit('house-1').serial).toBe(3);
    const revoked = m.revoke('house-1');
    expect(revoked.serial).toBe(4);
    expect(revoked.members).toEqual([
      { id: 'house-1', publicKey: house.publicKey, role: 'prosumer', cell: 'c1', status: 'revoked' },
    ]);
    expect(() => m.admit('house-1')).toThrow(/house-1 is revoked; cannot make it active/);
    expect(m.serial()).toBe(4);
  });

  it("a revoked member's signed message is rejected; an active member's is accepted", () => {
    const m = membership();
    const a = generateKeyPair();
    const b = generateKeyPair();
    m.register({ id: 'pv-a', publicKey: a.publicKey, role: 'prosumer', cell: 'c1' });
    m.register({ id: 'agg-b', publicKey: b.publicKey, role: 'aggregator', cell: 'c1' });
    m.admit('pv-a');
    m.admit('agg-b');
    const fromA = withSignature({ from: 'pv-a', topic: 'mkt', bid: { kWh: 2, price: 0.1 } }, a.privateKey);
    const fromB = withSignature({ from: 'agg-b', topic: 'dr', event: 7 }, b.privateKey);
    const before = m.membersList();
    expect(accepts(before, fromA)).toBe(true);
    expect(accepts(before, fromB)).toBe(true);
    const after = m.revoke('pv-a');
    expect(after.serial).toBeGreaterThan(before.serial);
    expect(accepts(after, fromA)).toBe(false);
    expect(accepts(after, fromB)).toBe(true);
    // Someone else's key under the member's id is rejected too.
    expect(accepts(after, withSignature({ from: 'agg-b', topic: 'dr' }, a.privateKey))).toBe(false);
  });

  it('refuses bad registrations with a clear error and changes nothing', () => {
    const m = membership();
    const k = generateKeyPair();
    m.register({ id: 'dso-1', publicKey: k.publicKey, role: 'dso', cell: 'c1' });
    expect(() => m.register({ id: 'dso-1', publicKey: generateKeyPair().publicKey, role: 'dso', cell: 'c1' })).toThrow(
      /already registered/,
    );
    expect(() => m.register({ id: 'x', publicKey: k.publicKey, role: 'prosumer', cell: 'c1' })).toThrow(
      /already belongs to member dso-1/,
    );
    expect(() => m.register({ id: 'y', publicKey: generateKeyPair().publicKey, role: 'operator', cell: 'c1' })).toThrow(
      /role/,
    );
    expect(() => m.register({ id: 'z', publicKey: 'short', role: 'prosumer', cell: 'c1' })).toThrow(/publicKey/);
    expect(() => m.suspend('nobody')).toThrow(/unknown member nobody/);
    expect(m.list().map((r) => r.id)).toEqual(['dso-1']);
    expect(m.serial()).toBe(0);
  });
});
