import { describe, expect, it } from 'vitest';
import { type RunningSumMessage, RunningSumPushSum } from '../../src/control/pushsum/running-sum.js';
import { seededRandom } from '../../src/core/prng.js';

function network(n: number) {
  const nodes = Array.from({ length: n }, (_, i) => new RunningSumPushSum(`a${i}`, 1));
  nodes.forEach((node, i) => {
    node.addValue(`a${i}`, i + 1);
    node.addValue('shared', 10 * i);
  });
  return nodes;
}

/** Rounds of gossip where each message may be lost, duplicated or held back a round. */
function run(
  nodes: RunningSumPushSum[],
  rounds: number,
  faults: { loss?: number; duplicate?: number; delay?: number },
  seed = 1,
) {
  const random = seededRandom(seed);
  const ids = nodes.map((n) => n.id);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let held: RunningSumMessage[] = [];
  for (let r = 0; r < rounds; r++) {
    const sent = nodes.map((n) => n.tick(ids, random)).filter((m): m is RunningSumMessage => m !== undefined);
    const deliver: RunningSumMessage[] = [...held];
    held = [];
    for (const m of sent) {
      if (random() < (faults.loss ?? 0)) continue;
      if (random() < (faults.delay ?? 0)) held.push(m);
      else deliver.push(m);
      if (random() < (faults.duplicate ?? 0)) deliver.push({ ...m });
    }
    for (const m of deliver) byId.get(m.to)!.receive(m);
  }
}

const maxError = (nodes: RunningSumPushSum[], truth: Record<string, number>) =>
  Math.max(
    ...nodes.flatMap((n) => {
      const e = n.estimate();
      return Object.entries(truth).map(([k, v]) => Math.abs((e.get(k) ?? 0) - v) / Math.abs(v));
    }),
  );

describe('running-sum push-sum (loss, duplicates and reordering without acknowledgements)', () => {
  const n = 20;
  const truth = { a3: 4 / n, shared: (10 * (n * (n - 1))) / 2 / n };

  it('reaches the exact average on a clean network', () => {
    const nodes = network(n);
    run(nodes, 60, {});
    expect(maxError(nodes, truth)).toBeLessThan(1e-6);
  });

  it('still reaches the exact average with 30 % of messages lost, 10 % duplicated and 20 % late (slower: lost mass waits for the next message on its link)', () => {
    const nodes = network(n);
    run(nodes, 500, { loss: 0.3, duplicate: 0.1, delay: 0.2 }, 7);
    expect(maxError(nodes, truth)).toBeLessThan(1e-3);
  });

  it('conserves mass: what the nodes hold plus what is in flight equals what they started with', () => {
    const nodes = network(8);
    run(nodes, 25, { loss: 0.4, duplicate: 0.2 }, 3);
    let w = 0;
    let s = 0;
    for (const node of nodes) {
      w += node.mass().w;
      s += node.mass().s.get('shared') ?? 0;
      for (const peer of nodes) {
        w += node.sentTo(peer.id).w - peer.receivedFrom(node.id).w;
        s += (node.sentTo(peer.id).s.get('shared') ?? 0) - (peer.receivedFrom(node.id).s.get('shared') ?? 0);
      }
    }
    expect(w).toBeCloseTo(8, 9);
    expect(s).toBeCloseTo(10 * 28, 9);
  });

  it('a late message adds nothing; the one after it carried its mass', () => {
    const a = new RunningSumPushSum('a', 1);
    const b = new RunningSumPushSum('b', 1);
    a.addValue('x', 4);
    const first = a.tick(['a', 'b'], () => 0)!;
    const second = a.tick(['a', 'b'], () => 0)!;
    expect(b.receive(second)).toBe(true);
    expect(b.receive(first)).toBe(false);
    expect(b.receive(second)).toBe(false);
    expect(b.mass().w).toBeCloseTo(1 + 0.5 + 0.25, 12);
    expect(b.mass().s.get('x')).toBeCloseTo(2 + 1, 12);
  });

  it('totals meant for an earlier epoch of the receiver are ignored until the sender hears the new one', () => {
    const a = new RunningSumPushSum('a', 1);
    const oldB = new RunningSumPushSum('b', 1);
    oldB.receive(a.tick(['b'], () => 0)!);
    a.receive(oldB.tick(['a'], () => 0)!); // a learns b's epoch 1
    const newB = new RunningSumPushSum('b', 2); // b restarted with nothing
    expect(newB.receive(a.tick(['b'], () => 0)!)).toBe(false);
    a.receive(newB.tick(['a'], () => 0)!); // a hears epoch 2 and starts new totals for it
    const wBefore = newB.mass().w;
    expect(newB.receive(a.tick(['b'], () => 0)!)).toBe(true);
    expect(newB.mass().w - wBefore).toBeCloseTo(a.mass().w, 12);
  });

  it('a sender that restarts with a new epoch is heard again from its first message', () => {
    const b = new RunningSumPushSum('b', 1);
    const before = new RunningSumPushSum('a', 1);
    before.addValue('x', 2);
    for (let i = 0; i < 3; i++) b.receive(before.tick(['b'], () => 0)!);
    const restarted = new RunningSumPushSum('a', 2);
    restarted.addValue('x', 2);
    const wBefore = b.mass().w;
    expect(b.receive(restarted.tick(['b'], () => 0)!)).toBe(true);
    expect(b.mass().w - wBefore).toBeCloseTo(0.5, 12);
  });

  it('an agent joining later brings its key and the estimates follow', () => {
    const nodes = network(10);
    run(nodes, 40, {});
    const late = new RunningSumPushSum('late', 1);
    late.addValue('late', 11);
    nodes.push(late);
    run(nodes, 80, {}, 5);
    expect(maxError(nodes, { late: 11 / 11 })).toBeLessThan(1e-6);
  });
});
