import fc from 'fast-check';
import { type ErrorCode, P2PError } from '../../src/core/errors.js';

/**
 * Shared settings of the property-based fuzz tests (`test/unit/fuzz-*.test.ts`, docs/fuzzing.md).
 * `FUZZ_RUNS` overrides the number of generated cases per property (10 000 by default). The cases
 * come from a fixed seed, so that the suite gives the same verdict every time it runs; `FUZZ_SEED=N`
 * takes another (fast-check prints the seed and the shrunk counterexample of a failure) and
 * `FUZZ_SEED=random` a new one each run, to look further.
 */

const DEFAULT_SEED = 20_261_125;

function fromEnv(name: string, fallback: number | undefined): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  if (name === 'FUZZ_SEED' && text === 'random') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got "${text}"`);
  return value;
}

export const FUZZ_RUNS = Math.max(1, fromEnv('FUZZ_RUNS', 10_000)!);
export const FUZZ_SEED = fromEnv('FUZZ_SEED', DEFAULT_SEED);
if (process.env.FUZZ_SEED) console.log(`fuzz: FUZZ_SEED=${process.env.FUZZ_SEED}, FUZZ_RUNS=${FUZZ_RUNS}`);

/**
 * fast-check parameters: `FUZZ_RUNS × scale` cases (scale < 1 for the costlier secondary properties
 * of a parser whose main property runs the full count), the seed when one is given, and a time limit
 * per case for asynchronous properties (a hang fails the case instead of the whole file).
 */
export function fuzz(scale = 1, extra: fc.Parameters<unknown> = {}): fc.Parameters<unknown> {
  return {
    numRuns: Math.max(1, Math.round(FUZZ_RUNS * scale)),
    ...(FUZZ_SEED !== undefined ? { seed: FUZZ_SEED } : {}),
    ...extra,
  };
}

/** Time limit of one case of an asynchronous property, ms. */
export const CASE_TIMEOUT_MS = 2000;

/**
 * Checks that a failure is the project's own: a P2PError with one of `codes` and a message that says
 * something. Anything else (a TypeError, a RangeError, a ZodError) fails the property.
 */
export function assertCleanError(err: unknown, codes?: readonly ErrorCode[]): asserts err is P2PError {
  if (!(err instanceof P2PError)) {
    const what = err instanceof Error ? `${err.constructor.name}: ${err.message}` : `a thrown ${typeof err}`;
    throw new Error(`expected a P2PError, got ${what}`, { cause: err });
  }
  if (codes && !codes.includes(err.code))
    throw new Error(`expected a P2PError with code ${codes.join(' or ')}, got ${err.code}: ${err.message}`);
  if (err.message.trim().length < 8) throw new Error(`P2PError without a useful message: "${err.message}"`);
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: P2PError };

/** Runs a parser: its value, or the P2PError it threw (any other error fails the property). */
export function outcome<T>(run: () => T, codes?: readonly ErrorCode[]): Outcome<T> {
  try {
    return { ok: true, value: run() };
  } catch (err) {
    assertCleanError(err, codes);
    return { ok: false, error: err };
  }
}

export async function outcomeAsync<T>(run: () => Promise<T>, codes?: readonly ErrorCode[]): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    assertCleanError(err, codes);
    return { ok: false, error: err };
  }
}

/** A schema error names the field at fault: `field` is set and the message quotes it. */
export function assertNamesField(error: P2PError): void {
  if (!error.field) throw new Error(`P2PError without a field: ${error.message}`);
  if (!error.message.includes(error.field))
    throw new Error(`P2PError message does not name its field ${error.field}: ${error.message}`);
}

/** Values that break careless parsers: wrong types, NaN, infinities, negatives, huge, empty. */
export function weirdValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom<unknown>(
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -1,
      0,
      1,
      0.5,
      1e308,
      -1e308,
      2 ** 53,
      2 ** 31,
      65_536,
      '',
      ' ',
      '0',
      '-1',
      'NaN',
      'a'.repeat(300),
      '__proto__',
      'constructor',
      'toString',
      null,
      true,
      false,
      [],
      {},
      [1],
      { a: 1 },
    ),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 8 }),
  );
}

type Path = (string | number)[];

/** Every path inside a JSON-like value (objects and arrays), the root included. */
function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      pathsOf(v, [...prefix, i], out);
    });
  } else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

type Mutation = { at: number; kind: 'replace' | 'delete' | 'extra-key' | 'duplicate'; value: unknown; key: string };

function applyMutation(root: unknown, paths: Path[], m: Mutation): unknown {
  const path = paths[m.at % paths.length]!;
  if (path.length === 0) return m.kind === 'replace' ? m.value : root;
  let parent = root as Record<string | number, unknown>;
  // An earlier mutation of this copy may have removed or replaced the way there (an object by an
  // array, say): then this one does nothing, rather than give an array a named key no file can hold.
  const fits = (container: unknown, key: string | number) =>
    container !== null && typeof container === 'object' && Array.isArray(container) === (typeof key === 'number');
  for (const k of path.slice(0, -1)) {
    if (!fits(parent, k)) return root;
    parent = parent[k] as Record<string | number, unknown>;
  }
  if (!fits(parent, path[path.length - 1]!)) return root;
  const last = path[path.length - 1]!;
  const target = parent[last];
  switch (m.kind) {
    case 'replace':
      parent[last] = m.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case 'extra-key':
      if (target !== null && typeof target === 'object' && !Array.isArray(target))
        (target as Record<string, unknown>)[m.key] = m.value;
      else parent[last] = m.value;
      break;
    case 'duplicate':
      if (Array.isArray(target) && target.length > 0) target.push(structuredClone(target[0]));
      else parent[last] = m.value;
      break;
  }
  return root;
}

/**
 * Copies of a valid input with one to three fields changed: replaced by a weird value, deleted,
 * given an extra key, or an array entry duplicated (duplicate ids).
 */
export function mutated(base: unknown): fc.Arbitrary<unknown> {
  const mutation = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom<Mutation['kind']>('replace', 'replace', 'delete', 'extra-key', 'duplicate'),
    value: weirdValue(),
    key: fc.constantFrom('extra', 'id', 'x', 'constructor', 'toString'),
  });
  const paths = pathsOf(base);
  return fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => {
    let copy = structuredClone(base);
    for (const m of ms) copy = applyMutation(copy, paths, m);
    return copy;
  });
}

/** `mutated` of one of several valid inputs. */
export function mutatedOneOf(bases: readonly unknown[]): fc.Arbitrary<unknown> {
  return fc.oneof(...bases.map((b) => mutated(b)));
}

/** A cheap assertion for the hot path of a property (vitest's `expect` costs microseconds a call). */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new Error(typeof message === 'string' ? message : message());
}
