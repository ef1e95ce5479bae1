import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger, signBody } from '../../src/platform/ledger/ledger.js';
import { Settlements, settleInterval } from '../../src/platform/settlement.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const config = {
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'platform',
  platformFeePerKWh: 0.004,
  levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.04 },
};
const trades = [
  { interval: 7, seller: 'mg1', buyer: 'mg2', kWh: 10, pricePerKWh: 0.12 },
  { interval: 7, seller: 'mg1', buyer: 'mg3', kWh: 5, pricePerKWh: 0.1 },
];
// mg1 sold 15 but exported 14 (short 1); mg2 bought 10 and imported 10; mg3 bought 5 but imported 6 (short 1).
const metered = { mg1: 14, mg2: -10, mg3: -6 };

const sum = (r: Record<string, number>): number => Object.values(r).reduce((s, v) => s + v, 0);

describe('settlement', () => {
  it('pays sellers, charges buyers, fees and imbalance at the level above; sums to zero', () => {
    const s = settleInterval(7, trades, metered, config);
    // mg1: +10·0.12 + 5·0.10 = 1.70; platform fee −15·0.004/2 = −0.03; imbalance −1 kWh·0.30 = −0.30 → 1.37
    expect(s.amounts.mg1).toBeCloseTo(1.37, 9);
    // mg2: −1.20 − 10·0.02 − 10·0.004/2 = −1.20 − 0.20 − 0.02 = −1.42
    expect(s.amounts.mg2).toBeCloseTo(-1.42, 9);
    // mg3: −0.50 − 0.10 − 0.01 − 1·0.30 = −0.91
    expect(s.amounts.mg3).toBeCloseTo(-0.91, 9);
    expect(s.amounts.dso).toBeCloseTo(0.3, 9); // 15 kWh · 0.02
    expect(s.amounts.platform).toBeCloseTo(0.06, 9); // 15 kWh · 0.004
    expect(s.amounts.grid).toBeCloseTo(0.6, 9); // sold 2 kWh of shortfall at 0.30
    expect(s.imbalanceKWh).toEqual({ mg1: -1, mg2: 0, mg3: -1 });
    expect(Math.abs(sum(s.amounts))).toBeLessThan(1e-9);
    // Surplus is bought by the level above at its export price: mg2 exports 1 kWh beyond its trades.
    const surplus = settleInterval(7, trades, { ...metered, mg2: -9 }, config);
    expect(surplus.amounts.mg2).toBeCloseTo(-1.42 + 0.04, 9);
    expect(Math.abs(sum(surplus.amounts))).toBeLessThan(1e-9);
  });

  it('refuses trades of another interval and peers without metering', () => {
    expect(() => settleInterval(8, trades, metered, config)).toThrow(/trades\[0\] is for interval 7/);
    expect(() => settleInterval(7, trades, { mg1: 15, mg2: -10 }, config)).toThrow(/no metered energy for mg3/);
  });

  it('writes each interval once to the ledger, signed by every account; re-settling is refused and changes nothing', () => {
    const ledger = Ledger.open(join(tmp.dir, 'settle.db'));
    const accounts = ['mg1', 'mg2', 'mg3', 'dso', 'platform', 'grid'];
    const keys = Object.fromEntries(accounts.map((id) => [id, generateKeyPair()]));
    const publicKeys = Object.fromEntries(accounts.map((id) => [id, keys[id]?.publicKey ?? '']));
    const signer = (body: Parameters<typeof signBody>[0]) =>
      Object.fromEntries(body.parties.map((p) => [p.id, signBody(body, keys[p.id]?.privateKey ?? '')]));
    const settlements = new Settlements(ledger);
    const { entry } = settlements.settle(7, '2026-06-01T10:15:00Z', trades, metered, config, publicKeys, signer);
    expect(entry.kind).toBe('settlement');
    expect(Math.abs(sum(entry.amounts))).toBeLessThan(1e-9);
    expect(() => settlements.settle(7, '2026-06-01T10:30:00Z', trades, metered, config, publicKeys, signer)).toThrow(
      /interval 7 is already settled/,
    );
    expect(ledger.entries()).toHaveLength(1);
    expect(settlements.list()).toEqual([{ interval: 7, ledgerIndex: 0, amounts: entry.amounts }]);
    // A settlement the ledger refuses (a bad signature) leaves the interval unsettled.
    expect(() =>
      settlements.settle(8, '2026-06-01T10:30:00Z', [], { mg1: 1 }, config, publicKeys, () => ({
        mg1: 'x',
        grid: 'y',
      })),
    ).toThrow(/signature/);
    expect(settlements.isSettled(8)).toBe(false);
    expect(ledger.verify()).toEqual({ entries: 1, ok: true, firstBad: null });
    ledger.close();
  });
});
