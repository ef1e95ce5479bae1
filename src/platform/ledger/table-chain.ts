import { createHash } from 'node:crypto';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { canonicalJson } from '../../core/signing.js';
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';

/**
 * Tamper evidence for the platform's own tables (the ledger has its own chain): every row of a
 * chained table has a place in its table's chain (`chain_seq`, 0, 1, 2, … in the order written) and
 * `chain_hash` = SHA-256 over the canonical JSON of [table, seq, prevHash, ...values], where values are
 * the row's columns in schema order and prevHash the hash of the row before it in the chain. Each table's head
 * (first position still stored and the hash before it, next position, last hash) is kept in
 * `platform_chain_heads` and moved in the same transaction as the write. Every writer of a platform
 * table goes through `ChainedTable`, so `verifyTableChains` can tell a change made by the platform
 * from one made to the file by other means:
 * - insert: the row takes the next position;
 * - update (a member's status, a DR event's evaluation): the table's chain is checked first (a write
 *   never launders an earlier change), then the row is changed in place and the chain recomputed from
 *   it to the end — meant for small tables;
 * - deleteOldest (metering intervals past their retention): only the oldest rows in chain order go, and
 *   the head records where the chain now starts.
 */

export const CHAINED_TABLES = [
  'platform_readings',
  // Every meter reading, as platforms stored them before they took metering intervals only: still verified.
  'platform_meter_samples',
  'platform_meter_intervals',
  'platform_trades',
  'platform_trade_reports',
  'platform_settlements',
  'platform_members',
  'platform_meta',
  'platform_member_keys',
  'platform_contracts',
  'platform_dr_events',
  'platform_dr_dispatches',
  'platform_settlement_drafts',
  'platform_settlement_signatures',
  'platform_settlement_disputes',
  'platform_settled_units',
] as const;
export type ChainedTableName = (typeof CHAINED_TABLES)[number];

export type SqlValue = string | number | null;
export type RowValues = Record<string, SqlValue>;

export interface TableChainFault {
  /** Position in the table's chain of the first bad (or missing) row. */
  index: number;
  check: 'hash' | 'order';
  table: ChainedTableName;
  /** Primary key of the bad row; null when the row is missing. */
  row: RowValues | null;
}

const GENESIS_HASH = '0'.repeat(64);
const HEADS_TABLE = 'platform_chain_heads';
const HEADS_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${HEADS_TABLE} (
  tbl TEXT PRIMARY KEY,
  first_seq INTEGER NOT NULL,
  first_prev_hash TEXT NOT NULL,
  next_seq INTEGER NOT NULL,
  last_hash TEXT NOT NULL
);
`;

interface Head {
  first_seq: number;
  first_prev_hash: string;
  next_seq: number;
  last_hash: string;
}
const EMPTY_HEAD: Head = { first_seq: 0, first_prev_hash: GENESIS_HASH, next_seq: 0, last_hash: GENESIS_HASH };

/**
 * For an array of strings, numbers and nulls, JSON.stringify writes exactly the RFC 8785 canonical JSON
 * (the RFC takes ECMAScript's number and string serialisation) at half the cost of the general
 * canonicaliser, which matters for meter samples; a value of another kind goes the general way.
 */
export function chainRowHash(table: string, seq: number, values: RowValues, prevHash: string): string {
  const items: unknown[] = [table, seq, prevHash, ...Object.values(values)];
  const primitive = items.every(
    (v) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)),
  );
  return createHash('sha256')
    .update(primitive ? JSON.stringify(items) : canonicalJson(items))
    .digest('hex');
}

interface Shape {
  /** Every column but the chain's own, in schema order. */
  columns: string[];
  /** Primary-key columns (`chain_rowid`, the rowid, when the table declares none). */
  key: string[];
  chained: boolean;
}

function tableExists(db: SqliteDatabase, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

function shapeOf(db: SqliteDatabase, table: string): Shape {
  const info = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; pk: number }[];
  const own = info.filter((c) => c.name !== 'chain_seq' && c.name !== 'chain_hash');
  const key = own
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
  return {
    columns: own.map((c) => c.name),
    key: key.length > 0 ? key : ['chain_rowid'],
    chained: own.length < info.length,
  };
}

function readHead(db: SqliteDatabase, table: string): Head | undefined {
  return db
    .prepare(`SELECT first_seq, first_prev_hash, next_seq, last_hash FROM ${HEADS_TABLE} WHERE tbl = ?`)
    .get(table) as Head | undefined;
}

function pick(row: Record<string, unknown>, columns: readonly string[]): RowValues {
  const out: RowValues = {};
  for (const c of columns) out[c] = row[c] as SqlValue;
  return out;
}

/**
 * Gives a table its chain columns and, the first time the table is seen, chains the rows it holds in
 * the order stored (rows a release without chains wrote). Idempotent.
 */
function adopt(db: SqliteDatabase, table: ChainedTableName): void {
  const chained = shapeOf(db, table).chained;
  if (chained && !(tableExists(db, HEADS_TABLE) && readHead(db, table))) {
    // Chained rows whose head is gone: the file was changed outside the platform. Chaining them again
    // would take the change in.
    throw new P2PError(ErrorCode.storage, `${table} has chained rows but no chain head; not writing over it`, {
      component: 'ledger',
      hint: 'run p2p-edge ledger verify on the database and restore it from a good copy',
    });
  }
  if (!chained) {
    db.exec(`ALTER TABLE ${table} ADD COLUMN chain_seq INTEGER; ALTER TABLE ${table} ADD COLUMN chain_hash TEXT;`);
  }
  db.exec(`CREATE INDEX IF NOT EXISTS ${table}_chain ON ${table} (chain_seq)`);
  if (readHead(db, table)) return;
  const { columns } = shapeOf(db, table);
  const update = db.prepare(`UPDATE ${table} SET chain_seq = ?, chain_hash = ? WHERE rowid = ?`);
  let seq = 0;
  let prev = GENESIS_HASH;
  const rows = db.prepare(`SELECT rowid AS chain_rowid, * FROM ${table} ORDER BY rowid`).all() as Record<
    string,
    unknown
  >[];
  for (const row of rows) {
    prev = chainRowHash(table, seq, pick(row, columns), prev);
    update.run(seq, prev, row.chain_rowid);
    seq++;
  }
  db.prepare(
    `INSERT INTO ${HEADS_TABLE} (tbl, first_seq, first_prev_hash, next_seq, last_hash) VALUES (?, 0, ?, ?, ?)`,
  ).run(table, GENESIS_HASH, seq, prev);
}

/**
 * Walks a table's chain in stored order against its head; the first bad row, or null. A table whose
 * rows have no place in the chain (written around the platform) shows as `order`.
 */
function checkTable(db: SqliteDatabase, table: ChainedTableName): TableChainFault | null {
  const shape = shapeOf(db, table);
  const head = (tableExists(db, HEADS_TABLE) ? readHead(db, table) : undefined) ?? EMPTY_HEAD;
  const chainColumns = shape.chained ? 'chain_seq, chain_hash' : 'NULL AS chain_seq, NULL AS chain_hash';
  const rows = db
    .prepare(`SELECT rowid AS chain_rowid, *, ${chainColumns} FROM ${table} ORDER BY chain_seq`)
    .iterate() as IterableIterator<Record<string, unknown> & { chain_seq: number | null; chain_hash: string | null }>;
  const bad = (index: number, check: 'hash' | 'order', row: Record<string, unknown> | null): TableChainFault => ({
    index,
    check,
    table,
    row: row && pick(row, shape.key),
  });
  let expected = head.first_seq;
  let prev = head.first_prev_hash;
  let last: Record<string, unknown> | null = null;
  let fault: TableChainFault | null = null;
  for (const row of rows) {
    const seq = row.chain_seq;
    // A row without a place in the chain is reported at the place it would take.
    if (seq === null) fault = bad(head.next_seq, 'order', row);
    else if (seq < expected || seq >= head.next_seq) fault = bad(seq, 'order', row);
    else if (seq > expected) fault = bad(expected, 'order', null);
    else {
      prev = chainRowHash(table, seq, pick(row, shape.columns), prev);
      if (row.chain_hash !== prev) fault = bad(seq, 'hash', row);
    }
    if (fault) break;
    last = row;
    expected++;
  }
  if (fault) return fault;
  if (expected < head.next_seq) return bad(expected, 'order', null);
  if (prev !== head.last_hash) return bad(Math.max(expected - 1, 0), 'hash', last);
  return null;
}

/**
 * Re-checks every platform table's chain against its head; the first bad row of the first table in
 * `CHAINED_TABLES` order, or null. Reads only. A database no chaining release has written (no heads
 * table and no chained table) has nothing to check; chained rows without their heads (the heads table
 * dropped) fail as rows with no place in the chain.
 */
export function verifyTableChains(db: SqliteDatabase): TableChainFault | null {
  if (!tableExists(db, HEADS_TABLE) && !CHAINED_TABLES.some((t) => tableExists(db, t) && shapeOf(db, t).chained))
    return null;
  for (const table of CHAINED_TABLES) {
    if (tableExists(db, table)) {
      const fault = checkTable(db, table);
      if (fault) return fault;
    } else if (tableExists(db, HEADS_TABLE)) {
      const head = readHead(db, table);
      if (head && head.next_seq > head.first_seq) return { index: head.first_seq, check: 'order', table, row: null };
    }
  }
  return null;
}

/** Runs `fn` in the caller's transaction, or in an immediate one of its own. */
function atomic<R>(db: SqliteDatabase, fn: () => R): R {
  return db.inTransaction ? fn() : db.transaction(fn).immediate();
}

/** The one way the platform's modules write their tables: every write keeps the table's chain. */
export class ChainedTable {
  private readonly insertStatement: SqliteStatement;
  private readonly insertOrIgnoreStatement: SqliteStatement;
  private readonly headStatement: SqliteStatement;
  private readonly moveHeadStatement: SqliteStatement;

  private constructor(
    private readonly db: SqliteDatabase,
    readonly table: ChainedTableName,
    private readonly shape: Shape,
  ) {
    const names = [...shape.columns, 'chain_seq', 'chain_hash'];
    const placeholders = names.map(() => '?').join(', ');
    this.insertStatement = db.prepare(`INSERT INTO ${table} (${names.join(', ')}) VALUES (${placeholders})`);
    this.insertOrIgnoreStatement = db.prepare(
      `INSERT OR IGNORE INTO ${table} (${names.join(', ')}) VALUES (${placeholders})`,
    );
    this.headStatement = db.prepare(`SELECT next_seq, last_hash FROM ${HEADS_TABLE} WHERE tbl = ?`);
    this.moveHeadStatement = db.prepare(`UPDATE ${HEADS_TABLE} SET next_seq = ?, last_hash = ? WHERE tbl = ?`);
  }

  /**
   * Chains a table its module has just created (CREATE TABLE IF NOT EXISTS). The first time the
   * heads table is made, every platform table already in the file is chained as stored, so that
   * `verify` finds no table without a chain.
   */
  static open(db: SqliteDatabase, table: ChainedTableName): ChainedTable {
    // Opened per request by the read-only listings: no write transaction when there is nothing to do.
    const ready = tableExists(db, HEADS_TABLE) && readHead(db, table) !== undefined && shapeOf(db, table).chained;
    if (ready) return new ChainedTable(db, table, shapeOf(db, table));
    atomic(db, () => {
      if (!tableExists(db, HEADS_TABLE)) {
        db.exec(HEADS_SCHEMA);
        for (const t of CHAINED_TABLES) if (t !== table && tableExists(db, t)) adopt(db, t);
      }
      adopt(db, table);
    });
    return new ChainedTable(db, table, shapeOf(db, table));
  }

  /**
   * Inserts a row at the chain's end. Columns left out (an id SQLite assigns) are read back before
   * hashing. With `orIgnore`, a row whose key is stored already is not written and the chain stays.
   */
  insert(values: RowValues, options: { orIgnore?: boolean } = {}): { changes: number; rowid: number } {
    return this.insertAll([values], options)[0] as { changes: number; rowid: number };
  }

  /** `insert` for several rows in one transaction, the head read and moved once. */
  insertAll(rows: readonly RowValues[], options: { orIgnore?: boolean } = {}): { changes: number; rowid: number }[] {
    return atomic(this.db, () => {
      const head = this.headStatement.get(this.table) as { next_seq: number; last_hash: string };
      let seq = head.next_seq;
      let prev = head.last_hash;
      const statement = options.orIgnore ? this.insertOrIgnoreStatement : this.insertStatement;
      const results = rows.map((values) => {
        const complete = this.shape.columns.every((c) => values[c] !== undefined);
        const hash = complete ? chainRowHash(this.table, seq, pick(values, this.shape.columns), prev) : null;
        const result = statement.run(...this.shape.columns.map((c) => values[c] ?? null), seq, hash);
        const rowid = Number(result.lastInsertRowid);
        if (result.changes === 0) return { changes: 0, rowid };
        let stored = hash;
        if (stored === null) {
          const row = this.db.prepare(`SELECT * FROM ${this.table} WHERE rowid = ?`).get(rowid) as Record<
            string,
            unknown
          >;
          stored = chainRowHash(this.table, seq, pick(row, this.shape.columns), prev);
          this.db.prepare(`UPDATE ${this.table} SET chain_hash = ? WHERE rowid = ?`).run(stored, rowid);
        }
        seq++;
        prev = stored;
        return { changes: 1, rowid };
      });
      if (seq !== head.next_seq) this.moveHeadStatement.run(seq, prev, this.table);
      return results;
    });
  }

  /**
   * Changes columns of the row with this key, in place. The table's chain must check (else a
   * `storage` error and nothing changes); the chain is then recomputed from that row on.
   */
  update(key: RowValues, set: RowValues): number {
    return atomic(this.db, () => {
      const where = Object.keys(key)
        .map((c) => `${c} = ?`)
        .join(' AND ');
      const found = this.db.prepare(`SELECT chain_seq FROM ${this.table} WHERE ${where}`).get(...Object.values(key)) as
        | { chain_seq: number | null }
        | undefined;
      if (!found) return 0;
      this.assertIntact();
      const assignments = Object.keys(set)
        .map((c) => `${c} = ?`)
        .join(', ');
      const changes = this.db
        .prepare(`UPDATE ${this.table} SET ${assignments} WHERE ${where}`)
        .run(...Object.values(set), ...Object.values(key)).changes;
      this.rechainFrom(found.chain_seq as number);
      return changes;
    });
  }

  /** Inserts the row, or updates its other columns when its key is stored already. */
  upsert(values: RowValues): void {
    atomic(this.db, () => {
      const key = pick(values, this.shape.key);
      const rest = Object.fromEntries(Object.entries(values).filter(([c]) => !this.shape.key.includes(c)));
      if (this.update(key, rest) === 0) this.insert(values);
    });
  }

  /**
   * Deletes the oldest rows, in chain order, as long as they match `condition` (SQL over the table's
   * columns): the chain then starts at the first row kept. Returns how many went.
   */
  deleteOldest(condition: string, ...params: SqlValue[]): number {
    return atomic(this.db, () => {
      const keep = this.db
        .prepare(
          `SELECT chain_seq FROM ${this.table} WHERE chain_seq IS NOT NULL AND NOT (${condition}) ORDER BY chain_seq LIMIT 1`,
        )
        .get(...params) as { chain_seq: number } | undefined;
      const head = readHead(this.db, this.table) as Head;
      const cut = keep?.chain_seq ?? head.next_seq;
      if (cut <= head.first_seq) return 0;
      const before = this.db.prepare(`SELECT chain_hash FROM ${this.table} WHERE chain_seq = ?`).get(cut - 1) as
        | { chain_hash: string }
        | undefined;
      const changes = this.db.prepare(`DELETE FROM ${this.table} WHERE chain_seq < ?`).run(cut).changes;
      this.db
        .prepare(`UPDATE ${HEADS_TABLE} SET first_seq = ?, first_prev_hash = ? WHERE tbl = ?`)
        .run(cut, before?.chain_hash ?? head.last_hash, this.table);
      return changes;
    });
  }

  private assertIntact(): void {
    const fault = checkTable(this.db, this.table);
    if (fault)
      throw new P2PError(
        ErrorCode.storage,
        `${this.table} was changed outside the platform (row ${fault.index} fails the ${fault.check} check); not writing over it`,
        { component: 'ledger', hint: 'run p2p-edge ledger verify on the database and restore it from a good copy' },
      );
  }

  private rechainFrom(seq: number): void {
    const head = readHead(this.db, this.table) as Head;
    let prev =
      seq === head.first_seq
        ? head.first_prev_hash
        : (
            this.db.prepare(`SELECT chain_hash FROM ${this.table} WHERE chain_seq = ?`).get(seq - 1) as {
              chain_hash: string;
            }
          ).chain_hash;
    const rows = this.db
      .prepare(`SELECT rowid AS chain_rowid, * FROM ${this.table} WHERE chain_seq >= ? ORDER BY chain_seq`)
      .all(seq) as (Record<string, unknown> & { chain_seq: number })[];
    const update = this.db.prepare(`UPDATE ${this.table} SET chain_hash = ? WHERE rowid = ?`);
    for (const row of rows) {
      prev = chainRowHash(this.table, row.chain_seq, pick(row, this.shape.columns), prev);
      update.run(prev, row.chain_rowid);
    }
    this.moveHeadStatement.run(head.next_seq, prev, this.table);
  }
}
