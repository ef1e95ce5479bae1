import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, P2PError } from './errors.js';

export interface HttpReply {
  status: number;
  type: string;
  body: string;
}

export interface ReadOnlyHttpOptions {
  /** Names the server in errors and logs (`status`, `platform-api`). */
  component: string;
  host: string;
  port: number;
  /** Required when `host` is not a loopback address; then every request must carry it. */
  token?: string | undefined;
  /** The config field that sets the port, named when listening fails. */
  portField: string;
  /** Answers a GET; undefined for an unknown path (404). */
  route(url: URL): Promise<HttpReply | undefined> | HttpReply | undefined;
  onError?(err: unknown, url: string): void;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function reply(status: number, type: string, body: string): HttpReply {
  return { status, type, body };
}

/**
 * A small read-only HTTP server for gateways and the platform: GET/HEAD only; with a token, every
 * request needs `Authorization: Bearer <token>` (or `?token=` for a browser); it refuses to listen
 * beyond loopback without one.
 */
export class ReadOnlyHttpServer {
  private server: Server | undefined;

  constructor(private readonly options: ReadOnlyHttpOptions) {
    if (!LOOPBACK.test(options.host) && !options.token) {
      throw new P2PError(ErrorCode.config, `${options.component} on ${options.host} needs a token`, {
        component: options.component,
        field: 'token',
        hint: 'set a token, or listen on 127.0.0.1',
      });
    }
  }

  async listen(): Promise<AddressInfo> {
    const { options } = this;
    const server = createServer((req, res) => {
      this.answer(req)
        .catch((err): HttpReply => {
          options.onError?.(err, req.url ?? '');
          return reply(500, 'text/plain', 'internal error\n');
        })
        .then((r) => {
          res.writeHead(r.status, { 'content-type': r.type, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : r.body);
        });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new P2PError(
            err.code === 'EADDRINUSE' ? ErrorCode.config : ErrorCode.unavailable,
            `${options.component} cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`,
            { component: options.component, field: options.portField, hint: `choose another ${options.portField}` },
          ),
        ),
      );
      server.listen(options.port, options.host, () => resolve());
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

  private authorised(req: IncomingMessage, url: URL): boolean {
    const token = this.options.token;
    if (!token) return true;
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : (url.searchParams.get('token') ?? ''));
    const expected = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private async answer(req: IncomingMessage): Promise<HttpReply> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text/plain', 'method not allowed\n');
    if (!this.authorised(req, url)) return reply(401, 'text/plain', 'token required\n');
    return (await this.options.route(url)) ?? reply(404, 'text/plain', 'not found\n');
  }
}
