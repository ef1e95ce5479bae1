import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger, signBody } from '../../src/platform/ledger/ledger.js';
import { Settlements, settleInterval, type Trade } from '../../src/platform/settlement.js';

/**
 * A ledger of three settled intervals of a cell `A` (houses h1, h2; its coupling agent cplA as the cell
 * market's level above) under an upper market (cplA, cplB; the grid above): 09:45 written as older
 * releases wrote it (one entry, no `market`), 10:00 and 10:15 with one entry per market level, fees,
 * and imbalance both ways. test/unit/statement-intervals.test.ts works the figures out by hand.
 */
export const T0 = Date.parse('2026-12-07T09:45:00Z');
export const T1 = Date.parse('2026-12-07T10:00:00Z');
export const T2 = Date.parse('2026-12-07T10:15:00Z');
export const NOW = Date.parse('2026-12-07T12:00:00Z');

export const CELL_CONFIG = {
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'plat',
  platformFeePerKWh: 0.01,
  levelAbove: { id: 'cplA', importPricePerKWh: 0.28, exportPricePerKWh: 0.08 },
};
export const UPPER_CONFIG = {
  networkOperator: 'dso',
  networkFeePerKWh: 0.01,
  platform: 'plat',
  platformFeePerKWh: 0.01,
  levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.05 },
};

export const ACCOUNTS = ['h1', 'h2', 'cplA', 'cplB', 'dso', 'plat', 'grid'] as const;

export function settledMarketsLedger(file: string): Ledger {
  const ledger = Ledger.open(file);
  const keys = Object.fromEntries(ACCOUNTS.map((id) => [id, generateKeyPair()]));
  const publicKey = (id: string) => keys[id]?.publicKey ?? '';
  const privateKeys = Object.fromEntries(ACCOUNTS.map((id) => [id, keys[id]?.privateKey ?? '']));

  // As an older release settled: one entry for the interval, without market or cell.
  new Settlements(ledger).settle(
    T0,
    '2026-12-07T10:00:00Z',
    [{ interval: T0, seller: 'h1', buyer: 'h2', kWh: 1, pricePerKWh: 0.18 }],
    { h1: 1, h2: -1 },
    CELL_CONFIG,
    Object.fromEntries(ACCOUNTS.map((id) => [id, publicKey(id)])),
    (body) => Object.fromEntries(body.parties.map((p) => [p.id, signBody(body, privateKeys[p.id] ?? '')])),
  );

  const settleMarket = (
    interval: number,
    time: string,
    market: { market: 'cell'; cell: string } | { market: 'upper' },
    trades: Trade[],
    metered: Record<string, number>,
    config: typeof CELL_CONFIG,
  ) => {
    const s = settleInterval(interval, trades, metered, config);
    ledger.append(
      {
        time,
        kind: 'settlement',
        parties: Object.keys(s.amounts)
          .sort()
          .map((id) => ({ id, publicKey: publicKey(id) })),
        amounts: s.amounts,
        payload: {
          interval,
          ...market,
          imbalanceKWh: s.imbalanceKWh,
          lines: s.lines,
          meteredNetExportKWh: metered,
          config,
        },
      },
      privateKeys,
    );
  };
  const cellA = { market: 'cell', cell: 'A' } as const;
  const upper = { market: 'upper' } as const;
  settleMarket(
    T1,
    '2026-12-07T10:20:00Z',
    cellA,
    [{ interval: T1, seller: 'h1', buyer: 'h2', kWh: 2, pricePerKWh: 0.2 }],
    { h1: 3, h2: -2 },
    CELL_CONFIG,
  );
  settleMarket(
    T1,
    '2026-12-07T10:20:00Z',
    upper,
    [{ interval: T1, seller: 'cplA', buyer: 'cplB', kWh: 1, pricePerKWh: 0.15 }],
    { cplA: 1, cplB: -1.5 },
    UPPER_CONFIG,
  );
  settleMarket(
    T2,
    '2026-12-07T10:35:00Z',
    cellA,
    [{ interval: T2, seller: 'h2', buyer: 'h1', kWh: 1, pricePerKWh: 0.22 }],
    { h1: -1.5, h2: 1 },
    CELL_CONFIG,
  );
  settleMarket(T2, '2026-12-07T10:35:00Z', upper, [], { cplA: -0.5, cplB: 2 }, UPPER_CONFIG);
  return ledger;
}
