import { ErrorCode, P2PError } from '../core/errors.js';
import { printJson } from '../core/output.js';
import { parseWith, readDataFile } from '../core/validate.js';
import { buildRadialFeeder, FeederSchema } from './feeder.js';
import { solvePowerFlow } from './sweep.js';
import {
  buildThreePhaseModel,
  profileMultipliers,
  type ThreePhaseFeederInput,
  ThreePhaseFeederSchema,
  type ThreePhaseModel,
} from './three-phase/feeder.js';
import { solveThreePhase } from './three-phase/sweep.js';
import { solveDay } from './three-phase/time-series.js';

export interface PowerflowOptions {
  feeder: string;
  json?: boolean;
  /** Three-phase feeders with load profiles: solve at this minute of the day. */
  minute?: number;
  /** Three-phase feeders with load profiles: solve every profile step of the day and summarise. */
  day?: boolean;
}

/** `p2p-edge powerflow --feeder FILE [--json] [--minute M]`: balanced, or three-phase when the file says `"phases": 3`. */
export async function powerflowCommand(options: PowerflowOptions): Promise<void> {
  const data = readDataFile(options.feeder, 'input');
  const source = { file: options.feeder, code: 'input' as const };
  if (typeof data === 'object' && data !== null && (data as { phases?: unknown }).phases === 3)
    return threePhase(parseWith(ThreePhaseFeederSchema, data, source), options);
  for (const [flag, given] of [
    ['--minute', options.minute !== undefined],
    ['--day', options.day === true],
  ] as const)
    if (given)
      throw new P2PError(ErrorCode.input, `${flag} needs a three-phase feeder with load profiles`, {
        component: 'powerflow',
        field: flag,
      });
  const feeder = buildRadialFeeder(parseWith(FeederSchema, data, source), options.feeder);
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

function threePhase(input: ReturnType<typeof ThreePhaseFeederSchema.parse>, options: PowerflowOptions): void {
  const model = buildThreePhaseModel(input, options.feeder);
  if (options.day) {
    day(input, model, options);
    return;
  }
  const loadMultipliers = options.minute === undefined ? undefined : profileMultipliers(input, options.minute);
  const r = solveThreePhase(model, loadMultipliers ? { loadMultipliers } : {});
  const output = {
    name: model.name,
    phases: 3,
    ...(options.minute === undefined ? {} : { minute: options.minute }),
    converged: r.converged,
    iterations: r.iterations,
    voltagesPu: r.voltagesPu,
    lossesKW: r.lossesKW,
    transformerLossesKW: r.transformerLossesKW,
    supplyKW: r.supplyKW,
    supplyKVAr: r.supplyKVAr,
    minVoltage: r.minVoltage,
    maxVoltage: r.maxVoltage,
    maxUnbalance: r.maxUnbalance,
    unbalancePct: r.unbalancePct,
    lineCurrentsA: r.lineCurrentsA,
    maxMismatchPu: r.maxMismatchPu,
  };
  if (options.json) {
    printJson(output);
    return;
  }
  process.stdout.write(
    `${model.name} (three-phase${options.minute === undefined ? '' : `, minute ${options.minute}`}): ` +
      `${r.converged ? 'converged' : 'NOT converged'} in ${r.iterations} iterations\n` +
      `losses ${r.lossesKW.toFixed(3)} kW; Vmin ${r.minVoltage.pu.toFixed(5)} pu at ${r.minVoltage.key}; ` +
      `Vmax ${r.maxVoltage.pu.toFixed(5)} pu at ${r.maxVoltage.key}; ` +
      `max unbalance ${r.maxUnbalance.pct.toFixed(3)} % at bus ${r.maxUnbalance.bus}\n`,
  );
}

function day(input: ThreePhaseFeederInput, model: ThreePhaseModel, options: PowerflowOptions): void {
  if (options.minute !== undefined)
    throw new P2PError(ErrorCode.input, '--day and --minute exclude each other', {
      component: 'powerflow',
      field: '--day',
    });
  const d = solveDay(input, model);
  if (options.json) {
    printJson({ name: model.name, phases: 3, ...d });
    return;
  }
  const clock = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  process.stdout.write(
    `${model.name} (three-phase, ${d.steps.length} steps of ${d.stepMinutes} min): ` +
      `${d.allConverged ? 'all converged' : 'NOT all converged'}\n` +
      `Vmax ${d.maxVoltage.pu.toFixed(5)} pu at ${d.maxVoltage.key} ${clock(d.maxVoltage.minute)}; ` +
      `Vmin ${d.minVoltage.pu.toFixed(5)} pu at ${d.minVoltage.key} ${clock(d.minVoltage.minute)}; ` +
      `max unbalance ${d.maxUnbalance.pct.toFixed(3)} % at bus ${d.maxUnbalance.bus} ${clock(d.maxUnbalance.minute)}\n` +
      `hours above 1.05 / 1.10 pu: ${d.hoursAbovePu['1.05']} / ${d.hoursAbovePu['1.10']}; ` +
      `below 0.95 / 0.90 pu: ${d.hoursBelowPu['0.95']} / ${d.hoursBelowPu['0.90']}; losses ${d.lossesKWh.toFixed(2)} kWh\n`,
  );
}
