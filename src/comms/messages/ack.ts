import { z } from 'zod';

/** Message type of the application-level acknowledgement (reserved in every reliable class). */
export const ACK_TYPE = 'ack';

/**
 * Body of an acknowledgement (`…/<class>/ack/<original sender>`): which message (`epoch`, `seq`) of
 * the receiver's it took, and its type (how a sender learns who reads a type).
 */
export const AckBody = z.object({
  epoch: z.number(),
  seq: z.number(),
  // A type that is not a string only teaches nothing; the acknowledgement itself still counts.
  type: z.string().optional().catch(undefined),
});
export type AckBody = z.infer<typeof AckBody>;
