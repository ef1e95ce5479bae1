import { agentDeviceCost, scheduleOf } from './market.js';
import { compileModel, type TradeInputFile, TradeInputSchema } from './model.js';
import { solveReference } from './reference/interior-point.js';
import type { MarketSession, NeighbourLink } from './session.js';

type AgentInput = TradeInputFile['agents'][number];

/**
 * What one trader knew and decided in one market session: its own agent in the contract's input
 * form, its links to its neighbours, and the cost of its decision (own devices and grid exchange,
 * plus the cost of what it sent on its outgoing links). Put together over every trader of a session,
 * these are the whole instance, so the distributed result can be compared with the centralised optimum.
 */
export interface SessionInstance {
  session: string;
  horizon: number;
  slotHours: number;
  agent: AgentInput;
  neighbours: NeighbourLink[];
  cost: number;
}

/** The trader's share of the session's total cost, from its last decision. */
export function sessionInstance(
  session: MarketSession,
  agent: AgentInput,
  neighbours: NeighbourLink[],
): SessionInstance | undefined {
  const d = session.decision;
  if (!d) return undefined;
  const model = session.model;
  let cost = agentDeviceCost(model, 0, scheduleOf(d));
  for (const [k, sent] of d.sent) {
    const link = model.links[k]!;
    sent.forEach((e, t) => {
      cost += link.a[t]! * e * e + link.b[t]! * e;
    });
  }
  return { session: session.sessionId, horizon: model.horizon, slotHours: model.slotHours, agent, neighbours, cost };
}

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
  const byId = new Map(instances.map((i) => [i.agent.id, i]));
  const links: NonNullable<TradeInputFile['links']> = [];
  for (const from of instances) {
    for (const n of from.neighbours) {
      const to = byId.get(n.peer);
      if (!to) return undefined;
      const back = to.neighbours.find((m) => m.peer === from.agent.id);
      const capacity = Math.min(n.sendCapacityKWh, back?.receiveCapacityKWh ?? 0);
      if (capacity > 0)
        links.push({ from: from.agent.id, to: n.peer, capacity, a: n.a, b: n.b, efficiency: n.efficiency });
    }
  }
  const model = compileModel(
    TradeInputSchema.parse({
      horizon: first.horizon,
      slotHours: first.slotHours,
      agents: instances.map((i) => i.agent),
      links,
    }),
    undefined,
    false,
  );
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
