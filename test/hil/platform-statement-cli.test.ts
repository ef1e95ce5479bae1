import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import type { Statement, StatementAccount } from '../../src/platform/statement.js';
import { runCli, tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const file = (name: string) => join(tmp.dir, name);
const write = (name: string, data: unknown) => writeFileSync(file(name), JSON.stringify(data));

const accounts = ['h1', 'h2', 'dso', 'platform', 'grid'];
const T1 = Date.parse('2026-12-07T10:00:00Z');
const T2 = Date.parse('2026-12-07T10:15:00Z');

/** One interval settled with the existing commands: draft, every account signs, commit. */
async function settle(db: string, interval: number, trades: unknown[], metered: Record<string, number>) {
  write(`trades-${interval}.json`, { trades });
  write(`metered-${interval}.json`, metered);
  const draft = await runCli([
    'platform',
    'settle',
    'draft',
    '--db',
    db,
    '--interval',
    String(interval),
    '--trades',
    file(`trades-${interval}.json`),
    '--config',
    file('config.json'),
    '--metered',
    file(`metered-${interval}.json`),
  ]);
  expect(draft.code, draft.stderr).toBe(0);
  writeFileSync(file('draft.json'), draft.stdout);
  const parties = (JSON.parse(draft.stdout).body.parties as { id: string }[]).map((p) => p.id);
  const signed = await Promise.all(
    parties.map((id) => runCli(['platform', 'sign', '--key', file(`${id}.key`), '--body', file('draft.json')])),
  );
  signed.forEach((s, i) => {
    expect(s.code, s.stderr).toBe(0);
    writeFileSync(file(`${parties[i]}.sig`), s.stdout);
  });
  const commit = await runCli([
    'platform',
    'settle',
    'commit',
    '--db',
    db,
    '--body',
    file('draft.json'),
    '--signatures',
    ...parties.map((id) => file(`${id}.sig`)),
  ]);
  expect(commit.code, commit.stderr).toBe(0);
}

describe('platform statement through the command line', () => {
  it('prints what each account is owed over the settled intervals, as JSON or a table', async () => {
    const db = file('platform.db');
    {
      const ledger = Ledger.open(db);
      const op = generateKeyPair();
      const members = new Membership(ledger.db, { id: 'op', privateKey: op.privateKey }, () => Date.now());
      for (const id of [...accounts, 'h3']) {
        const key = generateKeyPair();
        write(`${id}.key`, { id, ...key });
        members.register({ id, publicKey: key.publicKey, role: id === 'dso' ? 'dso' : 'prosumer', cell: 'cell-a' });
        members.admit(id);
      }
      ledger.close();
    }
    write('config.json', {
      networkOperator: 'dso',
      networkFeePerKWh: 0.02,
      platform: 'platform',
      platformFeePerKWh: 0.01,
      levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.05 },
    });
    // 10:00: h1 sells 2 kWh to h2 at 0.20 and exports 0.5 kWh more; h2 takes exactly 2 kWh.
    await settle(db, T1, [{ interval: T1, seller: 'h1', buyer: 'h2', kWh: 2, pricePerKWh: 0.2 }], { h1: 2.5, h2: -2 });
    // 10:15: no trade; h2 imports 1 kWh from the grid at 0.30.
    await settle(db, T2, [], { h1: 0, h2: -1 });

    const run = await runCli(['platform', 'statement', '--db', db, '--to', '2026-12-07T20:00:00Z', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const s = JSON.parse(run.stdout) as Statement;
    expect(s).toMatchObject({
      from: '2026-12-07T10:00:00Z',
      to: '2026-12-07T20:00:00Z',
      settledIntervals: 2,
      disputedIntervals: 0,
    });
    const byId: Record<string, StatementAccount> = Object.fromEntries(s.accounts.map((a) => [a.id, a]));
    // h1: 2·0.20 + 0.5·0.05 = 0.425 received, fee 2·0.005 = 0.01 → net 0.415; alone 2.5·0.05 = 0.125.
    expect(byId.h1).toMatchObject({ role: 'prosumer', intervals: 2, soldKWh: 2, imbalanceKWh: 0.5 });
    expect(byId.h1?.received).toBeCloseTo(0.425, 9);
    expect(byId.h1?.fees).toBeCloseTo(0.01, 9);
    expect(byId.h1?.net).toBeCloseTo(0.415, 9);
    expect(byId.h1?.aloneNet).toBeCloseTo(0.125, 9);
    expect(byId.h1?.savings).toBeCloseTo(0.29, 9);
    // h2: pays 0.40 + 0.30, fees 2·0.02 + 2·0.005 = 0.05 → net −0.75; alone 3 kWh at 0.30 = −0.90.
    expect(byId.h2?.net).toBeCloseTo(-0.75, 9);
    expect(byId.h2?.aloneNet).toBeCloseTo(-0.9, 9);
    expect(byId.dso).toMatchObject({ role: 'networkOperator' });
    expect(byId.platform).toMatchObject({ role: 'platform' });
    expect(byId.grid).toMatchObject({ role: 'levelAbove' });
    expect(Math.abs(s.balance)).toBeLessThan(1e-6);

    const one = JSON.parse(
      (
        await runCli([
          'platform',
          'statement',
          '--db',
          db,
          '--member',
          'h2',
          '--from',
          '2026-12-07T10:15:00Z',
          '--json',
        ])
      ).stdout,
    );
    expect(one.settledIntervals).toBe(1);
    expect(one.accounts).toHaveLength(1);
    expect(one.accounts[0]).toMatchObject({ id: 'h2', intervals: 1, paid: 0.3, net: -0.3, savings: 0 });

    const table = await runCli(['platform', 'statement', '--db', db]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/2 settled intervals, 0 disputed/);
    expect(table.stdout).toMatch(/^h1\s+prosumer\s+2\s+2\.000/m);
    expect(table.stdout).toMatch(/balance over all accounts: 0\.000000/);

    const quiet = await runCli(['platform', 'statement', '--db', db, '--member', 'h3', '--json']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(JSON.parse(quiet.stdout).accounts[0]).toMatchObject({ id: 'h3', intervals: 0, net: 0 });
  }, 120_000);

  it('refuses a missing database, a bad time and an unknown member with exit 2', async () => {
    const missing = await runCli(['platform', 'statement', '--db', file('none.db'), '--json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/none\.db does not exist/);
    const db = file('platform.db');
    const bad = await runCli(['platform', 'statement', '--db', db, '--from', '7 Dec 2026', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--from must be an ISO 8601 time/);
    const unknown = await runCli(['platform', 'statement', '--db', db, '--member', 'stranger', '--json']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown member stranger/);
  }, 60_000);
});
