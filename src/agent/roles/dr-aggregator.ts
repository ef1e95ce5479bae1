import { clearDrAggregator, type DrClearing } from '../../trading/dr-aggregator.js';
import type { TimeScale } from '../scheduler.js';
import type { Role, RoleContext } from './role.js';

/**
 * The demand-response aggregator peer: every tertiary interval it clears its providers' curtailment
 * offers against its buyer (the DSO or the wholesale market), sends each provider its share and the
 * price it is paid, reports each dispatch to the platform (`dr/event`, paid as a settlement line once
 * measured) and records it for its check of that payment.
 */
/** The DR aggregator's status: its last clearing and how many intervals it cleared. */
export type DrAggregatorState = { lastClearing: (DrClearing & { interval: string }) | null; intervals: number };

export class DrAggregatorRole implements Role<DrAggregatorState> {
  readonly name = 'dr-aggregator' as const;
  private readonly clearings: (DrClearing & { interval: string })[] = [];

  async tick(scale: TimeScale, ctx: RoleContext): Promise<void> {
    const dr = ctx.config.dr;
    if (scale !== 'tertiary' || !dr) return;
    // The tick's own grid time: a timer firing a little early must not name the interval before.
    const interval = String(
      Math.round(ctx.clock.now() / ctx.config.scheduler.tertiaryMs) * ctx.config.scheduler.tertiaryMs,
    );
    const clearing = clearDrAggregator(ctx.config.gateway.id, dr.providers, dr.buyer);
    this.clearings.push({ ...clearing, interval });
    if (this.clearings.length > 96) this.clearings.shift();
    ctx.log.info(
      { interval, price: clearing.price, soldKWh: clearing.soldKWh, margin: clearing.aggregatorMargin },
      'flexibility cleared',
    );
    const self = ctx.config.gateway.id;
    const dispatched = Object.entries(clearing.providers).filter(([, share]) => share.curtailedKWh > 0);
    // What it dispatched, for its check of the platform's DR payment of the interval.
    ctx.settlement?.agreed(
      Number(interval),
      'dr',
      dispatched.map(([provider, share]) => ({
        seller: provider,
        buyer: self,
        kWh: share.curtailedKWh,
        pricePerKWh: clearing.price,
      })),
    );
    if (!ctx.transport) return;
    const platform = ctx.config.comms.reliability.platform;
    await Promise.all([
      ...Object.entries(clearing.providers).map(([provider, share]) =>
        ctx.transport!.publish(
          'dr',
          'dispatch',
          { interval, curtailKWh: share.curtailedKWh, price: clearing.price, paid: share.paid },
          { target: provider },
        ),
      ),
      // Each dispatch reported to the platform, which measures it under the pair's contract and pays it.
      ...(platform
        ? dispatched.map(([provider, share]) =>
            ctx.transport!.publish(
              'dr',
              'event',
              { interval: Number(interval), provider, curtailKWh: share.curtailedKWh, pricePerKWh: clearing.price },
              { target: platform },
            ),
          )
        : []),
    ]);
  }

  state(): DrAggregatorState {
    return { lastClearing: this.clearings.at(-1) ?? null, intervals: this.clearings.length };
  }
}
