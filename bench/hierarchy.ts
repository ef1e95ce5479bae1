/**
 * npm run bench:hierarchy — hierarchical balancing (`balanceHierarchy`: each cell's market first, then
 * the cells' leftovers traded one level up, by the distributed algorithm) against the whole
 * multi-cell instance solved at once (`jointInstance`: every cell's traders, the links between levels
 * and between cells in one instance, solved by the interior-point reference). The gap is what deciding
 * level by level costs on top of the least any schedule of the whole system could cost. Prints a table;
 * writes bench/results/hierarchy.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BalancingLevel,
  balanceHierarchy,
  hierarchyCost,
  jointInstance,
  type LevelResult,
} from '../src/trading/hierarchy.js';
import { compileModel, type TradeInput } from '../src/trading/model.js';
import { randomTradeInstance } from '../src/trading/random-instance.js';
import { solveReference } from '../src/trading/reference/interior-point.js';

const grid = { import: { a: 0.001, b: 0.3, max: 200 }, export: { a: 0.001, b: 0.04, max: 200 } };
const upstream = { import: { a: 0.001, b: 0.3, max: 2000 }, export: { a: 0.001, b: 0.04, max: 2000 } };
const mvLink = { capacity: 50, a: 0.0005, b: 0.005, efficiency: 0.98 };
const bothWays = (a: string, b: string) => [
  { from: a, to: b, ...mvLink },
  { from: b, to: a, ...mvLink },
];

/** `cells` random cells (`randomTradeInstance`, one seed each) on a ring of MV links. */
function randomCells(cells: number, traders: number, options: { horizon?: number; storage?: boolean }): BalancingLevel {
  const children = Array.from({ length: cells }, (_, c): BalancingLevel => {
    const market: TradeInput = randomTradeInstance(traders, { ...options, seed: 42 + c });
    const id = (mg: string) => `c${c + 1}-${mg}`;
    return {
      id: `cell-${c + 1}`,
      market: {
        ...market,
        agents: market.agents.map((a) => ({ ...a, id: id(a.id) })),
        links: market.links.map((l) => ({ ...l, from: id(l.from), to: id(l.to) })),
      },
    };
  });
  const links = children.flatMap((c, i) => (cells > 2 || i === 0 ? bothWays(c.id, children[(i + 1) % cells]!.id) : []));
  return { id: 'mv', children, links, upstream };
}

const cases: { name: string; top: BalancingLevel }[] = [
  {
    // test/unit/coupling-upward.test.ts: one trader per cell, nothing to decide inside a cell.
    name: '2 cells × 1 trader, no choice inside a cell',
    top: {
      id: 'mv',
      children: [
        { id: 'cell-a', market: { agents: [{ id: 'a1', demand: -4, grid }] } },
        { id: 'cell-b', market: { agents: [{ id: 'b1', demand: 6, grid }] } },
      ],
      links: bothWays('cell-a', 'cell-b'),
      upstream,
    },
  },
  {
    // test/unit/trading-hierarchy.test.ts: cell A balances itself and keeps a2's demand response.
    name: '2 cells, demand response in a long cell',
    top: {
      id: 'mv',
      children: [
        {
          id: 'cell-a',
          market: {
            agents: [
              { id: 'a1', demand: -25, grid },
              { id: 'a2', demand: 5, flexibleLoads: [{ a: 0.01, b: 0.2, max: 2 }], grid },
            ],
            links: [{ from: 'a1', to: 'a2', capacity: 40, a: 0.0005, b: 0, efficiency: 0.99 }],
          },
        },
        { id: 'cell-b', market: { agents: [{ id: 'b1', demand: 30, grid }] } },
      ],
      links: [{ from: 'cell-a', to: 'cell-b', capacity: 50, a: 0.0005, b: 0.005, efficiency: 0.98 }],
      upstream,
    },
  },
  { name: '4 cells × 5 traders, random', top: randomCells(4, 5, {}) },
  { name: '3 cells × 4 traders × 24 slots, storage', top: randomCells(3, 4, { horizon: 24, storage: true }) },
];

const count = (r: LevelResult): { traders: number; rounds: number } =>
  r.children.length === 0
    ? { traders: Object.keys(r.market.agents).length, rounds: r.market.iterations }
    : r.children
        .map(count)
        .reduce((s, c) => ({ traders: s.traders + c.traders, rounds: Math.max(s.rounds, c.rounds) }), {
          traders: 0,
          rounds: 0,
        });

const rows: Record<string, unknown>[] = [];
for (const { name, top } of cases) {
  const t0 = performance.now();
  const hierarchy = balanceHierarchy(top);
  const hierarchyS = (performance.now() - t0) / 1000;
  const model = compileModel(jointInstance(top));
  const t1 = performance.now();
  const optimum = solveReference(model);
  const centralisedS = (performance.now() - t1) / 1000;
  const cost = hierarchyCost(hierarchy);
  const inside = count(hierarchy);
  const converged = (r: LevelResult): boolean => r.market.converged && r.children.every(converged);
  rows.push({
    instance: name,
    cells: 'children' in top ? top.children.length : 1,
    traders: inside.traders,
    slots: model.horizon,
    converged: converged(hierarchy),
    roundsCellsPlusAbove: `${inside.rounds} + ${hierarchy.market.iterations}`,
    hierarchyCost: Number(cost.toFixed(4)),
    centralisedCost: Number(optimum.cost.toFixed(4)),
    gapPct: Number(((100 * (cost - optimum.cost)) / Math.abs(optimum.cost)).toFixed(3)),
    hierarchyS: Number(hierarchyS.toFixed(2)),
    centralisedS: Number(centralisedS.toFixed(2)),
  });
  console.error(`${name}: done`);
}
console.table(rows);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'hierarchy.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rows }, null, 2)}\n`,
);
console.log(`written ${join(out, 'hierarchy.json')}`);
