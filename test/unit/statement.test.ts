import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger, type LedgerEntry, signBody } from '../../src/platform/ledger/ledger.js';
import { Settlements } from '../../src/platform/settlement.js';
import { buildStatement, parseIsoOption, type StatementAccount } from '../../src/platform/statement.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const config = {
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'plat',
  platformFeePerKWh: 0.01,
  levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.05 },
};
const T1 = Date.parse('2026-12-07T10:00:00Z');
const T2 = Date.parse('2026-12-07T10:15:00Z');
const NOW = Date.parse('2026-12-07T12:00:00Z');

/*
 * Worked by hand (fees: network 0.02/kWh paid by the buyer; platform 0.01/kWh, half from each side;
 * the grid sells shortfall at 0.30 and buys surplus at 0.05).
 *
 * Interval 1 (10:00): a sells 2 kWh to b at 0.20 and 1 kWh to c at 0.18; metered a +3.5, b −2, c −1.5.
 *   a: +0.40 +0.18 received; platform fee 2·0.005 + 1·0.005 = 0.015; traded +3, metered 3.5 → imbalance
 *      +0.5 sold to the grid at 0.05 = +0.025 received.
 *   b: pays 0.40; fees 2·0.02 + 2·0.005 = 0.05; traded −2 = metered → no imbalance.
 *   c: pays 0.18; fees 0.02 + 0.005 = 0.025; traded −1, metered −1.5 → imbalance −0.5 bought at 0.30
 *      = 0.15 paid.
 *   dso +0.06 (3 kWh · 0.02), plat +0.03 (3 kWh · 0.01), grid +0.15 − 0.025 = +0.125.
 * Interval 2 (10:15): b sells 1 kWh to c at 0.22; metered a −0.4, b +1, c −1.
 *   a: no trade, imbalance −0.4 bought at 0.30 = 0.12 paid.
 *   b: +0.22 received; fee 0.005.   c: pays 0.22; fees 0.02 + 0.005 = 0.025.
 *   dso +0.02, plat +0.01, grid +0.12.
 * Over both:
 *   a: sold 3, bought 0, imbalance 0.5 − 0.4 = 0.1; received 0.605, paid 0.12, fees 0.015,
 *      net 0.605 − 0.12 − 0.015 = 0.47.
 *      Alone: 3.5 kWh exported at 0.05 = 0.175, then 0.4 kWh imported at 0.30 = −0.12 → 0.055;
 *      savings 0.47 − 0.055 = 0.415.
 *   b: sold 1, bought 2, imbalance 0; received 0.22, paid 0.40, fees 0.05 + 0.005 = 0.055,
 *      net −0.235. Alone: −2·0.30 + 1·0.05 = −0.55; savings 0.315.
 *   c: sold 0, bought 2, imbalance −0.5; received 0, paid 0.18 + 0.15 + 0.22 = 0.55,
 *      fees 0.025 + 0.025 = 0.05, net −0.60. Alone: −1.5·0.30 − 1·0.30 = −0.75; savings 0.15.
 *   dso: received 0.08, net 0.08, alone 0 (no trades, no fees), savings 0.08.
 *   plat: received 0.04, net 0.04, alone 0, savings 0.04.
 *   grid: imbalance (its net export) −0.5 + 0.5 + 0.4 = 0.4; received 0.15 + 0.12 = 0.27, paid 0.025,
 *      net 0.245. Alone it is every prosumer's counterparty: −(0.055 − 0.55 − 0.75) = 1.245;
 *      savings 0.245 − 1.245 = −1.0.
 *   balance: 0.47 − 0.235 − 0.60 + 0.08 + 0.04 + 0.245 = 0.
 */
const expected: Record<string, Omit<StatementAccount, 'id'>> = {
  a: {
    role: 'prosumer',
    intervals: 2,
    soldKWh: 3,
    boughtKWh: 0,
    imbalanceKWh: 0.1,
    received: 0.605,
    paid: 0.12,
    fees: 0.015,
    net: 0.47,
    aloneNet: 0.055,
    savings: 0.415,
  },
  b: {
    role: 'prosumer',
    intervals: 2,
    soldKWh: 1,
    boughtKWh: 2,
    imbalanceKWh: 0,
    received: 0.22,
    paid: 0.4,
    fees: 0.055,
    net: -0.235,
    aloneNet: -0.55,
    savings: 0.315,
  },
  c: {
    role: 'prosumer',
    intervals: 2,
    soldKWh: 0,
    boughtKWh: 2,
    imbalanceKWh: -0.5,
    received: 0,
    paid: 0.55,
    fees: 0.05,
    net: -0.6,
    aloneNet: -0.75,
    savings: 0.15,
  },
  dso: {
    role: 'networkOperator',
    intervals: 2,
    soldKWh: 0,
    boughtKWh: 0,
    imbalanceKWh: 0,
    received: 0.08,
    paid: 0,
    fees: 0,
    net: 0.08,
    aloneNet: 0,
    savings: 0.08,
  },
  plat: {
    role: 'platform',
    intervals: 2,
    soldKWh: 0,
    boughtKWh: 0,
    imbalanceKWh: 0,
    received: 0.04,
    paid: 0,
    fees: 0,
    net: 0.04,
    aloneNet: 0,
    savings: 0.04,
  },
  grid: {
    role: 'levelAbove',
    intervals: 2,
    soldKWh: 0,
    boughtKWh: 0,
    imbalanceKWh: 0.4,
    received: 0.27,
    paid: 0.025,
    fees: 0,
    net: 0.245,
    aloneNet: 1.245,
    savings: -1,
  },
};

function settledLedger(): Ledger {
  const ledger = Ledger.open(join(tmp.dir, 'statement.db'));
  const accounts = ['a', 'b', 'c', 'dso', 'plat', 'grid'];
  const keys = Object.fromEntries(accounts.map((id) => [id, generateKeyPair()]));
  const publicKeys = Object.fromEntries(accounts.map((id) => [id, keys[id]?.publicKey ?? '']));
  const signer = (body: Parameters<typeof signBody>[0]) =>
    Object.fromEntries(body.parties.map((p) => [p.id, signBody(body, keys[p.id]?.privateKey ?? '')]));
  const settlements = new Settlements(ledger);
  const trades1 = [
    { interval: T1, seller: 'a', buyer: 'b', kWh: 2, pricePerKWh: 0.2 },
    { interval: T1, seller: 'a', buyer: 'c', kWh: 1, pricePerKWh: 0.18 },
  ];
  settlements.settle(T1, '2026-12-07T10:20:00Z', trades1, { a: 3.5, b: -2, c: -1.5 }, config, publicKeys, signer);
  const trades2 = [{ interval: T2, seller: 'b', buyer: 'c', kWh: 1, pricePerKWh: 0.22 }];
  settlements.settle(T2, '2026-12-07T10:35:00Z', trades2, { a: -0.4, b: 1, c: -1 }, config, publicKeys, signer);
  return ledger;
}

const ledger = settledLedger();
afterAll(() => ledger.close());

function expectAccount(actual: StatementAccount | undefined, want: Omit<StatementAccount, 'id'>): void {
  expect(actual).toBeDefined();
  for (const [field, value] of Object.entries(want)) {
    const got = (actual as unknown as Record<string, unknown>)[field];
    if (typeof value === 'number') expect(got, `${actual?.id}.${field}`).toBeCloseTo(value, 9);
    else expect(got, `${actual?.id}.${field}`).toBe(value);
  }
}

describe('statement of accounts', () => {
  it('matches the hand-worked example in every field; net = received − paid − fees; balance 0', () => {
    const s = buildStatement(ledger.entries(), {}, NOW);
    expect(s.from).toBe('2026-12-07T10:00:00Z');
    expect(s.to).toBe('2026-12-07T12:00:00Z');
    expect(s.settledIntervals).toBe(2);
    expect(s.disputedIntervals).toBe(0);
    expect(s.accounts.map((a) => a.id)).toEqual(['a', 'b', 'c', 'dso', 'plat', 'grid']);
    for (const account of s.accounts) {
      expectAccount(account, expected[account.id] as Omit<StatementAccount, 'id'>);
      expect(account.net).toBeCloseTo(account.received - account.paid - account.fees, 9);
      expect(account.savings).toBeCloseTo(account.net - (account.aloneNet ?? Number.NaN), 9);
    }
    expect(Math.abs(s.balance)).toBeLessThan(1e-6);
  });

  it('keeps the intervals starting in [from, to) and one account with --member, the balance over all', () => {
    // Interval 2 alone: a paid 0.12 for 0.4 kWh of shortfall, as it would alone (savings 0).
    const second = buildStatement(ledger.entries(), { fromMs: T2 }, NOW);
    expect(second.settledIntervals).toBe(1);
    expectAccount(
      second.accounts.find((a) => a.id === 'a'),
      {
        role: 'prosumer',
        intervals: 1,
        soldKWh: 0,
        boughtKWh: 0,
        imbalanceKWh: -0.4,
        received: 0,
        paid: 0.12,
        fees: 0,
        net: -0.12,
        aloneNet: -0.12,
        savings: 0,
      },
    );
    expect(buildStatement(ledger.entries(), { toMs: T2 }, NOW).settledIntervals).toBe(1);
    expect(buildStatement(ledger.entries(), { fromMs: T1, toMs: T1 }, NOW).settledIntervals).toBe(0);

    const onlyB = buildStatement(ledger.entries(), { member: 'b' }, NOW);
    expect(onlyB.accounts).toHaveLength(1);
    expectAccount(onlyB.accounts[0], expected.b as Omit<StatementAccount, 'id'>);
    expect(Math.abs(onlyB.balance)).toBeLessThan(1e-6);
    // A member with no settlement in the period gets zeros; a name nobody knows is refused.
    const quiet = buildStatement(ledger.entries(), { member: 'd', knownIds: ['d'] }, NOW);
    expect(quiet.accounts).toEqual([
      {
        id: 'd',
        role: 'prosumer',
        intervals: 0,
        soldKWh: 0,
        boughtKWh: 0,
        imbalanceKWh: 0,
        received: 0,
        paid: 0,
        fees: 0,
        net: 0,
        aloneNet: 0,
        savings: 0,
      },
    ]);
    expect(() => buildStatement(ledger.entries(), { member: 'nobody' }, NOW)).toThrow(/unknown member nobody/);
  });

  it('counts the disputed intervals of the period, each once, apart from the settled ones', () => {
    const disputedIntervals = [T1, T2, T2, T2 + 3_600_000];
    expect(buildStatement(ledger.entries(), { disputedIntervals }, NOW).disputedIntervals).toBe(3);
    expect(buildStatement(ledger.entries(), { fromMs: T2, disputedIntervals }, NOW).disputedIntervals).toBe(2);
    expect(buildStatement(ledger.entries(), { toMs: T2, disputedIntervals }, NOW).disputedIntervals).toBe(1);
    expect(buildStatement(ledger.entries(), {}, NOW).disputedIntervals).toBe(0);
  });

  it('reads entries settled before the metered energy and config were stored', () => {
    const older: LedgerEntry[] = ledger.entries().map((e) => {
      const { meteredNetExportKWh: _m, config: _c, ...payload } = e.payload as Record<string, unknown>;
      return { ...e, payload };
    });
    const s = buildStatement(older, {}, NOW);
    // Roles come from the lines; the metered energy is imbalance + traded net export.
    for (const id of ['a', 'c', 'dso', 'plat']) {
      const account = s.accounts.find((x) => x.id === id);
      expectAccount(account, expected[id] as Omit<StatementAccount, 'id'>);
    }
    // Interval 2 has only a shortfall, so the grid's export price b needs for its 1 kWh surplus is unknown.
    expect(s.accounts.find((x) => x.id === 'b')?.aloneNet).toBeNull();
    expect(s.accounts.find((x) => x.id === 'grid')).toMatchObject({ role: 'levelAbove', net: 0.245, aloneNet: null });
    expect(Math.abs(s.balance)).toBeLessThan(1e-6);
  });

  it('takes ISO 8601 times and names the option of one it cannot read', () => {
    expect(parseIsoOption('2026-12-07T10:00:00Z', '--from')).toBe(T1);
    expect(parseIsoOption('2026-12-07T11:15:00+01:00', '--to')).toBe(T2);
    expect(parseIsoOption('2026-12-07', '--from')).toBe(Date.parse('2026-12-07T00:00:00Z'));
    expect(() => parseIsoOption('yesterday', '--from')).toThrow(/--from must be an ISO 8601 time/);
    expect(() => parseIsoOption('2026-12-07T10:00:00', '--to')).toThrow(/--to/);
    expect(() => parseIsoOption('2026-13-40T10:00:00Z', '--to')).toThrow(/--to/);
  });
});
