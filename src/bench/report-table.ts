import type { FaultReport } from './fault-injection.js';
import type { TradingGapKpi } from './kpi.js';
import type { BenchReport } from './report.js';
import type { PrivacyReport } from './wire-audit.js';

const fixed = (v: number | null | undefined, digits: number): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
const gap = (v: number | null): string => (v === null ? '–' : v.toExponential(1));

/**
 * What went on during a fault: a cell cut off (markets cleared, voltage agents on the distributed
 * control), a gateway cut off from the broker (its messages through the relay), the brokers down (the
 * fewest voltage agents on the distributed control).
 */
export function meanwhile(f: FaultReport): string {
  if (f.whileCut)
    return `${f.whileCut.intervalsCleared} intervals, ${f.whileCut.agentsDistributed}/${f.whileCut.agents} dual`;
  if (f.whileDown)
    return `at least ${f.whileDown.fewestDistributed}/${f.whileDown.agents} dual in ${f.whileDown.reads} reads`;
  if (f.throughRelay) {
    const { delivery, relayedBy, readingsAtPlatform: stored } = f.throughRelay;
    const cls = (name: keyof typeof delivery) =>
      `${name} ${fixed(delivery[name].ratio, 4)} (${delivery[name].delivered}/${delivery[name].sent})`;
    const via = Object.keys(relayedBy);
    const platform = stored ? `, readings stored ${fixed(stored.ratio, 4)} (${stored.stored}/${stored.sent})` : '';
    return `${cls('meter')}, ${cls('mkt')}${platform} through ${via.length > 0 ? via.join(', ') : 'no relay'}`;
  }
  return '–';
}

/** Rows of cells padded into columns. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => `  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')}`.trimEnd());
}

function marketRow(name: string, m: { intervals: number; converged: number; costGap: TradingGapKpi }): string[] {
  return [
    name,
    String(m.intervals),
    String(m.converged),
    String(m.costGap.intervals),
    String(m.costGap.withinTarget),
    gap(m.costGap.worstRelativeGap),
    gap(m.costGap.medianRelativeGap),
  ];
}

function voltageRow(
  name: string,
  v: { violations: number; violationSeconds: number; maxPu: number; minPu: number },
  curtailedKWh: number,
): string[] {
  return [
    name,
    String(v.violations),
    fixed(v.violationSeconds, 1),
    fixed(v.maxPu, 4),
    fixed(v.minPu, 4),
    fixed(curtailedKWh, 1),
  ];
}

/** The wire audit: what a third party on the brokers saw, per kind of message. */
export function privacyLines(p: PrivacyReport): string[] {
  return [
    `privacy (a third party on the brokers, with the public members list only): ${p.messages} messages, ` +
      `${p.sealed}/${p.confidential} confidential sealed, ${p.plaintextFindings} in the clear, ` +
      `${p.signaturesVerified} signatures verified, ${p.signatureFailures} failed`,
    ...table([
      ['kind', 'messages', 'confidential', 'sealed', 'in the clear', 'signed ok', 'signature failed'],
      ...Object.entries(p.byKind).map(([kind, k]) => [
        kind,
        String(k.messages),
        String(k.confidential),
        String(k.sealed),
        k.plaintextExample
          ? `${k.plaintextFindings} (${k.plaintextExample.field} on ${k.plaintextExample.topic})`
          : String(k.plaintextFindings),
        String(k.signaturesVerified),
        String(k.signatureFailures),
      ]),
    ]),
  ];
}

/** The bench's KPI report as a readable table (what `p2p-edge bench` prints without `--json`). */
export function formatBenchReport(r: BenchReport): string {
  const t = r.trading;
  const v = r.voltage;
  const b = v.voltVarBaseline;
  const rss = r.processes.map((p) => p.rssMB);
  const cpu = r.processes.reduce((s, p) => s + p.cpuS, 0);
  const { firstAttempt, ...delivery } = r.delivery;
  const first = (ms: { p50: number | null; p99: number | null; count: number }) =>
    `${ms.count} messages, p50 ${fixed(ms.p50, 1)} ms, p99 ${fixed(ms.p99, 1)} ms`;
  const lines = [
    `scenario ${r.scenario}: ${r.gateways} gateways in ${r.processes.length} processes, broker ${r.broker}, ${r.durationS} s at ${r.speedup}× (loss ${r.loss})`,
    '',
    'messages',
    ...table([
      ['class', ...Object.keys(delivery)],
      ['delivery (end to end)', ...Object.values(delivery).map((x) => fixed(x, 4))],
      ['at the first attempt', ...Object.keys(delivery).map((c) => fixed(firstAttempt[c] ?? null, 4))],
    ]),
    `  acknowledged at the first attempt: ${first(r.deliveryLatencyMs.first)}; after a resend: ${first(r.deliveryLatencyMs.retried)}`,
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
      marketRow('cell (MG traders)', t),
      marketRow('level above (coupling)', t.upper),
    ]),
    ...[...t.costGap.unsolved, ...t.upper.costGap.unsolved].map(
      (u) => `  not checked: session ${u.session}, the reference solver failed (${u.error}); unsolved-intervals.json`,
    ),
    `  reported to the platform: ${
      r.ledger.trades
        ? `${r.ledger.trades.stored} trades in ${r.ledger.trades.reports} reports over ${r.ledger.trades.intervals} intervals`
        : '–'
    }`,
    '',
    'voltage',
    ...table([
      ['control', 'violations', 'seconds', 'max pu', 'min pu', 'curtailed kWh'],
      voltageRow('distributed', v, r.curtailedKWh),
      voltageRow('volt-var only', b, b.curtailedKWh),
    ]),
    ...v.episodes.map((e) => `  beyond the limits ${e.fromHour}–${e.toHour} h at ${e.bus}, worst ${e.worstPu} pu`),
    `  peak transformer loading ${r.peakTransformerLoadingPct} %`,
    '',
    `processes: RSS ${fixed(Math.min(...rss), 1)}–${fixed(Math.max(...rss), 1)} MB, CPU ${fixed(cpu, 1)} s in all; ` +
      `every bench process together (brokers and bench included) at most ${fixed(r.machine.peakTotalRssMB, 0)} MB`,
    `machine: CPU ${fixed(r.machine.cpuBusyPct, 1)} % busy over the day, ${r.machine.cycleOverruns} control cycles overran${
      r.machine.saturated
        ? ": the machine could not keep up, so late controls and messages are its own, not the gateways'"
        : ''
    }`,
    ...keepingUpLines(r),
  ];
  if (r.privacy) lines.push('', ...privacyLines(r.privacy));
  if (r.faults.length > 0) {
    lines.push(
      '',
      'faults',
      ...table([
        ['kind', 'target', 'at s', 'recovered s', 'lost acked', 'duplicated', 'meanwhile'],
        ...r.faults.map((f) => [
          f.kind,
          f.target ?? '–',
          String(f.atS),
          f.untilEnd ? 'until the end' : f.recoveredS === null ? 'NOT' : String(f.recoveredS),
          f.lostAcked === null ? '–' : String(f.lostAcked),
          f.duplicated === null ? '–' : String(f.duplicated),
          meanwhile(f),
        ]),
      ]),
    );
  }
  lines.push('', `report.json and plots in ${r.plots[0]?.replace(/\/[^/]+$/, '') ?? '–'}`, '');
  return lines.join('\n');
}

/** How long the machine could not keep up, and the voltage violations that began meanwhile. */
function keepingUpLines(r: BenchReport): string[] {
  const { notKeepingUpS, overloads } = r.machine;
  if (notKeepingUpS === null || overloads === null) return [];
  if (overloads === 0) return ['  the machine kept up all day (no overrun, event-loop lag and CPU within bounds)'];
  const during = r.voltage.violationsWhileOverloaded ?? 0;
  return [
    `  the machine could not keep up for ${notKeepingUpS} s in ${overloads} stretch${overloads === 1 ? '' : 'es'}` +
      (during > 0
        ? `; ${during} voltage violation${during === 1 ? '' : 's'} began meanwhile: a starved control, not the control's failure alone`
        : '; no voltage violation began meanwhile'),
  ];
}
