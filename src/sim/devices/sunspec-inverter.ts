import { piecewiseLinear } from '../../core/interpolate.js';
import { decodeGroup, modelDef, pointDef, rawValue } from '../../drivers/sunspec/models.js';
import { type InverterPlant, ModbusException, type RegisterDevice } from './register-device.js';
import { chainRegister, DEFAULT_SF, ModelImage } from './sunspec-image.js';

export interface SimulatedSunSpecOptions {
  ratedW: number;
  /** Address of `SunS` (40000, 0 or 50000). */
  base?: number;
  /** Some devices end the chain with no end marker: the next read answers Illegal Data Address. */
  endMarker?: boolean;
  /** 1 phase (model 101) or 3 (model 103). */
  phases?: 1 | 3;
  manufacturer?: string;
  model?: string;
  serial?: string;
  /** Scale factors by point name (e.g. `{ W_SF: -1 }`), for devices with odd ones. */
  scaleFactors?: Record<string, number>;
  /** Points the device does not implement (their not-implemented marker is served). */
  notImplemented?: string[];
  /** Serves model 126 (volt-var, one curve) and follows its active curve when it is enabled. */
  voltVar?: boolean;
  /** Serves model 132 (volt-watt, one curve) and caps the power by its active curve when it is enabled. */
  voltWatt?: boolean;
  /**
   * Serves model 705 (IEEE 1547 volt-var: curve 1 in force and read-only, curve 2 writable, adopted
   * through AdptCrvReq) and follows curve 1 when Ena is set; it takes precedence over model 126.
   */
  voltVar1547?: boolean;
  /** The float variant of the measurement model: 111 or 113 (float32 points) instead of 101 or 103. */
  float?: boolean;
}

/** Points per curve of the simulated model 705. */
const VOLT_VAR_1547_POINTS = 8;
const ADOPT_COMPLETED = 1;
const ADOPT_FAILED = 2;

const STATUS_MPPT = 4;
const STATUS_THROTTLED = 5;
const STATUS_SLEEPING = 2;

/**
 * A SunSpec PV inverter as a register map: models 1 (common), 101 or 103 (measurements), 120
 * (nameplate), 121 (settings), 122 (status, with the available power WAval), 123 (immediate
 * controls), then the end marker. Its AC power follows
 * the plant's available power, capped at WMaxLimPct × WMax while WMaxLim_Ena is set; a limit with a
 * revert timer lapses when the timer runs out. Writes to read-only registers are refused.
 */
export class SimulatedSunSpecInverter implements RegisterDevice {
  readonly kind = 'sunspec-inverter';
  private readonly models: ModelImage[] = [];
  private readonly base: number;
  private readonly end: number;
  private limitWrittenAt: number | undefined;
  private varWrittenAt: number | undefined;
  /** Faults for tests and the bench: no answer at all, or an exception to every request. */
  silent = false;
  forcedException: number | undefined;
  /** Every read answered with random words (see SimulatedModbusServer). */
  garbage = false;

  constructor(
    private readonly o: SimulatedSunSpecOptions,
    private readonly plant: InverterPlant,
  ) {
    this.base = o.base ?? 40_000;
    const sfs = { ...DEFAULT_SF, ...o.scaleFactors };
    const absent = new Set(o.notImplemented ?? []);
    let address = this.base + 2;
    const measurement = (o.phases === 1 ? 101 : 103) + (o.float ? 10 : 0);
    const curveModels = [...(o.voltVar ? [126] : []), ...(o.voltWatt ? [132] : []), ...(o.voltVar1547 ? [705] : [])];
    for (const id of [1, measurement, 120, 121, 122, 123, ...curveModels]) {
      const def = modelDef(id)!;
      const curves = id === 126 || id === 132 ? 1 : id === 705 ? 2 : 0;
      const points = id === 705 ? VOLT_VAR_1547_POINTS : 0;
      const image = new ModelImage(def, address, (n) => sfs[n], absent, curves, points);
      this.models.push(image);
      address += image.regs.length;
    }
    this.end = address;
    const model = (id: number) => this.models.find((m) => m.def.id === id)!;
    const [common, nameplate, settings, controls] = [model(1), model(120), model(121), model(123)];
    common.setString('Mn', o.manufacturer ?? 'p2p-edge');
    common.setString('Md', o.model ?? 'simulated PV inverter');
    common.setString('SN', o.serial ?? 'SIM-0001');
    common.setString('Vr', '1.0');
    common.set('DA', 1);
    nameplate.set('DERTyp', 4);
    nameplate.set('WRtg', o.ratedW);
    nameplate.set('VARtg', o.ratedW);
    nameplate.set('VArRtgQ1', 0.44 * o.ratedW);
    nameplate.set('VArRtgQ4', -0.44 * o.ratedW);
    settings.set('WMax', o.ratedW);
    settings.set('VRef', 230);
    settings.set('VAMax', o.ratedW);
    controls.set('Conn', 1);
    controls.set('WMaxLimPct', 100);
    controls.set('WMaxLim_Ena', 0);
    controls.set('WMaxLimPct_RvrtTms', 0);
    controls.set('VArWMaxPct', 0);
    controls.set('VArPct_Mod', 1);
    controls.set('VArPct_Ena', 0);
    controls.set('VArPct_RvrtTms', 0);
    const vv = this.model(126);
    if (vv) {
      vv.set('ActCrv', 1);
      vv.set('ModEna', 0);
      vv.set('NCrv', 1);
      vv.set('NPt', 20);
      // IEEE 1547-2018 Category B default curve, reactive power in % of WMax.
      const cat = [
        [92, 44],
        [98, 0],
        [102, 0],
        [108, -44],
      ] as const;
      vv.setInGroup(0, 'ActPt', cat.length);
      vv.setInGroup(0, 'DeptRef', 1);
      cat.forEach(([v, q], k) => {
        vv.setInGroup(0, `V${k + 1}`, v);
        vv.setInGroup(0, `VAr${k + 1}`, q);
      });
    }
    const vw = this.model(132);
    if (vw) {
      vw.set('ActCrv', 1);
      vw.set('ModEna', 0);
      vw.set('NCrv', 1);
      vw.set('NPt', 20);
      // AS/NZS 4777.2:2020 (Australia A) volt-watt: full power to 253 V (110 %), 20 % at 260 V (113 %).
      vw.setInGroup(0, 'ActPt', 2);
      vw.setInGroup(0, 'DeptRef', 1);
      vw.setInGroup(0, 'V1', 110);
      vw.setInGroup(0, 'W1', 100);
      vw.setInGroup(0, 'V2', 113);
      vw.setInGroup(0, 'W2', 20);
    }
    const vv1547 = this.model(705);
    if (vv1547) {
      vv1547.set('Ena', 0);
      vv1547.set('AdptCrvReq', 0);
      vv1547.set('AdptCrvRslt', ADOPT_COMPLETED);
      vv1547.set('NPt', VOLT_VAR_1547_POINTS);
      vv1547.set('NCrv', 2);
      vv1547.set('RvrtTms', 0);
      vv1547.set('RvrtCrv', 1);
      // IEEE 1547-2018 Category B default curve in force, reactive power in % of WMax (DeptRef 0).
      const cat = [
        [92, 44],
        [98, 0],
        [102, 0],
        [108, -44],
      ] as const;
      for (const crv of [0, 1]) {
        vv1547.setInGroup(crv, 'ActPt', cat.length);
        vv1547.setInGroup(crv, 'DeptRef', 0);
        vv1547.setInGroup(crv, 'Pri', 1);
        vv1547.setInGroup(crv, 'ReadOnly', crv === 0 ? 1 : 0);
        cat.forEach(([v, q], k) => {
          vv1547.setInSubgroup(crv, k, 'V', v);
          vv1547.setInSubgroup(crv, k, 'Var', q);
        });
      }
    }
  }

  get ratedW(): number {
    return this.o.ratedW;
  }

  private model(id: number): ModelImage | undefined {
    return this.models.find((m) => m.def.id === id);
  }

  /** The SunSpec marker, the models, the end marker, as one sparse register space. */
  private register(address: number): number {
    return chainRegister(this.base, this.models, this.o.endMarker === false ? undefined : this.end, address);
  }

  private controls(): Record<string, number | string> {
    return this.model(123)!.values();
  }

  /** Applies the control registers to the plant, lapsing limits whose revert timer ran out. */
  private applyControls(now: number): void {
    const controls = this.model(123)!;
    const c = this.controls();
    const limitRevertS = Number(c.WMaxLimPct_RvrtTms ?? 0);
    if (
      c.WMaxLim_Ena === 1 &&
      limitRevertS > 0 &&
      this.limitWrittenAt !== undefined &&
      now - this.limitWrittenAt > limitRevertS * 1000
    ) {
      controls.set('WMaxLim_Ena', 0);
    }
    const varRevertS = Number(c.VArPct_RvrtTms ?? 0);
    if (
      c.VArPct_Ena === 1 &&
      varRevertS > 0 &&
      this.varWrittenAt !== undefined &&
      now - this.varWrittenAt > varRevertS * 1000
    ) {
      controls.set('VArPct_Ena', 0);
    }
    const after = this.controls();
    const limitPct = after.WMaxLim_Ena === 1 ? Number(after.WMaxLimPct ?? 100) : 100;
    this.plant.setLimitPct(Math.min(limitPct, this.voltWattPct(now) ?? 100));
    let varPct = after.VArPct_Ena === 1 && after.VArPct_Mod === 1 ? Number(after.VArWMaxPct ?? 0) : 0;
    const curvePct = this.voltVarPct(now);
    if (curvePct !== undefined) varPct = curvePct;
    this.plant.setReactiveVAr((varPct / 100) * this.o.ratedW);
  }

  /** The power (% of WMax) the active volt-watt curve allows, when model 132 is enabled. */
  private voltWattPct(now: number): number | undefined {
    const vw = this.model(132);
    if (!vw) return undefined;
    const header = vw.values();
    if ((Number(header.ModEna ?? 0) & 1) !== 1 || Number(header.ActCrv ?? 0) < 1) return undefined;
    const c = decodeGroup(vw.def, vw.regs, Number(header.ActCrv) - 1);
    const curve = Array.from(
      { length: Number(c.ActPt ?? 0) },
      (_, k) => [Number(c[`V${k + 1}`]), Number(c[`W${k + 1}`])] as [number, number],
    );
    if (curve.length < 2) return undefined;
    return piecewiseLinear(curve, 100 * this.plant.read(now).voltagePu);
  }

  /** The curve in force of model 705 (curve 1), as (V %, VAr % of WMax) pairs. */
  private curve1547(): [number, number][] {
    const m = this.model(705)!;
    const g = m.def.group!;
    const sub = g.subgroup!;
    const values = m.values();
    const vSf = Number(rawValue(pointDef(m.def, 'V_SF'), m.regs));
    const qSf = Number(rawValue(pointDef(m.def, 'DeptRef_SF'), m.regs));
    const start = 2 + m.def.fixedLength;
    const actPt = Number(rawValue(g.points.find((p) => p.name === 'ActPt')!, m.regs.slice(start)) ?? 0);
    const n = Math.min(actPt, Number(values.NPt ?? 0));
    return Array.from({ length: n }, (_, k) => {
      const at = m.regs.slice(start + g.length + k * sub.length);
      const v = Number(rawValue(sub.points.find((p) => p.name === 'V')!, at));
      const q = Number(rawValue(sub.points.find((p) => p.name === 'Var')!, at));
      return [v * 10 ** vSf, q * 10 ** qSf] as [number, number];
    });
  }

  /** The reactive power (% of WMax) the volt-var curve in force asks for: model 705 if enabled, else 126. */
  private voltVarPct(now: number): number | undefined {
    const vv1547 = this.model(705);
    if (vv1547 && vv1547.values().Ena === 1) {
      const curve = this.curve1547();
      if (curve.length >= 2) return piecewiseLinear(curve, 100 * this.plant.read(now).voltagePu);
    }
    const vv = this.model(126);
    if (!vv) return undefined;
    const header = vv.values();
    if ((Number(header.ModEna ?? 0) & 1) !== 1 || Number(header.ActCrv ?? 0) < 1) return undefined;
    const c = decodeGroup(vv.def, vv.regs, Number(header.ActCrv) - 1);
    const n = Number(c.ActPt ?? 0);
    const curve = Array.from(
      { length: n },
      (_, k) => [Number(c[`V${k + 1}`]), Number(c[`VAr${k + 1}`])] as [number, number],
    );
    if (curve.length < 2) return undefined;
    return piecewiseLinear(curve, 100 * this.plant.read(now).voltagePu);
  }

  /** Refreshes the measurement model from the plant. */
  private measure(now: number): void {
    this.applyControls(now);
    const m = this.model(101) ?? this.model(103) ?? this.model(111) ?? this.model(113)!;
    const r = this.plant.read(now);
    const phases = this.o.phases === 1 ? 1 : 3;
    const phaseV = 230 * r.voltagePu;
    const va = Math.hypot(r.powerW, r.reactiveVAr);
    const amps = va / (phaseV * phases);
    m.set('A', amps * phases);
    m.set('AphA', amps);
    m.set('PhVphA', phaseV);
    if (phases === 3) {
      for (const ph of ['B', 'C']) {
        m.set(`Aph${ph}`, amps);
        m.set(`PhVph${ph}`, phaseV);
      }
      for (const pp of ['AB', 'BC', 'CA']) m.set(`PPVph${pp}`, phaseV * Math.sqrt(3));
    }
    m.set('W', r.powerW);
    m.set('Hz', 50);
    m.set('VA', va);
    m.set('VAr', r.reactiveVAr);
    m.set('PF', va > 0 ? (100 * r.powerW) / va : 100);
    m.set('WH', Math.max(1, Math.round(r.energyWh)));
    const c = this.controls();
    const limited = c.WMaxLim_Ena === 1 && r.powerW < this.plant.availableW(now) - 1;
    m.set('St', r.powerW <= 0 ? STATUS_SLEEPING : limited ? STATUS_THROTTLED : STATUS_MPPT);
    const status = this.model(122)!;
    status.set('PVConn', 1);
    status.set('WAval', this.plant.availableW(now));
  }

  readHolding(address: number, count: number, now: number): number[] {
    this.measure(now);
    return Array.from({ length: count }, (_, i) => this.register(address + i));
  }

  writeHolding(address: number, values: number[], now: number): void {
    values.forEach((v, i) => {
      const at = address + i;
      const image = this.models.find((m) => at >= m.address && at < m.address + m.regs.length);
      const p = image?.pointAt(at - image.address);
      if (!image || !p?.writable) throw new ModbusException(2);
      // model 705: curve 1 is the curve in force, changed only by adopting another one
      if (image.def.id === 705 && p.group === 0) throw new ModbusException(2);
      image.regs[at - image.address] = v;
      if (image.def.id === 705 && p.name === 'AdptCrvReq') this.adoptCurve(image, v);
      if (p.name.startsWith('WMaxLim')) this.limitWrittenAt = now;
      if (p.name.startsWith('VAr')) this.varWrittenAt = now;
    });
    this.applyControls(now);
  }

  /** Model 705: copies stored curve `index` (1-based) into curve 1 when it is a valid curve. */
  private adoptCurve(m: ModelImage, index: number): void {
    if (index === 0) return;
    const valid = index >= 2 && index <= m.groups && this.curveRises(m, index - 1);
    if (valid) {
      m.copyGroup(index - 1, 0);
      m.setInGroup(0, 'ReadOnly', 1);
    }
    m.set('AdptCrvRslt', valid ? ADOPT_COMPLETED : ADOPT_FAILED);
    m.set('AdptCrvReq', 0);
  }

  private curveRises(m: ModelImage, group: number): boolean {
    const g = m.def.group!;
    const sub = g.subgroup!;
    const start = 2 + m.def.fixedLength + group * m.groupStride;
    const actPt = Number(rawValue(g.points.find((p) => p.name === 'ActPt')!, m.regs.slice(start)) ?? 0);
    if (actPt < 2 || actPt > m.subgroups) return false;
    const vs = Array.from({ length: actPt }, (_, k) =>
      Number(rawValue(sub.points.find((p) => p.name === 'V')!, m.regs.slice(start + g.length + k * sub.length))),
    );
    return vs.every((v, k) => Number.isFinite(v) && (k === 0 || v > vs[k - 1]!));
  }

  readInput(): number[] {
    throw new ModbusException(1);
  }

  /** The present control settings (for tests and the bench). */
  controlState(now: number): Record<string, number | string> {
    this.applyControls(now);
    return this.controls();
  }
}
