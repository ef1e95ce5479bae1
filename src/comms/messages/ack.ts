import { z } from 'zod';

/** Message type of the application-level acknowledgement (reserved in every reliable class). */
export const ACK_TYPE = 'ack';

/** Most messages one acknowledgement covers (its first plus `more`). */
export const MAX_ACKED_PER_ACK = 32;

const AckedMessage = {
  epoch: z.number(),
  seq: z.number(),
  // A type that is not a string only teaches nothing; the acknowledgement itself still counts.
  type: z.string().optional().catch(undefined),
};

/**
 * Body of an acknowledgement (`…/<class>/ack/<original sender>`): which message (`epoch`, `seq`) of
 * the receiver's it took, and its type (how a sender learns who reads a type). `more`: further
 * messages of the same class taken from the same sender, acknowledged together (a receiver holds an
 * acknowledgement briefly to cover several); absent in a single acknowledgement.
 */
export const AckBody = z.object({
  ...AckedMessage,
  more: z
    .array(z.object(AckedMessage))
    .max(MAX_ACKED_PER_ACK - 1)
    .optional(),
});
export type AckBody = z.infer<typeof AckBody>;
export type AckedMessage = Omit<AckBody, 'more'>;
