import { printJson } from '../core/output.js';
import { formatBenchReport } from './report-table.js';
import { runBench } from './run.js';
import { loadScenario } from './scenario.js';

/**
 * `p2p-edge bench [--scenario NAME|FILE] [--duration S] [--speedup X] [--broker URL] [--loss P] [--seed S]
 * [--status-port N] [--live] --json`. With `--live` (what `npm start` runs) the bench goes on until
 * SIGINT or SIGTERM, then stops every process and prints the report of the whole run.
 */
export async function benchCommand(o: {
  scenario: string;
  duration?: number;
  speedup?: number;
  broker?: string;
  loss?: number;
  seed?: number;
  json?: boolean;
  statusPort?: number;
  live?: boolean;
  voltageAscent?: 'accelerated' | 'plain';
  voltageMargin?: number;
}): Promise<void> {
  const scenario = {
    ...loadScenario(o.scenario),
    ...(o.voltageAscent ? { voltageAscent: o.voltageAscent } : {}),
    ...(o.voltageMargin !== undefined ? { voltageMarginPu: o.voltageMargin } : {}),
  };
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write('bench: stopping (Ctrl-C again to leave at once)\n');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await runBench(scenario, {
      ...(o.duration !== undefined ? { durationS: o.duration } : {}),
      ...(o.speedup !== undefined ? { speedup: o.speedup } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(o.loss !== undefined ? { loss: o.loss } : {}),
      ...(o.broker !== undefined ? { broker: o.broker } : {}),
      ...(o.statusPort !== undefined ? { statusPort: o.statusPort } : {}),
      live: o.live === true,
      signal: stop.signal,
      progress: (line) => process.stderr.write(`bench: ${line}\n`),
    });
    if (o.json) printJson(report);
    else process.stdout.write(formatBenchReport(report));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
