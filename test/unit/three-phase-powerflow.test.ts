import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { P2PError } from '../../src/core/errors.js';
import { buildRadialFeeder, FeederSchema } from '../../src/grid/feeder.js';
import { solvePowerFlow } from '../../src/grid/sweep.js';
import {
  abs,
  add,
  complex,
  div,
  mat3Get,
  mul,
  phaseMatrixFromSequence,
  scale,
  sub,
} from '../../src/grid/three-phase/complex.js';
import {
  buildThreePhaseModel,
  profileMultipliers,
  type ThreePhaseFeederInput,
  ThreePhaseFeederSchema,
} from '../../src/grid/three-phase/feeder.js';
import { IEEE_EUROPEAN_LV_FILE, loadIeeeEuropeanLv } from '../../src/grid/three-phase/ieee-european-lv.js';
import { solveThreePhase } from '../../src/grid/three-phase/sweep.js';
import { solveDay } from '../../src/grid/three-phase/time-series.js';
import { runCli, tempDir } from '../helpers/net.js';

const DATA = join(import.meta.dirname, '..', '..', 'src', 'grid', 'data');
const tmp = tempDir();
afterAll(() => tmp.remove());
const eulv = loadIeeeEuropeanLv();

const twoBus = (extra: Partial<ThreePhaseFeederInput> = {}): ThreePhaseFeederInput =>
  ThreePhaseFeederSchema.parse({
    phases: 3,
    baseKV: 0.4,
    slack: 'tx',
    lineCodes: { cable: { r1OhmPerKm: 0.2, x1OhmPerKm: 0.08, r0OhmPerKm: 0.8, x0OhmPerKm: 0.3 } },
    lines: [{ id: 'L1', from: 'tx', to: 'house', code: 'cable', lengthM: 200 }],
    loads: [{ id: 'load', bus: 'house', phase: 'a', pKW: 5, qKVAr: 1 }],
    ...extra,
  });

describe('phase impedance matrices from sequence impedances', () => {
  it('Zs = (2·Z1 + Z0)/3 on the diagonal, Zm = (Z0 − Z1)/3 off it', () => {
    const m = phaseMatrixFromSequence(complex(0.2, 0.08), complex(0.8, 0.3));
    expect(mat3Get(m, 0, 0).re).toBeCloseTo(0.4, 12);
    expect(mat3Get(m, 1, 1).im).toBeCloseTo(0.46 / 3, 12);
    expect(mat3Get(m, 0, 2).re).toBeCloseTo(0.2, 12);
    expect(mat3Get(m, 2, 1).im).toBeCloseTo(0.22 / 3, 12);
  });
});

describe('three-phase unbalanced backward/forward sweep', () => {
  it('a single-phase load: its phase drops by Zs·I, the unloaded phases move by Zm·I (neutral shift)', () => {
    const model = buildThreePhaseModel(twoBus());
    const r = solveThreePhase(model);
    expect(r.converged).toBe(true);
    expect(r.maxMismatchPu).toBeLessThanOrEqual(1e-9);
    const v = r.sweep.voltage;
    const at = (bus: number, p: number) => complex(v[6 * bus + 2 * p]!, v[6 * bus + 2 * p + 1]!);
    // The load current from the converged voltage, I = conj(S / Va).
    const va = at(1, 0);
    const s = complex(5000, 1000);
    const d = va.re ** 2 + va.im ** 2;
    const current = complex((s.re * va.re + s.im * va.im) / d, (s.re * va.im - s.im * va.re) / d);
    const z = model.branchZ[1]!;
    for (const p of [0, 1, 2]) {
      const expected = sub(at(0, p), mul(mat3Get(z, p, 0), current));
      expect(at(1, p).re).toBeCloseTo(expected.re, 6);
      expect(at(1, p).im).toBeCloseTo(expected.im, 6);
    }
    // 5 kW + 1 kVAr on phase a over 200 m: ΔV ≈ (Re Zs·P + Im Zs·Q)/V = (0.08·5000 + 0.0307·1000)/230.9 = 1.87 V
    // (0.81 %); the other two phases, pulled by the mutual impedance, no longer equal each other.
    expect(r.voltagesPu['house.a']).toBeGreaterThan(0.991);
    expect(r.voltagesPu['house.a']).toBeLessThan(0.993);
    expect(Math.abs(r.voltagesPu['house.b']! - r.voltagesPu['house.c']!)).toBeGreaterThan(1e-3);
    expect(r.maxUnbalance.bus).toBe('house');
  });

  it('PV export on one phase raises that phase above the source (the LV overvoltage mechanism)', () => {
    const model = buildThreePhaseModel(
      twoBus({ loads: [], generators: [{ id: 'pv', bus: 'house', phase: 'b', pKW: 8, qKVAr: 0 }] }),
    );
    const r = solveThreePhase(model);
    expect(r.converged).toBe(true);
    // Linear estimate: ΔV ≈ Re(Zs)·P / V = (2·0.2 + 0.8)/3 Ω/km × 0.2 km × 8000 W / 230.9 V = 2.77 V = 1.2 %.
    expect(r.voltagesPu['house.b']).toBeGreaterThan(1.011);
    expect(r.voltagesPu['house.b']).toBeLessThan(1.013);
    expect(r.supplyKW[1]).toBeLessThan(-7.5);
  });

  it('a Dyn transformer: a single-phase load draws zero-sequence current through the transformer only', () => {
    // 11/0.4 kV, 400 kVA, 4 % reactance, no line: the LV bus drops by Zs·I on the loaded phase and
    // moves by Zm·I on the others; with Z0 = Z1 (the default) Zm = 0 and only the loaded phase moves.
    const model = buildThreePhaseModel(
      twoBus({
        transformer: { id: 't', connection: 'Dyn', kVA: 400, kVHigh: 11, kVLow: 0.4, rPercent: 1, xPercent: 4 },
        loads: [{ id: 'load', bus: 'tx', phase: 'c', pKW: 20, qKVAr: 0 }],
      }),
    );
    const r = solveThreePhase(model);
    expect(r.converged).toBe(true);
    // ΔV ≈ R·P/V = (1 % × 0.4² / 0.4 Ω) × 20 kW / 230.9 V = 0.0040 × 86.6 A = 0.35 V = 0.15 %.
    expect(1 - r.voltagesPu['tx.c']!).toBeGreaterThan(0.0014);
    expect(1 - r.voltagesPu['tx.c']!).toBeLessThan(0.0016);
    expect(r.voltagesPu['tx.a']).toBeCloseTo(1, 4);
    expect(r.voltagesPu['tx.b']).toBeCloseTo(1, 4);
    // Its losses are the transformer's: I²·R = 86.6² × 0.004 = 30 W.
    expect(r.transformerLossesKW).toBeCloseTo(0.03, 3);
  });

  it('a load beyond what the feeder can carry is reported as not converged, not as a wrong answer', () => {
    const model = buildThreePhaseModel(
      twoBus({ loads: [{ id: 'load', bus: 'house', phase: 'a', pKW: 5000, qKVAr: 0 }] }),
    );
    const r = solveThreePhase(model);
    expect(r.converged).toBe(false);
    expect(r.iterations).toBe(100);
    expect(r.maxMismatchPu).toBeGreaterThan(1e-3);
  });

  it('balanced loads: every phase equals the balanced (positive-sequence) power flow on the same feeder', () => {
    // The European LV topology with 2 kW + 0.5 kVAr on each phase of the 55 load buses and the supply
    // (source + transformer) as one more line: a three-phase solver must reduce to the balanced one.
    const model = buildThreePhaseModel({
      ...eulv,
      loads: eulv.loads.flatMap((l) =>
        (['a', 'b', 'c'] as const).map((phase) => ({ id: `${l.id}${phase}`, bus: l.bus, phase, pKW: 2, qKVAr: 0.5 })),
      ),
      loadModel: { type: 'constant-power' },
      profiles: undefined,
    });
    const three = solveThreePhase(model);
    const supply = mat3Get(model.supplyZ!, 0, 0);
    const supplyMutual = mat3Get(model.supplyZ!, 0, 1);
    const balanced = solvePowerFlow(
      buildRadialFeeder(
        FeederSchema.parse({
          baseKV: eulv.baseKV,
          slack: 'mv',
          vSlackPu: eulv.vSlackPu,
          buses: model.buses.map((id) => {
            const loaded = eulv.loads.some((l) => l.bus === id);
            return { id, pKW: loaded ? 6 : 0, qKVAr: loaded ? 1.5 : 0 };
          }),
          lines: [
            { from: 'mv', to: eulv.slack, rOhm: supply.re - supplyMutual.re, xOhm: supply.im - supplyMutual.im },
            ...eulv.lines.map((l) => {
              const c = eulv.lineCodes[l.code]!;
              return {
                from: l.from,
                to: l.to,
                rOhm: (c.r1OhmPerKm * l.lengthM) / 1000,
                xOhm: (c.x1OhmPerKm * l.lengthM) / 1000,
              };
            }),
          ],
        }),
      ),
    );
    let worst = 0;
    for (const bus of model.buses)
      for (const p of ['a', 'b', 'c'])
        worst = Math.max(worst, Math.abs(three.voltagesPu[`${bus}.${p}`]! - balanced.voltagesPu[bus]!));
    expect(worst).toBeLessThan(1e-8);
    expect(three.maxUnbalance.pct).toBeLessThan(1e-6);
    // What enters the feeder at the transformer's LV bus: the three phases together = the balanced flow.
    const intoFeeder = balanced.lineFlows.filter((f) => f.from === eulv.slack).reduce((a, f) => a + f.pKW, 0);
    expect(three.supplyKW[0] + three.supplyKW[1] + three.supplyKW[2]).toBeCloseTo(intoFeeder, 6);
  });
});

describe('IEEE European LV Test Feeder (906 buses, 55 single-phase loads)', () => {
  const model = buildThreePhaseModel(eulv);

  it('ships the published feeder: 906 buses, 905 lines, 55 loads, 0.8 MVA 11/0.416 kV Dyn at 1.05 pu', () => {
    expect(model.buses.length).toBe(906);
    expect(model.lineCount).toBe(905);
    expect(model.loads.length).toBe(55);
    expect(eulv.transformer).toMatchObject({ kVA: 800, kVHigh: 11, kVLow: 0.416, connection: 'Dyn', xPercent: 4 });
    expect(eulv.vSlackPu).toBe(1.05);
    const perPhase = { a: 0, b: 0, c: 0 };
    for (const l of eulv.loads) perPhase[l.phase]++;
    expect(perPhase).toEqual({ a: 21, b: 19, c: 15 });
  });

  for (const minute of [1, 566, 1440]) {
    it(`minute ${minute}: converges to ≤ 1e-6 pu mismatch and balances power (supply = loads + losses)`, () => {
      const multipliers = profileMultipliers(eulv, minute);
      const r = solveThreePhase(model, { loadMultipliers: multipliers });
      expect(r.converged).toBe(true);
      expect(r.maxMismatchPu).toBeLessThanOrEqual(1e-6);
      // OpenDSS load model 1: the loads above 1.05 × 230 V draw (V / 241.5 V)² of their rated power.
      let loadKW = 0;
      for (const l of eulv.loads) {
        const vV = r.voltagesPu[`${l.bus}.${l.phase}`]! * model.vBaseV;
        const scale = vV > 241.5 ? (vV / 241.5) ** 2 : vV < 218.5 ? (vV / 218.5) ** 2 : 1;
        loadKW += l.pKW * (multipliers.get(l.id!) ?? 1) * scale;
      }
      const supplied = r.supplyKW[0] + r.supplyKW[1] + r.supplyKW[2];
      expect(supplied).toBeCloseTo(loadKW + r.lossesKW - r.transformerLossesKW, 4);
      expect(r.minVoltage.pu).toBeGreaterThan(0.95);
      expect(r.maxVoltage.pu).toBeLessThan(1.07);
    });
  }

  it('through the day (96 quarter-hours): the lowest voltage falls in the quarter-hour of the published on-peak minute 566', () => {
    const d = solveDay(eulv, model);
    expect(d.steps).toHaveLength(96);
    expect(d.allConverged).toBe(true);
    expect(d.minVoltage.minute).toBe(555); // 09:15–09:30
    expect(d.maxUnbalance.minute).toBe(555);
    expect(d.hoursBelowPu['0.95']).toBe(0);
    expect(d.lossesKWh).toBeCloseTo(
      d.steps.reduce((a, s) => a + s.lossesKW / 4, 0),
      9,
    );
  });

  it('the on-peak minute 566 is unbalanced: phase b (the most loaded) sags most, neutral shift lifts phase c', () => {
    const r = solveThreePhase(model, { loadMultipliers: profileMultipliers(eulv, 566) });
    // The first line carries everything the supply delivers; its neutral carries the unbalance.
    const first = r.lineCurrentsA[0]!;
    expect(first).toMatchObject({ id: 'LINE1', from: '1', to: '2' });
    const supplyA = r.supplyKW.map(
      (p, k) => (Math.hypot(p, r.supplyKVAr[k]!) * 1000) / (r.voltagesPu[`1.${'abc'[k]}`]! * model.vBaseV),
    );
    expect(first.a).toBeCloseTo(supplyA[0]!, 6);
    expect(first.b).toBeCloseTo(supplyA[1]!, 6);
    expect(first.c).toBeCloseTo(supplyA[2]!, 6);
    expect(first.neutral).toBeGreaterThan(0.3 * first.b);
    expect(r.lineCurrentsA).toHaveLength(905);
    expect(r.supplyKW[1]).toBeGreaterThan(r.supplyKW[0]);
    expect(r.supplyKW[0]).toBeGreaterThan(r.supplyKW[2]);
    expect(r.minVoltage.key.endsWith('.b')).toBe(true);
    expect(r.maxVoltage.key.endsWith('.c')).toBe(true);
    expect(r.maxVoltage.pu).toBeGreaterThan(eulv.vSlackPu);
    expect(r.maxUnbalance.pct).toBeGreaterThan(0.5);
  });
});

// Measured max |ΔV| against pandapower with its own parameters: 2.3e-7 (minute 1), 6.8e-6 (566),
// 2.3e-6 pu (1440); with the OpenDSS parameters at the 165 load bus-phases: 0.034 %, 0.78 %, 0.11 %.
describe.each([1, 566, 1440] as const)(
  'IEEE European LV at minute %i against pandapower runpp_3ph (an independent three-phase solver)',
  (minute) => {
    // pandapower's copy of the feeder stores its runpp_3ph result (test/fixtures, from
    // bench/extract-pandapower-eulv-reference.ts). Its model differs from the OpenDSS files in a few
    // parameters: a 10 GVA source (R/X 0.1) instead of 3000 A at 11 kV, constant-power loads whose kvar
    // on phases b and c are 1000 times too small, and a Dyn transformer with a zero-sequence T model.
    const ref = JSON.parse(
      readFileSync(join(import.meta.dirname, '..', 'fixtures', `ieee-european-lv-pandapower-${minute}.json`), 'utf8'),
    ) as {
      model: {
        extGrid: { vmPu: number; sScMaxMVA: number; rxMax: number };
        trafo: {
          vkPercent: number;
          vkrPercent: number;
          vk0Percent: number;
          vkr0Percent: number;
          si0HvPartial: number;
          mag0Percent: number;
        };
      };
      loads: ThreePhaseFeederInput['loads'];
      voltagesPu: Record<string, [number, number, number]>;
    };
    const compare = (voltagesPu: Record<string, number>, buses: readonly string[]) => {
      let max = 0;
      let sum = 0;
      for (const bus of buses)
        ['a', 'b', 'c'].forEach((p, k) => {
          const e = Math.abs(voltagesPu[`${bus}.${p}`]! - ref.voltagesPu[bus]![k]!);
          max = Math.max(max, e);
          sum += e;
        });
      return { max, mean: sum / (3 * buses.length) };
    };

    it("with pandapower's parameters: every one of the 2718 bus-phase voltages within 1e-4 pu", () => {
      const t = ref.model.trafo;
      const xk = Math.sqrt(t.vkPercent ** 2 - t.vkrPercent ** 2);
      // pandapower (pd2ppc_zero.py), Dyn T model: HV part si0·Zk0, LV part (1 − si0)·Zk0, magnetising
      // branch j·|Zk0|·mag0; the LV side sees Y0 = 1/Zc + 1/Zb of its star-delta (pi) equivalent.
      const zk0 = complex(t.vkr0Percent, Math.sqrt(t.vk0Percent ** 2 - t.vkr0Percent ** 2));
      const z1 = scale(zk0, t.si0HvPartial);
      const z2 = scale(zk0, 1 - t.si0HvPartial);
      const z3 = complex(0, abs(zk0) * t.mag0Percent);
      const zt = add(add(mul(z1, z2), mul(z2, z3)), mul(z1, z3));
      const z0 = div(complex(1), add(div(z3, zt), div(z1, zt)));
      const model = buildThreePhaseModel({
        ...eulv,
        vSlackPu: ref.model.extGrid.vmPu,
        source: {
          iscThreePhaseA: (ref.model.extGrid.sScMaxMVA * 1e6) / (Math.sqrt(3) * 11_000),
          x1OverR1: 1 / ref.model.extGrid.rxMax,
        },
        transformer: { ...eulv.transformer!, rPercent: t.vkrPercent, xPercent: xk, r0Percent: z0.re, x0Percent: z0.im },
        loads: ref.loads,
        loadModel: { type: 'constant-power' },
      });
      const r = solveThreePhase(model);
      const { max, mean } = compare(r.voltagesPu, model.buses);
      expect(max).toBeLessThan(1e-4);
      expect(mean).toBeLessThan(2e-5);
    });

    it('with the OpenDSS parameters as shipped: within 1 % of pandapower at every load (pandapower vs OpenDSS: 0.74 %)', () => {
      const r = solveThreePhase(buildThreePhaseModel(eulv), { loadMultipliers: profileMultipliers(eulv, minute) });
      const { max, mean } = compare(
        r.voltagesPu,
        eulv.loads.map((l) => l.bus),
      );
      expect(max).toBeLessThan(0.01);
      expect(mean).toBeLessThan(0.005);
    });
  },
);

describe('three-phase feeder validation names the element at fault', () => {
  const error = (input: unknown): P2PError => {
    try {
      buildThreePhaseModel(ThreePhaseFeederSchema.parse(input));
    } catch (err) {
      return err as P2PError;
    }
    throw new Error('feeder accepted');
  };
  const base = twoBus();
  it('a loop', () => {
    const e = error({
      ...base,
      lines: [
        ...base.lines,
        { id: 'L2', from: 'house', to: 'shed', code: 'cable', lengthM: 5 },
        { id: 'L3', from: 'shed', to: 'tx', code: 'cable', lengthM: 5 },
      ],
    });
    expect(e.message).toMatch(/L[23] closes a loop/);
  });
  it('a load on a bus no line reaches', () => {
    const e = error({ ...base, loads: [{ bus: 'nowhere', phase: 'a', pKW: 1 }] });
    expect(e.field).toBe('loads[0].bus');
  });
  it('an unknown line code', () => {
    expect(error({ ...base, lines: [{ ...base.lines[0], code: 'copper' }] }).message).toMatch(
      /L1: unknown line code "copper"/,
    );
  });
  it('an id used twice, a profile for a load that does not exist', () => {
    expect(error({ ...base, loads: [...base.loads, { ...base.loads[0]!, bus: 'tx' }] }).field).toBe('loads[1].id');
    expect(error({ ...base, lines: [...base.lines, { ...base.lines[0]!, from: 'house', to: 'shed' }] }).field).toBe(
      'lines[1].id',
    );
    const profiles = { stepMinutes: 60, multipliers: { load: [1], ghost: [1] }, snapshots: {} };
    expect(error({ ...base, profiles }).field).toBe('profiles.multipliers.ghost');
  });
  it('a non-positive impedance or an unknown phase is rejected by the schema, naming the field', () => {
    const bad = ThreePhaseFeederSchema.safeParse({
      ...base,
      lineCodes: { cable: { ...base.lineCodes.cable, r1OhmPerKm: 0 } },
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['lineCodes', 'cable', 'r1OhmPerKm']);
    const phase = ThreePhaseFeederSchema.safeParse({ ...base, loads: [{ bus: 'house', phase: 'd', pKW: 1 }] });
    expect(phase.error?.issues[0]?.path).toEqual(['loads', 0, 'phase']);
  });

  it('through the CLI: "phases": 3 solves per phase, bad input exits 2 naming file and field', async () => {
    const good = await runCli(['powerflow', '--feeder', IEEE_EUROPEAN_LV_FILE, '--minute', '566', '--json']);
    expect(good.code).toBe(0);
    const out = JSON.parse(good.stdout);
    expect(out).toMatchObject({ phases: 3, converged: true, minute: 566 });
    expect(Object.keys(out.voltagesPu)).toHaveLength(906 * 3);
    expect(out.voltagesPu['1.a']).toBeGreaterThan(1.04);
    const file = join(tmp.dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ ...base, lines: [{ ...base.lines[0], lengthM: -3 }] }));
    const bad = await runCli(['powerflow', '--feeder', file, '--json']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${file}: lines[0].lengthM`);
    const lateMinute = await runCli(['powerflow', '--feeder', IEEE_EUROPEAN_LV_FILE, '--minute', '1441']);
    expect(lateMinute.code).toBe(2);
    expect(lateMinute.stderr).toMatch(/minute 1441/);
    const balancedDay = await runCli(['powerflow', '--feeder', join(DATA, 'feeder-baran-wu-33.json'), '--day']);
    expect(balancedDay.code).toBe(2);
    expect(balancedDay.stderr).toMatch(/--day needs a three-phase feeder/);
  });
});
