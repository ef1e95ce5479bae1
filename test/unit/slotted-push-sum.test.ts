import { describe, expect, it } from 'vitest';
import { RunningSumPushSum } from '../../src/control/pushsum/running-sum.js';
import { SlottedPushSum } from '../../src/control/pushsum/slotted.js';
import { seededRandom } from '../../src/core/prng.js';

const N = 8;
const ROUND_MS = 100;
const SLOT_MS = 100 * ROUND_MS;
const values = Array.from({ length: N }, (_, i) => 10 * (i + 1));

/** N nodes gossiping each round with 10 % loss; node 3 is killed at `killAtMs` and restarts at once. */
function run(kind: 'slotted' | 'plain', killAtMs: number, endMs: number) {
  const random = seededRandom(7);
  const make = (i: number, epoch: number, restartedAtMs?: number) => {
    const node =
      kind === 'slotted'
        ? new SlottedPushSum(`n${i}`, epoch, SLOT_MS, restartedAtMs)
        : new RunningSumPushSum(`n${i}`, epoch);
    node.addValue(`n${i}`, values[i]!);
    return node;
  };
  const nodes = values.map((_, i) => make(i, 1));
  const ids = nodes.map((n) => n.id);
  for (let now = 0; now < endMs; now += ROUND_MS) {
    // It held mass; it comes back with its value again (and, slotted, says it restarted).
    if (now === killAtMs) nodes[3] = make(3, 2, now);
    for (const node of nodes) {
      const m =
        node instanceof SlottedPushSum ? node.tick(ids, random, now) : (node as RunningSumPushSum).tick(ids, random);
      if (!m || random() < 0.1) continue;
      const to = nodes[ids.indexOf(m.to)]!;
      if (to instanceof SlottedPushSum) to.receive(m as Parameters<SlottedPushSum['receive']>[0], now);
      else to.receive(m);
    }
  }
  // Each node's estimate of every value: average × N.
  const worst = Math.max(
    ...nodes.flatMap((node) => {
      const est = node instanceof SlottedPushSum ? node.estimate(endMs) : (node as RunningSumPushSum).estimate();
      return values.map((v, i) => Math.abs((est.get(`n${i}`) ?? 0) * N - v) / v);
    }),
  );
  return worst;
}

describe('push-sum started afresh each slot', () => {
  it('estimates every value with lost messages: to 1e-3 from an instance a slot and a half old, 3e-2 right after a slot starts', () => {
    expect(run('slotted', -1, 2.5 * SLOT_MS)).toBeLessThan(1e-3);
    expect(run('slotted', -1, 3 * SLOT_MS)).toBeLessThan(3e-2);
  });

  it('heals within two slots after a node dies holding mass and comes back, where running sums stay wrong', () => {
    const killAt = 2 * SLOT_MS + 3 * ROUND_MS;
    expect(run('plain', killAt, 6 * SLOT_MS)).toBeGreaterThan(0.05);
    expect(run('slotted', killAt, killAt + 2 * SLOT_MS + 20 * ROUND_MS)).toBeLessThan(1e-3);
  });
});
