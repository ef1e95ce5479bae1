import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { runCli } from './net.js';

/** The `settlement` section of a bench report. */
export interface SettlementReport {
  intervals: number;
  settled: number;
  signedByAllParties: number;
  disputed: number;
  balance: number;
  units: { drafted: number; committed: number; disputed: number; awaitingSignatures: number };
}

/**
 * What every bench run must show of settlement: intervals settled, none disputed (a dispute has a
 * cause, and a run without faults of the figures has none), money only moved between accounts, every
 * settled interval signed by all its parties, and an interval not settled only because a unit of it
 * still waits for a signature at the end. The run's ledger verifies.
 */
export async function expectRunSettled(report: {
  settlement: SettlementReport;
  ledger: { db: string };
}): Promise<void> {
  const s = report.settlement;
  expect(s.intervals).toBeGreaterThan(0);
  expect(s.disputed, JSON.stringify(disputes(report.ledger.db))).toBe(0);
  expect(Math.abs(s.balance)).toBeLessThanOrEqual(1e-6);
  expect(s.signedByAllParties).toBe(s.settled);
  expect(s.settled).toBeGreaterThanOrEqual(s.intervals - s.units.awaitingSignatures);
  const verify = await runCli(['ledger', 'verify', '--db', report.ledger.db, '--json']);
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
}

export function disputes(dbFile: string): { unit: string; party: string; lines: string }[] {
  const db = openDatabase(dbFile, { mustExist: true });
  try {
    return db.prepare('SELECT unit, party, lines FROM platform_settlement_disputes').all() as {
      unit: string;
      party: string;
      lines: string;
    }[];
  } finally {
    db.close();
  }
}

/** When a gateway of a bench run started, from its log (a restart after a kill is the second). */
export function gatewayStarts(logFile: string): number[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"gateway started"'))
    .map((l) => (JSON.parse(l) as { time: number }).time);
}

export interface PartyUnit {
  unit: string;
  interval: number;
  draftedMs: number;
  committedMs: number | null;
  /** When the platform received this party's signature, null when it has not. */
  signedMs: number | null;
}

/** Every settlement unit the party is a party to, from the platform's database. */
export function unitsOf(dbFile: string, party: string): PartyUnit[] {
  const db = openDatabase(dbFile, { mustExist: true });
  try {
    const rows = db
      .prepare(
        `SELECT d.unit, d.interval, d.content, d.drafted_ms,
          (SELECT committed_ms FROM platform_settled_units s WHERE s.unit = d.unit) AS committed_ms,
          (SELECT received_ms FROM platform_settlement_signatures g WHERE g.content_hash = d.content_hash AND g.party = ?) AS signed_ms
         FROM platform_settlement_drafts d ORDER BY d.interval`,
      )
      .all(party) as {
      unit: string;
      interval: number;
      content: string;
      drafted_ms: number;
      committed_ms: number | null;
      signed_ms: number | null;
    }[];
    return rows
      .filter((r) => (JSON.parse(r.content) as { parties: { id: string }[] }).parties.some((p) => p.id === party))
      .map((r) => ({
        unit: r.unit,
        interval: r.interval,
        draftedMs: r.drafted_ms,
        committedMs: r.committed_ms,
        signedMs: r.signed_ms,
      }));
  } finally {
    db.close();
  }
}
