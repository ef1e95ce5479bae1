import { z } from 'zod';
import { type Clock, systemClock } from '../../core/clock.js';
import { ErrorCode, P2PError } from '../../core/errors.js';
import type { ModbusBus } from '../../hal/modbus/bus.js';
import type { Device, InverterControl } from '../device.js';
import { defineDriver } from '../driver.js';
import { acquireModbusBus, modbusConnectionFields } from '../modbus-connection.js';
import { type InverterReading, Points } from '../natures.js';
import { discoverSunSpec, type ModelLocation, readModel, type SunSpecMap } from './discovery.js';
import { isInverterModel, perPhase } from './measurement-models.js';
import { decodeModel, encodePoint, type ModelDef, modelDef, pointDef, rawValue, symbolOf } from './models.js';

const THROTTLED = 5;

/** What a control write changed, read back from the device (the `control` command's output). */
export interface ControlReadback {
  unit: number;
  model: 123 | 704;
  limitPct: number | null;
  limitEnabled: boolean;
  varPct: number | null;
  revertS: number | null;
}

/**
 * The control side of a SunSpec inverter: model 704 (IEEE 1547-2018) when the device has it, else
 * model 123. Only the points of the requested setpoints are written (with their enable flags and
 * revert timers), never scale factors or read-only points; then the model is read back.
 */
export class SunSpecControls {
  constructor(
    private readonly bus: ModbusBus,
    private readonly unit: number,
    private readonly map: SunSpecMap,
  ) {}

  private location(): { loc: ModelLocation; def: ModelDef } {
    const loc = this.map.models.find((m) => m.id === 704) ?? this.map.models.find((m) => m.id === 123);
    if (!loc) {
      throw new P2PError(ErrorCode.driver, `unit ${this.unit} has neither model 704 nor 123: it takes no setpoints`, {
        component: 'sunspec',
      });
    }
    return { loc, def: modelDef(loc.id)! };
  }

  /** The control model's registers, read fresh (for read-back). */
  private async regs(): Promise<{ loc: ModelLocation; def: ModelDef; regs: number[] }> {
    const { loc, def } = this.location();
    return { loc, def, regs: await readModel(this.bus, this.unit, loc, 'write') };
  }

  private scaleSource: number[] | undefined;

  /**
   * The control model as first read: scale factors are fixed by the device, so a setpoint costs only
   * its writes after the first one (it matters on a 9600-baud line).
   */
  private async forWriting(): Promise<{ loc: ModelLocation; def: ModelDef; regs: number[] }> {
    const { loc, def } = this.location();
    this.scaleSource ??= await readModel(this.bus, this.unit, loc, 'write');
    return { loc, def, regs: this.scaleSource };
  }

  private sfOf(def: ModelDef, regs: number[], name: string): number {
    const sfName = pointDef(def, name).sf;
    if (!sfName) return 0;
    const sf = rawValue(pointDef(def, sfName), regs);
    if (typeof sf !== 'number') {
      throw new P2PError(
        ErrorCode.driver,
        `unit ${this.unit}: scale factor ${sfName} is not implemented; cannot write ${name}`,
        {
          component: 'sunspec',
        },
      );
    }
    return sf;
  }

  private async writePoint(
    loc: ModelLocation,
    def: ModelDef,
    regs: number[],
    name: string,
    value: number,
  ): Promise<void> {
    const p = pointDef(def, name);
    const words = encodePoint(p, value, this.sfOf(def, regs, name));
    try {
      await this.bus.writeRegisters(this.unit, loc.address + p.offset, words);
    } catch (err) {
      throw new P2PError(ErrorCode.driver, `${name}: ${(err as Error).message}`, { component: 'sunspec', cause: err });
    }
  }

  /** Sets the active power limit (% of WMax) and its revert timer (0 = none). */
  async setLimit(pct: number, revertS = 0): Promise<void> {
    if (!(pct >= 0 && pct <= 100))
      throw new P2PError(ErrorCode.input, `limit ${pct} % is outside 0..100`, {
        component: 'sunspec',
        field: 'limitPct',
      });
    const { loc, def, regs } = await this.forWriting();
    if (loc.id === 704) {
      await this.writePoint(loc, def, regs, 'WMaxLimPct', pct);
      await this.writePoint(loc, def, regs, 'WMaxLimPctRvrtTms', revertS);
      await this.writePoint(loc, def, regs, 'WMaxLimPctEna', 1);
    } else {
      await this.writePoint(loc, def, regs, 'WMaxLimPct', pct);
      await this.writePoint(loc, def, regs, 'WMaxLimPct_RvrtTms', revertS);
      await this.writePoint(loc, def, regs, 'WMaxLim_Ena', 1);
    }
  }

  /** Sets the reactive power as % of WMax (positive = injecting VArs) and its revert timer. */
  async setVarPct(pct: number, revertS = 0): Promise<void> {
    if (!(pct >= -100 && pct <= 100))
      throw new P2PError(ErrorCode.input, `reactive setpoint ${pct} % is outside −100..100`, {
        component: 'sunspec',
        field: 'varPct',
      });
    const { loc, def, regs } = await this.forWriting();
    if (loc.id === 704) {
      await this.writePoint(loc, def, regs, 'VarSetMod', 0);
      await this.writePoint(loc, def, regs, 'VarSetPct', pct);
      await this.writePoint(loc, def, regs, 'VarSetRvrtTms', revertS);
      await this.writePoint(loc, def, regs, 'VarSetEna', 1);
    } else {
      await this.writePoint(loc, def, regs, 'VArPct_Mod', 1);
      await this.writePoint(loc, def, regs, 'VArWMaxPct', pct);
      await this.writePoint(loc, def, regs, 'VArPct_RvrtTms', revertS);
      await this.writePoint(loc, def, regs, 'VArPct_Ena', 1);
    }
  }

  async readBack(): Promise<ControlReadback> {
    const { loc, def, regs } = await this.regs();
    const v = decodeModel(def, regs);
    const num = (name: string) => (typeof v[name] === 'number' ? (v[name] as number) : null);
    if (loc.id === 704) {
      const varEnabled = v.VarSetEna === 1;
      return {
        unit: this.unit,
        model: 704,
        limitPct: num('WMaxLimPct'),
        limitEnabled: v.WMaxLimPctEna === 1,
        varPct: varEnabled ? num('VarSetPct') : null,
        revertS: num('WMaxLimPctRvrtTms') || null,
      };
    }
    const varEnabled = v.VArPct_Ena === 1;
    return {
      unit: this.unit,
      model: 123,
      limitPct: num('WMaxLimPct'),
      limitEnabled: v.WMaxLim_Ena === 1,
      varPct: varEnabled ? num('VArWMaxPct') : null,
      revertS: num('WMaxLimPct_RvrtTms') || null,
    };
  }
}

/** Readings of an inverter's measurement model in the contract's names (`scan`). */
export function inverterReadings(def: ModelDef, regs: number[]): Record<string, unknown> {
  const v = decodeModel(def, regs);
  const num = (name: string) => (typeof v[name] === 'number' ? (v[name] as number) : undefined);
  const out: Record<string, unknown> = {};
  const put = (key: string, value: unknown) => {
    if (value !== undefined) out[key] = value;
  };
  put('acPowerW', num('W'));
  put('acVoltageV', perPhase(def.id, v, 'PhVph'));
  put('acCurrentA', perPhase(def.id, v, 'Aph'));
  put('frequencyHz', num('Hz'));
  put('energyWh', num('WH'));
  put('reactivePowerVAr', num('VAr'));
  put('status', symbolOf(def, 'St', v.St));
  return out;
}

export interface SunSpecInverterOptions {
  /** Rating used before the nameplate is read (and when the device has no model 120). */
  ratedW: number;
  /** Revert timer written with every setpoint, s; the driver re-writes at half of it. 0 = none. */
  revertS?: number;
  nominalPhaseV?: number;
  clock?: Clock;
}

/**
 * A SunSpec PV inverter as a gateway device. The model chain is discovered on the first poll (and
 * again after the device was lost). Each poll reads the measurement model; setpoints go through
 * model 704 or 123 with a revert timer, kept alive by re-writing before it runs out, so that the
 * inverter falls back to its own settings if this gateway dies.
 */
export class SunSpecInverter implements Device {
  readonly kind = 'sunspec-inverter';
  readonly backend: string;
  readonly inverter: InverterControl;
  private map: SunSpecMap | undefined;
  private controls: SunSpecControls | undefined;
  private ratedW: number;
  private lastAvailableW: number | undefined;
  private active: { limitPct?: number; varPct?: number; writtenAt: number } = { writtenAt: 0 };
  private readonly clock: Clock;

  constructor(
    readonly id: string,
    private readonly bus: ModbusBus,
    private readonly unit: number,
    private readonly o: SunSpecInverterOptions,
    private readonly release: () => Promise<void> = async () => {},
  ) {
    this.backend = bus.endpoint.kind === 'tcp' ? 'modbus-tcp' : 'modbus-rtu';
    this.ratedW = o.ratedW;
    this.clock = o.clock ?? systemClock;
    const self = this;
    this.inverter = {
      get ratedW() {
        return self.ratedW;
      },
      setActivePowerLimitPct: (pct) => this.setLimit(pct),
      setReactivePowerVAr: (vAr) => this.setVar((100 * vAr) / this.ratedW),
    };
  }

  private async ensureMap(): Promise<{ map: SunSpecMap; controls: SunSpecControls }> {
    if (!this.map || !this.controls) {
      const map = await discoverSunSpec(this.bus, this.unit);
      if (!map)
        throw new P2PError(ErrorCode.driver, `${this.id}: unit ${this.unit} has no SunSpec map`, {
          component: this.id,
        });
      const nameplate = map.models.find((m) => m.id === 120);
      if (nameplate) {
        const wrtg = decodeModel(modelDef(120)!, await readModel(this.bus, this.unit, nameplate, 'slow')).WRtg;
        if (typeof wrtg === 'number' && wrtg > 0) this.ratedW = wrtg;
      }
      this.map = map;
      this.controls = new SunSpecControls(this.bus, this.unit, map);
    }
    return { map: this.map, controls: this.controls };
  }

  private async setLimit(pct: number): Promise<void> {
    const { controls } = await this.ensureMap();
    await controls.setLimit(Math.min(100, Math.max(0, pct)), this.o.revertS ?? 0);
    this.active = { ...this.active, limitPct: pct, writtenAt: this.clock.now() };
  }

  private async setVar(pct: number): Promise<void> {
    const { controls } = await this.ensureMap();
    await controls.setVarPct(Math.min(100, Math.max(-100, pct)), this.o.revertS ?? 0);
    this.active = { ...this.active, varPct: pct, writtenAt: this.clock.now() };
  }

  /** Re-writes the active setpoints at half the revert time, so they never lapse while this gateway runs. */
  private async keepAlive(now: number): Promise<void> {
    const revertS = this.o.revertS ?? 0;
    if (revertS <= 0 || now - this.active.writtenAt < (revertS * 1000) / 2) return;
    if (this.active.limitPct !== undefined) await this.setLimit(this.active.limitPct);
    if (this.active.varPct !== undefined) await this.setVar(this.active.varPct);
  }

  /** A failed poll drops the map: the device may have reset or changed, it is discovered again. */
  async poll(now: number): Promise<InverterReading> {
    try {
      return await this.read(now);
    } catch (err) {
      this.map = undefined;
      throw err;
    }
  }

  private async read(now: number): Promise<InverterReading> {
    const { map } = await this.ensureMap();
    const loc = map.models.find((m) => isInverterModel(m.id));
    if (!loc)
      throw new P2PError(ErrorCode.driver, `${this.id}: no inverter model (101-103, 111-113)`, { component: this.id });
    const def = modelDef(loc.id)!;
    const v = decodeModel(def, await readModel(this.bus, this.unit, loc));
    await this.keepAlive(now);
    const voltages = perPhase(loc.id, v, 'PhVph');
    const present = voltages.filter((x): x is number => x !== null);
    const out: InverterReading = { [Points.acVoltageV]: voltages };
    if (present.length > 0)
      out[Points.voltagePu] = present.reduce((a, b) => a + b, 0) / present.length / (this.o.nominalPhaseV ?? 230);
    if (typeof v.W === 'number') out[Points.acPowerW] = v.W;
    if (typeof v.VAr === 'number') out[Points.reactivePowerVAr] = v.VAr;
    if (typeof v.Hz === 'number') out[Points.frequencyHz] = v.Hz;
    if (typeof v.WH === 'number') out[Points.energyWh] = v.WH;
    const available = await this.availableW(map, v);
    if (available !== undefined) out[Points.availablePowerW] = available;
    out[Points.limitPct] = this.active.limitPct ?? 100;
    return out;
  }

  /**
   * PV power available before the limit: model 122's WAval when the device has it; else the output
   * while it is not throttled, and the last such value while it is.
   */
  private async availableW(map: SunSpecMap, v: Record<string, number | string>): Promise<number | undefined> {
    const status = map.models.find((m) => m.id === 122);
    if (status) {
      const waval = decodeModel(modelDef(122)!, await readModel(this.bus, this.unit, status, 'slow')).WAval;
      if (typeof waval === 'number') return waval;
    }
    if (typeof v.W === 'number' && v.St !== THROTTLED) this.lastAvailableW = v.W;
    return this.lastAvailableW;
  }

  async close(): Promise<void> {
    await this.release();
  }
}

/** Driver `sunspec`: a SunSpec PV inverter (models 1, 101-103 or 111-113, 120-123, 704) on Modbus TCP or RTU. */
export const sunspecDriver = defineDriver({
  driver: 'sunspec',
  nature: 'inverter',
  usages: ['pv', 'battery'],
  defaultUsage: 'pv',
  fields: {
    ...modbusConnectionFields,
    /** Rating until the nameplate (model 120) is read. */
    ratedW: z.number().positive().default(5000),
    /** Revert timer written with every setpoint; the driver re-writes at half of it. 0 = none. */
    revertS: z.number().int().min(0).max(86_400).default(60),
  },
  create: (d, ctx) => {
    const { bus, release } = acquireModbusBus(d, ctx);
    return new SunSpecInverter(d.id, bus, d.unit, { ratedW: d.ratedW, revertS: d.revertS, clock: ctx.clock }, release);
  },
});
