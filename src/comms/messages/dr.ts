import { z } from 'zod';

/** What a provider receives (`dispatch`, class `dr`): how much to curtail in the coming interval and at what price. */
export const DrDispatchBody = z
  .object({ interval: z.string(), curtailKWh: z.number(), price: z.number(), paid: z.number() })
  .strict();
export type DrDispatchBody = z.infer<typeof DrDispatchBody>;

/**
 * A dispatch as the aggregator reports it to the platform (`event`, class `dr`, addressed to it):
 * the interval (its start, ms since the epoch, as settlements name it), the provider, the curtailment
 * asked for and the price per kWh it is paid. The platform makes it a DR event under the pair's
 * contract, measures it and drafts the payment.
 */
export const DrEventBody = z
  .object({
    interval: z.number().int().nonnegative(),
    provider: z.string().min(1).max(64),
    curtailKWh: z.number().finite().positive(),
    pricePerKWh: z.number().finite().nonnegative(),
  })
  .strict();
export type DrEventBody = z.infer<typeof DrEventBody>;
