import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SignedContent } from '../../src/comms/messages/settle.js';
import { generateKeyPair } from '../../src/core/signing.js';
import {
  checkDraft,
  type OwnTrade,
  type PartyRecords,
  RECORDED_SALE_KWH,
} from '../../src/platform/settlement-check.js';
import {
  draftUnit,
  evidenceHash,
  type UnitInput,
  type UnitPayload,
  unitConfig,
} from '../../src/platform/settlement-content.js';
import { HAND_SCHEDULE } from '../helpers/hand-schedule.js';

/**
 * One cell market of one interval, worked out by hand. Tariff: network fee 0.02/kWh (buyer pays),
 * platform fee 0.004/kWh (half each side), imbalance bought from the level above at 0.30 and sold to
 * it at 0.04. Trades at 0.10: house-1 sells 1.5 kWh to its trader tx-a, tx-a sells 0.5 kWh to house-2.
 * Meters: house-1 exported 1.6 kWh (0.1 over its trade), house-2 took 0.8 kWh (0.3 over its trade).
 *
 * house-1: +1.5·0.10 − 1.5·0.002 + 0.1·0.04           = 0.15 − 0.003 + 0.004            = +0.151
 * house-2: −0.5·0.10 − 0.5·0.02 − 0.5·0.002 − 0.3·0.30 = −0.05 − 0.01 − 0.001 − 0.09    = −0.151
 * tx-a:    −0.15 − 0.03 − 0.003 (bought) + 0.05 − 0.001 (sold) − 0.004 + 0.09 (level above) = −0.048
 * dso:     (1.5 + 0.5)·0.02 = +0.04;  platform: (1.5 + 0.5)·0.004 = +0.008;  sum 0.
 */
const HAND_AMOUNTS = { dso: 0.04, 'house-1': 0.151, 'house-2': -0.151, platform: 0.008, 'tx-a': -0.048 };

const schedule = HAND_SCHEDULE;
const INTERVAL = Date.UTC(2026, 6, 10, 12);
const ACCOUNTS = ['house-1', 'house-2', 'tx-a', 'tx-b', 'tx-c', 'dso', 'platform', 'grid', 'mallory'];
const publicKeys = Object.fromEntries(ACCOUNTS.map((id) => [id, generateKeyPair().publicKey]));
const keyOf = (id: string) => publicKeys[id];

const sold = { seller: 'house-1', buyer: 'tx-a', kWh: 1.5, pricePerKWh: 0.1 };
const bought = { seller: 'tx-a', buyer: 'house-2', kWh: 0.5, pricePerKWh: 0.1 };
const cellInput = (over: Partial<UnitInput> = {}): UnitInput => ({
  interval: INTERVAL,
  intervalMs: 900_000,
  market: 'cell',
  cell: 'cell-a',
  trades: [sold, bought],
  meteredNetExportKWh: { 'house-1': 1.6, 'house-2': -0.8, 'tx-a': -1 },
  config: unitConfig(schedule, 'cell', 'tx-a'),
  evidence: { trades: evidenceHash([{ n: 1 }]), samples: evidenceHash([{ n: 2 }]) },
  ...over,
});
const draft = (over: Partial<UnitInput> = {}) => draftUnit(cellInput(over), keyOf).content;

/** What each party of the cell unit itself recorded. */
const records: Record<string, PartyRecords> = {
  'house-1': { metered: { kWh: 1.6, coverage: 1 }, trades: [sold] },
  'house-2': { metered: { kWh: -0.8, coverage: 1 }, trades: [bought] },
  'tx-a': { trades: [sold, bought] },
  dso: {},
  platform: {},
};
const PARTIES = Object.keys(records).sort();

const linesOf = (content: SignedContent, self: string, own: PartyRecords = records[self] ?? {}) => {
  const r = checkDraft(content, self, own, schedule);
  return r.ok ? [] : r.lines;
};

describe('the evidence a draft names', () => {
  it('is the SHA-256 of the rows as arrays of their column values, in order', () => {
    const rows = [
      { member: 'house-1', epoch: 7, seq: 16, time_ms: 1_800_000_000_000, net_w: -1250.5 },
      { member: 'house-2', epoch: 7, seq: 24, time_ms: 1_800_000_005_000, net_w: 300 },
    ];
    const text = '[["house-1",7,16,1800000000000,-1250.5],["house-2",7,24,1800000005000,300]]';
    expect(evidenceHash(rows)).toBe(createHash('sha256').update(text).digest('hex'));
    expect(evidenceHash([...rows].reverse())).not.toBe(evidenceHash(rows));
  });
});

describe('the drafted content', () => {
  it('moves the money worked out by hand, between the accounts that have money in it', () => {
    const content = draft();
    expect(content.parties.map((p) => p.id)).toEqual(PARTIES);
    expect(content.parties.every((p) => p.publicKey === publicKeys[p.id])).toBe(true);
    for (const [id, amount] of Object.entries(HAND_AMOUNTS)) expect(content.amounts[id]).toBeCloseTo(amount, 9);
    expect(Object.keys(content.amounts).sort()).toEqual(PARTIES);
    const payload = content.payload as UnitPayload;
    expect(payload.unit).toBe(`${INTERVAL}/cell/cell-a`);
    expect(payload.imbalanceKWh['house-1']).toBeCloseTo(0.1, 9);
    expect(payload.imbalanceKWh['house-2']).toBeCloseTo(-0.3, 9);
    expect(payload.imbalanceKWh['tx-a']).toBeCloseTo(0, 9);
  });

  it('is refused when an account with money is not a member (no public key)', () => {
    expect(() => draftUnit(cellInput(), (id) => (id === 'dso' ? undefined : keyOf(id)))).toThrow(/dso/);
  });
});

describe('a party checks a draft against its own records', () => {
  it('a correct draft passes for every party, and hands back the payload', () => {
    const content = draft();
    for (const self of PARTIES) {
      const r = checkDraft(content, self, records[self] ?? {}, schedule);
      expect(r, self).toMatchObject({ ok: true });
      if (r.ok) expect(r.payload.trades).toEqual([sold, bought]);
    }
  });

  it("an inflated bill moved to the platform's account is disputed by that member and by every other party", () => {
    const content = draft();
    // house-2 is charged 0.05 more; the platform keeps it: the amounts still sum to zero.
    const forged: SignedContent = {
      ...content,
      amounts: { ...content.amounts, 'house-2': -0.201, platform: 0.058 },
    };
    expect(Object.values(forged.amounts).reduce((a, b) => a + b, 0)).toBeCloseTo(0, 9);
    for (const self of PARTIES) {
      const lines = linesOf(forged, self);
      const house2 = lines.find((l) => l.line === 'amounts.house-2');
      expect(house2, self).toBeDefined();
      expect(house2?.draft).toBe(-0.201);
      expect(house2?.own as number).toBeCloseTo(-0.151, 9);
      const platform = lines.find((l) => l.line === 'amounts.platform');
      expect(platform?.draft).toBe(0.058);
      expect(platform?.own as number).toBeCloseTo(0.008, 9);
      expect(lines).toHaveLength(2);
    }
  });

  it('a fee, price or account that is not the published schedule is disputed by its line, though the sums follow', () => {
    const cases: [string, Partial<UnitInput['config']>, number | string, number | string][] = [
      ['config.networkFeePerKWh', { networkFeePerKWh: 0.03 }, 0.03, 0.02],
      ['config.platformFeePerKWh', { platformFeePerKWh: 0.01 }, 0.01, 0.004],
      ['config.networkOperator', { networkOperator: 'mallory' }, 'mallory', 'dso'],
      ['config.platform', { platform: 'mallory' }, 'mallory', 'platform'],
    ];
    for (const [line, change, draftFigure, own] of cases) {
      const content = draft({ config: { ...cellInput().config, ...change } });
      // Any party sees it, whether the change touches its own amount or not.
      for (const self of ['house-1', 'tx-a']) {
        const lines = linesOf(content, self);
        expect(lines.find((l) => l.line === line)).toEqual({
          line,
          draft: draftFigure,
          own,
          reason: 'not the published schedule',
        });
        // The arithmetic is the platform's own: only the schedule is wrong (and, for a changed fee
        // account, the parties it names).
        expect(lines.filter((l) => l.line.startsWith('amounts.'))).toEqual([]);
      }
    }
    const levelAbove = cellInput().config.levelAbove;
    for (const [line, change, draftFigure, own] of [
      ['config.levelAbove.importPricePerKWh', { importPricePerKWh: 0.35 }, 0.35, 0.3],
      ['config.levelAbove.exportPricePerKWh', { exportPricePerKWh: 0.01 }, 0.01, 0.04],
    ] as const) {
      const content = draft({ config: { ...cellInput().config, levelAbove: { ...levelAbove, ...change } } });
      expect(linesOf(content, 'house-2')).toEqual([
        { line, draft: draftFigure, own, reason: 'not the published schedule' },
      ]);
    }
  });

  it("one level up the level above's account is the schedule's", () => {
    const upper = (levelAboveId: string) =>
      draftUnit(
        {
          ...cellInput(),
          market: 'upper',
          cell: '*',
          trades: [{ seller: 'tx-b', buyer: 'tx-a', kWh: 2, pricePerKWh: 0.12 }],
          meteredNetExportKWh: { 'tx-a': -2.5, 'tx-b': 2 },
          config: {
            ...unitConfig(schedule, 'upper', ''),
            levelAbove: { ...unitConfig(schedule, 'upper', '').levelAbove, id: levelAboveId },
          },
        },
        keyOf,
      ).content;
    const txA: PartyRecords = { trades: [{ seller: 'tx-b', buyer: 'tx-a', kWh: 2, pricePerKWh: 0.12 }] };
    expect(checkDraft(upper('grid'), 'tx-a', txA, schedule).ok).toBe(true);
    expect(linesOf(upper('mallory'), 'tx-a', txA)).toEqual([
      { line: 'config.levelAbove.id', draft: 'mallory', own: 'grid', reason: 'not the published schedule' },
    ]);
  });

  it("in a cell market the level above is the cell's trader, on one side of every trade", () => {
    // The imbalance money of the cell sent to another account: the trades still add up.
    const config = { ...cellInput().config, levelAbove: { ...cellInput().config.levelAbove, id: 'mallory' } };
    const content = draft({ config });
    for (const self of ['house-1', 'house-2', 'tx-a'])
      expect(
        linesOf(content, self).map((l) => l.line),
        self,
      ).toContain('config.levelAbove.id');
  });

  it('its metered energy outside the tolerance is disputed with its own figure; inside it passes', () => {
    // Tolerance: max(0.01 kWh, 2 % of its own figure).
    const own = (kWh: number, coverage = 1): PartyRecords => ({ metered: { kWh, coverage }, trades: [sold] });
    const content = draft();
    // 2 % of 1.6 = 0.032: 1.57 is within it, 1.56 is not.
    expect(checkDraft(content, 'house-1', own(1.57), schedule).ok).toBe(true);
    expect(linesOf(content, 'house-1', own(1.56))).toEqual([
      {
        line: 'meteredNetExportKWh.house-1',
        draft: 1.6,
        own: 1.56,
        reason: 'metered energy differs by more than 0.0312 kWh',
      },
    ]);
    // A small figure: the 0.01 kWh floor holds (2 % of 0.3 would be 0.006).
    const small = draft({ meteredNetExportKWh: { 'house-1': 0.3, 'house-2': -0.5, 'tx-a': -1 } });
    expect(checkDraft(small, 'house-1', own(0.291), schedule).ok).toBe(true);
    expect(linesOf(small, 'house-1', own(0.285)).map((l) => [l.line, l.draft, l.own])).toEqual([
      ['meteredNetExportKWh.house-1', 0.3, 0.285],
    ]);
    // Its samples cover less than 90 % of the interval: its figure cannot contradict the platform's.
    expect(checkDraft(content, 'house-1', own(0.2, 0.89), schedule).ok).toBe(true);
    expect(checkDraft(content, 'house-1', own(0.2, 0.9), schedule).ok).toBe(false);
    // A party with a meter and no metered figure in the draft.
    const without = draft({ meteredNetExportKWh: { 'house-2': -0.8, 'tx-a': -1, 'house-1': 1.5 } });
    expect(checkDraft(without, 'house-1', own(1.5), schedule).ok).toBe(true);
  });

  it('a missing agreed trade, a trade not agreed, a wrong kWh and a wrong price are disputed by line', () => {
    // The platform leaves out house-1's sale (and settles the rest consistently).
    const missing = draft({ trades: [bought], meteredNetExportKWh: { 'house-1': 1.6, 'house-2': -0.8, 'tx-a': 0.5 } });
    expect(linesOf(missing, 'house-1')).toEqual([
      { line: 'trades.house-1->tx-a', draft: null, own: 1.5, reason: 'an agreed trade is missing' },
    ]);
    expect(linesOf(missing, 'tx-a').map((l) => l.line)).toEqual(['trades.house-1->tx-a']);
    // A trade house-2 never agreed to.
    const extra = { seller: 'tx-a', buyer: 'house-2', kWh: 0.5, pricePerKWh: 0.1 };
    const notAgreed = draft({ trades: [sold, extra] });
    expect(linesOf(notAgreed, 'house-2', { metered: { kWh: -0.8, coverage: 1 }, trades: [] })).toEqual([
      { line: 'trades.tx-a->house-2', draft: 0.5, own: null, reason: 'a trade it did not agree' },
    ]);
    const wrongKWh = draft({ trades: [{ ...sold, kWh: 1.4 }, bought] });
    expect(linesOf(wrongKWh, 'house-1')).toEqual([
      { line: 'trades.house-1->tx-a.kWh', draft: 1.4, own: 1.5, reason: 'not the energy agreed' },
    ]);
    // Micro-kWh rounding is not a difference.
    expect(
      checkDraft(draft({ trades: [{ ...sold, kWh: 1.500001 }, bought] }), 'house-1', records['house-1']!, schedule).ok,
    ).toBe(true);
    const wrongPrice = draft({ trades: [sold, { ...bought, pricePerKWh: 0.12 }] });
    for (const self of ['house-2', 'tx-a'])
      expect(linesOf(wrongPrice, self)).toEqual([
        { line: 'trades.tx-a->house-2.pricePerKWh', draft: 0.12, own: 0.1, reason: 'not the price agreed' },
      ]);
    // A party that takes no part in the trades (records without trades) does not check them.
    expect(checkDraft(wrongPrice, 'dso', {}, schedule).ok).toBe(true);
  });

  describe('trades between traders, reported by the buyer', () => {
    // tx-a buys 2 kWh from its neighbour tx-b in its cell market (tx-a reports it, at its price and
    // after its link losses); tx-b sold to tx-a and sells 1 kWh to tx-c (reported by tx-c, in tx-c's
    // cell), and buys 0.3 kWh from its own prosumer house-9 (in its own cell's settlement).
    const purchase = { seller: 'tx-b', buyer: 'tx-a', kWh: 2, pricePerKWh: 0.11 };
    const content = draft({
      trades: [sold, bought, purchase],
      meteredNetExportKWh: { 'house-1': 1.6, 'house-2': -0.8, 'tx-a': 1, 'tx-b': 2 },
    });
    const txB: OwnTrade[] = [
      { seller: 'tx-b', buyer: 'tx-a' },
      { seller: 'tx-b', buyer: 'tx-c' },
      { seller: 'house-9', buyer: 'tx-b', kWh: 0.3, pricePerKWh: 0.1 },
    ];
    const txA: OwnTrade[] = [sold, bought, purchase, { seller: 'tx-a', buyer: 'tx-c' }];

    it('the seller checks that the sale is there, not its figures; trades of other cells are not looked for', () => {
      expect(content.parties.map((p) => p.id)).toContain('tx-b');
      expect(checkDraft(content, 'tx-b', { trades: txB }, schedule)).toMatchObject({ ok: true });
      // The trader of the cell: its own sale to tx-c is in tx-c's cell settlement, not in its own.
      expect(checkDraft(content, 'tx-a', { trades: txA }, schedule)).toMatchObject({ ok: true });
      // The same sale drafted at other figures (the buyer's) is still agreed.
      const other = draft({
        trades: [sold, bought, { ...purchase, kWh: 1.9, pricePerKWh: 0.13 }],
        meteredNetExportKWh: { 'house-1': 1.6, 'house-2': -0.8, 'tx-a': 0.9, 'tx-b': 1.9 },
      });
      expect(checkDraft(other, 'tx-b', { trades: txB }, schedule).ok).toBe(true);
    });

    it('a sale to it the seller has no record of is disputed from RECORDED_SALE_KWH on, accepted below', () => {
      const withSale = (kWh: number) =>
        draft({
          trades: [sold, bought, { ...purchase, kWh }],
          meteredNetExportKWh: { 'house-1': 1.6, 'house-2': -0.8, 'tx-a': 1 + kWh - 2, 'tx-b': kWh },
        });
      const records: PartyRecords = { trades: [{ seller: 'house-9', buyer: 'tx-b', kWh: 0.3, pricePerKWh: 0.1 }] };
      expect(checkDraft(withSale(RECORDED_SALE_KWH / 2), 'tx-b', records, schedule).ok).toBe(true);
      expect(linesOf(withSale(RECORDED_SALE_KWH), 'tx-b', records)).toEqual([
        { line: 'trades.tx-b->tx-a', draft: RECORDED_SALE_KWH, own: null, reason: 'a trade it did not agree' },
      ]);
      // A recorded sale the draft leaves out is missing (existence only: no figure of its own).
      expect(linesOf(draft(), 'tx-b', { trades: txB })).toContainEqual({
        line: 'trades.tx-b->tx-a',
        draft: null,
        own: null,
        reason: 'an agreed trade is missing',
      });
    });
  });

  it('an unreadable payload, or another kind, is disputed', () => {
    const content = draft();
    const noTrades = { ...content, payload: { ...(content.payload as UnitPayload), trades: 'none' } };
    const lines = linesOf(noTrades as SignedContent, 'house-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ line: 'payload.trades', own: null });
    expect(lines[0]?.reason).toMatch(/^not a settlement payload/);
    expect(linesOf({ ...content, payload: null }, 'house-1')).toHaveLength(1);
    expect(linesOf({ ...content, kind: 'dr-event' }, 'house-1')).toEqual([
      { line: 'kind', draft: 'dr-event', own: null, reason: 'not a settlement' },
    ]);
    // A payload that reads but cannot be settled (a trader's meter missing).
    const unsettleable = { ...content, payload: { ...(content.payload as UnitPayload), meteredNetExportKWh: {} } };
    expect(linesOf(unsettleable, 'dso').map((l) => l.line)).toEqual(['payload']);
  });

  it('a draft sent to a gateway that is not its party, or naming other parties, is disputed', () => {
    const content = draft();
    expect(linesOf(content, 'mallory', {}).map((l) => l.line)).toEqual(['parties']);
    const moreParties = { ...content, parties: [...content.parties, { id: 'mallory', publicKey: keyOf('mallory')! }] };
    expect(linesOf(moreParties, 'dso')).toEqual([
      {
        line: 'parties',
        draft: [...PARTIES, 'mallory'].sort().join(','),
        own: PARTIES.join(','),
        reason: 'not the accounts the settlement moves money for',
      },
    ]);
  });
});
