import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { runCli, tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const file = (name: string) => join(tmp.dir, name);
const write = (name: string, data: unknown) => writeFileSync(file(name), JSON.stringify(data));

describe('settlement through the command line: draft, every party signs, commit', () => {
  it('settles once, sums to zero, refuses a missing signature or a second settlement, detects tampering', async () => {
    const db = file('platform.db');
    const accounts = ['mg1', 'mg2', 'dso', 'platform', 'grid'];
    {
      const ledger = Ledger.open(db);
      const op = generateKeyPair();
      const members = new Membership(ledger.db, { id: 'op', privateKey: op.privateKey }, () => Date.now());
      for (const id of accounts) {
        const key = generateKeyPair();
        write(`${id}.key`, { id, ...key });
        members.register({ id, publicKey: key.publicKey, role: id === 'dso' ? 'dso' : 'mg-trader', cell: 'cell-a' });
        members.admit(id);
      }
      ledger.close();
    }
    // The output of `p2p-edge trade --json`: mg1 sends 10 kWh to mg2 in slot 0 at mg2's price 0.12.
    write('trade.json', {
      flows: [{ from: 'mg1', to: 'mg2', energy: [10, 3] }],
      prices: { mg1: [0.11, 0.1], mg2: [0.12, 0.1] },
    });
    write('config.json', {
      networkOperator: 'dso',
      networkFeePerKWh: 0.02,
      platform: 'platform',
      platformFeePerKWh: 0.004,
      levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.04 },
    });
    write('metered.json', { mg1: 10, mg2: -11 });
    const draftArgs = ['platform', 'settle', 'draft', '--db', db, '--interval', '5', '--trades', file('trade.json')];
    const draft = await runCli([...draftArgs, '--config', file('config.json'), '--metered', file('metered.json')]);
    expect(draft.code, draft.stderr).toBe(0);
    writeFileSync(file('draft.json'), draft.stdout);
    const { body, settlement } = JSON.parse(draft.stdout);
    expect(body.kind).toBe('settlement');
    expect(Object.values(settlement.amounts as Record<string, number>).reduce((s, v) => s + v, 0)).toBeCloseTo(0, 9);
    expect(settlement.amounts.grid).toBeCloseTo(0.3, 9); // mg2 took 1 kWh beyond its trade, at 0.30

    const signed = await Promise.all(
      accounts.map((id) => runCli(['platform', 'sign', '--key', file(`${id}.key`), '--body', file('draft.json')])),
    );
    signed.forEach((s, i) => {
      expect(s.code, s.stderr).toBe(0);
      writeFileSync(file(`${accounts[i]}.sig`), s.stdout);
    });
    const commit = (ids: string[]) =>
      runCli([
        'platform',
        'settle',
        'commit',
        '--db',
        db,
        '--body',
        file('draft.json'),
        '--signatures',
        ...ids.map((id) => file(`${id}.sig`)),
      ]);
    const missing = await commit(accounts.slice(1));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/not signed by party mg1/);
    const ok = await commit(accounts);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ interval: 5, ledgerIndex: 0 });
    const twice = await commit(accounts);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/interval 5 is already settled/);

    const listed = JSON.parse((await runCli(['platform', 'settlements', 'list', '--db', db])).stdout);
    expect(listed).toHaveLength(1);
    expect((await runCli(['ledger', 'verify', '--db', db, '--json'])).code).toBe(0);
    // Change one stored byte of the settled amounts: verify names the entry.
    const bytes = readFileSync(db);
    const at = bytes.indexOf(Buffer.from('"grid":0.3'));
    expect(at).toBeGreaterThan(0);
    bytes[at + 9] = '4'.charCodeAt(0);
    writeFileSync(db, bytes);
    const tampered = await runCli(['ledger', 'verify', '--db', db, '--json']);
    expect(tampered.code).toBe(1);
    expect(JSON.parse(tampered.stdout).firstBad).toMatchObject({ index: 0 });
  });
});
