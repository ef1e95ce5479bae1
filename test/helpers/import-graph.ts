import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import ts from 'typescript';

/**
 * The import graph of a source tree and the checks of the layer rule (docs/architecture.md, "Layers"):
 * which top-level folder may import which, no import cycle between files, no import of a missing file.
 * Pure over its inputs, so a test can hand it a small synthetic graph.
 */

/** One import as written: the importing file (relative to the root, `/`-separated) and its specifier. */
export interface ImportEdge {
  readonly from: string;
  readonly specifier: string;
  /** The imported file relative to the root, or undefined for a package (`zod`, `node:fs`). */
  readonly to: string | undefined;
}

/** Allowed imports between top-level folders: folder → the folders below it it may import. */
export type LayerRules = ReadonlyMap<string, ReadonlySet<string>>;

export interface Violation {
  readonly kind: 'layer' | 'cycle' | 'missing' | 'unknown-folder';
  readonly message: string;
}

/** Parses the `folder: allowed folders` lines of the fenced block under `## Layers`. */
export function parseLayerRules(markdown: string): LayerRules {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Layers'));
  if (!section) throw new Error('no "## Layers" section');
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('the "## Layers" section has no fenced block');
  const rules = new Map<string, Set<string>>();
  for (const line of block[1]!.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const match = /^([a-z][a-z0-9-]*):(.*)$/.exec(trimmed);
    if (!match) throw new Error(`cannot read the layer rule "${trimmed}"`);
    rules.set(match[1]!, new Set(match[2]!.trim().split(/\s+/).filter(Boolean)));
  }
  return rules;
}

/** Every specifier a file imports: static imports and re-exports (type-only included), `import()` calls. */
export function importSpecifiers(sourceText: string): string[] {
  return ts.preProcessFile(sourceText, true, true).importedFiles.map((f) => f.fileName);
}

/**
 * The file a relative specifier names, relative to the root: `./x.js` is `x.ts` (the NodeNext
 * convention), a `.json` stays itself. Undefined for a package specifier.
 */
export function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const joined = join(dirname(from), specifier).split(sep).join('/');
  return joined.endsWith('.js') ? `${joined.slice(0, -3)}.ts` : joined;
}

/** The import edges of every `.ts` file under `root/dir`, with paths relative to `root`. */
export function readImportGraph(root: string, dir = 'src'): { files: Set<string>; edges: ImportEdge[] } {
  const files = new Set<string>();
  const edges: ImportEdge[] = [];
  const walk = (abs: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const path = join(abs, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const from = relative(root, path).split(sep).join('/');
        files.add(from);
        for (const specifier of importSpecifiers(readFileSync(path, 'utf8')))
          edges.push({ from, specifier, to: resolveSpecifier(from, specifier) });
      }
    }
  };
  walk(join(root, dir));
  // Data files (JSON) imported by a module are part of the tree too.
  for (const e of edges) if (e.to && !e.to.endsWith('.ts') && existsSync(join(root, e.to))) files.add(e.to);
  return { files, edges };
}

/** The top-level folder of a file under `dir` (`src/drivers/sunspec/models.ts` → `drivers`); undefined at the top. */
export function folderOf(file: string, dir = 'src'): string | undefined {
  const parts = file.split('/');
  if (parts[0] !== dir || parts.length < 3) return undefined;
  return parts[1];
}

/** Every cycle of the graph: one per strongly connected component, as the files of one closed path through it. */
export function findCycles(files: Iterable<string>, edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const f of files) next.set(f, new Set());
  for (const e of edges) if (e.to && next.has(e.to)) next.get(e.from)?.add(e.to);

  // Tarjan's strongly connected components, iterative so deep chains cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const start of next.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; children: Iterator<string> }[] = [];
    const visit = (node: string) => {
      index.set(node, counter);
      low.set(node, counter);
      counter++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, children: next.get(node)!.values() });
    };
    visit(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const child = top.children.next();
      if (!child.done) {
        const w = child.value;
        if (!index.has(w)) visit(w);
        else if (onStack.has(w)) low.set(top.node, Math.min(low.get(top.node)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) === index.get(top.node)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== top.node);
        if (component.length > 1 || next.get(top.node)!.has(top.node)) components.push(component);
      }
    }
  }
  return components.map((component) => closedPath(component, next));
}

/** A shortest closed path through the component's first file (breadth-first inside the component). */
function closedPath(component: string[], next: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const w of next.get(node)!) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return path;
      }
      if (!previous.has(w)) {
        previous.set(w, node);
        queue.push(w);
      }
    }
  }
  return component;
}

/** Every breach of the layer rule, cycle and import of a missing file, each naming the file and the import. */
export function checkImportGraph(
  graph: { files: ReadonlySet<string>; edges: readonly ImportEdge[] },
  rules: LayerRules,
  dir = 'src',
): Violation[] {
  const violations: Violation[] = [];
  for (const e of graph.edges) {
    if (e.to === undefined) continue;
    if (!graph.files.has(e.to)) {
      violations.push({ kind: 'missing', message: `${e.from} imports '${e.specifier}': ${e.to} does not exist` });
      continue;
    }
    const from = folderOf(e.from, dir);
    const to = folderOf(e.to, dir);
    if (from === undefined || from === to) continue; // the top (cli.ts, main.ts) may import anything
    if (to === undefined) {
      violations.push({
        kind: 'layer',
        message: `${e.from} imports '${e.specifier}': ${from}/ may not import the top`,
      });
      continue;
    }
    const allowed = rules.get(from);
    if (!allowed) {
      violations.push({ kind: 'unknown-folder', message: `${e.from}: the folder ${from}/ has no layer rule` });
      continue;
    }
    if (!allowed.has(to))
      violations.push({
        kind: 'layer',
        message: `${e.from} imports '${e.specifier}': ${from}/ may not import ${to}/ (allowed: ${[...allowed].join(' ') || 'nothing'})`,
      });
  }
  for (const cycle of findCycles(graph.files, graph.edges))
    violations.push({ kind: 'cycle', message: `import cycle: ${[...cycle, cycle[0]].join(' → ')}` });
  return violations;
}
