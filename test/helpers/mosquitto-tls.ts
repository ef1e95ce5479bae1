import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { waitForPort } from '../../src/core/net.js';
import { freePort } from './net.js';
import { requireTool } from './system-tools.js';

export const DEPLOY_MOSQUITTO = join(import.meta.dirname, '..', '..', 'deploy', 'mosquitto');

export interface TlsBroker {
  url: string;
  /** The files of a gateway's certificate from make-certs.sh (CN = its id). */
  tls(id: string): { caFile: string; certFile: string; keyFile: string };
  /** mqtt.js options of a plain client with that certificate. */
  clientOptions(id: string): IClientOptions;
  stop(): Promise<void>;
}

/**
 * The cell broker of deploy/mosquitto run for real: its mosquitto.conf with the paths and port changed
 * for a test, `aclFile` as its ACL, certificates from make-certs.sh for `ids` under `dir`. Throws,
 * naming the Debian package, where mosquitto or openssl is missing (the suite fails, not skips).
 */
export async function startTlsBroker(dir: string, ids: string[], aclFile: string): Promise<TlsBroker> {
  const mosquitto = requireTool('mosquitto');
  requireTool('openssl'); // make-certs.sh
  const certs = join(dir, 'certs');
  execFileSync(join(DEPLOY_MOSQUITTO, 'make-certs.sh'), [certs, 'localhost', ...ids], { stdio: 'ignore' });
  const port = await freePort();
  mkdirSync(join(dir, 'bridges'), { recursive: true });
  const conf = readFileSync(join(DEPLOY_MOSQUITTO, 'mosquitto.conf'), 'utf8')
    .replaceAll('/etc/mosquitto/p2p/bridges', join(dir, 'bridges'))
    .replaceAll('/etc/mosquitto/p2p/acl', aclFile)
    .replaceAll('/etc/mosquitto/p2p/', `${certs}/`)
    .replace(/^listener 8883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^persistence true$/m, 'persistence false')
    .replace(/^persistence_location .*$/m, '')
    .replace(/^log_dest syslog$/m, 'log_dest stderr');
  // Running as root, Mosquitto would switch to the "mosquitto" user, which cannot read the test keys.
  writeFileSync(join(dir, 'mosquitto.conf'), `user root\n${conf}`);
  const broker: ChildProcess = spawn(mosquitto, ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  broker.stderr?.on('data', (d) => {
    log += d;
  });
  const stop = async () => {
    broker.kill('SIGTERM');
    if (broker.exitCode === null) await new Promise((r) => broker.once('exit', r));
  };
  await waitForPort(port, 10_000).catch(async (err) => {
    await stop();
    throw new Error(`${err}\n${log}`);
  });
  const tls = (id: string) => ({
    caFile: join(certs, 'ca.pem'),
    certFile: join(certs, `${id}.pem`),
    keyFile: join(certs, `${id}.key`),
  });
  return {
    url: `mqtts://localhost:${port}`,
    tls,
    clientOptions: (id) => ({
      ca: readFileSync(tls(id).caFile),
      cert: readFileSync(tls(id).certFile),
      key: readFileSync(tls(id).keyFile),
      clientId: `${id}-raw`,
      reconnectPeriod: 0,
    }),
    stop,
  };
}
