import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../../src/comms/embedded-broker.js';
import { MqttTransport } from '../../src/comms/mqtt-transport.js';
import type { Delivery } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { eventually, freePort, tempDir } from '../helpers/net.js';
import { metricValue, securityFor, signedCell, silentLog } from '../helpers/signed-cell.js';

const tmp = tempDir('p2p-mqtt-reconnect-');
afterAll(() => tmp.remove());

describe('MqttTransport after a broker restart', () => {
  it('reconnects with its own jittered back-off and delivers the reliable messages sent meanwhile', async () => {
    const port = await freePort();
    let broker = await startEmbeddedBroker('127.0.0.1', port);
    const ids = signedCell(['r-a', 'r-b'], join(tmp.dir, 'ids'), Date.now());
    const make = (id: string) => {
      const metrics = new GatewayMetrics({ gateway: id });
      const t = new MqttTransport(
        { url: broker.url, keepaliveS: 5, reconnectInitialMs: 100, reconnectMaxMs: 400 },
        { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
        {
          clock: systemClock,
          log: silentLog,
          metrics,
          security: securityFor(ids, id),
          stateDir: join(tmp.dir, id),
          outbox: { retryInitialMs: 300, retryMaxMs: 600 },
        },
      );
      return { t, metrics };
    };
    const a = make('r-a');
    const b = make('r-b');
    await a.t.start();
    await b.t.start();
    const got: Delivery[] = [];
    b.t.subscribeUnchecked({ cell: 'c1', cls: 'dr', target: 'r-b' }, (d) => got.push(d));
    await eventually(
      async () => {
        await a.t.publishUnchecked('dr', 'call', { k: 0 }, { target: 'r-b' });
        return got.length > 0 ? true : undefined;
      },
      5000,
      200,
    );

    await broker.close();
    await eventually(() => (a.t.status().connected ? undefined : true), 5000, 20);
    // Sent while the broker is down: kept in the outbox, not in mqtt.js's queue.
    for (let k = 1; k <= 5; k++) await a.t.publishUnchecked('dr', 'call', { k }, { target: 'r-b' });
    expect(a.t.linkQuality().outboxPending).toBeGreaterThanOrEqual(5);
    await new Promise((r) => setTimeout(r, 300));
    broker = await startEmbeddedBroker('127.0.0.1', port);

    await eventually(
      () => (got.filter((d) => (d.envelope.body as { k: number }).k >= 1).length >= 5 ? true : undefined),
      10_000,
      50,
    );
    const ks = got.map((d) => (d.envelope.body as { k: number }).k).filter((k) => k >= 1);
    expect([...new Set(ks)].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(ks).toHaveLength(5); // no duplicate reached the handler
    expect(await metricValue(a.metrics, 'p2p_comms_reconnects_total', {})).toBeGreaterThanOrEqual(1);
    await eventually(() => (a.t.linkQuality().outboxPending === 0 ? true : undefined), 5000, 50);
    await a.t.close();
    await b.t.close();
    await broker.close();
  });
});
