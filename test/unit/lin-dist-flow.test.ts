import { describe, expect, it } from 'vitest';
import { buildRadialFeeder, FeederSchema } from '../../src/grid/feeder.js';
import { LinDistFlowFeeder } from '../../src/grid/lin-dist-flow.js';
import { householdShape, pvShape } from '../../src/sim/profiles.js';

describe('LinDistFlowFeeder', () => {
  const feeder = () =>
    new LinDistFlowFeeder(
      buildRadialFeeder(
        FeederSchema.parse({
          baseKV: 0.4,
          slack: 'tx',
          lines: [
            { from: 'b1', to: 'b2', rOhm: 0.1, xOhm: 0.05 },
            { from: 'b1', to: 'tx', rOhm: 0.1, xOhm: 0.05 },
          ],
        }),
      ),
    );

  it('drops voltage by (rP + xQ)/V² along the path, in any line order and direction', () => {
    // 0.4 kV: V² = 160000 V², so 10 kW through 0.1 ohm drops 1000/160000 = 0.00625 pu per segment.
    const v = feeder().solve(new Map([['b2', 10_000]]));
    expect(v.get('b1')).toBeCloseTo(1 - 0.00625, 9);
    expect(v.get('b2')).toBeCloseTo(1 - 0.0125, 9);
  });

  it('raises voltage under reverse flow (PV export) and counts reactive power', () => {
    const v = feeder().solve(new Map([['b2', -10_000]]), new Map([['b2', 4000]]));
    // per segment: (0.1 * -10000 + 0.05 * 4000) / 160000 = -0.005
    expect(v.get('b2')).toBeCloseTo(1.01, 9);
  });
});

describe('profiles', () => {
  it('PV is zero at night and peaks at solar noon', () => {
    expect(pvShape(3)).toBe(0);
    expect(pvShape(13)).toBeCloseTo(1, 9);
    expect(pvShape(10)).toBeLessThan(pvShape(12));
  });

  it('household load peaks in the evening', () => {
    expect(householdShape(19.5)).toBeGreaterThan(householdShape(13));
    expect(householdShape(3)).toBeGreaterThan(0);
  });
});
