import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { ProcessImage } from '../../src/agent/process-image.js';
import { RoleHandOver } from '../../src/agent/roles/hand-over.js';
import type { RoleContext } from '../../src/agent/roles/role.js';
import { purchasesFromNeighbours, TradeReporter, tradesWithProsumers } from '../../src/agent/roles/trade-reporter.js';
import { MemoryBus, MemoryTransport } from '../../src/comms/memory-transport.js';
import { TradeReportBody } from '../../src/comms/messages/market.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { settleInterval } from '../../src/platform/settlement.js';
import { TradeReports } from '../../src/platform/trades.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';

const INTERVAL = Date.UTC(2026, 5, 21, 12);
const report = (trades: TradeReportBody['trades'], interval = INTERVAL): TradeReportBody => ({
  session: String(interval),
  interval,
  market: 'cell',
  converged: true,
  trades,
});

describe('the trades a trader reports from its cleared market', () => {
  it('are its purchases from neighbouring traders (the buyer reports) and its trades with its prosumers', () => {
    expect(purchasesFromNeighbours('tx-a', { 'tx-b': -2.5, 'tx-c': 1.2, 'tx-d': -1e-9 }, 0.11)).toEqual([
      { seller: 'tx-b', buyer: 'tx-a', kWh: 2.5, pricePerKWh: 0.11 },
    ]);
    expect(tradesWithProsumers('tx-a', { 'inv-1': 0.75, 'inv-2': -1.25, 'inv-3': 0 }, 0.09)).toEqual([
      { seller: 'tx-a', buyer: 'inv-1', kWh: 0.75, pricePerKWh: 0.09 },
      { seller: 'inv-2', buyer: 'tx-a', kWh: 1.25, pricePerKWh: 0.09 },
    ]);
  });
});

describe('the platform stores trade reports once', () => {
  const open = (name: string) => new TradeReports(Ledger.open(join(tmp.dir, `${name}.db`)).db);
  const bought = { seller: 'tx-b', buyer: 'tx-a', kWh: 2.5, pricePerKWh: 0.11 };
  const sold = { seller: 'tx-a', buyer: 'inv-1', kWh: 0.75, pricePerKWh: 0.11 };

  it('a resend of a report is recognised and stored once', () => {
    const trades = open('resend');
    expect(trades.add('tx-a', report([bought, sold]), 1)).toEqual({ outcome: 'stored', trades: 2 });
    expect(trades.add('tx-a', report([bought, sold]), 2)).toEqual({ outcome: 'resent' });
    expect(trades.list(INTERVAL).map((t) => [t.seller, t.buyer, t.kWh, t.receivedMs])).toEqual([
      ['tx-a', 'inv-1', 0.75, 1],
      ['tx-b', 'tx-a', 2.5, 1],
    ]);
  });

  it('a second report of the same interval with other figures is a conflict and changes nothing', () => {
    const trades = open('conflict');
    trades.add('tx-a', report([bought]), 1);
    expect(trades.add('tx-a', report([{ ...bought, kWh: 3 }]), 2)).toMatchObject({ outcome: 'conflict' });
    expect(trades.add('tx-a', report([bought, sold]), 3)).toMatchObject({ outcome: 'conflict' });
    // Another party reporting the same trade with other figures is kept out too.
    expect(trades.add('tx-b', report([{ ...bought, pricePerKWh: 0.2 }]), 4)).toEqual({
      outcome: 'conflict',
      trade: { ...bought, pricePerKWh: 0.2 },
    });
    expect(trades.list().map((t) => [t.kWh, t.pricePerKWh])).toEqual([[2.5, 0.11]]);
  });

  it('a member cannot report a trade it is not a party to', () => {
    const trades = open('foreign');
    expect(trades.add('inv-9', report([bought]), 1)).toEqual({
      outcome: 'refused',
      reason: 'inv-9 is not a party to tx-b → tx-a',
    });
    expect(trades.list()).toEqual([]);
  });

  it('reports of different intervals and markets are kept apart, and settle as stored', () => {
    const trades = open('settle');
    trades.add('tx-a', report([bought, sold]), 1);
    trades.add('tx-a', { ...report([bought]), market: 'upper' }, 1);
    trades.add('tx-a', report([sold], INTERVAL + 900_000), 1);
    expect(trades.list()).toHaveLength(4);
    const settled = settleInterval(
      INTERVAL,
      trades.forSettlement(INTERVAL),
      { 'tx-a': -5, 'tx-b': 5, 'inv-1': -0.75 },
      {
        networkOperator: 'dso',
        networkFeePerKWh: 0,
        platform: 'platform',
        platformFeePerKWh: 0,
        levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.05 },
      },
    );
    // tx-a bought 2.5 kWh twice (both markets) from tx-b and sold 0.75 kWh to inv-1.
    expect(settled.amounts['tx-b']).toBeCloseTo(2 * 2.5 * 0.11, 9);
    expect(Object.values(settled.amounts).reduce((a, b) => a + b, 0)).toBeCloseTo(0, 9);
  });

  it('refuses malformed reports by schema', () => {
    expect(TradeReportBody.safeParse(report([{ ...bought, buyer: 'tx-b' }])).success).toBe(false);
    expect(TradeReportBody.safeParse(report([{ ...bought, kWh: -1 }])).success).toBe(false);
    expect(TradeReportBody.safeParse({ ...report([]), interval: 1.5 }).success).toBe(false);
  });
});

describe("a trader's reporter", () => {
  async function context(stateDir: string, bus: MemoryBus, clock: VirtualClock, platform?: string) {
    const config = gatewayConfig({
      gateway: { id: 'tx-a', kind: 'transformer', cell: 'a' },
      status: { port: 0 },
      stateDir,
      ...(platform ? { comms: { transport: 'mqtt', mqtt: { url: 'mqtt://x' }, reliability: { platform } } } : {}),
    });
    const metrics = new GatewayMetrics({ gateway: 'tx-a' });
    const transport = new MemoryTransport(
      bus,
      { gatewayId: 'tx-a', cell: 'a', role: 'transformer', version: 'test', publicKey: '' },
      { clock, log, metrics },
    );
    await transport.start();
    const image = new ProcessImage(3000);
    const ctx: RoleContext = {
      config,
      clock,
      log,
      metrics,
      transport,
      image: () => image.snapshot(),
      shared: new RoleHandOver().view,
    };
    return ctx;
  }

  it('sends each report to the platform and remembers the last interval cleared across a restart', async () => {
    const clock = new VirtualClock(INTERVAL);
    const bus = new MemoryBus();
    const platform = new MemoryTransport(
      bus,
      { gatewayId: 'platform-1', cell: 'a', role: 'platform', version: 'test', publicKey: '' },
      { clock, log, metrics: new GatewayMetrics({ gateway: 'platform-1' }) },
    );
    await platform.start();
    const received: unknown[] = [];
    platform.on({ cell: 'a', cls: 'mkt', type: 'trades', target: 'platform-1' }, ({ envelope }) =>
      received.push(envelope.body),
    );
    const dir = join(tmp.dir, 'reporter');
    const first = new TradeReporter(await context(dir, bus, clock, 'platform-1'), 'cell');
    expect(first.alreadyCleared(INTERVAL)).toBe(false);
    await first.report(report([{ seller: 'tx-b', buyer: 'tx-a', kWh: 1, pricePerKWh: 0.1 }]));
    await clock.advance(10);
    expect(received).toEqual([report([{ seller: 'tx-b', buyer: 'tx-a', kWh: 1, pricePerKWh: 0.1 }])]);

    // A trader restarted (or whose clock went back) does not clear that interval, or an earlier one, again.
    const restarted = new TradeReporter(await context(dir, bus, clock, 'platform-1'), 'cell');
    expect(restarted.alreadyCleared(INTERVAL)).toBe(true);
    expect(restarted.alreadyCleared(INTERVAL - 900_000)).toBe(true);
    expect(restarted.alreadyCleared(INTERVAL + 900_000)).toBe(false);
    // The upper market's record is its own.
    expect(new TradeReporter(await context(dir, bus, clock, 'platform-1'), 'upper').alreadyCleared(INTERVAL)).toBe(
      false,
    );
  });
});
