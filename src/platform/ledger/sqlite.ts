import { createRequire } from 'node:module';
import { ErrorCode, P2PError } from '../../core/errors.js';

/** The part of better-sqlite3's API the platform uses (the package ships no typings here). */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
}
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  pragma(text: string, options?: { simple?: boolean }): unknown;
  readonly inTransaction: boolean;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { (...args: A): R; immediate(...args: A): R };
  close(): void;
}
type DatabaseConstructor = new (
  file: string,
  options?: { readonly?: boolean; fileMustExist?: boolean },
) => SqliteDatabase;

let loaded: DatabaseConstructor | undefined;

/**
 * Loads better-sqlite3 on first use: it is a native, optional dependency, so a build without it still
 * runs everything except the platform's storage.
 */
export function sqliteDriver(): DatabaseConstructor {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;
    return loaded;
  } catch (err) {
    throw new P2PError(ErrorCode.unavailable, 'SQLite (better-sqlite3) is not available on this machine', {
      component: 'ledger',
      hint: 'install the optional dependency better-sqlite3 for this Node version',
      cause: err,
    });
  }
}

/**
 * SQLite's page cache per connection unless told otherwise, KiB: SQLite's own default (better-sqlite3
 * builds with 16 MB, which a gateway's database fills only as its ledger grows, so its memory would
 * keep rising for months).
 */
export const DEFAULT_PAGE_CACHE_KIB = 2048;

export interface OpenOptions {
  mustExist?: boolean;
  /** Page cache bound, KiB. */
  pageCacheKiB?: number;
}

/**
 * Opens a database file with the durability the ledger needs (WAL and a full fsync on every commit)
 * and a bounded page cache.
 */
export function openDatabase(file: string, options: OpenOptions = {}): SqliteDatabase {
  const Database = sqliteDriver();
  let db: SqliteDatabase;
  try {
    db = new Database(file, { fileMustExist: options.mustExist ?? false });
  } catch (err) {
    throw new P2PError(ErrorCode.input, `cannot open ledger database ${file}: ${(err as Error).message}`, {
      component: 'ledger',
      file,
      cause: err,
    });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma(`cache_size = -${Math.round(options.pageCacheKiB ?? DEFAULT_PAGE_CACHE_KIB)}`);
  } catch (err) {
    db.close();
    throw new P2PError(ErrorCode.input, `${file} is not a usable SQLite database: ${(err as Error).message}`, {
      component: 'ledger',
      file,
      cause: err,
    });
  }
  return db;
}
