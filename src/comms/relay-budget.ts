/**
 * What a D2D relay lets through for each gateway it relays for: at most `ratePerS` messages a second
 * (a token bucket holding one second's worth) and a queue of at most `queueMax` waiting; beyond
 * that a message is dropped (the caller counts it). Pure: the caller passes the time.
 */
export class RelayBudget<T> {
  private readonly buckets = new Map<string, { queue: T[]; tokens: number; at: number }>();

  constructor(
    private readonly ratePerS: number,
    private readonly queueMax: number,
  ) {}

  /** Queues `item` for `key`; false when its queue is full (the item is dropped). */
  offer(key: string, item: T, now: number): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { queue: [], tokens: this.ratePerS, at: now };
      this.buckets.set(key, bucket);
    }
    if (bucket.queue.length >= this.queueMax) return false;
    bucket.queue.push(item);
    return true;
  }

  /** The items that may go now, oldest first for each key. */
  take(now: number): { key: string; item: T }[] {
    const due: { key: string; item: T }[] = [];
    for (const [key, bucket] of this.buckets) {
      bucket.tokens = Math.min(this.ratePerS, bucket.tokens + ((now - bucket.at) * this.ratePerS) / 1000);
      bucket.at = now;
      while (bucket.queue.length > 0 && bucket.tokens >= 1) {
        bucket.tokens -= 1;
        due.push({ key, item: bucket.queue.shift()! });
      }
    }
    return due;
  }

  /** Items waiting over every key. */
  get pending(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.queue.length;
    return n;
  }

  /** Drops the queue of `key` (relaying for it stopped); how many items were dropped. */
  forget(key: string): number {
    const dropped = this.buckets.get(key)?.queue.length ?? 0;
    this.buckets.delete(key);
    return dropped;
  }
}
