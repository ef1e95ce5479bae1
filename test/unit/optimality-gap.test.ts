import { describe, expect, it } from 'vitest';
import { tradingGapKpi } from '../../src/bench/kpi.js';
import { sessionInstance } from '../../src/trading/market-interval.js';
import { perSlotAgent } from '../../src/trading/model.js';
import { COST_SCALE_FLOOR, optimalityGap } from '../../src/trading/optimality-gap.js';
import { localTradeModel, MarketSession, type NeighbourLink } from '../../src/trading/session.js';

// Three MG traders in a line A – B – C: A has a cheap generator, B a dear grid import, C export only.
const T = 2;
const agents = {
  A: { id: 'A', demand: [10, 12], generators: [{ a: 0.002, b: 0.05, max: 60 }] },
  B: { id: 'B', demand: [20, 25], grid: { import: { a: 0.001, b: 0.3, max: 100 } } },
  C: { id: 'C', demand: [-8, -4], grid: { export: { a: 0.002, b: 0.02, max: 50 } } },
};
const link = { a: 0.001, b: 0.005, efficiency: 0.98 };
const both = (peer: string, cap = 30): NeighbourLink => ({
  peer,
  sendCapacityKWh: cap,
  receiveCapacityKWh: cap,
  ...link,
});
const neighbours: Record<string, NeighbourLink[]> = {
  A: [both('B')],
  B: [both('A'), both('C', 5)],
  C: [both('B')],
};

function runSessions(maxRounds: number) {
  const sessions = Object.entries(agents).map(([id, agent]) => {
    const compiled = perSlotAgent(agent, T, 1);
    return {
      id,
      agent: compiled,
      session: new MarketSession('s1', localTradeModel(compiled, neighbours[id]!, T, 1), 'accelerated', maxRounds),
    };
  });
  for (let round = 0; round < maxRounds && !sessions.every((s) => s.session.done()); round++) {
    const messages = sessions.flatMap((s) => s.session.outbox());
    for (const m of messages) sessions.find((s) => s.id === m.to)!.session.receive(m);
    for (const s of sessions) s.session.step();
  }
  return sessions.map((s) => sessionInstance(s.session, s.agent, neighbours[s.id]!)!);
}

describe('optimality gap of a distributed market session', () => {
  it('rebuilds the whole instance from the traders and finds the settled result at the optimum', () => {
    const gap = optimalityGap(runSessions(3000))!;
    expect(gap.traders).toBe(3);
    expect(gap.relativeGap).toBeLessThan(1e-4);
    expect(gap.optimumCost).toBeGreaterThan(0);
  });

  it('solves the same instance from what the status page shows (JSON drops absent devices)', () => {
    const instances = runSessions(3000);
    const shown = JSON.parse(JSON.stringify(instances)) as typeof instances;
    expect(shown[0]!.agent).not.toHaveProperty('gridImport');
    expect(optimalityGap(shown)!.optimumCost).toBe(optimalityGap(instances)!.optimumCost);
  });

  it('agrees on the smaller capacity when the two ends of a link allow different amounts', () => {
    // B allows 5 kWh each way with C, C's own configuration 30: C's surplus of 8 kWh reaches B only in part.
    // Were each end to clip the link to its own figure, C would count 8 kWh sent where B takes 5 (a gap of 1.3 %).
    expect(optimalityGap(runSessions(3000))!.relativeGap).toBeLessThan(1e-4);
  });

  it('measures a session that trades next to nothing against a thousandth of a currency unit', () => {
    // 1e-6 kWh to import at 0.1 per kWh: the optimum costs 1e-7. A trader that leaves it unbought is
    // 1e-7 off: all of its optimum, but a ten-thousandth of the floor.
    const tiny = {
      session: 'tiny',
      horizon: 1,
      slotHours: 0.25,
      agent: perSlotAgent({ id: 'A', demand: [1e-6], grid: { import: { a: 0.01, b: 0.1, max: 1000 } } }, 1, 0.25),
      neighbours: [],
      cost: 0,
    };
    const gap = optimalityGap([tiny])!;
    expect(gap.optimumCost).toBeCloseTo(1e-7, 12);
    expect(gap.relativeGap).toBeCloseTo(1e-7 / COST_SCALE_FLOOR, 9);
    // On a session that costs 110 (100 kWh), the same 1e-7 is measured against the optimum itself.
    const large = { ...tiny, agent: { ...tiny.agent, demand: [100] } };
    const optimum = optimalityGap([large])!.optimumCost;
    expect(optimum).toBeCloseTo(110, 6);
    expect(optimalityGap([{ ...large, cost: optimum - 1e-7 }])!.relativeGap).toBeCloseTo(1e-7 / optimum, 9);
  });

  it('reports a gap when the traders stop before they agree', () => {
    const gap = optimalityGap(runSessions(3))!;
    expect(gap.relativeGap).toBeGreaterThan(1e-3);
  });

  it('leaves out a session with a trader missing, and counts the intervals within the target', () => {
    const settled = runSessions(3000);
    expect(optimalityGap(settled.filter((i) => i.agent.id !== 'C'))).toBeUndefined();
    const early = runSessions(3).map((i) => ({ ...i, session: 's0' }));
    const kpi = tradingGapKpi([...settled, ...early, settled[0]!]);
    expect(kpi.intervals).toBe(2);
    expect(kpi.withinTarget).toBe(1);
    expect(kpi.worstRelativeGap).toBeGreaterThan(1e-3);
    expect(kpi.misses).toEqual([{ session: 's0', relativeGap: kpi.worstRelativeGap }]);
  });
});
