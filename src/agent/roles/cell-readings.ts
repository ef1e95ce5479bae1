import type { MeterReadingBody } from '../../comms/messages/meter.js';
import type { Transport } from '../../comms/transport.js';

/** The latest reading of each prosumer of a cell, as the transformer gateway's roles see them. */
export class CellReadings {
  private readonly latest = new Map<string, MeterReadingBody & { ts: number }>();

  constructor(private readonly maxAgeMs: number) {}

  listen(transport: Transport, cell: string): void {
    // Only the latest reading of each prosumer counts here: a house resends one until acknowledged or
    // three cycles old (it is not kept on disk).
    transport.on({ cell, cls: 'meter', type: 'reading' }, ({ envelope }) => {
      // A resend that arrives late must not replace a newer reading.
      if ((this.latest.get(envelope.sender)?.ts ?? Number.NEGATIVE_INFINITY) >= envelope.ts) return;
      this.latest.set(envelope.sender, { ...envelope.body, ts: envelope.ts });
    });
  }

  /** Fresh readings only: a prosumer that stopped reporting drops out of the sums. */
  fresh(now: number): Map<string, MeterReadingBody & { ts: number }> {
    return new Map([...this.latest].filter(([, r]) => now - r.ts <= this.maxAgeMs));
  }

  netW(now: number): number {
    let sum = 0;
    for (const r of this.fresh(now).values()) sum += r.netW;
    return sum;
  }
}
