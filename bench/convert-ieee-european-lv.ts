/**
 * Regenerates src/grid/data/ieee-european-lv.json from the IEEE PES European LV Test Feeder's OpenDSS
 * files (Master.dss, LineCode.txt, Lines.txt, Loads.txt, LoadShapes.txt, Transformers.txt and the
 * Daily_1min_100profiles folder; a copy is in the OpenDSS test repository under
 * Distrib/IEEETestCases/LVTestCase/).
 *
 *   npx tsx bench/convert-ieee-european-lv.ts <LVTestCase folder> [out.json]
 *
 * Deterministic: the same input files give the same output byte for byte. What it keeps: line codes
 * (sequence R/X per km), lines (bus, bus, code, length), the 55 single-phase loads (bus, phase, kW,
 * kvar from the power factor), the transformer and source data, each load's daily shape averaged to
 * 15-minute steps (96 points) and the exact 1-minute multipliers at the three published snapshot
 * minutes 1, 566 and 1440. OpenDSS defaults the files rely on are written out explicitly (see below).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ThreePhaseFeederSchema } from '../src/grid/three-phase/feeder.js';

const SNAPSHOT_MINUTES = [1, 566, 1440];
const STEP_MINUTES = 15;
/** OpenDSS defaults the European LV files do not override. */
const OPENDSS_DEFAULTS = {
  /** Vsource X1/R1. */
  sourceX1OverR1: 4,
  /** Transformer %R: the .dss gives only XHL, so OpenDSS's 0.2 % per winding applies (0.4 % in all, as in the package's Transformer.csv). */
  transformerRPercentTotal: 0.4,
  /** Load model 1: constant P, Q between Vminpu 0.95 and Vmaxpu 1.05 of the load's kV, constant Z outside. */
  loadVMinPu: 0.95,
  loadVMaxPu: 1.05,
};

type Props = Map<string, string>;

/** `New Class.Name k=v k=[a b] k=(file=x)` lines → [class, name, props] (keys lower-cased). */
function parseDss(text: string): { cls: string; name: string; props: Props }[] {
  const out: { cls: string; name: string; props: Props }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw
      .replace(/!.*$/, '')
      .replace(/\/\/.*$/, '')
      .trim();
    const m = /^(new|edit)\s+([A-Za-z]+)\.(\S+)\s*(.*)$/i.exec(line);
    if (!m) continue;
    const props: Props = new Map();
    for (const p of m[4]!.matchAll(/([A-Za-z%0-9_]+)\s*=\s*(\[[^\]]*\]|\([^)]*\)|"[^"]*"|\S+)/g))
      props.set(p[1]!.toLowerCase(), p[2]!);
    out.push({ cls: m[2]!.toLowerCase(), name: m[3]!, props });
  }
  return out;
}

const num = (props: Props, key: string, where: string): number => {
  const value = Number(props.get(key));
  if (!Number.isFinite(value)) throw new Error(`${where}: ${key} missing or not a number`);
  return value;
};
const list = (value: string | undefined): string[] =>
  (value ?? '')
    .replace(/^[[(]|[\])]$/g, '')
    .trim()
    .split(/[\s,]+/);
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

export function convert(dir: string): unknown {
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const source = parseDss(read('Master.dss')).find((e) => e.cls === 'vsource')!;
  const transformer = parseDss(read('Transformers.txt')).find((e) => e.cls === 'transformer')!;
  const codes = parseDss(read('LineCode.txt')).filter((e) => e.cls === 'linecode');
  const lines = parseDss(read('Lines.txt')).filter((e) => e.cls === 'line');
  const loads = parseDss(read('Loads.txt')).filter((e) => e.cls === 'load');
  const shapes = new Map(
    parseDss(read('LoadShapes.txt'))
      .filter((e) => e.cls === 'loadshape')
      .map((e) => [e.name.toLowerCase(), /file=([^)\s]+)/i.exec(e.props.get('mult') ?? '')![1]!]),
  );

  const lineCodes: Record<string, unknown> = {};
  for (const c of codes) {
    if (c.props.get('units')?.toLowerCase() !== 'km') throw new Error(`linecode ${c.name}: units other than km`);
    lineCodes[c.name] = {
      r1OhmPerKm: num(c.props, 'r1', c.name),
      x1OhmPerKm: num(c.props, 'x1', c.name),
      r0OhmPerKm: num(c.props, 'r0', c.name),
      x0OhmPerKm: num(c.props, 'x0', c.name),
    };
  }
  const lineRows = lines.map((l) => {
    if (l.props.get('units')?.toLowerCase() !== 'm') throw new Error(`line ${l.name}: units other than m`);
    return {
      id: l.name,
      from: l.props.get('bus1')!.split('.')[0]!,
      to: l.props.get('bus2')!.split('.')[0]!,
      code: l.props.get('linecode')!,
      lengthM: num(l.props, 'length', l.name),
    };
  });

  const phaseOf = (bus: string, where: string) => {
    const node = bus.split('.')[1];
    const phase = { '1': 'a', '2': 'b', '3': 'c' }[node ?? ''];
    if (!phase) throw new Error(`${where}: bus ${bus} names no single phase node`);
    return phase;
  };
  const multipliers: Record<string, number[]> = {};
  const snapshots: Record<string, Record<string, number>> = Object.fromEntries(
    SNAPSHOT_MINUTES.map((m) => [String(m), {}]),
  );
  const loadRows = loads.map((l) => {
    const kW = num(l.props, 'kw', l.name);
    const pf = num(l.props, 'pf', l.name);
    const shapeFile = shapes.get((l.props.get('yearly') ?? l.props.get('daily') ?? '').toLowerCase());
    if (!shapeFile) throw new Error(`load ${l.name}: no load shape`);
    const values = read(shapeFile)
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
    if (values.length !== 1440 || values.some((x) => !Number.isFinite(x)))
      throw new Error(`${shapeFile}: expected 1440 numbers`);
    // The shapes are kW at kW=1 (useactual, or multipliers of kW=1: the same), point k at minute k.
    multipliers[l.name] = Array.from({ length: 1440 / STEP_MINUTES }, (_, s) => {
      const window = values.slice(s * STEP_MINUTES, (s + 1) * STEP_MINUTES);
      return round(window.reduce((a, b) => a + b, 0) / window.length, 5);
    });
    for (const m of SNAPSHOT_MINUTES) snapshots[String(m)]![l.name] = values[m - 1]!;
    return {
      id: l.name,
      bus: l.props.get('bus1')!.split('.')[0]!,
      phase: phaseOf(l.props.get('bus1')!, l.name),
      pKW: kW,
      qKVAr: round(kW * Math.tan(Math.acos(pf)), 6),
      ratedKV: num(l.props, 'kv', l.name),
    };
  });
  const ratedKV = new Set(loadRows.map((l) => l.ratedKV));
  if (ratedKV.size !== 1) throw new Error('loads with different rated voltages');

  const kVs = list(transformer.props.get('kvs')).map(Number);
  const kVAs = list(transformer.props.get('kvas')).map(Number);
  const conns = list(transformer.props.get('conns')).map((c) => c.toLowerCase());
  if (conns[0] !== 'delta' || conns[1] !== 'wye') throw new Error('expected a delta-wye transformer');
  const slack = list(transformer.props.get('buses'))[1]!;

  const feeder = {
    phases: 3,
    name: 'ieee-european-lv',
    reference:
      'IEEE PES European Low Voltage Test Feeder v2 (IEEE PES Distribution System Analysis Subcommittee), ' +
      'converted by bench/convert-ieee-european-lv.ts from the OpenDSS files in the OpenDSS test cases ' +
      '(Distrib/IEEETestCases/LVTestCase; Copyright (c) 2008-2024 Electric Power Research Institute, Inc., ' +
      '2018-2024 DSS-Extensions contributors; BSD-3-Clause). See docs/lv-feeder.md.',
    baseKV: kVs[1],
    slack,
    vSlackPu: num(source.props, 'pu', 'vsource'),
    source: {
      iscThreePhaseA: num(source.props, 'isc3', 'vsource'),
      x1OverR1: OPENDSS_DEFAULTS.sourceX1OverR1,
    },
    transformer: {
      id: transformer.name,
      connection: 'Dyn',
      kVA: kVAs[0],
      kVHigh: kVs[0],
      kVLow: kVs[1],
      rPercent: OPENDSS_DEFAULTS.transformerRPercentTotal,
      xPercent: num(transformer.props, 'xhl', transformer.name),
    },
    loadModel: {
      type: 'constant-power-band',
      ratedV: [...ratedKV][0]! * 1000,
      vMinPu: OPENDSS_DEFAULTS.loadVMinPu,
      vMaxPu: OPENDSS_DEFAULTS.loadVMaxPu,
    },
    lineCodes,
    lines: lineRows,
    loads: loadRows.map(({ ratedKV: _, ...l }) => l),
    generators: [],
    profiles: { stepMinutes: STEP_MINUTES, multipliers, snapshots },
  };
  ThreePhaseFeederSchema.parse(feeder);
  return feeder;
}

/** JSON with one array element (line, load, profile) per line: diffable and compact. */
function format(value: unknown, indent = ''): string {
  if (Array.isArray(value) && value.every((x) => typeof x === 'number')) return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((x) => `${indent}  ${JSON.stringify(x)}`).join(',\n')}\n${indent}]`;
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    const flat = entries.every(([, x]) => typeof x !== 'object' || x === null);
    if (flat && indent.length >= 4) return JSON.stringify(value);
    return `{\n${entries.map(([k, x]) => `${indent}  ${JSON.stringify(k)}: ${format(x, `${indent}  `)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

if (process.argv[1]?.endsWith('convert-ieee-european-lv.ts')) {
  const [dir, out] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: npx tsx bench/convert-ieee-european-lv.ts <LVTestCase folder> [out.json]\n');
    process.exit(2);
  }
  const target = out ?? join(import.meta.dirname, '..', 'src', 'sim', 'data', 'ieee-european-lv.json');
  writeFileSync(target, `${format(convert(dir))}\n`);
  process.stderr.write(`wrote ${target}\n`);
}
