/**
 * `npm run bench:soak`: the whole bench (real gateway processes, broker, Modbus servers) run for many
 * compressed days in a row, 24 by default, sampling every gateway's resident memory, heap, outbox and
 * log every 2 s. Reports each process's growth from the day after the warm-up to the last day (the median
 * resident memory, and the heap in use after full collections, over whole days) with the parts of that memory, and the daily
 * curve of any process above the target of 5 %. Prints a table and writes bench/results/soak.json.
 *
 *   npm run bench:soak -- [--scenario default] [--days 24] [--warmup-days 2] [--speedup N]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { table } from '../src/bench/report-table.js';
import { runBench } from '../src/bench/run.js';
import type { ProcessSample } from '../src/bench/sampling.js';
import { loadScenario } from '../src/bench/scenario.js';
import { checkSoakDays, type SoakPoint, soakGrowth } from '../src/bench/soak.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const scenario = loadScenario(arg('scenario', 'default'));
const days = Number(arg('days', '24'));
const warmupDays = Number(arg('warmup-days', '2'));
const speedup = Number(arg('speedup', String(scenario.speedup)));
const TARGET_GROWTH = 0.05;
const dayS = 86_400 / speedup;
checkSoakDays({ days, warmupDays });

const series = new Map<string, SoakPoint[]>();
const stop = new AbortController();
let dayReported = 0;
const started = Date.now();
process.stderr.write(
  `bench:soak: ${scenario.name}, ${days} days of ${dayS.toFixed(0)} s (about ${((days * dayS) / 60).toFixed(0)} min)\n`,
);
const report = await runBench(scenario, {
  speedup,
  live: true,
  signal: stop.signal,
  progress: (line) => process.stderr.write(`${line}\n`),
  onProcessSample: (tS: number, samples: readonly ProcessSample[]) => {
    for (const { id, gateways: _gateways, ...rest } of samples) {
      const points = series.get(id) ?? [];
      points.push({ tS, ...rest });
      series.set(id, points);
    }
    const day = Math.floor(tS / dayS);
    if (day > dayReported) {
      dayReported = day;
      const rss = samples.reduce((sum, s) => sum + (s.rssMB ?? 0), 0);
      process.stderr.write(`bench:soak: day ${day} of ${days} done, gateways' memory ${rss.toFixed(0)} MB\n`);
    }
    if (tS >= days * dayS) stop.abort();
  },
});

const result = soakGrowth(series, { dayS, days, warmupDays });
const pct = (g: number | null) => (g === null ? '–' : `${(100 * g).toFixed(1)} %`);
const mb = (v: number | null) => (v === null ? '–' : v.toFixed(1));
const rows = [
  [
    'gateway',
    `RSS day ${warmupDays + 1} MB`,
    `RSS day ${days} MB`,
    'RSS growth',
    'RSS trend',
    `live heap day ${warmupDays + 1} MB`,
    `live heap day ${days} MB`,
    'heap growth',
    'anon MB',
    'V8 heap MB',
    'buffers MB',
    'log KB/day',
    'max outbox',
  ],
  ...result.processes.map((p) => [
    p.id,
    mb(p.warm.rssMB),
    mb(p.end.rssMB),
    pct(p.rssGrowth),
    pct(p.rssTrend),
    mb(p.warm.heapLiveMB),
    mb(p.end.heapLiveMB),
    pct(p.heapGrowth),
    `${mb(p.warm.anonMB)} → ${mb(p.end.anonMB)}`,
    `${mb(p.warm.heapTotalMB)} → ${mb(p.end.heapTotalMB)}`,
    `${mb(p.warm.externalMB)} → ${mb(p.end.externalMB)}`,
    `${p.warm.logKBPerDay.toFixed(1)} → ${p.end.logKBPerDay.toFixed(1)}`,
    String(Math.max(p.warm.maxOutboxPending, p.end.maxOutboxPending)),
  ]),
];
process.stdout.write(`${table(rows).join('\n')}\n\n`);
const within = (g: number | null) => g !== null && g <= TARGET_GROWTH;
for (const p of result.processes.filter((p) => !within(p.rssGrowth) || !within(p.rssTrend))) {
  process.stdout.write(`${p.id}: median RSS per day, MB: ${p.dailyRssMB.map(mb).join(' ')}\n`);
  const spaces = Object.keys(p.end.heapSpacesMB).map(
    (space) => `${space} ${mb(p.warm.heapSpacesMB[space] ?? null)} → ${mb(p.end.heapSpacesMB[space] ?? null)}`,
  );
  if (spaces.length) process.stdout.write(`${p.id}: V8 heap committed per space, MB: ${spaces.join(', ')}\n`);
}
process.stdout.write(
  `worst growth after the warm-up: RSS ${pct(result.worstRssGrowth)} (trend ${pct(result.worstRssTrend)}), ` +
    `heap ${pct(result.worstHeapGrowth)} (target ≤ ${100 * TARGET_GROWTH} %): ` +
    `${[result.worstRssGrowth, result.worstRssTrend, result.worstHeapGrowth].every(within) ? 'met' : 'NOT MET'}\n` +
    `largest outbox over the run: ${result.maxOutboxPending}; voltage violations ${report.voltage.violations}, ` +
    `meter readings lost ${report.ledger.meterIntervalsMissing ?? '–'}, doubled ${report.ledger.meterIntervalsDuplicated ?? '–'}\n`,
);

const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'soak.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      scenario: scenario.name,
      speedup,
      dayS,
      realMinutes: Number(((Date.now() - started) / 60_000).toFixed(1)),
      targetGrowth: TARGET_GROWTH,
      ...result,
      report: {
        voltage: report.voltage,
        delivery: report.delivery,
        trading: report.trading,
        ledger: report.ledger,
        processes: report.processes,
      },
    },
    null,
    2,
  )}\n`,
);
