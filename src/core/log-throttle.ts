/**
 * Lets an event that can repeat by the thousand (a skipped cycle, a message given up) reach the log
 * at most once per period and key: the first one at once, each later line with how many happened
 * since the one before. The metrics still count every event. Pure: the caller passes the time.
 */
export class LogThrottle {
  private readonly keys = new Map<string, { loggedAt: number; held: number }>();

  constructor(private readonly everyMs: number) {}

  /** How many events a line logged now stands for (this one and those held back before it); 0: hold this one back. */
  take(key: string, now: number): number {
    const last = this.keys.get(key);
    if (last && now - last.loggedAt < this.everyMs) {
      last.held++;
      return 0;
    }
    this.keys.set(key, { loggedAt: now, held: 0 });
    return (last?.held ?? 0) + 1;
  }
}
