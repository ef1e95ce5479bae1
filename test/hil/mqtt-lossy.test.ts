import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLossyProxy } from '../../src/comms/lossy-proxy.js';
import { MqttTransport } from '../../src/comms/mqtt-transport.js';
import { systemClock } from '../../src/core/clock.js';
import { BROKERS } from '../helpers/brokers.js';
import { eventually, tempDir } from '../helpers/net.js';
import { securityFor, signedCell, silentLog } from '../helpers/signed-cell.js';

const tmp = tempDir('p2p-mqtt-lossy-');
afterAll(() => tmp.remove());

for (const kind of BROKERS) {
  describe(`reliable classes through a lossy link to the ${kind.name} broker`, () => {
    it('30 % of PUBLISH packets lost, then a partition: every DR message arrives once', async () => {
      const broker = await kind.start();
      let seed = 99;
      const random = () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const proxy = await startLossyProxy(Number(new URL(broker.url).port), 0.3, random);
      const ids = signedCell(['l-a', 'l-b'], join(tmp.dir, kind.name), Date.now());
      const make = (id: string) =>
        new MqttTransport(
          { url: proxy.url, keepaliveS: 5, reconnectInitialMs: 100, reconnectMaxMs: 300 },
          { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
          {
            clock: systemClock,
            log: silentLog,
            security: securityFor(ids, id),
            outbox: { retryInitialMs: 150, retryMaxMs: 400 },
          },
        );
      const a = make('l-a');
      const b = make('l-b');
      await a.start();
      await b.start();
      const got: number[] = [];
      b.subscribeUnchecked({ cell: 'c1', cls: 'dr', target: 'l-b' }, (d) =>
        got.push((d.envelope.body as { k: number }).k),
      );
      await new Promise((r) => setTimeout(r, 200)); // the subscription reaches the broker
      for (let k = 0; k < 30; k++) {
        await a.publishUnchecked('dr', 'call', { k }, { target: 'l-b' });
        if (k === 15) proxy.partition(true);
        if (k === 20) proxy.partition(false);
        await new Promise((r) => setTimeout(r, 20));
      }
      await eventually(() => (new Set(got).size === 30 ? true : undefined), 15_000, 50);
      expect(got).toHaveLength(30); // no duplicate delivered
      expect(proxy.dropped).toBeGreaterThan(0);
      await eventually(() => (a.linkQuality().outboxPending === 0 ? true : undefined), 5000, 50);
      await a.close();
      await b.close();
      await proxy.close();
      await broker.close();
    });
  });
}
