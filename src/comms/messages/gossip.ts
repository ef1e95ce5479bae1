import { z } from 'zod';

/** Bodies of class `gossip` (QoS 0): the voltage agents of a cell finding each other and summing by push-sum. */

/** A push-sum message (`pushsum`, addressed to one peer): running totals, see `src/control/pushsum/running-sum.ts`. */
export const PushSumBody = z
  .object({
    bus: z.string().min(1).max(64),
    epoch: z.number().finite(),
    toEpoch: z.number().finite().optional(),
    seq: z.number().int().positive(),
    slot: z.number().int().nonnegative(),
    s: z.record(z.string().max(64), z.number().finite()).refine((r) => Object.keys(r).length <= 1000, 'too many keys'),
    w: z.number().finite().nonnegative(),
  })
  .strict();
export type PushSumBody = z.infer<typeof PushSumBody>;

/**
 * A voltage agent's presence (`hello`, to its cell every secondary step), so that agents find each
 * other; `multiplier` only while it is on the distributed control.
 */
export const HelloBody = z
  .object({ bus: z.string().min(1).max(64), epoch: z.number().finite(), multiplier: z.number().finite().optional() })
  .strict();
export type HelloBody = z.infer<typeof HelloBody>;

/**
 * A bus beyond one of its voltage limits (`bus-limit`, to its cell), sent by the gateway at that bus
 * the primary cycle it sees the violation begin, not at its next secondary step: its neighbours' voltage
 * agents step the multiplier of that limit at once (`DualVoltageAgent.limitReported`). `multiplier` is
 * the sender's own while it is on the distributed control, the base its neighbours step from.
 */
export const BusLimitBody = z
  .object({
    bus: z.string().min(1).max(64),
    voltagePu: z.number().finite().positive(),
    limit: z.enum(['max', 'min']),
    limitPu: z.number().finite().positive(),
    multiplier: z.number().finite().optional(),
  })
  .strict()
  .refine(
    (b) => (b.limit === 'max' ? b.voltagePu > b.limitPu : b.voltagePu < b.limitPu),
    'the voltage is not beyond the limit',
  );
export type BusLimitBody = z.infer<typeof BusLimitBody>;

/**
 * One of the sender's inverters tripped (`inverter-trip`, to its cell), sent the primary cycle its
 * gateway sees the output collapse (`src/control/voltage/inverter-trips.ts`): the output lost (`pW`,
 * `qVAr`: what it delivered the cycle before; positive = injected) and the bus voltage measured
 * before the trip, from which the neighbours predict the voltage after it
 * (`DualVoltageAgent.outputChangeReported`). `multiplier` as in `bus-limit`.
 */
export const InverterTripBody = z
  .object({
    inverter: z.string().min(1).max(64),
    bus: z.string().min(1).max(64),
    pW: z.number().finite().nonnegative(),
    qVAr: z.number().finite(),
    voltagePu: z.number().finite().positive(),
    multiplier: z.number().finite().optional(),
  })
  .strict();
export type InverterTripBody = z.infer<typeof InverterTripBody>;

/**
 * A tripped inverter of the sender produces again (`inverter-reconnect`, to its cell): the output it
 * ramps back to (`pW`: its available power within its limit; `qVAr`: the reactive power it delivered
 * before the trip) and the bus voltage measured while it was out.
 */
export const InverterReconnectBody = InverterTripBody;
export type InverterReconnectBody = z.infer<typeof InverterReconnectBody>;
