import type { DispatchBody, OfferBody } from '../../comms/messages/market.js';
import { errorMessage } from '../../core/errors.js';
import { compileModel, TradeInputSchema } from '../../trading/model.js';
import { type SessionInstance, sessionInstance } from '../../trading/optimality-gap.js';
import { aggregateProsumers, dispatchShares, type ProsumerOffer } from '../../trading/prosumers.js';
import { localTradeModel, MarketSession } from '../../trading/session.js';
import type { MarketConfig } from '../config.js';
import type { TimeScale } from '../scheduler.js';
import { CellReadings } from './cell-readings.js';
import { PV_OFFER_COST } from './market-messages.js';
import type { Role, RoleContext } from './role.js';
import { exchangeWithNeighbours, RECENT_SESSIONS, SessionRunner, warmStart } from './session-runner.js';
import { purchasesFromNeighbours, TradeReporter, tradesWithProsumers } from './trade-reporter.js';

interface SessionRecord {
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

/** The devices' schedule of a cleared session, in the form `dispatchShares` splits among prosumers. */
function scheduleOf(decision: NonNullable<MarketSession['decision']>) {
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
export class MgTraderRole implements Role {
  readonly name = 'mg-trader' as const;
  private readings: CellReadings | undefined;
  private runner: SessionRunner | undefined;
  private reporter: TradeReporter | undefined;
  /** True while intervals come up that were cleared before (logged once). */
  private refusing = false;
  private running: Promise<void> | undefined;
  /** The last day of sessions (96 intervals of 15 minutes). */
  private readonly sessions: SessionRecord[] = [];
  private sessionCount = 0;
  private convergedCount = 0;
  private readonly offers = new Map<string, { offer: OfferBody; ts: number }>();
  private lastSampleMs = 0;

  start(ctx: RoleContext): void {
    this.readings = new CellReadings(3 * ctx.config.scheduler.secondaryMs);
    const transport = ctx.transport;
    if (!transport) return;
    this.readings.listen(transport, ctx.config.gateway.cell);
    this.runner = new SessionRunner(ctx, 'price');
    this.reporter = new TradeReporter(ctx, 'cell');
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

  private async runSession(ctx: RoleContext, market: MarketConfig): Promise<void> {
    const now = ctx.clock.now();
    const { tertiaryMs } = ctx.config.scheduler;
    // The tick's own grid time: a timer firing a little early must not name the interval before.
    const sessionId = String(Math.round(now / tertiaryMs) * tertiaryMs);
    if (this.reporter!.alreadyCleared(Number(sessionId))) {
      // Once, not every interval while the clock catches up.
      if (!this.refusing)
        ctx.log.warn(
          { session: sessionId },
          'market interval cleared before (a restart or the clock went back): not traded again until a later one',
        );
      this.refusing = true;
      return;
    }
    this.refusing = false;
    const slotHours = (market.slotMinutes ?? tertiaryMs / 60_000) / 60;
    const T = market.horizonSlots;
    const offers = this.prosumerOffers(ctx, T, slotHours, now);
    // Without offers (the first interval, or prosumers that do not offer) the cell's measured net
    // consumption stands in for them, as a persistence forecast.
    const cellDemandKWh = Number(((this.readings!.netW(now) / 1000) * slotHours).toFixed(6));
    const own: ProsumerOffer = {
      id: ctx.config.gateway.id,
      demand: Array(T).fill(offers.length > 0 ? 0 : cellDemandKWh),
      generators: market.generators.map((g) => ({ a: g.a, b: g.b, max: g.maxKWh })),
      flexibleLoads: market.flexibleLoads.map((g) => ({ a: g.a, b: g.b, max: g.maxKWh })),
    };
    const grid = {
      ...(market.gridImport
        ? { import: { a: market.gridImport.a, b: market.gridImport.b, max: market.gridImport.maxKWh } }
        : {}),
      ...(market.gridExport
        ? { export: { a: market.gridExport.a, b: market.gridExport.b, max: market.gridExport.maxKWh } }
        : {}),
    };
    // The coupling agent's limits cap what the cell may import or export through its transformer.
    const limits = ctx.shared.cellLimits;
    if (limits) {
      if (grid.import) grid.import = { ...grid.import, max: Math.min(grid.import.max, limits.importKWh) };
      if (grid.export) grid.export = { ...grid.export, max: Math.min(grid.export.max, limits.exportKWh) };
    }
    const neighbours = market.neighbours.map((n) =>
      limits
        ? {
            ...n,
            sendCapacityKWh: Math.min(n.sendCapacityKWh, limits.exportKWh),
            receiveCapacityKWh: Math.min(n.receiveCapacityKWh, limits.importKWh),
          }
        : n,
    );
    const { agent, owners } = aggregateProsumers(ctx.config.gateway.id, [own, ...offers], T, grid);
    const compiled = compileModel(TradeInputSchema.parse({ horizon: T, slotHours, agents: [agent] }), undefined, false)
      .agents[0]!;
    const demandKWh = compiled.demand;
    const model = localTradeModel(compiled, neighbours, T, slotHours);
    const session = new MarketSession(
      sessionId,
      model,
      market.algorithm,
      market.maxRounds,
      market.tolerance,
      warmStart(this.sessions.at(-1), sessionId, tertiaryMs),
    );
    // The first half of the interval for this market, the second for the coupling agent's trade above it.
    await this.runner!.run(session, market.roundMs, Number(sessionId) + tertiaryMs / 2);
    const status = session.status();
    // Without agreement with its neighbours it trades nothing with them (its prosumers still clear).
    const outcome = session.outcome();
    const decision = outcome.decision;
    const cleared = outcome.status();
    const prices = cleared.prices;
    const exchangeKWh = exchangeWithNeighbours(outcome);
    if (decision) {
      // What the cell still takes from (+) or gives to (−) the level above: the coupling agent trades it there.
      ctx.shared.cellImbalance = {
        session: sessionId,
        slotHours,
        netImportKWh: decision.gridImport.map((imp, t) => imp - (decision.gridExport[t] ?? 0)),
        intervalEndMs: Number(sessionId) + tertiaryMs,
      };
    }
    const record: SessionRecord = {
      session: sessionId,
      startedAt: now,
      endedAt: ctx.clock.now(),
      rounds: status.round,
      converged: status.settled,
      demandKWh,
      prices,
      reachedPrices: status.prices,
      exchangeKWh,
      gridImportKWh: decision?.gridImport ?? [],
      maxImbalanceKWh: cleared.maxImbalanceKWh,
      instance: sessionInstance(outcome, agent, neighbours),
    };
    this.sessions.push(record);
    if (this.sessions.length > 96) this.sessions.shift();
    this.sessionCount++;
    if (record.converged) this.convergedCount++;
    prices.forEach((p, t) => {
      ctx.metrics.price.set({ slot: String(t) }, p);
    });
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
    // On disk (outbox) before the interval counts as cleared: a trader killed after this line loses no trade.
    await this.reporter!.report({
      session: sessionId,
      interval: Number(sessionId),
      market: 'cell',
      converged: record.converged,
      trades,
    });
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
    this.runner?.stop();
    await this.running;
  }

  state(): Record<string, unknown> {
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
