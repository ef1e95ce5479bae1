/**
 * `npm run bench:faults`: the reliability report. Runs each fault scenario of `bench/scenarios/`
 * (10 % loss, a broker restart, gateways and the platform killed with SIGKILL, one cell's uplink cut,
 * a Modbus device that stops answering) as a whole bench with real processes, and reports for every
 * fault what happened, the time to recover and the data lost or doubled (the platform's audit of the
 * meter readings, docs/bench.md), with the voltage and delivery over the run beside the volt-var
 * baseline. Prints a table and writes bench/results/faults.json. `--duration S` shortens each run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchReport } from '../src/bench/report.js';
import { table as columns, meanwhile } from '../src/bench/report-table.js';
import { runBench } from '../src/bench/run.js';
import { loadScenario } from '../src/bench/scenario.js';

const SCENARIOS = ['loss', 'broker-restart', 'sigkill', 'uplink-cut', 'modbus-timeout'];
const durationArg = process.argv.indexOf('--duration');
const durationS = durationArg > 0 ? Number(process.argv[durationArg + 1]) : undefined;

interface Row {
  scenario: string;
  fault: string;
  atS: number | null;
  recoveredS: number | null;
  lostAcked: number | null;
  duplicated: number | null;
  readingsMissing: number | null;
  deliveryMkt: number | null;
  violations: number;
  violationSeconds: number;
  maxPu: number;
  voltVarViolations: number;
  /** partition: what the cell cut off did meanwhile. */
  whileCut?: string;
}

const rows: Row[] = [];
const reports: Record<string, BenchReport> = {};
for (const name of SCENARIOS) {
  process.stderr.write(`bench:faults: ${name}\n`);
  const report = await runBench(loadScenario(name), durationS ? { durationS } : {});
  reports[name] = report;
  const common = {
    scenario: name,
    readingsMissing: report.ledger.meterIntervalsMissing,
    deliveryMkt: report.delivery.mkt ?? null,
    violations: report.voltage.violations,
    violationSeconds: Number(report.voltage.violationSeconds.toFixed(1)),
    maxPu: report.voltage.maxPu,
    voltVarViolations: report.voltage.voltVarBaseline.violations,
  };
  if (report.faults.length === 0 && report.loss > 0) {
    // Loss for the whole run is set before the day starts: it has no injection time of its own.
    rows.push({
      ...common,
      fault: `loss ${report.loss}`,
      atS: 0,
      recoveredS: 0,
      lostAcked: report.ledger.meterIntervalsMissing,
      duplicated: report.ledger.meterIntervalsDuplicated,
    });
  }
  for (const f of report.faults) {
    rows.push({
      ...common,
      fault: `${f.kind}${f.target ? ` ${f.target}` : ''}`,
      atS: f.atS,
      recoveredS: f.recoveredS,
      lostAcked: f.lostAcked,
      duplicated: f.duplicated,
      whileCut: meanwhile(f),
    });
  }
}

const header = [
  'scenario',
  'fault',
  'at s',
  'recovered s',
  'lost',
  'doubled',
  'mkt delivery',
  'violations (s, max pu)',
  'volt-var only',
  'while cut off',
];
const table = [
  header,
  ...rows.map((r) => [
    r.scenario,
    r.fault,
    String(r.atS ?? '–'),
    r.recoveredS === null ? 'NOT' : String(r.recoveredS),
    String(r.lostAcked ?? '–'),
    String(r.duplicated ?? '–'),
    r.deliveryMkt === null ? '–' : r.deliveryMkt.toFixed(4),
    `${r.violations} (${r.violationSeconds}, ${r.maxPu})`,
    String(r.voltVarViolations),
    r.whileCut ?? '–',
  ]),
];
process.stdout.write(`${columns(table).join('\n')}\n`);
const lost = rows.reduce((s, r) => s + (r.lostAcked ?? 0) + (r.duplicated ?? 0), 0);
process.stdout.write(
  `\n${rows.every((r) => r.recoveredS !== null) ? 'every fault recovered' : 'SOME FAULTS DID NOT RECOVER'}; ` +
    `data lost or doubled: ${lost}\n`,
);

const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'faults.json'),
  `${JSON.stringify({ date: new Date().toISOString(), durationS: durationS ?? null, rows, reports }, null, 2)}\n`,
);
