import { generateKeyPair } from '../../src/core/signing.js';
import { Contracts } from '../../src/platform/contracts.js';
import { DrEvents } from '../../src/platform/dr-events.js';
import { Ledger, signBody } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { type MeterInterval, MeterIntervals } from '../../src/platform/meter-intervals.js';
import { Readings } from '../../src/platform/readings.js';
import { Settlements } from '../../src/platform/settlement.js';
import { TradeReports } from '../../src/platform/trades.js';

const Q = 900_000;
const EVENT_START = Date.parse('2026-07-10T17:00:00Z');
export const TRADE_INTERVAL = Date.UTC(2026, 6, 10, 12);
const iso = (ms: number) => new Date(ms).toISOString();

const settlementConfig = {
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'platform',
  platformFeePerKWh: 0.004,
  levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.04 },
};

/**
 * A platform database with rows in every table, each written through the platform's own code:
 * members registered, admitted and one suspended, a DR contract, readings, a DR event evaluated
 * (a ledger entry), metering intervals in groups, two trade reports and two settled intervals.
 */
export function writePlatformDb(file: string): void {
  const ledger = Ledger.open(file);
  const op = generateKeyPair();
  const members = new Membership(ledger.db, { id: 'op', privateKey: op.privateKey }, () => 0);
  for (const [id, role] of [
    ['house-1', 'prosumer'],
    ['agg-1', 'aggregator'],
    ['house-2', 'prosumer'],
  ] as const) {
    members.register({ id, publicKey: generateKeyPair().publicKey, role, cell: 'cell-a' });
    members.admit(id);
  }
  members.suspend('house-2');

  const readings = new Readings(ledger.db, members);
  const contracts = new Contracts(ledger.db, members);
  const events = new DrEvents(ledger, contracts, readings);
  const contract = contracts.add({
    kind: 'dr-service',
    provider: 'house-1',
    buyer: 'agg-1',
    from: '2026-07-01T00:00:00Z',
    to: '2026-08-01T00:00:00Z',
    capacityKW: 2,
    pricePerKWh: 0.3,
    baseline: { method: 'metered-before-after', beforeMinutes: 60 },
    meteringIntervalS: 900,
    tolerancePct: 10,
  });
  readings.add({
    readings: [1, 1, 1, 1, 0.4, 0.4].map((energyKWh, k) => ({
      member: 'house-1',
      meter: 'main',
      time: iso(EVENT_START - 4 * Q + (k + 1) * Q),
      energyKWh,
    })),
  });
  const event = events.add({ contract: contract.id, start: iso(EVENT_START), end: iso(EVENT_START + 2 * Q) });

  const intervals = new MeterIntervals(ledger.db);
  let seq = 0;
  for (let group = 0; group < 4; group++) {
    const batch: MeterInterval[] = Array.from({ length: 10 }, () => {
      const k = seq++;
      return {
        member: `house-${1 + (k % 2)}`,
        epoch: 1,
        seq: k,
        fromMs: EVENT_START + k * 1000,
        toMs: EVENT_START + (k + 1) * 1000,
        netKWh: 0.0003335 - k * 1e-6,
        coveredMs: 1000,
      };
    });
    intervals.addAll(batch);
  }
  // A resend of interval 3 is stored once.
  if (
    intervals.addAll([
      {
        member: 'house-2',
        epoch: 1,
        seq: 3,
        fromMs: EVENT_START + 3000,
        toMs: EVENT_START + 4000,
        netKWh: 0.0003305,
        coveredMs: 1000,
      },
    ])[0]
  )
    throw new Error('a resent interval was stored twice');

  const trades = new TradeReports(ledger.db);
  const report = (interval: number, kWh: number) => ({
    session: String(interval),
    interval,
    market: 'cell' as const,
    converged: true,
    trades: [
      { seller: 'tx-b', buyer: 'tx-a', kWh, pricePerKWh: 0.11 },
      { seller: 'tx-a', buyer: 'house-1', kWh: 0.75, pricePerKWh: 0.09 },
    ],
  });
  trades.add('tx-a', report(TRADE_INTERVAL, 2.5), 1_000);
  trades.add('tx-a', report(TRADE_INTERVAL + Q, 1.5), 2_000);

  const accounts = ['tx-a', 'tx-b', 'house-1', 'dso', 'platform', 'grid'];
  const keys = Object.fromEntries(accounts.map((id) => [id, generateKeyPair()]));
  const publicKeys = Object.fromEntries(accounts.map((id) => [id, keys[id]?.publicKey ?? '']));
  const signer = (body: Parameters<typeof signBody>[0]) =>
    Object.fromEntries(body.parties.map((p) => [p.id, signBody(body, keys[p.id]?.privateKey ?? '')]));
  const settlements = new Settlements(ledger);
  // Settled out of interval order: the chain follows the order written.
  for (const [interval, n] of [
    [TRADE_INTERVAL + Q, 1],
    [TRADE_INTERVAL, 2],
  ] as const) {
    const forSettlement = trades.forSettlement(interval);
    const metered: Record<string, number> = {};
    for (const t of forSettlement) {
      metered[t.seller] = (metered[t.seller] ?? 0) + t.kWh;
      metered[t.buyer] = (metered[t.buyer] ?? 0) - t.kWh;
    }
    settlements.settle(
      interval,
      `2026-07-10T1${n}:00:00Z`,
      forSettlement,
      metered,
      settlementConfig,
      publicKeys,
      signer,
    );
  }
  events.evaluate(event.id, { id: 'op', ...op }, '2026-07-10T18:00:00Z');
  ledger.close();
}
