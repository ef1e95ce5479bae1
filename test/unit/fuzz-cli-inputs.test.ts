import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileVoltageProblem, VoltageInputSchema } from '../../src/control/voltage/problem.js';
import { ErrorCode } from '../../src/core/errors.js';
import { parseDataText, parseWith } from '../../src/core/validate.js';
import { buildRadialFeeder, FeederSchema } from '../../src/grid/feeder.js';
import { buildThreePhaseModel, profileMultipliers, ThreePhaseFeederSchema } from '../../src/grid/three-phase/feeder.js';
import { compileModel, TradeInputSchema } from '../../src/trading/model.js';
import { randomTradeInstance } from '../../src/trading/random-instance.js';
import { assertNamesField, check, fuzz, mutated, mutatedOneOf, outcome } from '../helpers/fuzz.js';

/**
 * Fuzzing of the JSON inputs of `p2p-edge trade`, `powerflow` (balanced and three-phase feeders, also
 * the voltage agent's feederFile) and `voltage` (docs/interfaces.md), through the functions the commands
 * call: parseWith with the command's schema, then the compile step. Every input gives a model or an
 * `input` P2PError naming the field; valid inputs give the right model.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const json = (file: string): unknown => JSON.parse(readFileSync(join(ROOT, file), 'utf8'));
const source = { file: 'in.json', code: ErrorCode.input } as const;

function inputOutcome<T>(run: () => T): T | undefined {
  const r = outcome(run, [ErrorCode.input]);
  if (r.ok) return r.value;
  check(r.error.field, () => `input error without a field: ${r.error.message}`);
  return undefined;
}

describe('fuzz: `p2p-edge trade` input (src/trading/model.ts)', () => {
  const bases = [
    json('test/fixtures/trading/trade-4mg.json'),
    randomTradeInstance(3, { horizon: 3, storage: true, seed: 7 }),
  ];
  const compile = (input: unknown) => compileModel(parseWith(TradeInputSchema, input, source), 'in.json');

  it('valid instances compile to per-slot arrays of the horizon, links between the right agents', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.integer(),
        (traders, horizon, storage, seed) => {
          const input = randomTradeInstance(traders, { horizon, storage, seed });
          const text = parseDataText(JSON.stringify(input), 'in.json', ErrorCode.input);
          const m = compile(text);
          check(m.horizon === horizon, 'horizon');
          check(m.agents.length === input.agents.length, 'agent count');
          for (const [i, a] of m.agents.entries()) {
            const demand = input.agents[i]!.demand;
            check(a.id === input.agents[i]!.id, `agents[${i}].id`);
            check(
              a.demand.length === horizon &&
                a.demand.every((d, t) => d === (typeof demand === 'number' ? demand : demand[t])),
              `agents[${i}].demand`,
            );
            for (const g of a.generators)
              check(
                [g.a, g.b, g.max].every((x) => x.length === horizon),
                `agents[${i}] generator series`,
              );
          }
          for (const [k, l] of m.links.entries()) {
            check(m.agents[l.from]!.id === input.links[k]!.from, `links[${k}].from`);
            check(m.agents[l.to]!.id === input.links[k]!.to, `links[${k}].to`);
          }
        },
      ),
      fuzz(0.1),
    );
  });

  it('mutated instances: a model or an input error naming the field', () => {
    fc.assert(
      fc.property(mutatedOneOf(bases), (input) => {
        const m = inputOutcome(() => compile(input));
        if (m) for (const a of m.agents) check(a.demand.every(Number.isFinite), `${a.id}: demand not finite`);
      }),
      fuzz(),
    );
  });

  it('arbitrary JSON values: an input error', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (input) => {
        inputOutcome(() => compile(input));
      }),
      fuzz(0.2),
    );
  });
});

/** A random radial feeder: bus i > 0 hangs off a bus before it; lines listed shuffled, either direction. */
const radialFeeder = fc
  .integer({ min: 1, max: 12 })
  .chain((lines) =>
    fc.record({
      parents: fc.tuple(...Array.from({ length: lines }, (_, i) => fc.integer({ min: 0, max: i }))),
      flips: fc.array(fc.boolean(), { minLength: lines, maxLength: lines }),
      order: fc.shuffledSubarray(
        Array.from({ length: lines }, (_, i) => i),
        { minLength: lines, maxLength: lines },
      ),
      names: fc.uniqueArray(
        fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.constantFrom('constructor', '__proto__', 'toString')),
        {
          minLength: lines + 1,
          maxLength: lines + 1,
        },
      ),
      loads: fc.array(fc.double({ min: -500, max: 500, noNaN: true }), { minLength: lines, maxLength: lines }),
    }),
  )
  .map(({ parents, flips, order, names, loads }) => {
    const input = {
      baseKV: 0.4,
      slack: names[0]!,
      buses: loads.map((pKW, i) => ({ id: names[i + 1]!, pKW, qKVAr: pKW / 3 })),
      lines: order.map((i) => {
        const [a, b] = [names[parents[i]!]!, names[i + 1]!];
        return { from: flips[i] ? b : a, to: flips[i] ? a : b, rOhm: 0.1, xOhm: 0.05 };
      }),
    };
    return { input, parentOf: new Map(parents.map((p, i) => [names[i + 1]!, names[p]!])) };
  });

describe('fuzz: `p2p-edge powerflow` feeder and feederFile (src/grid/feeder.ts)', () => {
  it('valid radial feeders: every bus reached once, from its own parent, parents first', () => {
    fc.assert(
      fc.property(radialFeeder, ({ input, parentOf }) => {
        const f = buildRadialFeeder(parseWith(FeederSchema, input, source));
        check(new Set(f.order).size === parentOf.size + 1, 'a bus missing from the order');
        for (const [bus, parent] of parentOf) {
          check(f.parentLine.get(bus)?.parent === parent, `bus ${bus}: wrong parent`);
          check(f.order.indexOf(parent) < f.order.indexOf(bus), `bus ${bus} before its parent`);
        }
        for (const b of input.buses) check(f.loadKW.get(b.id) === b.pKW, `bus ${b.id}: wrong load`);
      }),
      fuzz(0.3),
    );
  });

  it('mutated feeders: a feeder or an input error naming the element', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedOneOf([json('config/feeder.example.json'), json('src/grid/data/feeder-baran-wu-33.json')]),
          radialFeeder.chain(({ input }) => mutated(input)),
        ),
        (input) => {
          inputOutcome(() => buildRadialFeeder(parseWith(FeederSchema, input, source), 'in.json'));
        },
      ),
      fuzz(),
    );
  });
});

describe('fuzz: `p2p-edge powerflow` three-phase feeder (src/grid/three-phase/feeder.ts)', () => {
  const code = { r1OhmPerKm: 0.2, x1OhmPerKm: 0.07, r0OhmPerKm: 0.8, x0OhmPerKm: 0.3 };
  const base = {
    phases: 3,
    baseKV: 0.416,
    slack: 'tx',
    source: { iscThreePhaseA: 3000 },
    transformer: { kVA: 800, kVHigh: 11, kVLow: 0.416, rPercent: 1, xPercent: 4 },
    lineCodes: { cable: code, service: code },
    lines: [
      { id: 'l1', from: 'tx', to: 'b1', code: 'cable', lengthM: 40 },
      { id: 'l2', from: 'b1', to: 'b2', code: 'cable', lengthM: 30 },
      { id: 'l3', from: 'b2', to: 'b3', code: 'service', lengthM: 10 },
    ],
    loads: [
      { id: 'h1', bus: 'b2', phase: 'a', pKW: 2 },
      { id: 'h2', bus: 'b3', phase: 'c', pKW: 1, qKVAr: 0.3 },
    ],
    generators: [{ id: 'pv1', bus: 'b3', phase: 'b', pKW: 4 }],
    profiles: { stepMinutes: 60, multipliers: { h1: [1, 0.5] }, snapshots: { '600': { h2: 2 } } },
  };

  const named = (name: string) => ({
    ...base,
    lines: base.lines.map((l, i) => (i === 1 ? { ...l, code: name } : l)),
    loads: base.loads.map((l, i) => (i === 0 ? { ...l, id: name } : l)),
    profiles: { ...base.profiles, multipliers: {}, snapshots: { '600': { h2: 2 } } },
  });
  const build = (input: unknown) => {
    const parsed = parseWith(ThreePhaseFeederSchema, input, source);
    return { model: buildThreePhaseModel(parsed, 'in.json'), parsed };
  };

  it('mutated feeders: a model or an input error naming the field', () => {
    fc.assert(
      fc.property(mutated(base), fc.integer({ min: 0, max: 1440 }), (input, minute) => {
        const m = inputOutcome(() => build(input));
        if (m?.parsed.profiles) outcome(() => profileMultipliers(m.parsed, minute), [ErrorCode.input]);
      }),
      fuzz(),
    );
  });

  it('a line code or load id named like an Object property (toString, constructor) is not taken for one', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'),
        fc.integer({ min: 0, max: 1440 }),
        (name, minute) => {
          const r = outcome(() => build(named(name)), [ErrorCode.input]);
          expect(r.ok).toBe(false); // line l2's code is in no lineCodes entry
          if (!r.ok) expect(r.error.field).toBe('lines[1].code');
          const withCode = { ...named(name), lineCodes: { ...base.lineCodes, [name]: code } };
          const m = outcome(() => build(withCode), [ErrorCode.input]);
          if (!m.ok) return; // `__proto__` cannot be a record key of a parsed object
          for (const z of m.value.model.branchZ) expect(z.every(Number.isFinite)).toBe(true);
          for (const v of profileMultipliers(m.value.parsed, minute).values()) expect(typeof v).toBe('number');
        },
      ),
      fuzz(0.01),
    );
  });
});

describe('fuzz: `p2p-edge voltage` input (src/control/voltage/problem.ts)', () => {
  const small = {
    feeder: json('config/feeder.example.json'),
    vMinPu: 0.95,
    vMaxPu: 1.05,
    inverters: [
      { id: 'pv1', bus: 'b2', pAvailableKW: 5, qMaxKVAr: 2, qWeight: 0.1 },
      { id: 'pv2', bus: 'b4', pAvailableKW: 0, qMaxKVAr: 4, qWeight: 1, sRatedKVA: 6 },
    ],
  };
  const compile = (input: unknown) => compileVoltageProblem(parseWith(VoltageInputSchema, input, source), 'in.json');

  it('valid inputs compile with every inverter on a feeder bus', () => {
    const p = compile(small);
    expect(p.inverters.map((i) => i.bus)).toEqual(['b2', 'b4']);
    expect(compile(json('test/fixtures/voltage-lv-20pv.json')).inverters).toHaveLength(20);
  });

  it('mutated inputs: a problem or an input error naming the field', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          { weight: 9, arbitrary: mutated(small) },
          { weight: 1, arbitrary: mutated(json('test/fixtures/voltage-lv-20pv.json')) },
        ),
        (input) => {
          const p = inputOutcome(() => compile(input));
          if (!p) return;
          expect(p.vMinPu).toBeLessThan(p.vMaxPu);
          for (const inv of p.inverters) expect(p.feeder.order).toContain(inv.bus);
        },
      ),
      fuzz(),
    );
  });
});

// The error of a schema failure names its field in the message (`in.json: inverters[0].qWeight: ...`).
it('schema errors name the field in the message', () => {
  const r = outcome(() => parseWith(VoltageInputSchema, { feeder: {}, vMinPu: 'x' }, source), [ErrorCode.input]);
  expect(r.ok).toBe(false);
  if (!r.ok) assertNamesField(r.error);
});
