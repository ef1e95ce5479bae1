import type { TimeScale } from '../scheduler.js';
import { CellReadings } from './cell-readings.js';
import type { Role, RoleContext } from './role.js';

/**
 * The microgrid trader at the transformer gateway. It gathers its prosumers' readings and, each
 * tertiary interval, records the cell's net energy; the market itself (Algorithm 1) joins with trading.
 */
export class MgTraderRole implements Role {
  readonly name = 'mg-trader' as const;
  private readings: CellReadings | undefined;
  private intervals: { endedAt: number; netEnergyWh: number; prosumers: number }[] = [];
  private lastSampleMs: number | undefined;
  private intervalEnergyWh = 0;

  start(ctx: RoleContext): void {
    this.readings = new CellReadings(3 * ctx.config.scheduler.secondaryMs);
    if (ctx.transport) {
      this.readings.listen(ctx.transport, ctx.config.gateway.cell, () =>
        ctx.metrics.messagesRejected.inc({ reason: 'schema' }),
      );
    }
  }

  tick(scale: TimeScale, ctx: RoleContext): void {
    const now = ctx.clock.now();
    if (scale === 'secondary' && this.readings) {
      if (this.lastSampleMs !== undefined)
        this.intervalEnergyWh += (this.readings.netW(now) * (now - this.lastSampleMs)) / 3_600_000;
      this.lastSampleMs = now;
    }
    if (scale === 'tertiary') {
      const prosumers = this.readings?.fresh(now).size ?? 0;
      this.intervals.push({ endedAt: now, netEnergyWh: this.intervalEnergyWh, prosumers });
      if (this.intervals.length > 96) this.intervals.shift();
      ctx.log.info({ netEnergyWh: Math.round(this.intervalEnergyWh), prosumers }, 'trading interval closed');
      this.intervalEnergyWh = 0;
    }
  }

  state(): Record<string, unknown> {
    const now = this.lastSampleMs ?? 0;
    const fresh = this.readings?.fresh(now) ?? new Map();
    return {
      cellNetW: this.readings?.netW(now) ?? null,
      prosumers: Object.fromEntries(
        [...fresh].map(([id, r]) => [id, { netW: r.netW, pvW: r.pvW, voltagePu: r.voltagePu }]),
      ),
      intervals: this.intervals,
    };
  }
}
