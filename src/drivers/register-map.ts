import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { loadDataFile } from '../core/validate.js';
import type { ModbusBus } from '../hal/modbus/bus.js';
import type { Device } from './device.js';
import { defineDriver } from './driver.js';
import { acquireModbusBus, modbusConnectionFields } from './modbus-connection.js';
import type { PointData } from './natures.js';

/**
 * A meter (or any read-only device) described by a data file instead of code: which registers hold
 * which point, in which encoding, with which scale (the approach of evcc's and OpenEMS's templates).
 */
const RegisterPoint = z
  .object({
    /** Point name in the process image, e.g. `acPowerW`, `energyWh`. */
    point: z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/),
    address: z.number().int().min(0).max(0xffff),
    type: z.enum(['uint16', 'int16', 'uint32', 'int32', 'float32']),
    /** Word order of 32-bit values: `big` = high word first (Modbus convention), `little` = swapped. */
    wordOrder: z.enum(['big', 'little']).default('big'),
    /** value = raw × scale + offset (e.g. 1000 for kWh → Wh). */
    scale: z.number().default(1),
    offset: z.number().default(0),
    /** Read this point with another function than the map's (a device with both banks). */
    function: z.enum(['holding', 'input']).optional(),
    /** The point is one phase (1-3) of a per-phase point such as `acVoltageV`. */
    phase: z.number().int().min(1).max(3).optional(),
  })
  .strict();

export const RegisterMapSchema = z
  .object({
    name: z.string().min(1),
    /** FC3 holding or FC4 input registers. */
    function: z.enum(['holding', 'input']),
    /**
     * A point listed more than once without `phase` is the sum of its entries (a device that only
     * gives per-phase powers); listed with `phase`, every entry has one, each a different phase.
     */
    points: z.array(RegisterPoint).min(1),
  })
  .strict()
  .superRefine((map, ctx) => {
    const phasesOf = new Map<string, (number | undefined)[]>();
    for (const p of map.points) phasesOf.set(p.point, [...(phasesOf.get(p.point) ?? []), p.phase]);
    map.points.forEach((p, i) => {
      const phases = phasesOf.get(p.point)!;
      const mixed = phases.some((x) => x === undefined) && phases.some((x) => x !== undefined);
      const repeated = p.phase !== undefined && phases.filter((x) => x === p.phase).length > 1;
      if (mixed || repeated)
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'phase'],
          message: mixed
            ? `${p.point}: either every entry names a phase or none does`
            : `${p.point}: phase ${p.phase} is listed twice`,
        });
    });
  });
export type RegisterMap = z.infer<typeof RegisterMapSchema>;

export function loadRegisterMap(file: string): RegisterMap {
  return loadDataFile(file, RegisterMapSchema, ErrorCode.config);
}

/** Decodes one point from its registers. */
export function decodeRegisterPoint(p: RegisterMap['points'][number], regs: readonly number[]): number {
  return rawRegisterValue(p, regs) * p.scale + p.offset;
}

/** The value of a point's registers in its type, before scale and offset. */
export function rawRegisterValue(p: RegisterMap['points'][number], regs: readonly number[]): number {
  const count = p.type.endsWith('16') ? 1 : 2;
  if (regs.length !== count)
    throw new P2PError(
      ErrorCode.driver,
      `${p.point} (${p.type} at ${p.address}): the reply holds ${regs.length} registers, expected ${count}`,
      { component: 'register-map', recoverable: true },
    );
  const words = p.wordOrder === 'little' && regs.length === 2 ? [regs[1]!, regs[0]!] : [...regs];
  const buf = Buffer.alloc(4);
  buf.writeUInt16BE(words[0]!, 0);
  if (words.length > 1) buf.writeUInt16BE(words[1]!, 2);
  return p.type === 'uint16'
    ? buf.readUInt16BE(0)
    : p.type === 'int16'
      ? buf.readInt16BE(0)
      : p.type === 'uint32'
        ? buf.readUInt32BE(0)
        : p.type === 'int32'
          ? buf.readInt32BE(0)
          : buf.readFloatBE(0);
}

/**
 * The points of one poll from the decoded value of each map entry (same order): per-phase entries
 * become one array (`null` for a phase the map does not list), repeated entries are added up.
 */
export function combineRegisterPoints(map: RegisterMap, values: readonly number[]): Record<string, PointData> {
  const out: Record<string, PointData> = {};
  map.points.forEach((p, i) => {
    const value = values[i]!;
    if (p.phase !== undefined) {
      const phases = (out[p.point] as (number | null)[] | undefined) ?? [];
      const phaseCount = Math.max(...map.points.filter((q) => q.point === p.point).map((q) => q.phase!));
      while (phases.length < phaseCount) phases.push(null);
      phases[p.phase - 1] = value;
      out[p.point] = phases;
    } else out[p.point] = typeof out[p.point] === 'number' ? (out[p.point] as number) + value : value;
  });
  return out;
}

export class RegisterMapDevice implements Device {
  readonly kind: string;
  readonly backend: string;

  constructor(
    readonly id: string,
    private readonly bus: ModbusBus,
    private readonly unit: number,
    private readonly map: RegisterMap,
    private readonly release: () => Promise<void> = async () => {},
  ) {
    this.kind = `register-map:${map.name}`;
    this.backend = bus.endpoint.kind === 'tcp' ? 'modbus-tcp' : 'modbus-rtu';
  }

  async poll(): Promise<Record<string, PointData>> {
    const values: number[] = [];
    for (const p of this.map.points) {
      const count = p.type.endsWith('16') ? 1 : 2;
      const regs =
        (p.function ?? this.map.function) === 'input'
          ? await this.bus.readInput(this.unit, p.address, count)
          : await this.bus.readHolding(this.unit, p.address, count);
      values.push(decodeRegisterPoint(p, regs));
    }
    return combineRegisterPoints(this.map, values);
  }

  async close(): Promise<void> {
    await this.release();
  }
}

/** Driver `register-map`: any Modbus meter described by a data file (`config/devices/*.register-map.yaml`). */
export const registerMapDriver = defineDriver({
  driver: 'register-map',
  nature: 'meter',
  usages: ['grid', 'pv', 'load', 'battery'],
  defaultUsage: 'load',
  fields: { ...modbusConnectionFields, map: z.string().min(1) },
  create: (d, ctx) => {
    const map = loadRegisterMap(d.map);
    const { bus, release } = acquireModbusBus(d, ctx);
    return new RegisterMapDevice(d.id, bus, d.unit, map, release);
  },
});
