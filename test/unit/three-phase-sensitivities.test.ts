import { describe, expect, it } from 'vitest';
import { buildThreePhaseModel, profileMultipliers } from '../../src/grid/three-phase/feeder.js';
import { loadIeeeEuropeanLv } from '../../src/grid/three-phase/ieee-european-lv.js';
import { type BusPhase, threePhaseSensitivities } from '../../src/grid/three-phase/sensitivities.js';
import { solveThreePhase } from '../../src/grid/three-phase/sweep.js';

const eulv = loadIeeeEuropeanLv();
const model = buildThreePhaseModel(eulv);
const operatingPoint = { loadMultipliers: profileMultipliers(eulv, 566) };
// Five houses: near the transformer (LOAD1), mid-feeder and at the far ends, on all three phases.
const houses = ['LOAD1', 'LOAD8', 'LOAD25', 'LOAD45', 'LOAD53'].map((id) => eulv.loads.find((l) => l.id === id)!);
const injections: BusPhase[] = houses.map((h) => ({ bus: h.bus, phase: h.phase }));

describe('per-phase voltage sensitivities of single-phase injections (three-phase power flow, finite differences)', () => {
  const s = threePhaseSensitivities(model, injections, { operatingPoint });

  it('are keyed by bus.phase, square over the injection points, positive on the injecting phase', () => {
    expect(s.keys).toEqual(injections.map((i) => `${i.bus}.${i.phase}`));
    expect(s.observed).toEqual(s.keys);
    expect(s.dvdp).toHaveLength(5);
    for (let i = 0; i < 5; i++) {
      expect(s.dvdp[i]![i]).toBeGreaterThan(0);
      expect(s.dvdq[i]![i]).toBeGreaterThan(0);
      // LV cables: R ≫ X, so active power moves the voltage more than reactive power (least so next to the
      // transformer, whose impedance is mostly reactance).
      expect(s.dvdp[i]![i]).toBeGreaterThan(2 * s.dvdq[i]![i]!);
    }
    // The far end (LOAD53) is more sensitive than the house next to the transformer (LOAD1).
    expect(s.dvdp[4]![4]).toBeGreaterThan(5 * s.dvdp[0]![0]!);
  });

  it('predict the voltage change of a 3 kW PV injection to within 3 % of the re-solved power flow', () => {
    const base = solveThreePhase(model, operatingPoint);
    const pv = houses[3]!;
    const after = solveThreePhase(model, {
      ...operatingPoint,
      extraInjections: [
        { bus: model.busIndex.get(pv.bus)!, phase: ['a', 'b', 'c'].indexOf(pv.phase), pW: 3000, qVar: 0 },
      ],
    });
    s.observed.forEach((key, k) => {
      const actual = after.voltagesPu[key]! - base.voltagesPu[key]!;
      const predicted = s.dvdp[k]![3]! * 3;
      expect(Math.abs(predicted - actual)).toBeLessThan(0.03 * Math.abs(actual) + 1e-6);
    });
  });

  it('see the other phases: an injection on one phase moves the voltages of the two others at the same bus', () => {
    const pv = houses[4]!;
    const others = (['a', 'b', 'c'] as const).filter((p) => p !== pv.phase).map((phase) => ({ bus: pv.bus, phase }));
    const cross = threePhaseSensitivities(model, [{ bus: pv.bus, phase: pv.phase }], {
      operatingPoint,
      observe: [{ bus: pv.bus, phase: pv.phase }, ...others],
    });
    expect(cross.dvdp).toHaveLength(3);
    expect(Math.abs(cross.dvdp[1]![0]!)).toBeGreaterThan(0.05 * cross.dvdp[0]![0]!);
    expect(Math.abs(cross.dvdp[2]![0]!)).toBeGreaterThan(0.05 * cross.dvdp[0]![0]!);
  });

  it('name an unknown bus-phase', () => {
    expect(() => threePhaseSensitivities(model, [{ bus: 'nowhere', phase: 'a' }])).toThrow(/nowhere\.a/);
  });
});
