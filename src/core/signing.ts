import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { ErrorCode, P2PError } from './errors.js';

/**
 * Ed25519 signatures over RFC 8785 canonical JSON, the scheme of the wire format (docs/interfaces.md):
 * public keys are the raw 32 bytes, signatures 64 bytes, both base64url without padding.
 */

// The package is CommonJS whose typings declare an ES default export; at run time the default import
// is the function itself.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

// DER prefixes of Ed25519 keys (RFC 8410): SubjectPublicKeyInfo and PKCS#8 around the raw 32 bytes.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface KeyPair {
  /** Raw 32-byte public key, base64url. */
  publicKey: string;
  /** Raw 32-byte private seed, base64url. Keep it out of logs and status pages. */
  privateKey: string;
}

export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    publicKey: spki.subarray(SPKI_PREFIX.length).toString('base64url'),
    privateKey: pkcs8.subarray(PKCS8_PREFIX.length).toString('base64url'),
  };
}

/** The raw 32 bytes of a key in base64url without padding; an `input` error naming `what` otherwise. */
export function raw32(b64url: string, what: string): Buffer {
  const bytes = Buffer.from(b64url, 'base64url');
  if (bytes.length !== 32 || bytes.toString('base64url') !== b64url) {
    throw new P2PError(ErrorCode.input, `${what} must be 32 bytes in base64url without padding`, {
      component: 'keys',
    });
  }
  return bytes;
}

/** Parsed public keys (a ledger checks the same members' keys by the hundred thousand). */
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 4096;

export function publicKeyObject(publicKey: string): KeyObject {
  const cached = publicKeys.get(publicKey);
  if (cached) return cached;
  const key = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, raw32(publicKey, 'public key')]),
    format: 'der',
    type: 'spki',
  });
  if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.delete(publicKeys.keys().next().value as string);
  publicKeys.set(publicKey, key);
  return key;
}

export function privateKeyObject(privateKey: string): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw32(privateKey, 'private key')]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** RFC 8785 canonical JSON text of a value (no undefined, functions or non-finite numbers allowed). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined)
    throw new P2PError(ErrorCode.input, 'value cannot be written as canonical JSON', { component: 'signing' });
  return text;
}

/** Signature (base64url) over the canonical JSON of `value`. */
export function signCanonical(value: unknown, privateKey: string | KeyObject): string {
  const key = typeof privateKey === 'string' ? privateKeyObject(privateKey) : privateKey;
  return sign(null, Buffer.from(canonicalJson(value)), key).toString('base64url');
}

/** True only for a well-formed signature by `publicKey` over the canonical JSON of `value`; never throws. */
export function verifyCanonical(value: unknown, signature: string, publicKey: string | KeyObject): boolean {
  let bytes: Buffer;
  try {
    bytes = Buffer.from(canonicalJson(value));
  } catch {
    return false;
  }
  return verifyBytes(bytes, signature, publicKey);
}

/**
 * `verifyCanonical` for bytes already written as canonical JSON: several parties' signatures of one
 * document are checked against one serialisation. Never throws.
 */
export function verifyBytes(bytes: Buffer, signature: string, publicKey: string | KeyObject): boolean {
  try {
    const key = typeof publicKey === 'string' ? publicKeyObject(publicKey) : publicKey;
    const sig = Buffer.from(signature, 'base64url');
    if (sig.length !== 64) return false;
    return verify(null, bytes, key, sig);
  } catch {
    return false;
  }
}

/** Signs an object: returns it with `sig` over everything else (the envelope and members-list scheme). */
export function withSignature<T extends object>(value: T, privateKey: string | KeyObject): T & { sig: string } {
  return { ...value, sig: signCanonical(value, privateKey) };
}

/** Checks an object signed by `withSignature`. */
export function hasValidSignature(value: object, publicKey: string | KeyObject): boolean {
  const { sig, ...rest } = value as { sig?: unknown };
  return typeof sig === 'string' && verifyCanonical(rest, sig, publicKey);
}
