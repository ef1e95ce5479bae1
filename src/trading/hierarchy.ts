import { type MarketOptions, type MarketResult, runMarket } from './market.js';
import { compileModel, type TradeInput, type TradeInputFile, TradeInputSchema } from './model.js';

type AgentInput = TradeInputFile['agents'][number];
type LinkInput = NonNullable<TradeInputFile['links']>[number];
type GridInput = NonNullable<AgentInput['grid']>;

/**
 * A level of the hierarchy. A cell holds MG traders (`market`: its agents and links; each MG's `grid`
 * is its connection through the cell's transformer to the level above). A higher level holds child
 * levels, joined by `links` between children, with its own `upstream` connection.
 */
export type BalancingLevel =
  | { id: string; market: TradeInputFile }
  | {
      id: string;
      children: BalancingLevel[];
      /** Links between children (from/to are child ids). */
      links?: LinkInput[];
      /** This level's connection one level up (the DSO or the wholesale market). */
      upstream: NonNullable<AgentInput['grid']>;
    };

export interface LevelResult {
  id: string;
  market: MarketResult;
  /** What this level could not balance itself, per slot: energy it takes from the level above (negative = gives). */
  netImportKWh: number[];
  children: LevelResult[];
}

/**
 * Hierarchical balancing: each level first balances what it can with its own resources and trades
 * only its remaining imbalance one level up, where the children's coupling agents trade with each
 * other by the same algorithm. A cell's imbalance is what its MGs still take from or give to their
 * grid connections after trading among themselves.
 */
export function balanceHierarchy(level: BalancingLevel, options: MarketOptions = {}): LevelResult {
  if ('market' in level) {
    const model = compileModel(TradeInputSchema.parse(level.market));
    const market = runMarket(model, options, false);
    const netImportKWh = Array.from({ length: model.horizon }, (_, t) =>
      Object.values(market.agents).reduce((s, a) => s + a.import[t]! - a.export[t]!, 0),
    );
    return { id: level.id, market, netImportKWh, children: [] };
  }
  const children = level.children.map((child) => balanceHierarchy(child, options));
  const horizon = children[0]?.netImportKWh.length ?? 1;
  // One coupling agent per child: its demand is the child's imbalance; it can buy or sell upstream.
  const agents: AgentInput[] = children.map((c) => ({
    id: c.id,
    demand: c.netImportKWh.map((v) => Number(v.toFixed(9))),
    grid: level.upstream,
  }));
  const model = compileModel(TradeInputSchema.parse({ horizon, agents, links: level.links ?? [] }));
  const market = runMarket(model, options, false);
  const netImportKWh = Array.from({ length: horizon }, (_, t) =>
    Object.values(market.agents).reduce((s, a) => s + a.import[t]! - a.export[t]!, 0),
  );
  return { id: level.id, market, netImportKWh, children };
}

/** What the hierarchy's decisions cost over all its levels: Σ of every level's market cost. */
export function hierarchyCost(result: LevelResult): number {
  return result.market.cost + result.children.reduce((s, c) => s + hierarchyCost(c), 0);
}

/** The id of a lower level's node (its coupling agent) in `jointInstance`. */
export const levelNodeId = (levelId: string) => `${levelId}-coupling`;

/**
 * The whole hierarchy as one trading instance, for a centralised solve (`solveReference`): every
 * cell's MG traders with their own devices and links, one node per level below the top (its coupling
 * agent, demand 0), and the links between levels. A connection to the level above (an MG's `grid` in
 * a cell, each child's `upstream` at a higher level) becomes a pair of lossless links to that level's
 * node, priced as the connection was (import a·u² + b·u, export a·x² − b·x); at the top level the
 * connections stay grid connections. So the instance's cost is what the hierarchy pays at all its
 * levels together (`hierarchyCost`), every hierarchical result is a feasible point of it, and its
 * optimum is the least any schedule of the whole system could cost: it differs from the hierarchy
 * where a level decides before it knows what the level above would pay (a balanced cell's spare
 * flexibility is not offered upward).
 */
export function jointInstance(top: BalancingLevel): TradeInput {
  const agents: AgentInput[] = [];
  const links: LinkInput[] = [];
  let cell: TradeInputFile | undefined;
  const negate = (v: number | number[]) => (typeof v === 'number' ? -v : v.map((x) => -x));
  /** Links an agent to the node of its level above, or keeps its grid connection at the top. */
  const connect = (agent: AgentInput, grid: GridInput | undefined, node: string | undefined): AgentInput => {
    if (!grid || node === undefined) return grid ? { ...agent, grid } : agent;
    const { import: imp, export: exp } = grid;
    if (imp) links.push({ from: node, to: agent.id, capacity: imp.max, a: imp.a, b: imp.b, efficiency: 1 });
    if (exp) links.push({ from: agent.id, to: node, capacity: exp.max, a: exp.a, b: negate(exp.b), efficiency: 1 });
    return agent;
  };
  const addLevel = (level: BalancingLevel, node: string | undefined): void => {
    if ('market' in level) {
      cell ??= level.market;
      for (const { grid, ...agent } of level.market.agents) agents.push(connect(agent, grid, node));
      links.push(...(level.market.links ?? []));
      return;
    }
    for (const child of level.children) {
      agents.push(connect({ id: levelNodeId(child.id), demand: 0 }, level.upstream, node));
      addLevel(child, levelNodeId(child.id));
    }
    for (const l of level.links ?? []) links.push({ ...l, from: levelNodeId(l.from), to: levelNodeId(l.to) });
  };
  addLevel(top, undefined);
  return TradeInputSchema.parse({ horizon: cell?.horizon, slotHours: cell?.slotHours, agents, links });
}
