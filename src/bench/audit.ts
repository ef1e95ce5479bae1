import { join } from 'node:path';
import { DEFAULT_OUTBOX, Outbox } from '../comms/outbox.js';
import type { SqliteDatabase } from '../platform/ledger/sqlite.js';

export interface MeterAudit {
  /** Metering intervals a member sent that the platform never stored: holes within one run. */
  missing: number;
  /** Metering intervals stored twice. */
  duplicated: number;
}

/** The metering intervals still waiting (and not expired) in each gateway's saved outbox. */
export function meterIntervalsInFlight(stateDir: string, gateways: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const id of gateways) {
    const outbox = new Outbox(DEFAULT_OUTBOX, join(stateDir, id, 'outbox.json'));
    outbox.load(Date.now());
    const n = outbox.all().filter((e) => e.cls === 'meter' && e.type === 'energy').length;
    if (n > 0) out.set(id, n);
  }
  return out;
}

/**
 * What the platform's database says was lost or doubled, per member. A gateway sends one message per
 * metering interval while it runs, so within one run (epoch) any interval between the first and the
 * last stored is one that never made it, unless one of the sender's intervals is still in its outbox
 * (`inFlight`, counted per member: late, not lost). Intervals a gateway never measured (it was
 * down) are between runs and not counted here. Doubled: an interval stored twice.
 */
export function auditMeterIntervals(
  db: SqliteDatabase,
  inFlight: ReadonlyMap<string, number> = new Map(),
): Map<string, MeterAudit> {
  const out = new Map<string, MeterAudit>();
  const runs = db
    .prepare(
      `SELECT member, epoch, COUNT(*) AS n, MIN(from_ms) AS lo, MAX(from_ms) AS hi, MIN(to_ms - from_ms) AS len
         FROM platform_meter_intervals GROUP BY member, epoch`,
    )
    .all() as { member: string; epoch: number; n: number; lo: number; hi: number; len: number }[];
  const holes = new Map<string, number>();
  for (const r of runs) holes.set(r.member, (holes.get(r.member) ?? 0) + Math.max(0, (r.hi - r.lo) / r.len + 1 - r.n));
  for (const [member, n] of holes)
    out.set(member, { missing: Math.max(0, n - (inFlight.get(member) ?? 0)), duplicated: 0 });
  const doubles = db
    .prepare(
      'SELECT member, COUNT(*) - COUNT(DISTINCT from_ms) AS d FROM platform_meter_intervals GROUP BY member HAVING d > 0',
    )
    .all() as { member: string; d: number }[];
  for (const r of doubles) {
    const a = out.get(r.member) ?? { missing: 0, duplicated: 0 };
    a.duplicated += r.d;
    out.set(r.member, a);
  }
  return out;
}
