import type { RadialFeeder } from '../grid/feeder.js';
import { LinDistFlowFeeder } from '../grid/lin-dist-flow.js';
import { type CompressedDay, householdShape, pvShape } from './profiles.js';

export type SimulatedDeviceKind = 'pv-inverter' | 'household-meter';

interface SimDevice {
  id: string;
  kind: SimulatedDeviceKind;
  bus: string;
  ratedW: number;
  /** Per-device variation so that the houses of a feeder are not identical. */
  scale: number;
  limitPct: number;
  /** Reactive power the inverter injects (positive raises the voltage). */
  reactiveVAr: number;
  energyWh: number;
  lastMs: number;
}

export interface DeviceReading {
  powerW: number;
  reactiveVAr: number;
  voltagePu: number;
  energyWh: number;
  limitPct: number;
}

const NOMINAL_PHASE_V = 230;

/**
 * A simulated LV cell: devices on a radial feeder following daily PV and load shapes over a
 * compressed day. Each read re-solves the feeder with every device's current power, so voltages rise
 * with midday PV and sag at the evening peak as they would on a real feeder.
 */
export class SimulatedCell {
  private readonly devices = new Map<string, SimDevice>();
  private readonly feeder: LinDistFlowFeeder;

  constructor(
    feeder: RadialFeeder,
    private readonly day: CompressedDay,
  ) {
    this.feeder = new LinDistFlowFeeder(feeder);
  }

  get buses(): string[] {
    return this.feeder.buses;
  }

  addDevice(
    d: { id: string; kind: SimulatedDeviceKind; bus: string; ratedW: number; scale?: number },
    now: number,
  ): void {
    this.devices.set(d.id, { ...d, scale: d.scale ?? 1, limitPct: 100, reactiveVAr: 0, energyWh: 0, lastMs: now });
  }

  has(id: string): boolean {
    return this.devices.has(id);
  }

  hourAt(now: number): number {
    return this.day.hourAt(now);
  }

  /** Sets an inverter's active power limit (% of rating); the next read follows it. */
  setLimitPct(id: string, pct: number): void {
    const d = this.devices.get(id);
    if (d) d.limitPct = Math.min(100, Math.max(0, pct));
  }

  /** What a PV inverter could produce now without its limit, W. */
  availableW(id: string, now: number): number {
    const d = this.devices.get(id);
    return d && d.kind === 'pv-inverter' ? pvShape(this.day.hourAt(now)) * d.scale * d.ratedW : 0;
  }

  private powerW(d: SimDevice, hour: number): number {
    if (d.kind === 'pv-inverter') return Math.min(pvShape(hour) * d.scale, d.limitPct / 100) * d.ratedW;
    return householdShape(hour) * d.scale * d.ratedW;
  }

  /** Sets an inverter's reactive power (positive = injecting, raising the voltage), within ±its rating. */
  setReactiveVAr(id: string, vAr: number): void {
    const d = this.devices.get(id);
    if (d) d.reactiveVAr = Math.min(d.ratedW, Math.max(-d.ratedW, vAr));
  }

  /** Bus voltages (pu) with every device at its power for `now`. */
  voltages(now: number): Map<string, number> {
    const hour = this.day.hourAt(now);
    const load = new Map<string, number>();
    const loadVAr = new Map<string, number>();
    for (const d of this.devices.values()) {
      const p = this.powerW(d, hour);
      load.set(d.bus, (load.get(d.bus) ?? 0) + (d.kind === 'pv-inverter' ? -p : p));
      loadVAr.set(d.bus, (loadVAr.get(d.bus) ?? 0) - d.reactiveVAr);
    }
    return this.feeder.solve(load, loadVAr);
  }

  read(id: string, now: number): DeviceReading | undefined {
    const d = this.devices.get(id);
    if (!d) return undefined;
    const powerW = this.powerW(d, this.day.hourAt(now));
    d.energyWh += (powerW * Math.max(0, now - d.lastMs)) / 3_600_000;
    d.lastMs = now;
    return {
      powerW,
      reactiveVAr: d.reactiveVAr,
      voltagePu: this.voltages(now).get(d.bus) ?? 1,
      energyWh: d.energyWh,
      limitPct: d.limitPct,
    };
  }

  static phaseVolts(voltagePu: number): number {
    return voltagePu * NOMINAL_PHASE_V;
  }
}
