import type { TimeScale } from '../scheduler.js';
import { CellReadings } from './cell-readings.js';
import type { Role, RoleContext } from './role.js';

/**
 * The coupling agent at the transformer: watches the transformer's loading from the cell's net
 * power and warns when it passes the rating. (Setting the cell's trading limits joins with control.)
 */
export class CouplingAgentRole implements Role {
  readonly name = 'coupling-agent' as const;
  private readings: CellReadings | undefined;
  private loadingPct: number | null = null;
  private peakLoadingPct = 0;
  private overloaded = false;
  private ratingKVA = 0;

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

  state(): Record<string, unknown> {
    return {
      transformerKVA: this.ratingKVA || null,
      loadingPct: this.loadingPct,
      peakLoadingPct: this.peakLoadingPct,
      overloaded: this.overloaded,
    };
  }
}
