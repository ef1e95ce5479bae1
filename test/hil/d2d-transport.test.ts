import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trafficClassRules } from '../../src/comms/d2d-transport.js';
import { createNetns, type Netns, requireNamespaces } from '../helpers/netns.js';
import { findTool, requireTool } from '../helpers/system-tools.js';

const SCENARIO = join(import.meta.dirname, '..', 'helpers', 'd2d-scenario.ts');
// Without its tools the namespace is not tried: the suite then fails in beforeAll, naming the package.
const ns = ['ip', 'sysctl', 'nft'].every((t) => findTool(t) !== undefined) ? createNetns() : undefined;
afterAll(() => {
  if (typeof ns === 'object') ns.remove();
});

// The host's `lo` has no MULTICAST flag: the gateways run in a namespace with a veth link. A missing
// tool, or the privileges to make a namespace, fails the suite instead of skipping it.
describe('D2D sidelink transport over IPv6 multicast', () => {
  beforeAll(() => {
    requireTool('ip'); // makes the namespace and its veth link
    requireTool('sysctl'); // turns off duplicate address detection in it
    requireTool('nft'); // loads the traffic-class rules
    requireNamespaces(ns);
  });
  it('delivers each message once despite the copies, refuses oversize, drops forgeries, tracks presence, seals what is addressed; priority sets the traffic class', async () => {
    const n = ns as Netns;
    execFileSync('ip', ['netns', 'exec', n.name, 'nft', '-f', '-'], {
      input: trafficClassRules({ interface: n.iface, port: 47_000 }),
    });
    const r = await n.exec(process.execPath, ['--import', 'tsx', SCENARIO, n.iface, '200', '1'], 30_000);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(out).toMatchObject({
      sent: 200,
      delivered: 200, // two copies each, de-duplicated by (sender, epoch, seq)
      unique: 200,
      forgedDelivered: false,
      signatureRejected: 1,
      drDelivered: 1,
      // Addressed, so sealed to d2d-b: it opens it; a radio neighbour hears each copy, sealed.
      drOpened: { kWh: 1.25 },
      drOverheardSealed: true,
      drAcked: true,
      peerSeen: true,
      peerGone: true,
    });
    expect(out.duplicatesDropped as number).toBeGreaterThanOrEqual(200);
    expect(out.drOverheard as number).toBeGreaterThanOrEqual(1);
    expect(out.oversize).toMatch(/does not fit the 1280-byte MTU \(at most 1232 bytes/);
    // Gossip (priority 2) went out on port 47002 with DSCP AF41 (34): the counter of that rule moved.
    const ruleset = n.run(['nft', 'list', 'table', 'ip6', 'p2p_d2d']);
    const gossipRule = ruleset.split('\n').find((l) => l.includes('dport 47002'));
    expect(gossipRule).toMatch(/counter packets ([1-9]\d*)/);
    expect(gossipRule).toMatch(/dscp set af41/);
  });
});
