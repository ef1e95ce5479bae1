import { describe, expect, it } from 'vitest';
import { DualVoltageAgent } from '../../src/control/voltage/dual-agent.js';
import { seededRandom } from '../../src/core/prng.js';
import { demoFeeder } from '../../src/grid/demo-feeder.js';
import { buildRadialFeeder } from '../../src/grid/feeder.js';

const NOW = 1_796_000_000_000; // on a slot boundary
const FRESH_MS = 750;
const TIMEOUT_MS = 5000;
const feeder = buildRadialFeeder(demoFeeder(5));

function agent(i: number, now = NOW) {
  return new DualVoltageAgent({
    id: `inv-${i}`,
    bus: `b${i}`,
    feeder,
    vMinPu: 0.95,
    vMaxPu: 1.05,
    marginPu: 0.01,
    qWeight: 0.5,
    epoch: now,
    gossipSlotMs: 10_000,
    reportFreshMs: FRESH_MS,
  });
}

describe('dual voltage agent: multipliers its peers announce', () => {
  it("a peer's announced multiplier counts while fresh, then its gossip estimate does", () => {
    const a = agent(1);
    a.gossip.addValue('inv-2', 5000); // push-sum mass for inv-2's entry: an estimate far from 120
    a.notePeer('inv-2', 'b2', NOW, 120);
    expect(a.multipliers(NOW + 100, TIMEOUT_MS).get('inv-2')).toBe(120);
    expect(a.announcedPeers(NOW + 100)).toBe(1);
    // A hello without a multiplier (the peer on its local curves) keeps it alive but announces nothing.
    a.notePeer('inv-2', 'b2', NOW + FRESH_MS);
    const later = NOW + FRESH_MS + 1;
    expect(a.announcedPeers(later)).toBe(0);
    expect(a.multipliers(later, TIMEOUT_MS).get('inv-2')).toBeCloseTo(5000 * 2, 6); // average × 2 agents
  });

  it('takes no multiplier that is not a finite number, and forgets the announcements of a peer that left', () => {
    const a = agent(1);
    a.notePeer('inv-2', 'b2', NOW, Number.NaN);
    a.notePeer('inv-3', 'b3', NOW, Number.POSITIVE_INFINITY);
    expect(a.announcedPeers(NOW)).toBe(0);
    a.notePeer('inv-2', 'b2', NOW, 40);
    expect(a.livePeers(NOW + TIMEOUT_MS + 1, TIMEOUT_MS)).toEqual([]);
    a.notePeer('inv-2', 'b2', NOW + TIMEOUT_MS + 2); // back, but not announced since
    expect(a.multipliers(NOW + TIMEOUT_MS + 2, TIMEOUT_MS).has('inv-2')).toBe(false);
  });

  it('a peer killed holding push-sum mass drains the gossip estimates; the announced multipliers stay right', () => {
    const random = seededRandom(3);
    const agents = [1, 2, 3, 4, 5].map((i) => agent(i));
    const truth = [300, 500, 800, 1200, 1500];
    agents.forEach((x, i) => {
      x.restore({ muOver: truth[i]!, muUnder: 0 });
    });
    for (const x of agents) for (const y of agents) x.notePeer(y.id, y.bus, NOW);
    const dead = agents[2]!;
    let t = NOW;
    /** One gossip round each (100 ms) and a hello each with its multiplier; mass sent to the dead agent is lost. */
    const round = (alive: DualVoltageAgent[]) => {
      t += 100;
      for (const x of alive) {
        const m = x.gossip.tick(x.livePeers(t, TIMEOUT_MS), random, t);
        const to = alive.find((y) => y.id === m?.to);
        if (m && to) {
          to.notePeer(x.id, x.bus, t);
          to.gossip.receive(m, t);
        }
        for (const y of alive) y.notePeer(x.id, x.bus, t, x.state().multiplier);
      }
    };
    for (let k = 0; k < 40; k++) round(agents); // converged: the estimates are close to the truth
    const alive = agents.filter((x) => x !== dead);
    for (let k = 0; k < 30; k++) {
      // The living ones keep changing their multipliers while the dead one still counts as a peer.
      alive.forEach((x, i) => {
        x.restore({ muOver: truth[agents.indexOf(x)]! + 10 * k * (i + 1), muUnder: 0 });
      });
      round(alive);
    }
    const observer = alive[0]!;
    const exact = new Map(alive.map((x) => [x.id, x.state().multiplier]));
    const estimateError = Math.max(
      ...alive
        .slice(1)
        .map((x) => Math.abs((observer.gossip.estimate(t).get(x.id) ?? 0) * agents.length - exact.get(x.id)!)),
    );
    // The drained instance: an estimate off by more than any multiplier here.
    expect(estimateError).toBeGreaterThan(2000);
    const used = observer.multipliers(t, TIMEOUT_MS);
    for (const x of alive) expect(used.get(x.id)).toBe(exact.get(x.id));
  });
});
