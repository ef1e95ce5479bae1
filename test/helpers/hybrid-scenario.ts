/**
 * One gateway with a hybrid transport (MQTT and D2D links), run inside its own network namespace by
 * the hybrid HIL test (`ip netns exec NS node --import tsx test/helpers/hybrid-scenario.ts JSON`).
 * The transport is built from a gateway config by the firmware's own wiring. `sender` publishes
 * gossip (routed to D2D), mkt (routed to MQTT) and dr (routed to both links), takes its D2D link
 * down and publishes again; `receiver` counts what it took until the sender's `mkt/done`. Prints one
 * JSON line.
 */
import { execFileSync } from 'node:child_process';
import { gatewayConfig } from '../../src/agent/config.js';
import { buildTransport } from '../../src/agent/wiring.js';
import type { BaseTransport } from '../../src/comms/base-transport.js';
import type { Delivery } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { metricValue } from './signed-cell.js';

interface Args {
  part: 'sender' | 'receiver';
  id: string;
  peer: string;
  mqttUrl: string;
  iface: string;
  stateDir: string;
  keyFile: string;
  membersFile: string;
  operatorPublicKey: string;
  count: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const config = gatewayConfig({
  gateway: { id: args.id, kind: 'inverter', cell: 'c1' },
  stateDir: args.stateDir,
  comms: {
    transport: 'hybrid',
    mqtt: { url: args.mqttUrl },
    d2d: { interface: args.iface, heartbeatMs: 200 },
    routes: { gossip: 'd2d', dr: ['d2d', 'mqtt'], default: 'mqtt' },
    security: { keyFile: args.keyFile, membersFile: args.membersFile, operatorPublicKey: args.operatorPublicKey },
  },
});
const metrics = new GatewayMetrics({ gateway: args.id });
const t = buildTransport(config, systemClock, metrics) as BaseTransport;
const got: Record<string, { phase: number; k: number }[]> = { gossip: [], mkt: [], dr: [] };
let done = false;
for (const cls of ['gossip', 'mkt', 'dr'] as const)
  t.subscribeUnchecked({ cell: 'c1', cls }, (d: Delivery) => {
    if (d.envelope.type === 'done') done = true;
    else got[cls]!.push(d.envelope.body as { phase: number; k: number });
  });
await t.start();
const until = async (what: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await sleep(20);
  return what();
};
const peerOnline = () => t.peers().some((p) => p.id === args.peer && p.online);
const peerSeen = await until(peerOnline, 10_000);
const linkCount = (link: string, cls: string, direction: string) =>
  metricValue(metrics, 'p2p_link_messages_total', { link, class: cls, direction });

if (args.part === 'sender') {
  for (const phase of [1, 2]) {
    if (phase === 2) {
      execFileSync('ip', ['link', 'set', args.iface, 'down']);
      await sleep(100);
    }
    for (let k = 0; k < args.count; k++) {
      await t.publishUnchecked('gossip', 'push-sum', { phase, k });
      await t.publishUnchecked('mkt', 'probe', { phase, k });
      if (phase === 1) await t.publishUnchecked('dr', 'probe', { phase, k });
      await sleep(5);
    }
    // Every reliable message acknowledged (over its class's links) before the next phase.
    await until(() => t.linkQuality().outboxPending === 0, 10_000);
  }
  const acked = t.linkQuality().outboxPending === 0;
  // The receiver still hears this gateway over MQTT after the D2D heartbeats stopped.
  await sleep(1500);
  await t.publishUnchecked('mkt', 'done', {});
  await sleep(300);
  process.stdout.write(
    `${JSON.stringify({
      peerSeen,
      acked,
      sent: {
        d2dGossip: await linkCount('d2d', 'gossip', 'sent'),
        mqttGossip: await linkCount('mqtt', 'gossip', 'sent'),
        mqttMkt: await linkCount('mqtt', 'mkt', 'sent'),
        d2dMkt: await linkCount('d2d', 'mkt', 'sent'),
        d2dDr: await linkCount('d2d', 'dr', 'sent'),
        mqttDr: await linkCount('mqtt', 'dr', 'sent'),
      },
      status: t.status(),
    })}\n`,
  );
} else {
  await until(() => done, 60_000);
  const stillOnline = peerOnline();
  const byPhase = (cls: string, phase: number) => got[cls]!.filter((m) => m.phase === phase);
  const unique = (cls: string) => new Set(got[cls]!.map((m) => `${m.phase}/${m.k}`)).size;
  process.stdout.write(
    `${JSON.stringify({
      peerSeen,
      done,
      stillOnline,
      gossip: [byPhase('gossip', 1).length, byPhase('gossip', 2).length],
      mkt: [byPhase('mkt', 1).length, byPhase('mkt', 2).length],
      dr: got.dr!.length,
      drUnique: unique('dr'),
      received: {
        d2dGossip: await linkCount('d2d', 'gossip', 'received'),
        mqttGossip: await linkCount('mqtt', 'gossip', 'received'),
        mqttMkt: await linkCount('mqtt', 'mkt', 'received'),
        d2dMkt: await linkCount('d2d', 'mkt', 'received'),
        d2dDr: await linkCount('d2d', 'dr', 'received'),
        mqttDr: await linkCount('mqtt', 'dr', 'received'),
      },
      duplicatesDropped: await metricValue(metrics, 'p2p_messages_rejected_total', { reason: 'duplicate' }),
      linkUp: {
        mqtt: await metricValue(metrics, 'p2p_link_up', { link: 'mqtt' }),
        d2d: await metricValue(metrics, 'p2p_link_up', { link: 'd2d' }),
      },
    })}\n`,
  );
}
await t.close();
process.exit(0);
