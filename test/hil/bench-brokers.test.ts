import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchBroker, type CellBroker, startBenchBroker, startCellBrokers } from '../../src/bench/broker.js';
import { seededRandom } from '../../src/core/prng.js';
import { eventually, tempDir } from '../helpers/net.js';
import { requireTool } from '../helpers/system-tools.js';

/** A client on one broker that records what it receives under p2p/v1/#. */
async function client(url: string, id: string): Promise<{ c: MqttClient; got: string[]; probes: string[] }> {
  const c = mqtt.connect(url, { clientId: id, reconnectPeriod: 200 });
  const got: string[] = [];
  // The probes that wait for the bridges are kept apart: a late copy of one is not traffic under test.
  const probes: string[] = [];
  c.on('message', (topic, payload) =>
    (topic.includes('/probe/') ? probes : got).push(`${topic} ${payload.toString()}`),
  );
  await new Promise<void>((resolve) => c.once('connect', () => resolve()));
  await c.subscribeAsync('p2p/v1/#', { qos: 1 });
  return { c, got, probes };
}

// The bench's broker per cell, bridged upstream, run for real.
// Only with Mosquitto: the embedded broker cannot bridge.
describe('bench brokers: one per cell, bridged to the upstream broker', () => {
  const tmp = tempDir('p2p-bench-brokers-');
  let upstream: BenchBroker;
  let cells: Map<string, CellBroker>;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    requireTool('mosquitto');
    upstream = await startBenchBroker(tmp.dir);
    expect(upstream.kind).toBe('mosquitto');
    cells = await startCellBrokers(tmp.dir, ['cell-a', 'cell-b'], upstream, seededRandom(1));
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    for (const c of cells?.values() ?? []) {
      await c.broker.stop();
      await c.uplink.close();
    }
    await upstream?.stop();
    tmp.remove();
  });

  it('carries market and meter messages between cells once, keeps gossip in its cell, and a cut cell keeps its own traffic', async () => {
    const a = await client(cells.get('cell-a')!.broker.url, 'a');
    const a2 = await client(cells.get('cell-a')!.broker.url, 'a2');
    const b = await client(cells.get('cell-b')!.broker.url, 'b');
    const up = await client(upstream.url, 'platform');
    clients.push(a.c, a2.c, b.c, up.c);
    await eventually(
      () => (cells.get('cell-a')!.uplink.connections > 0 && cells.get('cell-b')!.uplink.connections > 0) || undefined,
    );
    // Bridges subscribe asynchronously: wait until a probe crosses both ways.
    await eventually(async () => {
      await a.c.publishAsync('p2p/v1/cell-a/probe/mkt/probe', 'x', { qos: 1 });
      return b.probes.some((m) => m.startsWith('p2p/v1/cell-a/probe/mkt/probe')) || undefined;
    });
    for (const list of [a.got, a2.got, b.got, up.got]) list.length = 0;

    await a.c.publishAsync('p2p/v1/cell-a/tx-cell-a/mkt/price-up/tx-cell-b', '1', { qos: 1 });
    await a.c.publishAsync('p2p/v1/cell-a/inv-1/gossip/pushsum', '2', { qos: 0 });
    await b.c.publishAsync('p2p/v1/cell-b/inv-9/meter/reading', '3', { qos: 1 });
    await up.c.publishAsync('p2p/v1/cell-a/platform-1/meter/ack/inv-9', '4', { qos: 1 });
    await eventually(() => (b.got.length >= 3 && up.got.length >= 3 && a2.got.length >= 4) || undefined);
    await new Promise((r) => setTimeout(r, 300)); // room for any copy or loop to show
    // Once each, across the bridges; gossip only inside cell-a.
    expect(b.got.sort()).toEqual([
      'p2p/v1/cell-a/platform-1/meter/ack/inv-9 4',
      'p2p/v1/cell-a/tx-cell-a/mkt/price-up/tx-cell-b 1',
      'p2p/v1/cell-b/inv-9/meter/reading 3',
    ]);
    expect(up.got.sort()).toEqual([
      'p2p/v1/cell-a/platform-1/meter/ack/inv-9 4',
      'p2p/v1/cell-a/tx-cell-a/mkt/price-up/tx-cell-b 1',
      'p2p/v1/cell-b/inv-9/meter/reading 3',
    ]);
    expect(a2.got.sort()).toEqual([
      'p2p/v1/cell-a/inv-1/gossip/pushsum 2',
      'p2p/v1/cell-a/platform-1/meter/ack/inv-9 4',
      'p2p/v1/cell-a/tx-cell-a/mkt/price-up/tx-cell-b 1',
      'p2p/v1/cell-b/inv-9/meter/reading 3',
    ]);

    // Cell-b's uplink cut: its gateways still reach each other, nothing crosses; then it comes back.
    for (const list of [a.got, a2.got, b.got, up.got]) list.length = 0;
    cells.get('cell-b')!.uplink.partition(true);
    const b2 = await client(cells.get('cell-b')!.broker.url, 'b2');
    clients.push(b2.c);
    await b.c.publishAsync('p2p/v1/cell-b/tx-cell-b/mkt/dispatch/inv-9', '5', { qos: 1 });
    await eventually(() => b2.got.includes('p2p/v1/cell-b/tx-cell-b/mkt/dispatch/inv-9 5') || undefined);
    await new Promise((r) => setTimeout(r, 300));
    expect(up.got).toEqual([]);
    cells.get('cell-b')!.uplink.partition(false);
    await eventually(() => cells.get('cell-b')!.uplink.connections > 0 || undefined, 15_000);
    await eventually(async () => {
      await b.c.publishAsync('p2p/v1/cell-b/tx-cell-b/mkt/result', '6', { qos: 1 });
      return up.got.includes('p2p/v1/cell-b/tx-cell-b/mkt/result 6') || undefined;
    }, 15_000);
  }, 60_000);
});
