/**
 * Writes the JSON Schemas of the inputs people edit by hand, generated from the zod schemas the
 * software validates them with (so that editors complete and check them): the gateway config and
 * the `trade`, `powerflow` and `voltage` inputs. Run: npm run schemas
 * (`test/unit/json-schemas.test.ts` fails when a committed schema no longer matches its zod schema).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonSchemas } from './json-schema-list.js';

const out = join(import.meta.dirname, '..', 'schemas');
for (const [file, schema] of Object.entries(jsonSchemas())) writeFileSync(join(out, file), schema);
