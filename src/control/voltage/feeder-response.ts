import { solvePowerFlow } from '../../grid/sweep.js';
import type { VoltageProblem } from './problem.js';

/** Bus voltages (pu) with each inverter injecting its (p, q): the power flow standing in for the feeder. */
export function voltagesWithSetpoints(
  problem: VoltageProblem,
  p: readonly number[],
  q: readonly number[],
): Record<string, number> {
  const extraKW = new Map<string, number>();
  const extraKVAr = new Map<string, number>();
  problem.inverters.forEach((inv, i) => {
    extraKW.set(inv.bus, (extraKW.get(inv.bus) ?? 0) - p[i]!);
    extraKVAr.set(inv.bus, (extraKVAr.get(inv.bus) ?? 0) - q[i]!);
  });
  return solvePowerFlow(problem.feeder, { extraKW, extraKVAr }).voltagesPu;
}
