import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { STREAM_COUNT, streamOf } from './replay-guard.js';
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

/**
 * Stamps outgoing bodies with this gateway's identity, (epoch, seq) and expiry. The epoch is set
 * when the transport starts (from the persisted one, see `CommsStateFile`); `seq` counts per stream
 * (`streamOf`), so it is unique within the epoch.
 */
export class EnvelopeStamper {
  private readonly counts = new Array<number>(STREAM_COUNT).fill(0);

  constructor(
    private readonly sender: string,
    private readonly clock: Clock,
    public epoch: number = Math.floor(clock.now() / 1000),
  ) {}

  stamp<B>(cls: MessageClass, type: string, body: B, ttlMs?: number, targeted = false): Envelope<B> {
    const ts = this.clock.now();
    const stream = streamOf(cls, targeted);
    const n = (this.counts[stream] ?? 0) + 1;
    this.counts[stream] = n;
    return {
      v: 1,
      sender: this.sender,
      epoch: this.epoch,
      seq: n * STREAM_COUNT + stream,
      ts,
      expires: ts + (ttlMs ?? DEFAULT_TTL_MS[cls]),
      type,
      body,
    };
  }
}

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; reason: 'size' | 'schema' | 'expired' };

/** A sender's clock may be ahead of ours by this much before its messages count as out of window. */
export const MAX_CLOCK_SKEW_MS = 30_000;
/** No message lives longer than this (the retained presence message is the longest, a day). */
export const MAX_LIFETIME_MS = 25 * 3600_000;

/**
 * Parses and checks a received payload: size, schema, and the time window (not expired, not from
 * the future beyond the clock skew, no lifetime beyond `MAX_LIFETIME_MS`). A bad one is reported
 * with the metric reason, never thrown.
 */
export function decodeEnvelope(payload: Uint8Array | string, now: number): DecodeResult {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'size' };
  let data: unknown;
  try {
    // A Buffer (as MQTT hands it) is read in place; another Uint8Array through a view, not a copy.
    const text =
      typeof payload === 'string'
        ? payload
        : Buffer.isBuffer(payload)
          ? payload.toString('utf8')
          : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
    data = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'schema' };
  }
  const parsed = EnvelopeSchema.safeParse(data);
  if (!parsed.success) return { ok: false, reason: 'schema' };
  const { ts, expires } = parsed.data;
  if (expires < now || ts > now + MAX_CLOCK_SKEW_MS || expires - ts > MAX_LIFETIME_MS)
    return { ok: false, reason: 'expired' };
  return { ok: true, envelope: parsed.data as Envelope };
}
