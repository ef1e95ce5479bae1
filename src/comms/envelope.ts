import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import type { MessageClass } from './topics.js';
import { DEFAULT_TTL_MS, type Envelope } from './transport.js';

/** Largest payload a gateway accepts (LTE uplinks and the D2D MTU make big messages a mistake). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export const EnvelopeSchema = z
  .object({
    v: z.literal(1),
    sender: z.string().min(1).max(64),
    epoch: z.number().int().nonnegative(),
    seq: z.number().int().nonnegative(),
    ts: z.number().int().nonnegative(),
    expires: z.number().int().nonnegative(),
    type: z.string().min(1).max(64),
    body: z.unknown(),
    sig: z.string().optional(),
  })
  .strict();

/** Stamps outgoing bodies with this gateway's identity, (epoch, seq) and expiry. */
export class EnvelopeStamper {
  private seq = 0;

  constructor(
    private readonly sender: string,
    private readonly clock: Clock,
    readonly epoch: number = clock.now(),
  ) {}

  stamp<B>(cls: MessageClass, type: string, body: B, ttlMs?: number): Envelope<B> {
    const ts = this.clock.now();
    this.seq += 1;
    return {
      v: 1,
      sender: this.sender,
      epoch: this.epoch,
      seq: this.seq,
      ts,
      expires: ts + (ttlMs ?? DEFAULT_TTL_MS[cls]),
      type,
      body,
    };
  }
}

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; reason: 'size' | 'schema' | 'expired' };

/** Parses and checks a received payload; a bad one is reported with the metric reason, never thrown. */
export function decodeEnvelope(payload: Uint8Array | string, now: number): DecodeResult {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'size' };
  let data: unknown;
  try {
    data = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch {
    return { ok: false, reason: 'schema' };
  }
  const parsed = EnvelopeSchema.safeParse(data);
  if (!parsed.success) return { ok: false, reason: 'schema' };
  if (parsed.data.expires < now) return { ok: false, reason: 'expired' };
  return { ok: true, envelope: parsed.data as Envelope };
}
