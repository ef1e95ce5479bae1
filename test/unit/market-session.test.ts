import { describe, expect, it } from 'vitest';
import { compileModel, TradeInputSchema } from '../../src/trading/model.js';
import { solveReference } from '../../src/trading/reference/interior-point.js';
import { localTradeModel, MarketSession, SILENT_ROUNDS_GONE } from '../../src/trading/session.js';

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
