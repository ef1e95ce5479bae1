import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionIdentities } from '../../src/comms/provision.js';
import { writeFileAtomic } from '../../src/core/atomic-file.js';
import { signMembersList } from '../../src/core/members.js';
import { startTlsBroker, type TlsBroker } from '../helpers/mosquitto-tls.js';
import { eventually, runCli, tempDir } from '../helpers/net.js';

/**
 * The ACL that `p2p-edge platform broker-acl` makes from a signed members list, in a real Mosquitto
 * with client certificates (CN = gateway id). Plain MQTT clients, so the broker alone decides what
 * is delivered. Each absence is checked after a message sent later by the same sender reached the
 * same subscriber: Mosquitto keeps one sender's messages in order for a subscriber, so the absent one
 * was not merely late.
 */
describe('the generated broker ACL in Mosquitto: each gateway reads only what its roles need', () => {
  const tmp = tempDir('p2p-broker-acl-');
  // Cell c1: three houses, a suspended one, the MG trader and the platform; cell c2: its MG trader.
  const gateways = [
    { id: 'inv-1', cell: 'c1', kind: 'inverter' },
    { id: 'inv-2', cell: 'c1', kind: 'inverter' },
    { id: 'inv-3', cell: 'c1', kind: 'inverter' },
    { id: 'inv-9', cell: 'c1', kind: 'inverter' },
    { id: 'tx-1', cell: 'c1', kind: 'transformer' },
    { id: 'plt', cell: 'c1', kind: 'platform' },
    { id: 'tx-2', cell: 'c2', kind: 'transformer' },
  ];
  const ids = provisionIdentities(gateways, join(tmp.dir, 'ids'), Date.now());
  let broker: TlsBroker;
  const clients: MqttClient[] = [];
  const client = new Map<string, MqttClient>();
  /** Per subscriber: `topic payload` of each message it got. */
  const seen = new Map<string, string[]>();

  /** A client with `id`'s certificate, subscribed to everything, recording the topics it gets. */
  async function connect(id: string): Promise<MqttClient> {
    const c = await mqtt.connectAsync(broker.url, broker.clientOptions(id));
    clients.push(c);
    client.set(id, c);
    const messages: string[] = [];
    seen.set(id, messages);
    c.on('message', (topic, payload) => messages.push(`${topic} ${payload}`));
    await c.subscribeAsync('p2p/v1/#', { qos: 1 });
    return c;
  }
  /** The topics `id` got, in order. */
  const got = (id: string) => (seen.get(id) ?? []).map((m) => m.split(' ')[0]!);
  const arrives = (id: string, topic: string) =>
    eventually(() => (got(id).includes(topic) ? true : undefined), 5000, 20);

  beforeAll(async () => {
    // The operator suspends inv-9 and issues the list again.
    const suspended = signMembersList(
      {
        ...ids.members,
        serial: ids.members.serial + 1,
        members: ids.members.members.map((m) => (m.id === 'inv-9' ? { ...m, status: 'suspended' as const } : m)),
      },
      ids.operator.privateKey,
    );
    writeFileAtomic(ids.membersFile, JSON.stringify(suspended));
    const acl = join(tmp.dir, 'acl');
    const made = await runCli([
      'platform',
      'broker-acl',
      '--members',
      ids.membersFile,
      '--operator-public-key',
      ids.operatorPublicKey,
      '--out',
      acl,
    ]);
    expect(made, made.stderr).toMatchObject({ code: 0 });
    expect(JSON.parse(made.stdout)).toMatchObject({ file: acl, members: 6, inactive: 1, bridges: 2 });
    expect(readFileSync(acl, 'utf8')).not.toMatch(/inv-9/);
    broker = await startTlsBroker(
      tmp.dir,
      gateways.map((g) => g.id),
      acl,
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync()));
    await broker?.stop();
    tmp.remove();
  });

  it("a house gets neither another house's reading nor a message addressed to another; the target and the MG trader do", async () => {
    for (const id of ['inv-1', 'inv-2', 'inv-3', 'tx-1', 'plt', 'tx-2']) await connect(id);
    const inv1 = client.get('inv-1')!;
    const tx1 = client.get('tx-1')!;
    await inv1.publishAsync('p2p/v1/c1/inv-1/mkt/offer', 'offer', { qos: 1 });
    await inv1.publishAsync('p2p/v1/c1/inv-1/meter/reading', 'reading', { qos: 1 });
    await inv1.publishAsync('p2p/v1/c1/inv-1/gossip/hello', 'hello', { qos: 1 });
    await inv1.publishAsync('p2p/v1/c1/inv-1/meter/energy/plt', 'interval', { qos: 1 });
    await tx1.publishAsync('p2p/v1/c1/tx-1/mkt/dispatch/inv-2', 'to inv-2', { qos: 1 });
    await tx1.publishAsync('p2p/v1/c1/tx-1/mkt/dispatch/inv-3', 'to inv-3', { qos: 1 });
    await tx1.publishAsync('p2p/v1/c2/tx-1/mkt/price-up/tx-2', 'to tx-2', { qos: 1 }).catch(() => undefined);
    await tx1.publishAsync('p2p/v1/c1/tx-1/mkt/price-up/tx-2', 'to tx-2', { qos: 1 });

    await arrives('inv-3', 'p2p/v1/c1/inv-1/gossip/hello');
    await arrives('inv-3', 'p2p/v1/c1/tx-1/mkt/dispatch/inv-3');
    expect(got('inv-3')).not.toContain('p2p/v1/c1/inv-1/meter/reading');
    expect(got('inv-3')).not.toContain('p2p/v1/c1/inv-1/mkt/offer');
    expect(got('inv-3')).not.toContain('p2p/v1/c1/tx-1/mkt/dispatch/inv-2');
    expect(got('inv-3')).not.toContain('p2p/v1/c1/inv-1/meter/energy/plt');

    await arrives('inv-2', 'p2p/v1/c1/tx-1/mkt/dispatch/inv-2');
    await arrives('tx-1', 'p2p/v1/c1/inv-1/meter/reading');
    await arrives('tx-1', 'p2p/v1/c1/inv-1/mkt/offer');
    await arrives('plt', 'p2p/v1/c1/inv-1/meter/energy/plt');
    // The platform gets the interval addressed to it, neither the reading nor the offer sent before it;
    // another cell's MG trader only what is addressed to it (the messages of inv-1 were all taken by
    // the broker before tx-1 sent anything).
    expect(got('plt')).not.toContain('p2p/v1/c1/inv-1/mkt/offer');
    expect(got('plt')).not.toContain('p2p/v1/c1/inv-1/meter/reading');
    await arrives('tx-2', 'p2p/v1/c1/tx-1/mkt/price-up/tx-2');
    expect(got('tx-2')).toEqual(['p2p/v1/c1/tx-1/mkt/price-up/tx-2']);
  });

  it("a member cannot publish under another member's id nor in another cell", async () => {
    const inv3 = await mqtt.connectAsync(broker.url, { ...broker.clientOptions('inv-3'), clientId: 'inv-3-forger' });
    clients.push(inv3);
    await inv3.publishAsync('p2p/v1/c1/inv-1/meter/energy/plt', 'forged', { qos: 1 });
    await inv3.publishAsync('p2p/v1/c2/inv-3/meter/energy/plt', 'other cell', { qos: 1 });
    await inv3.publishAsync('p2p/v1/c1/inv-3/meter/energy/plt', 'own', { qos: 1 });
    // The platform reads what is addressed to it in every cell.
    await arrives('plt', 'p2p/v1/c1/inv-3/meter/energy/plt');
    expect(seen.get('plt')).not.toContain('p2p/v1/c1/inv-1/meter/energy/plt forged');
    expect(got('plt')).not.toContain('p2p/v1/c2/inv-3/meter/energy/plt');
  });

  it('a list not signed by the key, or with a cell that cannot be a topic level, exits 2 naming the file and field', async () => {
    const other = provisionIdentities([{ id: 'x', cell: 'c1', kind: 'inverter' }], join(tmp.dir, 'other'), 0);
    const args = (file: string, key: string) => [
      'platform',
      'broker-acl',
      '--members',
      file,
      '--operator-public-key',
      key,
    ];
    const wrongKey = await runCli(args(ids.membersFile, other.operatorPublicKey));
    expect(wrongKey.code).toBe(2);
    expect(wrongKey.stderr).toContain(`${ids.membersFile}: sig:`);
    const badCell = join(tmp.dir, 'bad-cell.json');
    const { sig: _sig, ...unsigned } = ids.members;
    const slashed = { ...unsigned, members: unsigned.members.map((m, i) => (i === 1 ? { ...m, cell: 'c/1' } : m)) };
    writeFileAtomic(badCell, JSON.stringify(signMembersList(slashed, ids.operator.privateKey)));
    const r = await runCli(args(badCell, ids.operatorPublicKey));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${badCell}: members[1].cell:`);
  });

  it('a suspended member connects but receives nothing and is not heard', async () => {
    const inv1 = client.get('inv-1')!;
    const tx1 = client.get('tx-1')!;
    // A retained presence, as every gateway leaves: an active member subscribing later gets it.
    await inv1.publishAsync('p2p/v1/c1/inv-1/life/online', 'online', { qos: 1, retain: true });
    const inv9 = await connect('inv-9');
    const late = await mqtt.connectAsync(broker.url, { ...broker.clientOptions('inv-2'), clientId: 'inv-2-late' });
    clients.push(late);
    const lateTopics: string[] = [];
    late.on('message', (topic) => lateTopics.push(topic));
    await late.subscribeAsync('p2p/v1/#', { qos: 1 });
    await eventually(() => (lateTopics.includes('p2p/v1/c1/inv-1/life/online') ? true : undefined), 5000, 20);

    await tx1.publishAsync('p2p/v1/c1/tx-1/mkt/dispatch/inv-9', 'to inv-9', { qos: 1 });
    await tx1.publishAsync('p2p/v1/c1/tx-1/mkt/dispatch/inv-3', 'to inv-3 again', { qos: 1 });
    await eventually(() => (got('inv-3').filter((t) => t.endsWith('/dispatch/inv-3')).length >= 2 ? true : undefined));
    // Nothing can reach inv-9 to mark the end, so it makes a round trip of its own: the broker answers
    // it after whatever it had already queued for inv-9.
    await inv9.unsubscribeAsync('p2p/v1/none');
    expect(got('inv-9')).toEqual([]);

    // What it publishes under its own id is dropped (its acknowledgement says nothing: MQTT 3.1.1).
    await inv9.publishAsync('p2p/v1/c1/inv-9/meter/reading', 'suspended', { qos: 1 });
    await inv1.publishAsync('p2p/v1/c1/inv-1/meter/reading', 'after', { qos: 1 });
    await eventually(() =>
      got('tx-1').filter((t) => t === 'p2p/v1/c1/inv-1/meter/reading').length >= 2 ? true : undefined,
    );
    expect(got('tx-1')).not.toContain('p2p/v1/c1/inv-9/meter/reading');
  });
});
