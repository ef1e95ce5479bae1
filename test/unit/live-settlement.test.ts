import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SettleDisputeBody, SignedContent } from '../../src/comms/messages/settle.js';
import { generateKeyPair, type KeyPair } from '../../src/core/signing.js';
import { Ledger, signContent } from '../../src/platform/ledger/ledger.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import {
  LiveSettlement,
  type MadeDraft,
  settlementSummary,
  unitsAwaitingSignatures,
} from '../../src/platform/live-settlement.js';
import { Membership } from '../../src/platform/membership.js';
import { type MeterInterval, MeterIntervals } from '../../src/platform/meter-intervals.js';
import type { UnitPayload } from '../../src/platform/settlement-content.js';
import { TradeReports } from '../../src/platform/trades.js';
import { HAND_SCHEDULE } from '../helpers/hand-schedule.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

/** One-minute trading intervals; drafted 5 s after an interval ends; readings waited for 30 s more. */
const INTERVAL_MS = 60_000;
const WAIT_MS = 5_000;
const MAX_WAIT_MS = 30_000;
const I = Date.UTC(2026, 6, 10, 12);
const DUE = I + INTERVAL_MS + WAIT_MS;

const schedule = HAND_SCHEDULE;

const MEMBERS = [
  ['house-1', 'prosumer', 'cell-a'],
  ['house-2', 'prosumer', 'cell-a'],
  ['tx-a', 'mg-trader', 'cell-a'],
  ['house-3', 'prosumer', 'cell-b'],
  ['tx-b', 'mg-trader', 'cell-b'],
  ['dso', 'dso', 'grid'],
  ['grid', 'dso', 'grid'],
  ['platform', 'platform', 'grid'],
] as const;
const keys: Record<string, KeyPair> = Object.fromEntries(
  [...MEMBERS.map(([id]) => id), 'mallory'].map((id) => [id, generateKeyPair()]),
);
const key = (id: string) => keys[id] as KeyPair;
const signOwn = (content: SignedContent) => signContent(content, key('platform').privateKey);

/**
 * Hand-worked amounts (fees 0.02 network, 0.004 platform; imbalance at 0.30 import, 0.04 export).
 * Cell a: house-1 sells 1.5 kWh to tx-a, tx-a sells 0.5 kWh to house-2, both at 0.10; meters: house-1
 * exports 1.6 kWh (96 kW for a minute), house-2 takes 0.8 kWh (48 kW); tx-a is metered as traded (−1.0).
 *   house-1 0.15 − 0.003 + 0.1·0.04 = 0.151; house-2 −0.05 − 0.01 − 0.001 − 0.3·0.30 = −0.151;
 *   tx-a −0.15 − 0.03 − 0.003 + 0.05 − 0.001 − 0.004 + 0.09 = −0.048; dso 0.04; platform 0.008.
 * One level up: tx-b sells 0.4 kWh to tx-a at 0.12 (tx-a reports it). tx-a's metered energy is its
 * prosumers': 1.6 − 0.8 = 0.8, so its imbalance is 0.8 + 0.4 = 1.2 kWh sold to the grid at 0.04;
 * tx-b has no cell settlement: metered as traded (+0.4).
 *   tx-a −0.048 − 0.008 − 0.0008 + 0.048 = −0.0088; tx-b 0.048 − 0.0008 = 0.0472; dso 0.008;
 *   platform 0.0016; grid −0.048.
 */
const CELL_AMOUNTS = { dso: 0.04, 'house-1': 0.151, 'house-2': -0.151, platform: 0.008, 'tx-a': -0.048 };
const UPPER_AMOUNTS = { dso: 0.008, grid: -0.048, platform: 0.0016, 'tx-a': -0.0088, 'tx-b': 0.0472 };
const CELL_UNIT = `${I}/cell/cell-a`;
const UPPER_UNIT = `${I}/upper/*`;

/** A member's metering interval as its gateway sends it: the interval's energy at a constant power. */
function meterInterval(member: string, netW: number): MeterInterval {
  return {
    member,
    epoch: 1,
    seq: 15,
    fromMs: I,
    toMs: I + INTERVAL_MS,
    netKWh: (netW * INTERVAL_MS) / 3_600_000 / 1000,
    coveredMs: INTERVAL_MS,
  };
}

let files = 0;
interface Platform {
  file: string;
  ledger: Ledger;
  intervals: MeterIntervals;
  trades: TradeReports;
  live: LiveSettlement;
}

function open(file: string): Platform {
  const ledger = Ledger.open(file);
  const members = new Membership(ledger.db, undefined, () => 0);
  const intervals = new MeterIntervals(ledger.db);
  const trades = new TradeReports(ledger.db);
  const live = new LiveSettlement(ledger, members, intervals, trades, {
    schedule,
    intervalMs: INTERVAL_MS,
    waitAfterEndMs: WAIT_MS,
    maxReadingWaitMs: MAX_WAIT_MS,
    lookBackMs: 3_600_000,
  });
  return { file, ledger, intervals, trades, live };
}

/** A platform with its members, house-2's metering interval still on its way, and the traders' reports. */
function platform(options: { upper?: boolean; cellB?: boolean } = {}): Platform {
  const p = open(join(tmp.dir, `live-${files++}.db`));
  const members = new Membership(p.ledger.db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
  for (const [id, role, cell] of MEMBERS) {
    members.register({ id, publicKey: key(id).publicKey, role, cell });
    members.admit(id);
  }
  p.intervals.addAll([meterInterval('house-1', -96_000)]);
  const report = (
    market: 'cell' | 'upper',
    trades: { seller: string; buyer: string; kWh: number; pricePerKWh: number }[],
  ) => ({
    session: String(I),
    interval: I,
    market,
    converged: true,
    trades,
  });
  p.trades.add(
    'tx-a',
    report('cell', [
      { seller: 'house-1', buyer: 'tx-a', kWh: 1.5, pricePerKWh: 0.1 },
      { seller: 'tx-a', buyer: 'house-2', kWh: 0.5, pricePerKWh: 0.1 },
    ]),
    I + 61_000,
  );
  if (options.upper !== false) {
    p.trades.add('tx-a', report('upper', [{ seller: 'tx-b', buyer: 'tx-a', kWh: 0.4, pricePerKWh: 0.12 }]), I + 62_000);
    p.trades.add('tx-b', report('upper', []), I + 62_000);
  }
  if (options.cellB) p.trades.add('tx-b', report('cell', []), I + 62_000);
  return p;
}

const sign = (d: MadeDraft, party: string, by = party) => ({
  unit: d.unit,
  contentHash: d.contentHash,
  signature: signContent(d.content, key(by).privateKey),
});
const count = (p: Platform, table: string) =>
  (p.ledger.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
const expectAmounts = (actual: Record<string, number>, expected: Record<string, number>) => {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [id, v] of Object.entries(expected)) expect(actual[id], id).toBeCloseTo(v, 9);
};
const byUnit = (made: MadeDraft[], unit: string) => {
  const d = made.find((m) => m.unit === unit);
  if (!d) throw new Error(`${unit} not drafted`);
  return d;
};

describe('live settlement on the platform database', () => {
  it('drafts the cell and the upper unit once due and once every reading is in; commits when every party signed', () => {
    const p = platform();
    expect(p.live.draftDue(DUE - 1, signOwn)).toEqual([]);
    // Due, but house-2's interval is on its way: the cell waits, and the level above waits for it.
    expect(p.live.draftDue(DUE, signOwn)).toEqual([]);
    expect(p.live.waitingUnits()).toEqual({
      [CELL_UNIT]: 'readings of house-2',
      [UPPER_UNIT]: 'the cell settlement of tx-a',
    });
    expect(count(p, 'platform_settlement_drafts')).toBe(0);
    p.intervals.addAll([meterInterval('house-2', 48_000)]);
    const made = p.live.draftDue(DUE + 1_000, signOwn);
    expect(made.map((m) => m.unit).sort()).toEqual([CELL_UNIT, UPPER_UNIT]);
    expect(p.live.waitingUnits()).toEqual({});
    // Nothing is drafted twice.
    expect(p.live.draftDue(DUE + 2_000, signOwn)).toEqual([]);
    expect(p.live.draftDue(DUE + 20 * INTERVAL_MS, signOwn)).toEqual([]);

    const cell = byUnit(made, CELL_UNIT);
    const upper = byUnit(made, UPPER_UNIT);
    expectAmounts(cell.content.amounts, CELL_AMOUNTS);
    expectAmounts(upper.content.amounts, UPPER_AMOUNTS);
    expect(cell.content.parties.map((x) => x.id)).toEqual(Object.keys(CELL_AMOUNTS).sort());
    expect(cell.content.parties.every((x) => x.publicKey === key(x.id).publicKey)).toBe(true);
    expect(upper.content.parties.map((x) => x.id)).toEqual(Object.keys(UPPER_AMOUNTS).sort());
    const cellPayload = cell.content.payload as UnitPayload;
    expect(cellPayload.meteredNetExportKWh['house-1']).toBeCloseTo(1.6, 9);
    expect(cellPayload.meteredNetExportKWh['house-2']).toBeCloseTo(-0.8, 9);
    expect(cellPayload.meteredNetExportKWh['tx-a']).toBeCloseTo(-1, 9);
    // No metering interval of house-3 (cell b) and no trade: not in cell a, nor waited for.
    expect(Object.keys(cellPayload.meteredNetExportKWh).sort()).toEqual(['house-1', 'house-2', 'tx-a']);
    const upperPayload = upper.content.payload as UnitPayload;
    expect(upperPayload.meteredNetExportKWh['tx-a']).toBeCloseTo(1.6 - 0.8, 9);
    expect(upperPayload.meteredNetExportKWh['tx-b']).toBeCloseTo(0.4, 9);
    expect(upperPayload.config.levelAbove.id).toBe('grid');

    // The platform's own signature is stored with the draft; the others are asked for.
    expect(
      p.live
        .unsigned(0)
        .map((u) => [u.unit, u.missing])
        .sort(),
    ).toEqual([
      [CELL_UNIT, ['dso', 'house-1', 'house-2', 'tx-a']],
      [UPPER_UNIT, ['dso', 'grid', 'tx-a', 'tx-b']],
    ]);

    // Refused, and nothing stored: a forged signature, a non-party, an unknown draft, another content.
    const signatures = () => count(p, 'platform_settlement_signatures');
    expect(signatures()).toBe(2);
    expect(p.live.signatureReceived('house-1', sign(cell, 'house-1', 'mallory'), DUE + 3_000)).toEqual({
      outcome: 'refused',
      reason: `signature of house-1 on ${CELL_UNIT} does not check`,
    });
    expect(p.live.signatureReceived('tx-b', sign(cell, 'tx-b'), DUE + 3_000)).toEqual({
      outcome: 'refused',
      reason: `tx-b is not a party to ${CELL_UNIT}`,
    });
    expect(
      p.live.signatureReceived('house-1', { ...sign(cell, 'house-1'), unit: `${I}/cell/cell-z` }, 0),
    ).toMatchObject({ outcome: 'refused' });
    expect(
      p.live.signatureReceived('house-1', { ...sign(cell, 'house-1'), contentHash: upper.contentHash }, 0),
    ).toMatchObject({ outcome: 'refused' });
    expect(signatures()).toBe(2);

    expect(p.live.signatureReceived('house-1', sign(cell, 'house-1'), DUE + 3_000)).toEqual({
      outcome: 'stored',
      unit: CELL_UNIT,
    });
    expect(p.live.signatureReceived('house-1', sign(cell, 'house-1'), DUE + 3_500)).toEqual({ outcome: 'resent' });
    for (const party of ['dso', 'tx-a'])
      expect(p.live.signatureReceived(party, sign(cell, party), DUE + 4_000).outcome).toBe('stored');
    expect(p.ledger.head().entries).toBe(0);
    const last = p.live.signatureReceived('house-2', sign(cell, 'house-2'), DUE + 5_000);
    expect(last).toMatchObject({ outcome: 'committed', unit: CELL_UNIT });
    expect(p.live.signatureReceived('house-2', sign(cell, 'house-2'), DUE + 6_000)).toEqual({ outcome: 'resent' });
    const entries = p.ledger.entries();
    expect(entries).toHaveLength(1);
    expectAmounts(entries[0]?.amounts ?? {}, CELL_AMOUNTS);
    expect(Object.keys(entries[0]?.signatures ?? {}).sort()).toEqual(Object.keys(CELL_AMOUNTS).sort());
    expect(count(p, 'platform_settled_units')).toBe(1);

    // The upper unit: tx-b disputes it; it is not committed even when every other party signs.
    const dispute: SettleDisputeBody = {
      unit: UPPER_UNIT,
      contentHash: upper.contentHash,
      lines: [{ line: 'amounts.tx-b', draft: 0.0472, own: 0.05, reason: 'does not follow from the draft' }],
    };
    expect(p.live.disputeReceived('tx-b', dispute, '{"signed":"message"}', DUE + 7_000)).toEqual({
      outcome: 'stored',
      unit: UPPER_UNIT,
    });
    expect(p.live.disputeReceived('tx-b', dispute, '{"signed":"message"}', DUE + 7_500)).toEqual({
      outcome: 'resent',
    });
    expect(p.live.disputeReceived('house-1', dispute, '{}', DUE + 7_500)).toMatchObject({ outcome: 'refused' });
    expect(p.live.disputeReceived('tx-b', { ...dispute, contentHash: cell.contentHash }, '{}', 0)).toMatchObject({
      outcome: 'refused',
    });
    for (const party of ['dso', 'grid', 'tx-a'])
      expect(p.live.signatureReceived(party, sign(upper, party), DUE + 8_000).outcome).toBe('stored');
    expect(p.live.unsigned(0)).toEqual([]);
    expect(p.live.disputed()).toEqual([
      { unit: UPPER_UNIT, party: 'tx-b', lines: dispute.lines, receivedMs: DUE + 7_000 },
    ]);
    expect(p.ledger.head().entries).toBe(1);

    expect(settlementSummary(p.ledger)).toEqual({
      intervals: 1,
      settled: 0,
      signedByAllParties: 0,
      disputed: 1,
      balance: 0,
      units: { drafted: 2, committed: 1, disputed: 1, awaitingSignatures: 0 },
    });
    expect(p.ledger.verify()).toEqual({ entries: 1, ok: true, firstBad: null });

    // The head lists the entry by its content hash.
    expect(p.live.headEntries(0)).toEqual([
      { index: 0, time: entries[0]?.time, form: 2, contentHash: cell.contentHash, hash: entries[0]?.hash },
    ]);
    p.ledger.close();

    // A value changed in any of the settlement tables by other means fails verify, naming the table.
    for (const [table, sql] of [
      ['platform_settlement_drafts', 'UPDATE platform_settlement_drafts SET drafted_ms = drafted_ms + 1'],
      [
        'platform_settlement_signatures',
        "UPDATE platform_settlement_signatures SET received_ms = 1 WHERE party = 'dso'",
      ],
      ['platform_settlement_disputes', "UPDATE platform_settlement_disputes SET lines = '[]'"],
      ['platform_settled_units', 'UPDATE platform_settled_units SET ledger_index = 7'],
    ]) {
      const copy = join(tmp.dir, `tampered-${table}.db`);
      copyFileSync(p.file, copy);
      const db = openDatabase(copy);
      expect(db.prepare(sql as string).run().changes).toBeGreaterThan(0);
      db.close();
      const tampered = Ledger.open(copy, { mustExist: true });
      const r = tampered.verify();
      tampered.close();
      expect(r.ok, table).toBe(false);
      expect(r.firstBad).toMatchObject({ table, check: 'hash' });
    }
  });

  it('a platform restarted drafts nothing twice, and a late signature still commits', () => {
    const p = platform();
    p.intervals.addAll([meterInterval('house-2', 48_000)]);
    const made = p.live.draftDue(DUE, signOwn);
    expect(made).toHaveLength(2);
    const cell = byUnit(made, CELL_UNIT);
    const upper = byUnit(made, UPPER_UNIT);
    for (const party of ['dso', 'house-1', 'house-2'])
      expect(p.live.signatureReceived(party, sign(cell, party), DUE + 1_000).outcome).toBe('stored');
    for (const party of ['dso', 'grid', 'tx-a', 'tx-b'])
      p.live.signatureReceived(party, sign(upper, party), DUE + 1_000);
    expect(settlementSummary(p.ledger)).toMatchObject({ intervals: 1, settled: 0, units: { committed: 1 } });
    // The cell's trader has not signed: one unit awaits, drafted at DUE (not before it).
    expect(unitsAwaitingSignatures(p.ledger, DUE + 1)).toBe(1);
    expect(unitsAwaitingSignatures(p.ledger, DUE)).toBe(0);
    p.ledger.close();

    const again = open(p.file);
    expect(again.live.draftDue(DUE + 2_000, signOwn)).toEqual([]);
    expect(again.live.draftDue(DUE + 60 * INTERVAL_MS, signOwn)).toEqual([]);
    expect(again.live.unsigned(0).map((u) => [u.unit, u.missing])).toEqual([[CELL_UNIT, ['tx-a']]]);
    expect(again.live.signatureReceived('tx-a', sign(cell, 'tx-a'), DUE + 3_000)).toMatchObject({
      outcome: 'committed',
    });
    expect(again.ledger.head().entries).toBe(2);
    expect(count(again, 'platform_settlement_drafts')).toBe(2);
    // Both units of the interval committed, every entry signed by each of its parties; money sums to 0.
    expect(settlementSummary(again.ledger)).toEqual({
      intervals: 1,
      settled: 1,
      signedByAllParties: 1,
      disputed: 0,
      balance: 0,
      units: { drafted: 2, committed: 2, disputed: 0, awaitingSignatures: 0 },
    });
    expect(again.ledger.verify()).toEqual({ entries: 2, ok: true, firstBad: null });
    again.ledger.close();
  });

  it('a metering interval that never comes: the unit is drafted when overdue, not before', () => {
    const p = platform({ upper: false });
    // Due at DUE (its report came in earlier): overdue 30 s later.
    expect(p.live.draftDue(DUE + MAX_WAIT_MS, signOwn)).toEqual([]);
    const made = p.live.draftDue(DUE + MAX_WAIT_MS + 1, signOwn);
    expect(made.map((m) => m.unit)).toEqual([CELL_UNIT]);
    // No metered energy of house-2: it is settled as it traded (it bought 0.5 kWh), with no imbalance.
    const payload = made[0]?.content.payload as UnitPayload;
    expect(payload.meteredNetExportKWh['house-2']).toBeCloseTo(-0.5, 9);
    p.ledger.close();
  });

  it('a trade report that comes late: the wait for readings counts from when it came', () => {
    const p = platform({ upper: false });
    const late = I + 10 * INTERVAL_MS;
    p.trades.add(
      'tx-a',
      {
        session: String(I),
        interval: I,
        market: 'upper',
        converged: true,
        trades: [{ seller: 'tx-b', buyer: 'tx-a', kWh: 0.4, pricePerKWh: 0.12 }],
      },
      late,
    );
    // Long past its due time, but its trades came in just now (a platform that was away gets the
    // readings and the reports together): house-2's missing reading is waited for again.
    expect(p.live.draftDue(late, signOwn)).toEqual([]);
    expect(p.live.draftDue(late + MAX_WAIT_MS, signOwn)).toEqual([]);
    expect(
      p.live
        .draftDue(late + MAX_WAIT_MS + 1, signOwn)
        .map((m) => m.unit)
        .sort(),
    ).toEqual([CELL_UNIT, UPPER_UNIT]);
    p.ledger.close();
  });

  it('a cell whose trader reported no trade and whose prosumers moved no energy has nothing to sign', () => {
    const p = platform({ cellB: true });
    p.intervals.addAll([meterInterval('house-2', 48_000)]);
    const made = p.live.draftDue(DUE, signOwn);
    expect(made.map((m) => m.unit).sort()).toEqual([CELL_UNIT, UPPER_UNIT]);
    // tx-b's cell metered nothing: one level up it is metered 0, and its 0.4 kWh sold is a shortfall.
    const upper = byUnit(made, UPPER_UNIT).content.payload as UnitPayload;
    expect(upper.meteredNetExportKWh['tx-b']).toBe(0);
    expect(upper.imbalanceKWh['tx-b']).toBeCloseTo(-0.4, 9);
    expect(p.live.draftDue(DUE + 1_000, signOwn)).toEqual([]);
    expect(settlementSummary(p.ledger).units.drafted).toBe(2);
    p.ledger.close();
  });

  it('an account with money that is not a member holds up its own unit only', () => {
    const p = platform({ upper: false });
    p.intervals.addAll([meterInterval('house-2', 48_000)]);
    // A trade of the next interval with an account the platform does not know.
    p.trades.add(
      'tx-a',
      {
        session: String(I + INTERVAL_MS),
        interval: I + INTERVAL_MS,
        market: 'cell',
        converged: true,
        trades: [{ seller: 'stranger', buyer: 'tx-a', kWh: 1, pricePerKWh: 0.1 }],
      },
      I + 2 * INTERVAL_MS,
    );
    const made = p.live.draftDue(DUE + INTERVAL_MS + MAX_WAIT_MS + 1, signOwn);
    expect(made.map((m) => m.unit)).toEqual([CELL_UNIT]);
    expect(p.live.waitingUnits()[`${I + INTERVAL_MS}/cell/cell-a`]).toMatch(/stranger/);
    p.ledger.close();
  });
});
