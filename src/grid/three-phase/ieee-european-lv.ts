import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseWith } from '../../core/validate.js';
import { type ThreePhaseFeederInput, ThreePhaseFeederSchema } from './feeder.js';

/** The shipped IEEE European LV Test Feeder (regenerate with bench/convert-ieee-european-lv.ts). */
export const IEEE_EUROPEAN_LV_FILE = join(import.meta.dirname, '..', 'data', 'ieee-european-lv.json');

/** The minutes of the day at which the feeder's package publishes OpenDSS snapshot solutions. */
export const IEEE_EUROPEAN_LV_SNAPSHOT_MINUTES = [1, 566, 1440] as const;

export function loadIeeeEuropeanLv(): ThreePhaseFeederInput {
  return parseWith(ThreePhaseFeederSchema, JSON.parse(readFileSync(IEEE_EUROPEAN_LV_FILE, 'utf8')), {
    file: IEEE_EUROPEAN_LV_FILE,
    code: 'input',
  });
}
