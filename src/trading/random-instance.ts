import { seededRandom } from '../core/prng.js';
import type { TradeInput } from './model.js';

/**
 * Random feasible trading instances for benchmarks and tests: a ring of MGs plus random chords
 * (average degree about 4), a link each way on every edge, every MG with a generator and a grid
 * import large enough to cover its own demand (so every instance is feasible), some with demand
 * response, export and, over a horizon, storage.
 */
export function randomTradeInstance(
  traders: number,
  options: { horizon?: number; seed?: number; storage?: boolean } = {},
): TradeInput {
  const random = seededRandom(options.seed ?? traders);
  const T = options.horizon ?? 1;
  const u = (lo: number, hi: number) => lo + (hi - lo) * random();
  const round = (v: number, digits = 5) => Number(v.toFixed(digits));
  const series = (f: (t: number) => number) =>
    T === 1 ? round(f(0), 3) : Array.from({ length: T }, (_, t) => round(f(t), 3));
  const agents: TradeInput['agents'] = Array.from({ length: traders }, (_, i) => {
    const base = u(20, 60);
    const demand = series((t) => base * (1 + 0.3 * Math.sin((2 * Math.PI * (t - 6)) / 24)));
    const peak = base * 1.3;
    return {
      id: `mg${i + 1}`,
      demand,
      generators: [{ a: round(u(0.001, 0.01)), b: round(u(0.03, 0.15)), max: round(u(20, 80), 1) }],
      flexibleLoads:
        random() < 0.5 ? [{ a: round(u(0.005, 0.02)), b: round(u(0.12, 0.25)), max: round(u(2, 10), 1) }] : [],
      storage:
        options.storage && random() < 0.6
          ? [
              {
                capacityKWh: round(u(20, 100), 1),
                socKWh: round(u(5, 20), 1),
                maxChargeKW: round(u(5, 20), 1),
                maxDischargeKW: round(u(5, 20), 1),
                efficiency: round(u(0.9, 0.97), 3),
                a: round(u(0.0005, 0.002)),
              },
            ]
          : [],
      grid: {
        import: { a: round(u(0.001, 0.003)), b: round(u(0.25, 0.35)), max: round(peak + 1, 1) },
        ...(random() < 0.3 ? { export: { a: round(u(0.001, 0.003)), b: round(u(0.02, 0.05)), max: 30 } } : {}),
      },
    };
  });
  const edges = new Set<string>();
  const addEdge = (a: number, b: number) => {
    if (a !== b) edges.add(a < b ? `${a}-${b}` : `${b}-${a}`);
  };
  for (let i = 0; i < traders; i++) addEdge(i, (i + 1) % traders);
  for (let k = 0; k < traders; k++) addEdge(Math.floor(random() * traders), Math.floor(random() * traders));
  const links: TradeInput['links'] = [];
  for (const e of edges) {
    const [a, b] = e.split('-').map(Number) as [number, number];
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      links.push({
        from: `mg${from + 1}`,
        to: `mg${to + 1}`,
        capacity: round(u(10, 40), 1),
        a: round(u(0.0005, 0.002)),
        b: round(u(0, 0.01)),
        efficiency: round(u(0.95, 0.99), 3),
      });
    }
  }
  return { horizon: T, slotHours: 1, agents, links };
}
