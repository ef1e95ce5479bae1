import { z } from 'zod';

/**
 * Bodies of class `life`, which the transport itself sends. A peer's presence counts whatever its
 * body holds (an unreadable role is left out), so the transport does not refuse these by schema.
 */

/** Presence (`online`, retained, cleared by the Will). */
export const OnlineBody = z.object({
  online: z.literal(true),
  role: z.string(),
  publicKey: z.string(),
  version: z.string(),
  /** Raw X25519 key for confidential bodies, base64url (docs/interfaces.md); not sent yet. */
  encryptionKey: z.string().optional(),
});
export type OnlineBody = z.infer<typeof OnlineBody>;

/** A signed leave (`offline`): D2D has no broker to send a Will. */
export const OfflineBody = z.object({});
export type OfflineBody = z.infer<typeof OfflineBody>;
