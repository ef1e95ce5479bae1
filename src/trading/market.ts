import { seededRandom } from '../core/prng.js';
import { exportCost, quadraticCost } from './local.js';
import { checkDemandCanBeMet, type TradeModel } from './model.js';
import { MgTrader, type PriceMessage, type TraderDecision, type TradingAlgorithm } from './trader.js';

export interface MarketOptions {
  algorithm?: TradingAlgorithm;
  /** Scales both default stopping tolerances. */
  tolerance?: number;
  maxIterations?: number;
  /** Fraction of messages lost in transit (the receiver keeps the last price it had). */
  loss?: number;
  /** Messages arrive up to this many rounds late. */
  maxDelayRounds?: number;
  seed?: number;
  /** K of the plain method's step α0/(1 + k/K)^0.51. */
  subgradientDecayRounds?: number;
}

export interface AgentSchedule {
  generation: number[][];
  curtailment: number[][];
  charge: number[][];
  discharge: number[][];
  soc: number[][];
  import: number[];
  export: number[];
}

export interface MarketResult {
  algorithm: TradingAlgorithm;
  converged: boolean;
  iterations: number;
  messages: number;
  bytes: number;
  cost: number;
  prices: Record<string, number[]>;
  agents: Record<string, AgentSchedule>;
  flows: { from: string; to: string; energy: number[] }[];
  maxImbalanceKWh: number;
  /** Agents whose imbalance stayed above tolerance (only when not converged). */
  unbalancedAgents: string[];
  /**
   * Each trader's cost with trading (own devices, plus energy bought at its own price, minus sales paid
   * at the buyer's price net of the link cost) against its cost alone. Dual decomposition guarantees
   * with ≤ alone (the difference is at least Σ a·e² over its sales); `costAlone` is null for a trader
   * that cannot balance on its own.
   */
  incentives: Record<string, { costWithTrading: number; costAlone: number | null; gain: number | null }>;
}

/** The contract's default stop: imbalance ≤ 1e-4 × mean slot demand, relative price change ≤ 1e-6. */
export function stoppingTolerances(model: TradeModel, scale = 1): { imbalanceKWh: number; priceChange: number } {
  const demands = model.agents.flatMap((a) => a.demand.map(Math.abs));
  const meanDemand = demands.reduce((s, d) => s + d, 0) / Math.max(1, demands.length);
  return { imbalanceKWh: 1e-4 * (meanDemand > 0 ? meanDemand : 1) * scale, priceChange: 1e-6 * scale };
}

/**
 * Runs the MG traders as a message-passing simulation in one process: every round each trader sends
 * its price to each neighbour, then steps on what arrived. Nothing is shared between traders but
 * those messages. Loss and delay come from a seeded PRNG.
 */
export function runMarket(model: TradeModel, options: MarketOptions = {}, withIncentives = true): MarketResult {
  const algorithm = options.algorithm ?? 'accelerated';
  const maxIterations = options.maxIterations ?? (algorithm === 'subgradient' ? 200_000 : 20_000);
  const tol = stoppingTolerances(model, options.tolerance ?? 1);
  const random = seededRandom(options.seed ?? 1);
  const loss = options.loss ?? 0;
  const maxDelay = options.maxDelayRounds ?? 0;
  const traders = model.agents.map((a) => new MgTrader(a, model, algorithm, options.subgradientDecayRounds));
  // Messages in transit, bucketed by the round they arrive in, then by recipient.
  const inFlight = new Map<number, Map<string, PriceMessage[]>>();
  const runawayPrice = 1e6 * (1 + maxLinearCost(model));

  let messages = 0;
  let bytes = 0;
  let iterations = 0;
  let converged = false;
  let decisions: TraderDecision[] = [];
  while (iterations < maxIterations) {
    for (const trader of traders) {
      const outbox = trader.outbox();
      // All copies carry the same price; only the recipient differs.
      const size = outbox.length > 0 ? Buffer.byteLength(JSON.stringify(outbox[0])) - outbox[0]!.to.length : 0;
      for (const message of outbox) {
        messages++;
        bytes += size + message.to.length;
        if (loss > 0 && random() < loss) continue;
        const due = iterations + (maxDelay > 0 ? Math.floor(random() * (maxDelay + 1)) : 0);
        let bucket = inFlight.get(due);
        if (!bucket) {
          bucket = new Map();
          inFlight.set(due, bucket);
        }
        const list = bucket.get(message.to);
        if (list) list.push(message);
        else bucket.set(message.to, [message]);
      }
    }
    const inboxes = inFlight.get(iterations) ?? new Map<string, PriceMessage[]>();
    inFlight.delete(iterations);
    // Delayed messages may arrive after newer ones: a trader keeps the newest round it has seen.
    decisions = traders.map((trader) => trader.stepRound(newestPerSender(inboxes.get(trader.id) ?? [])));
    iterations++;
    const imbalance = Math.max(...decisions.flatMap((d) => d.imbalance.map(Math.abs)));
    const priceChange = Math.max(...traders.map((t) => t.priceChange));
    if (imbalance <= tol.imbalanceKWh && priceChange <= tol.priceChange) {
      converged = true;
      break;
    }
    if (traders.some((t) => t.prices.some((p) => !Number.isFinite(p) || Math.abs(p) > runawayPrice))) break;
  }
  return assemble(model, algorithm, traders, decisions, {
    converged,
    iterations,
    messages,
    bytes,
    tol: tol.imbalanceKWh,
    withIncentives,
  });
}

function newestPerSender(inbox: PriceMessage[]): PriceMessage[] {
  const newest = new Map<string, PriceMessage>();
  for (const m of inbox) {
    const seen = newest.get(m.from);
    if (!seen || m.round >= seen.round) newest.set(m.from, m);
  }
  return [...newest.values()];
}

function maxLinearCost(model: TradeModel): number {
  let max = 0;
  for (const a of model.agents) {
    for (const d of [
      ...a.generators,
      ...a.flexibleLoads,
      ...(a.gridImport ? [a.gridImport] : []),
      ...(a.gridExport ? [a.gridExport] : []),
    ]) {
      for (let t = 0; t < model.horizon; t++) max = Math.max(max, Math.abs(d.b[t]!) + 2 * d.a[t]! * d.max[t]!);
    }
  }
  return max;
}

/** The schedule the traders agreed on, its cost recomputed from it, and the balance it leaves. */
function assemble(
  model: TradeModel,
  algorithm: TradingAlgorithm,
  traders: MgTrader[],
  decisions: TraderDecision[],
  run: {
    converged: boolean;
    iterations: number;
    messages: number;
    bytes: number;
    tol: number;
    withIncentives: boolean;
  },
): MarketResult {
  const T = model.horizon;
  // A link's flow is what its seller decided to send.
  const flowOf = (k: number): number[] => decisions[model.links[k]!.from]!.sent.get(k) ?? Array(T).fill(0);
  const agents: Record<string, AgentSchedule> = {};
  const prices: Record<string, number[]> = {};
  const residuals: number[][] = [];
  model.agents.forEach((agent, i) => {
    agents[agent.id] = scheduleOf(decisions[i]!);
    prices[agent.id] = traders[i]!.prices;
    residuals.push(balanceResidual(model, i, agents[agent.id]!, flowOf));
  });
  const maxImbalanceKWh = Math.max(0, ...residuals.flat().map(Math.abs));
  return {
    algorithm,
    converged: run.converged,
    iterations: run.iterations,
    messages: run.messages,
    bytes: run.bytes,
    cost: scheduleCost(model, agents, flowOf),
    prices,
    agents,
    flows: model.links.map((l, k) => ({
      from: model.agents[l.from]!.id,
      to: model.agents[l.to]!.id,
      energy: flowOf(k),
    })),
    maxImbalanceKWh,
    unbalancedAgents: run.converged
      ? []
      : model.agents.filter((_, i) => residuals[i]!.some((r) => Math.abs(r) > run.tol)).map((a) => a.id),
    incentives: run.withIncentives ? incentives(model, agents, prices, flowOf, algorithm) : {},
  };
}

/** A trader's decision as a schedule of its devices and grid exchange. */
export function scheduleOf(d: TraderDecision): AgentSchedule {
  return {
    generation: d.generation,
    curtailment: d.curtailment,
    charge: d.storage.map((s) => s.charge),
    discharge: d.storage.map((s) => s.discharge),
    soc: d.storage.map((s) => s.soc),
    import: d.gridImport,
    export: d.gridExport,
  };
}

/** demand − supply per slot for one agent under a whole schedule. */
export function balanceResidual(
  model: TradeModel,
  i: number,
  s: AgentSchedule,
  flowOf: (k: number) => number[],
): number[] {
  const agent = model.agents[i]!;
  return agent.demand.map((demand, t) => {
    let supply = s.import[t]! - s.export[t]!;
    for (const g of s.generation) supply += g[t]!;
    for (const r of s.curtailment) supply += r[t]!;
    s.charge.forEach((c, k) => {
      supply += s.discharge[k]![t]! - c[t]!;
    });
    for (const k of agent.linksIn) supply += model.links[k]!.efficiency * flowOf(k)[t]!;
    for (const k of agent.linksOut) supply -= flowOf(k)[t]!;
    return demand - supply;
  });
}

/** Total cost of a schedule: devices, storage, grid and links. */
export function scheduleCost(
  model: TradeModel,
  agents: Record<string, AgentSchedule>,
  flowOf: (k: number) => number[],
): number {
  let cost = 0;
  for (const agent of model.agents) {
    const s = agents[agent.id]!;
    cost += agentDeviceCost(model, agent.index, s);
  }
  model.links.forEach((l, k) => {
    flowOf(k).forEach((e, t) => {
      cost += l.a[t]! * e * e + l.b[t]! * e;
    });
  });
  return cost;
}

/** An agent's own cost: generators, demand response, storage and grid exchange (no links). */
export function agentDeviceCost(model: TradeModel, i: number, s: AgentSchedule): number {
  const agent = model.agents[i]!;
  let cost = 0;
  for (let t = 0; t < model.horizon; t++) {
    agent.generators.forEach((g, k) => {
      cost += quadraticCost(g, t, s.generation[k]![t]!);
    });
    agent.flexibleLoads.forEach((f, k) => {
      cost += quadraticCost(f, t, s.curtailment[k]![t]!);
    });
    agent.storage.forEach((u, k) => {
      cost += u.a * (s.charge[k]![t]! ** 2 + s.discharge[k]![t]! ** 2);
    });
    if (agent.gridImport) cost += quadraticCost(agent.gridImport, t, s.import[t]!);
    if (agent.gridExport) cost += exportCost(agent.gridExport, t, s.export[t]!);
  }
  return cost;
}

function incentives(
  model: TradeModel,
  agents: Record<string, AgentSchedule>,
  prices: Record<string, number[]>,
  flowOf: (k: number) => number[],
  algorithm: TradingAlgorithm,
): MarketResult['incentives'] {
  const out: MarketResult['incentives'] = {};
  model.agents.forEach((agent, i) => {
    const own = prices[agent.id]!;
    let cost = agentDeviceCost(model, i, agents[agent.id]!);
    for (const k of agent.linksIn) {
      const l = model.links[k]!;
      flowOf(k).forEach((e, t) => {
        cost += own[t]! * l.efficiency * e;
      });
    }
    for (const k of agent.linksOut) {
      const l = model.links[k]!;
      const theirs = prices[model.agents[l.to]!.id]!;
      flowOf(k).forEach((e, t) => {
        cost -= theirs[t]! * l.efficiency * e - (l.a[t]! * e * e + l.b[t]! * e);
      });
    }
    const alone = costAlone(model, i, algorithm);
    out[agent.id] = { costWithTrading: cost, costAlone: alone, gain: alone === null ? null : alone - cost };
  });
  return out;
}

/** The trader's optimum with no links, found by the same algorithm run on its own. */
function costAlone(model: TradeModel, i: number, algorithm: TradingAlgorithm): number | null {
  const agent = model.agents[i]!;
  const solo: TradeModel = {
    ...model,
    links: [],
    agents: [{ ...agent, index: 0, linksIn: [], linksOut: [], neighbours: [] }],
  };
  try {
    checkDemandCanBeMet(solo);
  } catch {
    return null;
  }
  const r = runMarket(solo, { algorithm, tolerance: 0.01 }, false);
  return r.converged ? r.cost : null;
}
