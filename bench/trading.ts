/**
 * npm run bench:trading — the distributed market on random instances, both algorithms side by side,
 * against the centralised interior-point reference. Prints a table; writes bench/results/trading.json.
 * Targets (issue: trading): gap ≤ 1e-4, imbalance ≤ 1e-3 kWh, price error ≤ 0.1 %, the default ≥ 10×
 * fewer iterations than plain subgradient, 1000 traders well under a minute on one core. Then the
 * plain method with the textbook step α0/√k (K = 1) on the contract example trade-4mg, within 50 000 rounds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMarket } from '../src/trading/market.js';
import { compileModel, loadTradeModel, TradeInputSchema } from '../src/trading/model.js';
import { randomTradeInstance } from '../src/trading/random-instance.js';
import { solveReference } from '../src/trading/reference/interior-point.js';
import type { TradingAlgorithm } from '../src/trading/trader.js';

const cases = [
  { name: '5 traders', traders: 5, horizon: 1 },
  { name: '20 traders', traders: 20, horizon: 1 },
  { name: '100 traders', traders: 100, horizon: 1 },
  { name: '1000 traders', traders: 1000, horizon: 1 },
  { name: '10 traders × 24 slots, storage', traders: 10, horizon: 24, storage: true },
];
const quick = process.argv.includes('--quick');
const rows: Record<string, unknown>[] = [];
for (const c of quick ? cases.slice(0, 2) : cases) {
  const model = compileModel(
    TradeInputSchema.parse(
      randomTradeInstance(c.traders, { horizon: c.horizon, seed: 42, storage: c.storage ?? false }),
    ),
  );
  const t0 = performance.now();
  const ref = solveReference(model);
  const refMs = performance.now() - t0;
  const variants: { label: string; algorithm: TradingAlgorithm; subgradientDecayRounds?: number }[] = [
    { label: 'accelerated (default)', algorithm: 'accelerated' },
    { label: 'subgradient K=10 (default)', algorithm: 'subgradient' },
    { label: 'subgradient K=200 (tuned)', algorithm: 'subgradient', subgradientDecayRounds: 200 },
  ];
  for (const { label, algorithm, subgradientDecayRounds } of variants) {
    const start = performance.now();
    const r = runMarket(model, { algorithm, ...(subgradientDecayRounds ? { subgradientDecayRounds } : {}) }, false);
    const wallMs = performance.now() - start;
    let priceError = 0;
    for (const [id, prices] of Object.entries(ref.prices)) {
      prices.forEach((p, t) => {
        if (Math.abs(p) > 1e-6) priceError = Math.max(priceError, Math.abs(r.prices[id]![t]! - p) / Math.abs(p));
      });
    }
    rows.push({
      instance: c.name,
      algorithm: label,
      converged: r.converged,
      iterations: r.iterations,
      messages: r.messages,
      messagesPerTraderRound: Number((r.messages / Math.max(1, r.iterations) / c.traders).toFixed(2)),
      bytes: r.bytes,
      wallS: Number((wallMs / 1000).toFixed(2)),
      costGap: Number((Math.abs(r.cost - ref.cost) / Math.abs(ref.cost)).toExponential(2)),
      maxImbalanceKWh: Number(r.maxImbalanceKWh.toExponential(2)),
      priceErrorPct: Number((100 * priceError).toFixed(4)),
      referenceS: Number((refMs / 1000).toFixed(2)),
    });
    console.error(`${c.name} ${label}: ${r.iterations} rounds, ${(wallMs / 1000).toFixed(2)} s`);
  }
}
for (const c of quick ? cases.slice(0, 2) : cases) {
  const of = (label: string) => rows.find((r) => r.instance === c.name && r.algorithm === label);
  const fast = of('accelerated (default)');
  for (const label of ['subgradient K=10 (default)', 'subgradient K=200 (tuned)']) {
    const plain = of(label);
    if (fast && plain)
      plain.roundsVsDefault = Number(((plain.iterations as number) / (fast.iterations as number)).toFixed(1));
  }
}
console.table(rows);

// The plain method's textbook step, α0/(1 + k)^0.51 ≈ α0/√k: too small too soon to get anywhere.
const TEXTBOOK_MAX_ROUNDS = 50_000;
const example = loadTradeModel(join(import.meta.dirname, '../test/fixtures/trading/trade-4mg.json'));
const textbookStart = performance.now();
const textbook = runMarket(
  example,
  { algorithm: 'subgradient', subgradientDecayRounds: 1, maxIterations: TEXTBOOK_MAX_ROUNDS },
  false,
);
const textbookStep = {
  instance: 'trade-4mg',
  algorithm: 'subgradient K=1 (textbook α0/√k)',
  converged: textbook.converged,
  iterations: textbook.iterations,
  maxImbalanceKWh: Number(textbook.maxImbalanceKWh.toExponential(2)),
  wallS: Number(((performance.now() - textbookStart) / 1000).toFixed(2)),
};
console.log(
  `textbook step (K=1) on trade-4mg: ${textbook.converged ? 'converged' : 'NOT converged'} after ${textbook.iterations} rounds (limit ${TEXTBOOK_MAX_ROUNDS}), max imbalance ${textbookStep.maxImbalanceKWh} kWh`,
);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'trading.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rows, textbookStep }, null, 2)}\n`,
);
console.log(`written ${join(out, 'trading.json')}`);
