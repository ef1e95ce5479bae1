import { sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SharedSignatureChecks } from '../../src/comms/shared-signature-checks.js';
import { canonicalJson, generateKeyPair, privateKeyObject } from '../../src/core/signing.js';

describe('signature checks shared by the gateways of one process', () => {
  const alice = generateKeyPair();
  const mallory = generateKeyPair();
  const text = canonicalJson({ v: 1, sender: 'inv-1', seq: 1, body: { bus: 'b1', multiplier: 0.2 } });
  const sig = sign(null, Buffer.from(text), privateKeyObject(alice.privateKey)).toString('base64url');

  it('remembers a success for exactly that signature, key and text', () => {
    const shared = new SharedSignatureChecks();
    expect(shared.has(sig, alice.publicKey, text)).toBe(false);
    shared.remember(sig, alice.publicKey, text);
    expect(shared.has(sig, alice.publicKey, text)).toBe(true);
    // The same signature over another text, or with another key, is not taken for checked.
    const altered = canonicalJson({ v: 1, sender: 'inv-1', seq: 1, body: { bus: 'b1', multiplier: 0.9 } });
    expect(shared.has(sig, alice.publicKey, altered)).toBe(false);
    expect(shared.has(sig, mallory.publicKey, text)).toBe(false);
  });

  it('forgets the oldest beyond its bound', () => {
    const shared = new SharedSignatureChecks(2);
    shared.remember('s1', alice.publicKey, 'a');
    shared.remember('s2', alice.publicKey, 'b');
    shared.remember('s3', alice.publicKey, 'c');
    expect([shared.has('s1', alice.publicKey, 'a'), shared.has('s2', alice.publicKey, 'b')]).toEqual([false, true]);
    expect(shared.has('s3', alice.publicKey, 'c')).toBe(true);
  });
});
