import { describe, expect, it } from 'vitest';
import { activeMember, MembersList, signMembersList, verifyMembersList } from '../../src/core/members.js';
import {
  canonicalJson,
  generateKeyPair,
  hasValidSignature,
  signCanonical,
  verifyCanonical,
  withSignature,
} from '../../src/core/signing.js';

describe('Ed25519 over canonical JSON', () => {
  it('canonicalises per RFC 8785 (sorted keys, no spaces, shortest numbers)', () => {
    expect(canonicalJson({ b: 1, a: [1.0, 'x', { d: null, c: true }], e: 1e21 })).toBe(
      '{"a":[1,"x",{"c":true,"d":null}],"b":1,"e":1e+21}',
    );
  });

  it('signs and verifies regardless of key order, and rejects any change', () => {
    const keys = generateKeyPair();
    expect(keys.publicKey).toHaveLength(43);
    const sig = signCanonical({ a: 1, b: 'x' }, keys.privateKey);
    expect(verifyCanonical({ b: 'x', a: 1 }, sig, keys.publicKey)).toBe(true);
    expect(verifyCanonical({ a: 2, b: 'x' }, sig, keys.publicKey)).toBe(false);
    expect(verifyCanonical({ a: 1, b: 'x' }, sig, generateKeyPair().publicKey)).toBe(false);
    expect(verifyCanonical({ a: 1, b: 'x' }, 'garbage', keys.publicKey)).toBe(false);
    expect(verifyCanonical({ a: 1, b: 'x' }, sig, 'not-a-key')).toBe(false);
  });

  it('withSignature / hasValidSignature sign everything but sig', () => {
    const keys = generateKeyPair();
    const signed = withSignature({ v: 1, body: { x: 1 } }, keys.privateKey);
    expect(hasValidSignature(signed, keys.publicKey)).toBe(true);
    expect(hasValidSignature({ ...signed, body: { x: 2 } }, keys.publicKey)).toBe(false);
    expect(hasValidSignature({ v: 1 }, keys.publicKey)).toBe(false);
  });
});

describe('members list', () => {
  it('is signed by the operator and names active members only', () => {
    const op = generateKeyPair();
    const a = generateKeyPair();
    const list = signMembersList(
      {
        v: 1,
        operator: 'op',
        serial: 1,
        issuedAt: 0,
        members: [
          { id: 'inv-1', publicKey: a.publicKey, role: 'prosumer', cell: 'c1', status: 'active' },
          { id: 'inv-2', publicKey: a.publicKey, role: 'prosumer', cell: 'c1', status: 'revoked' },
        ],
      },
      op.privateKey,
    );
    expect(MembersList.parse(list)).toEqual(list);
    expect(verifyMembersList(list, op.publicKey)).toBe(true);
    expect(verifyMembersList({ ...list, serial: 2 }, op.publicKey)).toBe(false);
    expect(activeMember(list, 'inv-1')?.role).toBe('prosumer');
    expect(activeMember(list, 'inv-2')).toBeUndefined();
    expect(activeMember(list, 'nobody')).toBeUndefined();
  });
});
