/**
 * Reconnect delays: exponential with "equal jitter" (half fixed, half random), so that the gateways
 * of a cell do not all reconnect in the same instant after a broker restart, yet none retries
 * immediately. attempt 0 → [initial/2, initial], doubling up to `maxMs`.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    readonly initialMs = 500,
    readonly maxMs = 30_000,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
