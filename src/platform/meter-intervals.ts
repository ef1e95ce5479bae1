import type { SqliteDatabase, SqliteStatement } from './ledger/sqlite.js';
import { ChainedTable } from './ledger/table-chain.js';

/**
 * The energy of each metering interval a member's gateway sends the platform (`meter/energy`),
 * stored as it arrives (before it is acknowledged), keyed by the message that carried it: a resend
 * is recognised and stored once, and so is a second report of an interval already stored (the first
 * is kept). The platform receives nothing finer than this: a gateway integrates its own meter's
 * power over the interval (`IntervalMeter`, the same code the gateway checks its settlements with).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_meter_intervals (
  member TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  from_ms INTEGER NOT NULL,
  to_ms INTEGER NOT NULL,
  net_kwh REAL NOT NULL,
  covered_ms INTEGER NOT NULL,
  PRIMARY KEY (member, epoch, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS platform_meter_intervals_member_from ON platform_meter_intervals (member, from_ms);
`;

export interface MeterInterval {
  member: string;
  /** The message that carried it. */
  epoch: number;
  seq: number;
  fromMs: number;
  toMs: number;
  /** Net energy taken in the interval, kWh of real time (negative = exported). */
  netKWh: number;
  /** How much of the interval the gateway's samples covered, ms. */
  coveredMs: number;
}

/** An interval as stored, in the table's column order: the evidence a settlement names. */
export interface StoredMeterInterval {
  member: string;
  epoch: number;
  seq: number;
  from_ms: number;
  to_ms: number;
  net_kwh: number;
  covered_ms: number;
}

export interface MeteredEnergy {
  kWh: number;
  coveredMs: number;
  /** The stored intervals it is the sum of. */
  rows: StoredMeterInterval[];
}

export class MeterIntervals {
  private readonly chain: ChainedTable;
  private readonly within: SqliteStatement;
  private readonly endingBetween: SqliteStatement;

  constructor(private readonly db: SqliteDatabase) {
    db.exec(SCHEMA);
    this.chain = ChainedTable.open(db, 'platform_meter_intervals');
    this.within = db.prepare(
      'SELECT member, epoch, seq, from_ms, to_ms, net_kwh, covered_ms FROM platform_meter_intervals WHERE member = ? AND from_ms >= ? AND to_ms <= ? ORDER BY from_ms',
    );
    this.endingBetween = db.prepare(
      'SELECT member, epoch, seq, from_ms, to_ms, net_kwh, covered_ms FROM platform_meter_intervals WHERE member = ? AND to_ms > ? AND to_ms <= ? ORDER BY to_ms LIMIT ?',
    );
  }

  /** Stores intervals in one transaction, all or none; per interval, false when it was stored before. */
  addAll(intervals: readonly MeterInterval[]): boolean[] {
    const rows = intervals.map((i) => ({
      member: i.member,
      epoch: i.epoch,
      seq: i.seq,
      from_ms: i.fromMs,
      to_ms: i.toMs,
      net_kwh: i.netKWh,
      covered_ms: i.coveredMs,
    }));
    return this.chain.insertAll(rows, { orIgnore: true }).map((r) => r.changes > 0);
  }

  /** The energy a member took in [fromMs, toMs): the sum of the stored intervals inside it; null when none is. */
  energy(member: string, fromMs: number, toMs: number): MeteredEnergy | null {
    const rows = this.within.all(member, fromMs, toMs) as StoredMeterInterval[];
    if (rows.length === 0) return null;
    let kWh = 0;
    let coveredMs = 0;
    for (const r of rows) {
      kWh += r.net_kwh;
      coveredMs += r.covered_ms;
    }
    return { kWh, coveredMs, rows };
  }

  /** Whether the stored intervals of a member tile [fromMs, toMs) with no gap. */
  isComplete(member: string, fromMs: number, toMs: number): boolean {
    let at = fromMs;
    for (const r of this.within.all(member, fromMs, toMs) as StoredMeterInterval[]) {
      if (r.from_ms !== at) return false;
      at = r.to_ms;
    }
    return at === toMs;
  }

  /** A member's intervals that end in (afterMs, upToMs], in time order, at most `limit`. */
  endedBetween(member: string, afterMs: number, upToMs: number, limit: number): StoredMeterInterval[] {
    return this.endingBetween.all(member, afterMs, upToMs, limit) as StoredMeterInterval[];
  }

  /** Members with an interval ending after `sinceMs`. */
  membersSince(sinceMs: number): string[] {
    return (
      this.db.prepare('SELECT DISTINCT member FROM platform_meter_intervals WHERE to_ms > ?').all(sinceMs) as {
        member: string;
      }[]
    ).map((r) => r.member);
  }

  /**
   * Deletes intervals that ended before `beforeMs` (their readings are stored), oldest stored first,
   * up to the first stored one that is not older (the table's chain is cut only at its start);
   * returns how many.
   */
  prune(beforeMs: number): number {
    return this.chain.deleteOldest('to_ms < ?', beforeMs);
  }
}
