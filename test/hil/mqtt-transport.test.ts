import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttTransport } from '../../src/comms/mqtt-transport.js';
import type { Delivery } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { BROKERS, type TestBroker } from '../helpers/brokers.js';
import { eventually, tempDir } from '../helpers/net.js';
import { securityFor, signedCell } from '../helpers/signed-cell.js';

const tmp = tempDir('p2p-mqtt-suite-');
afterAll(() => tmp.remove());

const log = componentLogger('test');
log.level = 'silent';

for (const kind of BROKERS) {
  describe(`MqttTransport against the ${kind.name} broker`, () => {
    let broker: TestBroker;
    beforeAll(async () => {
      broker = await kind.start();
    });
    afterAll(async () => {
      await broker?.close();
    });

    // Signed as in the field: keys and an operator-signed members list for the suite's gateways.
    const ids = signedCell(['mq-a', 'mq-b', 'mq-c', 'mq-d'], `${tmp.dir}/${kind.name}`, Date.now());
    const transport = (id: string, keepaliveS = 15) =>
      new MqttTransport(
        { url: broker.url, keepaliveS },
        { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
        { clock: systemClock, log, security: securityFor(ids, id) },
      );

    it('delivers messages and sees peers come online and leave cleanly', async () => {
      const a = transport('mq-a');
      const b = transport('mq-b');
      await a.start();
      await b.start();
      const got: Delivery[] = [];
      b.subscribeUnchecked({ cell: 'c1', cls: 'mkt', type: 'price' }, (d) => got.push(d));
      await eventually(() => (b.peers().some((p) => p.id === 'mq-a' && p.online) ? true : undefined));
      // the subscription may still be on its way to the broker: publish until one arrives
      await eventually(
        async () => {
          await a.publishUnchecked('mkt', 'price', { slot: 0, price: 0.21 });
          return got.length > 0 ? true : undefined;
        },
        5000,
        200,
      );
      expect(got[0]?.envelope).toMatchObject({ sender: 'mq-a', type: 'price', body: { slot: 0, price: 0.21 } });
      expect(got[0]?.envelope.sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
      expect(got[0]?.topic).toMatchObject({ cell: 'c1', sender: 'mq-a', cls: 'mkt', type: 'price' });
      await a.close();
      await eventually(() => (b.peers().find((p) => p.id === 'mq-a')?.online === false ? true : undefined));
      await b.close();
    });

    it("the broker's Will marks a gateway that vanished without closing as offline", async () => {
      const a = transport('mq-c', 1);
      const b = transport('mq-d');
      await a.start();
      await b.start();
      await eventually(() => (b.peers().some((p) => p.id === 'mq-c' && p.online) ? true : undefined));
      // Cut the TCP connection under the client, as a power cut or a lost link would.
      const client = (a as unknown as { client: { stream: { destroy(): void }; end(force: boolean): void } }).client;
      client.end(true);
      client.stream.destroy();
      await eventually(() => (b.peers().find((p) => p.id === 'mq-c')?.online === false ? true : undefined), 10_000);
      await b.close();
    });
  });
}
