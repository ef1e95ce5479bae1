import { z } from 'zod';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { parseWith, readDataFile } from '../../core/validate.js';
import { buildRadialFeeder, FeederSchema, type RadialFeeder } from '../../grid/feeder.js';

/** The contract's `voltage` input: a feeder, voltage limits, and the inverters that can act. */
export const VoltageInputSchema = z
  .object({
    feeder: FeederSchema,
    vMinPu: z.number().positive(),
    vMaxPu: z.number().positive(),
    inverters: z
      .array(
        z
          .object({
            id: z.string().min(1),
            bus: z.string().min(1),
            pAvailableKW: z.number().nonnegative(),
            qMaxKVAr: z.number().nonnegative(),
            qWeight: z.number().positive(),
            sRatedKVA: z.number().positive().optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict()
  .refine((v) => v.vMinPu < v.vMaxPu, { message: 'vMinPu must be below vMaxPu', path: ['vMinPu'] });
export type VoltageInput = z.infer<typeof VoltageInputSchema>;
export type InverterSpec = VoltageInput['inverters'][number];

export interface VoltageProblem {
  feeder: RadialFeeder;
  vMinPu: number;
  vMaxPu: number;
  inverters: InverterSpec[];
}

export function compileVoltageProblem(input: VoltageInput, file?: string): VoltageProblem {
  const feeder = buildRadialFeeder(input.feeder, file);
  const ids = new Set<string>();
  input.inverters.forEach((inv, i) => {
    const field = `inverters[${i}]`;
    const fail = (m: string, f: string) => {
      throw new P2PError(ErrorCode.input, `${file ? `${file}: ` : ''}${f}: ${m}`, { field: f, component: 'voltage' });
    };
    if (ids.has(inv.id)) fail(`inverter id "${inv.id}" is used twice`, `${field}.id`);
    ids.add(inv.id);
    if (!feeder.order.includes(inv.bus)) fail(`bus "${inv.bus}" is not in the feeder`, `${field}.bus`);
    if (inv.bus === feeder.slack) fail('an inverter at the slack bus cannot change any voltage', `${field}.bus`);
  });
  return { feeder, vMinPu: input.vMinPu, vMaxPu: input.vMaxPu, inverters: input.inverters };
}

export function loadVoltageProblem(file: string): VoltageProblem {
  return compileVoltageProblem(
    parseWith(VoltageInputSchema, readDataFile(file, 'input'), { file, code: 'input' }),
    file,
  );
}

/** Σ (pAvailable − p)² + qWeight·q²: curtailment plus weighted reactive power (the contract's cost). */
export function setpointCost(inverters: readonly InverterSpec[], p: readonly number[], q: readonly number[]): number {
  return inverters.reduce((s, inv, i) => s + (inv.pAvailableKW - p[i]!) ** 2 + inv.qWeight * q[i]! ** 2, 0);
}
