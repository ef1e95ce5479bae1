import { agentDeviceCost, scheduleOf } from './market.js';
import { perSlotAgent, type QuadraticCost, type TraderAgent } from './model.js';
import { aggregateProsumers, type DeviceOwners, type ProsumerOffer } from './prosumers.js';
import { localTradeModel, MarketSession, type NeighbourLink } from './session.js';
import type { TraderDecision, TradingAlgorithm } from './trader.js';

/**
 * One market interval of one trader, the same for both market levels: the MG trader's cell market
 * and the coupling agent's market one level up. The trader's agent and links are built here directly
 * in the market's per-slot form from what its role has (its prosumers' offers and its config, or the
 * cell's leftover), the session is opened from them, and once it has ended it is closed into what the
 * role acts on and what it records. The runtime runs the session over its transport in between.
 */

/** An offer with one value for every slot, as a gateway's config writes it: a·v² + b·v, v ≤ maxKWh per slot. */
export interface FlatOffer {
  a: number;
  b: number;
  maxKWh: number;
}

/** Energy the cell may take in / give out through its transformer per slot (the coupling agent's limits). */
export interface TransformerLimits {
  importKWh: number;
  exportKWh: number;
}

/** A trader as it enters an interval: its own agent and its links to its neighbours. */
export interface IntervalTrader {
  horizon: number;
  slotHours: number;
  agent: TraderAgent;
  neighbours: NeighbourLink[];
}

export interface IntervalSettings {
  algorithm: TradingAlgorithm;
  maxRounds: number;
  /** Scales the default stopping tolerances. */
  tolerance: number;
}

const flat = (o: FlatOffer, horizon: number): QuadraticCost => ({
  a: Array(horizon).fill(o.a),
  b: Array(horizon).fill(o.b),
  max: Array(horizon).fill(o.maxKWh),
});

/** The links to the neighbours, each way no more than the transformer lets through. */
export function capLinks(neighbours: readonly NeighbourLink[], limits: TransformerLimits): NeighbourLink[] {
  return neighbours.map((n) => ({
    ...n,
    sendCapacityKWh: Math.min(n.sendCapacityKWh, limits.exportKWh),
    receiveCapacityKWh: Math.min(n.receiveCapacityKWh, limits.importKWh),
  }));
}

export interface CellMarketInput {
  traderId: string;
  horizon: number;
  slotHours: number;
  /** The prosumers' offers for the interval, in the market's form. */
  offers: ProsumerOffer[];
  /** The cell's measured net demand per slot: it stands in for the prosumers while none has offered. */
  measuredDemandKWh: number;
  /** The trader's own resources (gateway config). */
  generators: readonly FlatOffer[];
  flexibleLoads: readonly FlatOffer[];
  gridImport?: FlatOffer | undefined;
  gridExport?: FlatOffer | undefined;
  neighbours: readonly NeighbourLink[];
  /** When set, they cap the grid exchange and the links both ways. */
  limits?: TransformerLimits | undefined;
}

/**
 * The MG trader in its cell's market: the sum of its prosumers' offers and its own resources
 * (`aggregateProsumers`, with which prosumer owns each device), its grid exchange and its links capped
 * by the transformer's limits.
 */
export function cellMarketTrader(input: CellMarketInput): IntervalTrader & { owners: DeviceOwners } {
  const { horizon: T, limits } = input;
  const own: ProsumerOffer = {
    id: input.traderId,
    demand: Array(T).fill(input.offers.length > 0 ? 0 : input.measuredDemandKWh),
    generators: input.generators.map((g) => ({ a: g.a, b: g.b, max: g.maxKWh })),
    flexibleLoads: input.flexibleLoads.map((g) => ({ a: g.a, b: g.b, max: g.maxKWh })),
  };
  const capped = (o: FlatOffer | undefined, capKWh: number | undefined) =>
    o && capKWh !== undefined ? { ...o, maxKWh: Math.min(o.maxKWh, capKWh) } : o;
  const gridImport = capped(input.gridImport, limits?.importKWh);
  const gridExport = capped(input.gridExport, limits?.exportKWh);
  const { agent, owners } = aggregateProsumers(input.traderId, [own, ...input.offers], T);
  return {
    horizon: T,
    slotHours: input.slotHours,
    agent: {
      ...perSlotAgent(agent, T, input.slotHours),
      gridImport: gridImport ? flat(gridImport, T) : undefined,
      gridExport: gridExport ? flat(gridExport, T) : undefined,
    },
    neighbours: limits ? capLinks(input.neighbours, limits) : [...input.neighbours],
    owners,
  };
}

export interface UpperMarketInput {
  traderId: string;
  slotHours: number;
  /** What the cell's market left over, kWh per slot (+ = the cell is short): the demand one level up. */
  leftoverKWh: readonly number[];
  /** The upstream connection (the DSO or the wholesale market). */
  gridImport?: FlatOffer | undefined;
  gridExport?: FlatOffer | undefined;
  neighbours: readonly NeighbourLink[];
  /** The cell's transformer limits what can cross it to a neighbouring cell. */
  limits: TransformerLimits;
}

/** The coupling agent one level up: the cell's leftover as its demand, the upstream connection, capped links. */
export function upperMarketTrader(input: UpperMarketInput): IntervalTrader {
  const T = input.leftoverKWh.length;
  return {
    horizon: T,
    slotHours: input.slotHours,
    agent: {
      id: input.traderId,
      // Rounded so that float noise of the cell's market does not count as leftover.
      demand: input.leftoverKWh.map((v) => Number(v.toFixed(9))),
      generators: [],
      flexibleLoads: [],
      storage: [],
      gridImport: input.gridImport ? flat(input.gridImport, T) : undefined,
      gridExport: input.gridExport ? flat(input.gridExport, T) : undefined,
    },
    neighbours: capLinks(input.neighbours, input.limits),
  };
}

/** The session of one interval, started from `startPrices` (the last interval's, moved on) when given. */
export function openMarketInterval(
  session: string,
  trader: IntervalTrader,
  settings: IntervalSettings,
  startPrices?: readonly number[],
): MarketSession {
  return new MarketSession(
    session,
    localTradeModel(trader.agent, trader.neighbours, trader.horizon, trader.slotHours),
    settings.algorithm,
    settings.maxRounds,
    settings.tolerance,
    startPrices,
  );
}

/** What a trader acts on and records once its interval's session has ended. */
export interface ClosedInterval {
  rounds: number;
  /** Settled together with the neighbours. */
  settled: boolean;
  /** The prices acted on: the session's, or the trader's own where it traded nothing with its neighbours. */
  prices: number[];
  /** The prices the session itself reached: where the next one starts. */
  reachedPrices: number[];
  maxImbalanceKWh: number;
  /** The schedule acted on (`MarketSession.outcome()`); undefined when no round was stepped. */
  decision: TraderDecision | undefined;
  /** First slot: energy sent to (+) or received from (−) each neighbour. */
  exchangeKWh: Record<string, number>;
  /** What the trader knew and decided, for the comparison with the centralised optimum. */
  instance: SessionInstance | undefined;
}

/** Closes an ended session: without agreement with its neighbours the trader trades nothing with them. */
export function closeMarketInterval(session: MarketSession, trader: IntervalTrader): ClosedInterval {
  const status = session.status();
  const outcome = session.outcome();
  const cleared = outcome.status();
  return {
    rounds: status.round,
    settled: status.settled,
    prices: cleared.prices,
    reachedPrices: status.prices,
    maxImbalanceKWh: cleared.maxImbalanceKWh,
    decision: outcome.decision,
    exchangeKWh: exchangeWithNeighbours(outcome),
    instance: sessionInstance(outcome, trader.agent, trader.neighbours),
  };
}

/** Energy exchanged with each neighbour in the first slot: sent (+) or received (−). */
export function exchangeWithNeighbours(session: MarketSession): Record<string, number> {
  const decision = session.decision;
  const model = session.model;
  const exchangeKWh: Record<string, number> = {};
  if (!decision) return exchangeKWh;
  for (const [k, sent] of decision.sent) exchangeKWh[model.agents[model.links[k]!.to]!.id] = sent[0] ?? 0;
  for (const [k, bought] of decision.bought) {
    const peer = model.agents[model.links[k]!.from]!.id;
    exchangeKWh[peer] = (exchangeKWh[peer] ?? 0) - (bought[0] ?? 0);
  }
  return exchangeKWh;
}

/**
 * What one trader knew and decided in one market session: its own agent (per slot), its links to its
 * neighbours, and the cost of its decision (own devices and grid exchange, plus the cost of what it
 * sent on its outgoing links). Put together over every trader of a session, these are the whole
 * instance, so that a benchmark can compare the distributed result with the centralised optimum
 * (`optimalityGap`); the trader itself never solves it.
 */
export interface SessionInstance {
  session: string;
  horizon: number;
  slotHours: number;
  agent: TraderAgent;
  neighbours: NeighbourLink[];
  cost: number;
}

/** The trader's share of the session's total cost, from its last decision. */
export function sessionInstance(
  session: MarketSession,
  agent: TraderAgent,
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
