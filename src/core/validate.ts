import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { type ErrorCode, P2PError } from './errors.js';

type PathKey = PropertyKey;

/** `['agents', 2, 'generators', 0, 'max']` → `agents[2].generators[0].max`. */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

interface Source {
  /** The file the data came from, named in the error. */
  file?: string;
  /** `config` for configuration files, `input` for command inputs. */
  code: Extract<ErrorCode, 'config' | 'input'>;
}

/**
 * Parses `data` with `schema`; on failure throws one P2PError naming the file and the first field at
 * fault (and how many more there are), e.g. `feeder.json: lines[3].rOhm: expected a number > 0`.
 */
export function parseWith<S extends z.ZodType>(schema: S, data: unknown, source: Source): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const first = issues[0];
  const field = first ? formatPath(first.path) : '(root)';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  const where = source.file ? `${source.file}: ` : '';
  const detail = issues
    .slice(0, 5)
    .map((i) => `${formatPath(i.path)}: ${i.message}`)
    .join('; ');
  return raise(`${where}${field}: ${first?.message ?? 'invalid'}${more}`, {
    code: source.code,
    field,
    file: source.file,
    hint: issues.length > 1 ? detail : undefined,
  });
}

function raise(message: string, o: { code: Source['code']; field?: string; file?: string; hint?: string }): never {
  throw new P2PError(o.code, message, { field: o.field, file: o.file, hint: o.hint, component: 'validate' });
}

/** Reads a JSON or YAML file (by extension; `.yaml`/`.yml` are YAML) into plain data. */
export function readDataFile(file: string, code: Source['code']): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    return raise(`${file}: cannot read: ${reason}`, { code, file });
  }
  return parseDataText(text, file, code);
}

/** Parses the text of a data file as `readDataFile` does: YAML when `file` ends in `.yaml`/`.yml`, else JSON. */
export function parseDataText(text: string, file: string, code: Source['code']): unknown {
  if (/\.ya?ml$/i.test(file)) {
    try {
      return parseYaml(text, { prettyErrors: true });
    } catch (err) {
      const msg = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err);
      return raise(`${file}: not valid YAML: ${msg}`, { code, file });
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    return raise(`${file}: not valid JSON: ${(err as Error).message}`, { code, file });
  }
}

/** Reads a JSON/YAML file and validates it: the usual way every command loads its input. */
export function loadDataFile<S extends z.ZodType>(file: string, schema: S, code: Source['code']): z.output<S> {
  return parseWith(schema, readDataFile(file, code), { file, code });
}
