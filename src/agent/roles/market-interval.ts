import type { TradeMarket, TradeReportBody } from '../../comms/messages/market.js';
import {
  type ClosedInterval,
  closeMarketInterval,
  type IntervalSettings,
  type IntervalTrader,
  openMarketInterval,
} from '../../trading/market-interval.js';
import type { RoleContext } from './role.js';
import { SessionRunner } from './session-runner.js';
import { TradeReporter } from './trade-reporter.js';

/**
 * One market level of a gateway, interval after interval: the MG trader runs the cell's market
 * (`cell`, message type `price`), the coupling agent the market one level up (`upper`, `price-up`).
 * Each interval's session runs with the neighbouring traders over the transport until it ends, is
 * closed (`closeMarketInterval`), and its trades are reported to the platform, on disk before the
 * interval counts as cleared, so that no interval is traded twice across restarts.
 */
export class MarketIntervalRunner {
  private readonly runner: SessionRunner;
  private readonly reporter: TradeReporter;

  constructor(
    ctx: RoleContext,
    private readonly market: TradeMarket,
  ) {
    this.runner = new SessionRunner(ctx, market === 'cell' ? 'price' : 'price-up');
    this.reporter = new TradeReporter(ctx, market);
  }

  /** Whether this interval (start, ms) or a later one was cleared already, before a restart or a clock jump. */
  alreadyCleared(interval: number): boolean {
    return this.reporter.alreadyCleared(interval);
  }

  /**
   * Runs one interval's session to its end (settled with every neighbour, out of rounds, stopped, or
   * at `deadlineMs`, clock time) and closes it.
   */
  async run(
    session: string,
    trader: IntervalTrader,
    settings: IntervalSettings & { roundMs: number },
    startPrices: readonly number[] | undefined,
    deadlineMs: number,
  ): Promise<ClosedInterval> {
    const open = openMarketInterval(session, trader, settings, startPrices);
    await this.runner.run(open, settings.roundMs, deadlineMs);
    return closeMarketInterval(open, trader);
  }

  /** The interval's trades to the platform (outbox, on disk) and the interval marked as cleared. */
  report(session: string, interval: number, converged: boolean, trades: TradeReportBody['trades']): Promise<void> {
    return this.reporter.report({ session, interval, market: this.market, converged, trades });
  }

  stop(): void {
    this.runner.stop();
  }
}

/**
 * `market-not-converged:<market>` while the market's last session ended without settling (nothing
 * traded with the neighbours; the trader's own devices and grid balance it), naming the interval and
 * the rounds; cleared by the next session that converges.
 */
export function alarmConvergence(
  ctx: RoleContext,
  market: TradeMarket,
  session: { session: string; converged: boolean; rounds: number },
  intervalMs: number,
): void {
  const alarms = ctx.alarms;
  if (!alarms) return;
  const id = `market-not-converged:${market}`;
  const now = ctx.clock.now();
  if (session.converged) {
    alarms.clear(id, now);
    return;
  }
  const from = Number(session.session);
  const interval = Number.isFinite(from)
    ? `${new Date(from).toISOString()}–${new Date(from + intervalMs).toISOString().slice(11)}`
    : session.session;
  alarms.raise(
    id,
    {
      kind: 'market-not-converged',
      severity: 'warning',
      source: ctx.config.gateway.id,
      text: `${market === 'cell' ? 'cell' : 'upper'} market interval ${interval} did not settle in its time (${session.rounds} rounds): nothing traded with neighbours, its own devices and grid connection balance it`,
    },
    now,
  );
}
