import { printJson } from '../../core/output.js';
import { loadFeeder } from './feeder.js';
import { solvePowerFlow } from './sweep.js';

/** `p2p-edge powerflow --feeder FILE [--json]` */
export async function powerflowCommand(options: { feeder: string; json?: boolean }): Promise<void> {
  const feeder = loadFeeder(options.feeder);
  const result = solvePowerFlow(feeder);
  const output = {
    name: feeder.name,
    converged: result.converged,
    iterations: result.iterations,
    voltagesPu: result.voltagesPu,
    lossesKW: result.lossesKW,
    lineFlows: result.lineFlows,
    maxMismatchPu: result.maxMismatchPu,
  };
  if (options.json) return printJson(output);
  const volts = Object.entries(result.voltagesPu);
  const [minBus, minV] = volts.reduce((a, b) => (b[1] < a[1] ? b : a));
  const [maxBus, maxV] = volts.reduce((a, b) => (b[1] > a[1] ? b : a));
  process.stdout.write(
    `${feeder.name}: ${result.converged ? 'converged' : 'NOT converged'} in ${result.iterations} iterations\n` +
      `losses ${result.lossesKW.toFixed(2)} kW; Vmin ${minV.toFixed(5)} pu at bus ${minBus}; Vmax ${maxV.toFixed(5)} pu at bus ${maxBus}\n`,
  );
}
