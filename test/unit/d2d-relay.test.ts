import { describe, expect, it } from 'vitest';
import { HybridTransport } from '../../src/comms/hybrid-transport.js';
import type { Link, LinkHost, RawPublish } from '../../src/comms/link.js';
import { LinkRoutes } from '../../src/comms/link-routes.js';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { RelayBudget } from '../../src/comms/relay-budget.js';
import {
  parseRelayFramePayload,
  parseRelayFrameTopic,
  relayFramePayload,
  relayFrameTopic,
} from '../../src/comms/relay-frame.js';
import { presencePattern, subscriptionPatterns, type TopicFilter } from '../../src/comms/topics.js';
import type { Delivery } from '../../src/comms/transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { metricValue, silentLog } from '../helpers/signed-cell.js';

/**
 * A link over an in-memory bus. `mqtt`: subscriptions by pattern (and unsubscribed), cut and restored
 * as an uplink is. `d2d`: hears everything on the sidelink bus, as the radio does.
 */
class BusLink implements Link {
  private host: LinkHost | undefined;
  private readonly subs = new Map<string, () => void>();
  up = false;
  constructor(
    readonly backend: 'mqtt' | 'd2d',
    private readonly bus: MemoryBus,
  ) {}
  async start(host: LinkHost): Promise<void> {
    this.host = host;
    this.up = true;
    this.subscribe(this.backend === 'd2d' ? '#' : presencePattern('c1'));
    host.linkUp(false);
  }
  private subscribe(pattern: string): void {
    if (!this.subs.has(pattern))
      this.subs.set(
        pattern,
        this.bus.subscribe(pattern, (t, p) => {
          if (this.up) this.host?.receive(t, p);
        }),
      );
  }
  async close(): Promise<void> {
    this.up = false;
  }
  cut(): void {
    this.up = false;
    this.host!.linkDown();
  }
  restore(): void {
    this.up = true;
    this.host!.linkUp(true);
  }
  async send(topic: string, payload: string, options: RawPublish): Promise<void> {
    if (this.up) this.bus.publish(topic, payload, options.retain);
  }
  listen(filter: TopicFilter): void {
    if (this.backend === 'mqtt') for (const p of subscriptionPatterns(filter)) this.subscribe(p);
  }
  unlisten(filter: TopicFilter): void {
    for (const p of subscriptionPatterns(filter)) {
      this.subs.get(p)?.();
      this.subs.delete(p);
    }
  }
  status() {
    return { backend: this.backend, connected: this.up, endpoint: this.backend };
  }
  assertFits(): void {}
}

function gateway(id: string, clock: VirtualClock, buses: { mqtt: MemoryBus; d2d: MemoryBus }, ratePerS = 50) {
  const links = { mqtt: new BusLink('mqtt', buses.mqtt), d2d: new BusLink('d2d', buses.d2d) };
  const metrics = new GatewayMetrics({ gateway: id });
  const t = new HybridTransport(
    [links.mqtt, links.d2d],
    new LinkRoutes(['mqtt', 'd2d']),
    { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
    { clock, log: silentLog, metrics, random: () => 0.5 },
    { offer: true, ratePerS, queueMax: 5 },
  );
  return { t, links, metrics };
}

describe('D2D relay frames and budget', () => {
  it('carries a topic and envelope unchanged and names the direction and gateway', () => {
    const envelope = '{"v":1,"body":"a\\nb"}';
    expect(parseRelayFrameTopic(relayFrameTopic('up', 'gw-1'))).toEqual({ direction: 'up', gateway: 'gw-1' });
    expect(parseRelayFrameTopic('p2p/v1/c1/gw-1/meter/energy')).toBeUndefined();
    expect(parseRelayFramePayload(Buffer.from(relayFramePayload('p2p/v1/c1/b/meter/x/a', envelope)))).toEqual({
      topic: 'p2p/v1/c1/b/meter/x/a',
      payload: envelope,
    });
    expect(parseRelayFramePayload('no-envelope\n')).toBeUndefined();
  });

  it('lets through ratePerS a second per key, queues up to queueMax, drops beyond', () => {
    const budget = new RelayBudget<number>(2, 3);
    const taken = [1, 2, 3].map((n) => budget.offer('b', n, 0));
    expect(taken).toEqual([true, true, true]);
    expect(budget.offer('b', 4, 0)).toBe(false);
    expect(budget.take(0).map((d) => d.item)).toEqual([1, 2]);
    expect(budget.take(250)).toEqual([]); // half a token
    expect(budget.take(500).map((d) => d.item)).toEqual([3]);
    expect(budget.offer('c', 9, 500)).toBe(true); // another gateway has its own bucket
    expect(budget.take(500).map((d) => d.key)).toEqual(['c']);
    expect(budget.forget('b')).toBe(0);
  });
});

describe('hybrid gateways relaying for each other over the sidelink', () => {
  it('sends through a neighbour while the broker link is down, acks come back, and stops when it is up', async () => {
    const clock = new VirtualClock(1_800_000_000_000);
    const buses = { mqtt: new MemoryBus('broker'), d2d: new MemoryBus('sidelink') };
    const a = gateway('a', clock, buses);
    const b = gateway('b', clock, buses);
    const onBroker: string[] = [];
    buses.mqtt.subscribe('p2p/v1/c1/b/#', (t) => onBroker.push(t));
    await a.t.start();
    await b.t.start();
    const got: Delivery[] = [];
    a.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', target: 'a' }, (d) => got.push(d));
    await clock.advance(2500);
    expect(b.t.status().relay).toEqual({ for: [] });

    b.links.mqtt.cut();
    await b.t.publishUnchecked('meter', 'energy', { k: 1 }, { target: 'a' });
    await clock.advance(300);
    expect(got).toHaveLength(0); // asked, not yet through
    await clock.advance(2500);
    expect(b.t.status().relay).toEqual({ via: 'a', for: [] });
    expect(a.t.status().relay).toEqual({ for: ['b'] });
    expect(got.map((d) => d.envelope.body)).toEqual([{ k: 1 }]);
    expect(onBroker).toContain('p2p/v1/c1/b/meter/energy/a');
    expect(b.t.linkQuality().outboxPending).toBe(0); // the ack came down through the relay
    expect(
      await metricValue(a.metrics, 'p2p_relay_messages_total', { peer: 'b', direction: 'up', outcome: 'relayed' }),
    ).toBe(1);
    expect(
      await metricValue(a.metrics, 'p2p_relay_messages_total', { peer: 'b', direction: 'down', outcome: 'relayed' }),
    ).toBeGreaterThanOrEqual(1);

    // Beyond the rate (50/s) and the queue (5): dropped and counted; the outbox resends them later.
    for (let k = 2; k < 62; k++) await b.t.publishUnchecked('meter', 'energy', { k }, { target: 'a' });
    await clock.advance(20);
    expect(
      await metricValue(a.metrics, 'p2p_relay_messages_total', {
        peer: 'b',
        direction: 'up',
        outcome: 'dropped_queue',
      }),
    ).toBeGreaterThan(0);
    await clock.advance(60_000);
    expect(new Set(got.map((d) => (d.envelope.body as { k: number }).k)).size).toBe(61);
    expect(b.t.linkQuality().outboxPending).toBe(0);

    b.links.mqtt.restore();
    await clock.advance(1100);
    expect(b.t.status().relay).toEqual({ for: [] });
    expect(a.t.status().relay).toEqual({ for: [] }); // told to stop
    const handed = await metricValue(b.metrics, 'p2p_relay_messages_total', {
      peer: 'a',
      direction: 'up',
      outcome: 'handed',
    });
    await b.t.publishUnchecked('meter', 'energy', { k: 99 }, { target: 'a' });
    await clock.advance(1000);
    expect(got.at(-1)?.envelope.body).toEqual({ k: 99 });
    expect(
      await metricValue(b.metrics, 'p2p_relay_messages_total', { peer: 'a', direction: 'up', outcome: 'handed' }),
    ).toBe(handed);
    await a.t.close();
    await b.t.close();
  });

  it('relays only for a gateway that asked: a frame from another is refused', async () => {
    const clock = new VirtualClock(1_800_000_000_000);
    const buses = { mqtt: new MemoryBus('broker'), d2d: new MemoryBus('sidelink') };
    const a = gateway('a', clock, buses);
    await a.t.start();
    const onBroker: string[] = [];
    buses.mqtt.subscribe('p2p/v1/c1/x/#', (t) => onBroker.push(t));
    buses.d2d.publish(relayFrameTopic('up', 'a'), relayFramePayload('p2p/v1/c1/x/meter/energy/a', '{}'), false);
    await clock.advance(100);
    expect(onBroker).toEqual([]);
    expect(
      await metricValue(a.metrics, 'p2p_relay_messages_total', { peer: 'x', direction: 'up', outcome: 'refused' }),
    ).toBe(1);
    await a.t.close();
  });
});
