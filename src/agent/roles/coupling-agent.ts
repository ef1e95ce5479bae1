import { type CellLimitState, cellTradingLimits, INITIAL_CELL_LIMITS } from '../../control/coupling.js';
import type { TimeScale } from '../scheduler.js';
import { CellReadings } from './cell-readings.js';
import type { Role, RoleContext } from './role.js';

/**
 * The coupling agent at the transformer: watches the transformer's loading from the cell's net power
 * (warning when it passes the rating) and the cell's voltages from its prosumers' readings, and each
 * tertiary interval sets the energy the cell may import and export in the market (congestion
 * management, `cellTradingLimits`), which the MG trader applies to its grid exchange and links.
 */
export class CouplingAgentRole implements Role {
  readonly name = 'coupling-agent' as const;
  private readings: CellReadings | undefined;
  private loadingPct: number | null = null;
  private peakLoadingPct = 0;
  private overloaded = false;
  private ratingKVA = 0;
  private limits: CellLimitState = INITIAL_CELL_LIMITS;

  start(ctx: RoleContext): void {
    this.ratingKVA = ctx.config.gateway.transformerKVA ?? 0;
    this.readings = new CellReadings(3 * ctx.config.scheduler.secondaryMs);
    if (ctx.transport) {
      this.readings.listen(ctx.transport, ctx.config.gateway.cell, () =>
        ctx.metrics.messagesRejected.inc({ reason: 'schema' }),
      );
    }
  }

  tick(scale: TimeScale, ctx: RoleContext): void {
    if (scale === 'tertiary') this.setLimits(ctx);
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
    ctx.shared.cellLimits = limits;
  }

  state(): Record<string, unknown> {
    return {
      cellLimits: this.limits,
      transformerKVA: this.ratingKVA || null,
      loadingPct: this.loadingPct,
      peakLoadingPct: this.peakLoadingPct,
      overloaded: this.overloaded,
    };
  }
}
