import { describe, expect, it } from 'vitest';
import { loadVoltageInstance, VOLTAGE_INSTANCES, type VoltageOptimum } from '../../bench/reference/voltage-fixtures.js';
import { voltagesWithSetpoints } from '../../src/control/voltage/feeder-response.js';
import { compileVoltageProblem, setpointCost, type VoltageInput } from '../../src/control/voltage/problem.js';

// The centralised optima the distributed voltage control is measured against come from
// bench/reference/voltage_optimum.py (its own power flow and solver, in Python). Here the project's own
// power flow re-checks each of them: a wrong fixture must not pass as the yardstick.

const CAPABILITY_TOLERANCE = 1e-3; // kW / kVAr: the fixtures round setpoints to 1e-3
const VOLTAGE_TOLERANCE_PU = 2e-4; // the two power flows and the rounding of the setpoints
const COST_TOLERANCE_RELATIVE = 1e-3;

/** What is wrong with an optimum fixture, judged by this project's power flow and cost. */
function fixtureDefects(input: VoltageInput, optimum: VoltageOptimum): string[] {
  const defects: string[] = [];
  const problem = compileVoltageProblem(input);
  const p: number[] = [];
  const q: number[] = [];
  for (const inv of problem.inverters) {
    const setpoint = optimum.setpoints[inv.id];
    if (!setpoint) {
      defects.push(`setpoint: ${inv.id} has none`);
      continue;
    }
    const { pKW, qKVAr } = setpoint;
    p.push(pKW);
    q.push(qKVAr);
    const tol = CAPABILITY_TOLERANCE;
    if (pKW < -tol || pKW > inv.pAvailableKW + tol) defects.push(`capability: ${inv.id} p ${pKW} kW`);
    if (Math.abs(qKVAr) > inv.qMaxKVAr + tol) defects.push(`capability: ${inv.id} q ${qKVAr} kVAr`);
    if (inv.sRatedKVA !== undefined && Math.hypot(pKW, qKVAr) > inv.sRatedKVA + tol) {
      defects.push(`capability: ${inv.id} |s| ${Math.hypot(pKW, qKVAr)} kVA`);
    }
  }
  if (Object.keys(optimum.setpoints).length !== problem.inverters.length) defects.push('setpoint: extra inverters');
  if (defects.length > 0 && p.length !== problem.inverters.length) return defects;
  for (const [bus, vPu] of Object.entries(voltagesWithSetpoints(problem, p, q))) {
    if (vPu < problem.vMinPu - VOLTAGE_TOLERANCE_PU || vPu > problem.vMaxPu + VOLTAGE_TOLERANCE_PU) {
      defects.push(`voltage: bus ${bus} at ${vPu.toFixed(5)} pu`);
    }
  }
  const cost = setpointCost(problem.inverters, p, q);
  if (Math.abs(cost - optimum.optimalCost) > COST_TOLERANCE_RELATIVE * Math.abs(optimum.optimalCost)) {
    defects.push(`cost: setpoints cost ${cost}, fixture says ${optimum.optimalCost}`);
  }
  return defects;
}

describe('the reference optima of the voltage-control instances, re-checked by the project power flow', () => {
  for (const name of VOLTAGE_INSTANCES) {
    it(`${name}: setpoints within capability, voltages within limits, cost as stated`, () => {
      const { input, optimum } = loadVoltageInstance(name);
      expect(fixtureDefects(input, optimum)).toEqual([]);
    });
  }

  for (const name of VOLTAGE_INSTANCES) {
    it(`${name}: a wrong setpoint or cost is caught`, () => {
      const { input, optimum } = loadVoltageInstance(name);
      const copy = (): VoltageOptimum => structuredClone(optimum);
      // The inverter with the most reactive power: reversing it leaves the cost alone but moves the
      // voltages the wrong way, past the limit the optimum sits on.
      const strongest = input.inverters.reduce((a, b) =>
        Math.abs(optimum.setpoints[b.id]!.qKVAr) > Math.abs(optimum.setpoints[a.id]!.qKVAr) ? b : a,
      );
      const reversed = copy();
      reversed.setpoints[strongest.id]!.qKVAr *= -1;
      const reversedDefects = fixtureDefects(input, reversed);
      expect(reversedDefects.some((d) => d.startsWith('voltage:'))).toBe(true);
      expect(reversedDefects.some((d) => d.startsWith('cost:'))).toBe(false);

      const beyond = copy();
      const sign = Math.sign(beyond.setpoints[strongest.id]!.qKVAr) || 1;
      beyond.setpoints[strongest.id]!.qKVAr = sign * (strongest.qMaxKVAr + 0.01);
      expect(fixtureDefects(input, beyond).some((d) => d.startsWith('capability:'))).toBe(true);

      const dearer = copy();
      dearer.optimalCost *= 1.002;
      expect(fixtureDefects(input, dearer)).toEqual([expect.stringMatching(/^cost:/)]);
    });
  }
});
