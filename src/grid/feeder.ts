import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { loadDataFile } from '../core/validate.js';

/** The feeder format of the interface contract (`p2p-edge powerflow`). */
export const FeederSchema = z
  .object({
    name: z.string().default('feeder'),
    /** Line-to-line nominal voltage. */
    baseKV: z.number().positive(),
    slack: z.string().min(1),
    vSlackPu: z.number().positive().default(1),
    buses: z
      .array(
        z
          .object({
            id: z.string().min(1),
            /** Three-phase net consumption; negative = injection. */
            pKW: z.number().default(0),
            qKVAr: z.number().default(0),
          })
          .strict(),
      )
      .default([]),
    lines: z
      .array(
        z
          .object({
            from: z.string().min(1),
            to: z.string().min(1),
            rOhm: z.number().positive(),
            xOhm: z.number().positive(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type FeederInput = z.infer<typeof FeederSchema>;

/** A feeder's tree, oriented from the slack: every bus but the slack has exactly one parent line. */
export interface RadialFeeder {
  name: string;
  baseKV: number;
  slack: string;
  vSlackPu: number;
  /** Buses in breadth-first order from the slack (parents before children). */
  order: string[];
  /** For each non-slack bus: the line feeding it, its index in the input and whether it was listed to → from. */
  parentLine: Map<string, { parent: string; index: number; reversed: boolean; rOhm: number; xOhm: number }>;
  children: Map<string, string[]>;
  /** Net consumption per bus, kW / kVAr (absent = 0). */
  loadKW: Map<string, number>;
  loadKVAr: Map<string, number>;
  lineCount: number;
}

function inputError(message: string, field: string, file?: string): P2PError {
  return new P2PError(ErrorCode.input, file ? `${file}: ${field}: ${message}` : `${field}: ${message}`, {
    component: 'powerflow',
    field,
    ...(file ? { file } : {}),
  });
}

/**
 * Finds the tree from the slack. A loop, an island, a bus listed twice, a line from a bus to itself
 * or a line to a bus that exists nowhere else (listed in no `buses` entry and leading nowhere) is an
 * input error naming the element.
 */
export function buildRadialFeeder(input: FeederInput, file?: string): RadialFeeder {
  const loadKW = new Map<string, number>();
  const loadKVAr = new Map<string, number>();
  input.buses.forEach((b, i) => {
    if (loadKW.has(b.id)) throw inputError(`bus "${b.id}" is listed twice`, `buses[${i}].id`, file);
    loadKW.set(b.id, b.pKW);
    loadKVAr.set(b.id, b.qKVAr);
  });

  input.lines.forEach((line, index) => {
    if (line.from === line.to) throw inputError(`line connects bus "${line.from}" to itself`, `lines[${index}]`, file);
  });
  const adjacency = lineAdjacency(input.lines);
  if (!adjacency.has(input.slack)) throw inputError(`slack bus "${input.slack}" is on no line`, 'slack', file);

  input.lines.forEach((line, index) => {
    for (const [end, bus] of [
      ['to', line.to],
      ['from', line.from],
    ] as const) {
      if (bus !== input.slack && !loadKW.has(bus) && input.buses.length > 0 && adjacency.get(bus)?.length === 1) {
        throw inputError(
          `bus "${bus}" is in no buses entry and on no other line (a line to a missing bus)`,
          `lines[${index}].${end}`,
          file,
        );
      }
    }
  });

  const order = [input.slack];
  const parentLine: RadialFeeder['parentLine'] = new Map();
  const children = new Map<string, string[]>();
  const seen = new Set([input.slack]);
  const usedLines = new Set<number>();
  for (let head = 0; head < order.length; head++) {
    const bus = order[head] as string;
    for (const { other, index } of adjacency.get(bus) ?? []) {
      if (usedLines.has(index)) continue;
      usedLines.add(index);
      if (seen.has(other))
        throw inputError(
          `line ${input.lines[index]?.from}-${input.lines[index]?.to} closes a loop: the feeder is not radial`,
          `lines[${index}]`,
          file,
        );
      seen.add(other);
      order.push(other);
      const line = input.lines[index] as FeederInput['lines'][number];
      parentLine.set(other, { parent: bus, index, reversed: line.from !== bus, rOhm: line.rOhm, xOhm: line.xOhm });
      if (!children.has(bus)) children.set(bus, []);
      children.get(bus)?.push(other);
    }
  }
  input.buses.forEach((b, i) => {
    if (!seen.has(b.id))
      throw inputError(`bus "${b.id}" is not connected to the slack (an island)`, `buses[${i}].id`, file);
  });
  input.lines.forEach((line, index) => {
    if (!seen.has(line.from))
      throw inputError(
        `line ${line.from}-${line.to} is not connected to the slack (an island)`,
        `lines[${index}]`,
        file,
      );
  });

  return {
    name: input.name,
    baseKV: input.baseKV,
    slack: input.slack,
    vSlackPu: input.vSlackPu,
    order,
    parentLine,
    children,
    loadKW,
    loadKVAr,
    lineCount: input.lines.length,
  };
}

export function loadFeeder(file: string): RadialFeeder {
  return buildRadialFeeder(loadDataFile(file, FeederSchema, 'input'), file);
}

/** Every bus's lines, both ways: the other end and the line's index in the input. */
export function lineAdjacency(
  lines: readonly { from: string; to: string }[],
): Map<string, { other: string; index: number }[]> {
  const adjacency = new Map<string, { other: string; index: number }[]>();
  lines.forEach((line, index) => {
    for (const [a, b] of [
      [line.from, line.to],
      [line.to, line.from],
    ] as const) {
      if (!adjacency.has(a)) adjacency.set(a, []);
      adjacency.get(a)!.push({ other: b, index });
    }
  });
  return adjacency;
}
