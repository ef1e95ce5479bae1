import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { z } from 'zod';
import { readJsonIfPresent, writeFileAtomic } from '../core/atomic-file.js';
import { RetransmitTimer } from './retransmit-timer.js';
import { MESSAGE_CLASSES, type MessageClass } from './topics.js';

/**
 * Messages that must arrive (market, demand response, meter readings) wait here until every
 * receiver they await has acknowledged them at application level, or they expire. A resend is the
 * same signed envelope, so receivers drop it as a duplicate (and acknowledge it again: the first ack
 * may be what was lost). The outbox is bounded (the oldest entry goes when it is full) and written
 * to a file so that pending messages survive a restart.
 */

export interface OutboxEntry {
  /** `<epoch>:<seq>` of the envelope. */
  id: string;
  cls: MessageClass;
  type: string;
  topic: string;
  payload: string;
  retain: boolean;
  expires: number;
  /** Peers whose acknowledgement is awaited. */
  awaiting: string[];
  /**
   * A message to the whole cell whose receivers are not known yet: the first acknowledgement from
   * anyone completes it, and it is sent at most `maxBlindAttempts` times; one that must reach every
   * receiver goes out all of them even once acknowledged (`heard`).
   */
  blind: boolean;
  heard?: boolean;
  /**
   * Kept in memory only, never written to disk: a message that means nothing after a restart (a
   * market round's price, whose session ends with the process), so its sender pays no fsync per round.
   */
  volatile?: boolean;
  /**
   * A receiver it awaited went offline and is no longer awaited: once complete it reached fewer
   * receivers than it was sent for, so it is not counted as delivered.
   */
  receiverGone?: boolean;
  /** Loaded from disk after a restart: its round trip spans the restart (no RTT sample). In memory only. */
  restored?: boolean;
  attempts: number;
  /** When it was first sent (the delivery time runs from there). */
  firstSentAt: number;
  lastSentAt: number;
  nextAt: number;
}

const EntrySchema = z.object({
  id: z.string(),
  cls: z.enum(MESSAGE_CLASSES),
  type: z.string(),
  topic: z.string(),
  payload: z.string(),
  retain: z.boolean(),
  expires: z.number(),
  awaiting: z.array(z.string()),
  blind: z.boolean(),
  heard: z.boolean().optional(),
  receiverGone: z.boolean().optional(),
  attempts: z.number().int().nonnegative(),
  // A file written before the first send was kept: the last send stands in for it.
  firstSentAt: z.number().optional(),
  lastSentAt: z.number(),
  nextAt: z.number(),
});

export interface OutboxOptions {
  maxEntries: number;
  /**
   * The retransmission timeout before any acknowledgement's round trip was measured; afterwards it
   * follows the measured round trips (`RetransmitTimer`). Each resend waits about twice as long as
   * the one before, with jitter, up to `retryMaxMs`.
   */
  retryInitialMs: number;
  retryMaxMs: number;
  maxBlindAttempts: number;
}

export const DEFAULT_OUTBOX: OutboxOptions = {
  maxEntries: 2000,
  retryInitialMs: 1000,
  retryMaxMs: 8000,
  maxBlindAttempts: 3,
};

/** How often the transport looks at the outbox for what is due: the granularity G of its timer. */
export const OUTBOX_TICK_MS = 100;

/** The retransmission timer of an outbox with these options (`random`: the source of its jitter). */
export function retransmitTimerFor(options: OutboxOptions, random?: () => number): RetransmitTimer {
  return new RetransmitTimer(
    { initialRtoMs: options.retryInitialMs, maxRtoMs: options.retryMaxMs, granularityMs: OUTBOX_TICK_MS },
    random,
  );
}

export type OutboxDropReason = 'overflow' | 'expired' | 'unacked';

/**
 * Classes whose messages must reach every receiver, not only the first to answer: meter readings,
 * which the platform settles from. They keep waiting for a receiver that is away, a receiver is
 * remembered as long as such a message lives, and one sent before its receivers are known goes out
 * all its blind attempts even once acknowledged.
 */
export function mustReachEveryReceiver(cls: MessageClass): boolean {
  return cls === 'meter';
}

export class Outbox {
  private readonly entries = new Map<string, OutboxEntry>();
  private dirty = false;
  /** Appended (and synced) with every message added, between two writes of the whole file. */
  private journalFd: number | undefined;
  /** Why the journal could not be written (a full disk): the message is still sent and kept in memory. */
  journalError: string | undefined;

  /** When each send of a message is due for a resend (the measured round trip, back-off, jitter). */
  readonly timer: RetransmitTimer;

  constructor(
    readonly options: OutboxOptions = DEFAULT_OUTBOX,
    private readonly file?: string,
    timer?: RetransmitTimer,
  ) {
    this.timer = timer ?? retransmitTimerFor(options);
  }

  private get journal(): string | undefined {
    return this.file ? `${this.file}.journal` : undefined;
  }

  /** Puts an added entry on disk before `add` returns, so that a crash right after loses nothing. */
  private journalAdd(entry: OutboxEntry): void {
    if (!this.journal) return;
    try {
      this.journalFd ??= openSync(this.journal, 'a');
      writeSync(this.journalFd, `${JSON.stringify(entry)}\n`);
      fsyncSync(this.journalFd);
      this.journalError = undefined;
    } catch (err) {
      this.journalError = (err as Error).message;
    }
  }

  /** What is on disk no longer matches: unless the entry lives in memory only. */
  private changed(e: OutboxEntry): void {
    if (!e.volatile) this.dirty = true;
  }

  get size(): number {
    return this.entries.size;
  }

  pendingByClass(): Map<MessageClass, number> {
    const out = new Map<MessageClass, number>();
    for (const e of this.entries.values()) out.set(e.cls, (out.get(e.cls) ?? 0) + 1);
    return out;
  }

  /** Adds a message just sent (attempt 1). Returns the entry dropped to make room, if any. */
  add(
    entry: Omit<OutboxEntry, 'attempts' | 'nextAt' | 'firstSentAt' | 'lastSentAt'>,
    now: number,
  ): OutboxEntry | undefined {
    let dropped: OutboxEntry | undefined;
    if (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      dropped = this.entries.get(oldest);
      this.entries.delete(oldest);
    }
    const added = { ...entry, attempts: 1, firstSentAt: now, lastSentAt: now, nextAt: now + this.timer.timeoutMs(1) };
    this.entries.set(entry.id, added);
    if (!added.volatile) this.journalAdd(added);
    this.changed(added);
    if (dropped) this.changed(dropped);
    return dropped;
  }

  /** The pending entry of message `id`, if any. */
  get(id: string): OutboxEntry | undefined {
    return this.entries.get(id);
  }

  /** True while `peer`'s acknowledgement of message `id` would count (it is awaited, or anyone's is). */
  awaits(peer: string, id: string): boolean {
    const e = this.entries.get(id);
    return e !== undefined && (e.blind || e.awaiting.includes(peer));
  }

  /** An acknowledgement from `peer`; returns the entry when this completed it. */
  ack(peer: string, id: string): OutboxEntry | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (e.blind && mustReachEveryReceiver(e.cls)) {
      e.heard = true;
      this.changed(e);
      return undefined;
    }
    if (e.blind) {
      this.entries.delete(id);
      this.changed(e);
      return e;
    }
    const i = e.awaiting.indexOf(peer);
    if (i < 0) return undefined;
    e.awaiting.splice(i, 1);
    this.changed(e);
    if (e.awaiting.length > 0) return undefined;
    this.entries.delete(id);
    return e;
  }

  /**
   * A peer went offline: messages that also wait for others stop waiting for it (a message only it
   * awaits keeps waiting: it is resent when the peer is back, or expires), except those that must
   * reach every receiver.
   */
  peerGone(peer: string): void {
    for (const e of this.entries.values()) {
      if (e.blind || e.awaiting.length < 2 || mustReachEveryReceiver(e.cls)) continue;
      const i = e.awaiting.indexOf(peer);
      if (i >= 0) {
        e.awaiting.splice(i, 1);
        e.receiverGone = true;
        this.changed(e);
      }
    }
  }

  /** A peer came (back) online: what waits for it goes out at the next resend, not after its back-off. */
  peerBack(peer: string, now: number): void {
    for (const e of this.entries.values())
      if (!e.blind && e.awaiting.includes(peer)) e.nextAt = Math.min(e.nextAt, now);
  }

  /**
   * The entries to send again now (their attempt count and next time already advanced), and the
   * ones given up: expired, or blind ones out of attempts.
   */
  takeDue(now: number): { resend: OutboxEntry[]; dropped: { entry: OutboxEntry; reason: OutboxDropReason }[] } {
    const resend: OutboxEntry[] = [];
    const dropped: { entry: OutboxEntry; reason: OutboxDropReason }[] = [];
    for (const e of this.entries.values()) {
      if (e.expires <= now) {
        dropped.push({ entry: e, reason: 'expired' });
        continue;
      }
      if (e.nextAt > now) continue;
      if (e.blind && e.attempts >= this.options.maxBlindAttempts) {
        if (e.heard) {
          this.entries.delete(e.id);
          this.changed(e);
        } else dropped.push({ entry: e, reason: 'unacked' });
        continue;
      }
      e.attempts += 1;
      e.lastSentAt = now;
      e.nextAt = now + this.timer.timeoutMs(e.attempts);
      resend.push(e);
    }
    for (const d of dropped) this.entries.delete(d.entry.id);
    for (const e of resend) this.changed(e);
    for (const d of dropped) this.changed(d.entry);
    return { resend, dropped };
  }

  /** Everything pending. */
  all(): OutboxEntry[] {
    return [...this.entries.values()];
  }

  /**
   * After a (re)connection: everything pending that has not expired is due again, each at its own
   * instant within a short window (`RetransmitTimer.spreadMs`) rather than all at once.
   */
  spreadDue(now: number): number {
    let n = 0;
    for (const e of this.entries.values()) {
      // A message to the cell out of attempts keeps waiting its last timeout for a late ack.
      if (e.expires <= now || (e.blind && e.attempts >= this.options.maxBlindAttempts)) continue;
      e.nextAt = now + this.timer.spreadMs();
      n += 1;
    }
    return n;
  }

  /**
   * Writes the whole file when something changed since the last write, then empties the journal (a
   * crash in between replays entries the file already has, which is harmless).
   */
  flush(): void {
    if (!this.file || !this.dirty) return;
    const kept = [...this.entries.values()].filter((e) => !e.volatile).map(({ restored: _, ...e }) => e);
    writeFileAtomic(this.file, `${JSON.stringify({ v: 1, entries: kept })}\n`);
    this.dirty = false;
    if (this.journal) {
      this.journalFd ??= openSync(this.journal, 'a');
      ftruncateSync(this.journalFd, 0);
    }
  }

  close(): void {
    this.flush();
    if (this.journalFd !== undefined) closeSync(this.journalFd);
    this.journalFd = undefined;
  }

  /** Loads the entries of the last run that have not expired; a damaged file is ignored (and replaced). */
  load(now: number): number {
    if (!this.file) return 0;
    let raw: unknown;
    try {
      raw = readJsonIfPresent(this.file);
    } catch {
      raw = undefined; // damaged: the journal may still hold entries
    }
    const parsed = z.object({ v: z.literal(1), entries: z.array(EntrySchema) }).safeParse(raw);
    const saved = parsed.success ? parsed.data.entries : [];
    // Then what was added after that write; a line cut short by the crash is skipped.
    const journaled: z.infer<typeof EntrySchema>[] = [];
    if (this.journal && existsSync(this.journal)) {
      for (const line of readFileSync(this.journal, 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const e = EntrySchema.safeParse(JSON.parse(line));
          if (e.success) journaled.push(e.data);
        } catch {
          // the torn last line of a crash
        }
      }
    }
    for (const e of [...saved, ...journaled]) {
      if (e.expires > now)
        this.entries.set(e.id, { ...e, firstSentAt: e.firstSentAt ?? e.lastSentAt, restored: true, nextAt: now });
    }
    this.dirty = true;
    return this.entries.size;
  }
}
