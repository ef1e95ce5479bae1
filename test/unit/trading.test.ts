import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageSolver } from '../../src/trading/local.js';
import { runMarket } from '../../src/trading/market.js';
import { compileModel, loadTradeModel, TradeInputSchema } from '../../src/trading/model.js';
import { solveReference } from '../../src/trading/reference/interior-point.js';
import { runCli, tempDir } from '../helpers/net.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'trading');
const tmp = tempDir();
afterAll(() => tmp.remove());
const model = (input: unknown) => compileModel(TradeInputSchema.parse(input));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-9, Math.abs(b));

/** Two MGs: A generates (cost 0.01g² + 0.1g), B only consumes 10 kWh, through a lossless link (0.001e²). */
const twoMgs = {
  agents: [
    { id: 'A', demand: 0, generators: [{ a: 0.01, b: 0.1, max: 100 }] },
    { id: 'B', demand: 10 },
  ],
  links: [{ from: 'A', to: 'B', capacity: 100, a: 0.001, b: 0, efficiency: 1 }],
};

describe('trading model', () => {
  it('solves a hand case: prices are the marginal costs at each end of the link', () => {
    // g = e = 10; cost 0.01·100 + 0.1·10 + 0.001·100 = 2.1; λ_A = 2·0.01·10 + 0.1 = 0.3; λ_B = λ_A + 2·0.001·10 = 0.32.
    const r = runMarket(model(twoMgs));
    expect(r.converged).toBe(true);
    expect(r.cost).toBeCloseTo(2.1, 3);
    expect(r.prices.A![0]).toBeCloseTo(0.3, 4);
    expect(r.prices.B![0]).toBeCloseTo(0.32, 4);
    expect(r.flows).toEqual([{ from: 'A', to: 'B', energy: [expect.closeTo(10, 2)] }]);
    const ref = solveReference(model(twoMgs));
    expect(ref.cost).toBeCloseTo(2.1, 8);
    expect(ref.prices.B![0]).toBeCloseTo(0.32, 8);
  });

  it('a lossy link: B receives η·e, so A sends demand/η and B pays λ_A/η plus the link cost', () => {
    const lossy = { ...twoMgs, links: [{ ...twoMgs.links[0], efficiency: 0.9, a: 0.001 }] };
    const r = runMarket(model(lossy));
    const e = 10 / 0.9;
    expect(r.flows[0]!.energy[0]).toBeCloseTo(e, 2);
    const lambdaA = 2 * 0.01 * e + 0.1;
    expect(r.prices.A![0]).toBeCloseTo(lambdaA, 4);
    expect(r.prices.B![0]).toBeCloseTo((lambdaA + 2 * 0.001 * e) / 0.9, 4);
  });

  it('stores cheap energy for an expensive slot, within its limits', () => {
    // Two slots; grid import costs 0.1 then 0.5. A 10 kWh battery (η = 1) shifts energy to slot 2.
    const s = model({
      horizon: 2,
      agents: [
        {
          id: 'A',
          demand: [5, 5],
          storage: [{ capacityKWh: 10, socKWh: 0, maxChargeKW: 4, maxDischargeKW: 4, efficiency: 1, a: 0.001 }],
          grid: { import: { a: 0.001, b: [0.1, 0.5], max: 100 } },
        },
      ],
    });
    const r = runMarket(s);
    const ref = solveReference(s);
    expect(r.converged).toBe(true);
    expect(rel(r.cost, ref.cost)).toBeLessThan(1e-4);
    expect(r.agents.A!.charge[0]![0]).toBeCloseTo(4, 2); // charge at the rate limit in the cheap slot
    expect(r.agents.A!.discharge[0]![1]).toBeCloseTo(4, 2);
    expect(r.agents.A!.soc[0]).toEqual([0, expect.closeTo(4, 2), expect.closeTo(0, 2)]);
  });

  it('the storage best response respects every soc bound and the end condition', () => {
    const unit = {
      capacityKWh: 5,
      socKWh: 2,
      maxChargeKWh: 3,
      maxDischargeKWh: 3,
      efficiency: 0.9,
      a: 0.01,
      socEndMinKWh: 4,
    };
    const solver = new StorageSolver(unit, 4);
    const prices = [-0.5, -0.5, 0.8, 0.8]; // paid to charge first, then rewarded to discharge
    const s = solver.solve(prices);
    for (const soc of s.soc) {
      expect(soc).toBeGreaterThanOrEqual(-1e-9);
      expect(soc).toBeLessThanOrEqual(5 + 1e-9);
    }
    expect(s.soc[4]).toBeGreaterThanOrEqual(4 - 1e-9);
  });

  for (const name of ['trade-4mg', 'trade-5mg-24h-storage']) {
    it(`${name}: the distributed result equals the independently computed optimum, prices are its duals`, async () => {
      const m = loadTradeModel(join(FIXTURES, `${name}.json`));
      const published = (await import(join(FIXTURES, `${name}.optimum.json`), { with: { type: 'json' } })).default as {
        optimalCost: number;
        prices: Record<string, number[]>;
      };
      const r = runMarket(m);
      const ref = solveReference(m);
      expect(r.converged).toBe(true);
      expect(rel(ref.cost, published.optimalCost)).toBeLessThan(1e-7);
      expect(rel(r.cost, published.optimalCost)).toBeLessThan(1e-4);
      for (const [id, prices] of Object.entries(published.prices)) {
        prices.forEach((p, t) => {
          expect(rel(ref.prices[id]![t]!, p)).toBeLessThan(1e-5);
          expect(rel(r.prices[id]![t]!, p)).toBeLessThan(1e-3);
        });
      }
      expect(r.maxImbalanceKWh).toBeLessThan(1e-3 * 40);
    });
  }

  it('KKT at the result: every dispatched generator runs at the price (2a·g + b = λ) or at a bound', () => {
    const m = loadTradeModel(join(FIXTURES, 'trade-4mg.json'));
    const r = runMarket(m, { tolerance: 0.01 });
    m.agents.forEach((agent) => {
      agent.generators.forEach((g, k) => {
        const out = r.agents[agent.id]!.generation[k]![0]!;
        const marginal = 2 * g.a[0]! * out + g.b[0]!;
        const price = r.prices[agent.id]![0]!;
        if (out > 1e-6 && out < g.max[0]! - 1e-6) expect(marginal).toBeCloseTo(price, 6);
        else if (out <= 1e-6) expect(marginal).toBeGreaterThanOrEqual(price - 1e-6);
        else expect(marginal).toBeLessThanOrEqual(price + 1e-6);
      });
    });
  });

  it('plain subgradient (Algorithm 1) reaches the same optimum, in many more rounds', () => {
    const m = loadTradeModel(join(FIXTURES, 'trade-4mg.json'));
    // At the default stop (imbalance ≤ 1e-4 × mean demand) a slow method's cost is off by ~1e-4; compare 10× tighter.
    const fast = runMarket(m, { tolerance: 0.1 });
    const plain = runMarket(m, { algorithm: 'subgradient', tolerance: 0.1 });
    expect(plain.converged).toBe(true);
    expect(rel(plain.cost, fast.cost)).toBeLessThan(1e-4);
    expect(plain.iterations).toBeGreaterThan(5 * fast.iterations);
  });

  it('converges with lost and delayed messages (traders keep the last price they had)', () => {
    const m = loadTradeModel(join(FIXTURES, 'trade-4mg.json'));
    const ref = solveReference(m);
    const r = runMarket(m, { loss: 0.2, maxDelayRounds: 3, seed: 7, tolerance: 0.1 });
    expect(r.converged).toBe(true);
    expect(rel(r.cost, ref.cost)).toBeLessThan(1e-4);
  });

  it('messages per round are one per neighbour per trader', () => {
    const m = loadTradeModel(join(FIXTURES, 'trade-4mg.json'));
    const r = runMarket(m, { maxIterations: 10 });
    const neighbourPairs = m.agents.reduce((s, a) => s + a.neighbours.length, 0);
    expect(r.messages).toBe(10 * neighbourPairs);
  });

  it('every trader is better off trading than alone (individual rationality)', () => {
    const r = runMarket(loadTradeModel(join(FIXTURES, 'trade-4mg.json')));
    for (const [id, inc] of Object.entries(r.incentives)) {
      expect(inc.costWithTrading, id).toBeLessThanOrEqual((inc.costAlone ?? Number.POSITIVE_INFINITY) + 1e-6);
    }
    expect(r.incentives.mg1!.costAlone).toBeNull(); // its demand exceeds what it has alone
  });

  it('an instance that cannot be balanced ends with converged: false and names the agents', () => {
    // A needs 50; it can import 30 and buy from B, but B can only spare 10 of its link's 30.
    const r = runMarket(
      model({
        agents: [
          { id: 'A', demand: 50, grid: { import: { a: 0.001, b: 0.3, max: 30 } } },
          { id: 'B', demand: 0, generators: [{ a: 0.01, b: 0.1, max: 10 }] },
        ],
        links: [{ from: 'B', to: 'A', capacity: 30, a: 0.001, b: 0, efficiency: 1 }],
      }),
      { maxIterations: 3000 },
    );
    expect(r.converged).toBe(false);
    expect(r.unbalancedAgents).toContain('A');
  });
});

describe('p2p-edge trade (CLI)', () => {
  const write = (name: string, input: unknown) => {
    const file = join(tmp.dir, name);
    writeFileSync(file, JSON.stringify(input));
    return file;
  };
  const cases: [string, unknown, RegExp][] = [
    ['negative capacity', { ...twoMgs, links: [{ ...twoMgs.links[0], capacity: -1 }] }, /links\[0\]\.capacity/],
    [
      'unknown agent in a link',
      { ...twoMgs, links: [{ ...twoMgs.links[0], to: 'Z' }] },
      /links\[0\]\.to: unknown agent "Z"/,
    ],
    [
      'mismatched horizon',
      { horizon: 2, agents: [{ id: 'A', demand: [1, 2, 3] }] },
      /agents\[0\]\.demand: expected 2 values/,
    ],
    [
      'demand that cannot be met',
      { agents: [{ id: 'A', demand: 5, generators: [{ a: 0.1, b: 0, max: 1 }] }] },
      /agents\[0\]\.demand: demand 5 kWh cannot be met/,
    ],
  ];
  for (const [what, input, message] of cases) {
    it(`${what}: exit 2 naming the field`, async () => {
      const file = write(`${what.replace(/\W/g, '-')}.json`, input);
      const r = await runCli(['trade', '--input', file, '--json']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    });
  }

  it('prints the contract JSON, and --max-iterations ends with converged: false and exit 0', async () => {
    const file = write('two.json', twoMgs);
    const ok = await runCli(['trade', '--input', file, '--json']);
    expect(ok.code).toBe(0);
    const out = JSON.parse(ok.stdout);
    expect(Object.keys(out)).toEqual(
      expect.arrayContaining([
        'converged',
        'iterations',
        'messages',
        'bytes',
        'cost',
        'prices',
        'agents',
        'flows',
        'maxImbalanceKWh',
      ]),
    );
    expect(out.agents.B).toEqual({
      generation: [],
      curtailment: [],
      charge: [],
      discharge: [],
      soc: [],
      import: [0],
      export: [0],
    });
    const capped = await runCli(['trade', '--input', file, '--json', '--max-iterations', '3']);
    expect(capped.code).toBe(0);
    expect(JSON.parse(capped.stdout)).toMatchObject({ converged: false, iterations: 3 });
    expect((await runCli(['trade', '--input', file, '--algorithm', 'magic'])).code).toBe(2);
  });
});

describe('a trader with nothing to balance', () => {
  it('keeps its price still (no momentum drift on a flat dual) and settles', () => {
    const r = runMarket(
      compileModel(
        TradeInputSchema.parse({
          agents: [
            {
              id: 'A',
              demand: 0,
              generators: [{ a: 0.002, b: 0.09, max: 15 }],
              grid: { export: { a: 0.0005, b: 0.04, max: 200 } },
            },
            { id: 'B', demand: 0, grid: { export: { a: 0.0005, b: 0.04, max: 200 } } },
          ],
          links: [{ from: 'A', to: 'B', capacity: 10, a: 0.001, b: 0.005, efficiency: 0.98 }],
        }),
      ),
      { maxIterations: 2000 },
    );
    expect(r.converged).toBe(true);
    expect(r.iterations).toBeLessThan(200);
  });
});
