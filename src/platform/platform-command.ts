import { existsSync } from 'node:fs';
import { type CsvCell, toCsv } from '../core/csv.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { printJson } from '../core/output.js';
import { Contracts } from './contracts.js';
import { DrEvents } from './dr-events.js';
import { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { Readings } from './readings.js';
import { Settlements } from './settlement.js';
import { TradeReports } from './trades.js';

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

/** `p2p-edge platform <members|contracts|settlements|readings|events|trades> list --db FILE [--format json|csv]`. */
export function platformListCommand(table: PlatformTable, options: { db: string; format: 'json' | 'csv' }): void {
  if (!existsSync(options.db)) {
    throw new P2PError(ErrorCode.input, `platform database ${options.db} does not exist`, {
      component: 'platform',
      file: options.db,
      field: '--db',
    });
  }
  const ledger = Ledger.open(options.db, { mustExist: true });
  try {
    const rows = platformRows(ledger, table);
    if (options.format === 'csv') process.stdout.write(rowsToCsv(rows));
    else printJson(rows);
  } finally {
    ledger.close();
  }
}

/** `p2p-edge platform serve --db FILE [--host H] [--port P] [--token T]`: the read-only API until SIGINT/SIGTERM. */
export async function platformServeCommand(options: {
  db: string;
  host: string;
  port: string;
  token?: string;
}): Promise<void> {
  const port = Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new P2PError(ErrorCode.input, `--port must be 0..65535 (got ${options.port})`, {
      component: 'platform',
      field: '--port',
    });
  }
  const { PlatformApiServer } = await import('./api-server.js');
  const ledger = Ledger.open(options.db);
  const token = options.token ?? process.env.P2P_EDGE_PLATFORM_TOKEN;
  const api = new PlatformApiServer({ ledger, host: options.host, port, token });
  const address = await api.listen();
  process.stderr.write(`platform API listening on http://${address.address}:${address.port}/\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await api.close();
  ledger.close();
}
