import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { Ledger } from './ledger/ledger.js';
import { exportRow, toCsv } from './ledger/ledger-command.js';
import { type PlatformTable, platformRows, rowsToCsv } from './platform-command.js';

export interface PlatformApiOptions {
  ledger: Ledger;
  /** Loopback unless the operator exposes the API; then a token is required. */
  host: string;
  port: number;
  token?: string | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Read-only HTTP JSON API of the platform: `/api/members`, `/api/contracts`, `/api/settlements`,
 * `/api/ledger` (add `?format=csv` for CSV) and `/api/ledger/verify`. Same pattern as the gateway's
 * status page: loopback by default; bound elsewhere it refuses to start without a token, and every
 * request then needs `Authorization: Bearer <token>`.
 */
export class PlatformApiServer {
  private server: Server | undefined;

  constructor(private readonly options: PlatformApiOptions) {
    if (!LOOPBACK.has(options.host) && !options.token) {
      throw new P2PError(ErrorCode.config, `the platform API on ${options.host} needs a token`, {
        component: 'platform-api',
        field: 'token',
        hint: 'set a token, or listen on 127.0.0.1',
      });
    }
  }

  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${(err as Error).message}\n`);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new P2PError(
            ErrorCode.config,
            `platform API cannot listen on ${this.options.host}:${this.options.port}: ${err.code ?? err.message}`,
            { component: 'platform-api', field: 'port' },
          ),
        ),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private authorised(req: IncomingMessage): boolean {
    const token = this.options.token;
    if (!token) return true;
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    const expected = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://platform');
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed\n');
    if (!this.authorised(req)) return send(res, 401, 'text/plain', 'token required\n');
    const csv = url.searchParams.get('format') === 'csv';
    const tables: Record<string, PlatformTable> = {
      '/api/members': 'members',
      '/api/contracts': 'contracts',
      '/api/settlements': 'settlements',
    };
    const table = tables[url.pathname];
    if (table) {
      const rows = platformRows(this.options.ledger, table);
      return csv
        ? send(res, 200, 'text/csv', rowsToCsv(rows))
        : send(res, 200, 'application/json', JSON.stringify(rows));
    }
    if (url.pathname === '/api/ledger') {
      const rows = this.options.ledger.entries().map(exportRow);
      return csv ? send(res, 200, 'text/csv', toCsv(rows)) : send(res, 200, 'application/json', JSON.stringify(rows));
    }
    if (url.pathname === '/api/ledger/verify')
      return send(res, 200, 'application/json', JSON.stringify(this.options.ledger.verify()));
    return send(res, 404, 'text/plain', 'not found\n');
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
