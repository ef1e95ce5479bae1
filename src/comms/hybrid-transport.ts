import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import { BaseTransport, type RawPublish, type TransportDeps, type TransportIdentity } from './base-transport.js';
import type { Link, LinkHost } from './link.js';
import type { LinkName, LinkRoutes } from './link-routes.js';
import { parseTopic, type TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

/**
 * A transport over several links at once (the broker for trading and settlement, the D2D sidelink for
 * the control loops), each message class sent over the links its route names. One stamper, one
 * signing layer, one inbound pipeline and replay guard for all of them: a message that arrives over
 * two links (same sender, epoch, seq) is delivered once, the second copy dropped as a duplicate.
 * Subscriptions go on every link that carries their class; presence goes on every link, and a peer
 * is online while any link hears it.
 */
export class HybridTransport extends BaseTransport {
  private readonly links: ReadonlyMap<LinkName, Link>;
  /** The peers each link hears (peer → cell): a peer goes offline when the last of them loses it. */
  private readonly present = new Map<LinkName, Map<string, string>>();
  /** The link whose message the inbound pipeline is taking (it runs synchronously up to presence). */
  private arrivingOn: LinkName | undefined;

  constructor(
    links: Link[],
    private readonly routes: LinkRoutes,
    identity: TransportIdentity,
    deps: TransportDeps,
  ) {
    super(identity, deps);
    this.links = new Map(links.map((l) => [l.backend as LinkName, l]));
    for (const name of routes.configured) {
      if (!this.links.has(name))
        throw new P2PError(ErrorCode.config, `comms.${name}: the routes name this link, but it was not built`, {
          component: 'comms',
          field: `comms.${name}`,
        });
      this.present.set(name, new Map());
    }
  }

  protected async startBackend(): Promise<void> {
    const entries = [...this.links];
    const started = await Promise.allSettled(entries.map(([name, link]) => link.start(this.hostFor(name))));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.closeLinks();
      throw failed.reason;
    }
  }

  protected closeBackend(): Promise<void> {
    return this.closeLinks();
  }

  private async closeLinks(): Promise<void> {
    const closed = await Promise.allSettled([...this.links.values()].map((l) => l.close()));
    for (const r of closed)
      if (r.status === 'rejected') this.deps.log.warn({ err: errorMessage(r.reason) }, 'link close failed');
  }

  status(): TransportStatus {
    const links = [...this.links.values()].map((l) => l.status());
    return {
      backend: 'hybrid',
      connected: links.some((l) => l.connected),
      endpoint: links.map((l) => `${l.backend} ${l.endpoint}`).join(', '),
      links: links.map(({ backend, connected, endpoint }) => ({ backend, connected, endpoint })),
    };
  }

  /** Each link of the message's class checks what it can carry (a D2D datagram's MTU). */
  protected override assertFits(topic: string, payload: string): void {
    for (const link of this.linksOf(topic)) link.assertFits(topic, payload);
  }

  protected async sendRaw(topic: string, payload: string, options: RawPublish): Promise<void> {
    const cls = parseTopic(topic)?.cls;
    await Promise.all(
      this.linksOf(topic).map((link) => {
        if (cls) this.deps.metrics?.linkMessages.inc({ link: link.backend, class: cls, direction: 'sent' });
        return link.send(topic, payload, options);
      }),
    );
  }

  protected listen(filter: TopicFilter): void {
    for (const name of this.routes.linksFor(filter.cls)) this.links.get(name)?.listen(filter);
  }

  private linksOf(topic: string): Link[] {
    const cls = parseTopic(topic)?.cls;
    const names = cls ? this.routes.linksFor(cls) : this.routes.configured;
    return names.map((n) => this.links.get(n)).filter((l): l is Link => l !== undefined);
  }

  private hostFor(name: LinkName): LinkHost {
    const shared = this.linkHost();
    return {
      ...shared,
      receive: (topic, payload) => this.receiveOn(name, topic, payload),
      linkUp: (reconnect) => {
        this.deps.metrics?.linkUp.set({ link: name }, 1);
        shared.linkUp(reconnect);
      },
      linkDown: () => this.deps.metrics?.linkUp.set({ link: name }, 0),
      peerSilent: (peer, cell, now) => this.lostOn(name, peer, cell, now),
    };
  }

  private receiveOn(name: LinkName, topic: string, payload: Uint8Array | string): void {
    const parts = parseTopic(topic);
    if (!parts) return;
    this.deps.metrics?.linkMessages.inc({ link: name, class: parts.cls, direction: 'received' });
    const empty = typeof payload === 'string' ? payload.length === 0 : payload.byteLength === 0;
    if (parts.cls === 'life' && parts.type === 'online' && empty) {
      // The broker's Will (or a clean leave) says the peer left this link, not every link.
      this.lostOn(name, parts.sender, parts.cell, this.deps.clock.now());
      return;
    }
    this.arrivingOn = name;
    try {
      this.handleIncoming(topic, payload);
    } finally {
      this.arrivingOn = undefined;
    }
  }

  protected override onPresence(sender: string, cell: string, online: boolean, now: number): void {
    const name = this.arrivingOn;
    if (!name) return;
    if (online) this.present.get(name)?.set(sender, cell);
    else this.present.get(name)?.delete(sender);
    this.links.get(name)?.presenceHeard?.(sender, cell, online, now);
  }

  private lostOn(name: LinkName, peer: string, cell: string, now: number): void {
    this.present.get(name)?.delete(peer);
    const elsewhere = [...this.present.values()].some((peers) => peers.has(peer));
    if (!elsewhere) this.presence.offline(peer, cell, now);
  }
}
