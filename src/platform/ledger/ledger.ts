import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { canonicalJson, signCanonical, verifyBytes, verifyCanonical } from '../../core/signing.js';
import { type OpenOptions, openDatabase, type SqliteDatabase } from './sqlite.js';
import { type TableChainFault, verifyTableChains } from './table-chain.js';

/**
 * The platform's append-only ledger. Every entry is hash-chained to the one before it and signed by
 * each party it binds; `verify` re-checks the whole chain from the stored bytes.
 *
 * Two forms of entry. Form 1 (the first releases, and the two-phase `platform settle` commands): the
 * parties sign the whole body, its place in the chain included, so a draft is only good until the
 * ledger moves on. Form 2 (everything appended at run time): the parties sign the content (kind,
 * parties, amounts, payload); the platform gives it its place when every signature is in, and the
 * chain hash covers the place and the content's hash. Anyone holding the content hashes can then
 * recompute the chain without the contents (the ledger head the platform publishes).
 */

export const GENESIS_HASH = '0'.repeat(64);

export const LedgerParty = z
  .object({ id: z.string().min(1), publicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/) })
  .strict();
export type LedgerParty = z.infer<typeof LedgerParty>;

/** What is hashed and signed: everything about an entry except its hash and signatures. */
export interface LedgerBody {
  /** 2 for an entry whose parties signed its content only (absent: form 1). */
  form?: 2;
  index: number;
  /** ISO 8601 UTC. */
  time: string;
  kind: string;
  parties: LedgerParty[];
  /** Money per party id (positive: the party is owed), in the platform's currency unit. */
  amounts: Record<string, number>;
  payload: unknown;
  prevHash: string;
}

export interface LedgerEntry extends LedgerBody {
  hash: string;
  /** Signature per party id over the canonical JSON of the body. */
  signatures: Record<string, string>;
}

export interface LedgerDraftInput {
  time: string;
  kind: string;
  parties: LedgerParty[];
  amounts?: Record<string, number>;
  payload?: unknown;
}

export type LedgerCheck = 'hash' | 'signature' | 'order';
export interface VerifyResult {
  entries: number;
  ok: boolean;
  /** A ledger entry by its index, or (with `table` and `row`) a row of a platform table by its place in that table's chain. */
  firstBad: null | { index: number; check: LedgerCheck } | TableChainFault;
}

/** What the parties of a form-2 entry sign. */
export interface SignedContent {
  form: 2;
  kind: string;
  parties: LedgerParty[];
  amounts: Record<string, number>;
  payload: unknown;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function contentOf(body: Omit<LedgerBody, 'index' | 'time' | 'prevHash'>): SignedContent {
  return { form: 2, kind: body.kind, parties: body.parties, amounts: body.amounts, payload: body.payload };
}

export function contentHash(content: SignedContent): string {
  return sha256(canonicalJson(content));
}

/** The chain hash of a form-2 entry: its place, time and previous hash, and its content's hash. */
export function chainHash(place: { index: number; time: string; prevHash: string; contentHash: string }): string {
  return sha256(
    canonicalJson({
      form: 2,
      index: place.index,
      time: place.time,
      prevHash: place.prevHash,
      contentHash: place.contentHash,
    }),
  );
}

export function entryHash(body: LedgerBody): string {
  if (body.form === 2) return chainHash({ ...body, contentHash: contentHash(contentOf(body)) });
  return sha256(canonicalJson(body));
}

/** What a party's signature covers: the content of a form-2 entry, the whole body of a form-1 one. */
function signedPart(body: LedgerBody): unknown {
  return body.form === 2 ? contentOf(body) : body;
}

export function signBody(body: LedgerBody, privateKey: string): string {
  return signCanonical(signedPart(body), privateKey);
}

export function signContent(content: SignedContent, privateKey: string): string {
  return signCanonical(content, privateKey);
}

export function verifySignature(body: LedgerBody, signature: string, publicKey: string): boolean {
  return verifyCanonical(signedPart(body), signature, publicKey);
}

/** What each party's signature of a body covers, written once: the canonical JSON bytes. */
export function signedBytes(body: LedgerBody): Buffer | undefined {
  try {
    return Buffer.from(canonicalJson(signedPart(body)));
  } catch {
    return undefined;
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_entries (
  seq INTEGER PRIMARY KEY,
  idx INTEGER NOT NULL,
  time TEXT NOT NULL,
  kind TEXT NOT NULL,
  parties TEXT NOT NULL,
  amounts TEXT NOT NULL,
  payload TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  signatures TEXT NOT NULL,
  form INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS ledger_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  entries INTEGER NOT NULL,
  hash TEXT NOT NULL
);
`;

interface Row {
  seq: number;
  idx: number;
  time: string;
  kind: string;
  parties: string;
  amounts: string;
  payload: string;
  prev_hash: string;
  hash: string;
  signatures: string;
  form: number;
}

function fail(message: string, field?: string): P2PError {
  return new P2PError(ErrorCode.input, message, { component: 'ledger', ...(field ? { field } : {}) });
}

function isoTime(time: string): number {
  const ms = Date.parse(time);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(time) || Number.isNaN(ms)) throw fail(`time must be ISO 8601 (got ${time})`, 'time');
  return ms;
}

export class Ledger {
  private constructor(
    readonly db: SqliteDatabase,
    readonly file: string,
  ) {}

  /** Opens (and creates, unless `mustExist`) a ledger database. */
  static open(file: string, options: OpenOptions = {}): Ledger {
    const db = openDatabase(file, options);
    db.exec(SCHEMA);
    // A ledger written before form 2 existed: every stored entry is form 1.
    const columns = db.prepare("SELECT name FROM pragma_table_info('ledger_entries')").all() as { name: string }[];
    if (!columns.some((c) => c.name === 'form'))
      db.exec('ALTER TABLE ledger_entries ADD COLUMN form INTEGER NOT NULL DEFAULT 1');
    return new Ledger(db, file);
  }

  close(): void {
    this.db.close();
  }

  private lastRow(): Row | undefined {
    return this.db.prepare('SELECT * FROM ledger_entries ORDER BY seq DESC LIMIT 1').get() as Row | undefined;
  }

  /**
   * The body (form 2) the next entry would have; the parties sign its content (possibly on their own
   * gateways: `signBody`), and `appendSigned` places it at the head when it is appended.
   */
  draft(input: LedgerDraftInput): LedgerBody {
    const last = this.lastRow();
    const parties = input.parties.map((p, i) => {
      const r = LedgerParty.safeParse(p);
      if (!r.success) throw fail(`parties[${i}]: ${r.error.issues[0]?.message}`, `parties[${i}]`);
      return r.data;
    });
    isoTime(input.time);
    return {
      form: 2,
      index: last ? last.idx + 1 : 0,
      time: input.time,
      kind: input.kind,
      parties,
      amounts: input.amounts ?? {},
      payload: input.payload ?? null,
      prevHash: last ? last.hash : GENESIS_HASH,
    };
  }

  /**
   * Appends a body signed by every party, in one immediate transaction, and every signature must
   * check. A form-2 body (what `draft` gives) takes the head's place now, whatever place it was
   * drafted at: its parties signed its content. A form-1 body must extend the head as drafted (index,
   * previous hash, time not earlier).
   */
  appendSigned(body: LedgerBody, signatures: Record<string, string>): LedgerEntry {
    if (body.form === 2) return this.appendContent(contentOf(body), signatures, body.time);
    return this.appendPlaced(body, signatures);
  }

  private appendPlaced(
    body: LedgerBody,
    signatures: Record<string, string>,
    alreadyVerified: ReadonlySet<string> = new Set(),
  ): LedgerEntry {
    if (body.parties.length === 0) throw fail('an entry binds at least one party', 'parties');
    const ids = new Set(body.parties.map((p) => p.id));
    if (ids.size !== body.parties.length) throw fail('a party appears twice in one entry', 'parties');
    for (const id of Object.keys(body.amounts)) {
      if (!ids.has(id)) throw fail(`amount for ${id}, who is not a party to the entry`, `amounts.${id}`);
      if (!Number.isFinite(body.amounts[id])) throw fail(`amount for ${id} is not a finite number`, `amounts.${id}`);
    }
    const bytes = signedBytes(body);
    for (const p of body.parties) {
      const sig = signatures[p.id];
      if (sig === undefined) throw fail(`entry is not signed by party ${p.id}`, `signatures.${p.id}`);
      if (alreadyVerified.has(`${p.id} ${sig}`)) continue;
      if (!bytes || !verifyBytes(bytes, sig, p.publicKey))
        throw fail(`signature of party ${p.id} does not check`, `signatures.${p.id}`);
    }
    const extra = Object.keys(signatures).filter((id) => !ids.has(id));
    if (extra.length > 0) throw fail(`signatures from non-parties: ${extra.join(', ')}`, 'signatures');
    const timeMs = isoTime(body.time);
    const entry: LedgerEntry = { ...body, hash: entryHash(body), signatures: { ...signatures } };
    const insert = this.db.transaction(() => {
      const last = this.lastRow();
      const expectedIndex = last ? last.idx + 1 : 0;
      const expectedPrev = last ? last.hash : GENESIS_HASH;
      if (body.index !== expectedIndex || body.prevHash !== expectedPrev) {
        throw new P2PError(
          ErrorCode.input,
          `entry ${body.index} does not extend the ledger head (next index ${expectedIndex})`,
          {
            component: 'ledger',
            recoverable: true,
            hint: 'draft the entry again and have the parties re-sign it',
          },
        );
      }
      if (last && timeMs < Date.parse(last.time))
        throw fail(`time ${body.time} is earlier than the last entry's ${last.time}`, 'time');
      this.insertEntry(entry);
    });
    insert.immediate();
    return entry;
  }

  private insertEntry(entry: LedgerEntry): void {
    this.db
      .prepare(
        'INSERT INTO ledger_entries (idx, time, kind, parties, amounts, payload, prev_hash, hash, signatures, form) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        entry.index,
        entry.time,
        entry.kind,
        JSON.stringify(entry.parties),
        JSON.stringify(entry.amounts),
        JSON.stringify(entry.payload),
        entry.prevHash,
        entry.hash,
        JSON.stringify(entry.signatures),
        entry.form ?? 1,
      );
    this.db
      .prepare(
        'INSERT INTO ledger_head (id, entries, hash) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET entries = excluded.entries, hash = excluded.hash',
      )
      .run(entry.index + 1, entry.hash);
  }

  /**
   * Appends a form-2 entry: content signed by every party, placed at the head now (in the caller's
   * transaction when there is one). Its time is `time`, or the last entry's when that is later, so
   * that time never goes backwards in the chain.
   */
  appendContent(
    content: SignedContent,
    signatures: Record<string, string>,
    time: string,
    /** `<party> <signature>` the caller checked over this very content in this process (not checked again). */
    alreadyVerified?: ReadonlySet<string>,
  ): LedgerEntry {
    isoTime(time);
    const run = this.db.transaction(() => {
      const last = this.lastRow();
      const body: LedgerBody = {
        form: 2,
        index: last ? last.idx + 1 : 0,
        time: last && Date.parse(last.time) > Date.parse(time) ? last.time : time,
        kind: content.kind,
        parties: content.parties,
        amounts: content.amounts,
        payload: content.payload,
        prevHash: last ? last.hash : GENESIS_HASH,
      };
      return this.appendPlaced(body, signatures, alreadyVerified);
    });
    return run.immediate();
  }

  /** Signs with the given private keys (one per party) and appends (form 2): for parties whose keys are local. */
  append(input: LedgerDraftInput, privateKeys: Record<string, string>): LedgerEntry {
    const body = this.draft(input);
    const content = contentOf(body);
    const signatures: Record<string, string> = {};
    for (const p of body.parties) {
      const key = privateKeys[p.id];
      if (key === undefined) throw fail(`no private key to sign for party ${p.id}`, `parties.${p.id}`);
      signatures[p.id] = signContent(content, key);
    }
    return this.appendContent(content, signatures, input.time);
  }

  /** How many entries the ledger has and the last one's hash (the genesis hash when empty). */
  head(): { entries: number; hash: string } {
    const last = this.lastRow();
    return last ? { entries: last.idx + 1, hash: last.hash } : { entries: 0, hash: GENESIS_HASH };
  }

  /** Entries from `index` on (at most `limit`), parsed but not checked. */
  entriesFrom(index: number, limit: number): LedgerEntry[] {
    const rows = this.db
      .prepare('SELECT * FROM ledger_entries WHERE idx >= ? ORDER BY seq LIMIT ?')
      .all(index, limit) as Row[];
    return rows.map(rowToEntry);
  }

  /** Every entry in stored order, parsed but not checked. */
  entries(): LedgerEntry[] {
    const rows = this.db.prepare('SELECT * FROM ledger_entries ORDER BY seq').all() as Row[];
    return rows.map(rowToEntry);
  }

  /**
   * Re-checks order, hash chain and signatures of every stored entry, then the chain of every platform
   * table (`table-chain.ts`); reports the first bad entry, else the first bad row.
   */
  verify(): VerifyResult {
    const rows = this.db.prepare('SELECT * FROM ledger_entries ORDER BY seq').all() as Row[];
    const head = this.db.prepare('SELECT entries, hash FROM ledger_head WHERE id = 1').get() as
      | { entries: number; hash: string }
      | undefined;
    const bad = (index: number, check: LedgerCheck): VerifyResult => ({
      entries: rows.length,
      ok: false,
      firstBad: { index, check },
    });
    let prevHash = GENESIS_HASH;
    let prevTimeMs = Number.NEGATIVE_INFINITY;
    for (let position = 0; position < rows.length; position++) {
      const row = rows[position] as Row;
      if (row.idx !== position) return bad(position, 'order');
      let entry: LedgerEntry;
      try {
        entry = rowToEntry(row);
      } catch {
        return bad(position, 'hash');
      }
      const timeMs = Date.parse(entry.time);
      if (Number.isNaN(timeMs) || timeMs < prevTimeMs) return bad(position, 'order');
      const body: LedgerBody = { ...bodyOf(entry), prevHash };
      if (row.form !== 1 && row.form !== 2) return bad(position, 'hash');
      // The signed bytes, written once: a form-2 entry's content hash is their hash too.
      const bytes = signedBytes(body);
      if (!bytes) return bad(position, 'hash');
      const hash =
        body.form === 2
          ? chainHash({ ...body, contentHash: createHash('sha256').update(bytes).digest('hex') })
          : createHash('sha256').update(bytes).digest('hex');
      if (row.prev_hash !== prevHash || row.hash !== hash) return bad(position, 'hash');
      const ids = entry.parties.map((p) => p.id);
      const signed = Object.keys(entry.signatures);
      if (ids.length === 0 || signed.length !== ids.length || new Set(ids).size !== ids.length)
        return bad(position, 'signature');
      for (const p of entry.parties) {
        const sig = entry.signatures[p.id];
        if (typeof sig !== 'string' || !verifyBytes(bytes, sig, p.publicKey)) return bad(position, 'signature');
      }
      prevHash = hash;
      prevTimeMs = timeMs;
    }
    // The head row records how many entries were appended: a deleted tail shows as a missing entry.
    const expected = head?.entries ?? 0;
    if (rows.length !== expected) return bad(Math.min(rows.length, expected), 'order');
    if (head && rows.length > 0 && head.hash !== prevHash) return bad(rows.length - 1, 'hash');
    const tableFault = verifyTableChains(this.db);
    if (tableFault) return { entries: rows.length, ok: false, firstBad: tableFault };
    return { entries: rows.length, ok: true, firstBad: null };
  }
}

function bodyOf(e: LedgerEntry): Omit<LedgerBody, 'prevHash'> {
  const body = {
    index: e.index,
    time: e.time,
    kind: e.kind,
    parties: e.parties,
    amounts: e.amounts,
    payload: e.payload,
  };
  return e.form === 2 ? { form: 2, ...body } : body;
}

function rowToEntry(row: Row): LedgerEntry {
  const parties = z.array(LedgerParty).parse(JSON.parse(row.parties));
  const amounts = z.record(z.string(), z.number()).parse(JSON.parse(row.amounts));
  const signatures = z.record(z.string(), z.string()).parse(JSON.parse(row.signatures));
  return {
    ...(row.form === 2 ? { form: 2 as const } : {}),
    index: row.idx,
    time: row.time,
    kind: row.kind,
    parties,
    amounts,
    payload: JSON.parse(row.payload) as unknown,
    prevHash: row.prev_hash,
    hash: row.hash,
    signatures,
  };
}
