import { type CsvCell, toCsv } from '../core/csv.js';
import { Contracts } from './contracts.js';
import { DrEvents } from './dr-events.js';
import type { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { Readings } from './readings.js';
import { Settlements } from './settlement.js';
import { buildStatement, parseIsoOption, type Statement } from './statement.js';
import { TradeReports } from './trades.js';

/**
 * The platform's tables as rows for people and scripts: the `platform <table> list` command and the
 * read-only API both print them (JSON, or CSV with `rowsToCsv`); so too the statement of accounts.
 */
export type PlatformTable = 'members' | 'contracts' | 'settlements' | 'readings' | 'events' | 'trades';

/** Rows as CSV with the union of their keys as header; nested values (objects, arrays) as JSON. */
export function rowsToCsv(rows: Record<string, unknown>[]): string {
  const header: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!header.includes(k)) header.push(k);
  const cell = (value: unknown): CsvCell =>
    value === undefined || typeof value === 'string' || typeof value === 'number' ? value : JSON.stringify(value);
  return toCsv(
    header,
    rows.map((r) => header.map((k) => cell(r[k]))),
  );
}

export function platformRows(ledger: Ledger, table: PlatformTable): Record<string, unknown>[] {
  const members = new Membership(ledger.db, undefined, () => Date.now());
  switch (table) {
    case 'members':
      return members.list() as unknown as Record<string, unknown>[];
    case 'contracts':
      return new Contracts(ledger.db, members).list() as unknown as Record<string, unknown>[];
    case 'settlements':
      return new Settlements(ledger).list() as unknown as Record<string, unknown>[];
    case 'readings':
      return new Readings(ledger.db, members).list().map((r) => ({ ...r, time: new Date(r.timeMs).toISOString() }));
    case 'trades':
      return new TradeReports(ledger.db).list().map((t) => ({
        ...t,
        intervalStart: new Date(t.interval).toISOString(),
        received: new Date(t.receivedMs).toISOString(),
      }));
    case 'events': {
      const contracts = new Contracts(ledger.db, members);
      return new DrEvents(ledger, contracts, new Readings(ledger.db, members)).list().map((e) => ({
        id: e.id,
        contract: e.contract,
        start: new Date(e.startMs).toISOString(),
        end: new Date(e.endMs).toISOString(),
        evaluated: e.result !== null,
        ...(e.result ?? {}),
      }));
    }
  }
}

export interface StatementOptions {
  member?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

/** The statement of the ledger's settlements; a bad `from`/`to` or an unknown member is an input error. */
/** The starts of the intervals with a disputed settlement that was not committed (none before live settlement). */
function disputedSettlementIntervals(ledger: Ledger): number[] {
  const table = ledger.db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'platform_settlement_disputes'")
    .get();
  if (!table) return [];
  return (
    ledger.db
      .prepare(
        `SELECT DISTINCT d.interval FROM platform_settlement_drafts d
         WHERE EXISTS (SELECT 1 FROM platform_settlement_disputes x WHERE x.content_hash = d.content_hash)
         AND NOT EXISTS (SELECT 1 FROM platform_settled_units s WHERE s.unit = d.unit)`,
      )
      .all() as { interval: number }[]
  ).map((r) => r.interval);
}

export function ledgerStatement(ledger: Ledger, options: StatementOptions, nowMs: number): Statement {
  const fromMs = options.from === undefined ? undefined : parseIsoOption(options.from, '--from');
  const toMs = options.to === undefined ? undefined : parseIsoOption(options.to, '--to');
  const knownIds = new Membership(ledger.db, undefined, () => nowMs).list().map((m) => m.id);
  const disputedIntervals = disputedSettlementIntervals(ledger);
  return buildStatement(ledger.entries(), { fromMs, toMs, member: options.member, knownIds, disputedIntervals }, nowMs);
}
