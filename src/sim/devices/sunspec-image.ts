import { decodeModel, encodePoint, type ModelDef, type PointDef, pointDef } from '../../drivers/sunspec/models.js';
import { ModbusException } from './register-device.js';

/**
 * A SunSpec model as a simulated device serves it: its registers filled from engineering values by
 * the model definitions (`models.json`), with the not-implemented marker of each point's type where
 * the device leaves a point out. Shared by the simulated SunSpec inverter and meter.
 */
export const DEFAULT_SF: Record<string, number> = {
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

export function notImplemented(p: PointDef): number[] {
  switch (p.type) {
    case 'int16':
    case 'sunssf':
      return [0x8000];
    case 'int32':
      return [0x8000, 0];
    case 'float32':
      return [0x7fc0, 0]; // NaN
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
export class ModelImage {
  readonly regs: number[];

  constructor(
    readonly def: ModelDef,
    readonly address: number,
    private readonly sf: (name: string) => number | undefined,
    private readonly absent: ReadonlySet<string>,
    /** Repeating groups (curves) after the fixed part. */
    readonly groups = 0,
    /** Points of each group's subgroup (model 705: NPt curve points per curve). */
    readonly subgroups = 0,
  ) {
    this.regs = [];
    for (const p of def.points) this.regs.push(...notImplemented(p));
    const sub = def.group?.subgroup;
    for (let g = 0; g < groups; g++) {
      for (const p of def.group?.points ?? []) this.regs.push(...notImplemented(p));
      for (let k = 0; k < subgroups; k++) for (const p of sub?.points ?? []) this.regs.push(...notImplemented(p));
    }
    this.regs[0] = def.id;
    this.regs[1] = def.fixedLength + groups * this.groupStride;
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

  /** Registers of one repeating group, its subgroups included. */
  get groupStride(): number {
    const g = this.def.group;
    return g ? g.length + this.subgroups * (g.subgroup?.length ?? 0) : 0;
  }

  /** The point a register belongs to, if any, and for a group's point the group's index (0-based). */
  pointAt(index: number): (PointDef & { group?: number }) | undefined {
    const fixed = this.def.points.find((x) => index >= x.offset && index < x.offset + x.size);
    const g = this.def.group;
    if (fixed || !g) return fixed;
    const fromGroups = index - 2 - this.def.fixedLength;
    if (fromGroups >= this.groups * this.groupStride) return undefined;
    const group = Math.floor(fromGroups / this.groupStride);
    const rel = fromGroups % this.groupStride;
    if (rel < g.length) {
      const p = g.points.find((x) => rel >= x.offset && rel < x.offset + x.size);
      return p && { ...p, group };
    }
    const inSub = (rel - g.length) % (g.subgroup?.length ?? 1);
    const p = g.subgroup?.points.find((x) => inSub >= x.offset && inSub < x.offset + x.size);
    return p && { ...p, group };
  }

  private writeAt(p: PointDef, at: number, value: number): void {
    const sf = p.sf ? (this.sf(p.sf) ?? 0) : 0;
    encodePoint(p, value, sf).forEach((w, i) => {
      this.regs[at + i] = w;
    });
  }

  /** Sets a point of the `index`-th group in engineering units. */
  setInGroup(index: number, name: string, value: number): void {
    const p = this.def.group!.points.find((x) => x.name === name)!;
    this.writeAt(p, 2 + this.def.fixedLength + index * this.groupStride + p.offset, value);
  }

  /** Sets a point of the `k`-th subgroup (curve point) of the `index`-th group in engineering units. */
  setInSubgroup(index: number, k: number, name: string, value: number): void {
    const g = this.def.group!;
    const sub = g.subgroup!;
    const p = sub.points.find((x) => x.name === name)!;
    this.writeAt(p, 2 + this.def.fixedLength + index * this.groupStride + g.length + k * sub.length + p.offset, value);
  }

  /** Copies the registers of group `from` over group `to` (model 705 adopting a curve). */
  copyGroup(from: number, to: number): void {
    const start = 2 + this.def.fixedLength;
    const src = this.regs.slice(start + from * this.groupStride, start + (from + 1) * this.groupStride);
    src.forEach((w, i) => {
      this.regs[start + to * this.groupStride + i] = w;
    });
  }
}

/**
 * One register of a SunSpec device: `SunS` at `base`, the models, the end marker at `end` (none when
 * undefined); any other address answers Illegal Data Address.
 */
export function chainRegister(
  base: number,
  models: readonly ModelImage[],
  end: number | undefined,
  address: number,
): number {
  if (address === base) return 0x5375;
  if (address === base + 1) return 0x6e53;
  for (const m of models) {
    const i = address - m.address;
    if (i >= 0 && i < m.regs.length) return m.regs[i]!;
  }
  if (end !== undefined && address === end) return 0xffff;
  if (end !== undefined && address === end + 1) return 0;
  throw new ModbusException(2);
}
