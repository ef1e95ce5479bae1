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
 * What was lost or doubled, per member, counted from what each house sent: a metering interval it
 * sent (`sent`: the starts it listed in its state while the bench ran, the first and last of each run
 * and those an outbox gave up included) that the platform never stored is missing, unless one of the
 * house's intervals is still waiting in its outbox (`inFlight`, counted per member: late, not lost).
 * Doubled: an interval stored twice.
 */
export function auditMeterIntervals(
  db: SqliteDatabase,
  sent: ReadonlyMap<string, ReadonlySet<number>>,
  inFlight: ReadonlyMap<string, number> = new Map(),
): Map<string, MeterAudit> {
  const out = new Map<string, MeterAudit>();
  const stored = new Map<string, Set<number>>();
  const rows = db.prepare('SELECT member, from_ms FROM platform_meter_intervals').all() as {
    member: string;
    from_ms: number;
  }[];
  for (const r of rows) {
    const set = stored.get(r.member) ?? new Set<number>();
    set.add(r.from_ms);
    stored.set(r.member, set);
  }
  for (const [member, starts] of sent) {
    const have = stored.get(member) ?? new Set<number>();
    let notStored = 0;
    for (const fromMs of starts) if (!have.has(fromMs)) notStored++;
    out.set(member, { missing: Math.max(0, notStored - (inFlight.get(member) ?? 0)), duplicated: 0 });
  }
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
