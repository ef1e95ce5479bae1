import { z } from 'zod';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { lineAdjacency } from '../feeder.js';
import { type Complex, complex, type Mat3, mat3Add, phaseMatrixFromSequence } from './complex.js';

export const PHASES = ['a', 'b', 'c'] as const;
export type Phase = (typeof PHASES)[number];

const LineCodeSchema = z
  .object({
    /** Positive- and zero-sequence series impedance per km; the zero sequence includes the neutral/earth return. */
    r1OhmPerKm: z.number().positive(),
    x1OhmPerKm: z.number().nonnegative(),
    r0OhmPerKm: z.number().positive(),
    x0OhmPerKm: z.number().nonnegative(),
  })
  .strict();

const SinglePhaseSchema = z
  .object({
    id: z.string().min(1).optional(),
    bus: z.string().min(1),
    phase: z.enum(PHASES),
    pKW: z.number(),
    qKVAr: z.number().default(0),
  })
  .strict();

/**
 * The three-phase feeder format (`p2p-edge powerflow` with `"phases": 3`): a four-wire LV feeder
 * (Kron-reduced), its lines given by line code and length, single-phase wye loads and single-phase
 * generators (PV inverters) on named phases, and the supply: an ideal source at the slack bus, or a
 * medium-voltage source behind a distribution transformer.
 */
export const ThreePhaseFeederSchema = z
  .object({
    phases: z.literal(3),
    name: z.string().default('feeder'),
    /** Where the data comes from (origin, licence); not used by the solver. */
    reference: z.string().optional(),
    /** Line-to-line nominal voltage of the feeder; per-unit voltages are of baseKV/√3 (phase to neutral). */
    baseKV: z.number().positive(),
    /** The bus that the supply feeds (the transformer's LV terminals). */
    slack: z.string().min(1),
    /** Open-circuit source voltage, per unit (of the source side's base when there is a transformer). */
    vSlackPu: z.number().positive().default(1),
    /** Short-circuit strength of the upstream (MV) network at the transformer's HV terminals. */
    source: z
      .object({
        iscThreePhaseA: z.number().positive(),
        x1OverR1: z.number().positive().default(4),
      })
      .strict()
      .optional(),
    transformer: z
      .object({
        id: z.string().min(1).default('transformer'),
        /** Dyn: the delta winding blocks the MV zero sequence; YNyn passes it (with the source's zero-sequence impedance unknown here, taken as its positive sequence). */
        connection: z.enum(['Dyn', 'YNyn']).default('Dyn'),
        kVA: z.number().positive(),
        kVHigh: z.number().positive(),
        kVLow: z.number().positive(),
        /** Short-circuit impedance in percent of the rated impedance: resistance (both windings) and reactance. */
        rPercent: z.number().nonnegative(),
        xPercent: z.number().positive(),
        /** Zero-sequence short-circuit impedance seen from the LV side, percent; default the positive sequence. */
        r0Percent: z.number().nonnegative().optional(),
        x0Percent: z.number().positive().optional(),
      })
      .strict()
      .optional(),
    lineCodes: z.record(z.string().min(1), LineCodeSchema),
    lines: z
      .array(
        z
          .object({
            id: z.string().min(1).optional(),
            from: z.string().min(1),
            to: z.string().min(1),
            code: z.string().min(1),
            lengthM: z.number().positive(),
          })
          .strict(),
      )
      .min(1),
    /** Single-phase wye loads (consumption). */
    loads: z.array(SinglePhaseSchema).default([]),
    /** Single-phase generators (PV inverters): `pKW` ≥ 0 is injected; `qKVAr` > 0 is injected too (raises the voltage). */
    generators: z.array(SinglePhaseSchema).default([]),
    /**
     * How loads respond to voltage: constant power (default), or OpenDSS's load model 1: constant
     * power between vMinPu and vMaxPu of the load's rated voltage, constant impedance outside.
     */
    loadModel: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('constant-power') }).strict(),
        z
          .object({
            type: z.literal('constant-power-band'),
            ratedV: z.number().positive(),
            vMinPu: z.number().positive().default(0.95),
            vMaxPu: z.number().positive().default(1.05),
          })
          .strict(),
      ])
      .default({ type: 'constant-power' }),
    /**
     * Optional load profiles: per load id, multipliers of its pKW/qKVAr at `stepMinutes` resolution
     * (step k covers minutes [k·step, (k+1)·step)), and exact multipliers at chosen minutes.
     */
    profiles: z
      .object({
        stepMinutes: z.number().int().positive(),
        multipliers: z.record(z.string(), z.array(z.number())),
        snapshots: z.record(z.string(), z.record(z.string(), z.number())).default({}),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ThreePhaseFeederInput = z.infer<typeof ThreePhaseFeederSchema>;

export interface SinglePhaseElement {
  id: string;
  bus: number;
  phase: number;
  pW: number;
  qVar: number;
}

/** A validated, compiled three-phase radial feeder, SI units (ohms, volts, watts). */
export interface ThreePhaseModel {
  name: string;
  baseKV: number;
  /** Phase-to-neutral base voltage, V. */
  vBaseV: number;
  vSlackPu: number;
  /** Buses in breadth-first order from the slack (index 0). */
  buses: string[];
  busIndex: Map<string, number>;
  /** Parent bus index of each bus (−1 for the slack). */
  parent: Int32Array;
  /** Phase impedance matrix (Ω) of the line feeding each bus; the slack's entry is the supply's. */
  branchZ: Mat3[];
  /** Input index of the line feeding each bus (−1 for the slack). */
  lineIndex: Int32Array;
  /** The supply (source + transformer, referred to the feeder side) feeding the slack; null = ideal slack. */
  supplyZ: Mat3 | null;
  /** The transformer's own part of the supply impedance (for its losses); null without a transformer. */
  transformerZ: Mat3 | null;
  loads: SinglePhaseElement[];
  generators: SinglePhaseElement[];
  loadModel: ThreePhaseFeederInput['loadModel'];
  lineCount: number;
  /** Each input line's id (or from-to) and ends, in input order. */
  lines: { id: string; from: string; to: string }[];
}

function inputError(message: string, field: string, file?: string): P2PError {
  return new P2PError(ErrorCode.input, file ? `${file}: ${field}: ${message}` : `${field}: ${message}`, {
    component: 'powerflow',
    field,
    ...(file ? { file } : {}),
  });
}

/** Series impedance from a short-circuit level: |Z| = V/(√3·I), split by X/R. */
function shortCircuitImpedance(kV: number, iscA: number, xOverR: number): Complex {
  const z = (kV * 1000) / (Math.sqrt(3) * iscA);
  const r = z / Math.sqrt(1 + xOverR ** 2);
  return complex(r, r * xOverR);
}

/**
 * Checks the feeder and compiles it: finds the tree from the slack (a loop, an island, a line to an
 * unknown line code, a load on a bus no line reaches: an input error naming the element) and builds
 * the phase impedance matrices.
 */
export function buildThreePhaseModel(input: ThreePhaseFeederInput, file?: string): ThreePhaseModel {
  if (input.transformer && Math.abs(input.transformer.kVLow - input.baseKV) > 1e-9 * input.baseKV)
    throw inputError(
      `transformer kVLow ${input.transformer.kVLow} differs from the feeder's baseKV ${input.baseKV}`,
      'transformer.kVLow',
      file,
    );

  const lineIds = new Set<string>();
  input.lines.forEach((line, index) => {
    const name = line.id ?? `${line.from}-${line.to}`;
    if (line.id !== undefined) {
      if (lineIds.has(line.id)) throw inputError(`line id "${line.id}" is used twice`, `lines[${index}].id`, file);
      lineIds.add(line.id);
    }
    if (line.from === line.to)
      throw inputError(`line ${name} connects bus "${line.from}" to itself`, `lines[${index}]`, file);
    // own entries only: a code named like an Object property ("constructor", "toString") is unknown
    if (!Object.hasOwn(input.lineCodes, line.code))
      throw inputError(`line ${name}: unknown line code "${line.code}"`, `lines[${index}].code`, file);
  });
  const adjacency = lineAdjacency(input.lines);
  if (!adjacency.has(input.slack)) throw inputError(`slack bus "${input.slack}" is on no line`, 'slack', file);

  const buses = [input.slack];
  const busIndex = new Map([[input.slack, 0]]);
  const parentOf: number[] = [-1];
  const lineOf: number[] = [-1];
  const usedLines = new Set<number>();
  for (let head = 0; head < buses.length; head++) {
    const bus = buses[head] as string;
    for (const { other, index } of adjacency.get(bus) ?? []) {
      if (usedLines.has(index)) continue;
      usedLines.add(index);
      if (busIndex.has(other)) {
        const line = input.lines[index]!;
        throw inputError(
          `line ${line.id ?? `${line.from}-${line.to}`} closes a loop: the feeder is not radial`,
          `lines[${index}]`,
          file,
        );
      }
      busIndex.set(other, buses.length);
      buses.push(other);
      parentOf.push(head);
      lineOf.push(index);
    }
  }
  input.lines.forEach((line, index) => {
    if (!busIndex.has(line.from))
      throw inputError(
        `line ${line.id ?? `${line.from}-${line.to}`} is not connected to the slack (an island)`,
        `lines[${index}]`,
        file,
      );
  });

  const branchZ: Mat3[] = buses.map((_, i) => {
    if (i === 0) return phaseMatrixFromSequence(complex(0), complex(0));
    const line = input.lines[lineOf[i]!]!;
    const code = input.lineCodes[line.code]!;
    const km = line.lengthM / 1000;
    return phaseMatrixFromSequence(
      complex(code.r1OhmPerKm * km, code.x1OhmPerKm * km),
      complex(code.r0OhmPerKm * km, code.x0OhmPerKm * km),
    );
  });

  let supplyZ: Mat3 | null = null;
  let transformerZ: Mat3 | null = null;
  const t = input.transformer;
  if (t) {
    const zBase = input.baseKV ** 2 / (t.kVA / 1000);
    const zt = complex((t.rPercent / 100) * zBase, (t.xPercent / 100) * zBase);
    const zt0 = complex(((t.r0Percent ?? t.rPercent) / 100) * zBase, ((t.x0Percent ?? t.xPercent) / 100) * zBase);
    transformerZ = phaseMatrixFromSequence(zt, zt0);
    supplyZ = transformerZ;
  }
  if (input.source) {
    const sourceKV = t ? t.kVHigh : input.baseKV;
    const ratio = t ? (t.kVLow / t.kVHigh) ** 2 : 1;
    const zs = shortCircuitImpedance(sourceKV, input.source.iscThreePhaseA, input.source.x1OverR1);
    const z1 = complex(zs.re * ratio, zs.im * ratio);
    // Behind a Dyn transformer the LV zero-sequence current circulates in the delta and never reaches
    // the source, so the source adds to the positive and negative sequence only.
    const z0 = t?.connection === 'Dyn' ? complex(0) : z1;
    const sourcePart = phaseMatrixFromSequence(z1, z0);
    supplyZ = supplyZ ? mat3Add(supplyZ, sourcePart) : sourcePart;
  }
  if (supplyZ) branchZ[0] = supplyZ;

  const place = (list: z.infer<typeof SinglePhaseSchema>[], kind: 'loads' | 'generators'): SinglePhaseElement[] => {
    const seen = new Set<string>();
    return list.map((e, i) => {
      if (e.id !== undefined) {
        if (seen.has(e.id))
          throw inputError(`${kind.slice(0, -1)} id "${e.id}" is used twice`, `${kind}[${i}].id`, file);
        seen.add(e.id);
      }
      const bus = busIndex.get(e.bus);
      if (bus === undefined)
        throw inputError(`${kind.slice(0, -1)} on bus "${e.bus}", which no line reaches`, `${kind}[${i}].bus`, file);
      return {
        id: e.id ?? `${kind}[${i}]`,
        bus,
        phase: PHASES.indexOf(e.phase),
        pW: e.pKW * 1000,
        qVar: e.qKVAr * 1000,
      };
    });
  };
  const loads = place(input.loads, 'loads');
  const generators = place(input.generators, 'generators');
  if (input.profiles) {
    const ids = new Set(loads.map((l) => l.id));
    const sections = [
      ['multipliers', input.profiles.multipliers],
      ...Object.entries(input.profiles.snapshots).map(([m, v]) => [`snapshots.${m}`, v] as const),
    ] as const;
    for (const [where, byLoad] of sections)
      for (const id of Object.keys(byLoad))
        if (!ids.has(id))
          throw inputError(`a profile for load "${id}", which is not in loads`, `profiles.${where}.${id}`, file);
  }

  return {
    name: input.name,
    baseKV: input.baseKV,
    vBaseV: (input.baseKV * 1000) / Math.sqrt(3),
    vSlackPu: input.vSlackPu,
    buses,
    busIndex,
    parent: Int32Array.from(parentOf),
    branchZ,
    lineIndex: Int32Array.from(lineOf),
    supplyZ,
    transformerZ,
    loads,
    generators,
    loadModel: input.loadModel,
    lineCount: input.lines.length,
    lines: input.lines.map((l) => ({ id: l.id ?? `${l.from}-${l.to}`, from: l.from, to: l.to })),
  };
}

/**
 * The load multipliers of a profile at a minute of the day: the exact snapshot if the profile has
 * one for that minute, else the step that contains it. Loads without a profile keep multiplier 1.
 */
export function profileMultipliers(input: ThreePhaseFeederInput, minute: number): Map<string, number> {
  const profiles = input.profiles;
  if (!profiles)
    throw new P2PError(ErrorCode.input, `feeder ${input.name} has no load profiles`, {
      component: 'powerflow',
      field: 'profiles',
    });
  if (!Number.isInteger(minute) || minute < 0 || minute > 1440)
    throw new P2PError(ErrorCode.input, `minute ${minute} is not a minute of the day (0 to 1440)`, {
      component: 'powerflow',
      field: '--minute',
    });
  const own = <T>(record: Record<string, T>, key: string): T | undefined =>
    Object.hasOwn(record, key) ? record[key] : undefined;
  const snapshot = own(profiles.snapshots, String(minute));
  const out = new Map<string, number>();
  input.loads.forEach((load, i) => {
    const id = load.id ?? `loads[${i}]`;
    const exact = snapshot && own(snapshot, id);
    if (exact !== undefined) {
      out.set(id, exact);
      return;
    }
    const series = own(profiles.multipliers, id);
    if (!series || series.length === 0) return;
    const step = Math.floor(minute / profiles.stepMinutes) % series.length;
    out.set(id, series[step]!);
  });
  return out;
}
