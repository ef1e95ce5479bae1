import { existsSync } from 'node:fs';
import { ErrorCode, P2PError } from '../core/errors.js';
import { printJson } from '../core/output.js';
import { Ledger } from './ledger/ledger.js';
import {
  ledgerStatement,
  type PlatformTable,
  platformRows,
  rowsToCsv,
  type StatementOptions,
} from './platform-tables.js';
import { statementTable } from './statement.js';

function mustExist(db: string): void {
  if (!existsSync(db)) {
    throw new P2PError(ErrorCode.input, `platform database ${db} does not exist`, {
      component: 'platform',
      file: db,
      field: '--db',
    });
  }
}

/** `p2p-edge platform <members|contracts|settlements|readings|events|trades> list --db FILE [--format json|csv]`. */
export function platformListCommand(table: PlatformTable, options: { db: string; format: 'json' | 'csv' }): void {
  mustExist(options.db);
  const ledger = Ledger.open(options.db, { mustExist: true });
  try {
    const rows = platformRows(ledger, table);
    if (options.format === 'csv') process.stdout.write(rowsToCsv(rows));
    else printJson(rows);
  } finally {
    ledger.close();
  }
}

/** `p2p-edge platform statement --db FILE [--member ID] [--from ISO] [--to ISO] [--json]`. */
export function statementCommand(options: StatementOptions & { db: string; json?: boolean }): void {
  mustExist(options.db);
  const ledger = Ledger.open(options.db, { mustExist: true });
  try {
    const statement = ledgerStatement(ledger, options, Date.now());
    if (options.json) printJson(statement);
    else process.stdout.write(statementTable(statement));
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
