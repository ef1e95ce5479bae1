import type { SessionInstance } from './market-interval.js';
import { type AgentModel, connectLink, type LinkModel, type TradeModel } from './model.js';
import { solveReference } from './reference/interior-point.js';

/**
 * The gap between what the traders of one session decided and the centralised optimum of the same
 * instance. For benchmarks and tests: it solves the whole instance at once with the interior-point
 * reference, which the runtime never loads (the traders only record their `SessionInstance`).
 */

export interface OptimalityGap {
  session: string;
  traders: number;
  /** Σ of the traders' costs as they decided them. */
  distributedCost: number;
  /** The same instance solved at once (interior point, `solveReference`). */
  optimumCost: number;
  /** |distributed − optimum| / max(|optimum|, COST_SCALE_FLOOR). */
  relativeGap: number;
}

/**
 * The smallest cost (in the instance's currency) the relative gap is taken against. A session that
 * trades next to nothing has an optimum near zero (1.9e-9 in one bench interval of the market one
 * level up), where any rounding is a large fraction of it: below a thousandth of a currency unit the
 * gap is measured against that thousandth, so a relative target of 1e-3 still asks for the cost to
 * a millionth of a unit there.
 */
export const COST_SCALE_FLOOR = 1e-3;

/**
 * The centralised optimum of one session, assembled from every trader's instance. A link's capacity
 * is the smaller of what the sender may send and what the receiver may receive, as the two traders
 * each clip it. Returns undefined when a trader's neighbour is missing from the instances (the
 * session cannot be rebuilt whole).
 */
export function optimalityGap(instances: readonly SessionInstance[]): OptimalityGap | undefined {
  const first = instances[0];
  if (!first) return undefined;
  const model = wholeInstance(instances);
  if (!model) return undefined;
  const optimumCost = solveReference(model).cost;
  const distributedCost = instances.reduce((s, i) => s + i.cost, 0);
  return {
    session: first.session,
    traders: instances.length,
    distributedCost,
    optimumCost,
    relativeGap: Math.abs(distributedCost - optimumCost) / Math.max(Math.abs(optimumCost), COST_SCALE_FLOOR),
  };
}

/**
 * The traders' instances joined into one model: every trader's own agent, and a link wherever a
 * trader may send to a neighbour that may receive from it. Undefined when a neighbour is missing.
 */
function wholeInstance(instances: readonly SessionInstance[]): TradeModel | undefined {
  const T = instances[0]!.horizon;
  const index = new Map(instances.map((inst, i) => [inst.agent.id, i]));
  const agents: AgentModel[] = instances.map((inst, i) => ({
    ...inst.agent,
    index: i,
    linksOut: [],
    linksIn: [],
    neighbours: [],
  }));
  const links: LinkModel[] = [];
  for (const [from, inst] of instances.entries()) {
    for (const n of inst.neighbours) {
      const to = index.get(n.peer);
      if (to === undefined) return undefined;
      const back = instances[to]!.neighbours.find((m) => m.peer === inst.agent.id);
      const capacity = Math.min(n.sendCapacityKWh, back?.receiveCapacityKWh ?? 0);
      if (!(capacity > 0)) continue;
      const k = links.length;
      links.push({
        index: k,
        from,
        to,
        a: Array(T).fill(n.a),
        b: Array(T).fill(n.b),
        capacity: Array(T).fill(capacity),
        efficiency: n.efficiency,
      });
      connectLink(agents, k, from, to);
    }
  }
  return { horizon: T, slotHours: instances[0]!.slotHours, agents, links };
}
