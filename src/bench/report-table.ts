import type { BenchReport } from './run.js';

const fixed = (v: number | null | undefined, digits: number): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
const gap = (v: number | null): string => (v === null ? '–' : v.toExponential(1));

/** Rows of cells padded into columns. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => `  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')}`.trimEnd());
}

/** The bench's KPI report as a readable table (what `p2p-edge bench` prints without `--json`). */
export function formatBenchReport(r: BenchReport): string {
  const t = r.trading;
  const v = r.voltage;
  const b = v.voltVarBaseline;
  const rss = r.processes.map((p) => p.rssMB);
  const cpu = r.processes.reduce((s, p) => s + p.cpuS, 0);
  const lines = [
    `scenario ${r.scenario}: ${r.gateways} gateway processes, broker ${r.broker}, ${r.durationS} s at ${r.speedup}× (loss ${r.loss})`,
    '',
    'messages',
    ...table([
      ['class', ...Object.keys(r.delivery)],
      ['delivery', ...Object.values(r.delivery).map((x) => fixed(x, 4))],
    ]),
    `  latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms; rejected: ${
      Object.entries(r.rejectedMessages)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    }`,
    '',
    'trading (cost gap: relative to the centralised optimum of the same interval; target 1e-3)',
    ...table([
      ['market', 'intervals', 'converged', 'gap solved', 'within 1e-3', 'worst gap', 'median gap'],
      [
        'cell (MG traders)',
        String(t.intervals),
        String(t.converged),
        String(t.costGap.intervals),
        String(t.costGap.withinTarget),
        gap(t.costGap.worstRelativeGap),
        gap(t.costGap.medianRelativeGap),
      ],
      [
        'level above (coupling)',
        String(t.upper.intervals),
        String(t.upper.converged),
        String(t.upper.costGap.intervals),
        String(t.upper.costGap.withinTarget),
        gap(t.upper.costGap.worstRelativeGap),
        gap(t.upper.costGap.medianRelativeGap),
      ],
    ]),
    '',
    'voltage',
    ...table([
      ['control', 'violations', 'seconds', 'max pu', 'min pu', 'curtailed kWh'],
      [
        'distributed',
        String(v.violations),
        fixed(v.violationSeconds, 1),
        fixed(v.maxPu, 4),
        fixed(v.minPu, 4),
        fixed(r.curtailedKWh, 1),
      ],
      [
        'volt-var only',
        String(b.violations),
        fixed(b.violationSeconds, 1),
        fixed(b.maxPu, 4),
        fixed(b.minPu, 4),
        fixed(b.curtailedKWh, 1),
      ],
    ]),
    ...v.episodes.map((e) => `  beyond the limits ${e.fromHour}–${e.toHour} h at ${e.bus}, worst ${e.worstPu} pu`),
    `  peak transformer loading ${r.peakTransformerLoadingPct} %`,
    '',
    `processes: RSS ${fixed(Math.min(...rss), 1)}–${fixed(Math.max(...rss), 1)} MB, CPU ${fixed(cpu, 1)} s in all`,
  ];
  if (r.faults.length > 0) {
    lines.push(
      '',
      'faults',
      ...table([
        ['kind', 'target', 'at s', 'recovered s', 'lost acked', 'duplicated'],
        ...r.faults.map((f) => [
          f.kind,
          f.target ?? '–',
          String(f.atS),
          f.recoveredS === null ? 'NOT' : String(f.recoveredS),
          f.lostAcked === null ? '–' : String(f.lostAcked),
          f.duplicated === null ? '–' : String(f.duplicated),
        ]),
      ]),
    );
  }
  lines.push('', `report.json and plots in ${r.plots[0]?.replace(/\/[^/]+$/, '') ?? '–'}`, '');
  return lines.join('\n');
}
