import type { SqliteDatabase } from './ledger/sqlite.js';
import { ChainedTable } from './ledger/table-chain.js';
import { type IntervalEnergy, intervalEnergy } from './meter-energy.js';

/**
 * Every meter reading a platform receives, stored as it arrives (before it is acknowledged), keyed
 * by the message that carried it: a resend of the same message is recognised and stored once. The
 * energy of a metering interval is computed from these samples when the interval closes, so a
 * platform that crashed and restarted loses nothing it had acknowledged and counts nothing twice.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_meter_samples (
  member TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  net_w REAL NOT NULL,
  PRIMARY KEY (member, epoch, seq)
);
CREATE INDEX IF NOT EXISTS platform_meter_samples_time ON platform_meter_samples (member, time_ms);
`;

export interface MeterSample {
  member: string;
  epoch: number;
  seq: number;
  /** When the meter was read (the message's timestamp), ms. */
  timeMs: number;
  netW: number;
}

/** A sample as stored, in the table's column order. */
export interface StoredSample {
  member: string;
  epoch: number;
  seq: number;
  time_ms: number;
  net_w: number;
}

export class MeterSamples {
  private readonly chain: ChainedTable;
  private readonly between;
  private readonly before;
  private readonly firstFrom;
  private readonly numbersBetween;

  constructor(private readonly db: SqliteDatabase) {
    db.exec(SCHEMA);
    this.chain = ChainedTable.open(db, 'platform_meter_samples');
    this.between = db.prepare(
      'SELECT member, epoch, seq, time_ms, net_w FROM platform_meter_samples WHERE member = ? AND time_ms >= ? AND time_ms < ? ORDER BY time_ms',
    );
    this.before = db.prepare(
      'SELECT member, epoch, seq, time_ms, net_w FROM platform_meter_samples WHERE member = ? AND time_ms < ? ORDER BY time_ms DESC LIMIT 1',
    );
    this.firstFrom = db.prepare(
      'SELECT time_ms FROM platform_meter_samples WHERE member = ? AND time_ms >= ? ORDER BY time_ms LIMIT 1',
    );
    this.numbersBetween = db.prepare(
      'SELECT epoch, seq FROM platform_meter_samples WHERE member = ? AND time_ms >= ? AND time_ms <= ? ORDER BY epoch, seq',
    );
  }

  /** Stores a sample; false when this message was stored before (a resend). */
  add(s: MeterSample): boolean {
    return this.addAll([s])[0] as boolean;
  }

  /** Stores samples in one transaction, all or none; per sample, false when it was stored before. */
  addAll(samples: readonly MeterSample[]): boolean[] {
    const rows = samples.map((s) => ({
      member: s.member,
      epoch: s.epoch,
      seq: s.seq,
      time_ms: s.timeMs,
      net_w: s.netW,
    }));
    return this.chain.insertAll(rows, { orIgnore: true }).map((r) => r.changes > 0);
  }

  /**
   * Energy (kWh) a member took in [fromMs, toMs): each sample's power holds until the next sample,
   * for at most `maxHoldMs` (a gap longer than that, the gateway being away, is not filled in). The
   * last sample before the interval covers its start. Null when no sample covers any of it.
   */
  energyKWh(member: string, fromMs: number, toMs: number, maxHoldMs: number): number | null {
    return this.intervalEnergy(member, fromMs, toMs, maxHoldMs)?.kWh ?? null;
  }

  /**
   * `energyKWh` with the share of the interval the samples cover, and the samples it was computed
   * from (the one holding at the start first): the evidence a settlement names.
   */
  intervalEnergy(
    member: string,
    fromMs: number,
    toMs: number,
    maxHoldMs: number,
  ): (IntervalEnergy & { samples: StoredSample[] }) | null {
    const rows = this.between.all(member, fromMs, toMs) as StoredSample[];
    const previous = this.before.get(member, fromMs) as StoredSample | undefined;
    const points = previous && fromMs - previous.time_ms < maxHoldMs ? [previous, ...rows] : rows;
    const e = intervalEnergy(
      points.map((p) => ({ timeMs: p.time_ms, netW: p.net_w })),
      fromMs,
      toMs,
      maxHoldMs,
    );
    return e && { ...e, samples: points };
  }

  /**
   * Whether every reading a member sent from the one holding at `fromMs` to the first at or after
   * `toMs` is stored: a sender numbers its readings one stream step apart (`seqStep`), so a gap in
   * the numbers is a reading still on its way. A restart (a new epoch) starts the numbers afresh.
   */
  isComplete(member: string, fromMs: number, toMs: number, seqStep: number): boolean {
    const after = this.firstFrom.get(member, toMs) as { time_ms: number } | undefined;
    if (!after) return false;
    const holding = this.before.get(member, fromMs) as { time_ms: number } | undefined;
    const rows = this.numbersBetween.all(member, holding?.time_ms ?? fromMs, after.time_ms) as {
      epoch: number;
      seq: number;
    }[];
    // Without the reading holding at the start, the first one stored must be its sender's first of
    // the epoch (it started in the interval: a stream's numbers start one step in, `EnvelopeStamper`);
    // else the one before it is still on its way.
    if (!holding && (rows[0]?.seq ?? 0) >= 2 * seqStep) return false;
    return rows.every((r, i) => {
      const prev = rows[i - 1];
      return !prev || prev.epoch !== r.epoch || r.seq - prev.seq === seqStep;
    });
  }

  /** Members with a sample at or after `sinceMs`, and the time of their first one then. */
  membersSince(sinceMs: number): { member: string; firstMs: number }[] {
    return (
      this.db
        .prepare('SELECT member, MIN(time_ms) AS first FROM platform_meter_samples WHERE time_ms >= ? GROUP BY member')
        .all(sinceMs) as { member: string; first: number }[]
    ).map((r) => ({ member: r.member, firstMs: r.first }));
  }

  /**
   * Deletes samples older than `beforeMs` (their intervals are stored), oldest stored first, up to the
   * first stored sample that is not older (the table's chain is cut only at its start: a sample that
   * arrived late stays until those stored before it go); returns how many.
   */
  prune(beforeMs: number): number {
    return this.chain.deleteOldest('time_ms < ?', beforeMs);
  }

  /** Samples stored per member, and how many of them repeat a (member, time) already stored. */
  counts(): { member: string; samples: number; sameTime: number }[] {
    return this.db
      .prepare(
        'SELECT member, COUNT(*) AS samples, COUNT(*) - COUNT(DISTINCT time_ms) AS sameTime FROM platform_meter_samples GROUP BY member',
      )
      .all() as { member: string; samples: number; sameTime: number }[];
  }
}
