import { MESSAGE_CLASSES, type MessageClass } from './topics.js';

/**
 * Sequence streams. A sender numbers its messages per stream so that a receiver, which listens only
 * to some classes, can still see gaps: the low 3 bits of `seq` name the stream (the class's index
 * for messages to the whole cell, 7 for messages addressed to one target) and each stream counts up
 * by 8. `(sender, epoch, seq)` stays unique, as the wire format requires.
 */
export const STREAM_COUNT = 8;
export const TARGETED_STREAM = 7;

export function streamOf(cls: MessageClass, targeted: boolean): number {
  return targeted ? TARGETED_STREAM : MESSAGE_CLASSES.indexOf(cls);
}

/** The class whose gaps a stream counts; undefined for the targeted stream (no gap accounting). */
export function classOfStream(stream: number): MessageClass | undefined {
  return stream === TARGETED_STREAM ? undefined : MESSAGE_CLASSES[stream];
}

export type ReplayVerdict = 'new' | 'duplicate' | 'replay';

export interface ReplayResult {
  verdict: ReplayVerdict;
  /** Messages found missing by this one (a jump in the stream's count). */
  gap: number;
  /** True when this message fills a gap counted earlier (it arrived out of order). */
  filled: boolean;
  /**
   * On a `replay`: the count lies below what the window (or the state restored after a restart)
   * remembers, so whether it was seen cannot be told. A message delayed that far (resent from a
   * long outage, behind newer ones) looks like this as much as a replay does.
   */
  unknown?: boolean;
}

interface StreamState {
  highest: number;
  /** Counts at or below this are refused (restored after a restart: what was seen before is unknown). */
  floor: number;
  /** `ring[n % window] === n` when count n was seen. */
  ring: Float64Array;
  received: number;
  missing: number;
}

interface EpochState {
  epoch: number;
  streams: Map<number, StreamState>;
}

/**
 * Older epochs of a sender kept open, each with its own window: a sender restarted several times
 * in a row, before its receivers acknowledged what it had pending, still has messages of each of
 * those epochs in its persisted outbox.
 */
export const MAX_OLDER_EPOCHS = 8;

interface SenderState extends EpochState {
  /** The sender's earlier epochs still open, newest first, at most `MAX_OLDER_EPOCHS`. */
  older: EpochState[];
  /**
   * Epochs at or below this are replays: dropped from `older`, or from before what the receiver knew
   * when it restarted. `-Infinity` while nothing is known of the sender's earlier epochs (first
   * heard in this run): an older epoch that shows up cannot have been seen before.
   */
  epochFloor: number;
}

interface EpochSnapshot {
  epoch: number;
  highest: Record<string, number>;
  /**
   * Per stream, the counts within the window below `highest` that were not seen (lost, or still to
   * be resent). Absent in state files of earlier versions.
   */
  holes?: Record<string, number[]>;
}

/** What survives a restart: per sender its epochs and, per stream, the highest count seen and the holes below it. */
export type ReplaySnapshot = Record<
  string,
  EpochSnapshot & {
    /** The earlier epochs still open, newest first (absent in state files of earlier versions). */
    older?: EpochSnapshot[];
    /** Epochs at or below this are refused; absent when none is. */
    epochFloor?: number;
  }
>;

/**
 * Refuses replayed and duplicated messages and counts gaps, per sender and stream. A sender's new
 * epoch (it restarted) starts new streams; its earlier epochs stay open (its persisted outbox),
 * each with its own window, up to `MAX_OLDER_EPOCHS`; an epoch older than those is a replay. Within
 * an epoch, a count more than `window` below the highest one seen is a replay, one seen before is a
 * duplicate (a QoS 1 resend), anything else is new, including late ones that fill a gap.
 */
export class ReplayGuard {
  private readonly senders = new Map<string, SenderState>();

  constructor(readonly window = 512) {}

  check(sender: string, epoch: number, seq: number): ReplayResult {
    const stream = seq % STREAM_COUNT;
    const n = Math.floor(seq / STREAM_COUNT);
    const e = this.epochState(sender, epoch);
    if (!e) return { verdict: 'replay', gap: 0, filled: false };
    let st = e.streams.get(stream);
    if (!st) {
      st = { highest: n, floor: -1, ring: new Float64Array(this.window).fill(-1), received: 0, missing: 0 };
      e.streams.set(stream, st);
      return this.accept(st, n, 0, false);
    }
    if (n <= st.floor) return { verdict: 'replay', gap: 0, filled: false, unknown: true };
    if (n > st.highest) {
      const gap = st.highest >= 0 ? n - st.highest - 1 : 0;
      st.highest = n;
      return this.accept(st, n, gap, false);
    }
    if (n <= st.highest - this.window) return { verdict: 'replay', gap: 0, filled: false, unknown: true };
    if (st.ring[n % this.window] === n) return { verdict: 'duplicate', gap: 0, filled: false };
    return this.accept(st, n, 0, true);
  }

  /** The state of one epoch of a sender, opened when it is new; undefined when the epoch is closed (a replay). */
  private epochState(sender: string, epoch: number): EpochState | undefined {
    const s = this.senders.get(sender);
    if (!s) {
      const fresh: SenderState = { epoch, streams: new Map(), older: [], epochFloor: Number.NEGATIVE_INFINITY };
      this.senders.set(sender, fresh);
      return fresh;
    }
    if (epoch === s.epoch) return s;
    if (epoch > s.epoch) {
      this.keepOlder(s, { epoch: s.epoch, streams: s.streams });
      s.epoch = epoch;
      s.streams = new Map();
      return s;
    }
    const known = s.older.find((o) => o.epoch === epoch);
    if (known) return known;
    if (epoch <= s.epochFloor) return undefined;
    const opened = { epoch, streams: new Map<number, StreamState>() };
    this.keepOlder(s, opened);
    return s.older.includes(opened) ? opened : undefined;
  }

  /** Adds an older epoch, newest first; the oldest beyond the bound is closed for good. */
  private keepOlder(s: SenderState, e: EpochState): void {
    s.older.push(e);
    s.older.sort((a, b) => b.epoch - a.epoch);
    while (s.older.length > MAX_OLDER_EPOCHS) s.epochFloor = Math.max(s.epochFloor, s.older.pop()!.epoch);
  }

  private accept(st: StreamState, n: number, gap: number, filled: boolean): ReplayResult {
    st.ring[n % this.window] = n;
    st.received += 1;
    st.missing = Math.max(0, st.missing + gap - (filled ? 1 : 0));
    return { verdict: 'new', gap, filled };
  }

  /**
   * Takes back a message that `check` found new but the application could not take (a handler
   * failed to store it): its resend is new again, not a duplicate.
   */
  forget(sender: string, epoch: number, seq: number): void {
    const s = this.senders.get(sender);
    const e = s?.epoch === epoch ? s : s?.older.find((o) => o.epoch === epoch);
    const n = Math.floor(seq / STREAM_COUNT);
    const st = e?.streams.get(seq % STREAM_COUNT);
    if (!st || st.ring[n % this.window] !== n) return;
    st.ring[n % this.window] = -1;
    st.received = Math.max(0, st.received - 1);
  }

  /** Fraction of a sender's messages that arrived, over its streams with gap accounting. */
  deliveryRatio(sender: string): number | undefined {
    const s = this.senders.get(sender);
    if (!s) return undefined;
    let received = 0;
    let missing = 0;
    for (const [stream, st] of s.streams) {
      if (classOfStream(stream) === undefined) continue;
      received += st.received;
      missing += st.missing;
    }
    return received + missing === 0 ? undefined : received / (received + missing);
  }

  /** Received and missing counts per class over all senders (the `p2p_delivery_ratio{class}` gauge). */
  classTotals(): Map<MessageClass, { received: number; missing: number }> {
    const totals = new Map<MessageClass, { received: number; missing: number }>();
    for (const s of this.senders.values()) {
      for (const [stream, st] of s.streams) {
        const cls = classOfStream(stream);
        if (!cls) continue;
        const t = totals.get(cls) ?? { received: 0, missing: 0 };
        t.received += st.received;
        t.missing += st.missing;
        totals.set(cls, t);
      }
    }
    return totals;
  }

  snapshot(): ReplaySnapshot {
    const out: ReplaySnapshot = {};
    for (const [sender, s] of this.senders) {
      out[sender] = {
        ...this.epochSnapshot(s),
        older: s.older.map((e) => this.epochSnapshot(e)),
        ...(Number.isFinite(s.epochFloor) ? { epochFloor: s.epochFloor } : {}),
      };
    }
    return out;
  }

  private epochSnapshot(e: EpochState): EpochSnapshot {
    const highest: Record<string, number> = {};
    const holes: Record<string, number[]> = {};
    for (const [stream, st] of e.streams) {
      highest[stream] = st.highest;
      const missing: number[] = [];
      for (let n = Math.max(st.floor + 1, st.highest - this.window + 1, 0); n < st.highest; n++)
        if (st.ring[n % this.window] !== n) missing.push(n);
      if (missing.length > 0) holes[stream] = missing;
    }
    return { epoch: e.epoch, highest, holes };
  }

  /**
   * After a restart: what was seen before is refused. Within the window below the highest count,
   * the counts that were never seen (the holes) are still taken: a sender resends what was lost,
   * and refusing it for good would lose it. Below the window, everything is refused. An older epoch
   * not saved is taken unless it was closed (a state file of an earlier version keeps no older
   * epochs: every older one is refused).
   */
  restore(snapshot: ReplaySnapshot): void {
    for (const [sender, saved] of Object.entries(snapshot)) {
      const older = (saved.older ?? []).map((e) => this.restoreEpoch(e)).sort((a, b) => b.epoch - a.epoch);
      this.senders.set(sender, {
        ...this.restoreEpoch(saved),
        older: older.slice(0, MAX_OLDER_EPOCHS),
        epochFloor: saved.older ? (saved.epochFloor ?? Number.NEGATIVE_INFINITY) : saved.epoch - 1,
      });
    }
  }

  private restoreEpoch({ epoch, highest, holes }: EpochSnapshot): EpochState {
    const streams = new Map<number, StreamState>();
    for (const [stream, h] of Object.entries(highest)) {
      // A state file written before holes were kept says nothing about them: refuse all up to h.
      const ring = new Float64Array(this.window).fill(-1);
      const floor = holes ? h - this.window : h;
      if (holes) {
        const open = new Set(holes[stream] ?? []);
        for (let n = Math.max(0, floor + 1); n <= h; n++) if (!open.has(n)) ring[n % this.window] = n;
      }
      streams.set(Number(stream), { highest: h, floor, ring, received: 0, missing: 0 });
    }
    return { epoch, streams };
  }
}
