import type { SessionInstance } from '../trading/market-interval.js';
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

type GatewayState = Record<string, unknown> | undefined;
type RoleStates = Record<string, Record<string, unknown>> | undefined;

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
  addStates(states: readonly GatewayState[], hour: number): void {
    const prices: Record<string, number> = {};
    for (const st of states) {
      const roles = st?.roles as RoleStates;
      const id = String(st?.id ?? '');
      const trader = roles?.['mg-trader'];
      const coupler = roles?.['coupling-agent'];
      for (const rec of instancesOf(trader?.recentSessions)) this.cellGap.add(rec);
      for (const rec of instancesOf(coupler?.recentUpwardTrades)) this.upperGap.add(rec);
      const cellPrice = (trader?.market as { prices?: number[] } | null | undefined)?.prices?.[0];
      const upperPrice = (coupler?.upwardTrade as { prices?: number[] } | null | undefined)?.prices?.[0];
      if (Number.isFinite(cellPrice)) prices[id] = cellPrice!;
      if (Number.isFinite(upperPrice)) prices[`${id} (level above)`] = upperPrice!;
    }
    if (Object.keys(prices).length > 0) this.prices.add({ hour, prices });
  }
}

function instancesOf(records: unknown): SessionInstance[] {
  return ((records as { instance?: SessionInstance }[] | undefined) ?? []).flatMap((r) =>
    r.instance ? [r.instance] : [],
  );
}
