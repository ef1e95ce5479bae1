import type { AddressInfo } from 'node:net';
import { ReadOnlyHttpServer, reply } from '../core/http-server.js';
import type { Ledger } from './ledger/ledger.js';
import { exportRow, ledgerCsv } from './ledger/ledger-command.js';
import { type PlatformTable, platformRows, rowsToCsv } from './platform-tables.js';
import { statementRoutes } from './statement-routes.js';

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
 * document; as CSV its accounts), `/api/statements/intervals?member=` (a member's rows per interval),
 * `/statement?member=` (the member's day as an HTML page; statement-routes.ts), `/api/ledger` (add
 * `?format=csv` for CSV) and `/api/ledger/verify`.
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
    const statements = statementRoutes(options.ledger);
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
        const statement = statements(url);
        if (statement) return statement;
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
