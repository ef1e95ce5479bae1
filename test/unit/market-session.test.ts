import { describe, expect, it } from 'vitest';
import { warmStart } from '../../src/agent/roles/session-runner.js';
import { sessionInstance } from '../../src/trading/market-interval.js';
import { compileModel, TradeInputSchema } from '../../src/trading/model.js';
import { solveReference } from '../../src/trading/reference/interior-point.js';
import { localTradeModel, MarketSession, rolledPrices, SILENT_ROUNDS_GONE } from '../../src/trading/session.js';

// Two MG traders: A has a cheap generator, B only an expensive grid import; a link each way.
const T = 2;
const agentA = compileModel(
  TradeInputSchema.parse({
    horizon: T,
    agents: [{ id: 'A', demand: [10, 12], generators: [{ a: 0.002, b: 0.05, max: 60 }] }],
  }),
  undefined,
  false,
).agents[0]!;
const agentB = compileModel(
  TradeInputSchema.parse({
    horizon: T,
    agents: [{ id: 'B', demand: [20, 25], grid: { import: { a: 0.001, b: 0.3, max: 100 } } }],
  }),
  undefined,
  false,
).agents[0]!;
const link = { a: 0.001, b: 0.005, efficiency: 0.98 };
const session = (own: typeof agentA, peer: string) =>
  new MarketSession(
    's1',
    localTradeModel(own, [{ peer, sendCapacityKWh: 30, receiveCapacityKWh: 30, ...link }], T, 1),
    'accelerated',
    2000,
  );

describe('MarketSession: one trader over a transport', () => {
  it('two traders exchanging only their messages reach the centralised optimum and settle together', () => {
    const a = session(agentA, 'B');
    const b = session(agentB, 'A');
    let rounds = 0;
    while (!(a.done() && b.done()) && rounds < 2000) {
      for (const m of a.outbox()) b.receive(m);
      for (const m of b.outbox()) a.receive(m);
      expect(a.roundComplete() && b.roundComplete()).toBe(true);
      a.step();
      b.step();
      rounds++;
    }
    expect(a.done() && b.done()).toBe(true);
    expect(a.status().settled && b.status().settled).toBe(true);
    const reference = solveReference(
      compileModel(
        TradeInputSchema.parse({
          horizon: T,
          agents: [
            { id: 'A', demand: [10, 12], generators: [{ a: 0.002, b: 0.05, max: 60 }] },
            { id: 'B', demand: [20, 25], grid: { import: { a: 0.001, b: 0.3, max: 100 } } },
          ],
          links: [
            { from: 'A', to: 'B', capacity: 30, ...link },
            { from: 'B', to: 'A', capacity: 30, ...link },
          ],
        }),
      ),
    );
    for (let t = 0; t < T; t++) {
      expect(a.status().prices[t]).toBeCloseTo(reference.prices.A![t]!, 4);
      expect(b.status().prices[t]).toBeCloseTo(reference.prices.B![t]!, 4);
    }
  });

  it('acts on a settled session as it is; one that ends without agreement trades nothing with its neighbours', () => {
    const a = session(agentA, 'B');
    const b = session(agentB, 'A');
    for (let round = 0; round < 3; round++) {
      for (const m of a.outbox()) b.receive(m);
      for (const m of b.outbox()) a.receive(m);
      a.step();
      b.step();
    }
    expect(a.status().settled || b.status().settled).toBe(false);
    for (const [trader, own] of [
      [a, agentA],
      [b, agentB],
    ] as const) {
      const outcome = trader.outcome();
      expect(outcome.sessionId).toBe('s1');
      expect(outcome.status().settled).toBe(true);
      expect(outcome.model.links).toHaveLength(0);
      // Its own devices and grid connection cover its own demand.
      const d = outcome.decision!;
      for (let t = 0; t < T; t++) {
        const supplied = (d.generation[0]?.[t] ?? 0) + d.gridImport[t]! - d.gridExport[t]!;
        expect(supplied).toBeCloseTo(own.demand[t]!, 2);
      }
    }
    // Settled: the session itself.
    const settledA = session(agentA, 'B');
    const settledB = session(agentB, 'A');
    while (!(settledA.done() && settledB.done())) {
      for (const m of settledA.outbox()) settledB.receive(m);
      for (const m of settledB.outbox()) settledA.receive(m);
      settledA.step();
      settledB.step();
    }
    expect(settledA.outcome()).toBe(settledA);
  });

  it('trades with its neighbours only where each one last said it had settled too', () => {
    const a = session(agentA, 'B');
    const b = session(agentB, 'A');
    while (!(a.done() && b.done())) {
      for (const m of a.outbox()) b.receive(m);
      for (const m of b.outbox()) a.receive(m);
      a.step();
      b.step();
    }
    expect(a.outcome()).toBe(a);
    expect(a.outcome().model.links.length).toBeGreaterThan(0);
    // B's newest message (one round on, at the deadline) says it has not settled: A keeps out of the link.
    const [last] = b.outbox();
    a.receive({ ...last!, round: last!.round + 1, settled: false });
    expect(a.status().settled).toBe(true);
    const alone = a.outcome();
    expect(alone.model.links).toHaveLength(0);
    expect(Math.max(...alone.decision!.imbalance.map(Math.abs))).toBeLessThan(1e-2);
  });

  it('a session without neighbours cut short by its deadline is cleared to the end: demand met, at the optimum', () => {
    const lone = new MarketSession('s1', localTradeModel(agentB, [], T, 1), 'accelerated', 2000, 0.1);
    lone.step();
    lone.step();
    expect(lone.status().settled).toBe(false);
    // As it stood at the deadline, part of the demand was unserved.
    expect(Math.max(...lone.decision!.imbalance.map(Math.abs))).toBeGreaterThan(1);
    const cleared = lone.outcome();
    expect(cleared.status().settled).toBe(true);
    const d = cleared.decision!;
    for (let t = 0; t < T; t++) expect(d.gridImport[t]! - d.gridExport[t]!).toBeCloseTo(agentB.demand[t]!, 2);
    const reference = solveReference(
      compileModel(
        TradeInputSchema.parse({
          horizon: T,
          agents: [{ id: 'B', demand: [20, 25], grid: { import: { a: 0.001, b: 0.3, max: 100 } } }],
        }),
      ),
    );
    const instance = sessionInstance(cleared, agentB, [])!;
    expect(Math.abs(instance.cost - reference.cost) / reference.cost).toBeLessThan(1e-3);
  });

  it('a neighbour that falls silent holds a trader back for no more than SILENT_ROUNDS_GONE rounds once it has settled', () => {
    const a = session(agentA, 'B');
    // B never answers: A balances alone (its generator covers its demand) and, after B's silence, finishes.
    let rounds = 0;
    while (!a.done() && rounds < 500) {
      a.step();
      rounds++;
    }
    expect(a.done()).toBe(true);
    expect(rounds).toBeGreaterThanOrEqual(SILENT_ROUNDS_GONE);
    expect(rounds).toBeLessThan(500);
  });

  it('ignores messages of another session and stale rounds', () => {
    const a = session(agentA, 'B');
    a.receive({ from: 'B', to: 'A', round: 0, price: [9, 9], session: 'other', settled: true });
    expect(a.roundComplete()).toBe(false);
    a.receive({ from: 'B', to: 'A', round: 3, price: [0.3, 0.3], session: 's1', settled: false });
    a.receive({ from: 'B', to: 'A', round: 1, price: [9, 9], session: 's1', settled: true });
    expect(a.roundComplete()).toBe(true);
    expect(a.done()).toBe(false);
  });
});

describe('warm start over a rolling horizon', () => {
  it('moves the last prices on by the intervals elapsed; new slots take the last price known', () => {
    expect(rolledPrices([1, 2, 3, 4], 0)).toEqual([1, 2, 3, 4]);
    expect(rolledPrices([1, 2, 3, 4], 1)).toEqual([2, 3, 4, 4]);
    expect(rolledPrices([1, 2, 3, 4], 6)).toEqual([4, 4, 4, 4]);
    expect(rolledPrices(undefined, 1)).toBeUndefined();
    expect(rolledPrices([1, 2], -1)).toBeUndefined();
    expect(warmStart({ session: '9000', reachedPrices: [1, 2, 3] }, '12000', 1500)).toEqual([3, 3, 3]);
    expect(warmStart(undefined, '12000', 1500)).toBeUndefined();
  });

  /** Two traders over a 4-slot horizon whose demand (an evening ramp) moves on by one slot per interval. */
  function roundsToSettle(interval: number, startPrices?: readonly number[][]) {
    const demandA = [5, 15, 25, 35, 45, 55, 65].slice(interval, interval + 4);
    const demandB = [10, 20, 30, 40, 50, 60, 70].slice(interval, interval + 4);
    const model = (id: string, demand: number[], extra: object, peer: string) =>
      localTradeModel(
        compileModel(TradeInputSchema.parse({ horizon: 4, agents: [{ id, demand, ...extra }] }), undefined, false)
          .agents[0]!,
        [{ peer, sendCapacityKWh: 30, receiveCapacityKWh: 30, ...link }],
        4,
        1,
      );
    const a = new MarketSession(
      `${interval}`,
      model('A', demandA, { generators: [{ a: 0.002, b: 0.05, max: 60 }] }, 'B'),
      'accelerated',
      2000,
      1,
      startPrices?.[0],
    );
    const b = new MarketSession(
      `${interval}`,
      model('B', demandB, { grid: { import: { a: 0.001, b: 0.3, max: 100 } } }, 'A'),
      'accelerated',
      2000,
      1,
      startPrices?.[1],
    );
    let rounds = 0;
    while (!(a.done() && b.done()) && rounds < 2000) {
      for (const m of a.outbox()) b.receive(m);
      for (const m of b.outbox()) a.receive(m);
      a.step();
      b.step();
      rounds++;
    }
    return { rounds, prices: [a.status().prices, b.status().prices] };
  }

  it('a session started from the last prices moved on by one slot settles in fewer rounds than one started from them as they were', () => {
    const first = roundsToSettle(0);
    const rolled = roundsToSettle(
      1,
      first.prices.map((p) => rolledPrices(p, 1)!),
    );
    const asTheyWere = roundsToSettle(1, first.prices);
    // About 40 rounds against about 70 from a cold start or the unmoved prices.
    expect(rolled.rounds).toBeLessThan(0.75 * asTheyWere.rounds);
    expect(rolled.rounds).toBeLessThan(0.75 * first.rounds);
  });
});
