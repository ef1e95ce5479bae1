import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { STATUS_PAGE_HTML } from './status-page.js';

export interface StatusServerOptions {
  host: string;
  port: number;
  token?: string | undefined;
  /** JSON for `/api/state`. */
  state(): unknown;
  /** Prometheus text for `/metrics`. */
  metrics(): Promise<string>;
  log: Logger;
}

/**
 * The gateway's status page: `/` (HTML, polls the API), `/api/state` (JSON), `/metrics` (Prometheus).
 * Read-only. With a token configured every request needs `Authorization: Bearer <token>` (or
 * `?token=` for a browser).
 */
export class StatusServer {
  private server: Server | undefined;

  constructor(private readonly options: StatusServerOptions) {}

  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.options.log.error({ err: (err as Error).message, url: req.url }, 'status request failed');
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new P2PError(
            err.code === 'EADDRINUSE' ? ErrorCode.config : ErrorCode.unavailable,
            `status page cannot listen on ${this.options.host}:${this.options.port}: ${err.code ?? err.message}`,
            {
              component: 'status',
              field: 'status.port',
              hint: 'choose another status.port, or 0 to turn the page off',
            },
          ),
        ),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    this.options.log.info({ url: `http://${address.address}:${address.port}/` }, 'status page listening');
    return address;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private authorised(req: IncomingMessage, url: URL): boolean {
    const token = this.options.token;
    if (!token) return true;
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : (url.searchParams.get('token') ?? '');
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://status');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n');
    if (!this.authorised(req, url)) return send(res, 401, 'text/plain', 'token required\n');
    switch (url.pathname) {
      case '/':
        return send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
      case '/api/state':
        return send(res, 200, 'application/json', JSON.stringify(this.options.state()));
      case '/metrics':
        return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', await this.options.metrics());
      case '/healthz':
        return send(res, 200, 'text/plain', 'ok\n');
      default:
        return send(res, 404, 'text/plain', 'not found\n');
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
