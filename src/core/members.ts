import { z } from 'zod';
import { hasValidSignature, withSignature } from './signing.js';

/**
 * The members list: who may take part in a cell's messaging, signed by the cell operator. The trading
 * platform issues it (admit, suspend, revoke); comms accepts a message only from an active member.
 */
/** `platform`: the gateway running the trading platform (it sends and receives messages like any member). */
export const MemberRole = z.enum(['prosumer', 'mg-trader', 'aggregator', 'dso', 'operator', 'platform']);
export type MemberRole = z.infer<typeof MemberRole>;

const base64urlKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected a 32-byte key in base64url without padding');

export const Member = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
    publicKey: base64urlKey,
    role: MemberRole,
    cell: z.string().min(1),
    status: z.enum(['active', 'suspended', 'revoked']).default('active'),
    /** X25519 key that confidential bodies for this member are sealed to (raw 32 bytes, base64url). */
    encryptionKey: base64urlKey.optional(),
  })
  .strict();
export type Member = z.infer<typeof Member>;

export const MembersList = z
  .object({
    v: z.literal(1),
    /** The operator whose key signs the list. */
    operator: z.string().min(1),
    /** Increases with every change; a gateway never goes back to an older list. */
    serial: z.number().int().nonnegative(),
    issuedAt: z.number().int().nonnegative(),
    members: z.array(Member),
    sig: z.string().optional(),
  })
  .strict();
export type MembersList = z.infer<typeof MembersList>;

export function signMembersList(list: Omit<MembersList, 'sig'>, operatorPrivateKey: string): MembersList {
  const { sig: _drop, ...unsigned } = list as MembersList;
  return withSignature(unsigned, operatorPrivateKey);
}

export function verifyMembersList(list: MembersList, operatorPublicKey: string): boolean {
  return hasValidSignature(list, operatorPublicKey);
}

/** The active member with this id, or undefined (unknown, suspended or revoked). */
export function activeMember(list: MembersList, id: string): Member | undefined {
  const m = list.members.find((x) => x.id === id);
  return m?.status === 'active' ? m : undefined;
}
