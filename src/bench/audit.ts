import { STREAM_COUNT } from '../comms/replay-guard.js';
import type { SqliteDatabase } from '../platform/ledger/sqlite.js';

export interface MeterAudit {
  /** Readings a member sent that the platform never stored: holes in the sequence numbers of one run. */
  missing: number;
  /** Readings stored twice: two messages with the same time from the same member. */
  duplicated: number;
}

/**
 * What the platform's database says was lost or doubled, per member. A gateway numbers its meter
 * readings consecutively in a stream of their own within each run (epoch), so any hole between the
 * first and the last reading stored from a run is a reading that never made it, whether it was lost
 * before or after an acknowledgement. Readings still unsent at the end of a run (in the outbox of a
 * gateway killed before it saved it) are after the last one stored and not counted here.
 */
export function auditMeterSamples(db: SqliteDatabase): Map<string, MeterAudit> {
  const out = new Map<string, MeterAudit>();
  const runs = db
    .prepare(
      'SELECT member, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM platform_meter_samples GROUP BY member, epoch',
    )
    .all() as { member: string; n: number; lo: number; hi: number }[];
  for (const r of runs) {
    const a = out.get(r.member) ?? { missing: 0, duplicated: 0 };
    a.missing += (r.hi - r.lo) / STREAM_COUNT + 1 - r.n;
    out.set(r.member, a);
  }
  const doubles = db
    .prepare('SELECT member, COUNT(*) - COUNT(DISTINCT time_ms) AS d FROM platform_meter_samples GROUP BY member')
    .all() as { member: string; d: number }[];
  for (const r of doubles) {
    const a = out.get(r.member) ?? { missing: 0, duplicated: 0 };
    a.duplicated += r.d;
    out.set(r.member, a);
  }
  return out;
}
