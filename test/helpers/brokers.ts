import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MOSQUITTO_BIN } from '../../src/bench/broker.js';
import { startEmbeddedBroker } from '../../src/comms/embedded-broker.js';
import { waitForPort } from '../../src/core/net.js';
import { freePort, tempDir } from './net.js';

export interface TestBroker {
  name: string;
  url: string;
  close(): Promise<void>;
}

const MOSQUITTO = MOSQUITTO_BIN;

/** Brokers the suites run against: the embedded one always, a real Mosquitto where it is installed. */
export const BROKERS: { name: string; available: boolean; start(): Promise<TestBroker> }[] = [
  {
    name: 'embedded',
    available: true,
    start: async () => {
      const b = await startEmbeddedBroker();
      return { name: 'embedded', url: b.url, close: b.close };
    },
  },
  { name: 'mosquitto', available: MOSQUITTO !== undefined, start: startMosquitto },
];

async function startMosquitto(): Promise<TestBroker> {
  const port = await freePort();
  const tmp = tempDir('p2p-mosquitto-');
  const conf = join(tmp.dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  const child = spawn(MOSQUITTO as string, ['-c', conf], { stdio: 'ignore' });
  await waitForPort(port, 10_000);
  return {
    name: 'mosquitto',
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      tmp.remove();
    },
  };
}
