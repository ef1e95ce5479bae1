import type { AddressInfo } from 'node:net';
import { ErrorCode, isP2PError } from '../core/errors.js';
import { type HttpReply, ReadOnlyHttpServer, reply } from '../core/http-server.js';
import type { Ledger } from './ledger/ledger.js';
import { exportRow, ledgerCsv } from './ledger/ledger-command.js';
import { ledgerStatement, type PlatformTable, platformRows, rowsToCsv } from './platform-tables.js';
import type { Statement } from './statement.js';

export interface PlatformApiOptions {
  ledger: Ledger;
  /** Loopback unless the operator exposes the API; then a token is required. */
  host: string;
  port: number;
  token?: string | undefined;
}

/**
 * Read-only HTTP JSON API of the platform: `/api/members`, `/api/contracts`, `/api/settlements`,
 * `/api/readings`, `/api/events`, `/api/statements?member=&from=&to=` (the `platform statement`
 * document; as CSV its accounts), `/api/ledger` (add `?format=csv` for CSV) and `/api/ledger/verify`.
 * Same pattern as the gateway's status page: loopback by default; bound elsewhere it refuses to start without a token, and every
 * request then needs `Authorization: Bearer <token>`.
 */
export class PlatformApiServer {
  private readonly http: ReadOnlyHttpServer;

  constructor(options: PlatformApiOptions) {
    const tables: Record<string, PlatformTable> = {
      '/api/members': 'members',
      '/api/contracts': 'contracts',
      '/api/settlements': 'settlements',
      '/api/readings': 'readings',
      '/api/events': 'events',
      '/api/trades': 'trades',
    };
    this.http = new ReadOnlyHttpServer({
      component: 'platform API',
      host: options.host,
      port: options.port,
      token: options.token,
      portField: 'port',
      route: (url) => {
        const csv = url.searchParams.get('format') === 'csv';
        const table = tables[url.pathname];
        if (table) {
          const rows = platformRows(options.ledger, table);
          return csv ? reply(200, 'text/csv', rowsToCsv(rows)) : reply(200, 'application/json', JSON.stringify(rows));
        }
        if (url.pathname === '/api/statements') return statementReply(options.ledger, url, csv);
        if (url.pathname === '/api/ledger') {
          const rows = options.ledger.entries().map(exportRow);
          return csv ? reply(200, 'text/csv', ledgerCsv(rows)) : reply(200, 'application/json', JSON.stringify(rows));
        }
        if (url.pathname === '/api/ledger/verify')
          return reply(200, 'application/json', JSON.stringify(options.ledger.verify()));
        return undefined;
      },
    });
  }

  listen(): Promise<AddressInfo> {
    return this.http.listen();
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

function statementReply(ledger: Ledger, url: URL, csv: boolean): HttpReply {
  const param = (name: string) => url.searchParams.get(name) || undefined;
  let statement: Statement;
  try {
    statement = ledgerStatement(ledger, { member: param('member'), from: param('from'), to: param('to') }, Date.now());
  } catch (err) {
    // A bad time or an unknown member is the caller's mistake; the message names the parameter.
    if (isP2PError(err, ErrorCode.input)) return reply(400, 'text/plain', `${err.message.replace(/^--/, '')}\n`);
    throw err;
  }
  if (!csv) return reply(200, 'application/json', JSON.stringify(statement));
  return reply(200, 'text/csv', rowsToCsv(statement.accounts as unknown as Record<string, unknown>[]));
}
