/**
 * npm run bench:voltage — the distributed voltage control (`p2p-edge voltage`) on six instances, the
 * accelerated dual ascent (the default) beside the plain one it replaced, in one run:
 * - the contract's LV example (20 PV inverters) at midday, and its evening (loads × 6, no PV);
 * - the Baran & Wu 33-bus and 69-bus MV feeders with PV at every load bus at noon (loads at 30 %),
 *   and in the evening (loads at 90 % and 75 %, no PV, reactive support only).
 * Each against its optimum computed independently (`test/fixtures/**\/*.optimum.json`: a Python
 * reference with its own AC power flow, `bench/reference/`). Per run: the gossip rounds until the
 * setpoints are, and stay until the run stops, within 1.02 × the optimal cost and within the limits
 * (to 1e-4 pu); the rounds at which the agents' own stop rule ends the run; the cost there; the
 * worst voltage beyond a limit. Clean, with 20 % of the agents dropping out (keeping their last
 * setpoints) after 10 control steps, with 30 % of the gossip lost, and with exact multipliers (what
 * push-sum costs). Then, for context, the local volt-var/volt-watt curves (as they come, and moved
 * down until they too keep the limits) and no control. Writes bench/results/voltage.json.
 * Targets (issue: voltage speed): accelerated within 1.02 × in ≤ 300 rounds on every instance, at
 * least 10 × fewer rounds than the plain ascent, 0 violations also with dropout and loss.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runVoltageControl, type VoltageRunOptions } from '../src/control/voltage/control-loop.js';
import { voltagesWithSetpoints } from '../src/control/voltage/feeder-response.js';
import { compileVoltageProblem, setpointCost } from '../src/control/voltage/problem.js';
import { tightestCurveShift } from '../src/control/voltage/volt-var.js';
import { loadVoltageInstance, VOLTAGE_INSTANCES } from './reference/voltage-fixtures.js';

const WITHIN_COST = 1.02;
/** Beyond a limit by more than this is a violation (0.023 V at 230 V). */
const VIOLATION_PU = 1e-4;
const ROUND_CAP = 20_000;

const instances = VOLTAGE_INSTANCES.map((path) => {
  const { name, input, optimum } = loadVoltageInstance(path);
  return { name, input, optimalCost: optimum.optimalCost };
});

const conditions: { label: string; options: VoltageRunOptions }[] = [
  { label: 'clean', options: {} },
  { label: '20 % drop out', options: { dropoutFraction: 0.2, dropoutAtStep: 10, seed: 4 } },
  { label: '30 % loss', options: { lossRate: 0.3, seed: 5 } },
  // What push-sum costs: every agent sees everyone's multipliers exactly, as a gateway acting on the
  // multipliers its peers announce in their hellos does (one step late, in the field).
  { label: 'exact multipliers', options: { exactMultipliers: true } },
];

const rows: Record<string, unknown>[] = [];
const summary: Record<string, unknown>[] = [];
const t0 = performance.now();
for (const inst of instances) {
  const problem = compileVoltageProblem(inst.input);
  const beyond = (v: Record<string, number>) => {
    const all = Object.values(v);
    return Math.max(0, Math.max(...all) - problem.vMaxPu, problem.vMinPu - Math.min(...all));
  };
  const roundsTo: Record<string, { reached: number | null; stopped: number }> = {};
  for (const method of ['dual', 'dual-plain'] as const) {
    for (const c of conditions) {
      // The last round from which every control step is within the cost and the limits.
      let reached: number | null = null;
      const r = runVoltageControl(problem, {
        method,
        rounds: ROUND_CAP,
        ...c.options,
        onStep: ({ rounds, p, q }) => {
          const ok =
            setpointCost(problem.inverters, p, q) <= WITHIN_COST * inst.optimalCost &&
            beyond(voltagesWithSetpoints(problem, p, q)) <= VIOLATION_PU;
          if (!ok) reached = null;
          else reached ??= rounds;
        },
      });
      const beyondPu = Math.max(0, r.maxVoltagePu - problem.vMaxPu, problem.vMinPu - r.minVoltagePu);
      if (c.label === 'clean') roundsTo[method] = { reached, stopped: r.rounds };
      rows.push({
        instance: inst.name,
        method: method === 'dual' ? 'accelerated' : 'plain',
        condition: c.label,
        roundsToWithin: reached ?? `> ${r.rounds}`,
        stopRounds: r.converged ? r.rounds : `${r.rounds} (cap)`,
        costVsOptimum: Number((r.cost / inst.optimalCost).toFixed(4)),
        beyondLimitsPu: Number(beyondPu.toExponential(1)),
        violation: beyondPu > VIOLATION_PU ? 'yes' : 'no',
        curtailedKW: Number(r.curtailedKW.toFixed(1)),
        messages: r.messages,
      });
    }
  }
  // Like for like: the local curves moved down until they too keep every bus within the limits.
  const shift = tightestCurveShift(problem);
  const local: { label: string; options: VoltageRunOptions }[] = [
    { label: 'volt-var', options: { method: 'volt-var' } },
    ...(shift === undefined || shift === 0
      ? []
      : [
          {
            label: `volt-var shifted −${shift.toFixed(4)} pu to meet the limits`,
            options: { method: 'volt-var' as const, curveShiftPu: shift },
          },
        ]),
    { label: 'none', options: { method: 'dual', rounds: 0 } },
  ];
  for (const { label: method, options } of local) {
    const r = runVoltageControl(problem, options);
    const beyondPu = Math.max(0, r.maxVoltagePu - problem.vMaxPu, problem.vMinPu - r.minVoltagePu);
    rows.push({
      instance: inst.name,
      method,
      condition: '-',
      roundsToWithin: '-',
      stopRounds: 0,
      costVsOptimum: Number((r.cost / inst.optimalCost).toFixed(4)),
      beyondLimitsPu: Number(beyondPu.toExponential(1)),
      violation: beyondPu > VIOLATION_PU ? 'yes' : 'no',
      curtailedKW: Number(r.curtailedKW.toFixed(1)),
      messages: 0,
    });
  }
  const accelerated = roundsTo.dual!;
  const plain = roundsTo['dual-plain']!;
  const shown = (x: { reached: number | null; stopped: number }) => x.reached ?? `never (stopped at ${x.stopped})`;
  summary.push({
    instance: inst.name,
    optimalCost: inst.optimalCost,
    acceleratedRounds: shown(accelerated),
    plainRounds: shown(plain),
    // A plain run that stopped before it got there took more than its stop: a lower bound.
    fewerRounds:
      accelerated.reached === null
        ? '-'
        : `${plain.reached === null ? '> ' : ''}${((plain.reached ?? plain.stopped) / accelerated.reached).toFixed(1)}×`,
    within300: accelerated.reached !== null && accelerated.reached <= 300 ? 'yes' : 'no',
  });
}
console.table(rows);
console.table(summary);
console.log(
  `roundsToWithin: gossip rounds (5 per control step) until every later step is within ${WITHIN_COST} × the independent optimum ` +
    `and ${VIOLATION_PU} pu of the limits (with drop-outs the dropped agents hold their setpoints, so the cost is not the optimum's). ` +
    `fewerRounds: plain over accelerated, clean; "> x" where the plain run stopped (or hit the cap of ${ROUND_CAP}) before it got there. ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'voltage.json'),
  `${JSON.stringify({ date: new Date().toISOString(), withinCost: WITHIN_COST, violationPu: VIOLATION_PU, rows, summary }, null, 2)}\n`,
);
