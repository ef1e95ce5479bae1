import {
  type CellLimitState,
  type CellLimits,
  cellTradingLimits,
  INITIAL_CELL_LIMITS,
} from '../../control/coupling.js';
import { errorMessage } from '../../core/errors.js';
import { type SessionInstance, type TransformerLimits, upperMarketTrader } from '../../trading/market-interval.js';
import type { UpperMarketConfig } from '../config.js';
import type { TimeScale } from '../scheduler.js';
import { CellReadings } from './cell-readings.js';
import type { CellImbalance, Slot } from './hand-over.js';
import { alarmConvergence, MarketIntervalRunner } from './market-interval.js';
import type { Role, RoleContext } from './role.js';
import { RECENT_SESSIONS, warmStart } from './session-runner.js';
import { purchasesFromNeighbours, salesToNeighbours } from './trade-reporter.js';

export interface UpwardTrade {
  session: string;
  /** What the cell's market left over, kWh per slot (+ = the cell is short). */
  imbalanceKWh: number[];
  rounds: number;
  converged: boolean;
  /** What the cell's energy one level up was worth: the session's prices, or the cell's own where it traded nothing. */
  prices: number[];
  /** The prices the session itself reached: where the next one starts. */
  reachedPrices: number[];
  /** First slot: energy sent to (+) or received from (−) each neighbouring cell. */
  exchangeKWh: Record<string, number>;
  upstreamImportKWh: number[];
  upstreamExportKWh: number[];
  endedAt: number;
  /** What this agent knew and decided, for comparison with the centralised optimum. */
  instance: SessionInstance | undefined;
}

/** The coupling agent's status (`state()`, the status page's `roles["coupling-agent"]`). */
export type CouplingAgentState = {
  /** The last trade of the cell's leftover one level up. */
  upwardTrade: UpwardTrade | null;
  upwardTrades: number;
  convergedUpwardTrades: number;
  recentUpwardTrades: UpwardTrade[];
  /** The cell's import/export limits for the market (factors, and energy per slot once set). */
  cellLimits: CellLimitState | CellLimits;
  transformerKVA: number | null;
  loadingPct: number | null;
  peakLoadingPct: number;
  overloaded: boolean;
};

/**
 * The coupling agent at the transformer: watches the transformer's loading from the cell's net power
 * (warning when it passes the rating) and the cell's voltages from its prosumers' readings, and each
 * tertiary interval sets the energy the cell may import and export in the market (congestion
 * management, `cellTradingLimits`), which the MG trader applies to its grid exchange and links.
 * With `upperMarket`, it also trades what the cell's market left over (the MG trader's grid exchange)
 * one level up: a market session with the coupling agents of neighbouring cells and the upstream
 * connection, by the same algorithm (hierarchical balancing, paper section II).
 */
export class CouplingAgentRole implements Role<CouplingAgentState> {
  readonly name = 'coupling-agent' as const;
  private readings: CellReadings | undefined;
  private loadingPct: number | null = null;
  private peakLoadingPct = 0;
  private overloaded = false;
  private ratingKVA = 0;
  private limits: CellLimitState | CellLimits = INITIAL_CELL_LIMITS;
  private upperMarket: MarketIntervalRunner | undefined;
  private running: Promise<void> | undefined;
  private tradedSession: string | undefined;
  /** The last day of trades above the cell. */
  private readonly upward: UpwardTrade[] = [];
  private tradeCount = 0;
  private convergedCount = 0;

  /** `cellLimits`: this role alone writes the cell's limits, for the MG trader's market. */
  constructor(private readonly cellLimits: Slot<CellLimits>) {}

  start(ctx: RoleContext): void {
    if (ctx.config.upperMarket && ctx.transport) this.upperMarket = new MarketIntervalRunner(ctx, 'upper');
    this.ratingKVA = ctx.config.gateway.transformerKVA ?? 0;
    this.readings = new CellReadings(3 * ctx.config.scheduler.secondaryMs);
    if (ctx.transport) {
      this.readings.listen(ctx.transport, ctx.config.gateway.cell);
    }
  }

  tick(scale: TimeScale, ctx: RoleContext): void {
    if (scale === 'tertiary') this.setLimits(ctx);
    // Checked on the fast scales too: the trade above should start as soon as the cell's market clears.
    if (scale !== 'tertiary') this.tradeUpward(ctx);
    if (scale !== 'secondary' || !this.readings || this.ratingKVA <= 0) return;
    const pct = (100 * Math.abs(this.readings.netW(ctx.clock.now()))) / (this.ratingKVA * 1000);
    this.loadingPct = pct;
    this.peakLoadingPct = Math.max(this.peakLoadingPct, pct);
    const over = pct > 100;
    if (over !== this.overloaded) {
      this.overloaded = over;
      if (over) ctx.log.warn({ loadingPct: Math.round(pct) }, 'transformer overloaded');
      else ctx.log.info({ loadingPct: Math.round(pct) }, 'transformer loading back within rating');
    }
  }

  private setLimits(ctx: RoleContext): void {
    if (!this.readings || this.ratingKVA <= 0) return;
    const voltages = [...this.readings.fresh(ctx.clock.now()).values()]
      .map((r) => r.voltagePu)
      .filter((v): v is number => v !== null);
    const { min, max } = ctx.config.voltageLimitsPu;
    const slotHours = (ctx.config.market?.slotMinutes ?? ctx.config.scheduler.tertiaryMs / 60_000) / 60;
    const limits = cellTradingLimits(this.limits, {
      ratingKVA: this.ratingKVA,
      slotHours,
      maxVoltagePu: voltages.length ? Math.max(...voltages) : null,
      minVoltagePu: voltages.length ? Math.min(...voltages) : null,
      vMinPu: min,
      vMaxPu: max,
    });
    if (limits.exportFactor !== this.limits.exportFactor || limits.importFactor !== this.limits.importFactor) {
      ctx.log.info({ importKWh: limits.importKWh, exportKWh: limits.exportKWh }, 'cell trading limits changed');
    }
    this.limits = limits;
    this.cellLimits.set(limits);
  }

  /** Once per cleared cell market: trades the cell's imbalance with the level above. */
  private tradeUpward(ctx: RoleContext): void {
    const upper = ctx.config.upperMarket;
    const imbalance = ctx.shared.cellImbalance.get();
    if (!upper || !this.upperMarket || !imbalance || this.running || imbalance.session === this.tradedSession) return;
    this.tradedSession = imbalance.session;
    if (this.upperMarket.alreadyCleared(Number(imbalance.session))) return;
    this.running = this.runUpward(ctx, upper, imbalance)
      .catch((err) => ctx.log.error({ err: errorMessage(err) }, 'upward trade failed'))
      .finally(() => {
        this.running = undefined;
      });
  }

  private async runUpward(ctx: RoleContext, upper: UpperMarketConfig, imbalance: CellImbalance): Promise<void> {
    const trader = upperMarketTrader({
      traderId: ctx.config.gateway.id,
      slotHours: imbalance.slotHours,
      leftoverKWh: imbalance.netImportKWh,
      gridImport: upper.gridImport,
      gridExport: upper.gridExport,
      neighbours: upper.neighbours,
      limits: this.limitsKWh(),
    });
    const session = `up-${imbalance.session}`;
    // Done before the next interval's cell market leaves its imbalance.
    const closed = await this.upperMarket!.run(
      session,
      trader,
      upper,
      warmStart(this.upward.at(-1), imbalance.session, ctx.config.scheduler.tertiaryMs),
      imbalance.intervalEndMs ?? Number.POSITIVE_INFINITY,
    );
    // Without agreement, the cell's leftover stays with its upstream connection.
    const { decision, prices } = closed;
    const trade: UpwardTrade = {
      session: imbalance.session,
      imbalanceKWh: imbalance.netImportKWh,
      rounds: closed.rounds,
      converged: closed.settled,
      prices,
      reachedPrices: closed.reachedPrices,
      exchangeKWh: closed.exchangeKWh,
      upstreamImportKWh: decision?.gridImport ?? [],
      upstreamExportKWh: decision?.gridExport ?? [],
      endedAt: ctx.clock.now(),
      instance: closed.instance,
    };
    // On disk (outbox) before the interval counts as traded above: a restart does not trade it again.
    const trades = purchasesFromNeighbours(ctx.config.gateway.id, trade.exchangeKWh, prices[0] ?? 0);
    ctx.settlement?.agreed(Number(imbalance.session), 'upper', [
      ...trades,
      ...salesToNeighbours(ctx.config.gateway.id, trade.exchangeKWh),
    ]);
    await this.upperMarket!.report(session, Number(imbalance.session), trade.converged, trades);
    this.upward.push(trade);
    if (this.upward.length > 96) this.upward.shift();
    this.tradeCount++;
    if (trade.converged) this.convergedCount++;
    alarmConvergence(ctx, 'upper', trade, ctx.config.scheduler.tertiaryMs);
    ctx.log.info(
      {
        session: imbalance.session,
        imbalanceKWh: imbalance.netImportKWh[0],
        exchangeKWh: trade.exchangeKWh,
        upstreamKWh: (trade.upstreamImportKWh[0] ?? 0) - (trade.upstreamExportKWh[0] ?? 0),
        priceSlot0: prices[0],
        converged: trade.converged,
        rounds: closed.rounds,
        trades: trades.length,
      },
      'cell imbalance traded one level up',
    );
  }

  /** The transformer's limits once set; none before the first interval. */
  private limitsKWh(): TransformerLimits {
    const l = this.limits;
    return 'importKWh' in l
      ? { importKWh: l.importKWh, exportKWh: l.exportKWh }
      : { importKWh: Number.POSITIVE_INFINITY, exportKWh: Number.POSITIVE_INFINITY };
  }

  async stop(): Promise<void> {
    this.upperMarket?.stop();
    await this.running;
  }

  state(): CouplingAgentState {
    return {
      upwardTrade: this.upward.at(-1) ?? null,
      upwardTrades: this.tradeCount,
      convergedUpwardTrades: this.convergedCount,
      recentUpwardTrades: this.upward.slice(-RECENT_SESSIONS),
      cellLimits: this.limits,
      transformerKVA: this.ratingKVA || null,
      loadingPct: this.loadingPct,
      peakLoadingPct: this.peakLoadingPct,
      overloaded: this.overloaded,
    };
  }
}
