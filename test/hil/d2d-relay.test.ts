import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type NetnsPair, pairWithBroker, requireNamespaces } from '../helpers/netns.js';
import { signedCell } from '../helpers/signed-cell.js';
import { requireTool } from '../helpers/system-tools.js';

const SCENARIO = join(import.meta.dirname, '..', 'helpers', 'relay-scenario.ts');
const COUNT = 20;
// Mosquitto in the relay's namespace, on its end of the uplink veth.
const { pair, tmp, broker } = pairWithBroker('p2p-relay-');

/** Gateway relay-a (with the broker) and relay-b, whose uplink veth is taken down and up again. */
async function run(run: string, tamper: boolean) {
  const p = pair as NetnsPair;
  requireTool('ip');
  requireTool('sysctl');
  await broker();
  const ids = signedCell(['relay-a', 'relay-b'], join(tmp.dir, run, 'keys'), Date.now());
  const argsFor = (part: 'relay' | 'cut', id: string, peer: string) =>
    JSON.stringify({
      part,
      id,
      peer,
      mqttUrl: `mqtt://${p.uplinkA}:1883`,
      iface: p.d2dIface,
      uplinkIface: 'up0',
      stateDir: join(tmp.dir, run, 'state'),
      keyFile: ids.keyFile(id),
      membersFile: ids.membersFile,
      operatorPublicKey: ids.operatorPublicKey,
      count: COUNT,
      tamper,
    });
  const [relay, cut] = await Promise.all([
    p.a.exec(process.execPath, ['--import', 'tsx', SCENARIO, argsFor('relay', 'relay-a', 'relay-b')], 120_000),
    p.b.exec(process.execPath, ['--import', 'tsx', SCENARIO, argsFor('cut', 'relay-b', 'relay-a')], 120_000),
  ]);
  expect(relay.code, relay.stderr).toBe(0);
  expect(cut.code, cut.stderr).toBe(0);
  return {
    relay: JSON.parse(relay.stdout.trim().split('\n').pop()!),
    cut: JSON.parse(cut.stdout.trim().split('\n').pop()!),
  };
}

// Two gateways in two network namespaces: a veth link for the sidelink, a second one to the broker
// (Mosquitto, in the relay's namespace). A missing tool fails the suite instead of skipping it.
describe('D2D relay for a gateway whose uplink is down', () => {
  beforeAll(() => requireNamespaces(pair));
  it('its reliable messages reach the broker through the neighbour, the acks come back, and it goes direct again when the uplink is back', async () => {
    const { relay, cut } = await run('honest', false);
    expect(cut).toMatchObject({
      peerSeen: true,
      phase1Acked: true,
      brokerLost: true,
      relayFound: true,
      // Acknowledged end to end: the platform's acks came back down through the relay.
      phase2Acked: true,
      phase2Pending: 0,
      brokerBack: true,
      relayLeft: true,
      phase3Acked: true,
      // Nothing handed to the relay once the uplink was back.
      handedInPhase3: 0,
    });
    expect(cut.handed).toBeGreaterThanOrEqual(COUNT);
    expect(cut.downReceived).toBeGreaterThanOrEqual(COUNT);
    expect(relay).toMatchObject({
      peerSeen: true,
      done: true,
      relayedFor: ['relay-b'],
      stoppedRelaying: true,
      meter: [COUNT, COUNT, COUNT],
      tampered: 0,
      refused: 0,
      badSignature: 0,
    });
    expect(relay.relayedUp).toBeGreaterThanOrEqual(COUNT);
    expect(relay.relayedDown).toBeGreaterThanOrEqual(COUNT);
  }, 150_000);

  it('a relay that alters what it relays gets nothing accepted: the receiver refuses it as badly signed', async () => {
    const { relay, cut } = await run('tamper', true);
    expect(cut).toMatchObject({ relayFound: true, phase2Acked: false, phase2Pending: COUNT, brokerBack: true });
    // Resent directly once the uplink was back, and acknowledged.
    expect(cut).toMatchObject({ drainedDirectly: true, phase3Acked: true });
    expect(relay.tampered).toBeGreaterThanOrEqual(COUNT);
    expect(relay.badSignature).toBeGreaterThanOrEqual(COUNT);
    // Every phase-2 message was taken once, and only as its sender signed it (sent directly).
    expect(relay.meter).toEqual([COUNT, COUNT, COUNT]);
  }, 150_000);
});
