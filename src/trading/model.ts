import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { parseWith, readDataFile } from '../core/validate.js';

/**
 * The trading instance of the interface contract (`p2p-edge trade`): agents (MG traders) with
 * generators, flexible loads (demand response), storage and a grid connection, joined by directed
 * lossy links. Costs are a·v² + b·v per slot (export: a·x² − b·x); every `a` > 0, so the optimum is unique.
 */

const perSlot = z.union([z.number(), z.array(z.number())]);
const positivePerSlot = z.union([z.number().positive(), z.array(z.number().positive())]);
const nonNegativePerSlot = z.union([z.number().nonnegative(), z.array(z.number().nonnegative())]);
const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'expected 1-64 of [A-Za-z0-9_-]');

const QuadraticDevice = z.object({ a: positivePerSlot, b: perSlot, max: nonNegativePerSlot }).strict();

const Storage = z
  .object({
    capacityKWh: z.number().nonnegative(),
    socKWh: z.number().nonnegative(),
    maxChargeKW: z.number().nonnegative(),
    maxDischargeKW: z.number().nonnegative(),
    efficiency: z.number().gt(0).max(1),
    a: z.number().positive(),
    socEndMinKWh: z.number().nonnegative().optional(),
  })
  .strict()
  .refine((s) => s.socKWh <= s.capacityKWh, { message: 'socKWh exceeds capacityKWh', path: ['socKWh'] })
  .refine((s) => s.socEndMinKWh === undefined || s.socEndMinKWh <= s.capacityKWh, {
    message: 'socEndMinKWh exceeds capacityKWh',
    path: ['socEndMinKWh'],
  });

const Agent = z
  .object({
    id,
    demand: perSlot,
    generators: z.array(QuadraticDevice).default([]),
    flexibleLoads: z.array(QuadraticDevice).default([]),
    storage: z.array(Storage).default([]),
    grid: z.object({ import: QuadraticDevice.optional(), export: QuadraticDevice.optional() }).strict().optional(),
  })
  .strict();

const Link = z
  .object({
    from: id,
    to: id,
    capacity: nonNegativePerSlot,
    a: positivePerSlot,
    b: perSlot,
    efficiency: z.number().gt(0).max(1),
  })
  .strict();

export const TradeInputSchema = z
  .object({
    horizon: z.number().int().min(1).max(8760).default(1),
    slotHours: z.number().positive().default(1),
    agents: z.array(Agent).min(1),
    links: z.array(Link).default([]),
  })
  .strict();
export type TradeInput = z.infer<typeof TradeInputSchema>;
/** The input as written in a file (defaults not yet filled in). */
export type TradeInputFile = z.input<typeof TradeInputSchema>;

/** a·v² + b·v over [0, max] in each slot. */
export interface QuadraticCost {
  a: number[];
  b: number[];
  max: number[];
}

export interface StorageUnit {
  capacityKWh: number;
  socKWh: number;
  /** Per slot, kWh (rate × slotHours). */
  maxChargeKWh: number;
  maxDischargeKWh: number;
  efficiency: number;
  a: number;
  socEndMinKWh: number | undefined;
}

export interface AgentModel {
  id: string;
  index: number;
  demand: number[];
  generators: QuadraticCost[];
  flexibleLoads: QuadraticCost[];
  storage: StorageUnit[];
  /** Grid import: cost a·u² + b·u. */
  gridImport: QuadraticCost | undefined;
  /** Grid export: cost a·x² − b·x (b is the feed-in price). */
  gridExport: QuadraticCost | undefined;
  /** Indices (into `links`) of links leaving / entering this agent. */
  linksOut: number[];
  linksIn: number[];
  /** Agents this one exchanges messages with (either direction of a link). */
  neighbours: number[];
}

export interface LinkModel {
  index: number;
  from: number;
  to: number;
  a: number[];
  b: number[];
  capacity: number[];
  efficiency: number;
}

export interface TradeModel {
  horizon: number;
  slotHours: number;
  agents: AgentModel[];
  links: LinkModel[];
}

function invalid(message: string, field: string, file?: string): P2PError {
  return new P2PError(ErrorCode.input, `${file ? `${file}: ` : ''}${field}: ${message}`, {
    component: 'trading',
    field,
    ...(file ? { file } : {}),
  });
}

/** A value per slot: one number stands for every slot; a list must have one per slot of the horizon. */
function slotSeries(v: number | number[], horizon: number, field: string, file?: string): number[] {
  if (typeof v === 'number') return Array(horizon).fill(v);
  if (v.length !== horizon) throw invalid(`expected ${horizon} values (the horizon), got ${v.length}`, field, file);
  return [...v];
}

/** An agent as written in a trade input (defaults not yet filled in). */
export type AgentInput = TradeInputFile['agents'][number];

/** One trader's own agent in per-slot form, before it is placed in a model (no index, no links). */
export type TraderAgent = Omit<AgentModel, 'index' | 'linksIn' | 'linksOut' | 'neighbours'>;

/**
 * An agent's values per slot (`slotSeries`; a list of the wrong length is an input error naming `field`).
 * Storage rates become energy per slot.
 */
export function perSlotAgent(
  a: AgentInput,
  horizon: number,
  slotHours: number,
  field = 'agent',
  file?: string,
): TraderAgent {
  const series = (v: number | number[], at: string) => slotSeries(v, horizon, at, file);
  const quad = (d: z.input<typeof QuadraticDevice>, at: string): QuadraticCost => ({
    a: series(d.a, `${at}.a`),
    b: series(d.b, `${at}.b`),
    max: series(d.max, `${at}.max`),
  });
  return {
    id: a.id,
    demand: series(a.demand, `${field}.demand`),
    generators: (a.generators ?? []).map((g, k) => quad(g, `${field}.generators[${k}]`)),
    flexibleLoads: (a.flexibleLoads ?? []).map((g, k) => quad(g, `${field}.flexibleLoads[${k}]`)),
    storage: (a.storage ?? []).map((s) => ({
      capacityKWh: s.capacityKWh,
      socKWh: s.socKWh,
      maxChargeKWh: s.maxChargeKW * slotHours,
      maxDischargeKWh: s.maxDischargeKW * slotHours,
      efficiency: s.efficiency,
      a: s.a,
      socEndMinKWh: s.socEndMinKWh,
    })),
    gridImport: a.grid?.import ? quad(a.grid.import, `${field}.grid.import`) : undefined,
    gridExport: a.grid?.export ? quad(a.grid.export, `${field}.grid.export`) : undefined,
  };
}

/**
 * Turns validated input into per-slot arrays, checking what the schema cannot: lengths against the
 * horizon, links between known agents, and demand that no schedule could meet (an input error, exit 2).
 */
/** Link `k` from agent `from` to agent `to`: out of one, into the other, and the two neighbours of each other. */
export function connectLink(agents: readonly AgentModel[], k: number, from: number, to: number): void {
  agents[from]!.linksOut.push(k);
  agents[to]!.linksIn.push(k);
  for (const [x, y] of [
    [from, to],
    [to, from],
  ] as const) {
    if (!agents[x]!.neighbours.includes(y)) agents[x]!.neighbours.push(y);
  }
}

export function compileModel(input: TradeInput, file?: string, checkDemand = true): TradeModel {
  const T = input.horizon;
  const series = (v: number | number[], field: string) => slotSeries(v, T, field, file);
  const byId = new Map<string, number>();
  const agents: AgentModel[] = input.agents.map((a, i) => {
    if (byId.has(a.id)) throw invalid(`agent id "${a.id}" is used twice`, `agents[${i}].id`, file);
    byId.set(a.id, i);
    return {
      ...perSlotAgent(a, T, input.slotHours, `agents[${i}]`, file),
      index: i,
      linksOut: [],
      linksIn: [],
      neighbours: [],
    };
  });
  const links: LinkModel[] = input.links.map((l, k) => {
    const from = byId.get(l.from);
    const to = byId.get(l.to);
    if (from === undefined) throw invalid(`unknown agent "${l.from}"`, `links[${k}].from`, file);
    if (to === undefined) throw invalid(`unknown agent "${l.to}"`, `links[${k}].to`, file);
    if (from === to) throw invalid(`a link from agent "${l.from}" to itself`, `links[${k}].to`, file);
    const field = `links[${k}]`;
    connectLink(agents, k, from, to);
    return {
      index: k,
      from,
      to,
      a: series(l.a, `${field}.a`),
      b: series(l.b, `${field}.b`),
      capacity: series(l.capacity, `${field}.capacity`),
      efficiency: l.efficiency,
    };
  });
  const model = { horizon: T, slotHours: input.slotHours, agents, links };
  if (checkDemand) checkDemandCanBeMet(model, file);
  return model;
}

/**
 * Necessary conditions, per agent and slot: demand must lie between the least and the most the agent
 * can take in or give away through its own devices, its links and the grid. Instances that pass can
 * still be infeasible over the horizon; the algorithm then ends with `converged: false`.
 */
export function checkDemandCanBeMet(model: TradeModel, file?: string): void {
  for (const agent of model.agents) {
    for (let t = 0; t < model.horizon; t++) {
      const sum = (devices: QuadraticCost[]) => devices.reduce((s, d) => s + (d.max[t] ?? 0), 0);
      let most = sum(agent.generators) + sum(agent.flexibleLoads) + (agent.gridImport?.max[t] ?? 0);
      let least = -(agent.gridExport?.max[t] ?? 0);
      for (const s of agent.storage) {
        most += Math.min(s.maxDischargeKWh, s.capacityKWh * s.efficiency);
        least -= Math.min(s.maxChargeKWh, s.capacityKWh / s.efficiency);
      }
      for (const k of agent.linksIn) most += model.links[k]!.efficiency * model.links[k]!.capacity[t]!;
      for (const k of agent.linksOut) least -= model.links[k]!.capacity[t]!;
      const demand = agent.demand[t]!;
      const field = `agents[${agent.index}].demand${model.horizon > 1 ? `[${t}]` : ''}`;
      if (demand > most + 1e-9) {
        throw invalid(
          `demand ${demand} kWh cannot be met: generation, demand response, storage, links and grid give at most ${round(most)} kWh`,
          field,
          file,
        );
      }
      if (demand < least - 1e-9) {
        throw invalid(
          `demand ${demand} kWh cannot be balanced: storage, links and export can absorb at most ${round(-least)} kWh`,
          field,
          file,
        );
      }
    }
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;

export function loadTradeModel(file: string): TradeModel {
  return compileModel(parseWith(TradeInputSchema, readDataFile(file, 'input'), { file, code: 'input' }), file);
}
