import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkImportGraph,
  findCycles,
  type ImportEdge,
  importSpecifiers,
  parseLayerRules,
  readImportGraph,
  resolveSpecifier,
} from '../helpers/import-graph.js';

const ROOT = join(import.meta.dirname, '..', '..');
const rules = parseLayerRules(readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8'));

/** A synthetic tree: edges written as `from -> specifier`, every file under src/. */
function graph(files: string[], imports: [string, string][]) {
  const edges: ImportEdge[] = imports.map(([from, specifier]) => ({
    from,
    specifier,
    to: resolveSpecifier(from, specifier),
  }));
  return { files: new Set(files), edges };
}

describe('layers (docs/architecture.md, "Layers")', () => {
  it('has a rule for every top-level folder of src/, naming only folders that exist', () => {
    const folders = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect([...rules.keys()].sort()).toEqual([...folders].sort());
    for (const [folder, allowed] of rules) for (const to of allowed) expect(folders, `${folder}: ${to}`).toContain(to);
  });

  it('src/ keeps them: no upward import, no import cycle, no import of a missing file', () => {
    const tree = readImportGraph(ROOT);
    expect(tree.files.size).toBeGreaterThan(100);
    expect(checkImportGraph(tree, rules).map((v) => v.message)).toEqual([]);
  });

  it('the checker reports an upward import, a cycle and a missing file, naming the file and the import', () => {
    const synthetic = graph(
      [
        'src/cli.ts',
        'src/core/log.ts',
        'src/drivers/sdm630.ts',
        'src/drivers/device.ts',
        'src/agent/process-image.ts',
        'src/sim/a.ts',
        'src/sim/b.ts',
        'src/sim/c.ts',
      ],
      [
        ['src/cli.ts', './agent/process-image.js'], // the top may import anything
        ['src/drivers/sdm630.ts', './device.js'], // within a folder
        ['src/drivers/sdm630.ts', '../core/log.js'], // downwards
        ['src/drivers/sdm630.ts', 'zod'], // a package
        ['src/drivers/device.ts', '../agent/process-image.js'], // upwards
        ['src/sim/a.ts', './b.js'],
        ['src/sim/b.ts', './c.js'],
        ['src/sim/c.ts', './a.js'], // a → b → c → a
        ['src/sim/c.ts', '../drivers/missing.js'],
        ['src/core/log.ts', '../cli.js'], // the top is above every folder
      ],
    );
    const messages = checkImportGraph(synthetic, rules).map((v) => `${v.kind}: ${v.message}`);
    expect(messages).toEqual([
      "layer: src/drivers/device.ts imports '../agent/process-image.js': drivers/ may not import agent/ (allowed: hal core)",
      "missing: src/sim/c.ts imports '../drivers/missing.js': src/drivers/missing.ts does not exist",
      "layer: src/core/log.ts imports '../cli.js': core/ may not import the top",
      'cycle: import cycle: src/sim/a.ts → src/sim/b.ts → src/sim/c.ts → src/sim/a.ts',
    ]);
  });

  it('finds a cycle across folders and a file importing itself, once per cycle', () => {
    const cycles = findCycles(
      ['src/x/a.ts', 'src/y/b.ts', 'src/z/self.ts', 'src/z/free.ts'],
      graph(
        [],
        [
          ['src/x/a.ts', '../y/b.js'],
          ['src/y/b.ts', '../x/a.js'],
          ['src/z/self.ts', './self.js'],
          ['src/z/free.ts', '../x/a.js'],
        ],
      ).edges,
    );
    expect(cycles.map((c) => [...c].sort())).toEqual(
      expect.arrayContaining([['src/x/a.ts', 'src/y/b.ts'], ['src/z/self.ts']]),
    );
    expect(cycles).toHaveLength(2);
  });

  it('reads static, type-only, re-export and dynamic imports', () => {
    const specifiers = importSpecifiers(
      [
        "import { a } from './a.js';",
        "import type { B } from './b.js';",
        "export { c } from './c.js';",
        "export type { D } from './d.js';",
        "const e = await import('./e.js');",
        "import './f.js';",
        "import data from './g.json' with { type: 'json' };",
      ].join('\n'),
    );
    expect(specifiers).toEqual(['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.json']);
    expect(resolveSpecifier('src/drivers/sunspec/models.ts', './models.json')).toBe('src/drivers/sunspec/models.json');
    expect(resolveSpecifier('src/drivers/sdm630.ts', '../core/errors.js')).toBe('src/core/errors.ts');
    expect(resolveSpecifier('src/drivers/sdm630.ts', 'node:fs')).toBeUndefined();
  });
});
