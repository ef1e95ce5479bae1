/**
 * npm run bench:pushsum — rounds for push-sum gossip to reach relative error ε at every node, for n
 * nodes with random peers, without and with 30 % message loss (sender-accounted), against the
 * O(log n + log 1/ε) bound of Kempe, Dobra & Gehrke (2003), shown as log2 n + log2 1/ε.
 * Target (issue: control): 100 nodes reach 1e-3 in ≤ 30 rounds. Writes bench/results/pushsum.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gossipUntil, PushSumNode } from '../src/control/pushsum/push-sum.js';
import { seededRandom } from '../src/core/prng.js';

const epsilon = 1e-3;
const rows: Record<string, unknown>[] = [];
for (const n of [100, 1000, 10_000]) {
  for (const loss of [0, 0.3]) {
    const random = seededRandom(n + Math.round(loss * 100));
    const values = Array.from({ length: n }, () => random() * 100);
    const truth = values.reduce((a, b) => a + b, 0) / n;
    const nodes = values.map((v, i) => new PushSumNode(`n${i}`, [v]));
    const t0 = performance.now();
    const r = gossipUntil(nodes, [truth], { epsilon, loss, random, maxRounds: 500 });
    rows.push({
      nodes: n,
      loss,
      rounds: r.rounds,
      messages: r.messages,
      maxRelativeError: Number(r.maxRelativeError.toExponential(2)),
      boundLog2: Number((Math.log2(n) + Math.log2(1 / epsilon)).toFixed(1)),
      roundsOverBound: Number((r.rounds / (Math.log2(n) + Math.log2(1 / epsilon))).toFixed(2)),
      wallS: Number(((performance.now() - t0) / 1000).toFixed(2)),
    });
  }
}
console.table(rows);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'pushsum.json'),
  `${JSON.stringify({ date: new Date().toISOString(), epsilon, rows }, null, 2)}\n`,
);
