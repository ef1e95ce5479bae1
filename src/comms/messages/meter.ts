import { z } from 'zod';

/**
 * A prosumer's `meter/reading` (to its cell, every secondary cycle): what its connection point
 * measured. Fields it does not know are dropped, not refused (the receivers always took them so).
 */
export const MeterReadingBody = z.object({
  /** Net consumption at the connection point, W (negative = export). */
  netW: z.number().finite(),
  pvW: z.number(),
  loadW: z.number(),
  voltagePu: z.number().nullable(),
});
export type MeterReadingBody = z.infer<typeof MeterReadingBody>;
