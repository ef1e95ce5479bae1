import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toCsv } from '../core/csv.js';
import { Ledger } from '../platform/ledger/ledger.js';
import { type SettlementSummary, settlementSummary } from '../platform/live-settlement.js';
import { TradeReports } from '../platform/trades.js';
import { auditMeterIntervals, type MeterAudit, meterIntervalsInFlight } from './audit.js';
import type { BenchBroker } from './broker.js';
import { PLATFORM_ID } from './configs.js';
import type { FaultReport } from './fault-injection.js';
import type { MachineWatch } from './keeping-up.js';
import { deliveryRatio } from './kpi.js';
import type { MachineLoad } from './machine-load.js';
import type { BenchGateway, ControllerProcess } from './processes.js';
import { histogramQuantile, parsePrometheus, type Sample, sumOf } from './prometheus.js';
import type { BenchRecorder } from './recorder.js';
import { renderPlots } from './report-plots.js';
import type { Scenario } from './scenario.js';
import type { WireObserver } from './wire-audit.js';

const CLASSES = ['mkt', 'dr', 'meter', 'settle', 'gossip'] as const;

/** The KPI report of a bench run (`p2p-edge bench --json`). */
export type BenchReport = Awaited<ReturnType<typeof benchReport>>;

/**
 * The KPI report of a bench run, from the gateways' last metrics and states, the recorder and the
 * platform's database (read after the gateways are stopped, so that every outbox is saved); written
 * with the SVG plots and `timeseries.csv` to the run directory.
 */
export async function benchReport(
  s: Scenario,
  r: {
    dir: string;
    recorder: BenchRecorder;
    processes: ControllerProcess[];
    gateways: BenchGateway[];
    machine?: MachineLoad;
    /** How long the machine could not keep up during the day (`keeping-up.ts`), and what happened meanwhile. */
    keepingUp?: ReturnType<MachineWatch['result']>;
    broker: BenchBroker;
    platformDb: string;
    faults: FaultReport[];
    durationS: number;
    /** The settlement section counts the units drafted before this time (the run's end). */
    settledBeforeMs?: number;
    stateDir: string;
    loss: number;
    /** The third party on the brokers: its audit is the `privacy` section. */
    wire?: WireObserver;
  },
) {
  const texts = await Promise.all(r.gateways.map((g) => g.metrics()));
  const perGateway = texts.map((t) => (t === undefined ? undefined : parsePrometheus(t)));
  const metrics: Sample[] = perGateway.flatMap((m) => m ?? []);
  const states = await Promise.all(r.gateways.map((g) => g.state()));
  const rec = r.recorder;
  rec.addStates(states, rec.grid.values.at(-1)?.hour ?? 0);
  for (const [i, g] of r.gateways.entries()) rec.delivery.add(g.id, g.host.starts, perGateway[i], states[i]);
  const endToEnd = rec.delivery.result();
  // The reliable classes as their senders count them (acknowledged by every receiver, after retries);
  // gossip, which is not acknowledged, from the receivers' sequence gaps.
  const delivery = {} as Record<(typeof CLASSES)[number], number | null>;
  for (const cls of CLASSES) {
    if (cls in endToEnd.ratio) {
      delivery[cls] = endToEnd.ratio[cls] ?? null;
      continue;
    }
    const received = sumOf(metrics, 'p2p_messages_received_total', { class: cls });
    const gaps = sumOf(metrics, 'p2p_sequence_gaps_total', { class: cls });
    delivery[cls] = received + gaps > 0 ? Number(deliveryRatio(received, received + gaps).toFixed(4)) : null;
  }
  const live = rec.voltage.result();
  const baseline = rec.baseline.result();
  const traders = states.flatMap((st) => st?.roles['mg-trader'] ?? []);
  const couplers = states.flatMap((st) => st?.roles['coupling-agent'] ?? []);
  const fewest = (counts: number[]) => (counts.length ? Math.min(...counts) : 0);
  const cellGap = rec.cellGap.result();
  const upperGap = rec.upperGap.result();
  const rejected: Record<string, number> = {};
  for (const reason of ['signature', 'replay', 'expired', 'member', 'schema', 'duplicate', 'size', 'confidential'])
    rejected[reason] = sumOf(metrics, 'p2p_messages_rejected_total', { reason });
  // Stopped before the audit: each gateway saves its outbox, the metering intervals still in flight.
  await Promise.all(r.processes.map((p) => p.stop()));
  let ledgerEntries: number | null = null;
  let settlement: SettlementSummary | null = null;
  let readings: number | null = null;
  let trades: { stored: number; reports: number; intervals: number } | null = null;
  let audit: Map<string, MeterAudit> | undefined;
  let inFlight = 0;
  let intervalsSent = 0;
  try {
    const ledger = Ledger.open(r.platformDb, { mustExist: true });
    ledgerEntries = ledger.entries().length;
    settlement = settlementSummary(ledger, { draftedBeforeMs: r.settledBeforeMs });
    if (r.settledBeforeMs !== undefined)
      settlement = { ...settlement, draftedBefore: new Date(r.settledBeforeMs).toISOString() };
    readings = (ledger.db.prepare('SELECT COUNT(*) AS n FROM platform_readings').get() as { n: number }).n;
    const stored = new TradeReports(ledger.db).list();
    trades = {
      stored: stored.length,
      reports: (ledger.db.prepare('SELECT COUNT(*) AS n FROM platform_trade_reports').get() as { n: number }).n,
      intervals: new Set(stored.map((t) => t.interval)).size,
    };
    const pending = meterIntervalsInFlight(
      r.stateDir,
      r.gateways.map((g) => g.id),
    );
    inFlight = [...pending.values()].reduce((a, b) => a + b, 0);
    audit = auditMeterIntervals(ledger.db, rec.delivery.intervalsSent(), pending);
    intervalsSent = [...rec.delivery.intervalsSent().values()].reduce((n, set) => n + set.size, 0);
    ledger.close();
  } catch {
    // the platform gateway never wrote its database
  }
  const sumAudit = (members: Iterable<MeterAudit>) =>
    [...members].reduce((t, a) => ({ missing: t.missing + a.missing, duplicated: t.duplicated + a.duplicated }), {
      missing: 0,
      duplicated: 0,
    });
  const total = audit ? sumAudit(audit.values()) : undefined;
  // A killed gateway answers for its own readings; the platform, the broker and the network for everyone's.
  const faults = r.faults.map((f) => {
    const gateway = f.kind === 'sigkill' && f.target !== PLATFORM_ID ? f.target : undefined;
    const counted = gateway ? (audit?.get(gateway) ?? (audit ? { missing: 0, duplicated: 0 } : undefined)) : total;
    return { ...f, lostAcked: counted?.missing ?? null, duplicated: counted?.duplicated ?? null };
  });
  const peakTransformerPct = Math.max(
    0,
    ...s.cells.map((c) => (100 * (rec.peakTransformerKW[c.id] ?? 0)) / c.transformerKVA),
  );
  const gaps = [cellGap.worstRelativeGap, upperGap.worstRelativeGap].filter((g): g is number => g !== null);
  const out = {
    scenario: s.name,
    durationS: Number(r.durationS.toFixed(1)),
    speedup: s.speedup,
    gateways: r.gateways.length,
    broker: r.broker.kind,
    loss: r.loss,
    delivery: { ...delivery, firstAttempt: endToEnd.firstAttempt },
    /** Reliable messages as their senders counted them: sent, given up by an outbox. */
    reliableMessages: { sent: endToEnd.sent, givenUp: endToEnd.givenUp, byKind: endToEnd.byKind },
    /** At the sender, from a message's first send to the acknowledgement completing it. */
    deliveryLatencyMs: endToEnd.latencyMs,
    latencyMs: {
      p50: Number((histogramQuantile(metrics, 'p2p_message_latency_seconds', 0.5) * 1000).toFixed(2)),
      p99: Number((histogramQuantile(metrics, 'p2p_message_latency_seconds', 0.99) * 1000).toFixed(2)),
    },
    trading: {
      intervals: fewest(traders.map((t) => t.sessions)),
      converged: fewest(traders.map((t) => t.convergedSessions)),
      worstCostGap: gaps.length ? Math.max(...gaps) : null,
      worstImbalanceKWh: Math.max(0, ...traders.map((t) => t.worstImbalanceKWh)),
      costGap: cellGap,
      upper: {
        intervals: fewest(couplers.map((c) => c.upwardTrades)),
        converged: fewest(couplers.map((c) => c.convergedUpwardTrades)),
        costGap: upperGap,
      },
    },
    voltage: {
      ...live,
      maxPu: Number(live.maxPu.toFixed(4)),
      minPu: Number(live.minPu.toFixed(4)),
      /** Violations that began while the machine could not keep up: the control may have been starved. */
      violationsWhileOverloaded: r.keepingUp?.violationsWhileOverloaded ?? null,
      voltVarBaseline: {
        violations: baseline.violations,
        violationSeconds: baseline.violationSeconds,
        maxPu: Number(baseline.maxPu.toFixed(4)),
        minPu: Number(baseline.minPu.toFixed(4)),
        curtailedKWh: Number(rec.baselineCurtailed.kWh.toFixed(2)),
      },
    },
    curtailedKWh: Number(rec.curtailed.kWh.toFixed(2)),
    peakTransformerLoadingPct: Number(peakTransformerPct.toFixed(1)),
    rejectedMessages: rejected,
    machine: machineSection(r.machine, sumOf(metrics, 'p2p_cycle_overruns_total'), r.keepingUp),
    processes: r.processes.map((p) => ({
      id: p.id,
      gateways: p.gateways.map((g) => g.id),
      rssMB: Number(p.peakRssMB.toFixed(1)),
      cpuS: Number(p.cpuS.toFixed(2)),
      starts: p.starts,
    })),
    ledger: {
      db: r.platformDb,
      entries: ledgerEntries,
      readings,
      /** The trades the traders reported (stored once each), their reports, and the intervals they cover. */
      trades,
      /** Metering intervals the houses said they sent (their states, sampled through the run). */
      meterIntervalsSent: intervalsSent,
      meterIntervalsMissing: total?.missing ?? null,
      meterIntervalsInFlight: inFlight,
      meterIntervalsDuplicated: total?.duplicated ?? null,
    },
    settlement,
    privacy: r.wire?.report() ?? null,
    faults,
    plots: renderPlots(s, rec).map(([name, svg]) => {
      const file = join(r.dir, name);
      writeFileSync(file, svg);
      return file;
    }),
  };
  const unsolved = [...rec.cellGap.unsolvedIntervals(), ...rec.upperGap.unsolvedIntervals()];
  if (unsolved.length > 0)
    writeFileSync(join(r.dir, 'unsolved-intervals.json'), `${JSON.stringify(unsolved, null, 2)}\n`);
  writeFileSync(join(r.dir, 'report.json'), `${JSON.stringify(out, null, 2)}\n`);
  writeFileSync(join(r.dir, 'timeseries.csv'), timeseriesCsv(s, rec));
  return out;
}

/** The recorded grid as CSV (one row per kept sample), for a spreadsheet or a plotting tool. */
function timeseriesCsv(s: Scenario, r: BenchRecorder): string {
  const cells = s.cells.map((c) => c.id);
  const header = [
    'hour',
    'v_max_pu',
    'v_min_pu',
    'v_max_volt_var_pu',
    'v_min_volt_var_pu',
    'curtailed_kw',
    'curtailed_volt_var_kw',
    ...cells.map((c) => `transformer_${c}_kw`),
  ];
  const rows = r.grid.values.map((g) => {
    const v = Object.values(g.voltagesPu);
    const b = Object.values(g.baselineVoltagesPu);
    return [
      g.hour.toFixed(4),
      Math.max(...v).toFixed(5),
      Math.min(...v).toFixed(5),
      Math.max(...b).toFixed(5),
      Math.min(...b).toFixed(5),
      g.curtailedKW.toFixed(3),
      g.baselineCurtailedKW.toFixed(3),
      ...cells.map((c) => (g.transformerKW[c] ?? 0).toFixed(3)),
    ];
  });
  return toCsv(header, rows);
}

/**
 * How hard the run pressed the machine: its CPU busy over the day, the gateways' control cycles that
 * overran, and the memory of every bench process together; `saturated` says the CPU was (nearly)
 * all taken, so that a late control or message is read as the machine's, not the gateways'.
 */
function machineSection(
  machine: MachineLoad | undefined,
  cycleOverruns: number,
  keepingUp: ReturnType<MachineWatch['result']> | undefined,
) {
  const m = machine?.result();
  return {
    cpuBusyPct: m?.cpuBusyPct ?? null,
    saturated: m?.saturated ?? null,
    cycleOverruns,
    /** Seconds of the day the machine could not keep up (overruns, event-loop lag, CPU: `keeping-up.ts`), and how many times. */
    notKeepingUpS: keepingUp?.notKeepingUpS ?? null,
    overloads: keepingUp?.overloads ?? null,
    peakTotalRssMB: m?.peakTotalRssMB ?? null,
    helpers: m?.helpers ?? [],
  };
}
