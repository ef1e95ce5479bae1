import { clip, exportResponse, type StorageSchedule, StorageSolver, supplyResponse } from './local.js';
import type { AgentModel, LinkModel, TradeModel } from './model.js';

export type TradingAlgorithm = 'accelerated' | 'subgradient';
export const TRADING_ALGORITHMS: readonly TradingAlgorithm[] = ['accelerated', 'subgradient'];

/** The one message of a round: a trader's price per slot, sent to each neighbour. */
export interface PriceMessage {
  from: string;
  to: string;
  round: number;
  price: number[];
}

/** What a trader decided in a round, at the price it announced. */
export interface TraderDecision {
  generation: number[][];
  curtailment: number[][];
  storage: StorageSchedule[];
  gridImport: number[];
  gridExport: number[];
  /** Energy sent on each outgoing link (by link index) per slot. */
  sent: Map<number, number[]>;
  /** Energy bought on each incoming link (before losses), as this trader computes it. */
  bought: Map<number, number[]>;
  /** demand − supply per slot: positive = short of energy. */
  imbalance: number[];
}

/**
 * The plain method's diminishing step α_k = α0 / (1 + k/K)^0.51: Σα = ∞ and Σα² < ∞, the classical
 * conditions for subgradient methods, with α0 = 2/L (twice the trader's safe step). K sets how long
 * the step stays near α0; the benchmark reports its effect (docs/trading.md).
 */
export function subgradientStep(localStep: number, round: number, decayRounds = SUBGRADIENT_DECAY_ROUNDS): number {
  return (2 * localStep) / (1 + round / decayRounds) ** 0.51;
}
export const SUBGRADIENT_DECAY_ROUNDS = 10;

/** Link flow both ends agree on from the two prices: argmin a·e² + b·e + λ_from·e − η·λ_to·e over [0, cap]. */
export function linkFlow(link: LinkModel, t: number, priceFrom: number, priceTo: number): number {
  return clip((link.efficiency * priceTo - priceFrom - link.b[t]!) / (2 * link.a[t]!), 0, link.capacity[t]!);
}

/**
 * One MG trader of Algorithm 1 (dual decomposition of the social-welfare problem). It knows its own
 * devices and demand, the parameters of its own links, and the prices its neighbours send; nothing else.
 * Each round: take the neighbours' latest prices, decide its own generation, demand response, storage,
 * grid exchange and link flows at its announced price, and move its price by its own imbalance.
 *
 * `subgradient` is the plain price update with a diminishing step. `accelerated` (the default) uses a
 * constant step from the trader's own curvature and Nesterov momentum with adaptive restart: because
 * every cost is strictly convex the dual is smooth, so the fast gradient method applies (docs/trading.md).
 * Pure: no clock, no I/O; the same code runs in the CLI's simulation and on a gateway.
 */
export class MgTrader {
  readonly id: string;
  private readonly T: number;
  private readonly neighbourIds: string[];
  /** λ: the price iterate; announced: what was sent to neighbours (λ plus momentum). */
  private lambda: Float64Array;
  private announced: Float64Array;
  private readonly neighbourPrice = new Map<string, { round: number; price: Float64Array }>();
  private readonly step: Float64Array;
  private readonly storage: StorageSolver[];
  private round = 0;
  private momentumAge = 0;
  private lastDecision: TraderDecision | undefined;
  private lastPriceChange = Number.POSITIVE_INFINITY;

  constructor(
    private readonly agent: AgentModel,
    private readonly model: TradeModel,
    readonly algorithm: TradingAlgorithm,
    private readonly subgradientDecayRounds = SUBGRADIENT_DECAY_ROUNDS,
    /** Where the prices start (a warm start, e.g. the last interval's); by default near its own marginal cost. */
    startPrices?: readonly number[],
  ) {
    this.id = agent.id;
    this.T = model.horizon;
    this.neighbourIds = agent.neighbours.map((n) => model.agents[n]!.id);
    this.storage = agent.storage.map((s) => new StorageSolver(s, this.T));
    this.step = this.localStepSizes();
    this.lambda =
      startPrices?.length === this.T && startPrices.every(Number.isFinite)
        ? Float64Array.from(startPrices)
        : this.initialPrices();
    this.announced = Float64Array.from(this.lambda);
  }

  /** 1 / (a Gershgorin bound on this trader's row of the dual Hessian), per slot. */
  private localStepSizes(): Float64Array {
    const { agent, model } = this;
    const steps = new Float64Array(this.T);
    for (let t = 0; t < this.T; t++) {
      let bound = 0;
      for (const d of [...agent.generators, ...agent.flexibleLoads]) bound += 1 / (2 * d.a[t]!);
      if (agent.gridImport) bound += 1 / (2 * agent.gridImport.a[t]!);
      if (agent.gridExport) bound += 1 / (2 * agent.gridExport.a[t]!);
      for (const s of agent.storage) bound += (1 + 1 / s.efficiency ** 2) / (2 * s.a);
      for (const k of agent.linksOut) bound += (1 + model.links[k]!.efficiency) / (2 * model.links[k]!.a[t]!);
      for (const k of agent.linksIn) {
        const l = model.links[k]!;
        bound += (l.efficiency ** 2 + l.efficiency) / (2 * l.a[t]!);
      }
      steps[t] = bound > 0 ? 1 / bound : 0;
    }
    return steps;
  }

  /** A start near the trader's own marginal cost: the mean linear cost of what it can dispatch. */
  private initialPrices(): Float64Array {
    const { agent } = this;
    const prices = new Float64Array(this.T);
    for (let t = 0; t < this.T; t++) {
      const bs = [...agent.generators, ...agent.flexibleLoads, ...(agent.gridImport ? [agent.gridImport] : [])].map(
        (d) => d.b[t]!,
      );
      prices[t] = bs.length > 0 ? bs.reduce((a, b) => a + b, 0) / bs.length : 0;
    }
    return prices;
  }

  /** The messages that open round `round`: the announced price to every neighbour. */
  outbox(): PriceMessage[] {
    const price = Array.from(this.announced);
    return this.neighbourIds.map((to) => ({ from: this.id, to, round: this.round, price }));
  }

  /**
   * Runs one round with what arrived. A neighbour whose message did not arrive keeps its last price
   * (asynchrony); one never heard from yet is taken at this trader's own price.
   */
  stepRound(inbox: readonly PriceMessage[]): TraderDecision {
    for (const m of inbox) {
      if (m.to !== this.id || m.price.length !== this.T) continue;
      // A late message must not replace a newer price from the same neighbour.
      const known = this.neighbourPrice.get(m.from);
      if (!known || m.round > known.round)
        this.neighbourPrice.set(m.from, { round: m.round, price: Float64Array.from(m.price) });
    }
    const decision = this.decide(this.announced);
    const next = new Float64Array(this.T);
    this.round++;
    let change = 0;
    let progress = 0;
    for (let t = 0; t < this.T; t++) {
      const stepSize =
        this.algorithm === 'subgradient'
          ? subgradientStep(this.step[t]!, this.round, this.subgradientDecayRounds)
          : this.step[t]!;
      next[t] = this.announced[t]! + stepSize * decision.imbalance[t]!;
      progress += decision.imbalance[t]! * (next[t]! - this.lambda[t]!);
      change = Math.max(change, Math.abs(next[t]! - this.lambda[t]!) / Math.max(Math.abs(next[t]!), 1e-3));
    }
    if (this.algorithm === 'accelerated') {
      // Gradient-based adaptive restart (O'Donoghue & Candès 2015): drop the momentum when it does not
      // point along the trader's own imbalance (also when the imbalance is zero: on a flat stretch of
      // the dual, momentum would otherwise carry the price on indefinitely).
      this.momentumAge = progress <= 0 ? 0 : this.momentumAge + 1;
      const beta = this.momentumAge / (this.momentumAge + 3);
      for (let t = 0; t < this.T; t++) this.announced[t] = next[t]! + beta * (next[t]! - this.lambda[t]!);
    } else {
      this.announced = Float64Array.from(next);
    }
    this.lambda = next;
    this.lastPriceChange = change;
    this.lastDecision = decision;
    return decision;
  }

  private priceOf(neighbour: number, own: Float64Array): Float64Array {
    return this.neighbourPrice.get(this.model.agents[neighbour]!.id)?.price ?? own;
  }

  /** Best response of every own device and incident link to the prices, and the imbalance left. */
  decide(price: Float64Array): TraderDecision {
    const { agent, model, T } = this;
    const generation = agent.generators.map((g) =>
      Array.from({ length: T }, (_, t) => supplyResponse(g, t, price[t]!)),
    );
    const curtailment = agent.flexibleLoads.map((f) =>
      Array.from({ length: T }, (_, t) => supplyResponse(f, t, price[t]!)),
    );
    const storage = this.storage.map((s) => s.solve(price));
    const gridImport = Array.from({ length: T }, (_, t) =>
      agent.gridImport ? supplyResponse(agent.gridImport, t, price[t]!) : 0,
    );
    const gridExport = Array.from({ length: T }, (_, t) =>
      agent.gridExport ? exportResponse(agent.gridExport, t, price[t]!) : 0,
    );
    const sent = new Map<number, number[]>();
    const bought = new Map<number, number[]>();
    for (const k of agent.linksOut) {
      const l = model.links[k]!;
      const theirs = this.priceOf(l.to, price);
      sent.set(
        k,
        Array.from({ length: T }, (_, t) => linkFlow(l, t, price[t]!, theirs[t]!)),
      );
    }
    for (const k of agent.linksIn) {
      const l = model.links[k]!;
      const theirs = this.priceOf(l.from, price);
      bought.set(
        k,
        Array.from({ length: T }, (_, t) => linkFlow(l, t, theirs[t]!, price[t]!)),
      );
    }
    const imbalance = agent.demand.map((demand, t) => {
      let supply = gridImport[t]! - gridExport[t]!;
      for (const g of generation) supply += g[t]!;
      for (const r of curtailment) supply += r[t]!;
      for (const s of storage) supply += s.discharge[t]! - s.charge[t]!;
      for (const k of agent.linksIn) supply += model.links[k]!.efficiency * bought.get(k)![t]!;
      for (const k of agent.linksOut) supply -= sent.get(k)![t]!;
      return demand - supply;
    });
    return { generation, curtailment, storage, gridImport, gridExport, sent, bought, imbalance };
  }

  get prices(): number[] {
    return Array.from(this.announced);
  }

  get priceChange(): number {
    return this.lastPriceChange;
  }

  get decision(): TraderDecision | undefined {
    return this.lastDecision;
  }
}
