import { runMarket } from './market.js';
import { compileModel, TradeInputSchema } from './model.js';

/** A provider's demand-response offer to the aggregator: curtailment up to `max` kWh at a·r² + b·r. */
export interface FlexibilityOffer {
  provider: string;
  a: number;
  b: number;
  maxKWh: number;
}

/** Who buys the flexibility upstream (the DSO or the wholesale market): pays `price` per kWh, taking at most maxKWh. */
export interface FlexibilityBuyer {
  buyer: string;
  price: number;
  /** Diminishing value of more flexibility (a·x² subtracted), > 0. */
  a: number;
  maxKWh: number;
}

export interface DrClearing {
  /** The aggregator's clearing price per kWh of curtailment. */
  price: number;
  soldKWh: number;
  revenue: number;
  providers: Record<string, { curtailedKWh: number; paid: number; cost: number }>;
  aggregatorMargin: number;
}

/**
 * A demand-response aggregator peer: it contracts flexibility from several MGs or prosumers and sells
 * it up. The clearing is the market's own problem for one agent (the aggregator), whose "generators"
 * are its providers' curtailment offers and whose "export" is the sale upstream: providers curtail
 * where their marginal cost meets the aggregator's price and are paid that price, so each provider's
 * payment covers its cost (r·λ ≥ a·r² + b·r) and the aggregator keeps the buyer's marginal surplus.
 */
export function clearDrAggregator(aggregator: string, offers: FlexibilityOffer[], buyer: FlexibilityBuyer): DrClearing {
  const model = compileModel(
    TradeInputSchema.parse({
      agents: [
        {
          id: aggregator,
          demand: 0,
          generators: offers.map((o) => ({ a: o.a, b: o.b, max: o.maxKWh })),
          grid: { export: { a: buyer.a, b: buyer.price, max: buyer.maxKWh } },
        },
      ],
    }),
  );
  const r = runMarket(model, { tolerance: 0.01 }, false);
  const schedule = r.agents[aggregator]!;
  const price = r.prices[aggregator]![0]!;
  const soldKWh = schedule.export[0]!;
  const providers: DrClearing['providers'] = {};
  let paidTotal = 0;
  offers.forEach((o, k) => {
    const curtailedKWh = schedule.generation[k]![0]!;
    const paid = curtailedKWh * price;
    paidTotal += paid;
    providers[o.provider] = { curtailedKWh, paid, cost: o.a * curtailedKWh ** 2 + o.b * curtailedKWh };
  });
  const revenue = buyer.price * soldKWh - buyer.a * soldKWh ** 2;
  return { price, soldKWh, revenue, providers, aggregatorMargin: revenue - paidTotal };
}
