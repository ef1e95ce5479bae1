import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseWith } from './validate.js';

/**
 * The firmware's version, read once from `package.json` (two folders up from here, in the sources as
 * in the build under dist/): what `--version` prints and what a gateway's presence announces.
 */
export const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

export const FIRMWARE_VERSION: string = parseWith(
  z.object({ version: z.string().min(1) }),
  JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')),
  { file: PACKAGE_JSON.pathname, code: 'config' },
).version;
