import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const REFERENCE = 'src/trading/reference/';

/** The source file a relative import names (`./x.js` is `./x.ts` here), or undefined for a package. */
function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c));
}

/**
 * Every source file reachable from `entries` through static and dynamic imports (type-only imports
 * included, which errs on the strict side), with the chain of files that first reached each.
 */
function importGraph(entries: string[]): Map<string, string[]> {
  const reached = new Map<string, string[]>();
  const queue = entries.map((e) => ({ file: resolve(root, e), chain: [e] }));
  while (queue.length > 0) {
    const { file, chain } = queue.shift()!;
    const name = relative(root, file);
    if (reached.has(name)) continue;
    reached.set(name, chain);
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const imported of importedFiles) {
      const next = resolveImport(file, imported.fileName);
      if (next) queue.push({ file: next, chain: [...chain, relative(root, next)] });
    }
  }
  return reached;
}

const referenceReached = (entries: string[]) =>
  [...importGraph(entries)].filter(([file]) => file.startsWith(REFERENCE)).map(([, chain]) => chain.join(' → '));

describe("the gateway's import graph", () => {
  it('does not load the centralised reference solver (tests and benchmarks only)', () => {
    const graph = importGraph(['src/agent/run-command.ts', 'src/agent/gateway.ts']);
    // The walk does reach the roles and the trading code they run.
    expect(graph.has('src/agent/roles/mg-trader.ts')).toBe(true);
    expect(graph.has('src/trading/market-interval.ts')).toBe(true);
    expect(referenceReached(['src/agent/run-command.ts', 'src/agent/gateway.ts'])).toEqual([]);
  });

  it('finds the reference from code that does import it', () => {
    // The bench's cost-gap KPI solves the centralised optimum: the walk must see that, two files deep.
    expect(referenceReached(['src/bench/kpi.ts'])).toEqual([
      'src/bench/kpi.ts → src/trading/optimality-gap.ts → src/trading/reference/interior-point.ts',
    ]);
  });
});
