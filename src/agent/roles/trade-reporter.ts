import { join } from 'node:path';
import { z } from 'zod';
import type { TradeMarket, TradeReportBody } from '../../comms/messages/market.js';
import { readJsonIfPresent, writeFileAtomic } from '../../core/atomic-file.js';
import { errorMessage } from '../../core/errors.js';
import { OngoingProblems } from '../../core/ongoing-problems.js';
import { type OwnTrade, RECORDED_SALE_KWH } from '../../platform/settlement-check.js';
import type { RoleContext } from './role.js';

/** Trades wait this long (in the bounded outbox) for a platform that is away, like meter readings. */
const TRADE_REPORT_TTL_MS = 24 * 3_600_000;

/** Below this a flow is rounding noise of the market, not a trade. */
const MIN_TRADE_KWH = 1e-6;

const Cleared = z.object({ interval: z.number().int().nonnegative() }).strict();

const kWh = (x: number) => Number(x.toFixed(6));

/**
 * Reports each cleared market interval's trades to the platform (`mkt/trades`, addressed to
 * `comms.reliability.platform`, reliable: on disk in the outbox before `report` returns) and keeps,
 * across restarts, the last interval it cleared (`stateDir/<id>/cleared-<market>.json`, written
 * atomically), so that an interval is never traded twice, even when the clock goes back.
 */
export class TradeReporter {
  private lastCleared: number | undefined;
  private readonly file: string;
  private readonly writeProblem = new OngoingProblems<'write'>();

  constructor(
    private readonly ctx: RoleContext,
    market: TradeMarket,
  ) {
    this.file = join(ctx.config.stateDir, ctx.config.gateway.id, `cleared-${market}.json`);
    try {
      const saved = Cleared.safeParse(readJsonIfPresent(this.file));
      if (saved.success) this.lastCleared = saved.data.interval;
    } catch (err) {
      ctx.log.warn({ file: this.file, err: errorMessage(err) }, 'last cleared interval not readable: starting afresh');
    }
  }

  /** Whether this interval (start, ms) or a later one was cleared already, before a restart or a clock jump. */
  alreadyCleared(interval: number): boolean {
    return this.lastCleared !== undefined && interval <= this.lastCleared;
  }

  async report(body: TradeReportBody): Promise<void> {
    const platform = this.ctx.config.comms.reliability.platform;
    if (platform && this.ctx.transport)
      await this.ctx.transport.publish('mkt', 'trades', body, { target: platform, ttlMs: TRADE_REPORT_TTL_MS });
    this.lastCleared = Math.max(this.lastCleared ?? 0, body.interval);
    try {
      writeFileAtomic(this.file, `${JSON.stringify({ interval: this.lastCleared })}\n`);
      if (this.writeProblem.ended('write', this.ctx.clock.now()))
        this.ctx.log.info({ file: this.file }, 'last cleared interval written again');
    } catch (err) {
      const message = errorMessage(err);
      if (this.writeProblem.failed('write', message, this.ctx.clock.now()))
        this.ctx.log.warn({ file: this.file, err: message }, 'last cleared interval not written');
    }
  }
}

/** What this trader bought from its neighbours in the first slot (each trade between traders is the buyer's to report). */
export function purchasesFromNeighbours(
  self: string,
  exchangeKWh: Record<string, number>,
  pricePerKWh: number,
): TradeReportBody['trades'] {
  return Object.entries(exchangeKWh)
    .filter(([, x]) => x < -MIN_TRADE_KWH)
    .map(([peer, x]) => ({ seller: peer, buyer: self, kWh: kWh(-x), pricePerKWh }));
}

/**
 * What this trader sold to its neighbours in the first slot, as it records them for settlement: the
 * buyers report them (at their price, after the link's losses), so only that they are there counts.
 */
export function salesToNeighbours(self: string, exchangeKWh: Record<string, number>): OwnTrade[] {
  return Object.entries(exchangeKWh)
    .filter(([, x]) => x >= RECORDED_SALE_KWH)
    .map(([peer]) => ({ seller: self, buyer: peer }));
}

/** The trades between a trader and its prosumers in the first slot, from each one's net energy (+ taken from the MG). */
export function tradesWithProsumers(
  self: string,
  netKWhByProsumer: Record<string, number>,
  pricePerKWh: number,
): TradeReportBody['trades'] {
  return Object.entries(netKWhByProsumer)
    .filter(([, x]) => Math.abs(x) > MIN_TRADE_KWH)
    .map(([id, x]) =>
      x > 0
        ? { seller: self, buyer: id, kWh: kWh(x), pricePerKWh }
        : { seller: id, buyer: self, kWh: kWh(-x), pricePerKWh },
    );
}
