import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, P2PError } from '../../src/core/errors.js';
import { decodeRegisterPoint, type RegisterMap } from '../../src/drivers/register-map.js';
import { decodeSdm630, SDM630_REGISTERS } from '../../src/drivers/sdm630.js';
import { discoverSunSpec, readModel } from '../../src/drivers/sunspec/discovery.js';
import { inverterReadings } from '../../src/drivers/sunspec/inverter.js';
import {
  decodeGroup,
  decodeModel,
  encodePoint,
  type ModelDef,
  modelDefs,
  type PointDef,
  rawValue,
} from '../../src/drivers/sunspec/models.js';
import { readVoltVar } from '../../src/drivers/sunspec/volt-var.js';
import type { ModbusBus } from '../../src/hal/modbus/bus.js';
import { endpointKey, parseModbusUrl } from '../../src/hal/modbus/url.js';
import { CASE_TIMEOUT_MS, fuzz, outcome, outcomeAsync } from '../helpers/fuzz.js';

/**
 * Fuzzing of what comes back from Modbus devices (docs/fuzzing.md): SunSpec models decoded from
 * arbitrary register contents (scale factors included), the discovery and chain walk over arbitrary
 * register images, SDM630 floats, register-map points, and the Modbus URLs of configs and commands.
 * RTU framing and CRC are modbus-serial's (no frame parser of our own in src/hal/modbus).
 */

/** Registers as a device may send them: mostly random, often the SunSpec markers and edge values. */
function registers(seed: number, length: number): number[] {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const special = [0, 1, 0x7fff, 0x8000, 0x8001, 0xfff6, 0xfffe, 0xffff, 10, 0x000a, 0xff9c];
  return Array.from({ length }, () =>
    next() < 0.3 ? special[Math.floor(next() * special.length)]! : Math.floor(next() * 0x10000),
  );
}

const defs = [...modelDefs().values()];
const finiteOrText = (v: unknown) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

describe('fuzz: SunSpec model decoding (src/drivers/sunspec/models.ts)', () => {
  it('any register contents, any length: every decoded point is a finite number or a string', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...defs.map((d) => d.id)),
        fc.integer(),
        fc.integer({ min: -4, max: 8 }),
        fc.nat({ max: 3 }),
        (id, seed, extra, curve) => {
          const def = defs.find((d) => d.id === id)!;
          const length = Math.max(0, 2 + def.fixedLength + (def.group ? def.group.length : 0) + extra);
          const regs = registers(seed, length);
          const v = decodeModel(def, regs);
          for (const [name, value] of Object.entries(v))
            if (!finiteOrText(value)) throw new Error(`model ${def.id} ${name} decoded to ${String(value)}`);
          if (def.group)
            for (const value of Object.values(decodeGroup(def, regs, curve))) expect(finiteOrText(value)).toBe(true);
          if ([101, 102, 103].includes(def.id)) {
            const r = inverterReadings(def, regs);
            expect((r.acVoltageV as unknown[]).length).toBe(def.id - 100);
          }
        },
      ),
      fuzz(),
    );
  });

  const numeric = defs
    .flatMap((d) => d.points)
    .filter((p) =>
      ['uint16', 'int16', 'enum16', 'bitfield16', 'uint32', 'int32', 'acc32', 'bitfield32'].includes(p.type),
    );
  const range: Record<string, [number, number]> = {
    uint16: [0, 0xfffe],
    enum16: [0, 0xfffe],
    bitfield16: [0, 0xfffe],
    int16: [-0x7fff, 0x7fff],
    uint32: [0, 0xfffffffe],
    bitfield32: [0, 0xfffffffe],
    acc32: [1, 0xffffffff],
    int32: [-0x7fffffff, 0x7fffffff],
  };

  it("encode → decode: a value the type can hold comes back to the scale factor's step", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...numeric),
        fc.integer({ min: -3, max: 3 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (p, sf, at) => {
          const [lo, hi] = range[p.type]!;
          const steps = Math.round(lo + (hi - lo) * at);
          const value = steps * 10 ** sf;
          const point: PointDef = { ...p, offset: 0, sf: undefined };
          const regs = encodePoint(point, value, sf);
          expect(regs.every((r) => Number.isInteger(r) && r >= 0 && r <= 0xffff)).toBe(true);
          expect(rawValue(point, regs)).toBe(steps);
        },
      ),
      fuzz(),
    );
  });

  it("encode: a value out of the type's range is an input error naming the point", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...numeric),
        fc.integer({ min: -10, max: 10 }),
        fc.oneof(fc.double(), fc.constantFrom(Number.NaN, 1e300, -1e300)),
        (p, sf, value) => {
          const r = outcome(() => encodePoint(p, value, sf), [ErrorCode.input]);
          if (r.ok) expect(r.value.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff)).toBe(true);
          else expect(r.error.message).toContain(p.name);
        },
      ),
      fuzz(0.5),
    );
  });
});

/** A bus holding a register image: an address it does not have answers Illegal Data Address. */
class ImageBus {
  reads = 0;
  constructor(private readonly image: Map<number, number>) {}

  async readHolding(_unit: number, address: number, count: number): Promise<number[]> {
    this.reads++;
    if (!Number.isInteger(address) || !Number.isInteger(count) || count < 1 || count > 125)
      throw new Error(`request of ${count} registers at ${address}: no Modbus frame can carry it`);
    if (address < 0 || address + count > 0x10000)
      throw new Error(`request of ${count} registers at ${address}: past the register space (0..65535)`);
    const out: number[] = [];
    for (let a = address; a < address + count; a++) {
      const v = this.image.get(a);
      if (v === undefined)
        throw new P2PError(ErrorCode.driver, `unit 1: read holding ${address}+${count}: Modbus exception 2`, {
          cause: { modbusException: 2 },
        });
      out.push(v);
    }
    return out;
  }
}

const knownIds = defs.map((d) => d.id);
const chainModel = fc.record({
  id: fc.oneof(fc.constantFrom(...knownIds), fc.integer({ min: 0, max: 0xffff })),
  length: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0xffff })),
  seed: fc.integer(),
});
const image = fc
  .record({
    base: fc.constantFrom(40_000, 0, 50_000, 65_534, 1),
    marker: fc.constantFrom('SunS', 'SunS', 'SunS', 'none'),
    models: fc.array(chainModel, { maxLength: 5 }),
    end: fc.constantFrom('end', 'zero', 'none'),
  })
  .map(({ base, marker, models, end }) => {
    const img = new Map<number, number>();
    const put = (at: number, ...values: number[]) => {
      for (const [i, v] of values.entries()) if (at + i <= 0xffff) img.set(at + i, v);
    };
    if (marker === 'SunS') put(base, 0x5375, 0x6e53);
    let at = base + 2;
    for (const m of models) {
      const def = defs.find((d) => d.id === m.id);
      // -1: the length the model definition gives (a well-formed chain)
      const length = m.length === -1 ? (def ? def.fixedLength + (def.group ? def.group.length : 0) : 0) : m.length;
      put(at, m.id, length, ...registers(m.seed, Math.min(length, 400)));
      at += length + 2;
    }
    if (end !== 'none') put(at, end === 'end' ? 0xffff : 0, 0);
    return img;
  });

describe('fuzz: SunSpec discovery and chain walk (src/drivers/sunspec/discovery.ts)', () => {
  it('any register image: a map whose models are read and decoded, or a driver error; never a request past register 65535', async () => {
    await fc.assert(
      fc.asyncProperty(image, async (img) => {
        const bus = new ImageBus(img);
        const found = await outcomeAsync(() => discoverSunSpec(bus as unknown as ModbusBus, 1), [ErrorCode.driver]);
        if (!found.ok || !found.value) return;
        const map = found.value;
        expect(map.models.length).toBeGreaterThan(0);
        expect(map.models.length).toBeLessThanOrEqual(64);
        for (const m of map.models) {
          const regs = await outcomeAsync(() => readModel(bus as unknown as ModbusBus, 1, m), [ErrorCode.driver]);
          if (!regs.ok) continue;
          expect(regs.value).toHaveLength(m.length + 2);
          const def: ModelDef | undefined = defs.find((d) => d.id === m.id);
          if (def)
            for (const value of Object.values(decodeModel(def, regs.value))) expect(finiteOrText(value)).toBe(true);
        }
      }),
      fuzz(1, { timeout: CASE_TIMEOUT_MS }),
    );
  });
});

describe('fuzz: SunSpec volt-var curves (src/drivers/sunspec/volt-var.ts, model 126)', () => {
  const def126 = defs.find((d) => d.id === 126)!;
  it('any registers of model 126: curves of finite points (a point the device leaves out is left out)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), fc.nat({ max: 4 }), async (seed, curves) => {
        const length = def126.fixedLength + curves * def126.group!.length;
        const img = new Map(registers(seed, length + 2).map((v, i) => [40_004 + i, v] as const));
        img.set(40_004, 126);
        img.set(40_005, length);
        const map = { base: 40_000, models: [{ id: 126, address: 40_004, length }] };
        const r = await outcomeAsync(
          () => readVoltVar(new ImageBus(img) as unknown as ModbusBus, 1, map),
          [ErrorCode.driver],
        );
        if (!r.ok) return;
        if (r.value.curves.length !== curves) throw new Error(`${r.value.curves.length} curves, expected ${curves}`);
        for (const c of r.value.curves)
          for (const p of c.points)
            if (!Number.isFinite(p.vPct) || !Number.isFinite(p.varPct))
              throw new Error(`curve point ${JSON.stringify(p)} is not a number`);
      }),
      fuzz(0.3, { timeout: CASE_TIMEOUT_MS }),
    );
  });
});

const f32 = fc.float({ noDefaultInfinity: false });
function floatRegs(values: number[]): number[] {
  const buf = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => {
    buf.writeFloatBE(v, 4 * i);
  });
  return Array.from({ length: 2 * values.length }, (_, i) => buf.readUInt16BE(2 * i));
}

describe('fuzz: SDM630 float decoding (src/drivers/sdm630.ts)', () => {
  it('floats written big-endian into the block read back unchanged', () => {
    fc.assert(
      fc.property(fc.array(f32, { minLength: 38, maxLength: 38 }), (floats) => {
        const r = decodeSdm630(floatRegs(floats));
        const at = (address: number) => floats[address / 2]!;
        const R = SDM630_REGISTERS;
        expect(r.voltageV).toEqual([at(R.voltageL1), at(R.voltageL2), at(R.voltageL3)]);
        expect(r.powerW).toEqual(at(R.totalPower));
        expect(r.frequencyHz).toEqual(at(R.frequency));
        expect(r.importWh).toEqual(at(R.importKWh) * 1000);
      }),
      fuzz(0.3),
    );
  });

  it('a reply of any length: decoded only when it holds the whole block, else a driver error', () => {
    fc.assert(
      fc.property(fc.integer(), fc.nat({ max: 90 }), (seed, length) => {
        const r = outcome(() => decodeSdm630(registers(seed, length)), [ErrorCode.driver]);
        expect(r.ok).toBe(length >= 0x4c);
        if (r.ok) for (const v of r.value.voltageV) expect(typeof v).toBe('number');
      }),
      fuzz(),
    );
  });
});

describe('fuzz: register-map point decoding (src/drivers/register-map.ts)', () => {
  type Point = RegisterMap['points'][number];
  const point = fc.record({
    point: fc.constant('x'),
    address: fc.constant(0),
    type: fc.constantFrom<Point['type']>('uint16', 'int16', 'uint32', 'int32', 'float32'),
    wordOrder: fc.constantFrom<Point['wordOrder']>('big', 'little'),
    scale: fc.constantFrom(1, 0.1, 1000, -1),
    offset: fc.constantFrom(0, -40, 0.5),
  });

  it('encode → decode for every type and word order', () => {
    fc.assert(
      fc.property(point, fc.integer({ min: 0, max: 0xffffffff }), f32, (p, u32, float) => {
        const buf = Buffer.alloc(4);
        let raw: number;
        if (p.type === 'float32') {
          buf.writeFloatBE(float, 0);
          raw = Math.fround(float);
        } else if (p.type.endsWith('16')) {
          buf.writeUInt16BE(u32 & 0xffff, 0);
          raw = p.type === 'int16' ? buf.readInt16BE(0) : buf.readUInt16BE(0);
        } else {
          buf.writeUInt32BE(u32, 0);
          raw = p.type === 'int32' ? buf.readInt32BE(0) : u32;
        }
        const words = p.type.endsWith('16') ? [buf.readUInt16BE(0)] : [buf.readUInt16BE(0), buf.readUInt16BE(2)];
        const wire = p.wordOrder === 'little' && words.length === 2 ? [words[1]!, words[0]!] : words;
        expect(decodeRegisterPoint(p, wire)).toEqual(raw * p.scale + p.offset);
      }),
      fuzz(),
    );
  });

  it('a reply with the wrong number of registers is a driver error naming the point', () => {
    fc.assert(
      fc.property(point, fc.integer(), fc.nat({ max: 4 }), (p, seed, length) => {
        const r = outcome(() => decodeRegisterPoint(p, registers(seed, length)), [ErrorCode.driver]);
        expect(r.ok).toBe(length === (p.type.endsWith('16') ? 1 : 2));
        if (!r.ok) expect(r.error.message).toContain(p.point);
      }),
      fuzz(0.3),
    );
  });
});

describe('fuzz: Modbus URLs (src/hal/modbus/url.ts)', () => {
  it('any text: an endpoint or an input error naming the field', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .tuple(fc.constantFrom('tcp://', 'rtu://', 'rtu:///dev/', 'TCP://', 'rtu:'), fc.string(), fc.string())
            .map(([a, b, c]) => `${a}${b}${c}`),
          fc
            .tuple(
              fc.constantFrom('rtu:///dev/tty', 'tcp://h'),
              fc.array(
                fc.constantFrom(
                  '%',
                  '%E0',
                  '%A4',
                  '%2',
                  '?',
                  '&',
                  'baud=',
                  ':',
                  '[',
                  ']',
                  '#',
                  '0',
                  '9600',
                  'parity=odd',
                ),
              ),
            )
            .map(([a, parts]) => a + parts.join('')),
        ),
        (url) => {
          const r = outcome(() => parseModbusUrl(url, '--modbus'), [ErrorCode.input]);
          if (!r.ok) expect(r.error.field).toBe('--modbus');
        },
      ),
      fuzz(),
    );
  });

  it('valid URLs round-trip: host and port, or device path and line settings', () => {
    const host = fc.oneof(
      fc.domain(),
      fc.ipV4(),
      fc.ipV6().map((a) => `[${a}]`),
    );
    fc.assert(
      fc.property(
        host,
        fc.integer({ min: 0, max: 65_535 }),
        fc.stringMatching(/^\/dev\/[A-Za-z][A-Za-z0-9_.-]{0,11}$/),
        fc.constantFrom(1200, 9600, 19_200, 115_200),
        fc.constantFrom('none' as const, 'even' as const, 'odd' as const),
        (h, port, path, baud, parity) => {
          const tcp = parseModbusUrl(`tcp://${h}:${port}`);
          expect(tcp).toEqual({ kind: 'tcp', host: h.replace(/^\[|\]$/g, ''), port });
          const rtu = parseModbusUrl(`rtu://${path}?baud=${baud}&parity=${parity}`);
          expect(rtu).toMatchObject({ kind: 'rtu', path, baudRate: baud, parity });
          expect(endpointKey(rtu)).toBe(`rtu://${path}`);
        },
      ),
      fuzz(0.2),
    );
  });
});
