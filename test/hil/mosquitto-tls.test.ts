import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerAcl } from '../../src/comms/broker-acl.js';
import { MqttTransport } from '../../src/comms/mqtt-transport.js';
import { provisionIdentities } from '../../src/comms/provision.js';
import type { Delivery } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { startTlsBroker, type TlsBroker } from '../helpers/mosquitto-tls.js';
import { eventually, tempDir } from '../helpers/net.js';
import { securityFor, silentLog } from '../helpers/signed-cell.js';

/**
 * The cell broker of deploy/mosquitto run for real: its mosquitto.conf with the paths and port changed
 * for a test, certificates from make-certs.sh, the ACL generated from the cell's members list (a house
 * gw-a and its cell's MG trader gw-b, which reads the cell's meter readings).
 */
describe('deploy/mosquitto: the cell broker with mTLS and the per-gateway ACL', () => {
  const tmp = tempDir('p2p-mosquitto-tls-');
  let broker: TlsBroker;
  const ids = provisionIdentities(
    [
      { id: 'gw-a', cell: 'c1', kind: 'inverter' },
      { id: 'gw-b', cell: 'c1', kind: 'transformer' },
    ],
    join(tmp.dir, 'ids'),
    Date.now(),
  );

  beforeAll(async () => {
    const acl = join(tmp.dir, 'acl');
    writeFileSync(acl, brokerAcl(ids.members));
    broker = await startTlsBroker(tmp.dir, ['gw-a', 'gw-b'], acl);
  });
  afterAll(async () => {
    await broker?.stop();
    tmp.remove();
  });

  const tls = (id: string) => broker.tls(id);
  const url = () => broker.url;
  const transport = (id: string) =>
    new MqttTransport(
      { url: url(), keepaliveS: 10, connectTimeoutMs: 3000, ...tls(id) },
      { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
      { clock: systemClock, log: silentLog, security: securityFor(ids, id) },
    );

  it('gateways with certificates from make-certs.sh connect and exchange signed messages', async () => {
    const a = transport('gw-a');
    const b = transport('gw-b');
    await a.start();
    await b.start();
    const got: Delivery[] = [];
    b.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'reading' }, (d) => got.push(d));
    await eventually(
      async () => {
        await a.publishUnchecked('meter', 'reading', { netW: 42 });
        return got.length > 0 ? true : undefined;
      },
      5000,
      200,
    );
    expect(got[0]?.envelope).toMatchObject({ sender: 'gw-a', body: { netW: 42 } });
    await eventually(() => (b.peers().some((p) => p.id === 'gw-a' && p.online) ? true : undefined), 5000);
    await a.close();
    await b.close();
  });

  it('a client without a certificate is refused', async () => {
    const { certFile: _c, keyFile: _k, ...caOnly } = tls('gw-a');
    const anonymous = new MqttTransport(
      { url: url(), keepaliveS: 10, connectTimeoutMs: 1500, ...caOnly },
      { gatewayId: 'nobody', cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
      { clock: systemClock, log: silentLog },
    );
    await expect(anonymous.start()).rejects.toThrow(/no connection to MQTT broker/);
  });

  it("a member cannot publish under another member's id (ACL write p2p/v1/<cell>/<id>/#)", async () => {
    const options = (id: string) => broker.clientOptions(id);
    const watcher = await mqtt.connectAsync(url(), options('gw-b'));
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync('p2p/v1/#', { qos: 1 });
    const a = await mqtt.connectAsync(url(), options('gw-a'));
    await a.publishAsync('p2p/v1/c1/gw-b/meter/reading', 'forged', { qos: 1 });
    await a.publishAsync('p2p/v1/c1/gw-a/meter/reading', 'own', { qos: 1 });
    await eventually(() => (seen.includes('p2p/v1/c1/gw-a/meter/reading') ? true : undefined), 5000, 20);
    expect(seen).not.toContain('p2p/v1/c1/gw-b/meter/reading');
    await a.endAsync();
    await watcher.endAsync();
  });
});
