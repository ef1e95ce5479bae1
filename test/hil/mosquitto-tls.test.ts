import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttTransport } from '../../src/comms/mqtt-transport.js';
import type { Delivery } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { waitForPort } from '../../src/core/net.js';
import { eventually, freePort, tempDir } from '../helpers/net.js';
import { securityFor, signedCell, silentLog } from '../helpers/signed-cell.js';
import { requireTool } from '../helpers/system-tools.js';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy', 'mosquitto');

/**
 * The cell broker of deploy/mosquitto run for real: its mosquitto.conf and ACL with the paths and
 * port changed for a test, certificates from make-certs.sh.
 */
describe('deploy/mosquitto: the cell broker with mTLS and the per-gateway ACL', () => {
  const tmp = tempDir('p2p-mosquitto-tls-');
  const certs = join(tmp.dir, 'certs');
  let port = 0;
  let broker: ChildProcess;
  let brokerLog = '';
  const ids = signedCell(['gw-a', 'gw-b'], join(tmp.dir, 'ids'), Date.now());

  beforeAll(async () => {
    const mosquitto = requireTool('mosquitto');
    requireTool('openssl'); // make-certs.sh
    execFileSync(join(DEPLOY, 'make-certs.sh'), [certs, 'localhost', 'gw-a', 'gw-b'], { stdio: 'ignore' });
    port = await freePort();
    mkdirSync(join(tmp.dir, 'bridges'));
    const conf = readFileSync(join(DEPLOY, 'mosquitto.conf'), 'utf8')
      .replaceAll('/etc/mosquitto/p2p/bridges', join(tmp.dir, 'bridges'))
      .replaceAll('/etc/mosquitto/p2p/acl', join(DEPLOY, 'acl'))
      .replaceAll('/etc/mosquitto/p2p/', `${certs}/`)
      .replace(/^listener 8883$/m, `listener ${port} 127.0.0.1`)
      .replace(/^persistence true$/m, 'persistence false')
      .replace(/^persistence_location .*$/m, '')
      .replace(/^log_dest syslog$/m, 'log_dest stderr');
    // Running as root, Mosquitto would switch to the "mosquitto" user, which cannot read the test keys.
    writeFileSync(join(tmp.dir, 'mosquitto.conf'), `user root\n${conf}`);
    broker = spawn(mosquitto, ['-c', join(tmp.dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    broker.stderr?.on('data', (d) => {
      brokerLog += d;
    });
    await waitForPort(port, 10_000).catch((err) => {
      throw new Error(`${err}\n${brokerLog}`);
    });
  });
  afterAll(async () => {
    broker?.kill('SIGTERM');
    if (broker && broker.exitCode === null) await new Promise((r) => broker.once('exit', r));
    tmp.remove();
  });

  const tls = (id: string) => ({
    caFile: join(certs, 'ca.pem'),
    certFile: join(certs, `${id}.pem`),
    keyFile: join(certs, `${id}.key`),
  });
  const url = () => `mqtts://localhost:${port}`;
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

  it("a member cannot publish under another member's id (ACL pattern write p2p/v1/+/%u/#)", async () => {
    const options = (id: string) => ({
      ca: readFileSync(tls(id).caFile),
      cert: readFileSync(tls(id).certFile),
      key: readFileSync(tls(id).keyFile),
      clientId: `${id}-raw`,
      reconnectPeriod: 0,
    });
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
