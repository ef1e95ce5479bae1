import { describe, expect, it } from 'vitest';
import { cellMarketTrader, upperMarketTrader } from '../../src/trading/market-interval.js';
import { type AgentModel, compileModel, TradeInputSchema } from '../../src/trading/model.js';
import type { ProsumerOffer } from '../../src/trading/prosumers.js';

// The pipeline builds a trader's agent directly in per-slot form; the reference is the same trader
// written in the `trade` input format and compiled by the CLI's path (schema, then `compileModel`).
const ownFields = ({ index, linksIn, linksOut, neighbours, ...agent }: AgentModel) => agent;
const compiledFromFile = (agent: unknown, horizon: number, slotHours: number) =>
  ownFields(compileModel(TradeInputSchema.parse({ horizon, slotHours, agents: [agent] }), undefined, false).agents[0]!);

const T = 3;
const offers: ProsumerOffer[] = [
  { id: 'house-1', demand: [1.2, 1.1, 0.9], generators: [{ a: 0.002, b: 0, max: [2.5, 2.5, 2.5] }], flexibleLoads: [] },
  {
    id: 'house-2',
    demand: [0.7, 0.7, 0.7],
    generators: [],
    flexibleLoads: [{ a: 0.02, b: 0.1, max: [0.5, 0.5, 0.5] }],
  },
];
const neighbours = [
  { peer: 'mg-b', sendCapacityKWh: 30, receiveCapacityKWh: 20, a: 0.001, b: 0.005, efficiency: 0.98 },
];
const cell = {
  traderId: 'mg-a',
  horizon: T,
  slotHours: 0.25,
  offers,
  measuredDemandKWh: 4.2,
  generators: [{ a: 0.004, b: 0.05, maxKWh: 10 }],
  flexibleLoads: [{ a: 0.01, b: 0.2, maxKWh: 1 }],
  gridImport: { a: 0.001, b: 0.3, maxKWh: 50 },
  gridExport: { a: 0.001, b: 0.04, maxKWh: 40 },
  neighbours,
};

describe('the market interval of a trader, built from what its role has', () => {
  it("gives the cell's MG trader the agent its offers and config mean in the trade input format", () => {
    const { agent, owners } = cellMarketTrader({ ...cell, limits: { importKWh: 12, exportKWh: 8 } });
    const file = {
      id: 'mg-a',
      demand: [1.9, 1.8, 1.6],
      generators: [{ a: 0.004, b: 0.05, max: 10 }, ...offers[0]!.generators!],
      flexibleLoads: [{ a: 0.01, b: 0.2, max: 1 }, ...offers[1]!.flexibleLoads!],
      // The transformer's limits cap the grid exchange.
      grid: { import: { a: 0.001, b: 0.3, max: 12 }, export: { a: 0.001, b: 0.04, max: 8 } },
    };
    expect(agent).toEqual(compiledFromFile(file, T, 0.25));
    expect(owners).toEqual({ generators: ['mg-a', 'house-1'], flexibleLoads: ['mg-a', 'house-2'], storage: [] });
  });

  it('caps the links by the limits, both ways, and stands the measured demand in for missing offers', () => {
    const capped = cellMarketTrader({ ...cell, offers: [], limits: { importKWh: 12, exportKWh: 8 } });
    expect(capped.neighbours).toEqual([{ ...neighbours[0], sendCapacityKWh: 8, receiveCapacityKWh: 12 }]);
    expect(capped.agent.demand).toEqual([4.2, 4.2, 4.2]);
    const free = cellMarketTrader({ ...cell, offers: [] });
    expect(free.neighbours).toEqual(neighbours);
    expect(free.agent.gridImport!.max).toEqual([50, 50, 50]);
  });

  it("gives the coupling agent the cell's leftover as demand and the upstream connection", () => {
    const trader = upperMarketTrader({
      traderId: 'cell-a',
      slotHours: 0.25,
      leftoverKWh: [6.0000000001, -2],
      gridImport: { a: 0.0005, b: 0.3, maxKWh: 200 },
      neighbours,
      limits: { importKWh: Number.POSITIVE_INFINITY, exportKWh: 5 },
    });
    const file = { id: 'cell-a', demand: [6, -2], grid: { import: { a: 0.0005, b: 0.3, max: 200 } } };
    expect(trader.agent).toEqual(compiledFromFile(file, 2, 0.25));
    expect(trader.horizon).toBe(2);
    expect(trader.neighbours).toEqual([{ ...neighbours[0], sendCapacityKWh: 5 }]);
  });
});
