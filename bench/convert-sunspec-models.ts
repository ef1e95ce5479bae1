/**
 * Regenerates src/drivers/sunspec/models.json from a checkout of the official SunSpec model
 * definitions (github.com/sunspec/models, Apache-2.0): for each model the project uses, its points
 * with their offset from the model's ID register, type, size, scale factor, access, units and enum
 * symbols. Nested groups with a fixed count of one are flattened as `Group.Point`; a repeating group
 * (curves) ends the fixed part and is kept as `group`, with the points it repeats in its turn (model
 * 705's curve points, their count given by a point of the fixed part) as `group.subgroup`.
 *   npx tsx bench/convert-sunspec-models.ts /path/to/sunspec-models [commit]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MODELS = [
  1, 101, 102, 103, 111, 112, 113, 120, 121, 122, 123, 126, 132, 201, 202, 203, 204, 211, 212, 213, 214, 701, 702, 704,
  705, 802,
];

interface SourcePoint {
  name: string;
  type: string;
  size?: number;
  sf?: string;
  access?: string;
  units?: string;
  symbols?: { name: string; value: number }[];
}
interface SourceGroup {
  name: string;
  count?: number | string;
  points: SourcePoint[];
  groups?: SourceGroup[];
}

const [dir, commit = 'unknown'] = process.argv.slice(2);
if (!dir) throw new Error('usage: convert-sunspec-models.ts <sunspec-models checkout> [commit]');

const out: Record<string, unknown> = {};
for (const id of MODELS) {
  const source = JSON.parse(readFileSync(join(dir, 'json', `model_${id}.json`), 'utf8')) as {
    id: number;
    group: SourceGroup;
  };
  const points: Record<string, unknown>[] = [];
  let offset = 0;
  const walk = (g: SourceGroup, prefix: string): boolean => {
    for (const p of g.points) {
      const size = p.size ?? 1;
      points.push({
        name: prefix + p.name,
        offset,
        type: p.type,
        size,
        ...(p.sf ? { sf: p.sf } : {}),
        ...(p.access === 'RW' ? { writable: true } : {}),
        ...(p.units ? { units: p.units } : {}),
        ...(p.symbols ? { symbols: Object.fromEntries(p.symbols.map((s) => [s.value, s.name])) } : {}),
      });
      offset += size;
    }
    for (const sub of g.groups ?? []) {
      if (sub.count !== undefined && sub.count !== 1) return false;
      if (!walk(sub, `${prefix}${sub.name}.`)) return false;
    }
    return true;
  };
  const complete = walk(source.group, '');
  // A repeating group (curves) follows the fixed part: its points with offsets from the group's start.
  const group = complete ? undefined : (source.group.groups ?? []).find((g) => g.count !== 1);
  const pointsOf = (g: SourceGroup) => {
    let at = 0;
    const list = g.points.map((p) => {
      const size = p.size ?? 1;
      const point = {
        name: p.name,
        offset: at,
        type: p.type,
        size,
        ...(p.sf ? { sf: p.sf } : {}),
        ...(p.access === 'RW' ? { writable: true } : {}),
        ...(p.units ? { units: p.units } : {}),
        ...(p.symbols ? { symbols: Object.fromEntries(p.symbols.map((x) => [x.value, x.name])) } : {}),
      };
      at += size;
      return point;
    });
    return { list, length: at };
  };
  const groupPoints = group ? pointsOf(group).list : [];
  const groupOffset = group ? pointsOf(group).length : 0;
  const nested = group?.groups?.find((g) => typeof g.count === 'string');
  const subgroup = nested
    ? { name: nested.name, countPoint: nested.count, length: pointsOf(nested).length, points: pointsOf(nested).list }
    : undefined;
  out[id] = {
    id,
    name: source.group.name,
    fixedLength: offset - 2,
    repeating: !complete,
    points,
    ...(group
      ? { group: { name: group.name, length: groupOffset, points: groupPoints, ...(subgroup ? { subgroup } : {}) } }
      : {}),
  };
}
writeFileSync(
  join(import.meta.dirname, '..', 'src', 'drivers', 'sunspec', 'models.json'),
  `${JSON.stringify({ source: `github.com/sunspec/models json/ at ${commit} (Apache-2.0), converted by bench/convert-sunspec-models.ts`, models: out }, null, 1)}\n`,
);
