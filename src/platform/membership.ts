import { z } from 'zod';
import { encryptionPublicKeyObject } from '../comms/sealed-body.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { Member, type MembersList, signMembersList } from '../core/members.js';
import { publicKeyObject } from '../core/signing.js';
import type { SqliteDatabase } from './ledger/sqlite.js';
import { ChainedTable } from './ledger/table-chain.js';

/**
 * Membership of a cell, kept by the platform: peers register (pending), the operator admits them,
 * may suspend (reversible) or revoke (final) them. Every change raises the members list's serial; the
 * signed list is what comms uses to accept messages.
 */

export const PeerRole = z.enum(['prosumer', 'mg-trader', 'aggregator', 'dso', 'platform']);
export const Registration = Member.omit({ status: true }).extend({ role: PeerRole }).strict();
export type Registration = z.infer<typeof Registration>;

export type MembershipStatus = 'pending' | 'active' | 'suspended' | 'revoked';
export interface MemberRecord extends Registration {
  status: MembershipStatus;
  /** Serial of the members list in which the status last changed. */
  changedAtSerial: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_members (
  id TEXT PRIMARY KEY,
  public_key TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  cell TEXT NOT NULL,
  status TEXT NOT NULL,
  changed_at_serial INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS platform_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS platform_member_keys (
  member TEXT NOT NULL,
  encryption_key TEXT NOT NULL UNIQUE,
  since_serial INTEGER NOT NULL,
  PRIMARY KEY (member, since_serial)
);
`;

interface Row {
  id: string;
  public_key: string;
  role: Registration['role'];
  cell: string;
  status: MembershipStatus;
  changed_at_serial: number;
}

function inputError(message: string, field?: string): P2PError {
  return new P2PError(ErrorCode.input, message, { component: 'membership', ...(field ? { field } : {}) });
}

/**
 * A member's encryption keys are a history (`platform_member_keys`: a row per key, from the list
 * serial that published it), so that a rotation adds a row and the members table keeps its shape.
 */
export class Membership {
  private readonly members: ChainedTable;
  private readonly meta: ChainedTable;
  private readonly keys: ChainedTable;

  constructor(
    private readonly db: SqliteDatabase,
    /** Needed only to issue the signed list; listing works without it. */
    private readonly operator: { id: string; privateKey: string } | undefined,
    private readonly nowMs: () => number,
  ) {
    db.exec(SCHEMA);
    this.members = ChainedTable.open(db, 'platform_members');
    this.meta = ChainedTable.open(db, 'platform_meta');
    this.keys = ChainedTable.open(db, 'platform_member_keys');
  }

  private keyOf: ReturnType<SqliteDatabase['prepare']> | undefined;

  /** The member's current encryption key (the last one registered), if it has one. */
  encryptionKey(id: string): string | undefined {
    this.keyOf ??= this.db.prepare(
      'SELECT encryption_key FROM platform_member_keys WHERE member = ? ORDER BY since_serial DESC LIMIT 1',
    );
    return (this.keyOf.get(id) as { encryption_key: string } | undefined)?.encryption_key;
  }

  private byId: ReturnType<SqliteDatabase['prepare']> | undefined;

  /** Serial of the current members list (0 before any admission). */
  serial(): number {
    const row = this.db.prepare("SELECT value FROM platform_meta WHERE key = 'members-serial'").get() as
      | { value: number }
      | undefined;
    return row?.value ?? 0;
  }

  register(input: unknown): MemberRecord {
    const parsed = Registration.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join('.') ?? '';
      throw inputError(`registration ${field}: ${issue?.message}`, field);
    }
    const r = parsed.data;
    try {
      publicKeyObject(r.publicKey);
    } catch {
      throw inputError('registration publicKey is not an Ed25519 public key', 'publicKey');
    }
    if (this.get(r.id)) throw inputError(`member ${r.id} is already registered`, 'id');
    const clash = this.db.prepare('SELECT id FROM platform_members WHERE public_key = ?').get(r.publicKey) as
      | { id: string }
      | undefined;
    if (clash) throw inputError(`public key already belongs to member ${clash.id}`, 'publicKey');
    if (r.encryptionKey !== undefined) this.checkEncryptionKey(r.encryptionKey);
    if (r.encryptionKey !== undefined)
      this.keys.insert({ member: r.id, encryption_key: r.encryptionKey, since_serial: this.serial() });
    this.members.insert({
      id: r.id,
      public_key: r.publicKey,
      role: r.role,
      cell: r.cell,
      status: 'pending',
      changed_at_serial: this.serial(),
    });
    return this.require(r.id);
  }

  get(id: string): MemberRecord | undefined {
    // Asked for every message the platform stores: prepared once (a statement prepared per call holds
    // native memory until a collection frees it, some 14 MB at a few hundred messages a second).
    this.byId ??= this.db.prepare('SELECT * FROM platform_members WHERE id = ?');
    const row = this.byId.get(id) as Row | undefined;
    return row && toRecord(row, this.encryptionKey(row.id));
  }

  list(): MemberRecord[] {
    return (this.db.prepare('SELECT * FROM platform_members ORDER BY id').all() as Row[]).map((row) =>
      toRecord(row, this.encryptionKey(row.id)),
    );
  }

  /**
   * A new encryption key for a member (a rotation, or a member registered before encryption): the
   * list's serial goes up and the new list publishes it. Senders seal to it from then on; the member
   * keeps its retired key a while for what was sealed before (`keygen --rotate`).
   */
  rekey(id: string, encryptionKey: string): MembersList {
    this.checkEncryptionKey(encryptionKey);
    this.db
      .transaction(() => {
        const m = this.require(id);
        if (m.status === 'revoked') throw inputError(`member ${id} is revoked; it cannot take a new key`, 'status');
        const serial = this.serial() + 1;
        this.meta.upsert({ key: 'members-serial', value: serial });
        this.keys.insert({ member: id, encryption_key: encryptionKey, since_serial: serial });
      })
      .immediate();
    return this.membersList();
  }

  private checkEncryptionKey(encryptionKey: string): void {
    try {
      encryptionPublicKeyObject(encryptionKey);
    } catch {
      throw inputError('encryptionKey is not an X25519 public key (32 bytes, base64url)', 'encryptionKey');
    }
    const clash = this.db
      .prepare('SELECT member FROM platform_member_keys WHERE encryption_key = ?')
      .get(encryptionKey) as { member: string } | undefined;
    if (clash) throw inputError(`encryption key already used by member ${clash.member}`, 'encryptionKey');
  }

  admit(id: string): MembersList {
    return this.transition(id, ['pending', 'suspended'], 'active');
  }

  suspend(id: string): MembersList {
    return this.transition(id, ['active'], 'suspended');
  }

  /** Final: a revoked member cannot be admitted again (it registers anew with a new id and key). */
  revoke(id: string): MembersList {
    return this.transition(id, ['pending', 'active', 'suspended'], 'revoked');
  }

  /** The members list signed by the operator: every admitted member with its status (pending ones are not in it). */
  membersList(): MembersList {
    const operator = this.operator;
    if (!operator)
      throw new P2PError(ErrorCode.config, 'issuing the members list needs the operator key', {
        component: 'membership',
      });
    const members = this.list()
      .filter((m) => m.status !== 'pending')
      .map((m) => ({
        id: m.id,
        publicKey: m.publicKey,
        role: m.role,
        cell: m.cell,
        status: m.status as Member['status'],
        ...(m.encryptionKey ? { encryptionKey: m.encryptionKey } : {}),
      }));
    return signMembersList(
      { v: 1, operator: operator.id, serial: this.serial(), issuedAt: this.nowMs(), members },
      this.operator.privateKey,
    );
  }

  private require(id: string): MemberRecord {
    const m = this.get(id);
    if (!m) throw inputError(`unknown member ${id}`, 'id');
    return m;
  }

  private transition(id: string, from: MembershipStatus[], to: MembershipStatus): MembersList {
    this.db
      .transaction(() => {
        const m = this.require(id);
        if (!from.includes(m.status)) throw inputError(`member ${id} is ${m.status}; cannot make it ${to}`, 'status');
        const serial = this.serial() + 1;
        this.meta.upsert({ key: 'members-serial', value: serial });
        this.members.update({ id }, { status: to, changed_at_serial: serial });
      })
      .immediate();
    return this.membersList();
  }
}

function toRecord(row: Row, encryptionKey: string | undefined): MemberRecord {
  return {
    id: row.id,
    publicKey: row.public_key,
    role: row.role,
    cell: row.cell,
    status: row.status,
    changedAtSerial: row.changed_at_serial,
    ...(encryptionKey ? { encryptionKey } : {}),
  };
}
