import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { exitCodeFor, P2PError } from '../../src/core/errors.js';
import { formatPath, loadDataFile, parseWith, readDataFile } from '../../src/core/validate.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('formatPath', () => {
  it('writes paths the way the interface contract names fields', () => {
    expect(formatPath(['agents', 2, 'generators', 0, 'max'])).toBe('agents[2].generators[0].max');
    expect(formatPath([])).toBe('(root)');
  });
});

describe('parseWith', () => {
  const schema = z.object({ agents: z.array(z.object({ max: z.number().min(0) })) });

  it('names the file and the first field at fault, with exit code 2', () => {
    let caught: unknown;
    try {
      parseWith(schema, { agents: [{ max: 1 }, { max: -1 }] }, { file: 'in.json', code: 'input' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(P2PError);
    const err = caught as P2PError;
    expect(err.message).toMatch(/^in\.json: agents\[1\]\.max: /);
    expect(err.field).toBe('agents[1].max');
    expect(exitCodeFor(err)).toBe(2);
  });

  it('counts further problems', () => {
    expect(() => parseWith(schema, { agents: [{ max: -1 }, { max: 'x' }] }, { code: 'input' })).toThrow(
      /and 1 more problem/,
    );
  });
});

describe('readDataFile', () => {
  it('reads JSON and YAML by extension', () => {
    const j = join(tmp.dir, 'a.json');
    const y = join(tmp.dir, 'a.yaml');
    writeFileSync(j, '{"x": 1}');
    writeFileSync(y, 'x: 1 # a comment\n');
    expect(readDataFile(j, 'input')).toEqual({ x: 1 });
    expect(readDataFile(y, 'config')).toEqual({ x: 1 });
  });

  it('says which file is missing or broken', () => {
    expect(() => readDataFile(join(tmp.dir, 'none.json'), 'input')).toThrow(/none\.json: cannot read: file not found/);
    const bad = join(tmp.dir, 'bad.json');
    writeFileSync(bad, '{"x": ');
    expect(() => readDataFile(bad, 'input')).toThrow(/bad\.json: not valid JSON/);
    const badYaml = join(tmp.dir, 'bad.yaml');
    writeFileSync(badYaml, 'a: [1, 2\n');
    expect(() => readDataFile(badYaml, 'config')).toThrow(/bad\.yaml: not valid YAML/);
  });

  it('loadDataFile validates what it read', () => {
    const f = join(tmp.dir, 'v.json');
    writeFileSync(f, '{"n": "three"}');
    expect(() => loadDataFile(f, z.object({ n: z.number() }), 'input')).toThrow(/v\.json: n: /);
  });
});
