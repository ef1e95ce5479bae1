import { printJson } from '../core/output.js';
import { runBench } from './run.js';
import { loadScenario } from './scenario.js';

/** `p2p-edge bench [--scenario NAME|FILE] [--duration S] [--speedup X] [--broker URL] [--loss P] [--seed S] --json` */
export async function benchCommand(o: {
  scenario: string;
  duration?: number;
  speedup?: number;
  broker?: string;
  loss?: number;
  seed?: number;
  json?: boolean;
  statusPort?: number;
}): Promise<void> {
  const scenario = loadScenario(o.scenario);
  const report = await runBench(scenario, {
    ...(o.duration !== undefined ? { durationS: o.duration } : {}),
    ...(o.speedup !== undefined ? { speedup: o.speedup } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.loss !== undefined ? { loss: o.loss } : {}),
    ...(o.broker !== undefined ? { broker: o.broker } : {}),
    ...(o.statusPort !== undefined ? { statusPort: o.statusPort } : {}),
    progress: (line) => process.stderr.write(`bench: ${line}\n`),
  });
  if (o.json) printJson(report);
  else {
    const r = report as {
      voltage: {
        violations: number;
        maxPu: number;
        minPu: number;
        voltVarBaseline: { violations: number; maxPu: number };
      };
      delivery: Record<string, number | null>;
      latencyMs: { p50: number; p99: number };
      processes: { id: string; rssMB: number }[];
    };
    process.stdout.write(
      [
        `scenario ${report.scenario}: ${report.gateways} gateways, broker ${report.broker}`,
        `voltage: ${r.voltage.violations} violations, ${r.voltage.minPu}..${r.voltage.maxPu} pu (volt-var only: ${r.voltage.voltVarBaseline.violations}, max ${r.voltage.voltVarBaseline.maxPu} pu)`,
        `delivery: ${Object.entries(r.delivery)
          .map(([k, v]) => `${k} ${v ?? '–'}`)
          .join(', ')}; latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms`,
        `largest controller: ${Math.max(...r.processes.map((p) => p.rssMB)).toFixed(1)} MB RSS`,
        `report and plots in ${(report.ledger as { db: string }).db.replace(/\/platform\/ledger\.db$/, '')}`,
        '',
      ].join('\n'),
    );
  }
}
