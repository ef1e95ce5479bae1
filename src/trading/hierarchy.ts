import { type MarketOptions, type MarketResult, runMarket } from './market.js';
import { compileModel, type TradeInputFile, TradeInputSchema } from './model.js';

type AgentInput = TradeInputFile['agents'][number];
type LinkInput = NonNullable<TradeInputFile['links']>[number];

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
