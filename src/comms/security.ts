import { type KeyObject, sign, verify } from 'node:crypto';
import { statSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { type Member, MembersList, verifyMembersList } from '../core/members.js';
import { canonicalJson, privateKeyObject, publicKeyObject } from '../core/signing.js';
import { loadDataFile } from '../core/validate.js';
import { MAX_LIFETIME_MS } from './envelope.js';
import { type Readers, readersOf } from './messages/catalogue.js';
import {
  BodyOpener,
  BodySealer,
  type EncryptionKeyPair,
  encryptionPublicKeyObject,
  looksSealed,
  type OpenResult,
  type OwnEncryptionKey,
  ownEncryptionKey,
  type Reader,
  SealedBody,
} from './sealed-body.js';
import { sharedSignatureChecks } from './shared-signature-checks.js';
import type { TopicParts } from './topics.js';
import type { Envelope } from './transport.js';

/**
 * The end-to-end authentication of messages (docs/interfaces.md, "Messages on the wire"): every envelope
 * is signed with the sender's Ed25519 key over its canonical JSON without `sig`, and a receiver
 * accepts it only from an active member of the operator-signed members list whose cell is the
 * topic's cell. Brokers and D2D radios are not trusted: the signature is checked on every hop's end.
 */

/** Pairs a key file keeps after rotations (each is dropped a day after its retirement anyway). */
const MAX_RETIRED_KEYS = 16;

const rawKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected a 32-byte key in base64url without padding');

/**
 * A key file, as `p2p-edge platform keygen` writes it: a member's (or the operator's) id, its Ed25519
 * signing key pair and its X25519 encryption key pair (confidential bodies are sealed to the public
 * one). Key files made before encryption existed have no encryption pair; `keygen --rotate` adds one.
 * `retiredEncryptionKeys`: pairs replaced by a rotation, still opened until `retiredAtMs` +
 * `MAX_LIFETIME_MS` (messages sealed to them may still be in their senders' outboxes).
 */
export const GatewayKeyFile = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
    publicKey: rawKey,
    privateKey: rawKey,
    encryptionPublicKey: rawKey.optional(),
    encryptionPrivateKey: rawKey.optional(),
    retiredEncryptionKeys: z
      .array(z.object({ publicKey: rawKey, privateKey: rawKey, retiredAtMs: z.number().int().nonnegative() }).strict())
      .max(MAX_RETIRED_KEYS)
      .optional(),
  })
  .strict()
  .refine((k) => (k.encryptionPublicKey === undefined) === (k.encryptionPrivateKey === undefined), {
    message: 'encryptionPublicKey and encryptionPrivateKey go together',
    path: ['encryptionPrivateKey'],
  });
export type GatewayKeyFile = z.infer<typeof GatewayKeyFile>;

export type RejectReason = 'member' | 'signature';

interface KnownMember {
  member: Member;
  key: KeyObject;
  /** Its encryption key, when the list has one that parses. */
  encryptionKey?: string;
}

/**
 * The members list a gateway trusts: checked against the operator's public key, never replaced by a
 * list with a lower serial, reloaded from its file when the file changes (suspensions and
 * revocations take effect without a restart).
 */
export class MembersDirectory {
  private list: MembersList;
  private byId = new Map<string, KnownMember>();
  /** Readers per kind of message (`readersFor`), until the list changes. */
  private readerCache = new Map<string, SealReaders>();
  private readonly watched: WatchedFile;

  constructor(
    private readonly operatorPublicKey: string,
    list: MembersList,
    private readonly file?: string,
  ) {
    if (!verifyMembersList(list, operatorPublicKey)) {
      throw new P2PError(ErrorCode.config, 'the members list is not signed by the configured operator key', {
        component: 'security',
        ...(file ? { file } : {}),
        field: 'comms.security.membersFile',
        hint: 'check comms.security.operatorPublicKey against the operator key that issued the list',
      });
    }
    this.list = list;
    this.index();
    this.watched = new WatchedFile(file);
  }

  /** Loads and checks a members list file (bad files are config errors naming the file and field). */
  static load(file: string, operatorPublicKey: string): MembersDirectory {
    return new MembersDirectory(operatorPublicKey, loadDataFile(file, MembersList, ErrorCode.config), file);
  }

  get serial(): number {
    return this.list.serial;
  }

  /** Takes a newer list if it is signed by the operator; false (and the old list kept) otherwise. */
  update(list: MembersList): boolean {
    if (list.serial <= this.list.serial || !verifyMembersList(list, this.operatorPublicKey)) return false;
    this.list = list;
    this.index();
    return true;
  }

  /**
   * Re-reads the file when its size or modification time changed. Returns what happened, so that
   * the caller can log it; a bad or older file never replaces the list in use.
   */
  reloadIfChanged(): 'unchanged' | 'updated' | 'rejected' {
    if (!this.file || !this.watched.changed()) return 'unchanged';
    try {
      return this.update(loadDataFile(this.file, MembersList, ErrorCode.config)) ? 'updated' : 'rejected';
    } catch {
      return 'rejected';
    }
  }

  /** The active member with this id and its key object (cached: verifying is the hot path). */
  active(id: string): KnownMember | undefined {
    const known = this.byId.get(id);
    return known?.member.status === 'active' ? known : undefined;
  }

  /**
   * The active members that read a body of `readers` sent by `sender` in `cell` (to `target`), and
   * those of them the list gives no encryption key (they cannot be sealed to).
   */
  readersFor(readers: Readers, cell: string, sender: string, target: string | undefined): SealReaders {
    const key =
      typeof readers === 'string' ? `${readers}:${target ?? ''}` : `${cell}:${readers.cell}:${readers.anyCell}`;
    const cached = this.readerCache.get(key);
    if (cached) return cached;
    const found: SealReaders = { readers: [], withoutKey: [] };
    const take = (k: KnownMember) => {
      if (k.member.id === sender) return;
      if (k.encryptionKey) found.readers.push({ id: k.member.id, encryptionKey: k.encryptionKey });
      else found.withoutKey.push(k.member.id);
    };
    if (readers === 'target') {
      const k = target === undefined ? undefined : this.active(target);
      if (k) take(k);
      else if (target !== undefined) found.withoutKey.push(target);
    } else if (readers !== 'public') {
      for (const k of this.byId.values()) {
        if (k.member.status !== 'active') continue;
        const role = k.member.role;
        if (readers.anyCell.includes(role) || (k.member.cell === cell && readers.cell.includes(role))) take(k);
      }
    }
    if (this.readerCache.size > 1024) this.readerCache.clear();
    this.readerCache.set(key, found);
    return found;
  }

  private index(): void {
    const next = new Map<string, KnownMember>();
    for (const member of this.list.members) {
      const cached = this.byId.get(member.id);
      const key = cached && cached.member.publicKey === member.publicKey ? cached.key : safeKey(member.publicKey);
      const encryptionKey = member.encryptionKey && safeEncryptionKey(member.encryptionKey);
      if (key) next.set(member.id, { member, key, ...(encryptionKey ? { encryptionKey } : {}) });
    }
    this.byId = next;
    this.readerCache = new Map();
  }
}

export interface SealReaders {
  readers: Reader[];
  /** Readers the members list gives no usable encryption key. */
  withoutKey: string[];
}

/** A member's encryption key that is not an X25519 key is left out: nothing is sealed to it. */
function safeEncryptionKey(encryptionKey: string): string | undefined {
  try {
    encryptionPublicKeyObject(encryptionKey);
    return encryptionKey;
  } catch {
    return undefined;
  }
}

/** A member whose key is not an Ed25519 key can never sign; it stays out of the index. */
function safeKey(publicKey: string): KeyObject | undefined {
  try {
    return publicKeyObject(publicKey);
  } catch {
    return undefined;
  }
}

/** Tells, once per change, that a file's size or modification time changed since it was last looked at. */
class WatchedFile {
  private stamp: string;

  constructor(private readonly file: string | undefined) {
    this.stamp = file ? stampOf(file) : '';
  }

  changed(): boolean {
    if (!this.file) return false;
    const stamp = stampOf(this.file);
    if (stamp === this.stamp) return false;
    this.stamp = stamp;
    return true;
  }
}

function stampOf(file: string): string {
  try {
    const s = statSync(file);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** Signs this gateway's envelopes. */
export class EnvelopeSigner {
  private readonly key: KeyObject;

  constructor(
    readonly gatewayId: string,
    privateKey: string,
    readonly publicKey: string,
  ) {
    this.key = privateKeyObject(privateKey);
  }

  static fromKeyFile(file: string, expectedId: string): EnvelopeSigner {
    const k = loadKeyFile(file, expectedId);
    return new EnvelopeSigner(k.id, k.privateKey, k.publicKey);
  }

  /** Signs a document (a settlement's content) as this gateway: Ed25519 over its canonical JSON, base64url. */
  signDocument(document: unknown): string {
    return sign(null, Buffer.from(canonicalJson(document)), this.key).toString('base64url');
  }

  sign<B>(envelope: Envelope<B>): Envelope<B> {
    const { sig: _old, ...unsigned } = envelope;
    const sig = sign(null, Buffer.from(canonicalJson(unsigned)), this.key).toString('base64url');
    return { ...unsigned, sig };
  }

  /**
   * The payload of the envelope signed: its canonical JSON with `sig` added last, the text signed
   * written once (JSON with the same fields as `JSON.stringify(sign(envelope))`).
   */
  signedPayload(envelope: Envelope): string {
    const { sig: _old, ...unsigned } = envelope;
    const text = canonicalJson(unsigned);
    const sig = sign(null, Buffer.from(text), this.key).toString('base64url');
    return `${text.slice(0, -1)},"sig":"${sig}"}`;
  }
}

/**
 * This gateway's encryption keys, from its key file: the current pair (what the members list
 * publishes) and pairs retired by a rotation, still opened for `MAX_LIFETIME_MS` after their
 * retirement. The file is read again when it changes, so a rotation takes effect without a restart.
 */
export class EncryptionKeyring {
  private keys: { key: OwnEncryptionKey; retiredAtMs?: number }[] = [];
  private readonly opener = new BodyOpener();
  private readonly watched: WatchedFile;

  constructor(
    private readonly gatewayId: string,
    keyFile: GatewayKeyFile,
    private readonly file?: string,
  ) {
    this.take(keyFile);
    this.watched = new WatchedFile(file);
  }

  static load(file: string, gatewayId: string): EncryptionKeyring {
    return new EncryptionKeyring(gatewayId, loadKeyFile(file, gatewayId), file);
  }

  /** The current public key (undefined for a key file without an encryption pair). */
  get publicKey(): string | undefined {
    return this.keys.find((k) => k.retiredAtMs === undefined)?.key.publicKey;
  }

  open(sealed: SealedBody, context: Buffer, nowMs: number): OpenResult {
    const usable = this.keys
      .filter((k) => k.retiredAtMs === undefined || k.retiredAtMs + MAX_LIFETIME_MS >= nowMs)
      .map((k) => k.key);
    return this.opener.open(sealed, this.gatewayId, usable, context);
  }

  reloadIfChanged(): 'unchanged' | 'updated' | 'rejected' {
    if (!this.file || !this.watched.changed()) return 'unchanged';
    try {
      this.take(loadKeyFile(this.file, this.gatewayId));
      return 'updated';
    } catch {
      return 'rejected';
    }
  }

  private take(k: GatewayKeyFile): void {
    const keys: { key: OwnEncryptionKey; retiredAtMs?: number }[] = [];
    if (k.encryptionPublicKey && k.encryptionPrivateKey)
      keys.push({ key: ownEncryptionKey({ publicKey: k.encryptionPublicKey, privateKey: k.encryptionPrivateKey }) });
    for (const r of k.retiredEncryptionKeys ?? []) keys.push({ key: ownEncryptionKey(r), retiredAtMs: r.retiredAtMs });
    this.keys = keys;
  }
}

/**
 * The key file after a rotation of its encryption pair: `fresh` becomes current, the pair it replaces
 * is retired at `nowMs` (opened for `MAX_LIFETIME_MS` more), retired pairs past that are dropped. The
 * signing pair stays: it is the member's identity in the members list.
 */
export function rotateEncryptionKey(file: GatewayKeyFile, fresh: EncryptionKeyPair, nowMs: number): GatewayKeyFile {
  const retired = (file.retiredEncryptionKeys ?? []).filter((r) => r.retiredAtMs + MAX_LIFETIME_MS >= nowMs);
  if (file.encryptionPublicKey && file.encryptionPrivateKey)
    retired.push({ publicKey: file.encryptionPublicKey, privateKey: file.encryptionPrivateKey, retiredAtMs: nowMs });
  return {
    id: file.id,
    publicKey: file.publicKey,
    privateKey: file.privateKey,
    encryptionPublicKey: fresh.publicKey,
    encryptionPrivateKey: fresh.privateKey,
    ...(retired.length > 0 ? { retiredEncryptionKeys: retired.slice(-MAX_RETIRED_KEYS) } : {}),
  };
}

/** A key file that must be this gateway's (config errors name the file and field). */
function loadKeyFile(file: string, expectedId: string): GatewayKeyFile {
  const k = loadDataFile(file, GatewayKeyFile, ErrorCode.config);
  if (k.id !== expectedId) {
    throw new P2PError(ErrorCode.config, `${file}: the key belongs to "${k.id}", this gateway is "${expectedId}"`, {
      component: 'security',
      file,
      field: 'comms.security.keyFile',
    });
  }
  return k;
}

/**
 * What the sealing of a body is bound to: the topic and the envelope's header. A sealed body opens
 * only in the message it was sealed for.
 */
export function sealingContext(topic: string, envelope: Envelope): Buffer {
  const { v, sender, epoch, seq, ts, expires, type } = envelope;
  return Buffer.from(canonicalJson({ topic, v, sender, epoch, seq, ts, expires, type }));
}

/** A sealed envelope and the readers left out for want of a key; undefined when the message has no reader at all. */
export type SealOutcome = { envelope: Envelope; withoutKey: string[] } | undefined;

export type OpenedBody =
  | { ok: true; body: unknown }
  | { ok: false; problem: 'not a reader' | 'unreadable' | 'not sealed' | 'no key' };

/** Signing outgoing and checking incoming envelopes, sealing and opening confidential bodies; one per gateway. */
export class MessageSecurity {
  private readonly sealer = new BodySealer();

  constructor(
    readonly signer: EnvelopeSigner,
    readonly members: MembersDirectory,
    /** Without it (a key file of before encryption) nothing confidential can be sent or read. */
    readonly keyring?: EncryptionKeyring,
  ) {}

  sign<B>(envelope: Envelope<B>): Envelope<B> {
    return this.signer.sign(envelope);
  }

  /** The payload of the envelope signed (`EnvelopeSigner.signedPayload`). */
  signedPayload(envelope: Envelope): string {
    return this.signer.signedPayload(envelope);
  }

  /**
   * The envelope with its body sealed to its readers when the message is confidential (unchanged when
   * public); undefined when the members list has no reader of it (then it is not sent). Throws when
   * none of its readers can be sealed to: a confidential body is never sent in the clear.
   * `withoutKey` lists readers left out for want of an encryption key.
   */
  seal(topic: string, parts: TopicParts, envelope: Envelope): SealOutcome {
    const readers = readersOf(parts);
    if (readers === 'public') return { envelope, withoutKey: [] };
    const found = this.members.readersFor(readers, parts.cell, envelope.sender, parts.target);
    // Readers by role, and the list has none (a cell without an MG trader): nobody to send it to.
    if (readers !== 'target' && found.readers.length === 0 && found.withoutKey.length === 0) return undefined;
    if (found.readers.length === 0) {
      throw new P2PError(
        ErrorCode.comms,
        `${parts.cls}/${parts.type}: no reader of it has an encryption key in the members list (serial ${this.members.serial})${found.withoutKey.length > 0 ? `: ${found.withoutKey.join(', ')} without one` : ''}; a confidential body is not sent in the clear`,
        {
          component: 'security',
          hint: "register the members' encryption keys with the platform and issue the list again",
        },
      );
    }
    const body = this.sealer.seal(envelope.body, found.readers, sealingContext(topic, envelope), envelope.ts);
    return { envelope: { ...envelope, body }, withoutKey: found.withoutKey };
  }

  /**
   * The body of a received message as its handlers get it: opened when sealed; refused when it is
   * confidential but arrived in the clear, or sealed but not for this gateway or tampered with.
   */
  open(topic: string, parts: TopicParts, envelope: Envelope, nowMs: number): OpenedBody {
    const body = envelope.body;
    if (!looksSealed(body))
      return readersOf(parts) === 'public' ? { ok: true, body } : { ok: false, problem: 'not sealed' };
    const parsed = SealedBody.safeParse(body);
    if (!parsed.success) return { ok: false, problem: 'unreadable' };
    if (!this.keyring) return { ok: false, problem: 'no key' };
    return this.keyring.open(parsed.data, sealingContext(topic, envelope), nowMs);
  }

  /** Undefined when the envelope is from an active member of the topic's cell and its signature checks. */
  check(envelope: Envelope, topic: TopicParts): RejectReason | undefined {
    const known = this.members.active(envelope.sender);
    if (!known || known.member.cell !== topic.cell) return 'member';
    const { sig, ...unsigned } = envelope;
    if (typeof sig !== 'string') return 'signature';
    const signature = Buffer.from(sig, 'base64url');
    if (signature.length !== 64) return 'signature';
    try {
      const text = canonicalJson(unsigned);
      const shared = sharedSignatureChecks();
      if (shared?.has(sig, known.member.publicKey, text)) return undefined;
      if (!verify(null, Buffer.from(text), known.key, signature)) return 'signature';
      shared?.remember(sig, known.member.publicKey, text);
      return undefined;
    } catch {
      return 'signature';
    }
  }
}
