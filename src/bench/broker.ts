import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EmbeddedBroker, startEmbeddedBroker } from '../comms/embedded-broker.js';
import { type LossyProxy, startLossyProxy } from '../comms/lossy-proxy.js';
import { MESSAGE_CLASSES, TOPIC_ROOT } from '../comms/topics.js';
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
  /** The broker's process, when it runs in one of its own (Mosquitto). */
  pid?(): number | undefined;
}

/** A bridge from a cell's broker to the upstream one (as `deploy/mosquitto/bridges/`). */
interface BridgeOptions {
  cell: string;
  /** Where the upstream broker is reached: the cell's uplink. */
  port: number;
}

/**
 * What crosses a bridge, both ways: every class but the cell's own gossip (voltage control stays in
 * its cell). A message that came over a bridge is not sent back over it (`try_private`).
 */
const BRIDGED_CLASSES = MESSAGE_CLASSES.filter((c) => c !== 'gossip');

function bridgeLines(b: BridgeOptions): string[] {
  return [
    `connection bench-${b.cell}`,
    `address 127.0.0.1:${b.port}`,
    'bridge_protocol_version mqttv311',
    'try_private true',
    'cleansession false',
    'keepalive_interval 5',
    // Back within a few seconds of the uplink's return (the field config backs off to a minute).
    'restart_timeout 1 3',
    'notifications false',
    ...BRIDGED_CLASSES.map((cls) => `topic ${TOPIC_ROOT}/+/+/${cls}/# both 1`),
  ];
}

/**
 * Mosquitto with the project's cell broker settings for plain TCP on loopback (the TLS listener of
 * `deploy/mosquitto/` needs certificates the bench does not make), with persistence so that retained
 * presence survives a restart, as on a gateway; a cell's broker with its bridge upstream.
 */
async function mosquitto(dir: string, host: string, bridge?: BridgeOptions): Promise<BenchBroker> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort(host);
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
      `listener ${port} ${host}`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'log_dest none',
      ...tuning,
      ...(bridge ? bridgeLines(bridge) : []),
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const broker: BenchBroker = {
    kind: 'mosquitto',
    url: `mqtt://${host}:${port}`,
    port,
    pid: () => child?.pid,
    start: async () => {
      child = spawnOwned(MOSQUITTO_BIN!, ['-c', conf], { stdio: 'ignore' });
      await waitForPort(port, 10_000, host);
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

async function embedded(host: string): Promise<BenchBroker> {
  let b: EmbeddedBroker | undefined = await startEmbeddedBroker(host);
  const port = b.port;
  return {
    kind: 'embedded',
    url: b.url,
    port,
    start: async () => {
      b ??= await startEmbeddedBroker(host, port);
    },
    stop: async () => {
      await b?.close();
      b = undefined;
    },
  };
}

/**
 * `--broker URL` if given, else Mosquitto when installed, else the embedded broker, listening on `host`
 * (loopback, or the address the gateways in namespaces reach: `SidelinkNetwork.brokerAddress`).
 */
export async function startBenchBroker(dir: string, url?: string, host = '127.0.0.1'): Promise<BenchBroker> {
  if (url) {
    const port = Number(new URL(url).port || 1883);
    const fail = async () => {
      throw new P2PError(ErrorCode.input, 'an external broker (--broker) cannot be restarted by the bench', {
        field: '--broker',
      });
    };
    return { kind: 'external', url, port, start: fail, stop: fail };
  }
  return MOSQUITTO_BIN ? mosquitto(dir, host) : embedded(host);
}

/**
 * One line for the start of a run: which broker the gateways use and, where the embedded one stands in
 * for a missing Mosquitto, how to get the field's arrangement (a broker per cell, bridged upstream).
 */
export function describeBrokers(upstream: BenchBroker, cellBrokers: number): string {
  const line = `broker ${upstream.kind} on ${upstream.url}`;
  if (cellBrokers > 0) return `${line}, a broker per cell bridged to it`;
  if (upstream.kind === 'embedded')
    return `${line} (Mosquitto is not installed: \`sudo apt-get install mosquitto\` for a broker per cell, bridged upstream)`;
  return line;
}

/** A cell's own broker, bridged to the upstream broker through its uplink (which a partition cuts). */
export interface CellBroker {
  broker: BenchBroker;
  uplink: LossyProxy;
}

/**
 * One Mosquitto per cell, bridged to `upstream` (where the platform and the aggregator are), as in
 * the field (DESIGN.md: a broker per cell bridged upstream): a cell whose uplink is cut keeps its
 * own messages, so its market and its voltage control go on. Only with Mosquitto (the embedded
 * broker cannot bridge): elsewhere every gateway uses the one broker.
 */
export async function startCellBrokers(
  dir: string,
  cells: readonly string[],
  upstream: BenchBroker,
  random: () => number,
  host = '127.0.0.1',
): Promise<Map<string, CellBroker>> {
  const out = new Map<string, CellBroker>();
  if (upstream.kind !== 'mosquitto') return out;
  for (const cell of cells) {
    const uplink = await startLossyProxy(upstream.port, 0, random, host);
    const broker = await mosquitto(join(dir, `broker-${cell}`), host, { cell, port: uplink.port });
    out.set(cell, { broker, uplink });
  }
  return out;
}
