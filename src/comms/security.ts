import { type KeyObject, sign, verify } from 'node:crypto';
import { statSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { type Member, MembersList, verifyMembersList } from '../core/members.js';
import { canonicalJson, privateKeyObject, publicKeyObject } from '../core/signing.js';
import { loadDataFile } from '../core/validate.js';
import type { TopicParts } from './topics.js';
import type { Envelope } from './transport.js';

/**
 * The end-to-end authentication of messages (docs/interfaces.md, "Messages on the wire"): every envelope
 * is signed with the sender's Ed25519 key over its canonical JSON without `sig`, and a receiver
 * accepts it only from an active member of the operator-signed members list whose cell is the
 * topic's cell. Brokers and D2D radios are not trusted: the signature is checked on every hop's end.
 */

/** A gateway's key file, as `p2p-edge platform keygen` writes it. */
export const GatewayKeyFile = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
    publicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    privateKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  })
  .strict();
export type GatewayKeyFile = z.infer<typeof GatewayKeyFile>;

export type RejectReason = 'member' | 'signature';

interface KnownMember {
  member: Member;
  key: KeyObject;
}

/**
 * The members list a gateway trusts: checked against the operator's public key, never replaced by a
 * list with a lower serial, reloaded from its file when the file changes (suspensions and
 * revocations take effect without a restart).
 */
export class MembersDirectory {
  private list: MembersList;
  private byId = new Map<string, KnownMember>();
  private fileStamp = '';

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
    if (file) this.fileStamp = stampOf(file);
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
    if (!this.file) return 'unchanged';
    const stamp = stampOf(this.file);
    if (stamp === this.fileStamp) return 'unchanged';
    this.fileStamp = stamp;
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

  private index(): void {
    const next = new Map<string, KnownMember>();
    for (const member of this.list.members) {
      const cached = this.byId.get(member.id);
      const key = cached && cached.member.publicKey === member.publicKey ? cached.key : safeKey(member.publicKey);
      if (key) next.set(member.id, { member, key });
    }
    this.byId = next;
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
    const k = loadDataFile(file, GatewayKeyFile, ErrorCode.config);
    if (k.id !== expectedId) {
      throw new P2PError(ErrorCode.config, `${file}: the key belongs to "${k.id}", this gateway is "${expectedId}"`, {
        component: 'security',
        file,
        field: 'comms.security.keyFile',
      });
    }
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
}

/** Signing outgoing and checking incoming envelopes; one per gateway. */
export class MessageSecurity {
  constructor(
    readonly signer: EnvelopeSigner,
    readonly members: MembersDirectory,
  ) {}

  sign<B>(envelope: Envelope<B>): Envelope<B> {
    return this.signer.sign(envelope);
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
      return verify(null, Buffer.from(canonicalJson(unsigned)), known.key, signature) ? undefined : 'signature';
    } catch {
      return 'signature';
    }
  }
}
