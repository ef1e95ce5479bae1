import { piecewiseLinear } from '../../core/interpolate.js';
import {
  decodeGroup,
  decodeModel,
  encodePoint,
  type ModelDef,
  modelDef,
  type PointDef,
  pointDef,
} from '../../drivers/sunspec/models.js';
import { type InverterPlant, ModbusException, type RegisterDevice } from './register-device.js';

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
}

const DEFAULT_SF: Record<string, number> = {
  A_SF: -2,
  V_SF: -1,
  W_SF: 0,
  Hz_SF: -2,
  VA_SF: 0,
  VAr_SF: 0,
  PF_SF: -2,
  WH_SF: 0,
  DCA_SF: -2,
  DCV_SF: -1,
  DCW_SF: 0,
  Tmp_SF: -1,
  WRtg_SF: 0,
  VARtg_SF: 0,
  VArRtg_SF: 0,
  ARtg_SF: -1,
  PFRtg_SF: -3,
  WHRtg_SF: 0,
  AhrRtg_SF: 0,
  MaxChaRte_SF: 0,
  MaxDisChaRte_SF: 0,
  WMax_SF: 0,
  VRef_SF: -1,
  VRefOfs_SF: -1,
  VMinMax_SF: -1,
  VAMax_SF: 0,
  VArMax_SF: 0,
  WGra_SF: -2,
  PFMin_SF: -3,
  MaxRmpRte_SF: 0,
  ECPNomHz_SF: -2,
  WMaxLimPct_SF: -1,
  OutPFSet_SF: -3,
  VArPct_SF: -1,
  DeptRef_SF: -1,
  RmpIncDec_SF: 0,
  WAval_SF: 0,
  VArAval_SF: 0,
  Ris_SF: 0,
};

const STATUS_MPPT = 4;
const STATUS_THROTTLED = 5;
const STATUS_SLEEPING = 2;

function notImplemented(p: PointDef): number[] {
  switch (p.type) {
    case 'int16':
    case 'sunssf':
      return [0x8000];
    case 'int32':
      return [0x8000, 0];
    case 'acc32':
    case 'acc64':
    case 'string':
    case 'pad':
      return Array(p.size).fill(0);
    default:
      return Array(p.size).fill(0xffff);
  }
}

/** One model's registers (ID and L included) filled from engineering values. */
class ModelImage {
  readonly regs: number[];

  constructor(
    readonly def: ModelDef,
    readonly address: number,
    private readonly sf: (name: string) => number | undefined,
    private readonly absent: ReadonlySet<string>,
    /** Repeating groups (curves) after the fixed part. */
    readonly groups = 0,
  ) {
    this.regs = [];
    for (const p of def.points) this.regs.push(...notImplemented(p));
    for (let g = 0; g < groups; g++) for (const p of def.group?.points ?? []) this.regs.push(...notImplemented(p));
    this.regs[0] = def.id;
    this.regs[1] = def.fixedLength + groups * (def.group?.length ?? 0);
    for (const p of def.points) if (p.type === 'sunssf') this.setRaw(p, this.sf(p.name));
  }

  private setRaw(p: PointDef, value: number | undefined): void {
    if (value === undefined || this.absent.has(p.name)) return;
    const words = p.type === 'sunssf' ? [value < 0 ? value + 0x10000 : value] : encodePoint(p, value, 0);
    words.forEach((w, i) => {
      this.regs[p.offset + i] = w;
    });
  }

  /** Sets a point in engineering units (scaled by its scale factor); absent points keep their marker. */
  set(name: string, value: number): void {
    const p = pointDef(this.def, name);
    if (this.absent.has(name)) return;
    const sf = p.sf ? this.sf(p.sf) : 0;
    if (p.sf && sf === undefined) return;
    const words = encodePoint(p, value, sf ?? 0);
    words.forEach((w, i) => {
      this.regs[p.offset + i] = w;
    });
  }

  setString(name: string, text: string): void {
    const p = pointDef(this.def, name);
    const bytes = Buffer.alloc(p.size * 2);
    bytes.write(text.slice(0, p.size * 2), 'latin1');
    for (let i = 0; i < p.size; i++) this.regs[p.offset + i] = bytes.readUInt16BE(2 * i);
  }

  values(): Record<string, number | string> {
    return decodeModel(this.def, this.regs);
  }

  /** The point (of the fixed part or of a repeating group) a register belongs to, if any. */
  pointAt(index: number): PointDef | undefined {
    const fixed = this.def.points.find((x) => index >= x.offset && index < x.offset + x.size);
    if (fixed || !this.def.group) return fixed;
    const rel = (index - 2 - this.def.fixedLength) % this.def.group.length;
    if (index - 2 - this.def.fixedLength >= this.groups * this.def.group.length) return undefined;
    return this.def.group.points.find((x) => rel >= x.offset && rel < x.offset + x.size);
  }

  /** Sets a point of the `index`-th group in engineering units. */
  setInGroup(index: number, name: string, value: number): void {
    const g = this.def.group!;
    const p = g.points.find((x) => x.name === name)!;
    const sf = p.sf ? (this.sf(p.sf) ?? 0) : 0;
    const at = 2 + this.def.fixedLength + index * g.length + p.offset;
    encodePoint(p, value, sf).forEach((w, i) => {
      this.regs[at + i] = w;
    });
  }
}

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
    for (const id of [1, o.phases === 1 ? 101 : 103, 120, 121, 122, 123, ...(o.voltVar ? [126] : [])]) {
      const def = modelDef(id)!;
      const curves = id === 126 ? 1 : 0;
      const image = new ModelImage(def, address, (n) => sfs[n], absent, curves);
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
  }

  get ratedW(): number {
    return this.o.ratedW;
  }

  private model(id: number): ModelImage | undefined {
    return this.models.find((m) => m.def.id === id);
  }

  /** The SunSpec marker, the models, the end marker, as one sparse register space. */
  private register(address: number): number {
    if (address === this.base) return 0x5375;
    if (address === this.base + 1) return 0x6e53;
    for (const m of this.models) {
      const i = address - m.address;
      if (i >= 0 && i < m.regs.length) return m.regs[i]!;
    }
    if (this.o.endMarker !== false && address === this.end) return 0xffff;
    if (this.o.endMarker !== false && address === this.end + 1) return 0;
    throw new ModbusException(2);
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
    this.plant.setLimitPct(after.WMaxLim_Ena === 1 ? Number(after.WMaxLimPct ?? 100) : 100);
    let varPct = after.VArPct_Ena === 1 && after.VArPct_Mod === 1 ? Number(after.VArWMaxPct ?? 0) : 0;
    const curvePct = this.voltVarPct(now);
    if (curvePct !== undefined) varPct = curvePct;
    this.plant.setReactiveVAr((varPct / 100) * this.o.ratedW);
  }

  /** The reactive power (% of WMax) the active volt-var curve asks for, when model 126 is enabled. */
  private voltVarPct(now: number): number | undefined {
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
    const m = this.model(101) ?? this.model(103)!;
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
      image.regs[at - image.address] = v;
      if (p.name.startsWith('WMaxLim')) this.limitWrittenAt = now;
      if (p.name.startsWith('VAr')) this.varWrittenAt = now;
    });
    this.applyControls(now);
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
