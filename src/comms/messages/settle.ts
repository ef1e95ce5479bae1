import { z } from 'zod';

/**
 * Bodies of class `settle`: the co-signing of each interval's settlement between the platform and
 * the parties it moves money for, and the platform's ledger head. The content a party signs is
 * checked here for its shape only; the party's gateway reads its payload with the platform's own
 * schema (`src/platform/settlement-content.ts`) and disputes what it cannot read.
 */

const HEX_HASH = z.string().regex(/^[0-9a-f]{64}$/);
const SIGNATURE = z.string().regex(/^[A-Za-z0-9_-]{86}$/);
/** `<interval start, ms>/<market>/<cell or *>`: one settlement of one interval. */
const UNIT = z.string().min(1).max(160);

/** Most entries one head message lists (a gateway behind by more asks again from where it is). */
export const MAX_HEAD_ENTRIES = 200;

/**
 * What every party signs (the ledger's form 2): kind, parties, amounts and payload, not the entry's
 * place in the chain, so that the settlements of one interval are signed at the same time and
 * chained in the order they complete.
 */
export const SignedContent = z
  .object({
    form: z.literal(2),
    kind: z.string().min(1).max(64),
    parties: z
      .array(z.object({ id: z.string().min(1).max(64), publicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/) }).strict())
      .min(1)
      .max(1024),
    amounts: z.record(z.string(), z.number().finite()),
    payload: z.unknown(),
  })
  .strict();
export type SignedContent = z.infer<typeof SignedContent>;

/** The platform's draft of one settlement (`draft`, to one party). */
export const SettleDraftBody = z.object({ unit: UNIT, content: SignedContent }).strict();
export type SettleDraftBody = z.infer<typeof SettleDraftBody>;

/** A party's signature of a draft (`signature`, to the platform), over the content whose hash it names. */
export const SettleSignatureBody = z.object({ unit: UNIT, contentHash: HEX_HASH, signature: SIGNATURE }).strict();
export type SettleSignatureBody = z.infer<typeof SettleSignatureBody>;

const Figure = z.union([z.number().finite(), z.string().max(256), z.null()]);

/** A line of a draft a party does not sign, with the draft's figure and its own. */
export const DisputedLine = z
  .object({ line: z.string().min(1).max(256), draft: Figure, own: Figure, reason: z.string().min(1).max(256) })
  .strict();
export type DisputedLine = z.infer<typeof DisputedLine>;

/** A party's refusal of a draft (`dispute`, to the platform), naming each line it does not agree with. */
export const SettleDisputeBody = z
  .object({ unit: UNIT, contentHash: HEX_HASH, lines: z.array(DisputedLine).min(1).max(64) })
  .strict();
export type SettleDisputeBody = z.infer<typeof SettleDisputeBody>;

/**
 * One ledger entry as the head lists it: a form-2 entry by its content hash (anyone can recompute
 * its chain hash from the one before), an older entry by its hash alone.
 */
export const HeadEntry = z
  .object({
    index: z.number().int().nonnegative(),
    time: z.string().min(1).max(40),
    form: z.union([z.literal(1), z.literal(2)]),
    contentHash: HEX_HASH.optional(),
    hash: HEX_HASH,
  })
  .strict();
export type HeadEntry = z.infer<typeof HeadEntry>;

/**
 * The platform's ledger head (`head`, to its cells every interval, or to one gateway that asked):
 * how many entries, the last hash, and the entries from `from` on, so that a gateway links them to
 * the head it saw before and finds the entries it signed under it.
 */
export const SettleHeadBody = z
  .object({
    entries: z.number().int().nonnegative(),
    hash: HEX_HASH,
    from: z.number().int().nonnegative(),
    recent: z.array(HeadEntry).max(MAX_HEAD_ENTRIES),
  })
  .strict()
  .refine((h) => h.recent.every((e, i) => e.index === h.from + i), { message: 'recent entries must follow from' });
export type SettleHeadBody = z.infer<typeof SettleHeadBody>;

/** A gateway's request for the ledger's entries from an index on (`head-request`, to the platform). */
export const SettleHeadRequestBody = z.object({ from: z.number().int().nonnegative() }).strict();
export type SettleHeadRequestBody = z.infer<typeof SettleHeadRequestBody>;
