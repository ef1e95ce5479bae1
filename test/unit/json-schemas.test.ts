import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonSchemas } from '../../scripts/json-schema-list.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('JSON Schemas of the hand-edited inputs (schemas/)', () => {
  it('each committed schema is the one its zod schema generates now (npm run schemas)', () => {
    const generated = jsonSchemas();
    expect(Object.keys(generated).sort()).toEqual(readdirSync(join(ROOT, 'schemas')).sort());
    for (const [file, text] of Object.entries(generated))
      expect(readFileSync(join(ROOT, 'schemas', file), 'utf8'), `schemas/${file}: run npm run schemas`).toBe(text);
  });

  it('says what the software checks: required fields, no unknown keys, the choices', () => {
    const config = JSON.parse(jsonSchemas()['gateway-config.schema.json']!);
    expect(config.required).toEqual(['gateway']);
    expect(config.additionalProperties).toBe(false);
    expect(config.properties.voltageControl.properties.method.enum).toEqual(['dual', 'volt-var', 'monitor']);
    const voltage = JSON.parse(jsonSchemas()['voltage-input.schema.json']!);
    expect(voltage.required).toEqual(['feeder', 'vMinPu', 'vMaxPu', 'inverters']);
    expect(voltage.properties.inverters.items.additionalProperties).toBe(false);
  });

  it('every example config names its schema for the editor', () => {
    const examples = readdirSync(join(ROOT, 'config')).filter((f) => f.endsWith('.example.yaml'));
    expect(examples.length).toBeGreaterThan(0);
    for (const f of examples)
      expect(readFileSync(join(ROOT, 'config', f), 'utf8').split('\n')[0], f).toBe(
        '# yaml-language-server: $schema=../schemas/gateway-config.schema.json',
      );
  });
});
