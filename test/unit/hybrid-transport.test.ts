import { describe, expect, it } from 'vitest';
import { HybridTransport } from '../../src/comms/hybrid-transport.js';
import type { Link, LinkHost, RawPublish } from '../../src/comms/link.js';
import { LinkRoutes } from '../../src/comms/link-routes.js';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { presencePattern, subscriptionPatterns, type TopicFilter } from '../../src/comms/topics.js';
import type { Delivery } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { metricValue, silentLog, tick } from '../helpers/signed-cell.js';

/** A link over an in-memory bus, named as the link it stands for; `drop()` leaves as a broker's Will would say. */
class BusLink implements Link {
  private host: LinkHost | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  up = false;
  constructor(
    readonly backend: 'mqtt' | 'd2d',
    private readonly bus: MemoryBus,
    private readonly cell = 'c1',
  ) {}
  async start(host: LinkHost): Promise<void> {
    this.host = host;
    this.up = true;
    this.unsubscribe.push(this.bus.subscribe(presencePattern(this.cell), (t, p) => host.receive(t, p)));
    this.bus.publish(host.onlineTopic, host.onlinePayload(), true);
    host.linkUp(false);
  }
  async close(): Promise<void> {
    this.drop();
  }
  drop(): void {
    if (!this.up) return;
    this.up = false;
    for (const u of this.unsubscribe.splice(0)) u();
    this.bus.publish(this.host!.onlineTopic, '', true);
    this.host!.linkDown();
  }
  async send(topic: string, payload: string, options: RawPublish): Promise<void> {
    if (this.up) this.bus.publish(topic, payload, options.retain);
  }
  listen(filter: TopicFilter): void {
    for (const pattern of subscriptionPatterns(filter))
      this.unsubscribe.push(this.bus.subscribe(pattern, (t, p) => this.host?.receive(t, p)));
  }
  status() {
    return { backend: this.backend, connected: this.up, endpoint: this.bus.name };
  }
  assertFits(): void {}
}

function gateway(id: string, buses: { mqtt: MemoryBus; d2d: MemoryBus }, spec = {}) {
  const links = { mqtt: new BusLink('mqtt', buses.mqtt), d2d: new BusLink('d2d', buses.d2d) };
  const metrics = new GatewayMetrics({ gateway: id });
  const t = new HybridTransport(
    [links.mqtt, links.d2d],
    new LinkRoutes(['mqtt', 'd2d'], spec),
    { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
    { clock: systemClock, log: silentLog, metrics },
  );
  return { t, links, metrics };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await tick();
};

describe('hybrid transport over two links', () => {
  it('sends each class over its route, takes a message arriving over both links once', async () => {
    const buses = { mqtt: new MemoryBus('broker'), d2d: new MemoryBus('sidelink') };
    const spec = { gossip: 'd2d', dr: ['d2d', 'mqtt'] };
    const a = gateway('a', buses, spec);
    const b = gateway('b', buses, spec);
    const onBroker: string[] = [];
    const onSidelink: string[] = [];
    buses.mqtt.subscribe('p2p/v1/c1/a/#', (t) => onBroker.push(t));
    buses.d2d.subscribe('p2p/v1/c1/a/#', (t) => onSidelink.push(t));
    await a.t.start();
    await b.t.start();
    const got: Delivery[] = [];
    for (const cls of ['gossip', 'mkt', 'dr'] as const) b.t.subscribeUnchecked({ cell: 'c1', cls }, (d) => got.push(d));
    await a.t.publishUnchecked('gossip', 'push-sum', { s: 1 });
    await a.t.publishUnchecked('mkt', 'probe', { p: 2 });
    await a.t.publishUnchecked('dr', 'probe', { kWh: 3 });
    await settle();
    expect(got.map((d) => `${d.topic.cls}/${d.envelope.seq}`)).toHaveLength(3);
    expect(onSidelink.filter((t) => !t.includes('/life/'))).toEqual([
      'p2p/v1/c1/a/gossip/push-sum',
      'p2p/v1/c1/a/dr/probe',
    ]);
    expect(onBroker.filter((t) => !t.includes('/life/'))).toEqual(['p2p/v1/c1/a/mkt/probe', 'p2p/v1/c1/a/dr/probe']);
    expect(await metricValue(b.metrics, 'p2p_messages_rejected_total', { reason: 'duplicate' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(
      await metricValue(a.metrics, 'p2p_link_messages_total', { link: 'd2d', class: 'gossip', direction: 'sent' }),
    ).toBe(1);
    expect(
      await metricValue(b.metrics, 'p2p_link_messages_total', { link: 'mqtt', class: 'mkt', direction: 'received' }),
    ).toBe(1);
    expect(a.t.status()).toMatchObject({
      backend: 'hybrid',
      connected: true,
      links: [
        { backend: 'mqtt', connected: true, endpoint: 'broker' },
        { backend: 'd2d', connected: true, endpoint: 'sidelink' },
      ],
    });
    await a.t.close();
    await b.t.close();
  });

  it('keeps a peer online while any link hears it', async () => {
    const buses = { mqtt: new MemoryBus('broker'), d2d: new MemoryBus('sidelink') };
    const a = gateway('a', buses);
    const b = gateway('b', buses);
    await a.t.start();
    await b.t.start();
    await settle();
    const online = () => b.t.peers().find((p) => p.id === 'a')?.online;
    expect(online()).toBe(true);
    a.links.mqtt.drop(); // the broker's Will: gone from the broker, still on the sidelink
    await settle();
    expect(online()).toBe(true);
    expect(await metricValue(a.metrics, 'p2p_link_up', { link: 'mqtt' })).toBe(0);
    expect(a.t.status()).toMatchObject({ connected: true, links: [{ connected: false }, { connected: true }] });
    a.links.d2d.drop();
    await settle();
    expect(online()).toBe(false);
    await b.t.close();
  });
});
