import { z } from 'zod';

/**
 * Bodies of class `mkt`: the market between prosumers and their MG trader, the price rounds between
 * traders, and the trades reported to the platform. Powers are in W or kW as named, so that a
 * prosumer needs to know nothing of the market's slot length.
 */

/** A prosumer's offer (`offer`, to its cell): its expected load, its PV, and the loads it can curtail. */
export const OfferBody = z
  .object({
    loadW: z.number().finite().nonnegative(),
    pvW: z.number().finite().nonnegative(),
    flexibility: z
      .array(z.object({ a: z.number().positive(), b: z.number().nonnegative(), maxKW: z.number().nonnegative() }))
      .max(16),
  })
  .strict();
export type OfferBody = z.infer<typeof OfferBody>;

/** The MG trader's dispatch (`dispatch`, to one prosumer) of its share of a cleared interval. */
export const DispatchBody = z
  .object({
    session: z.string(),
    prices: z.array(z.number()),
    /** Energy the prosumer's PV is to deliver per slot (below its forecast when curtailed). */
    pvKWh: z.array(z.number()),
    /** Load curtailed per slot (demand response), summed over its flexible loads. */
    curtailKWh: z.array(z.number()),
    /** Net energy it takes from the MG per slot (negative = it delivers). */
    netKWh: z.array(z.number()),
    paymentTotal: z.number(),
  })
  .strict();
export type DispatchBody = z.infer<typeof DispatchBody>;

/** The MG trader's cleared interval (`result`, to its cell): the prices it acted on. */
export const ResultBody = z
  .object({ session: z.string(), prices: z.array(z.number()), converged: z.boolean() })
  .strict();
export type ResultBody = z.infer<typeof ResultBody>;

/**
 * One trader's prices of a market round (`price` between the MG traders of neighbouring cells,
 * `price-up` between coupling agents one level up), addressed to one neighbour. Fields it does not
 * know are dropped, not refused (the receivers always took them so). `from` and `to` must be the
 * topic's sender and target (`priceAddressed`).
 */
export const PriceBody = z.object({
  from: z.string(),
  to: z.string(),
  round: z.number().int().nonnegative(),
  price: z.array(z.number()),
  session: z.string(),
  settled: z.boolean(),
  link: z.object({ send: z.number().nonnegative(), receive: z.number().nonnegative() }).optional(),
});
export type PriceBody = z.infer<typeof PriceBody>;

/** A price round is the sender's own and for the gateway it is addressed to. */
export function priceAddressed(body: PriceBody, topic: { sender: string; target?: string }): boolean {
  return body.from === topic.sender && body.to === topic.target;
}

export const TRADE_MARKETS = ['cell', 'upper'] as const;
export type TradeMarket = (typeof TRADE_MARKETS)[number];

/** Most trades in one report: a cell's neighbours and its prosumers. */
const MAX_TRADES_PER_REPORT = 512;

const ReportedTrade = z
  .object({
    seller: z.string().min(1).max(64),
    buyer: z.string().min(1).max(64),
    kWh: z.number().finite().positive(),
    pricePerKWh: z.number().finite(),
  })
  .strict();

/** A cleared interval's trades (`trades`, from an MG trader or coupling agent to its platform). */
export const TradeReportBody = z
  .object({
    /** The market session's id. */
    session: z.string().min(1).max(64),
    /** The interval traded: its start, ms since the epoch. */
    interval: z.number().int().nonnegative(),
    market: z.enum(TRADE_MARKETS),
    converged: z.boolean(),
    trades: z.array(ReportedTrade).max(MAX_TRADES_PER_REPORT),
  })
  .strict()
  .superRefine((r, ctx) => {
    r.trades.forEach((t, i) => {
      if (t.seller === t.buyer)
        ctx.addIssue({ code: 'custom', path: ['trades', i, 'buyer'], message: 'seller and buyer are the same' });
    });
  });
export type TradeReportBody = z.infer<typeof TradeReportBody>;
