import { z } from 'zod';

/**
 * A prosumer's `meter/reading` (to its cell, every secondary cycle, sealed to the cell's MG trader):
 * what its connection point measured. Fields it does not know are dropped, not refused (the
 * receivers always took them so).
 */
export const MeterReadingBody = z.object({
  /** Net consumption at the connection point, W (negative = export). */
  netW: z.number().finite(),
  pvW: z.number(),
  loadW: z.number(),
  voltagePu: z.number().nullable(),
});
export type MeterReadingBody = z.infer<typeof MeterReadingBody>;

/**
 * A prosumer's `meter/energy` (to the platform, once per metering interval): the energy its
 * connection point took in the interval, all the platform settles from (it gets nothing finer).
 */
export const MeterEnergyBody = z
  .object({
    fromMs: z.number().int().nonnegative(),
    toMs: z.number().int().nonnegative(),
    /** Net energy taken, kWh of real time (negative = exported). */
    netKWh: z.number().finite(),
    /** How much of the interval the gateway's meter samples covered, ms. */
    coveredMs: z.number().int().nonnegative(),
  })
  .strict()
  .refine((b) => b.toMs > b.fromMs && b.coveredMs <= b.toMs - b.fromMs, {
    message: 'toMs must follow fromMs and coveredMs fit between them',
  });
export type MeterEnergyBody = z.infer<typeof MeterEnergyBody>;
