import { printJson } from '../../core/output.js';
import { runVoltageControl, type VoltageMethod } from './control-loop.js';
import { loadVoltageProblem } from './problem.js';

/** `p2p-edge voltage --input FILE [--json] [--method dual|dual-plain|gradient|volt-var] [--rounds N] [--seed S]` */
export async function voltageCommand(o: {
  input: string;
  json?: boolean;
  method?: string;
  rounds?: number;
  seed?: number;
}): Promise<void> {
  const problem = loadVoltageProblem(o.input);
  const r = runVoltageControl(problem, {
    method: (o.method ?? 'dual') as VoltageMethod,
    ...(o.rounds !== undefined ? { rounds: o.rounds } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
  });
  if (o.json) return printJson(r);
  process.stdout.write(
    `${r.method}: ${r.converged ? 'converged' : 'NOT converged'} after ${r.steps} steps, ${r.rounds} gossip rounds, ${r.messages} messages\n` +
      `voltage ${r.minVoltagePu.toFixed(4)}–${r.maxVoltagePu.toFixed(4)} pu (limits ${problem.vMinPu}–${problem.vMaxPu}); cost ${r.cost.toFixed(3)}; curtailed ${r.curtailedKW.toFixed(2)} kW\n`,
  );
}
