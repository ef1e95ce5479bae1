import type { GatewayState } from '../agent/gateway.js';
import type { SessionInstance } from '../trading/market-interval.js';
import { DeliveryTally } from './delivery.js';
import type { GridSample } from './grid.js';
import { EnergyTally, TradingGapTally, VoltageTally } from './kpi.js';

/**
 * A series for plotting that never holds more than `max` points: when full it keeps every other
 * point and from then on takes every other new one, so a run of any length keeps its whole span.
 */
export class DecimatedSeries<T> {
  private readonly points: T[] = [];
  private stride = 1;
  private seen = 0;

  constructor(private readonly max = 2000) {}

  add(point: T): void {
    if (this.seen++ % this.stride !== 0) return;
    this.points.push(point);
    if (this.points.length >= this.max) {
      for (let i = 0; i < this.points.length / 2; i++) this.points[i] = this.points[2 * i]!;
      this.points.length = Math.ceil(this.points.length / 2);
      this.stride *= 2;
    }
  }

  get values(): readonly T[] {
    return this.points;
  }
}

/** A point of the prices plot: the hour and each trader's price of the first slot. */
export interface PricePoint {
  hour: number;
  prices: Record<string, number>;
}

/**
 * What a bench run keeps: KPI tallies folded sample by sample and bounded series for the plots, so
 * that memory stays flat however long the bench runs (the live demo, the soak test).
 */
export class BenchRecorder {
  readonly voltage: VoltageTally;
  readonly baseline: VoltageTally;
  readonly cellGap = new TradingGapTally();
  readonly upperGap = new TradingGapTally();
  readonly grid = new DecimatedSeries<GridSample>();
  readonly messageRate = new DecimatedSeries<{ tS: number; perS: number }>();
  readonly prices = new DecimatedSeries<PricePoint>();
  readonly curtailed = new EnergyTally();
  readonly baselineCurtailed = new EnergyTally();
  /** Delivery as the senders count it, and the metering intervals the houses sent. */
  readonly delivery = new DeliveryTally();
  /** Largest |net power| through each cell's transformer, kW. */
  readonly peakTransformerKW: Record<string, number> = {};
  samples = 0;

  constructor(
    limits: { min: number; max: number },
    /** Simulated time runs this many times faster than the samples' clock. */
    private readonly speedup: number,
  ) {
    this.voltage = new VoltageTally(limits);
    this.baseline = new VoltageTally(limits);
  }

  addGrid(g: GridSample): void {
    this.samples++;
    this.voltage.add({ tMs: g.tMs, hour: g.hour, voltagesPu: g.voltagesPu });
    this.baseline.add({ tMs: g.tMs, hour: g.hour, voltagesPu: g.baselineVoltagesPu });
    // Energy is integrated over simulated time, which runs `speedup` times faster.
    const simulatedMs = g.tMs * this.speedup;
    this.curtailed.add({ tMs: simulatedMs, kW: g.curtailedKW });
    this.baselineCurtailed.add({ tMs: simulatedMs, kW: g.baselineCurtailedKW });
    for (const [cell, kW] of Object.entries(g.transformerKW))
      this.peakTransformerKW[cell] = Math.max(this.peakTransformerKW[cell] ?? 0, Math.abs(kW));
    this.grid.add(g);
  }

  /** The traders' last sessions (for the cost gap) and prices (for the plot), from the gateways' states. */
  addStates(states: readonly (GatewayState | undefined)[], hour: number): void {
    const prices: Record<string, number> = {};
    for (const st of states) {
      if (!st) continue;
      const trader = st.roles['mg-trader'];
      const coupler = st.roles['coupling-agent'];
      for (const rec of instancesOf(trader?.recentSessions)) this.cellGap.add(rec);
      for (const rec of instancesOf(coupler?.recentUpwardTrades)) this.upperGap.add(rec);
      const cellPrice = trader?.market?.prices[0];
      const upperPrice = coupler?.upwardTrade?.prices[0];
      if (cellPrice !== undefined && Number.isFinite(cellPrice)) prices[st.id] = cellPrice;
      if (upperPrice !== undefined && Number.isFinite(upperPrice)) prices[`${st.id} (level above)`] = upperPrice;
    }
    if (Object.keys(prices).length > 0) this.prices.add({ hour, prices });
  }
}

function instancesOf(records: readonly { instance?: SessionInstance }[] | undefined): SessionInstance[] {
  return (records ?? []).flatMap((r) => (r.instance ? [r.instance] : []));
}
