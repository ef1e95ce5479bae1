import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../../src/comms/embedded-broker.js';
import { provisionIdentities } from '../../src/comms/provision.js';
import { writeFileAtomic } from '../../src/core/atomic-file.js';
import { type MembersList, signMembersList } from '../../src/core/members.js';
import { eventually, freePort, startCli, tempDir } from '../helpers/net.js';

const tmp = tempDir('p2p-signed-gw-');
afterAll(() => tmp.remove());

const metricsOf = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const sample = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);

describe('p2p-edge run: two gateway processes with signed comms', () => {
  it("the transformer takes the inverter's signed readings, and drops them once the operator suspends it", async () => {
    const broker = await startEmbeddedBroker();
    const ids = provisionIdentities(
      [
        { id: 'tx-1', cell: 'c1', kind: 'transformer' },
        { id: 'inv-1', cell: 'c1', kind: 'inverter' },
      ],
      join(tmp.dir, 'ids'),
      Date.now(),
    );
    const security = (id: string) =>
      `  security: { keyFile: ${ids.keyFile(id)}, membersFile: ${ids.membersFile}, operatorPublicKey: ${ids.operatorPublicKey} }`;
    const common = (id: string, port: number) => [
      `status: { port: ${port} }`,
      'scheduler: { primaryMs: 200, secondaryMs: 400, tertiaryMs: 2000 }',
      `stateDir: ${join(tmp.dir, 'var')}`,
      'log: { level: warn }',
      'comms:',
      '  transport: mqtt',
      `  mqtt: { url: ${broker.url}, keepaliveS: 5 }`,
      security(id),
    ];
    const txPort = await freePort();
    const invPort = await freePort();
    writeFileSync(
      join(tmp.dir, 'tx.yaml'),
      [
        'gateway: { id: tx-1, kind: transformer, cell: c1, bus: tx, transformerKVA: 50 }',
        ...common('tx-1', txPort),
      ].join('\n'),
    );
    writeFileSync(
      join(tmp.dir, 'inv.yaml'),
      [
        'gateway: { id: inv-1, kind: inverter, cell: c1, bus: b1 }',
        ...common('inv-1', invPort),
        'devices:',
        '  - { id: pv, driver: simulated, kind: pv-inverter, bus: b1 }',
        '  - { id: meter, driver: simulated, kind: household-meter, bus: b1 }',
      ].join('\n'),
    );
    const tx = startCli(['run', '--config', join(tmp.dir, 'tx.yaml')]);
    const inv = startCli(['run', '--config', join(tmp.dir, 'inv.yaml')]);
    try {
      const received = /p2p_messages_received_total\{class="meter",gateway="tx-1"\} (\d+)/;
      await eventually(async () => (sample(await metricsOf(txPort), received) > 0 ? true : undefined), 15_000, 200);
      expect(await metricsOf(txPort)).not.toMatch(/p2p_messages_rejected_total\{reason="(signature|member)"/);

      // The operator suspends inv-1: a new list with a higher serial, written atomically.
      const list = JSON.parse(readFileSync(ids.membersFile, 'utf8')) as MembersList;
      const suspended = signMembersList(
        {
          ...list,
          serial: list.serial + 1,
          members: list.members.map((m) => (m.id === 'inv-1' ? { ...m, status: 'suspended' as const } : m)),
        },
        ids.operator.privateKey,
      );
      writeFileAtomic(ids.membersFile, JSON.stringify(suspended));
      const member = /p2p_messages_rejected_total\{reason="member",gateway="tx-1"\} (\d+)/;
      await eventually(async () => (sample(await metricsOf(txPort), member) > 0 ? true : undefined), 15_000, 200);
      expect(sample(await metricsOf(txPort), /p2p_members_serial\{gateway="tx-1"\} (\d+)/)).toBe(list.serial + 1);
    } finally {
      tx.child.kill('SIGTERM');
      inv.child.kill('SIGTERM');
      expect(await tx.exited).toBe(0);
      expect(await inv.exited).toBe(0);
      await broker.close();
    }
  });
});
