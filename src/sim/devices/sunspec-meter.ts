import { modelDef } from '../../drivers/sunspec/models.js';
import { type MeterPlant, ModbusException, type RegisterDevice } from './register-device.js';
import { chainRegister, ModelImage } from './sunspec-image.js';

export interface SimulatedSunSpecMeterOptions {
  /** Address of `SunS` (40000, 0 or 50000). */
  base?: number;
  /** 1 phase (model 201 / 211) or 3 (203 / 213). */
  phases?: 1 | 3;
  /** The float variant (211 / 213, float32 points) instead of 201 / 203 (integers and scale factors). */
  float?: boolean;
  manufacturer?: string;
  model?: string;
  serial?: string;
  /** Points the device does not implement (their not-implemented marker is served). */
  notImplemented?: string[];
}

/** Scale factors of the integer meter models: 0.01 A, 0.1 V, 0.01 Hz, W, VA, var, 0.01 PF, Wh. */
const METER_SF: Record<string, number> = {
  A_SF: -2,
  V_SF: -1,
  Hz_SF: -2,
  W_SF: 0,
  VA_SF: 0,
  VAR_SF: 0,
  PF_SF: -2,
  TotWh_SF: 0,
  TotVAh_SF: 0,
  TotVArh_SF: 0,
};

/**
 * A SunSpec meter as a register map (a Fronius Smart Meter as its inverter relays it): models 1 and
 * 201/203 or their float variants 211/213, then the end marker. It measures its plant (a household
 * load): power flowing in is positive, the import counter grows with it. It takes no writes.
 */
export class SimulatedSunSpecMeter implements RegisterDevice {
  readonly kind = 'sunspec-meter';
  private readonly models: ModelImage[] = [];
  private readonly base: number;
  private readonly end: number;
  silent = false;
  forcedException: number | undefined;
  garbage = false;

  constructor(
    private readonly o: SimulatedSunSpecMeterOptions,
    private readonly plant: MeterPlant,
  ) {
    this.base = o.base ?? 40_000;
    const absent = new Set(o.notImplemented ?? []);
    const measurement = (o.phases === 1 ? 201 : 203) + (o.float ? 10 : 0);
    let address = this.base + 2;
    for (const id of [1, measurement]) {
      const image = new ModelImage(modelDef(id)!, address, (n) => METER_SF[n], absent);
      this.models.push(image);
      address += image.regs.length;
    }
    this.end = address;
    const common = this.models[0]!;
    common.setString('Mn', o.manufacturer ?? 'p2p-edge');
    common.setString('Md', o.model ?? 'simulated SunSpec meter');
    common.setString('SN', o.serial ?? 'SIM-M-0001');
    common.setString('Vr', '1.0');
    common.set('DA', 1);
  }

  private measure(now: number): void {
    const m = this.models[1]!;
    const r = this.plant.read(now);
    const phases = this.o.phases === 1 ? ['A'] : ['A', 'B', 'C'];
    const phaseV = 230 * r.voltagePu;
    const va = Math.hypot(r.powerW, r.reactiveVAr);
    const amps = va / (phaseV * phases.length);
    m.set('A', amps * phases.length);
    m.set('PhV', phaseV);
    m.set('Hz', 50);
    m.set('W', r.powerW);
    m.set('VA', va);
    m.set('VAR', r.reactiveVAr);
    m.set('PF', va > 0 ? (100 * r.powerW) / va : 100);
    for (const p of phases) {
      m.set(`Aph${p}`, amps);
      m.set(`PhVph${p}`, phaseV);
      m.set(`Wph${p}`, r.powerW / phases.length);
    }
    // the integer models' acc32 counters read 0 as "not implemented": a fresh meter has counted 1 Wh
    m.set('TotWhImp', Math.max(1, Math.round(r.importWh)));
    m.set('TotWhExp', Math.max(1, Math.round(r.exportWh)));
  }

  readHolding(address: number, count: number, now: number): number[] {
    this.measure(now);
    return Array.from({ length: count }, (_, i) => chainRegister(this.base, this.models, this.end, address + i));
  }

  writeHolding(): void {
    throw new ModbusException(2);
  }

  readInput(): number[] {
    throw new ModbusException(1);
  }
}
