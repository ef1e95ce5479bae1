import type { GridSample } from './grid.js';
import { lineChartSvg, type Series } from './plots.js';
import type { BenchRecorder } from './recorder.js';
import type { Scenario } from './scenario.js';

/** The report's charts, written as files at the end of a run and served live by the bench's status page. */
export const PLOT_NAMES = [
  'voltage-envelope.svg',
  'prices.svg',
  'curtailment.svg',
  'transformer.svg',
  'messages.svg',
] as const;

/** Hours of the day made continuous over midnight (a live bench runs day after day): 23.9, 24.1, ... */
function continuousHours<T extends { hour: number }>(points: readonly T[]): (T & { x: number })[] {
  let offset = 0;
  let last = Number.NEGATIVE_INFINITY;
  return points.map((p) => {
    if (p.hour + offset < last - 12) offset += 24;
    last = p.hour + offset;
    return { ...p, x: last };
  });
}

export type PlotName = (typeof PLOT_NAMES)[number];

/** The charts as SVG text, or only the one named (the live page asks for them one at a time). */
export function renderPlots(s: Scenario, r: BenchRecorder, only?: PlotName): [PlotName, string][] {
  const grid = continuousHours(r.grid.values);
  const prices = continuousHours(r.prices.values);
  const envelope = (label: string, pick: (g: GridSample) => Record<string, number>, dashed: boolean): Series[] => [
    { label: `max, ${label}`, points: grid.map((g) => ({ x: g.x, y: Math.max(...Object.values(pick(g))) })), dashed },
    { label: `min, ${label}`, points: grid.map((g) => ({ x: g.x, y: Math.min(...Object.values(pick(g))) })), dashed },
  ];
  const traders = [...new Set(r.prices.values.flatMap((p) => Object.keys(p.prices)))];
  const charts: [PlotName, () => string][] = [
    [
      'voltage-envelope.svg',
      () =>
        lineChartSvg(
          [
            ...envelope('distributed control', (g) => g.voltagesPu, false),
            ...envelope('volt-var only', (g) => g.baselineVoltagesPu, true),
          ],
          {
            title: `Voltage envelope over the day (${s.name})`,
            xLabel: 'hour of day',
            yLabel: 'voltage, pu',
            limits: [
              { y: s.voltageLimitsPu.max, label: `max ${s.voltageLimitsPu.max}` },
              { y: s.voltageLimitsPu.min, label: `min ${s.voltageLimitsPu.min}` },
            ],
          },
        ),
    ],
    [
      'prices.svg',
      () =>
        lineChartSvg(
          traders.map((id) => ({
            label: id,
            points: prices.flatMap((p) => (p.prices[id] === undefined ? [] : [{ x: p.x, y: p.prices[id]! }])),
            dashed: id.endsWith('(level above)'),
          })),
          { title: 'Market price per MG, first slot', xLabel: 'hour of day', yLabel: 'price per kWh' },
        ),
    ],
    [
      'curtailment.svg',
      () =>
        lineChartSvg(
          [
            { label: 'distributed control', points: grid.map((g) => ({ x: g.x, y: g.curtailedKW })) },
            { label: 'volt-var only', points: grid.map((g) => ({ x: g.x, y: g.baselineCurtailedKW })), dashed: true },
          ],
          { title: 'PV curtailed', xLabel: 'hour of day', yLabel: 'kW' },
        ),
    ],
    [
      'transformer.svg',
      () =>
        lineChartSvg(
          s.cells.map((c) => ({ label: c.id, points: grid.map((g) => ({ x: g.x, y: g.transformerKW[c.id] ?? 0 })) })),
          { title: 'Net power through each transformer (+ import)', xLabel: 'hour of day', yLabel: 'kW' },
        ),
    ],
    [
      'messages.svg',
      () =>
        lineChartSvg(
          [{ label: 'received, all gateways', points: r.messageRate.values.map((m) => ({ x: m.tS, y: m.perS })) }],
          { title: 'Messages per second', xLabel: 'seconds since start', yLabel: 'messages/s' },
        ),
    ],
  ];
  return charts.filter(([name]) => !only || name === only).map(([name, draw]) => [name, draw()]);
}
