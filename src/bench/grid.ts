import { categoryBInverter, followCurves } from '../control/voltage/volt-var.js';
import { demoFeeder } from '../grid/demo-feeder.js';
import { buildRadialFeeder } from '../grid/feeder.js';
import type { CompressedDay } from '../sim/profiles.js';
import { SimulatedCell } from '../sim/simulated-cell.js';
import type { Scenario } from './scenario.js';

export interface BenchDevice {
  id: string;
  kind: 'pv-inverter' | 'household-meter';
  cell: string;
  bus: string;
  ratedW: number;
  /** The inverter gateway (house) the device belongs to. */
  gateway: string;
  /** Served over Modbus RTU on a pty rather than TCP. */
  rtu: boolean;
}

interface CellSim {
  id: string;
  live: SimulatedCell;
  /** The same cell with the inverters on their local volt-var / volt-watt curves only. */
  shadow: SimulatedCell;
  shadowSetpoints: Map<string, { pKW: number; qKVAr: number }>;
}

export interface GridSample {
  tMs: number;
  hour: number;
  /** Bus voltages per cell, with the gateways' control acting. */
  voltagesPu: Record<string, number>;
  /** The same with local volt-var / volt-watt only (the baseline). */
  baselineVoltagesPu: Record<string, number>;
  curtailedKW: number;
  baselineCurtailedKW: number;
  /** Net power through each cell's transformer, kW (positive = import into the cell). */
  transformerKW: Record<string, number>;
}

/**
 * The bench's feeder simulator: one simulated LV cable per scenario cell with a PV inverter and a
 * household meter per house, over a compressed day. Beside it runs a shadow of every cell whose
 * inverters follow only their IEEE 1547 curves, so each run reports its own volt-var baseline.
 */
export class BenchGrid {
  readonly devices: BenchDevice[] = [];
  private readonly cells: CellSim[] = [];

  constructor(
    scenario: Scenario,
    private readonly day: CompressedDay,
    now: number,
  ) {
    let house = 0;
    for (const c of scenario.cells) {
      const feeder = buildRadialFeeder(demoFeeder(c.houses, c.segmentOhm, c.vSlackPu));
      const sim: CellSim = {
        id: c.id,
        live: new SimulatedCell(feeder, day),
        shadow: new SimulatedCell(feeder, day),
        shadowSetpoints: new Map(),
      };
      for (let i = 0; i < c.houses; i++) {
        house++;
        // ±10 % spread between houses, deterministic per scenario seed and house.
        const scale = 0.9 + 0.2 * fraction(scenario.seed * 7919 + house * 104_729);
        const bus = `b${i + 1}`;
        const gateway = `inv-${house}`;
        const rtu = i < c.rtuHouses;
        const pv = { id: `pv-${house}`, kind: 'pv-inverter' as const, bus, ratedW: Math.round(c.pvKW * 1000 * scale) };
        const meter = {
          id: `meter-${house}`,
          kind: 'household-meter' as const,
          bus,
          ratedW: Math.round(c.loadKW * 1000 * scale),
        };
        for (const d of [pv, meter]) {
          sim.live.addDevice(d, now);
          sim.shadow.addDevice(d, now);
          this.devices.push({ ...d, cell: c.id, gateway, rtu });
        }
      }
      this.cells.push(sim);
    }
  }

  /** The simulated cell that carries a device (what its Modbus server reads and writes). */
  cellOf(deviceId: string): SimulatedCell {
    const cell = this.devices.find((d) => d.id === deviceId)?.cell;
    const sim = this.cells.find((c) => c.id === cell);
    if (!sim) throw new Error(`unknown bench device ${deviceId}`);
    return sim.live;
  }

  /** Moves the baseline's inverters towards their curves (30 % per step, as an inverter's filter). */
  private stepBaseline(sim: CellSim, now: number): void {
    const v = sim.shadow.voltages(now);
    for (const d of this.devices.filter((x) => x.cell === sim.id && x.kind === 'pv-inverter')) {
      const spec = categoryBInverter(d.id, d.bus, d.ratedW / 1000, sim.shadow.availableW(d.id, now) / 1000);
      const last = sim.shadowSetpoints.get(d.id) ?? { pKW: spec.pAvailableKW, qKVAr: 0 };
      const next = followCurves(spec, v.get(d.bus) ?? 1, last);
      sim.shadowSetpoints.set(d.id, next);
      sim.shadow.setLimitPct(d.id, next.limitPct);
      sim.shadow.setReactiveVAr(d.id, next.qKVAr * 1000);
    }
  }

  sample(now: number): GridSample {
    const out: GridSample = {
      tMs: now,
      hour: this.day.hourAt(now),
      voltagesPu: {},
      baselineVoltagesPu: {},
      curtailedKW: 0,
      baselineCurtailedKW: 0,
      transformerKW: {},
    };
    for (const sim of this.cells) {
      this.stepBaseline(sim, now);
      for (const [bus, v] of sim.live.voltages(now)) out.voltagesPu[`${sim.id}.${bus}`] = v;
      for (const [bus, v] of sim.shadow.voltages(now)) out.baselineVoltagesPu[`${sim.id}.${bus}`] = v;
      let netW = 0;
      for (const d of this.devices.filter((x) => x.cell === sim.id)) {
        const live = sim.live.read(d.id, now)!;
        const shadow = sim.shadow.read(d.id, now)!;
        if (d.kind === 'pv-inverter') {
          out.curtailedKW += (sim.live.availableW(d.id, now) - live.powerW) / 1000;
          out.baselineCurtailedKW += (sim.shadow.availableW(d.id, now) - shadow.powerW) / 1000;
          netW -= live.powerW;
        } else netW += live.powerW;
      }
      out.transformerKW[sim.id] = netW / 1000;
    }
    return out;
  }
}

/** A fixed pseudo-random fraction in [0, 1) for an integer (so the houses differ the same way each run). */
function fraction(n: number): number {
  const x = Math.sin(n) * 43_758.5453;
  return x - Math.floor(x);
}
