import { existsSync } from 'node:fs';
import { toCsv } from '../../core/csv.js';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { printJson } from '../../core/output.js';
import { Ledger, type LedgerEntry } from './ledger.js';

function openExisting(file: string): Ledger {
  if (!existsSync(file)) {
    throw new P2PError(ErrorCode.input, `ledger database ${file} does not exist`, {
      component: 'ledger',
      file,
      field: '--db',
    });
  }
  return Ledger.open(file, { mustExist: true });
}

/** `p2p-edge ledger verify --db FILE [--json]`: exit 1 when any entry fails a check. */
export function ledgerVerifyCommand(options: { db: string; json?: boolean }): void {
  const ledger = openExisting(options.db);
  try {
    const result = ledger.verify();
    if (options.json) printJson(result);
    else if (result.ok) process.stdout.write(`ledger ok: ${result.entries} entries and every platform table\n`);
    else if (result.firstBad && 'table' in result.firstBad)
      process.stdout.write(
        `ledger NOT ok: ${result.firstBad.table} row ${result.firstBad.index} (${JSON.stringify(result.firstBad.row)}) fails the ${result.firstBad.check} check\n`,
      );
    else
      process.stdout.write(
        `ledger NOT ok: entry ${result.firstBad?.index} fails the ${result.firstBad?.check} check\n`,
      );
    if (!result.ok) process.exitCode = 1;
  } finally {
    ledger.close();
  }
}

export interface ExportRow {
  index: number;
  time: string;
  kind: string;
  parties: string[];
  amounts: Record<string, number>;
  hash: string;
}

export function exportRow(e: LedgerEntry): ExportRow {
  return {
    index: e.index,
    time: e.time,
    kind: e.kind,
    parties: e.parties.map((p) => p.id),
    amounts: e.amounts,
    hash: e.hash,
  };
}

/** The ledger's rows as CSV: parties joined with `;`, amounts as `id=amount` joined with `;`. */
export function ledgerCsv(rows: ExportRow[]): string {
  return toCsv(
    ['index', 'time', 'kind', 'parties', 'amounts', 'hash'],
    rows.map((r) => [
      r.index,
      r.time,
      r.kind,
      r.parties.join(';'),
      Object.entries(r.amounts)
        .map(([id, v]) => `${id}=${v}`)
        .join(';'),
      r.hash,
    ]),
  );
}

/** `p2p-edge ledger export --db FILE --format csv|json`. */
export function ledgerExportCommand(options: { db: string; format: 'csv' | 'json' }): void {
  const ledger = openExisting(options.db);
  try {
    const rows = ledger.entries().map(exportRow);
    if (options.format === 'csv') process.stdout.write(ledgerCsv(rows));
    else printJson(rows);
  } finally {
    ledger.close();
  }
}
