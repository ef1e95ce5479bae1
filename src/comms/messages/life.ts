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

/**
 * D2D relay (`relay`, over the sidelink only): a gateway whose broker link is up offers to relay for
 * its cell (`{offer: true}`, to the cell, every heartbeat); a gateway whose broker link is down asks
 * one of them (`{request: true}`, addressed to the relay, every heartbeat while it needs it) and says
 * when it no longer does (`{request: false}`).
 */
export const RelayBody = z.union([
  z.object({ offer: z.literal(true) }).strict(),
  z.object({ request: z.boolean() }).strict(),
]);
export type RelayBody = z.infer<typeof RelayBody>;
