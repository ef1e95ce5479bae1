import type { DrDispatchBody } from '../../comms/messages/dr.js';
import type { DispatchBody, OfferBody } from '../../comms/messages/market.js';
import type { MeterEnergyBody, MeterReadingBody } from '../../comms/messages/meter.js';
import { consumedPowerW, Points } from '../../drivers/natures.js';
import { natureOf } from '../../drivers/registry.js';
import { type ClosedInterval, IntervalMeter } from '../../platform/meter-energy.js';
import type { OwnTrade } from '../../platform/settlement-check.js';
import { DEVICE_DRIVERS, type DeviceConfig, meteringIntervalMs } from '../config.js';
import type { ProcessImageSnapshot } from '../process-image.js';
import type { TimeScale } from '../scheduler.js';
import type { Role, RoleContext } from './role.js';
import { tradesWithProsumers } from './trade-reporter.js';

/**
 * The inverter gateway towards its microgrid: measures its connection point from the process image
 * and reports it to the MG trader every secondary cycle, and each metering interval's energy to the
 * platform; offers its load, PV and demand response
 * before each market interval, and keeps the share of the result its MG trader dispatches to it.
 */
/** The prosumer's status (the status page, the bench). */
export type ProsumerState = {
  lastReading: MeterReadingBody | null;
  readingsPublished: number;
  /** Metering intervals whose energy was sent to the platform, and the last one. */
  intervalsPublished: number;
  lastInterval: MeterEnergyBody | null;
  /** The start (ms) of the last metering intervals sent (at most `RECENT_INTERVALS`), oldest first. */
  intervalsSent: number[];
  offer: OfferBody | null;
  dispatch: DispatchBody | null;
  drDispatch: DrDispatchBody | null;
};

/** Metering intervals listed in the state: enough for an auditor reading it every few seconds. */
const RECENT_INTERVALS = 32;

export class ProsumerRole implements Role<ProsumerState> {
  readonly name = 'prosumer' as const;
  private last: (MeterReadingBody & { ts: number }) | undefined;
  private published = 0;
  private meter: IntervalMeter | undefined;
  private intervalsPublished = 0;
  private lastInterval: MeterEnergyBody | undefined;
  private readonly intervalsSent: number[] = [];
  private lastOffer: OfferBody | undefined;
  private dispatch: (DispatchBody & { from: string; receivedAt: number }) | undefined;
  private drDispatch: (DrDispatchBody & { from: string }) | undefined;

  start(ctx: RoleContext): void {
    this.meter = new IntervalMeter(meteringIntervalMs(ctx.config));
    ctx.transport?.on(
      { cell: ctx.config.gateway.cell, cls: 'mkt', type: 'dispatch', target: ctx.config.gateway.id },
      ({ envelope }) => {
        this.dispatch = { ...envelope.body, from: envelope.sender, receivedAt: ctx.clock.now() };
        const interval = Number(envelope.body.session);
        if (Number.isInteger(interval))
          ctx.settlement?.agreed(
            interval,
            'cell',
            tradeWithTrader(ctx.config.gateway.id, envelope.sender, envelope.body),
          );
      },
    ); // A DR aggregator may contract this prosumer's flexibility (from any cell: aggregators span cells).
    ctx.transport?.on({ cell: '+', cls: 'dr', type: 'dispatch', target: ctx.config.gateway.id }, ({ envelope }) => {
      this.drDispatch = { ...envelope.body, from: envelope.sender };
      // The dispatch as its DR payment will be checked: the curtailment asked for, at the price.
      const interval = Number(envelope.body.interval);
      if (Number.isInteger(interval) && envelope.body.curtailKWh > 0)
        ctx.settlement?.agreedWith(interval, 'dr', [
          {
            seller: ctx.config.gateway.id,
            buyer: envelope.sender,
            kWh: envelope.body.curtailKWh,
            pricePerKWh: envelope.body.price,
          },
        ]);
    });
  }

  tick(scale: TimeScale, ctx: RoleContext): Promise<void> | undefined {
    if (scale === 'tertiary') return this.offer(ctx);
    if (scale !== 'secondary') return undefined;
    const reading = this.measure(ctx);
    if (!reading) return undefined;
    this.last = { ...reading, ts: ctx.clock.now() };
    const closed = this.meter?.add(this.last.ts, reading.netW) ?? [];
    // The energy the platform settles from, kept for this gateway's own check of its settlements.
    for (const c of closed) ctx.settlement?.meteredInterval(c);
    if (!ctx.transport) return undefined;
    const sends = [this.publishReading(ctx, reading), ...closed.map((c) => this.publishInterval(ctx, c))];
    return Promise.all(sends).then(() => undefined);
  }

  /**
   * The reading of this cycle, for the cell's MG trader (sealed to it): only the latest counts there,
   * so it lives three cycles and is never written to the outbox on disk.
   */
  private publishReading(ctx: RoleContext, reading: MeterReadingBody): Promise<void> {
    const ttlMs = 3 * ctx.config.scheduler.secondaryMs;
    return ctx.transport!.publish('meter', 'reading', reading, { ttlMs, persist: false }).then(() => {
      this.published++;
    });
  }

  /** A closed metering interval's energy, to the platform: all it gets of this house's meter. */
  private publishInterval(ctx: RoleContext, closed: ClosedInterval): Promise<void> {
    const platform = ctx.config.comms.reliability.platform;
    if (!platform) return Promise.resolve();
    const body: MeterEnergyBody = {
      fromMs: closed.fromMs,
      toMs: closed.toMs,
      netKWh: closed.kWh,
      coveredMs: Math.round(closed.coveredMs),
    };
    return ctx.transport!.publish('meter', 'energy', body, { target: platform }).then(() => {
      this.intervalsPublished++;
      this.lastInterval = body;
      this.intervalsSent.push(body.fromMs);
      if (this.intervalsSent.length > RECENT_INTERVALS) this.intervalsSent.shift();
    });
  }

  /** The offer for the coming interval: persistence of the latest measured load and PV. */
  private offer(ctx: RoleContext): Promise<void> | undefined {
    const reading = this.measure(ctx);
    if (!reading || !ctx.transport) return undefined;
    this.lastOffer = {
      loadW: Math.max(0, reading.loadW),
      pvW: Math.max(0, reading.pvW),
      flexibility: ctx.config.flexibility,
    };
    return ctx.transport.publish('mkt', 'offer', this.lastOffer);
  }

  /** Net consumption from the devices' fresh values; undefined when no device has one. */
  private measure(ctx: RoleContext): MeterReadingBody | undefined {
    return connectionPoint(ctx.config.devices, ctx.image());
  }

  state(): ProsumerState {
    return {
      lastReading: this.last ?? null,
      readingsPublished: this.published,
      intervalsPublished: this.intervalsPublished,
      lastInterval: this.lastInterval ?? null,
      intervalsSent: [...this.intervalsSent],
      offer: this.lastOffer ?? null,
      dispatch: this.dispatch ?? null,
      drDispatch: this.drDispatch ?? null,
    };
  }
}

/**
 * The connection point from the devices' fresh values, by each device's `usage`: PV generation, loads,
 * battery charging (positive) and, when a `grid` meter measures the connection point itself, the net
 * from it and the load as what is left. Undefined when no device has a value.
 */
export function connectionPoint(
  devices: readonly DeviceConfig[],
  image: ProcessImageSnapshot,
): MeterReadingBody | undefined {
  const consumedW = { grid: 0, pv: 0, load: 0, battery: 0 };
  let any = false;
  let gridMetered = false;
  let voltagePu: number | null = null;
  for (const device of devices) {
    const power = image.number(`${device.id}.${Points.acPowerW}`);
    const v = image.number(`${device.id}.${Points.voltagePu}`);
    if (v !== undefined) voltagePu = v;
    const nature = natureOf(DEVICE_DRIVERS, device);
    if (power === undefined || nature === undefined) continue;
    any = true;
    consumedW[device.usage] += consumedPowerW(nature, power);
    if (device.usage === 'grid') gridMetered = true;
  }
  if (!any) return undefined;
  const pvW = -consumedW.pv;
  if (gridMetered) return { netW: consumedW.grid, pvW, loadW: consumedW.grid + pvW - consumedW.battery, voltagePu };
  return { netW: consumedW.load + consumedW.battery - pvW, pvW, loadW: consumedW.load, voltagePu };
}

/** The trade a dispatch agrees for the interval's first slot, as the trader reports it (`tradesWithProsumers`). */
export function tradeWithTrader(self: string, trader: string, dispatch: DispatchBody): OwnTrade[] {
  return tradesWithProsumers(trader, { [self]: dispatch.netKWh[0] ?? 0 }, dispatch.prices[0] ?? 0);
}
