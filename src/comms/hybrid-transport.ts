import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import { BaseTransport, type RawPublish, type TransportDeps, type TransportIdentity } from './base-transport.js';
import type { D2DLink } from './d2d-link.js';
import { D2DRelay, type RelayOptions } from './d2d-relay.js';
import type { Link, LinkHost } from './link.js';
import type { LinkName, LinkRoutes } from './link-routes.js';
import type { RelayBody } from './messages/life.js';
import { parseTopic, type TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

/**
 * A transport over several links at once (the broker for trading and settlement, the D2D sidelink for
 * the control loops), each message class sent over the links its route names. One stamper, one
 * signing layer, one inbound pipeline and replay guard for all of them: a message that arrives over
 * two links (same sender, epoch, seq) is delivered once, the second copy dropped as a duplicate.
 * Subscriptions go on every link that carries their class; presence goes on every link, and a peer
 * is online while any link hears it.
 *
 * With both links, a gateway whose broker link is down sends and receives what goes over the broker
 * through a neighbour's D2D relay (`D2DRelay`), and relays for its cell while its own is up.
 */
export class HybridTransport extends BaseTransport {
  private readonly links: ReadonlyMap<LinkName, Link>;
  /** The peers each link hears (peer → cell): a peer goes offline when the last of them loses it. */
  private readonly present = new Map<LinkName, Map<string, string>>();
  /** The link whose message the inbound pipeline is taking (it runs synchronously up to presence). */
  private arrivingOn: LinkName | undefined;
  private readonly relay: D2DRelay | undefined;

  constructor(
    links: Link[],
    private readonly routes: LinkRoutes,
    identity: TransportIdentity,
    deps: TransportDeps,
    relay: RelayOptions = { offer: true, ratePerS: 50, queueMax: 200 },
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
    const mqtt = this.links.get('mqtt');
    const d2d = this.links.get('d2d');
    if (mqtt && d2d) {
      this.relay = new D2DRelay(
        {
          gatewayId: identity.gatewayId,
          cell: identity.cell,
          mqtt,
          d2d,
          heartbeatMs: (d2d as Partial<D2DLink>).options?.heartbeatMs ?? 1000,
          announce: (body, target) => this.announceRelay(body, target),
          deliver: (topic, payload) => this.handleIncoming(topic, payload),
          resendAll: () => this.onLinkUp(false),
        },
        relay,
        deps,
      );
      this.subscribeUnchecked({ cell: identity.cell, cls: 'life', type: RELAY_TYPE }, (d) => this.relay!.heard(d));
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
    this.relay?.start();
  }

  protected closeBackend(): Promise<void> {
    this.relay?.close();
    return this.closeLinks();
  }

  /** A signed `life/relay` over the sidelink only (it means nothing on the broker). */
  private announceRelay(body: RelayBody, target?: string): void {
    this.publishUnchecked('life', RELAY_TYPE, body, { ...(target ? { target } : {}), ttlMs: 10_000 }).catch((err) =>
      this.deps.log.debug({ err: errorMessage(err) }, 'relay announcement not sent'),
    );
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
      ...(this.relay ? { relay: this.relay.status() } : {}),
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
        if (link.backend === 'mqtt' && !link.status().connected && this.relay?.sendUp(topic, payload))
          return Promise.resolve();
        if (cls) this.deps.metrics?.linkMessages.inc({ link: link.backend, class: cls, direction: 'sent' });
        return link.send(topic, payload, options);
      }),
    );
  }

  protected listen(filter: TopicFilter): void {
    for (const name of this.routes.linksFor(filter.cls)) this.links.get(name)?.listen(filter);
  }

  private linksOf(topic: string): Link[] {
    const parts = parseTopic(topic);
    const cls = parts?.cls;
    if (cls === 'life' && parts?.type === RELAY_TYPE) return [this.links.get('d2d')!];
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
    if (name === 'd2d' && this.relay?.frame(topic, payload)) return;
    const parts = parseTopic(topic);
    if (!parts) return;
    if (name === 'mqtt') this.relay?.fromBroker(parts, topic, payload);
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

/** The type of `life` a D2D relay offers itself and is asked with. */
const RELAY_TYPE = 'relay';
