import type { FeederInput } from './feeder.js';

/**
 * The simulated cells' feeder, in the `powerflow` format a gateway receives at commissioning: a
 * 0.4 kV cable from the transformer (`tx`) past `houses` connection points `b1`…`bN`.
 */
export function demoFeeder(houses: number, segmentOhm = { r: 0.08, x: 0.03 }, vSlackPu = 1.02): FeederInput {
  return {
    name: 'simulated-cell',
    baseKV: 0.4,
    slack: 'tx',
    vSlackPu,
    buses: [],
    lines: Array.from({ length: houses }, (_, i) => ({
      from: i === 0 ? 'tx' : `b${i}`,
      to: `b${i + 1}`,
      rOhm: segmentOhm.r,
      xOhm: segmentOhm.x,
    })),
  };
}
