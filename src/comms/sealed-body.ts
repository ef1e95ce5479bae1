import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { raw32 } from '../core/signing.js';

/**
 * Confidential bodies (docs/interfaces.md, "Messages on the wire"): a body meant for some members only
 * is sealed to its readers' X25519 keys, in the manner of HPKE's base mode (RFC 9180) with one
 * content key wrapped per reader:
 * - the body's JSON is encrypted once with a fresh random 256-bit content key (AES-256-GCM, random
 *   96-bit nonce `iv`);
 * - the sender holds an ephemeral X25519 key pair (`epk`) for a while (`EPHEMERAL_LIFETIME_MS`, at
 *   most `EPHEMERAL_MAX_USES` messages), as HPKE holds one context for several messages; for each
 *   reader, HKDF-SHA256(X25519(ephemeral, reader), salt = epk ‖ reader key, info = `HKDF_INFO`)
 *   gives a wrapping key, under which each message's content key is wrapped (AES-256-GCM, a random
 *   96-bit nonce per entry). Sender and reader derive a wrapping key once per ephemeral key, not
 *   once per message: a message then costs two AES-GCM operations per reader instead of a key pair
 *   and a Diffie-Hellman;
 * - both encryptions authenticate `context`, the message's topic and header (sender, epoch, seq,
 *   times, type), so a sealed body cannot be moved to another message, sender or topic: a member
 *   that re-signs another's ciphertext as its own gets a body nobody can open.
 * The sender keeps no content key (it cannot read what it sealed once sealed); the Ed25519 signature
 * over the envelope covers the sealed body as sent. All primitives are Node's (OpenSSL).
 */
export const SEALED_SCHEME = 'x25519-hkdf-sha256-aes256gcm';
const HKDF_INFO = 'p2p-edge/v1 sealed body';
/** How long a sender seals with one ephemeral key, and for how many messages at most. */
export const EPHEMERAL_LIFETIME_MS = 10 * 60_000;
export const EPHEMERAL_MAX_USES = 100_000;

const b64url = (bytes: number) =>
  z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$`), `expected ${bytes} bytes base64url`);
const KEY_ID_BYTES = 6;

export const SealedBody = z
  .object({
    enc: z.literal(SEALED_SCHEME),
    /** The sender's ephemeral X25519 public key, raw 32 bytes. */
    epk: b64url(32),
    /** Nonce of the body's encryption, 12 bytes. */
    iv: b64url(12),
    /** The body's JSON encrypted, with its 16-byte tag at the end. */
    ct: z.string().regex(/^[A-Za-z0-9_-]{22,}$/),
    /**
     * One entry per reader: its id, which of its keys (`keyId`), the nonce (12 bytes) and the content key
     * wrapped for it (32 + 16 bytes).
     */
    to: z
      .array(
        z.object({ id: z.string().min(1).max(64), kid: b64url(KEY_ID_BYTES), n: b64url(12), key: b64url(48) }).strict(),
      )
      .min(1)
      .max(256),
  })
  .strict();
export type SealedBody = z.infer<typeof SealedBody>;

/** A body that claims to be sealed (it names a scheme); whether it is well formed is `SealedBody`'s to say. */
export function looksSealed(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'enc' in body;
}

export interface EncryptionKeyPair {
  /** Raw 32-byte X25519 public key, base64url. */
  publicKey: string;
  /** Raw 32-byte X25519 private key, base64url. Keep it out of logs and status pages. */
  privateKey: string;
}

/**
 * A fresh X25519 pair from 32 random bytes (X25519 takes any 32 bytes as a private key), imported as
 * a JWK: Node takes the private key from `d` alone and derives the public one. Not
 * `generateKeyPairSync`: on Node 20 a collection that frees a key-generation job while a key is being
 * exported can deadlock the process, and a gateway makes a pair for every sealed message.
 */
function freshPair(): { privateKey: KeyObject; publicKey: string; privateRaw: string } {
  const privateRaw = randomBytes(32).toString('base64url');
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: privateRaw, x: '' }, format: 'jwk' });
  return { privateKey, publicKey: createPublicKey(privateKey).export({ format: 'jwk' }).x!, privateRaw };
}

export function generateEncryptionKeyPair(): EncryptionKeyPair {
  const pair = freshPair();
  return { publicKey: pair.publicKey, privateKey: pair.privateRaw };
}

const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 4096;

/** A reader's public key as Node takes it (parsed once: every confidential message needs its readers' keys). */
export function encryptionPublicKeyObject(publicKey: string): KeyObject {
  const cached = publicKeys.get(publicKey);
  if (cached) return cached;
  raw32(publicKey, 'encryption key');
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicKey }, format: 'jwk' });
  if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.delete(publicKeys.keys().next().value as string);
  publicKeys.set(publicKey, key);
  return key;
}

/** Checks that a pair belongs together; the private key as Node takes it. */
export function encryptionPrivateKeyObject(pair: EncryptionKeyPair): KeyObject {
  raw32(pair.publicKey, 'encryption public key');
  raw32(pair.privateKey, 'encryption private key');
  const key = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', x: pair.publicKey, d: pair.privateKey },
    format: 'jwk',
  });
  if (createPublicKey(key).export({ format: 'jwk' }).x !== pair.publicKey)
    throw new P2PError(ErrorCode.input, 'the encryption private key does not belong to its public key', {
      component: 'sealing',
    });
  return key;
}

/** Short name of a reader's key in a sealed body, so that a reader holding several keys takes the right one. */
export function keyId(publicKey: string): string {
  let id = keyIds.get(publicKey);
  if (id === undefined) {
    id = createHash('sha256')
      .update(raw32(publicKey, 'encryption key'))
      .digest()
      .subarray(0, KEY_ID_BYTES)
      .toString('base64url');
    if (keyIds.size >= MAX_CACHED_KEYS) keyIds.delete(keyIds.keys().next().value as string);
    keyIds.set(publicKey, id);
  }
  return id;
}

const keyIds = new Map<string, string>();

export interface Reader {
  id: string;
  /** Its X25519 public key, raw 32 bytes base64url. */
  encryptionKey: string;
}

/** One of this gateway's own encryption keys (the current one, or one retired but still opened). */
export interface OwnEncryptionKey {
  publicKey: string;
  kid: string;
  privateKey: KeyObject;
}

export function ownEncryptionKey(pair: EncryptionKeyPair): OwnEncryptionKey {
  return { publicKey: pair.publicKey, kid: keyId(pair.publicKey), privateKey: encryptionPrivateKeyObject(pair) };
}

/** The key a reader's entries are wrapped under: from X25519(ephemeral, reader) by HKDF-SHA256. */
function wrappingKey(privateKey: KeyObject, publicKey: string, epk: string, readerKey: string): Buffer {
  const shared = diffieHellman({ privateKey, publicKey: encryptionPublicKeyObject(publicKey) });
  const salt = Buffer.concat([Buffer.from(epk, 'base64url'), Buffer.from(readerKey, 'base64url')]);
  return Buffer.from(hkdfSync('sha256', shared, salt, HKDF_INFO, 32));
}

function gcmSeal(key: Buffer, nonce: Buffer, plain: Buffer, context: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(context);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

function gcmOpen(key: Buffer, nonce: Buffer, sealed: Buffer, context: Buffer): Buffer {
  if (sealed.length < 16) throw new Error('too short');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(context);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

/**
 * A gateway's sealing: its ephemeral key pair of the moment and the wrapping key per reader key
 * derived from it. A new pair after `EPHEMERAL_LIFETIME_MS` or `EPHEMERAL_MAX_USES` messages.
 */
export class BodySealer {
  private ephemeral: { privateKey: KeyObject; epk: string; sinceMs: number; uses: number } | undefined;
  private readonly wrapping = new Map<string, Buffer>();

  /** Seals `body` (any JSON value) to `readers`, bound to `context` (`sealingContext`). */
  seal(body: unknown, readers: readonly Reader[], context: Buffer, nowMs: number): SealedBody {
    if (readers.length === 0)
      throw new P2PError(ErrorCode.comms, 'a sealed body needs at least one reader', { component: 'sealing' });
    const e = this.current(nowMs);
    // One draw of randomness for the content key, its nonce and each entry's nonce.
    const random = randomBytes(44 + 12 * readers.length);
    const contentKey = random.subarray(0, 32);
    const iv = random.subarray(32, 44);
    const ct = gcmSeal(contentKey, iv, Buffer.from(JSON.stringify(body)), context);
    const to = readers.map((r, i) => {
      let key = this.wrapping.get(r.encryptionKey);
      if (!key) {
        key = wrappingKey(e.privateKey, r.encryptionKey, e.epk, r.encryptionKey);
        this.wrapping.set(r.encryptionKey, key);
      }
      const n = random.subarray(44 + 12 * i, 56 + 12 * i);
      return {
        id: r.id,
        kid: keyId(r.encryptionKey),
        n: n.toString('base64url'),
        key: gcmSeal(key, n, contentKey, context).toString('base64url'),
      };
    });
    return { enc: SEALED_SCHEME, epk: e.epk, iv: iv.toString('base64url'), ct: ct.toString('base64url'), to };
  }

  private current(nowMs: number): { privateKey: KeyObject; epk: string; sinceMs: number; uses: number } {
    const e = this.ephemeral;
    if (e && e.uses < EPHEMERAL_MAX_USES && nowMs - e.sinceMs < EPHEMERAL_LIFETIME_MS && nowMs >= e.sinceMs) {
      e.uses++;
      return e;
    }
    const pair = freshPair();
    this.wrapping.clear();
    this.ephemeral = { privateKey: pair.privateKey, epk: pair.publicKey, sinceMs: nowMs, uses: 1 };
    return this.ephemeral;
  }
}

/** Seals with an ephemeral key of its own (tests, tools): what a `BodySealer` sends for one message. */
export function sealBody(body: unknown, readers: readonly Reader[], context: Buffer): SealedBody {
  return new BodySealer().seal(body, readers, context, 0);
}

export type OpenResult = { ok: true; body: unknown } | { ok: false; problem: 'not a reader' | 'unreadable' };

/** Wrapping keys a reader derived, by ephemeral key and its own key (the senders' ephemeral keys of the moment). */
const MAX_CACHED_WRAPPING_KEYS = 1024;

/**
 * Opens sealed bodies as one reader with its keys, keeping the wrapping key derived for each sender's
 * ephemeral key (a sender seals with one for minutes).
 */
export class BodyOpener {
  private readonly wrapping = new Map<string, Buffer>();

  /**
   * `not a reader`: no entry for `readerId` or none for a key it holds; `unreadable`: the entry or the
   * ciphertext does not authenticate (tampered, moved to another message, or not JSON).
   */
  open(sealed: SealedBody, readerId: string, keys: readonly OwnEncryptionKey[], context: Buffer): OpenResult {
    let mine: { entry: SealedBody['to'][number]; key: OwnEncryptionKey } | undefined;
    for (const entry of sealed.to) {
      if (entry.id !== readerId) continue;
      const key = keys.find((k) => k.kid === entry.kid);
      if (key) {
        mine = { entry, key };
        break;
      }
    }
    if (!mine) return { ok: false, problem: 'not a reader' };
    try {
      const cacheKey = `${sealed.epk}/${mine.key.kid}`;
      let wrap = this.wrapping.get(cacheKey);
      if (!wrap) {
        wrap = wrappingKey(mine.key.privateKey, sealed.epk, sealed.epk, mine.key.publicKey);
        if (this.wrapping.size >= MAX_CACHED_WRAPPING_KEYS) this.wrapping.delete(this.wrapping.keys().next().value!);
        this.wrapping.set(cacheKey, wrap);
      }
      const contentKey = gcmOpen(
        wrap,
        Buffer.from(mine.entry.n, 'base64url'),
        Buffer.from(mine.entry.key, 'base64url'),
        context,
      );
      const plain = gcmOpen(
        contentKey,
        Buffer.from(sealed.iv, 'base64url'),
        Buffer.from(sealed.ct, 'base64url'),
        context,
      );
      return { ok: true, body: JSON.parse(plain.toString('utf8')) as unknown };
    } catch {
      return { ok: false, problem: 'unreadable' };
    }
  }
}

/** Opens a sealed body as reader `readerId` with one of its keys (`BodyOpener.open` without its cache). */
export function openBody(
  sealed: SealedBody,
  readerId: string,
  keys: readonly OwnEncryptionKey[],
  context: Buffer,
): OpenResult {
  return new BodyOpener().open(sealed, readerId, keys, context);
}
