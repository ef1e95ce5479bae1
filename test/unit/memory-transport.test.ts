import { describe, expect, it } from 'vitest';
import { MemoryBus, MemoryTransport, topicMatches } from '../../src/comms/memory-transport.js';
import { parseTopic, topicFor } from '../../src/comms/topics.js';
import { DEFAULT_TTL_MS, type Delivery } from '../../src/comms/transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';

const log = componentLogger('test');
log.level = 'silent';
const tick = () => new Promise((r) => setImmediate(r));

function endpoint(bus: MemoryBus, id: string, clock: VirtualClock) {
  const metrics = new GatewayMetrics({ gateway: id });
  const t = new MemoryTransport(
    bus,
    { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
    { clock, log, metrics },
  );
  return { t, metrics };
}

describe('topics', () => {
  it('round-trips the wire topic scheme', () => {
    const topic = topicFor({ cell: 'c1', sender: 'inv-1', cls: 'mkt', type: 'bid', target: 'tx-1' });
    expect(topic).toBe('p2p/v1/c1/inv-1/mkt/bid/tx-1');
    expect(parseTopic(topic)).toEqual({ cell: 'c1', sender: 'inv-1', cls: 'mkt', type: 'bid', target: 'tx-1' });
    expect(parseTopic('p2p/v1/c1/inv-1/nope/x')).toBeUndefined();
    expect(() => topicFor({ cell: 'c/1', sender: 'a', cls: 'mkt', type: 'b' })).toThrow(/cell/);
  });

  it('matches MQTT wildcards', () => {
    expect(topicMatches('p2p/v1/+/+/life/online', 'p2p/v1/c1/a/life/online')).toBe(true);
    expect(topicMatches('p2p/v1/#', 'p2p/v1/c1/a/life/online')).toBe(true);
    expect(topicMatches('p2p/v1/+/a', 'p2p/v1/c1/a/x')).toBe(false);
  });
});

describe('MemoryTransport', () => {
  it('delivers stamped envelopes to subscribers, not back to the sender', async () => {
    const clock = new VirtualClock(1000);
    const bus = new MemoryBus();
    const a = endpoint(bus, 'a', clock);
    const b = endpoint(bus, 'b', clock);
    await a.t.start();
    await b.t.start();
    const got: Delivery[] = [];
    b.t.subscribeUnchecked({ cell: 'c1', cls: 'meter' }, (d) => got.push(d));
    a.t.subscribeUnchecked({ cell: 'c1', cls: 'meter' }, () => {
      throw new Error('sender must not receive its own message');
    });
    await a.t.publishUnchecked('meter', 'reading', { netW: 1 });
    await a.t.publishUnchecked('meter', 'reading', { netW: 2 });
    await tick();
    // Sequence numbers count per stream: the low 3 bits name it (meter = class 4), each counts up by 8.
    expect(got.map((d) => d.envelope.seq)).toEqual([1 * 8 + 4, 2 * 8 + 4]);
    expect(got[0]?.envelope).toMatchObject({
      v: 1,
      sender: 'a',
      ts: 1000,
      expires: 1000 + DEFAULT_TTL_MS.meter,
      type: 'reading',
      body: { netW: 1 },
    });
  });

  it('tracks presence: retained online for late joiners, cleared by a crash (will)', async () => {
    const clock = new VirtualClock(0);
    const bus = new MemoryBus();
    const a = endpoint(bus, 'a', clock);
    await a.t.start();
    const b = endpoint(bus, 'b', clock);
    await b.t.start();
    await tick();
    expect(b.t.peers()).toMatchObject([
      { id: 'a', online: true, role: 'inverter' },
      { id: 'b', online: true },
    ]);
    a.t.crash();
    await tick();
    expect(b.t.peers().find((p) => p.id === 'a')?.online).toBe(false);
    expect(await b.metrics.text()).toMatch(/p2p_peer_up\{peer="a",gateway="b"\} 0/);
  });

  it('drops and counts malformed, expired and oversized messages without throwing', async () => {
    const clock = new VirtualClock(100_000);
    const bus = new MemoryBus();
    const b = endpoint(bus, 'b', clock);
    await b.t.start();
    const got: Delivery[] = [];
    b.t.subscribeUnchecked({ cell: 'c1', cls: 'meter' }, (d) => got.push(d));
    const topic = 'p2p/v1/c1/x/meter/reading';
    const env = { v: 1, sender: 'x', epoch: 1, seq: 1, ts: 1, expires: 200_000, type: 'reading', body: {} };
    bus.publish(topic, 'not json', false);
    bus.publish(topic, JSON.stringify({ ...env, v: 2 }), false);
    bus.publish(topic, JSON.stringify({ ...env, expires: 5 }), false);
    bus.publish(topic, JSON.stringify({ ...env, body: 'x'.repeat(70_000) }), false);
    bus.publish(topic, JSON.stringify({ ...env, sender: 'y' }), false);
    bus.publish(topic, JSON.stringify(env), false);
    await tick();
    expect(got).toHaveLength(1);
    const text = await b.metrics.text();
    expect(text).toMatch(/p2p_messages_rejected_total\{reason="schema",gateway="b"\} 3/);
    expect(text).toMatch(/p2p_messages_rejected_total\{reason="expired",gateway="b"\} 1/);
    expect(text).toMatch(/p2p_messages_rejected_total\{reason="size",gateway="b"\} 1/);
  });
});
