import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedBroker } from '../../src/comms/embedded-broker.js';
import { waitForPort } from '../../src/core/net.js';
import { freePort, tempDir } from './net.js';
import { requireTool } from './system-tools.js';

export interface TestBroker {
  name: string;
  url: string;
  close(): Promise<void>;
}

/** Brokers the suites run against: the embedded one and a real Mosquitto (whose start fails, naming the package, where it is missing). */
export const BROKERS: { name: string; start(): Promise<TestBroker> }[] = [
  {
    name: 'embedded',
    start: async () => {
      const b = await startEmbeddedBroker();
      return { name: 'embedded', url: b.url, close: b.close };
    },
  },
  { name: 'mosquitto', start: startMosquitto },
];

async function startMosquitto(): Promise<TestBroker> {
  const mosquitto = requireTool('mosquitto');
  const port = await freePort();
  const tmp = tempDir('p2p-mosquitto-');
  const conf = join(tmp.dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  const child = spawn(mosquitto, ['-c', conf], { stdio: 'ignore' });
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
