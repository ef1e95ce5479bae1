import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { loadDataFile } from '../core/validate.js';

/** A cost curve a·v² + b·v per slot, as in the gateway config's market section. */
const Offer = z.object({ a: z.number().positive(), b: z.number(), maxKWh: z.number().nonnegative() }).strict();

const Cell = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/),
    transformerKVA: z.number().positive().default(100),
    /** Inverter gateways (houses) on the cell's LV cable, one per connection point. */
    houses: z.number().int().min(1).max(200),
    /** PV rating per house, kW; houses vary by ±10 % around it. */
    pvKW: z.number().nonnegative().default(8),
    /** Peak household load per house, kW. */
    loadKW: z.number().nonnegative().default(4),
    /** Impedance of each cable segment between connection points. */
    segmentOhm: z.object({ r: z.number().positive(), x: z.number().positive() }).strict().default({ r: 0.08, x: 0.03 }),
    vSlackPu: z.number().min(0.9).max(1.1).default(1.02),
    /** How many of the houses have their devices on Modbus RTU (over a pty) instead of TCP. */
    rtuHouses: z.number().int().nonnegative().default(0),
    generators: z.array(Offer).default([]),
    flexibleLoads: z.array(Offer).default([]),
  })
  .strict()
  .refine((c) => c.rtuHouses <= c.houses, { message: 'rtuHouses must not exceed houses', path: ['rtuHouses'] });

const FaultKind = z.enum(['loss', 'broker-restart', 'sigkill', 'partition', 'modbus-timeout', 'uplink-cut']);

const Fault = z
  .object({
    kind: FaultKind,
    /** Seconds (real time) after the start. */
    atS: z.number().nonnegative(),
    /** sigkill, uplink-cut: a gateway id; partition: a cell id; modbus-timeout: a device id. */
    target: z.string().optional(),
    /** How long it lasts (partition, modbus-timeout, loss); the gateway is restarted after this (sigkill). */
    durationS: z.number().positive().optional(),
    /** loss: fraction of messages dropped. */
    fraction: z.number().min(0).max(1).optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (['sigkill', 'partition', 'modbus-timeout', 'uplink-cut'].includes(f.kind) && !f.target)
      ctx.addIssue({
        code: 'custom',
        path: ['target'],
        message: `${/^[aeiou]/.test(f.kind) ? 'an' : 'a'} ${f.kind} fault needs a target`,
      });
    if (f.kind === 'loss' && f.fraction === undefined)
      ctx.addIssue({ code: 'custom', path: ['fraction'], message: 'a loss fault needs a fraction' });
  });

export const ScenarioSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().default(''),
    /** Real seconds the bench runs. */
    durationS: z.number().positive().default(60),
    /** How many times faster than real time the simulated day runs. */
    speedup: z.number().positive().default(120),
    /** Simulated hour of day at the start. */
    startHour: z.number().min(0).max(24).default(10),
    seed: z.number().int().default(1),
    voltageLimitsPu: z.object({ min: z.number(), max: z.number() }).strict().default({ min: 0.95, max: 1.05 }),
    cells: z.array(Cell).min(1).max(10),
    /** A DR aggregator contracting the first house of each cell. */
    aggregator: z.boolean().default(true),
    /**
     * How many gateways of a cell one bench process hosts side by side (1: a process each, as on
     * their own devices). A gateway a fault kills and the platform always run alone.
     */
    gatewaysPerProcess: z.number().int().min(1).max(64).default(8),
    /**
     * How the inverter gateways' voltage agents move both their multipliers (`voltageControl.ascent`);
     * without it, the gateways' default (plain for overvoltage, accelerated for undervoltage).
     */
    voltageAscent: z.enum(['accelerated', 'plain']).optional(),
    /** How far inside the limits the voltage agents aim (`voltageControl.marginPu`); without it 1 %. */
    voltageMarginPu: z.number().min(0).max(0.02).optional(),
    /**
     * Each cell's gateways in network namespaces of their own, on a D2D sidelink segment per cell beside
     * their MQTT uplink (`comms.transport: hybrid`: gossip over the sidelink, the rest over the broker,
     * the D2D relay on): needs root.
     */
    sidelink: z.boolean().default(false),
    faults: z.array(Fault).default([]),
  })
  .strict()
  .superRefine((s, ctx) => {
    const ids = new Set<string>();
    s.cells.forEach((c, i) => {
      if (ids.has(c.id))
        ctx.addIssue({ code: 'custom', path: ['cells', i, 'id'], message: `duplicate cell id "${c.id}"` });
      ids.add(c.id);
    });
    s.faults.forEach((f, i) => {
      if (f.kind === 'uplink-cut' && !s.sidelink)
        ctx.addIssue({
          code: 'custom',
          path: ['faults', i, 'kind'],
          message:
            'an uplink-cut fault needs `sidelink: true` (a gateway cut off from the broker, its sidelink still up)',
        });
    });
  });
export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioCell = Scenario['cells'][number];
export type ScenarioFault = Scenario['faults'][number];

export const SCENARIO_DIR = join(import.meta.dirname, '..', '..', 'bench', 'scenarios');

/** A scenario by name (`bench/scenarios/<name>.yaml`) or by file path; errors name the file and field. */
export function loadScenario(nameOrFile: string): Scenario {
  const file = existsSync(nameOrFile) ? nameOrFile : join(SCENARIO_DIR, `${nameOrFile}.yaml`);
  if (!existsSync(file)) {
    throw new P2PError(ErrorCode.input, `no scenario "${nameOrFile}" (neither a file nor one of bench/scenarios)`, {
      component: 'bench',
      field: '--scenario',
    });
  }
  return loadDataFile(file, ScenarioSchema, ErrorCode.input);
}
