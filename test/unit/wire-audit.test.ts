import { describe, expect, it } from 'vitest';
import { auditWireMessage, memberKeys, WireTally } from '../../src/bench/wire-audit.js';
import { generateEncryptionKeyPair, SEALED_SCHEME, sealBody } from '../../src/comms/sealed-body.js';
import { signMembersList } from '../../src/core/members.js';
import { generateKeyPair, withSignature } from '../../src/core/signing.js';

// Hand-made payloads as a third party sees them on the broker: signed with the node:crypto helpers,
// sealed with the sealed-body primitives, never through the gateways' MessageSecurity.
const operator = generateKeyPair();
const house = generateKeyPair();
const trader = { ...generateKeyPair(), encryption: generateEncryptionKeyPair() };
const list = signMembersList(
  {
    v: 1,
    operator: 'operator',
    serial: 1,
    issuedAt: 0,
    members: [
      { id: 'inv-1', publicKey: house.publicKey, role: 'prosumer', cell: 'c1', status: 'active' },
      {
        id: 'tx-c1',
        publicKey: trader.publicKey,
        role: 'mg-trader',
        cell: 'c1',
        status: 'active',
        encryptionKey: trader.encryption.publicKey,
      },
    ],
  },
  operator.privateKey,
);
const keys = memberKeys(list, operator.publicKey);
const READING_TOPIC = 'p2p/v1/c1/inv-1/meter/reading';
const reading = { netW: -1200.5, pvW: 3000, loadW: 1799.5, voltagePu: 1.03 };
const header = { v: 1, sender: 'inv-1', epoch: 1, seq: 12, ts: 1_000, expires: 61_000, type: 'reading' };
const signedPayload = (body: unknown, signer = house.privateKey) =>
  JSON.stringify(withSignature({ ...header, body }, signer));
const sealed = () =>
  sealBody(reading, [{ id: 'tx-c1', encryptionKey: trader.encryption.publicKey }], Buffer.from('context'));

describe('the wire audit of one message', () => {
  it('passes a sealed meter reading signed by its sender', () => {
    const v = auditWireMessage(READING_TOPIC, Buffer.from(signedPayload(sealed())), keys);
    expect(v).toMatchObject({ kind: 'meter/reading', confidential: true, sealed: true, signature: 'verified' });
    expect(v.plaintextField).toBeUndefined();
  });

  it('finds a meter reading sent in the clear', () => {
    const v = auditWireMessage(READING_TOPIC, signedPayload(reading), keys);
    expect(v).toMatchObject({ confidential: true, sealed: false, plaintextField: 'netW', signature: 'verified' });
  });

  it('does not take a body with a field beside the sealed ones for sealed, and finds the field', () => {
    const v = auditWireMessage(READING_TOPIC, signedPayload({ ...sealed(), pvW: 3000 }), keys);
    expect(v).toMatchObject({ sealed: false, plaintextField: 'pvW' });
    const other = auditWireMessage(READING_TOPIC, signedPayload({ ...sealed(), enc: 'rot13' }), keys);
    expect(other.sealed).toBe(false);
  });

  it('finds a field name even inside a string of the payload', () => {
    const v = auditWireMessage(READING_TOPIC, signedPayload({ note: JSON.stringify(reading) }), keys);
    expect(v.plaintextField).toBe('netW');
  });

  it('fails a tampered signature, a sender not in the list, and a payload that is no envelope', () => {
    const tampered = JSON.parse(signedPayload(sealed()));
    tampered.seq += 8;
    expect(auditWireMessage(READING_TOPIC, JSON.stringify(tampered), keys).signature).toBe('failed');
    const stranger = generateKeyPair();
    expect(auditWireMessage(READING_TOPIC, signedPayload(sealed(), stranger.privateKey), keys).signature).toBe(
      'failed',
    );
    expect(auditWireMessage(READING_TOPIC, 'not json', keys)).toMatchObject({ malformed: true, signature: 'failed' });
  });

  it('leaves public kinds in the clear alone: price rounds and push-sum gossip', () => {
    const price = { from: 'inv-1', to: 'tx-c1', round: 3, price: [0.21], session: 's', settled: false };
    const v = auditWireMessage('p2p/v1/c1/inv-1/mkt/price/tx-c1', signedPayload(price), keys);
    expect(v).toMatchObject({ kind: 'mkt/price', confidential: false, signature: 'verified' });
    expect(v.plaintextField).toBeUndefined();
  });

  it('takes every addressed message of a kind it does not know for confidential (the catalogue says so)', () => {
    expect(auditWireMessage('p2p/v1/c1/inv-1/mkt/unknown-kind/tx-c1', signedPayload({}), keys).confidential).toBe(true);
  });

  it('skips empty payloads (a cleared retained presence)', () => {
    expect(auditWireMessage('p2p/v1/c1/inv-1/life/online', Buffer.alloc(0), keys).empty).toBe(true);
  });

  it('refuses a members list the operator did not sign', () => {
    expect(() => memberKeys(list, generateKeyPair().publicKey)).toThrow(/not signed by the operator/);
  });
});

describe('the wire tally', () => {
  it('counts per kind and in all, with an example of what was seen in the clear', () => {
    const tally = new WireTally();
    const observe = (topic: string, payload: string) => tally.add(topic, auditWireMessage(topic, payload, keys));
    observe(READING_TOPIC, signedPayload(sealed()));
    observe(READING_TOPIC, signedPayload(sealed()));
    observe(READING_TOPIC, signedPayload(reading));
    observe('p2p/v1/c1/inv-1/life/online', '');
    const bad = JSON.parse(signedPayload(sealed()));
    bad.sig = `${bad.sig[0] === 'A' ? 'B' : 'A'}${bad.sig.slice(1)}`;
    observe(READING_TOPIC, JSON.stringify(bad));
    const r = tally.report(['mqtt://127.0.0.1:1883']);
    expect(r).toMatchObject({
      messages: 4,
      confidential: 4,
      sealed: 3,
      plaintextFindings: 1,
      signaturesVerified: 3,
      signatureFailures: 1,
      emptyPayloads: 1,
      malformed: 0,
    });
    expect(r.byKind['meter/reading']!.plaintextExample).toEqual({ topic: READING_TOPIC, field: 'netW' });
    expect(SEALED_SCHEME).toBe('x25519-hkdf-sha256-aes256gcm');
  });
});
