import type { AddressInfo } from 'node:net';
import { type HttpReply, ReadOnlyHttpServer, reply } from '../core/http-server.js';
import type { Logger } from '../core/log.js';
import { STATUS_PAGE_HTML } from './status-page/shell.js';

export interface StatusServerOptions {
  host: string;
  port: number;
  token?: string | undefined;
  /** JSON for `/api/state`. */
  state(): unknown;
  /** Prometheus text for `/metrics`. */
  metrics(): Promise<string>;
  /** More read-only pages (the bench's live charts); undefined for a path they do not serve. */
  routes?: (url: URL) => HttpReply | undefined;
  /** `/healthz`: 200 "ok" while healthy, 503 with the reason otherwise (the watchdog's control-loop check). */
  health?(): { ok: boolean; status: string };
  log: Logger;
}

/**
 * The gateway's status page: `/` (HTML, polls the API; `/member/<id>` the same page showing one
 * house), `/api/state` (JSON), `/metrics` (Prometheus), `/healthz`. Read-only; loopback by default, a token when exposed (`ReadOnlyHttpServer`).
 */
export class StatusServer {
  private readonly http: ReadOnlyHttpServer;

  constructor(private readonly options: StatusServerOptions) {
    this.http = new ReadOnlyHttpServer({
      component: 'status page',
      host: options.host,
      port: options.port,
      token: options.token,
      portField: 'status.port',
      onError: (err, url) => options.log.error({ err: (err as Error).message, url }, 'status request failed'),
      route: async (url) => {
        switch (url.pathname) {
          case '/':
            return reply(200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
          case '/api/state':
            return reply(200, 'application/json', JSON.stringify(options.state()));
          case '/metrics':
            return reply(200, 'text/plain; version=0.0.4; charset=utf-8', await options.metrics());
          case '/healthz': {
            const health = options.health?.();
            return health && !health.ok
              ? reply(503, 'text/plain', `${health.status}\n`)
              : reply(200, 'text/plain', 'ok\n');
          }
          default:
            // A member's view of one house: the same page, which reads the id from the path.
            if (/^\/member\/[^/]+\/?$/.test(url.pathname))
              return reply(200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
            return options.routes?.(url);
        }
      },
    });
  }

  async listen(): Promise<AddressInfo> {
    const address = await this.http.listen();
    this.options.log.info({ url: `http://${address.address}:${address.port}/` }, 'status page listening');
    return address;
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
