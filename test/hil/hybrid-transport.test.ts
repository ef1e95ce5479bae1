import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/net.js';
import { type NetnsPair, pairWithBroker, requireNamespaces } from '../helpers/netns.js';
import { signedCell } from '../helpers/signed-cell.js';
import { requireTool } from '../helpers/system-tools.js';

const SCENARIO = join(import.meta.dirname, '..', 'helpers', 'hybrid-scenario.ts');
const COUNT = 40;
const { pair, tmp, broker } = pairWithBroker('p2p-hybrid-');

describe('hybrid transport: each message class over its own link', () => {
  it('a route to a link that is not configured exits 2 naming the field', async () => {
    const file = join(tmp.dir, 'bad-route.yaml');
    writeFileSync(
      file,
      'gateway: { id: g1, kind: inverter, cell: c1 }\ncomms:\n  transport: hybrid\n  mqtt: { url: "mqtt://127.0.0.1:1883" }\n  routes: { gossip: d2d }\n',
    );
    const r = await runCli(['run', '--config', file, '--check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('comms.routes.gossip');
    expect(r.stderr).toContain('routes to link "d2d", which is not configured');
  });

  // Two gateways in two network namespaces: a veth link for the sidelink, a second one to the broker
  // (Mosquitto, in the first namespace). A missing tool fails the suite instead of skipping it.
  it('gossip goes over D2D and mkt over MQTT; a message sent over both links is delivered once; presence holds on the remaining link', async () => {
    requireTool('ip');
    requireTool('sysctl');
    requireNamespaces(pair);
    const { a, b, d2dIface, uplinkA } = pair as NetnsPair;
    await broker();
    const ids = signedCell(['hy-a', 'hy-b'], join(tmp.dir, 'keys'), Date.now());
    const argsFor = (part: 'sender' | 'receiver', id: string, peer: string) =>
      JSON.stringify({
        part,
        id,
        peer,
        mqttUrl: `mqtt://${uplinkA}:1883`,
        iface: d2dIface,
        stateDir: join(tmp.dir, 'state'),
        keyFile: ids.keyFile(id),
        membersFile: ids.membersFile,
        operatorPublicKey: ids.operatorPublicKey,
        count: COUNT,
      });
    const [sent, received] = await Promise.all([
      a.exec(process.execPath, ['--import', 'tsx', SCENARIO, argsFor('sender', 'hy-a', 'hy-b')], 90_000),
      b.exec(process.execPath, ['--import', 'tsx', SCENARIO, argsFor('receiver', 'hy-b', 'hy-a')], 90_000),
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    expect(received.code, received.stderr).toBe(0);
    const s = JSON.parse(sent.stdout.trim().split('\n').pop()!);
    const r = JSON.parse(received.stdout.trim().split('\n').pop()!);
    expect(s).toMatchObject({
      peerSeen: true,
      acked: true, // mkt acknowledged over MQTT, dr over both links
      sent: { d2dGossip: 2 * COUNT, mqttGossip: 0, mqttMkt: 2 * COUNT + 1, d2dMkt: 0, d2dDr: COUNT, mqttDr: COUNT },
      status: {
        backend: 'hybrid',
        links: [
          { backend: 'mqtt', connected: true },
          { backend: 'd2d', connected: true },
        ],
      },
    });
    expect(r).toMatchObject({
      peerSeen: true,
      done: true,
      // The D2D link down in phase 2: gossip stops, mkt goes on over MQTT.
      gossip: [COUNT, 0],
      mkt: [COUNT, COUNT],
      // Sent over both links, taken once each: the replay guard drops the second arrival.
      dr: COUNT,
      drUnique: COUNT,
      // The peer's D2D heartbeats stopped, but it is still online over MQTT.
      stillOnline: true,
      linkUp: { mqtt: 1, d2d: 1 },
    });
    // What arrived on each link (copies, resends and the receiver's own acks included): gossip only
    // on D2D, mkt only over MQTT, dr on both.
    expect(r.received.d2dGossip).toBeGreaterThanOrEqual(COUNT);
    expect(r.received.mqttGossip).toBe(0);
    expect(r.received.mqttMkt).toBeGreaterThanOrEqual(2 * COUNT + 1);
    expect(r.received.d2dMkt).toBe(0);
    expect(r.received.mqttDr).toBeGreaterThanOrEqual(COUNT);
    expect(r.received.d2dDr).toBeGreaterThanOrEqual(COUNT);
    expect(r.duplicatesDropped).toBeGreaterThanOrEqual(2 * COUNT);
  }, 120_000);
});
