/**
 * Group commit: items that arrive within one turn of the event loop are written together, in one
 * transaction (one fsync), instead of one each. `add` resolves once its item is written, with what
 * `commit` returned for it, and rejects with the error when the write failed (nothing of that
 * group was written).
 */
export class GroupCommit<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    /** Writes a group at once (all or nothing); returns one result per item, in order. */
    private readonly commit: (items: T[]) => R[],
    /** Runs the write after what is queued now; setImmediate lets every message already read join. */
    private readonly defer: (run: () => void) => void = (run) => setImmediate(run),
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      this.defer(() => this.flush());
    });
  }

  /** Writes what waits now. */
  flush(): void {
    this.scheduled = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    let results: R[];
    try {
      results = this.commit(group.map((g) => g.item));
    } catch (err) {
      for (const g of group) g.reject(err);
      return;
    }
    group.forEach((g, i) => {
      g.resolve(results[i]!);
    });
  }
}
