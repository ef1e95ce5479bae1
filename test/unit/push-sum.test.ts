import { describe, expect, it } from 'vitest';
import { gossipUntil, PushSumNode } from '../../src/control/pushsum/push-sum.js';
import { seededRandom } from '../../src/core/prng.js';

const nodes = (values: number[]) => values.map((v, i) => new PushSumNode(`n${i}`, [v, 1]));
const average = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const totalMass = (ns: PushSumNode[]) =>
  ns.reduce((acc, n) => ({ s: acc.s + n.mass().s[0]!, w: acc.w + n.mass().w }), { s: 0, w: 0 });

describe('push-sum gossip (Kempe, Dobra & Gehrke 2003)', () => {
  const values = Array.from({ length: 100 }, (_, i) => (i * 37) % 101);

  it('every node converges to the exact average', () => {
    const ns = nodes(values);
    const r = gossipUntil(ns, [average(values), 1], { epsilon: 1e-6, random: seededRandom(3), maxRounds: 500 });
    expect(r.maxRelativeError).toBeLessThanOrEqual(1e-6);
    for (const n of ns) expect(n.estimate()[0]).toBeCloseTo(average(values), 4);
  });

  it('100 nodes reach 1e-3 relative error in at most 30 rounds (the issue target; bound O(log n + log 1/ε))', () => {
    const r = gossipUntil(nodes(values), [average(values), 1], { epsilon: 1e-3, random: seededRandom(5) });
    expect(r.rounds).toBeLessThanOrEqual(30);
  });

  it('conserves mass exactly with 30 % message loss when senders take lost mass back, and still converges', () => {
    const ns = nodes(values);
    const before = totalMass(ns);
    const r = gossipUntil(ns, [average(values), 1], {
      epsilon: 1e-3,
      loss: 0.3,
      random: seededRandom(9),
      maxRounds: 200,
    });
    const after = totalMass(ns);
    expect(after.s).toBeCloseTo(before.s, 9);
    expect(after.w).toBeCloseTo(before.w, 9);
    expect(r.maxRelativeError).toBeLessThanOrEqual(1e-3);
  });

  it('loses mass (and the average) when lost messages are not accounted for', () => {
    const ns = nodes(values);
    const random = seededRandom(11);
    for (let round = 0; round < 40; round++) {
      for (const n of ns) {
        const m = n.tick(
          ns.map((x) => x.id),
          random,
        );
        if (m && random() >= 0.3) ns.find((x) => x.id === m.to)!.receive(m);
      }
    }
    expect(totalMass(ns).w).toBeLessThan(values.length * 0.5);
  });

  it('a node that leaves hands over its mass; one that joins adds its own', () => {
    const ns = nodes([10, 20, 30, 40]);
    const leaving = ns.pop()!;
    ns[0]!.receive(leaving.leave('n0'));
    gossipUntil(ns, [25, 1], { epsilon: 1e-9, random: seededRandom(1), maxRounds: 300 });
    expect(ns[1]!.estimate()[0]).toBeCloseTo(25, 6); // the average still counts the leaver's value
    const joined = [...ns, new PushSumNode('n9', [125, 1])];
    gossipUntil(joined, [(25 * 4 + 125) / 5, 1], { epsilon: 1e-9, random: seededRandom(2), maxRounds: 300 });
    expect(joined[0]!.estimate()[0]).toBeCloseTo(45, 6);
  });
});
