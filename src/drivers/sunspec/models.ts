import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { parseWith } from '../../core/validate.js';

/**
 * SunSpec model definitions as data (`models.json`, converted from the official model JSON by
 * `bench/convert-sunspec-models.ts`), and the decoding and encoding of a model's registers. Offsets
 * count from the model's ID register; data is big-endian, high word first.
 */
const PointType = z.enum([
  'uint16',
  'int16',
  'enum16',
  'bitfield16',
  'sunssf',
  'uint32',
  'int32',
  'acc32',
  'bitfield32',
  'uint64',
  'acc64',
  'float32',
  'string',
  'pad',
]);

const PointDef = z
  .object({
    name: z.string(),
    offset: z.number().int().nonnegative(),
    type: PointType,
    size: z.number().int().positive(),
    sf: z.string().optional(),
    writable: z.boolean().optional(),
    units: z.string().optional(),
    symbols: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type PointDef = z.infer<typeof PointDef>;

const ModelDef = z
  .object({
    id: z.number().int(),
    name: z.string(),
    /** Registers of the fixed part after ID and L. */
    fixedLength: z.number().int().nonnegative(),
    /** Repeating groups (curves) follow the fixed part. */
    repeating: z.boolean(),
    points: z.array(PointDef),
    /** The repeating group after the fixed part (a curve), its offsets from the group's start. */
    group: z
      .object({
        name: z.string(),
        length: z.number().int().positive(),
        points: z.array(PointDef),
        /** Points each group repeats in its turn (model 705's curve points), as many as `countPoint` says. */
        subgroup: z
          .object({
            name: z.string(),
            countPoint: z.string(),
            length: z.number().int().positive(),
            points: z.array(PointDef),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ModelDef = z.infer<typeof ModelDef>;

const ModelFile = z.object({ source: z.string(), models: z.record(z.string(), ModelDef) }).strict();

let cache: Map<number, ModelDef> | undefined;

export function modelDefs(): Map<number, ModelDef> {
  if (!cache) {
    const file = join(import.meta.dirname, 'models.json');
    const parsed = parseWith(ModelFile, JSON.parse(readFileSync(file, 'utf8')), { file, code: ErrorCode.config });
    cache = new Map(Object.values(parsed.models).map((m) => [m.id, m]));
  }
  return cache;
}

export function modelDef(id: number): ModelDef | undefined {
  return modelDefs().get(id);
}

export function pointDef(model: ModelDef, name: string): PointDef {
  const p = model.points.find((x) => x.name === name);
  if (!p)
    throw new P2PError(ErrorCode.driver, `SunSpec model ${model.id} has no point ${name}`, { component: 'sunspec' });
  return p;
}

/** The raw value of a point, or undefined when the device marks it not implemented. */
export function rawValue(p: PointDef, regs: readonly number[]): number | bigint | string | undefined {
  const r = regs.slice(p.offset, p.offset + p.size);
  if (r.length < p.size || r.some((x) => x === undefined)) return undefined;
  const u32 = () => r[0]! * 65_536 + r[1]!;
  switch (p.type) {
    case 'uint16':
    case 'enum16':
    case 'bitfield16':
      return r[0] === 0xffff ? undefined : r[0]!;
    case 'int16':
    case 'sunssf':
      return r[0] === 0x8000 ? undefined : r[0]! >= 0x8000 ? r[0]! - 0x10000 : r[0]!;
    case 'uint32':
    case 'bitfield32':
      return u32() === 0xffffffff ? undefined : u32();
    case 'int32': {
      const v = u32();
      return v === 0x80000000 ? undefined : v >= 0x80000000 ? v - 0x100000000 : v;
    }
    case 'acc32':
      return u32() === 0 ? undefined : u32();
    case 'uint64':
    case 'acc64': {
      const v = r.reduce((acc, x) => (acc << 16n) | BigInt(x), 0n);
      return (p.type === 'acc64' && v === 0n) || (p.type === 'uint64' && v === 0xffffffffffffffffn) ? undefined : v;
    }
    case 'float32': {
      // SunSpec marks a float32 point not implemented with NaN (0x7FC00000)
      const f = Buffer.alloc(4);
      f.writeUInt16BE(r[0]!, 0);
      f.writeUInt16BE(r[1]!, 2);
      const v = f.readFloatBE(0);
      return Number.isFinite(v) ? v : undefined;
    }
    case 'string': {
      const bytes = Buffer.alloc(p.size * 2);
      r.forEach((x, i) => {
        bytes.writeUInt16BE(x, 2 * i);
      });
      const text = bytes.toString('latin1').replace(/\0.*$/s, '').trim();
      return text === '' ? undefined : text;
    }
    case 'pad':
      return undefined;
  }
}

/**
 * The shortest decimal that is the same float32 (230.1, not 230.10000610351562): the digits beyond
 * are the encoding's, not the device's.
 */
function shortestFloat32(f: number): number {
  for (let digits = 6; digits < 9; digits++) {
    const d = Number(f.toPrecision(digits));
    if (Math.fround(d) === f) return d;
  }
  return f;
}

/** The SunSpec information model's range of a scale factor: 10^-10 .. 10^10. */
const MAX_SCALE_FACTOR = 10;

/**
 * Every implemented point of a model, scaled by its scale factor (a point whose scale factor is not
 * implemented, or outside -10..10, is left out, never shown unscaled). Enums stay numbers; `symbolOf` names them.
 */
export function decodeModel(model: ModelDef, regs: readonly number[]): Record<string, number | string> {
  const raw = new Map<string, number | bigint | string | undefined>();
  for (const p of model.points) raw.set(p.name, rawValue(p, regs));
  const out: Record<string, number | string> = {};
  for (const p of model.points) {
    const v = raw.get(p.name);
    if (v === undefined || p.type === 'sunssf' || p.name === 'ID' || p.name === 'L') continue;
    if (typeof v === 'string') {
      out[p.name] = v;
      continue;
    }
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (p.type === 'float32') {
      out[p.name] = shortestFloat32(n);
      continue;
    }
    if (p.sf) {
      const sf = raw.get(p.sf);
      // SunSpec scale factors lie in -10..10; anything else is a broken device, not a value to scale by
      if (typeof sf !== 'number' || sf < -MAX_SCALE_FACTOR || sf > MAX_SCALE_FACTOR) continue;
      out[p.name] = Number((n * 10 ** sf).toPrecision(12));
    } else out[p.name] = n;
  }
  return out;
}

export function symbolOf(model: ModelDef, name: string, value: number | string | undefined): string | undefined {
  if (typeof value !== 'number') return undefined;
  return pointDef(model, name).symbols?.[String(value)];
}

/**
 * The registers that write `value` (in engineering units) into a point, given its scale factor.
 * Rounds to the nearest step the scale factor allows and refuses what the type cannot hold.
 */
export function encodePoint(p: PointDef, value: number, sf = 0): number[] {
  if (p.type === 'float32') {
    if (!Number.isFinite(value) || Math.abs(value) > 3.4e38)
      throw new P2PError(ErrorCode.input, `${p.name}: ${value} is not a float32 value`, {
        component: 'sunspec',
        field: p.name,
      });
    const f = Buffer.alloc(4);
    f.writeFloatBE(value, 0);
    return [f.readUInt16BE(0), f.readUInt16BE(2)];
  }
  const scaled = Math.round(value / 10 ** sf);
  const range: Record<string, [number, number]> = {
    uint16: [0, 0xfffe],
    enum16: [0, 0xfffe],
    int16: [-0x7fff, 0x7fff],
    bitfield16: [0, 0xfffe],
    uint32: [0, 0xfffffffe],
    bitfield32: [0, 0xfffffffe],
    acc32: [0, 0xffffffff],
    int32: [-0x7fffffff, 0x7fffffff],
  };
  const [lo, hi] = range[p.type] ?? [Number.NaN, Number.NaN];
  if (!(scaled >= lo && scaled <= hi)) {
    throw new P2PError(
      ErrorCode.input,
      `${p.name}: ${value} is outside what a ${p.type} with scale 10^${sf} can hold`,
      {
        component: 'sunspec',
        field: p.name,
      },
    );
  }
  if (p.size === 1) return [scaled < 0 ? scaled + 0x10000 : scaled];
  const u = scaled < 0 ? scaled + 0x100000000 : scaled;
  return [Math.floor(u / 65_536), u % 65_536];
}

/**
 * The points of the `index`-th repeating group (0-based: a curve) of a model whose registers
 * (ID and L included) are `regs`, scaled by the model's scale factors.
 */
export function decodeGroup(model: ModelDef, regs: readonly number[], index: number): Record<string, number | string> {
  const g = model.group;
  if (!g)
    throw new P2PError(ErrorCode.driver, `SunSpec model ${model.id} has no repeating group`, { component: 'sunspec' });
  const start = 2 + model.fixedLength + index * g.length;
  const prefix = `${g.name}.`;
  const all = decodeModel(
    {
      ...model,
      points: [...model.points, ...g.points.map((p) => ({ ...p, name: prefix + p.name, offset: start + p.offset }))],
    },
    regs,
  );
  return Object.fromEntries(
    Object.entries(all)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
}
