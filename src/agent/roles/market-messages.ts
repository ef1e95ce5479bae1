import { z } from 'zod';

/**
 * Bodies of the market messages between prosumers and their MG trader (class `mkt`). Powers are in W
 * or kW as named, so that a prosumer needs to know nothing of the market's slot length.
 */

/** A prosumer's offer: its expected load, its PV, and the loads it can curtail. */
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

/** The MG trader's dispatch of one prosumer's share of a cleared interval. */
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

/**
 * Cost of PV energy in the market: no fuel cost, curved like a small generator so that curtailment is
 * shared between prosumers and the trader's price step stays well conditioned.
 */
export const PV_OFFER_COST = { a: 0.002, b: 0 };
