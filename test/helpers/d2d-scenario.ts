/**
 * Two D2D gateways in one process on one interface, run inside a network namespace by the D2D HIL
 * test and the comms benchmark (`ip netns exec NS node --import tsx test/helpers/d2d-scenario.ts
 * IFACE COUNT INTERVAL_MS`). Prints one JSON line with what happened.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { D2D_PRIORITY, D2DTransport } from '../../src/comms/d2d-transport.js';
import type { Delivery } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { metricValue, securityFor, signedCell, silentLog } from './signed-cell.js';

const [iface = 'd2d0', countArg = '200', intervalArg = '2'] = process.argv.slice(2);
const count = Number(countArg);
const intervalMs = Number(intervalArg);
const dir = mkdtempSync(join(tmpdir(), 'p2p-d2d-'));
const ids = signedCell(['d2d-a', 'd2d-b'], dir, Date.now());
const make = (id: string) => {
  const metrics = new GatewayMetrics({ gateway: id });
  const t = new D2DTransport(
    { interface: iface, heartbeatMs: 200, copies: 2, copyGapMs: 1 },
    { gatewayId: id, cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
    { clock: systemClock, log: silentLog, metrics, security: securityFor(ids, id) },
  );
  return { t, metrics };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const a = make('d2d-a');
const b = make('d2d-b');
await a.t.start();
await b.t.start();
const got: { d: Delivery; at: number }[] = [];
b.t.subscribeUnchecked({ cell: 'c1', cls: 'gossip' }, (d) =>
  got.push({ d, at: performance.timeOrigin + performance.now() }),
);
const dr: Delivery[] = [];
b.t.subscribeUnchecked({ cell: 'c1', cls: 'dr' }, (d) => dr.push(d));
await sleep(500);
const peerSeen = b.t.peers().some((p) => p.id === 'd2d-a' && p.online);

// A radio neighbour that is no member: it hears every multicast of the DR class's priority port.
const neighbour = createSocket({ type: 'udp6', reuseAddr: true });
const overheard: string[] = [];
neighbour.on('message', (m) => overheard.push(m.toString('utf8')));
await new Promise<void>((r) => neighbour.bind(a.t.options.port + D2D_PRIORITY.dr, () => r()));
neighbour.addMembership(a.t.options.group, `::%${iface}`);

const sentAt = new Map<number, number>();
for (let k = 0; k < count; k++) {
  sentAt.set(k, performance.timeOrigin + performance.now());
  await a.t.publishUnchecked('gossip', 'push-sum', { k, s: k / 3, w: 0.5 });
  if (intervalMs > 0) await sleep(intervalMs);
}
await a.t.publishUnchecked('dr', 'call', { kWh: 1.25 }, { target: 'd2d-b' });
await sleep(300);
neighbour.close();
const drOverheard = overheard.filter((m) => m.startsWith('p2p/v1/c1/d2d-a/dr/call/d2d-b\n'));

let oversize = '';
try {
  await a.t.publishUnchecked('gossip', 'push-sum', { blob: 'x'.repeat(1400) });
} catch (err) {
  oversize = (err as Error).message;
}

// A forged datagram (signed with a key that is not a's) on the gossip priority port.
const intruder = signedCell(['d2d-a'], join(dir, 'intruder'), Date.now());
const forgedEnv = securityFor(intruder, 'd2d-a').sign({
  v: 1,
  sender: 'd2d-a',
  epoch: 1,
  seq: 8 * 99_999 + 3,
  ts: Date.now(),
  expires: Date.now() + 10_000,
  type: 'push-sum',
  body: { forged: true },
});
const raw = createSocket({ type: 'udp6', reuseAddr: true });
await new Promise<void>((r) => raw.bind(0, () => r()));
raw.setMulticastInterface(`::%${iface}`);
raw.setMulticastLoopback(true);
await new Promise<void>((r) =>
  raw.send(
    Buffer.from(`p2p/v1/c1/d2d-a/gossip/push-sum\n${JSON.stringify(forgedEnv)}`),
    a.t.options.port + 2,
    `${a.t.options.group}%${iface}`,
    () => r(),
  ),
);
raw.close();
await sleep(200);

const latencies = got
  .map(({ d, at }) => at - (sentAt.get((d.envelope.body as { k: number }).k) ?? at))
  .sort((x, y) => x - y);
const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? null;
const keys = got.map(({ d }) => (d.envelope.body as { k?: number }).k);
await a.t.close();
await sleep(300);
const peerGone = b.t.peers().find((p) => p.id === 'd2d-a')?.online === false;
await b.t.close();
rmSync(dir, { recursive: true, force: true });

process.stdout.write(
  `${JSON.stringify({
    sent: count,
    delivered: got.length,
    unique: new Set(keys).size,
    forgedDelivered: got.some(({ d }) => (d.envelope.body as { forged?: boolean }).forged === true),
    duplicatesDropped: await metricValue(b.metrics, 'p2p_messages_rejected_total', { reason: 'duplicate' }),
    signatureRejected: await metricValue(b.metrics, 'p2p_messages_rejected_total', { reason: 'signature' }),
    drDelivered: dr.length,
    // What d2d-b took, opened; what the neighbour heard of it: a sealed body, nothing of its figures.
    drOpened: dr[0]?.envelope.body,
    drOverheard: drOverheard.length,
    drOverheardSealed: drOverheard.every(
      (m) => m.includes('"enc":"x25519-') && !m.includes('kWh') && !m.includes('1.25'),
    ),
    drAcked: a.t.linkQuality().outboxPending === 0,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    oversize,
    peerSeen,
    peerGone,
  })}\n`,
);
process.exit(0);
