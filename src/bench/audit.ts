import { join } from 'node:path';
import { DEFAULT_OUTBOX, Outbox } from '../comms/outbox.js';
import { STREAM_COUNT } from '../comms/replay-guard.js';
import type { SqliteDatabase } from '../platform/ledger/sqlite.js';

export interface MeterAudit {
  /** Readings a member sent that the platform never stored: holes in the sequence numbers of one run. */
  missing: number;
  /** Readings stored twice: the same reading time from one member under two runs (epochs). */
  duplicated: number;
}

/** How a reading still in a sender's outbox is named in `inFlight`. */
export function inFlightKey(member: string, epoch: number, seq: number): string {
  return `${member}/${epoch}/${seq}`;
}

/** The meter readings still waiting (and not expired) in the gateways' saved outboxes. */
export function meterReadingsInFlight(stateDir: string, gateways: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const id of gateways) {
    const outbox = new Outbox(DEFAULT_OUTBOX, join(stateDir, id, 'outbox.json'));
    outbox.load(Date.now());
    for (const e of outbox.all()) {
      const [epoch, seq] = e.id.split(':').map(Number);
      if (e.cls === 'meter') out.add(inFlightKey(id, epoch!, seq!));
    }
  }
  return out;
}

/**
 * What the platform's database says was lost or doubled, per member. A gateway numbers its meter
 * readings consecutively in a stream of their own within each run (epoch), so any hole between the
 * first and the last reading stored from a run is a reading that never made it, whether it was lost
 * before or after an acknowledgement, unless it is still in the sender's outbox (`inFlight`). Readings
 * unsent at the end of a run (in the outbox of a gateway killed before it saved it) are after the last
 * one stored and not counted here.
 */
export function auditMeterSamples(
  db: SqliteDatabase,
  inFlight: ReadonlySet<string> = new Set(),
): Map<string, MeterAudit> {
  const out = new Map<string, MeterAudit>();
  const runs = db
    .prepare(
      'SELECT member, epoch, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM platform_meter_samples GROUP BY member, epoch',
    )
    .all() as { member: string; epoch: number; n: number; lo: number; hi: number }[];
  const seqsOf = db.prepare('SELECT seq FROM platform_meter_samples WHERE member = ? AND epoch = ?');
  for (const r of runs) {
    const a = out.get(r.member) ?? { missing: 0, duplicated: 0 };
    const holes = (r.hi - r.lo) / STREAM_COUNT + 1 - r.n;
    if (holes > 0) {
      // Still waiting in the sender's outbox for the platform's acknowledgement: late, not lost.
      const stored = new Set((seqsOf.all(r.member, r.epoch) as { seq: number }[]).map((x) => x.seq));
      for (let seq = r.lo; seq <= r.hi; seq += STREAM_COUNT)
        if (!stored.has(seq) && !inFlight.has(inFlightKey(r.member, r.epoch, seq))) a.missing++;
    }
    out.set(r.member, a);
  }
  // The same reading under a new message id: a sender that re-stamped it after a restart (its
  // resends keep their id and are stored once). Two readings of one run at the same millisecond are
  // two cycles that ran back to back, and count for nothing in the energy.
  const doubles = db
    .prepare(
      `SELECT a.member AS member, COUNT(*) AS d FROM platform_meter_samples a JOIN platform_meter_samples b
         ON a.member = b.member AND a.time_ms = b.time_ms AND a.epoch < b.epoch GROUP BY a.member`,
    )
    .all() as { member: string; d: number }[];
  for (const r of doubles) {
    const a = out.get(r.member) ?? { missing: 0, duplicated: 0 };
    a.duplicated += r.d;
    out.set(r.member, a);
  }
  return out;
}
