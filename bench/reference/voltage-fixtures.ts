/**
 * The voltage-control instances with an independently computed optimum (`voltage_optimum.py`), as
 * `npm run bench:voltage` measures against them and `test/unit/voltage-optima.test.ts` re-checks them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type VoltageInput, VoltageInputSchema } from '../../src/control/voltage/problem.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

/** Paths under test/fixtures, without `.json`; each has its `.optimum.json` beside it. */
export const VOLTAGE_INSTANCES = [
  'voltage-lv-20pv',
  'voltage/voltage-lv-20pv-evening',
  'voltage/voltage-33bus-noon',
  'voltage/voltage-33bus-evening',
  'voltage/voltage-69bus-noon',
  'voltage/voltage-69bus-evening',
] as const;

export interface VoltageOptimum {
  optimalCost: number;
  setpoints: Record<string, { pKW: number; qKVAr: number }>;
}

/** An instance (validated) and its reference optimum; `name` is the path's last part without `voltage-`. */
export function loadVoltageInstance(path: string): { name: string; input: VoltageInput; optimum: VoltageOptimum } {
  const read = (file: string): unknown => JSON.parse(readFileSync(join(FIXTURES, file), 'utf8'));
  return {
    name: path.replace(/^.*voltage-/, ''),
    input: VoltageInputSchema.parse(read(`${path}.json`)),
    optimum: read(`${path}.optimum.json`) as VoltageOptimum,
  };
}
