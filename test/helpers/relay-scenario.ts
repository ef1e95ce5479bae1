/**
 * One gateway of the D2D relay HIL test (`ip netns exec NS node --import tsx test/helpers/relay-scenario.ts JSON`),
 * its hybrid transport built from a gateway config by the firmware's own wiring. `cut` sends `meter`
 * messages addressed to the relay gateway in three phases: uplink up, its uplink interface down (they
 * go through the relay), uplink back; then `meter/done`. `relay` takes them until `done`; with
 * `tamper` its broker link alters every message it relays (a relay that cannot be trusted). Prints
 * one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { gatewayConfig } from '../../src/agent/config.js';
import { buildTransport } from '../../src/agent/wiring.js';
import type { HybridTransport } from '../../src/comms/hybrid-transport.js';
import type { Link } from '../../src/comms/link.js';
import { parseTopic } from '../../src/comms/topics.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { metricValue } from './signed-cell.js';

interface Args {
  part: 'relay' | 'cut';
  id: string;
  peer: string;
  mqttUrl: string;
  iface: string;
  uplinkIface: string;
  stateDir: string;
  keyFile: string;
  membersFile: string;
  operatorPublicKey: string;
  count: number;
  tamper: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const config = gatewayConfig({
  gateway: { id: args.id, kind: 'inverter', cell: 'c1' },
  stateDir: args.stateDir,
  comms: {
    transport: 'hybrid',
    mqtt: { url: args.mqttUrl, keepaliveS: 1, reconnectInitialMs: 200, reconnectMaxMs: 500 },
    d2d: { interface: args.iface, heartbeatMs: 200 },
    reliability: { retryInitialMs: 500, retryMaxMs: 1000 },
    security: { keyFile: args.keyFile, membersFile: args.membersFile, operatorPublicKey: args.operatorPublicKey },
  },
});
const metrics = new GatewayMetrics({ gateway: args.id });
const t = buildTransport(config, systemClock, metrics) as HybridTransport;
let tampered = 0;
if (args.tamper) {
  // The relay's broker link rewrites what it publishes for others: the timestamp, one digit.
  const mqtt = (t as unknown as { links: Map<string, Link> }).links.get('mqtt')!;
  const send = mqtt.send.bind(mqtt);
  mqtt.send = (topic, payload, options) => {
    if (parseTopic(topic)?.sender === args.id) return send(topic, payload, options);
    tampered += 1;
    return send(
      topic,
      payload.replace(/"ts":(\d+)/, (_, ts: string) => `"ts":${Number(ts) + 1}`),
      options,
    );
  };
}
const until = async (what: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await sleep(20);
  return what();
};
const relayCount = (peer: string, direction: string, outcome: string) =>
  metricValue(metrics, 'p2p_relay_messages_total', { peer, direction, outcome });
const got: { phase: number; k: number }[] = [];
let done = false;
t.subscribeUnchecked({ cell: 'c1', cls: 'meter', target: args.id }, (d) => {
  if (d.envelope.type === 'done') done = true;
  else got.push(d.envelope.body as { phase: number; k: number });
});
await t.start();
const peerSeen = await until(() => t.peers().some((p) => p.id === args.peer && p.online), 10_000);

if (args.part === 'cut') {
  const pending = () => t.linkQuality().outboxPending;
  const brokerUp = () => t.status().links?.find((l) => l.backend === 'mqtt')?.connected === true;
  const publishPhase = async (phase: number) => {
    for (let k = 0; k < args.count; k++)
      await t.publishUnchecked('meter', 'energy', { phase, k }, { target: args.peer });
  };
  await publishPhase(1);
  const phase1Acked = await until(() => pending() === 0, 10_000);

  execFileSync('ip', ['link', 'set', args.uplinkIface, 'down']);
  const brokerLost = await until(() => !brokerUp(), 15_000);
  const relayFound = await until(() => t.status().relay?.via === args.peer, 10_000);
  await publishPhase(2);
  // Through an honest relay every message is acknowledged; through a tampering one none is.
  const phase2Acked = await until(() => pending() === 0, args.tamper ? 4000 : 20_000);
  const phase2Pending = pending();
  const handed = await relayCount(args.peer, 'up', 'handed');
  const downReceived = await relayCount(args.peer, 'down', 'received');

  execFileSync('ip', ['link', 'set', args.uplinkIface, 'up']);
  const brokerBack = await until(brokerUp, 15_000);
  const relayLeft = await until(() => t.status().relay?.via === undefined, 5000);
  const handedAtReturn = await relayCount(args.peer, 'up', 'handed');
  // What waited (the tampered ones) now goes directly.
  const drainedDirectly = await until(() => pending() === 0, 15_000);
  await publishPhase(3);
  const phase3Acked = await until(() => pending() === 0, 10_000);
  const handedAfter = await relayCount(args.peer, 'up', 'handed');
  await t.publishUnchecked('meter', 'done', {}, { target: args.peer });
  await until(() => pending() === 0, 10_000);
  process.stdout.write(
    `${JSON.stringify({
      peerSeen,
      phase1Acked,
      brokerLost,
      relayFound,
      phase2Acked,
      phase2Pending,
      handed,
      downReceived,
      brokerBack,
      relayLeft,
      drainedDirectly,
      phase3Acked,
      handedInPhase3: handedAfter - handedAtReturn,
    })}\n`,
  );
} else {
  let relayedFor: string[] = [];
  const watch = setInterval(() => {
    const now = t.status().relay?.for ?? [];
    if (now.length > 0) relayedFor = now;
  }, 20);
  await until(() => done, 90_000);
  clearInterval(watch);
  // The cut-off gateway said it no longer needs the relay when its uplink came back.
  const stoppedRelaying = await until(() => (t.status().relay?.for ?? []).length === 0, 3000);
  const unique = (phase: number) => new Set(got.filter((m) => m.phase === phase).map((m) => m.k)).size;
  process.stdout.write(
    `${JSON.stringify({
      peerSeen,
      done,
      relayedFor,
      stoppedRelaying,
      meter: [unique(1), unique(2), unique(3)],
      tampered,
      relayedUp: await relayCount(args.peer, 'up', 'relayed'),
      relayedDown: await relayCount(args.peer, 'down', 'relayed'),
      refused: await relayCount(args.peer, 'up', 'refused'),
      badSignature: await metricValue(metrics, 'p2p_messages_rejected_total', { reason: 'signature' }),
    })}\n`,
  );
}
await t.close();
process.exit(0);
