import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadVoltageInstance } from '../../bench/reference/voltage-fixtures.js';
import { assignWatchedBuses, runVoltageControl } from '../../src/control/voltage/control-loop.js';
import { MultiplierAscent } from '../../src/control/voltage/dual-ascent.js';
import { compileVoltageProblem, VoltageInputSchema } from '../../src/control/voltage/problem.js';
import { curveSetpoint, piecewise, tightestCurveShift, VOLT_VAR_CAT_B } from '../../src/control/voltage/volt-var.js';
import { estimateSensitivity, feederSensitivities } from '../../src/grid/sensitivity.js';
import { solvePowerFlow } from '../../src/grid/sweep.js';
import { runCli, tempDir } from '../helpers/net.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const input = JSON.parse(readFileSync(join(FIXTURES, 'voltage-lv-20pv.json'), 'utf8'));
const optimum = JSON.parse(readFileSync(join(FIXTURES, 'voltage-lv-20pv.optimum.json'), 'utf8')) as {
  optimalCost: number;
};
const problem = () => compileVoltageProblem(VoltageInputSchema.parse(input));
/** The agents aim at the limit itself; beyond it by more than this is a violation (0.023 V at 230 V). */
const VIOLATION_PU = 1e-4;
const tmp = tempDir();
afterAll(() => tmp.remove());

describe('sensitivities', () => {
  it('LinDistFlow dV/dP matches a finite difference of the power flow', () => {
    const p = problem();
    const buses = p.inverters.slice(0, 4).map((i) => i.bus);
    const s = feederSensitivities(p.feeder, buses);
    const base = solvePowerFlow(p.feeder).voltagesPu;
    const bumped = solvePowerFlow(p.feeder, { extraKW: new Map([[buses[1]!, -1]]) }).voltagesPu;
    for (let k = 0; k < buses.length; k++) {
      const fd = bumped[buses[k]!]! - base[buses[k]!]!;
      expect(Math.abs(fd - s.dvdp[k]![1]!)).toBeLessThan(0.1 * Math.abs(fd) + 1e-7);
    }
  });

  it('an agent estimates its own sensitivities from its own perturbations (least squares)', () => {
    const truth = { dvdp: 6e-4, dvdq: 2e-4 };
    const samples = [
      [1, 0],
      [0, 1],
      [2, -1],
      [-1, 2],
    ].map(([dp, dq]) => ({ dPkW: dp!, dQkVAr: dq!, dVpu: truth.dvdp * dp! + truth.dvdq * dq! }));
    const e = estimateSensitivity(samples);
    expect(e.dvdp).toBeCloseTo(truth.dvdp, 10);
    expect(e.dvdq).toBeCloseTo(truth.dvdq, 10);
  });
});

describe('IEEE 1547-2018 Category B curves', () => {
  it('volt-var: no reactive power in the 0.98–1.02 dead band, −44 % of rating at 1.08 pu', () => {
    expect(piecewise(VOLT_VAR_CAT_B, 1.0)).toBe(0);
    expect(piecewise(VOLT_VAR_CAT_B, 1.08)).toBeCloseTo(-0.44, 12);
    expect(piecewise(VOLT_VAR_CAT_B, 1.05)).toBeCloseTo(-0.22, 12);
    expect(piecewise(VOLT_VAR_CAT_B, 0.9)).toBeCloseTo(0.44, 12);
  });
  it('volt-watt: full power to 1.06 pu, half at 1.08, none at 1.10 (rating = max(pAvailable, qMax / 0.44))', () => {
    const inv = { id: 'x', bus: 'b', pAvailableKW: 10, qMaxKVAr: 4.4, qWeight: 1 };
    expect(curveSetpoint(inv, 1.06)[0]).toBeCloseTo(10, 9);
    expect(curveSetpoint(inv, 1.08)[0]).toBeCloseTo(5, 9);
    expect(curveSetpoint(inv, 1.11)[0]).toBe(0);
  });
  it('within a kVA rating, reactive power has priority over active power', () => {
    const inv = { id: 'x', bus: 'b', pAvailableKW: 10, qMaxKVAr: 4.4, qWeight: 1, sRatedKVA: 10 };
    const [p, q] = curveSetpoint(inv, 1.06); // volt-var asks −0.44 × 10 × (1.06 − 1.02)/0.06 = −2.933 kVAr
    expect(q).toBeCloseTo(-2.9333, 4);
    expect(p).toBeCloseTo(Math.sqrt(100 - q * q), 9);
  });
});

describe('distributed voltage control (dual decomposition with push-sum)', () => {
  it('removes the midday overvoltage of the LV example within 5 % of the centralised optimum', () => {
    const r = runVoltageControl(problem(), { method: 'dual', seed: 1 });
    expect(r.converged).toBe(true);
    expect(r.maxVoltagePu).toBeLessThanOrEqual(input.vMaxPu + VIOLATION_PU);
    expect(r.cost / optimum.optimalCost).toBeLessThanOrEqual(1.05);
    expect(r.rounds).toBeGreaterThan(0);
    expect(r.messages).toBe(r.rounds * input.inverters.length);
  });

  it("the accelerated ascent (default) stops within 1 % of the independent optimum in a tenth of the plain ascent's rounds", () => {
    const accelerated = runVoltageControl(problem(), { method: 'dual', seed: 1 });
    const plain = runVoltageControl(problem(), { method: 'dual-plain', seed: 1 });
    expect(accelerated.converged).toBe(true);
    expect(accelerated.cost / optimum.optimalCost).toBeLessThan(1.01);
    expect(accelerated.maxVoltagePu).toBeLessThanOrEqual(input.vMaxPu + VIOLATION_PU);
    expect(accelerated.rounds * 10).toBeLessThan(plain.rounds);
  });

  it('the accelerated ascent meets the 33-bus evening within its limits at its independent optimum', () => {
    const instance = loadVoltageInstance('voltage/voltage-33bus-evening');
    const p = compileVoltageProblem(instance.input);
    const best = instance.optimum.optimalCost;
    const r = runVoltageControl(p, { method: 'dual', seed: 1 });
    expect(r.converged).toBe(true);
    expect(r.minVoltagePu).toBeGreaterThanOrEqual(p.vMinPu - VIOLATION_PU);
    expect(r.cost / best).toBeLessThan(1.01);
  });

  it('a multiplier on its own: the accelerated ascent reaches its optimum in fewer steps, the secant lengthens a short step, a reset drops the momentum', () => {
    // One limit whose excess falls by 0.5 per unit of multiplier: the optimum is at μ = 2 (excess 1 at μ = 0).
    const excessAt = (mu: number) => 1 - 0.5 * mu;
    const stepsTo = (m: MultiplierAscent) => {
      for (let k = 1; k <= 2000; k++) {
        m.step(excessAt(m.lookahead));
        if (Math.abs(m.value - 2) < 1e-6) return k;
      }
      return Number.POSITIVE_INFINITY;
    };
    const plain = stepsTo(new MultiplierAscent(0.1, 'plain'));
    const accelerated = stepsTo(new MultiplierAscent(0.1));
    expect(plain).toBeLessThan(2000);
    expect(accelerated).toBeLessThan(plain / 3);
    // A tiny step: the secant lengthens it (here to its cap), without the secant it stays short.
    const withSecant = new MultiplierAscent(0.001);
    const withoutSecant = new MultiplierAscent(0.001, 'accelerated', 1);
    for (let k = 0; k < 5; k++) {
      withSecant.step(excessAt(withSecant.lookahead));
      withoutSecant.step(excessAt(withoutSecant.lookahead));
    }
    expect(withSecant.value).toBeGreaterThan(3 * withoutSecant.value);
    const m = new MultiplierAscent(0.1);
    for (let k = 0; k < 200; k++) m.step(excessAt(m.lookahead));
    expect(m.value).toBeCloseTo(2, 6);
    m.reset(-3);
    expect(m.value).toBe(0);
    expect(m.lookahead).toBe(0);
  });

  it('volt-var / volt-watt alone leaves the overvoltage (the baseline the distributed control improves on)', () => {
    const r = runVoltageControl(problem(), { method: 'volt-var' });
    expect(r.maxVoltagePu).toBeGreaterThan(input.vMaxPu + 0.005);
  });

  it('curtails less than local curves moved down until they too keep every bus within limits', () => {
    const p = problem();
    const shift = tightestCurveShift(p);
    expect(shift).toBeGreaterThan(0);
    const local = runVoltageControl(p, { method: 'volt-var', curveShiftPu: shift! });
    expect(local.maxVoltagePu).toBeLessThanOrEqual(input.vMaxPu);
    const dual = runVoltageControl(p, { method: 'dual', seed: 1 });
    expect(dual.curtailedKW).toBeLessThan(local.curtailedKW);
    expect(dual.cost).toBeLessThan(local.cost);
  });

  it('stays within limits when 20 % of the agents drop out mid-run', () => {
    const r = runVoltageControl(problem(), { method: 'dual', dropoutFraction: 0.2, dropoutAtStep: 100, seed: 4 });
    expect(r.maxVoltagePu).toBeLessThanOrEqual(input.vMaxPu + VIOLATION_PU);
  });

  it('every bus is watched: the one at the far end without an inverter goes to the nearest agent', () => {
    const p = problem();
    const { buses, owner } = assignWatchedBuses(p);
    expect(buses).toHaveLength(p.feeder.order.length - 1);
    buses.forEach((bus, k) => {
      const own = p.inverters.findIndex((inv) => inv.bus === bus);
      if (own >= 0) expect(owner[k]).toBe(own);
    });
    // A bus without an inverter is watched by an agent downstream of or next to it on the same branch.
    const inverterBuses = new Set(p.inverters.map((inv) => inv.bus));
    const unwatched = buses.findIndex((b) => !inverterBuses.has(b));
    expect(unwatched).toBeGreaterThanOrEqual(0);
    expect(owner[unwatched]).toBeGreaterThanOrEqual(0);
  });

  it('evening peak: lifts the undervoltage at buses without an inverter with reactive power alone', () => {
    // The example's evening: loads × 6, no PV (bench/reference/voltage-instances.ts writes it).
    const evening = loadVoltageInstance('voltage/voltage-lv-20pv-evening').input;
    const p = compileVoltageProblem(evening);
    const uncontrolled = runVoltageControl(p, { method: 'dual', rounds: 0 });
    expect(uncontrolled.minVoltagePu).toBeLessThan(evening.vMinPu - 0.005);
    const r = runVoltageControl(p, { method: 'dual', seed: 2 });
    expect(r.converged).toBe(true);
    expect(r.minVoltagePu).toBeGreaterThanOrEqual(evening.vMinPu);
    expect(r.curtailedKW).toBe(0);
  });

  it('through the CLI: contract output; a bad inverter bus exits 2 naming it', async () => {
    const ok = await runCli(['voltage', '--input', join(FIXTURES, 'voltage-lv-20pv.json'), '--json']);
    expect(ok.code).toBe(0);
    const out = JSON.parse(ok.stdout);
    for (const key of ['converged', 'setpoints', 'rounds', 'messages', 'maxVoltagePu', 'minVoltagePu', 'cost'])
      expect(out).toHaveProperty(key);
    expect(Object.keys(out.setpoints)).toHaveLength(input.inverters.length);
    const bad = join(tmp.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...input, inverters: [{ ...input.inverters[0], bus: 'nowhere' }] }));
    const r = await runCli(['voltage', '--input', bad, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/inverters\[0\]\.bus: bus "nowhere" is not in the feeder/);
  });
});
