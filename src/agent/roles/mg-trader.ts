import type { DispatchBody, OfferBody } from '../../comms/messages/market.js';
import { errorMessage } from '../../core/errors.js';
import { OngoingProblems } from '../../core/ongoing-problems.js';
import { cellMarketTrader, type SessionInstance } from '../../trading/market-interval.js';
import { dispatchShares, type ProsumerOffer } from '../../trading/prosumers.js';
import type { TraderDecision } from '../../trading/trader.js';
import type { MarketConfig } from '../config.js';
import type { TimeScale } from '../scheduler.js';
import { CellReadings } from './cell-readings.js';
import type { CellImbalance, Slot } from './hand-over.js';
import { alarmConvergence, MarketIntervalRunner } from './market-interval.js';
import { PV_OFFER_COST } from './market-messages.js';
import type { Role, RoleContext } from './role.js';
import { RECENT_SESSIONS, warmStart } from './session-runner.js';
import { purchasesFromNeighbours, salesToNeighbours, tradesWithProsumers } from './trade-reporter.js';

export interface SessionRecord {
  session: string;
  startedAt: number;
  endedAt: number;
  rounds: number;
  converged: boolean;
  /** The cell's net demand offered to the market, kWh per slot. */
  demandKWh: number[];
  /** The prices it acted on: the session's, or its own where it traded nothing with its neighbours. */
  prices: number[];
  /** The prices the session itself reached: where the next one starts. */
  reachedPrices: number[];
  /** Energy sent to (+) or received from (−) each neighbour in the first slot. */
  exchangeKWh: Record<string, number>;
  gridImportKWh: number[];
  maxImbalanceKWh: number;
  /** What this trader knew and decided, for comparison with the centralised optimum. */
  instance: SessionInstance | undefined;
}

/** The MG trader's status (`state()`, the status page's `roles["mg-trader"]`). */
export type MgTraderState = {
  /** The cell's net consumption from its prosumers' fresh readings, W. */
  cellNetW: number | null;
  prosumers: Record<string, { netW: number; pvW: number; voltagePu: number | null }>;
  /** Prosumers whose offer the trader holds. */
  offers: number;
  /** The last session. */
  market: SessionRecord | null;
  sessions: number;
  convergedSessions: number;
  worstImbalanceKWh: number;
  recentSessions: SessionRecord[];
  /** The first slot's price of each session of the last day, for the status page's plot. */
  history: { ts: number; v: number }[];
};

/** The devices' schedule of a cleared session, in the form `dispatchShares` splits among prosumers. */
function scheduleOf(decision: TraderDecision) {
  return {
    generation: decision.generation,
    curtailment: decision.curtailment,
    charge: decision.storage.map((x) => x.charge),
    discharge: decision.storage.map((x) => x.discharge),
  };
}

/**
 * The microgrid trader at the transformer gateway. It gathers its prosumers' readings and, at every
 * tertiary interval, runs one market session (Algorithm 1) with its neighbouring MG traders over the
 * transport: the cell's expected net demand (persistence of the readings) against its own resources
 * from `market`. The session runs beside the scheduler so that device cycles are never held up.
 */
export class MgTraderRole implements Role<MgTraderState> {
  readonly name = 'mg-trader' as const;
  private readings: CellReadings | undefined;
  private cellMarket: MarketIntervalRunner | undefined;
  /** Intervals that come up cleared before (a restart, the clock gone back): logged when it begins and ends. */
  private readonly clearedBefore = new OngoingProblems<'cleared-before'>();
  private running: Promise<void> | undefined;
  /** The last day of sessions (96 intervals of 15 minutes). */
  private readonly sessions: SessionRecord[] = [];
  private sessionCount = 0;
  private convergedCount = 0;
  private readonly offers = new Map<string, { offer: OfferBody; ts: number }>();
  private lastSampleMs = 0;
  /** The cell's voltage alarms this role raised at its last look. */
  private cellVoltageAlarms = new Set<string>();

  /** `cellImbalance`: this role alone writes the cell's leftover, for the coupling agent to trade above. */
  constructor(private readonly cellImbalance: Slot<CellImbalance>) {}

  start(ctx: RoleContext): void {
    this.readings = new CellReadings(3 * ctx.config.scheduler.secondaryMs);
    const transport = ctx.transport;
    if (!transport) return;
    this.readings.listen(transport, ctx.config.gateway.cell);
    this.cellMarket = new MarketIntervalRunner(ctx, 'cell');
    transport.on({ cell: ctx.config.gateway.cell, cls: 'mkt', type: 'offer' }, ({ envelope }) => {
      this.offers.set(envelope.sender, { offer: envelope.body, ts: ctx.clock.now() });
    });
  }

  /**
   * The prosumers' offers of the last interval in the market's form (kWh per slot). Offers older than
   * two intervals are dropped.
   */
  private prosumerOffers(ctx: RoleContext, T: number, slotHours: number, now: number): ProsumerOffer[] {
    const maxAge = 2 * ctx.config.scheduler.tertiaryMs;
    const kWh = (w: number) => Number(((w / 1000) * slotHours).toFixed(6));
    const offers: ProsumerOffer[] = [];
    for (const [id, { offer, ts }] of this.offers) {
      if (now - ts > maxAge) continue;
      offers.push({
        id,
        demand: Array(T).fill(kWh(offer.loadW)),
        generators: offer.pvW > 0 ? [{ ...PV_OFFER_COST, max: Array(T).fill(kWh(offer.pvW)) }] : [],
        flexibleLoads: offer.flexibility.map((f) => ({
          a: f.a,
          b: f.b,
          max: Array(T).fill(Number((f.maxKW * slotHours).toFixed(6))),
        })),
      });
    }
    return offers;
  }

  tick(scale: TimeScale, ctx: RoleContext): void {
    this.lastSampleMs = ctx.clock.now();
    if (scale === 'secondary') this.watchCellVoltages(ctx);
    const market = ctx.config.market;
    if (scale !== 'tertiary' || !market || !ctx.transport || !this.readings) return;
    if (this.running) {
      ctx.log.warn('market session still running at the next interval: skipped one');
      return;
    }
    this.running = this.runSession(ctx, market)
      .catch((err) => ctx.log.error({ err: errorMessage(err) }, 'market session failed'))
      .finally(() => {
        this.running = undefined;
      });
  }

  /**
   * `voltage-high:<house>` / `voltage-low:<house>` while a house of the cell reports its connection
   * point outside the limits (its `meter/reading`); cleared when it reports being back within them. A
   * house whose readings stop (its link or the broker down) keeps its alarm: silence is no all-clear.
   */
  private watchCellVoltages(ctx: RoleContext): void {
    const alarms = ctx.alarms;
    if (!alarms || !this.readings) return;
    const now = ctx.clock.now();
    const { min, max } = ctx.config.voltageLimitsPu;
    const outside = new Set<string>();
    const fresh = this.readings.fresh(now);
    for (const id of this.cellVoltageAlarms) if (!fresh.has(id.slice(id.indexOf(':') + 1))) outside.add(id);
    for (const [house, reading] of fresh) {
      const v = reading.voltagePu;
      if (v === null || (v <= max && v >= min)) continue;
      const id = `voltage-${v > max ? 'high' : 'low'}:${house}`;
      outside.add(id);
      alarms.raise(
        id,
        {
          kind: 'voltage-violation',
          severity: 'critical',
          source: house,
          text: `${house} reports ${v.toFixed(3)} pu at its connection point, ${v > max ? `above ${max}` : `below ${min}`} pu`,
        },
        now,
      );
    }
    for (const id of this.cellVoltageAlarms) if (!outside.has(id)) alarms.clear(id, now);
    this.cellVoltageAlarms = outside;
  }

  private async runSession(ctx: RoleContext, market: MarketConfig): Promise<void> {
    const now = ctx.clock.now();
    const { tertiaryMs } = ctx.config.scheduler;
    // The tick's own grid time: a timer firing a little early must not name the interval before.
    const sessionId = String(Math.round(now / tertiaryMs) * tertiaryMs);
    if (this.cellMarket!.alreadyCleared(Number(sessionId))) {
      // Once, not every interval while the clock catches up.
      if (this.clearedBefore.failed('cleared-before', 'interval cleared before', now))
        ctx.log.warn(
          { session: sessionId },
          'market interval cleared before (a restart or the clock went back): not traded again until a later one',
        );
      return;
    }
    const caughtUp = this.clearedBefore.ended('cleared-before', now);
    if (caughtUp)
      ctx.log.info({ session: sessionId, skipped: caughtUp.failures }, 'market trades again: the interval is new');
    const slotHours = (market.slotMinutes ?? tertiaryMs / 60_000) / 60;
    const T = market.horizonSlots;
    const offers = this.prosumerOffers(ctx, T, slotHours, now);
    // Without offers (the first interval, or prosumers that do not offer) the cell's measured net
    // consumption stands in for them, as a persistence forecast.
    const cellDemandKWh = Number(((this.readings!.netW(now) / 1000) * slotHours).toFixed(6));
    const { owners, ...trader } = cellMarketTrader({
      traderId: ctx.config.gateway.id,
      horizon: T,
      slotHours,
      offers,
      measuredDemandKWh: cellDemandKWh,
      generators: market.generators,
      flexibleLoads: market.flexibleLoads,
      gridImport: market.gridImport,
      gridExport: market.gridExport,
      neighbours: market.neighbours,
      // The coupling agent's limits cap what the cell may import or export through its transformer.
      limits: ctx.shared.cellLimits.get(),
    });
    // The first half of the interval for this market, the second for the coupling agent's trade above it.
    const closed = await this.cellMarket!.run(
      sessionId,
      trader,
      market,
      warmStart(this.sessions.at(-1), sessionId, tertiaryMs),
      Number(sessionId) + tertiaryMs / 2,
    );
    // Without agreement with its neighbours it trades nothing with them (its prosumers still clear).
    const { decision, prices, exchangeKWh } = closed;
    if (decision) {
      // What the cell still takes from (+) or gives to (−) the level above: the coupling agent trades it there.
      this.cellImbalance.set({
        session: sessionId,
        slotHours,
        netImportKWh: decision.gridImport.map((imp, t) => imp - (decision.gridExport[t] ?? 0)),
        intervalEndMs: Number(sessionId) + tertiaryMs,
      });
    }
    const record: SessionRecord = {
      session: sessionId,
      startedAt: now,
      endedAt: ctx.clock.now(),
      rounds: closed.rounds,
      converged: closed.settled,
      demandKWh: trader.agent.demand,
      prices,
      reachedPrices: closed.reachedPrices,
      exchangeKWh,
      gridImportKWh: decision?.gridImport ?? [],
      maxImbalanceKWh: closed.maxImbalanceKWh,
      instance: closed.instance,
    };
    this.sessions.push(record);
    if (this.sessions.length > 96) this.sessions.shift();
    this.sessionCount++;
    if (record.converged) this.convergedCount++;
    alarmConvergence(ctx, 'cell', record, tertiaryMs);
    prices.forEach((p, t) => {
      ctx.metrics.price.set({ slot: String(t) }, p);
    });
    ctx.metrics.marketSessions.inc({ converged: String(record.converged) });
    ctx.metrics.marketRounds.set(record.rounds);
    const shares = decision ? dispatchShares(offers, owners, scheduleOf(decision), prices) : {};
    const price = prices[0] ?? 0;
    const self = ctx.config.gateway.id;
    const trades = [
      ...purchasesFromNeighbours(self, exchangeKWh, price),
      ...tradesWithProsumers(
        self,
        Object.fromEntries(Object.entries(shares).map(([id, share]) => [id, share.netKWh[0] ?? 0])),
        price,
      ),
    ];
    ctx.settlement?.agreed(Number(sessionId), 'cell', [...trades, ...salesToNeighbours(self, exchangeKWh)]);
    // On disk (outbox) before the interval counts as cleared: a trader killed after this line loses no trade.
    await this.cellMarket!.report(sessionId, Number(sessionId), record.converged, trades);
    ctx.log.info(
      {
        session: sessionId,
        rounds: record.rounds,
        converged: record.converged,
        priceSlot0: prices[0],
        exchangeKWh,
        trades: trades.length,
      },
      'market interval cleared',
    );
    await ctx.transport!.publish('mkt', 'result', {
      session: sessionId,
      prices,
      converged: record.converged,
    });
    await this.dispatch(ctx, sessionId, offers, shares, prices);
  }

  /** Sends each prosumer the schedule of its own devices and what it pays or is paid. */
  private async dispatch(
    ctx: RoleContext,
    session: string,
    offers: ProsumerOffer[],
    shares: ReturnType<typeof dispatchShares>,
    prices: number[],
  ): Promise<void> {
    const sum = (rows: number[][]) => prices.map((_, t) => rows.reduce((acc, r) => acc + (r[t] ?? 0), 0));
    await Promise.all(
      offers.map((o) => {
        const share = shares[o.id];
        if (!share) return undefined;
        const body: DispatchBody = {
          session,
          prices,
          pvKWh: sum(share.generation),
          curtailKWh: sum(share.curtailment),
          netKWh: share.netKWh,
          paymentTotal: share.paymentTotal,
        };
        return ctx.transport!.publish('mkt', 'dispatch', body, { target: o.id });
      }),
    );
  }

  async stop(): Promise<void> {
    this.cellMarket?.stop();
    await this.running;
  }

  state(): MgTraderState {
    const now = this.lastSampleMs;
    const fresh = this.readings?.fresh(now) ?? new Map();
    return {
      cellNetW: this.readings?.netW(now) ?? null,
      prosumers: Object.fromEntries(
        [...fresh].map(([id, r]) => [id, { netW: r.netW, pvW: r.pvW, voltagePu: r.voltagePu }]),
      ),
      offers: this.offers.size,
      market: this.sessions.at(-1) ?? null,
      sessions: this.sessionCount,
      convergedSessions: this.convergedCount,
      worstImbalanceKWh: this.sessions.reduce((m, x) => Math.max(m, x.maxImbalanceKWh), 0),
      recentSessions: this.sessions.slice(-RECENT_SESSIONS),
      history: this.sessions.map((s) => ({ ts: s.endedAt, v: s.prices[0] ?? 0 })),
    };
  }
}
