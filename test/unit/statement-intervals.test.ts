import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { money } from '../../src/platform/settlement.js';
import { buildStatement } from '../../src/platform/statement.js';
import {
  buildIntervalStatement,
  type IntervalRow,
  intervalStatementCsv,
} from '../../src/platform/statement-intervals.js';
import { tempDir } from '../helpers/net.js';
import { ACCOUNTS, NOW, settledMarketsLedger, T1, T2 } from '../helpers/settled-markets.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const ledger = settledMarketsLedger(join(tmp.dir, 'intervals.db'));
afterAll(() => ledger.close());

/*
 * Worked by hand from test/helpers/settled-markets.ts (cell fees: network 0.02/kWh paid by the buyer,
 * platform 0.01/kWh half from each side, cplA above at 0.28 import / 0.08 export; upper fees 0.01 and
 * 0.01, the grid above at 0.30 / 0.05).
 *
 * 09:45 (one entry, no market): h1 sells 1 kWh to h2 at 0.18; metered h1 +1, h2 −1.
 *   h1: received 0.18, platform fee 0.005, net 0.175; alone 1 kWh exported at 0.08 = 0.08; savings 0.095.
 *   cplA, the level above, is every peer's counterparty alone: −(0.08 − 1·0.28) = 0.20, savings −0.20.
 * 10:00, cell A: h1 sells 2 kWh to h2 at 0.20; metered h1 +3, h2 −2.
 *   h1: received 0.40 + 1 kWh surplus to cplA at 0.08 = 0.48; fee 0.01; net 0.47; alone 3·0.08 = 0.24.
 *   h2: alone −2·0.28 = −0.56.  cplA (level above): takes 1 kWh, pays 0.08; alone −(0.24 − 0.56) = 0.32.
 * 10:00, upper: cplA sells 1 kWh to cplB at 0.15; metered cplA +1, cplB −1.5.
 *   cplA: received 0.15, platform fee 0.005, no imbalance; alone 1·0.05 = 0.05.
 *   So cplA at 10:00, both entries: sold 1, imbalance −1, received 0.15, paid 0.08, fees 0.005,
 *   net 0.065, alone 0.37, savings −0.305, average price 0.15.
 * 10:15, cell A: h2 sells 1 kWh to h1 at 0.22; metered h1 −1.5, h2 +1.
 *   h1: pays 0.22, fees 0.02 + 0.005, shortfall 0.5 kWh from cplA at 0.28 = 0.14; net −0.385;
 *   alone −1.5·0.28 = −0.42; savings 0.035.
 *   cplA: gives 0.5 kWh, receives 0.14; alone −(−0.42 + 1·0.08) = 0.34.
 * 10:15, upper: no trade; metered cplA −0.5, cplB +2.
 *   cplA: 0.5 kWh from the grid at 0.30 = 0.15 paid; alone −0.15.
 *   So cplA at 10:15: imbalance +0.5 − 0.5 = 0, received 0.14, paid 0.15, net −0.01, alone 0.19,
 *   savings −0.20, no peer trade (average price null).
 */
const H1: IntervalRow[] = [
  {
    interval: '2026-12-07T09:45:00Z',
    soldKWh: 1,
    boughtKWh: 0,
    imbalanceKWh: 0,
    averagePricePerKWh: 0.18,
    received: 0.18,
    paid: 0,
    fees: 0.005,
    net: 0.175,
    aloneNet: 0.08,
    savings: 0.095,
  },
  {
    interval: '2026-12-07T10:00:00Z',
    soldKWh: 2,
    boughtKWh: 0,
    imbalanceKWh: 1,
    averagePricePerKWh: 0.2,
    received: 0.48,
    paid: 0,
    fees: 0.01,
    net: 0.47,
    aloneNet: 0.24,
    savings: 0.23,
  },
  {
    interval: '2026-12-07T10:15:00Z',
    soldKWh: 0,
    boughtKWh: 1,
    imbalanceKWh: -0.5,
    averagePricePerKWh: 0.22,
    received: 0,
    paid: 0.36,
    fees: 0.025,
    net: -0.385,
    aloneNet: -0.42,
    savings: 0.035,
  },
];
const CPL_A: IntervalRow[] = [
  {
    interval: '2026-12-07T09:45:00Z',
    soldKWh: 0,
    boughtKWh: 0,
    imbalanceKWh: 0,
    averagePricePerKWh: null,
    received: 0,
    paid: 0,
    fees: 0,
    net: 0,
    aloneNet: 0.2,
    savings: -0.2,
  },
  {
    interval: '2026-12-07T10:00:00Z',
    soldKWh: 1,
    boughtKWh: 0,
    imbalanceKWh: -1,
    averagePricePerKWh: 0.15,
    received: 0.15,
    paid: 0.08,
    fees: 0.005,
    net: 0.065,
    aloneNet: 0.37,
    savings: -0.305,
  },
  {
    interval: '2026-12-07T10:15:00Z',
    soldKWh: 0,
    boughtKWh: 0,
    imbalanceKWh: 0,
    averagePricePerKWh: null,
    received: 0.14,
    paid: 0.15,
    fees: 0,
    net: -0.01,
    aloneNet: 0.19,
    savings: -0.2,
  },
];

function expectRows(actual: IntervalRow[], want: IntervalRow[]): void {
  expect(actual.map((r) => r.interval)).toEqual(want.map((r) => r.interval));
  actual.forEach((row, i) => {
    for (const [field, value] of Object.entries(want[i] as IntervalRow)) {
      const got = (row as unknown as Record<string, unknown>)[field];
      if (typeof value === 'number') expect(got, `${row.interval}.${field}`).toBeCloseTo(value, 9);
      else expect(got, `${row.interval}.${field}`).toBe(value);
    }
  });
}

const SUMMED = ['soldKWh', 'boughtKWh', 'imbalanceKWh', 'received', 'paid', 'fees', 'net', 'aloneNet', 'savings'];

describe("a member's statement per interval", () => {
  it('gives a member one row per settled interval, the entries of both market levels summed', () => {
    const h1 = buildIntervalStatement(ledger.entries(), { member: 'h1' }, NOW);
    expect(h1).toMatchObject({ member: 'h1', from: '2026-12-07T09:45:00Z', to: '2026-12-07T12:00:00Z' });
    expectRows(h1.intervals, H1);
    // cplA is the cell market's level above and a peer of the upper market in the same intervals.
    expectRows(buildIntervalStatement(ledger.entries(), { member: 'cplA' }, NOW).intervals, CPL_A);
  });

  it('adds up, for every account and period, to that account of the statement (which counts intervals, not entries)', () => {
    const periods: [{ fromMs?: number; toMs?: number }, number][] = [
      [{}, 3],
      [{ fromMs: T1 }, 2],
      [{ toMs: T2 }, 2],
      [{ fromMs: T1, toMs: T2 }, 1],
    ];
    for (const [period, intervals] of periods) {
      const statement = buildStatement(ledger.entries(), period, NOW);
      expect(statement.settledIntervals).toBe(intervals);
      expect(statement.accounts.map((a) => a.id).sort()).toEqual(
        [...ACCOUNTS].filter((id) => statement.accounts.some((a) => a.id === id)).sort(),
      );
      for (const account of statement.accounts) {
        const rows = buildIntervalStatement(ledger.entries(), { ...period, member: account.id }, NOW);
        expect(rows.from).toBe(statement.from);
        expect(rows.to).toBe(statement.to);
        expect(rows.intervals).toHaveLength(account.intervals);
        for (const field of SUMMED) {
          const values = rows.intervals.map((r) => (r as unknown as Record<string, number | null>)[field] ?? null);
          const sum = values.includes(null) ? null : money(values.reduce((s: number, v) => s + (v ?? 0), 0));
          expect(sum, `${account.id}.${field} over ${JSON.stringify(period)}`).toBe(
            (account as unknown as Record<string, number | null>)[field],
          );
        }
      }
    }
    // h1 over all three intervals, by hand: net 0.175 + 0.47 − 0.385, alone 0.08 + 0.24 − 0.42.
    const h1 = buildStatement(ledger.entries(), { member: 'h1' }, NOW).accounts[0];
    expect(h1).toMatchObject({ intervals: 3, soldKWh: 3, boughtKWh: 1, imbalanceKWh: 0.5 });
    expect(h1?.net).toBeCloseTo(0.26, 9);
    expect(h1?.aloneNet).toBeCloseTo(-0.1, 9);
    expect(h1?.savings).toBeCloseTo(0.36, 9);
  });

  it('refuses an unknown member and gives a known member without settlements no rows', () => {
    expect(() => buildIntervalStatement(ledger.entries(), { member: 'nobody' }, NOW)).toThrow(/unknown member nobody/);
    const quiet = buildIntervalStatement(ledger.entries(), { member: 'h9', knownIds: ['h9'] }, NOW);
    expect(quiet.intervals).toEqual([]);
  });

  it('writes the rows as CSV, an unknown average price as an empty cell', () => {
    const csv = intervalStatementCsv(buildIntervalStatement(ledger.entries(), { member: 'cplA' }, NOW)).split('\n');
    expect(csv[0]).toBe(
      'interval,soldKWh,boughtKWh,imbalanceKWh,averagePricePerKWh,received,paid,fees,net,aloneNet,savings',
    );
    expect(csv.slice(1)).toEqual([
      '2026-12-07T09:45:00Z,0,0,0,,0,0,0,0,0.2,-0.2',
      '2026-12-07T10:00:00Z,1,0,-1,0.15,0.15,0.08,0.005,0.065,0.37,-0.305',
      '2026-12-07T10:15:00Z,0,0,0,,0.14,0.15,0,-0.01,0.19,-0.2',
      '',
    ]);
  });
});
