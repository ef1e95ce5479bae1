import { toCsv } from '../core/csv.js';
import type { LedgerEntry } from './ledger/ledger.js';
import { money } from './settlement.js';
import { isoTime, memberRole, type StatementQuery, settledIntervals, statementPeriod } from './statement.js';

/**
 * A member's day per interval: one row per settled interval of the period that the member appears in,
 * read from the ledger's settlements as the statement reads them (`settledIntervals`), so that the rows
 * add up to the member's statement account over the same period. Pure: the caller hands in the
 * ledger's entries and the time.
 */

export interface IntervalRow {
  /** The interval's start, ISO 8601 UTC. */
  interval: string;
  /** Energy sold to and bought from peers. */
  soldKWh: number;
  boughtKWh: number;
  /** To the level above (positive: sold to it) or from it (negative). */
  imbalanceKWh: number;
  /** The money of the member's peer trades over their kWh (sold and bought together); null without trades. */
  averagePricePerKWh: number | null;
  received: number;
  paid: number;
  fees: number;
  /** received − paid − fees. */
  net: number;
  /** What the interval's metered energy would have been owed traded with the level above alone. */
  aloneNet: number | null;
  /** net − aloneNet. */
  savings: number | null;
}

export interface IntervalStatement {
  member: string;
  /** The statement's period: the same `from` and `to` as `platform statement` for the same query. */
  from: string;
  to: string;
  intervals: IntervalRow[];
}

export const INTERVAL_COLUMNS = [
  'interval',
  'soldKWh',
  'boughtKWh',
  'imbalanceKWh',
  'averagePricePerKWh',
  'received',
  'paid',
  'fees',
  'net',
  'aloneNet',
  'savings',
] as const satisfies readonly (keyof IntervalRow)[];

const ZERO_KWH = 1e-9;

/** The rows of `member` (required) over [from, to); an id that is no member nor account is refused. */
export function buildIntervalStatement(
  entries: readonly LedgerEntry[],
  query: StatementQuery & { member: string },
  nowMs: number,
): IntervalStatement {
  memberRole(entries, query.member, query.knownIds);
  const intervals = settledIntervals(entries, query);
  const rows: IntervalRow[] = [];
  for (const interval of intervals) {
    const a = interval.accounts.get(query.member);
    if (!a) continue;
    const tradedKWh = a.soldKWh + a.boughtKWh;
    rows.push({
      interval: isoTime(interval.intervalMs),
      soldKWh: a.soldKWh,
      boughtKWh: a.boughtKWh,
      imbalanceKWh: a.imbalanceKWh,
      averagePricePerKWh: tradedKWh < ZERO_KWH ? null : money(a.peerTradeValue / tradedKWh),
      received: a.received,
      paid: a.paid,
      fees: a.fees,
      net: a.net,
      aloneNet: a.aloneNet,
      savings: a.savings,
    });
  }
  return { member: query.member, ...statementPeriod(intervals, query, nowMs), intervals: rows };
}

/** The rows as CSV, one column per field (`INTERVAL_COLUMNS`); an unknown price or alone figure is empty. */
export function intervalStatementCsv(s: IntervalStatement): string {
  return toCsv(
    INTERVAL_COLUMNS,
    s.intervals.map((r) => INTERVAL_COLUMNS.map((c) => r[c])),
  );
}
