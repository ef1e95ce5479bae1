/**
 * "Log a problem once when it begins, and once when it ends": a full disk, a device that does not
 * answer or a failing tick would otherwise log every cycle. Remembers, per key, the problem going on
 * now; the caller logs what `failed` and `ended` say is news, with its own words and fields. Pure: the
 * caller passes the time (only used to say how long a problem lasted).
 */
export class OngoingProblems<K = string> {
  private readonly problems = new Map<K, { message: string; sinceMs: number; failures: number }>();

  /**
   * Notes that `key` failed with `message`: `began` when nothing was going on for it, `changed` when
   * it failed differently before (log it, or at a lower level), undefined when it is the same problem
   * again (do not log it).
   */
  failed(key: K, message: string, nowMs = 0): 'began' | 'changed' | undefined {
    const current = this.problems.get(key);
    if (!current) {
      this.problems.set(key, { message, sinceMs: nowMs, failures: 1 });
      return 'began';
    }
    current.failures++;
    if (current.message === message) return undefined;
    current.message = message;
    return 'changed';
  }

  /**
   * Notes that `key` went well: the problem that ended now (log it once), with how long it lasted and
   * how many failures it was; undefined when nothing was going on.
   */
  ended(key: K, nowMs = 0): { message: string; durationMs: number; failures: number } | undefined {
    const current = this.problems.get(key);
    if (!current) return undefined;
    this.problems.delete(key);
    return { message: current.message, durationMs: nowMs - current.sinceMs, failures: current.failures };
  }

  /** The problem going on now for `key`, if any. */
  current(key: K): string | undefined {
    return this.problems.get(key)?.message;
  }
}
