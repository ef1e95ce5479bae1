import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EmbeddedBroker, startEmbeddedBroker } from '../comms/embedded-broker.js';
import { spawnOwned } from '../core/child-processes.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { freePort, waitForPort } from '../core/net.js';

export const MOSQUITTO_BIN = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

/** The bench's broker: stopped and started again on the same port for the broker-restart fault. */
export interface BenchBroker {
  kind: 'mosquitto' | 'embedded' | 'external';
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Mosquitto with the project's cell broker settings for plain TCP on loopback (the TLS listener of
 * `deploy/mosquitto/` needs certificates the bench does not make), with persistence so that retained
 * presence survives a restart, as on a gateway.
 */
async function mosquitto(dir: string): Promise<BenchBroker> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const deployed = join(import.meta.dirname, '..', '..', 'deploy', 'mosquitto', 'mosquitto.conf');
  const tuning = existsSync(deployed)
    ? readFileSync(deployed, 'utf8')
        .split('\n')
        .filter((l) =>
          /^(max_queued_messages|max_inflight_messages|set_tcp_nodelay|message_size_limit|queue_qos0_messages)\b/.test(
            l,
          ),
        )
    : [];
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'log_dest none',
      ...tuning,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const broker: BenchBroker = {
    kind: 'mosquitto',
    url: `mqtt://127.0.0.1:${port}`,
    port,
    start: async () => {
      child = spawnOwned(MOSQUITTO_BIN!, ['-c', conf], { stdio: 'ignore' });
      await waitForPort(port, 10_000);
    },
    stop: async () => {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
  };
  await broker.start();
  return broker;
}

async function embedded(): Promise<BenchBroker> {
  let b: EmbeddedBroker | undefined = await startEmbeddedBroker();
  const port = b.port;
  return {
    kind: 'embedded',
    url: b.url,
    port,
    start: async () => {
      b ??= await startEmbeddedBroker('127.0.0.1', port);
    },
    stop: async () => {
      await b?.close();
      b = undefined;
    },
  };
}

/** `--broker URL` if given, else Mosquitto when installed, else the embedded broker. */
export async function startBenchBroker(dir: string, url?: string): Promise<BenchBroker> {
  if (url) {
    const port = Number(new URL(url).port || 1883);
    const fail = async () => {
      throw new P2PError(ErrorCode.input, 'an external broker (--broker) cannot be restarted by the bench', {
        field: '--broker',
      });
    };
    return { kind: 'external', url, port, start: fail, stop: fail };
  }
  return MOSQUITTO_BIN ? mosquitto(dir) : embedded();
}
