import { z } from 'zod';

/** What a provider receives (`dispatch`, class `dr`): how much to curtail in the coming interval and at what price. */
export const DrDispatchBody = z
  .object({ interval: z.string(), curtailKWh: z.number(), price: z.number(), paid: z.number() })
  .strict();
export type DrDispatchBody = z.infer<typeof DrDispatchBody>;
