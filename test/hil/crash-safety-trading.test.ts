import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MqttTransport } from '../../src/comms/mqtt-transport.js';
import { provisionIdentities } from '../../src/comms/provision.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { seededRandom } from '../../src/core/prng.js';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { Settlements, settleInterval } from '../../src/platform/settlement.js';
import { TradeReports } from '../../src/platform/trades.js';
import { BROKERS } from '../helpers/brokers.js';
import { eventually, freePort, runCli, startCli, tempDir } from '../helpers/net.js';
import { securityFor, silentLog } from '../helpers/signed-cell.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const file = (name: string) => join(tmp.dir, name);

/** Kills while the markets trade (of the two traders and the platform, in turn), then while settlements commit. */
const TRADING_KILLS = 36;
const SETTLEMENT_KILLS = 14;
const TERTIARY_MS = 2000;

const SETTLEMENT_CONFIG = {
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'platform-1',
  platformFeePerKWh: 0.004,
  levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.04 },
};
const GRID = { gridImport: { a: 0.0005, b: 0.3, maxKWh: 500 }, gridExport: { a: 0.0005, b: 0.04, maxKWh: 500 } };

interface LogLine {
  msg?: string;
  session?: string;
  trades?: number;
  exchangeKWh?: Record<string, number>;
}

const logLines = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

/**
 * Two cells trade every 2 s: cell b's house needs 6 kW, cell a has a cheap generator; the MG traders
 * clear their cell markets and their coupling agents trade what is left one level up, each reporting
 * its trades to the platform. Traders and platform (real `p2p-edge run` processes) are killed with
 * SIGKILL at random points, in turn; then the settlements of the traded intervals are committed
 * while the committing process is killed at random points. Every trade a trader cleared must be in
 * the platform's database once, no interval cleared twice, and every interval settled exactly once
 * in a ledger whose chain verifies.
 */
describe('crash safety: traders, platform and settlement killed with SIGKILL 50 times', () => {
  it('loses no cleared trade, clears no interval twice and settles every interval once', async () => {
    const broker = await BROKERS[0]!.start();
    const cells = { 'tx-a': 'a', 'tx-b': 'b', 'platform-1': 'a', 'inv-b1': 'b' } as const;
    const ids = provisionIdentities(
      // The kind gives the members-list role, and with it who reads what is sealed.
      Object.entries(cells).map(([id, cell]) => ({
        id,
        cell,
        kind: id.startsWith('tx-') ? 'transformer' : id === 'platform-1' ? 'platform' : 'inverter',
      })),
      join(tmp.dir, 'ids'),
      Date.now(),
    );
    const db = file('platform.db');
    {
      const ledger = Ledger.open(db);
      const members = new Membership(ledger.db, { id: 'operator', privateKey: ids.operator.privateKey }, () => 0);
      for (const [id, cell] of Object.entries(cells)) {
        const role = id.startsWith('tx-') ? 'mg-trader' : id.startsWith('inv-') ? 'prosumer' : 'aggregator';
        members.register({ id, publicKey: ids.keys.get(id)!.publicKey, role, cell });
        members.admit(id);
      }
      // Accounts that only sign settlements.
      for (const id of ['dso', 'grid']) {
        const key = generateKeyPair();
        writeFileSync(file(`${id}.key.json`), JSON.stringify({ id, ...key }));
        members.register({ id, publicKey: key.publicKey, role: id === 'dso' ? 'dso' : 'mg-trader', cell: 'a' });
        members.admit(id);
      }
      ledger.close();
    }
    const statusPorts: Record<string, number> = {};
    const common = async (id: keyof typeof cells) => {
      statusPorts[id] = await freePort();
      return {
        scheduler: { primaryMs: 100, secondaryMs: 100, tertiaryMs: TERTIARY_MS },
        stateDir: file('state'),
        status: { host: '127.0.0.1', port: statusPorts[id] },
        log: { level: 'info' },
        comms: {
          transport: 'mqtt',
          mqtt: { url: broker.url, keepaliveS: 5 },
          reliability: { platform: 'platform-1', retryInitialMs: 200, retryMaxMs: 1000 },
          security: {
            keyFile: ids.keyFile(id),
            membersFile: ids.membersFile,
            operatorPublicKey: ids.operatorPublicKey,
          },
        },
      };
    };
    const trader = async (id: 'tx-a' | 'tx-b', peer: string, generators: unknown[]) => ({
      ...(await common(id)),
      gateway: { id, kind: 'transformer', cell: cells[id], transformerKVA: 200 },
      market: { horizonSlots: 2, slotMinutes: 15, roundMs: 20, generators, ...GRID },
      upperMarket: {
        roundMs: 20,
        ...GRID,
        neighbours: [{ peer, sendCapacityKWh: 20, receiveCapacityKWh: 20, a: 0.001, b: 0.005, efficiency: 0.98 }],
      },
    });
    const configs = {
      'tx-a': await trader('tx-a', 'tx-b', [{ a: 0.001, b: 0.01, maxKWh: 5 }]),
      'tx-b': await trader('tx-b', 'tx-a', []),
      'platform-1': {
        ...(await common('platform-1')),
        gateway: { id: 'platform-1', kind: 'platform', cell: 'a' },
        platform: { db, cells: ['a', 'b'], meteringIntervalS: 1 },
      },
    };
    const configFile = (id: string) => file(`${id}.yaml`);
    for (const [id, config] of Object.entries(configs)) writeFileSync(configFile(id), stringify(config));

    // The house of cell b offers its load to its trader twice per market interval.
    const house = new MqttTransport(
      { url: broker.url, keepaliveS: 5 },
      {
        gatewayId: 'inv-b1',
        cell: 'b',
        role: 'inverter',
        version: 'test',
        publicKey: ids.keys.get('inv-b1')!.publicKey,
      },
      {
        clock: systemClock,
        log: silentLog,
        metrics: new GatewayMetrics({ gateway: 'inv-b1' }),
        security: securityFor(ids, 'inv-b1'),
        stateDir: file('house'),
      },
    );
    await house.start();
    const offering = setInterval(() => {
      house.publish('mkt', 'offer', { loadW: 6000, pvW: 0, flexibility: [] }).catch(() => {});
    }, TERTIARY_MS / 2);

    type Process = ReturnType<typeof startCli>;
    const outputs: Record<string, string[]> = { 'tx-a': [], 'tx-b': [], 'platform-1': [] };
    const running = new Map<string, Process>();
    const start = (id: string) => running.set(id, startCli(['run', '--config', configFile(id)]));
    const up = (id: string) =>
      fetch(`http://127.0.0.1:${statusPorts[id]}/healthz`)
        .then((r) => r.ok || undefined)
        .catch(() => undefined);
    const stop = async (id: string, signal: NodeJS.Signals) => {
      const p = running.get(id)!;
      p.child.kill(signal);
      const code = await p.exited;
      outputs[id]!.push(p.output());
      running.delete(id);
      return code;
    };
    const random = seededRandom(2027);
    const reports = () => {
      const ledger = Ledger.open(db, { mustExist: true });
      try {
        return new TradeReports(ledger.db).list();
      } finally {
        ledger.close();
      }
    };
    try {
      for (const id of Object.keys(configs)) start(id);
      for (const id of Object.keys(configs)) await eventually(() => up(id), 20_000);
      // Trading is under way before the first kill: the platform holds a trade between the cells.
      await eventually(() => (reports().some((t) => t.market === 'upper') ? true : undefined), 60_000);
      const targets = Object.keys(configs);
      for (let k = 0; k < TRADING_KILLS; k++) {
        const id = targets[k % targets.length]!;
        // Half the kills while the process starts, half while it trades.
        if (k % 2 === 1) await eventually(() => up(id), 20_000);
        await new Promise((r) => setTimeout(r, 100 + random() * 2 * TERTIARY_MS));
        await stop(id, 'SIGKILL');
        start(id);
      }
      for (const id of targets) await eventually(() => up(id), 20_000);
      // A few quiet intervals, so that every report still in an outbox reaches the platform.
      await new Promise((r) => setTimeout(r, 4 * TERTIARY_MS));
    } finally {
      clearInterval(offering);
      for (const id of [...running.keys()]) expect(await stop(id, 'SIGTERM')).toBe(0);
      await house.close();
      await broker.close();
    }

    // What the traders cleared, from their logs over all their lives.
    const stored = reports();
    let cleared = 0;
    for (const id of ['tx-a', 'tx-b']) {
      const lines = outputs[id]!.flatMap(logLines);
      const cellSessions = lines.filter((l) => l.msg === 'market interval cleared');
      const upperSessions = lines.filter((l) => l.msg === 'cell imbalance traded one level up');
      // No interval cleared twice by one trader, in either market.
      expect(new Set(cellSessions.map((l) => l.session)).size).toBe(cellSessions.length);
      expect(new Set(upperSessions.map((l) => l.session)).size).toBe(upperSessions.length);
      for (const l of cellSessions) {
        const mine = stored.filter((t) => t.reporter === id && t.market === 'cell' && t.interval === Number(l.session));
        expect(mine.length, `${id} cell interval ${l.session}`).toBe(l.trades);
        cleared += mine.length;
      }
      for (const l of upperSessions) {
        const mine = stored.filter(
          (t) => t.reporter === id && t.market === 'upper' && t.interval === Number(l.session),
        );
        expect(mine.length, `${id} upper interval ${l.session}`).toBe(l.trades);
        // What the buyer received from its neighbour is the stored trade.
        for (const t of mine) expect(t.kWh).toBeCloseTo(-(l.exchangeKWh?.[t.seller] ?? 0), 5);
        cleared += mine.length;
      }
    }
    // Stored beyond those: the trades of traders killed after reporting, before logging.
    expect(cleared).toBeGreaterThan(20);
    expect(stored.length).toBeGreaterThanOrEqual(cleared);
    for (const id of ['platform-1', 'tx-a', 'tx-b'])
      expect(outputs[id]!.join('').includes('reported again with other figures')).toBe(false);

    // Settlement of the intervals both markets traded in, each commit killed at random points until it lands.
    const intervals = [...new Set(stored.filter((t) => t.market === 'upper').map((t) => t.interval))].slice(
      0,
      SETTLEMENT_KILLS,
    );
    writeFileSync(file('settlement.json'), JSON.stringify(SETTLEMENT_CONFIG));
    const accounts = ['tx-a', 'tx-b', 'inv-b1', 'platform-1', 'dso', 'grid'];
    const keyOf = (id: string) => (['dso', 'grid'].includes(id) ? file(`${id}.key.json`) : ids.keyFile(id));
    let settlementKills = 0;
    for (const interval of intervals) {
      const trades = stored.filter((t) => t.interval === interval);
      // Each party's meter shows its trades and 0.1 kWh more taken from the grid.
      const metered: Record<string, number> = {};
      for (const t of trades) {
        metered[t.seller] = (metered[t.seller] ?? 0) + t.kWh;
        metered[t.buyer] = (metered[t.buyer] ?? 0) - t.kWh;
      }
      for (const p of Object.keys(metered)) metered[p] = Number((metered[p]! - 0.1).toFixed(6));
      writeFileSync(file('metered.json'), JSON.stringify(metered));
      const draftArgs = ['platform', 'settle', 'draft', '--db', db, '--interval', String(interval)];
      const draft = await runCli([
        ...draftArgs,
        '--config',
        file('settlement.json'),
        '--metered',
        file('metered.json'),
      ]);
      expect(draft.code, draft.stderr).toBe(0);
      writeFileSync(file('draft.json'), draft.stdout);
      const parties = (JSON.parse(draft.stdout).body.parties as { id: string }[]).map((p) => p.id);
      for (const id of parties) {
        if (!accounts.includes(id)) throw new Error(`unexpected party ${id}`);
        const signed = await runCli(['platform', 'sign', '--key', keyOf(id), '--body', file('draft.json')]);
        expect(signed.code, signed.stderr).toBe(0);
        writeFileSync(file(`${id}.sig`), signed.stdout);
      }
      const commitArgs = ['platform', 'settle', 'commit', '--db', db, '--body', file('draft.json'), '--signatures'];
      for (let attempt = 0; ; attempt++) {
        const p = startCli([...commitArgs, ...parties.map((id) => file(`${id}.sig`))]);
        const last = attempt >= 3;
        if (!last) {
          await new Promise((r) => setTimeout(r, random() * 600));
          if (p.child.exitCode === null && p.child.signalCode === null) {
            p.child.kill('SIGKILL');
            settlementKills++;
          }
        }
        const code = await p.exited;
        // After every kill: the chain verifies and the interval is settled once or not at all.
        const ledger = Ledger.open(db, { mustExist: true });
        expect(ledger.verify().ok).toBe(true);
        const settled = new Settlements(ledger).list().filter((s) => s.interval === interval);
        ledger.close();
        expect(settled.length).toBeLessThanOrEqual(1);
        if (settled.length === 1) break;
        if (last) expect(code, p.output()).toBe(0);
      }
    }
    expect(settlementKills).toBeGreaterThan(0);

    const ledger = Ledger.open(db, { mustExist: true });
    const settlements = new Settlements(ledger).list();
    const entries = ledger.entries().filter((e) => e.kind === 'settlement');
    expect(ledger.verify().ok).toBe(true);
    ledger.close();
    expect(settlements.map((s) => s.interval)).toEqual([...intervals].sort((a, b) => a - b));
    expect(entries).toHaveLength(intervals.length);
    // Each settles the stored trades: the amounts are those of the pure settlement of them.
    for (const s of settlements) {
      const trades = stored.filter((t) => t.interval === s.interval);
      const metered: Record<string, number> = {};
      for (const t of trades) {
        metered[t.seller] = (metered[t.seller] ?? 0) + t.kWh;
        metered[t.buyer] = (metered[t.buyer] ?? 0) - t.kWh;
      }
      for (const p of Object.keys(metered)) metered[p] = Number((metered[p]! - 0.1).toFixed(6));
      const asSettled = trades.map((t) => ({
        interval: t.interval,
        seller: t.seller,
        buyer: t.buyer,
        kWh: t.kWh,
        pricePerKWh: t.pricePerKWh,
      }));
      const expected = settleInterval(s.interval, asSettled, metered, SETTLEMENT_CONFIG).amounts;
      for (const [party, amount] of Object.entries(expected)) expect(s.amounts[party]).toBeCloseTo(amount, 9);
    }
  }, 600_000);
});
