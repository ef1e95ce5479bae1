import { describe, expect, it } from 'vitest';
import { dualAscent, type LvInverter, settleCurves } from '../../src/control/voltage/lv-three-phase.js';
import { buildThreePhaseModel } from '../../src/grid/three-phase/feeder.js';
import { loadIeeeEuropeanLv } from '../../src/grid/three-phase/ieee-european-lv.js';
import { threePhaseSensitivities } from '../../src/grid/three-phase/sensitivities.js';
import { solveThreePhase } from '../../src/grid/three-phase/sweep.js';

// The European LV feeder at 1.00 pu, 12:30 loads, 6 kW of PV (rated 6 kVA, 0.44 reactive) on the 12
// houses at the far end of the feeder: the uncontrolled phase voltages go well above 1.05 pu.
const eulv = loadIeeeEuropeanLv();
const model = buildThreePhaseModel({ ...eulv, vSlackPu: 1.0 });
const loadMultipliers = new Map(eulv.loads.map((l) => [l.id!, eulv.profiles!.multipliers[l.id!]![50]!]));
const inverters: LvInverter[] = eulv.loads.slice(-12).map((h) => ({
  id: `pv-${h.id}`,
  bus: h.bus,
  phase: h.phase,
  pAvailableKW: 6,
  sRatedKVA: 6,
  qMaxKVAr: 2.64,
  qWeight: 0.1,
}));
const uncontrolled = solveThreePhase(model, {
  loadMultipliers,
  extraInjections: inverters.map((inv) => ({
    bus: model.busIndex.get(inv.bus)!,
    phase: ['a', 'b', 'c'].indexOf(inv.phase),
    pW: 6000,
    qVar: 0,
  })),
});
const own = (r: typeof uncontrolled) => inverters.map((inv) => r.voltagesPu[`${inv.bus}.${inv.phase}`]!);

describe('voltage control of single-phase PV on the three-phase feeder', () => {
  it('the scenario has an overvoltage to remove', () => {
    expect(Math.max(...own(uncontrolled))).toBeGreaterThan(1.07);
  });

  it('dual ascent on the three-phase sensitivities brings every inverter phase to ≤ 1.05 pu with reactive power and some curtailment', () => {
    const sens = threePhaseSensitivities(model, inverters, { operatingPoint: { loadMultipliers } });
    const r = dualAscent(model, inverters, sens, { operatingPoint: { loadMultipliers }, vMaxPu: 1.05 });
    expect(r.converged).toBe(true);
    expect(Math.max(...r.voltagePu)).toBeLessThanOrEqual(1.05 + 1e-4);
    // Some of the limit is met with reactive power (absorbed), the rest with curtailment.
    expect(Math.min(...r.qKVAr)).toBeLessThan(-0.1);
    const curtailed = inverters.reduce((a, inv, i) => a + inv.pAvailableKW - r.pKW[i]!, 0);
    expect(curtailed).toBeGreaterThan(0.5);
    expect(curtailed).toBeLessThan(0.5 * 12 * 6);
  });

  it('no overvoltage, no action: with the PV at 1 kW each the dual ascent leaves the setpoints alone', () => {
    const small = inverters.map((inv) => ({ ...inv, pAvailableKW: 1 }));
    const sens = threePhaseSensitivities(model, small, { operatingPoint: { loadMultipliers } });
    const r = dualAscent(model, small, sens, { operatingPoint: { loadMultipliers } });
    expect(r.converged).toBe(true);
    expect(r.pKW).toEqual(small.map(() => 1));
    expect(r.qKVAr).toEqual(small.map(() => 0));
  });

  it('the local Category B curves settle, absorb VArs above 1.02 pu, and leave overvoltage that a 1.06 pu volt-watt start allows', () => {
    const r = settleCurves(model, inverters, { loadMultipliers });
    expect(r.converged).toBe(true);
    r.voltagePu.forEach((v, i) => {
      if (v > 1.021) expect(r.qKVAr[i]).toBeLessThan(0);
    });
    expect(Math.max(...r.voltagePu)).toBeLessThan(Math.max(...own(uncontrolled)));
    expect(Math.max(...r.voltagePu)).toBeGreaterThan(1.05);
  });
});
