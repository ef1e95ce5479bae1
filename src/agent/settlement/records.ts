import { join } from 'node:path';
import { z } from 'zod';
import type { TradeMarket } from '../../comms/messages/market.js';
import { readJsonIfPresent, writeFileAtomic } from '../../core/atomic-file.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ClosedInterval } from '../../platform/meter-energy.js';
import type { OwnTrade } from '../../platform/settlement-check.js';

/**
 * What a gateway's roles agreed and measured, per trading interval, so that it can check the
 * platform's settlement drafts on its own: the energy its meter measured (each interval's, as it
 * sent it to the platform) and the trades of each market. Kept on disk
 * (`stateDir/<id>/settlement-records.json`, written atomically when an interval closes or a trade is
 * recorded) for a bounded number of intervals, so that a gateway restarted before it signs still
 * has them.
 */

/** Intervals kept: two days of 15-minute intervals. */
const KEPT_INTERVALS = 192;

const Saved = z
  .object({
    /** The first interval the records cover from its start (earlier ones are not known). */
    since: z.number(),
    metered: z.record(z.string(), z.object({ kWh: z.number(), coverage: z.number() }).strict()),
    trades: z.record(
      z.string(),
      z.array(
        z
          .object({
            seller: z.string(),
            buyer: z.string(),
            kWh: z.number().optional(),
            pricePerKWh: z.number().optional(),
          })
          .strict(),
      ),
    ),
  })
  .strict();
type Saved = z.infer<typeof Saved>;

/** The markets whose agreements a gateway records: the trading markets, and its DR dispatches. */
export type RecordedMarket = TradeMarket | 'dr';

/** The write side, for the roles. */
export interface SettlementRecorder {
  /** A metering interval's energy as sent to the platform (`meter/energy`). */
  meteredInterval(interval: ClosedInterval): void;
  /**
   * The trades of a market interval its roles agreed (a price it did not set left out); under `dr`,
   * the DR dispatches of the interval, from provider to aggregator at the dispatched kWh and price.
   */
  agreed(interval: number, market: RecordedMarket, trades: readonly OwnTrade[]): void;
  /**
   * Trades agreed with one counterparty at a time (a DR dispatch from each aggregator): they take the
   * place of those recorded with the same seller and buyer, the others of the interval stay.
   */
  agreedWith(interval: number, market: RecordedMarket, trades: readonly OwnTrade[]): void;
}

export class SettlementRecords implements SettlementRecorder {
  private readonly file: string;
  private saved: Saved;

  constructor(
    stateDir: string,
    gatewayId: string,
    private readonly intervalMs: number,
    /** kWh of the interval's energy hours per real-time kWh (1 in the field). */
    private readonly energyScale: number,
    private readonly log: Logger,
    nowMs: number,
  ) {
    this.file = join(stateDir, gatewayId, 'settlement-records.json');
    let saved: Saved | undefined;
    try {
      const r = Saved.safeParse(readJsonIfPresent(this.file));
      if (r.success) saved = r.data;
    } catch (err) {
      log.warn({ file: this.file, err: errorMessage(err) }, 'settlement records not readable: starting afresh');
    }
    // Records start with the next whole interval (a restart's partial interval is measured from the samples it has).
    this.saved = saved ?? { since: this.intervalOf(nowMs) + intervalMs, metered: {}, trades: {} };
  }

  private intervalOf(timeMs: number): number {
    return Math.floor(timeMs / this.intervalMs) * this.intervalMs;
  }

  meteredInterval(interval: ClosedInterval): void {
    // Export positive, as settlements write metered energy.
    this.saved.metered[String(interval.fromMs)] = {
      kWh: Number((-interval.kWh * this.energyScale).toFixed(9)),
      coverage: interval.coveredMs / (interval.toMs - interval.fromMs),
    };
    this.save();
  }

  agreed(interval: number, market: RecordedMarket, trades: readonly OwnTrade[]): void {
    this.saved.trades[`${interval}/${market}`] = trades.map((t) => ({ ...t }));
    this.save();
  }

  agreedWith(interval: number, market: RecordedMarket, trades: readonly OwnTrade[]): void {
    const samePair = (a: OwnTrade, b: OwnTrade) => a.seller === b.seller && a.buyer === b.buyer;
    const kept = (this.saved.trades[`${interval}/${market}`] ?? []).filter((t) => !trades.some((n) => samePair(t, n)));
    this.agreed(interval, market, [...kept, ...trades]);
  }

  /** The party's own metered figure of an interval, if its meter measured it. */
  metered(interval: number): { kWh: number; coverage: number } | undefined {
    return this.saved.metered[String(interval)];
  }

  /**
   * The trades its roles agreed in a market interval: an empty list when it agreed none, undefined
   * when the records do not reach back to that interval.
   */
  trades(interval: number, market: RecordedMarket): OwnTrade[] | undefined {
    const t = this.saved.trades[`${interval}/${market}`];
    if (t) return t;
    return interval >= this.saved.since ? [] : undefined;
  }

  private save(): void {
    const keep = (r: Record<string, unknown>) => {
      const keys = Object.keys(r).sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
      // Up to three records an interval: the cell's market, the one above and DR dispatches.
      for (const k of keys.slice(0, Math.max(0, keys.length - KEPT_INTERVALS * 3))) delete r[k];
    };
    keep(this.saved.metered);
    keep(this.saved.trades);
    try {
      writeFileAtomic(this.file, `${JSON.stringify(this.saved)}\n`);
    } catch (err) {
      this.log.warn({ file: this.file, err: errorMessage(err) }, 'settlement records not written');
    }
  }
}
