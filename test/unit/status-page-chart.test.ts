import { describe, expect, it } from 'vitest';
import { CHART_JS } from '../../src/agent/status-page/chart.js';
import { COMMON_JS } from '../../src/agent/status-page/common.js';

// The status page's chart code is browser JavaScript kept as a string; here it runs as the page runs it.
type Spec = {
  id: string;
  title: string;
  unit: string;
  series: { name: string; points: { ts: number; v: number }[] }[];
  limits?: { v: number; label: string }[];
};
const chart = new Function(`${COMMON_JS}${CHART_JS}; return { niceStep, timeTicks, timeChart };`)() as {
  niceStep(span: number, n: number): number;
  timeTicks(t0: number, t1: number, n: number): number[];
  timeChart(spec: Spec): string;
};

const T0 = Date.UTC(2026, 5, 3, 10, 0, 3);
const texts = (svg: string, cls: string) =>
  [...svg.matchAll(new RegExp(`<text class="${cls}"[^>]*>([^<]*)</text>`, 'g'))].map((m) => m[1]);
const attr = (tag: string, name: string) => Number(new RegExp(`${name}="([-\\d.]+)"`).exec(tag)![1]);

describe('timeChart', () => {
  it('picks 1-2-5 steps and round clock times for the ticks', () => {
    expect(chart.niceStep(0.1, 4)).toBeCloseTo(0.05, 12);
    expect(chart.niceStep(7, 4)).toBe(2);
    expect(chart.niceStep(300, 4)).toBe(100);
    // 100 s from 10:00:03: every 30 s (20 s is no step: 1, 2, 5, 10, 15, 30 s…).
    expect(chart.timeTicks(T0, T0 + 100_000, 6).map((t) => new Date(t).toISOString().slice(11, 19))).toEqual([
      '10:00:30',
      '10:01:00',
      '10:01:30',
    ]);
    // A short span still gets two ticks.
    expect(chart.timeTicks(T0 + 400, T0 + 2_500, 6)).toHaveLength(2);
  });

  it('draws the title, clock-time ticks, the unit, the series and labelled limit lines where the y ticks put them', () => {
    const svg = chart.timeChart({
      id: 'v',
      title: 'Voltage at each house',
      unit: 'voltage (pu)',
      series: [
        { name: 'inv-1', points: [0, 1, 2, 3].map((i) => ({ ts: T0 + i * 60_000, v: 1 + 0.01 * i })) },
        { name: 'inv-2', points: [] },
      ],
      limits: [
        { v: 1.05, label: '1.05 pu max' },
        { v: 0.95, label: '0.95 pu min' },
      ],
    });
    expect(svg).toContain('<title id="v-title">Voltage at each house</title>');
    expect(texts(svg, 'chart-title')).toEqual(['Voltage at each house']);
    expect(texts(svg, 'unit')).toEqual(['voltage (pu)']);
    expect(texts(svg, 'limit-label')).toEqual(['1.05 pu max', '0.95 pu min']);
    const xTicks = texts(svg, 'tick x-tick');
    expect(xTicks.length).toBeGreaterThanOrEqual(2);
    // 3 minutes: a tick every 30 s.
    for (const t of xTicks) expect(t).toMatch(/^\d\d:\d\d:(00|30)$/);
    // The series without points is left out of the legend; the one with points is a polyline of 4 points.
    expect(texts(svg, 'legend')).toEqual(['inv-1']);
    expect(/points="([^"]+)"/.exec(svg)![1]!.split(' ')).toHaveLength(4);
    // Each limit line lies where the y axis's own tick labels say its value is.
    const yTicks = [...svg.matchAll(/<text class="tick y-tick"[^>]*y="([-\d.]+)"[^>]*>([^<]*)<\/text>/g)].map((m) => ({
      y: Number(m[1]) - 4,
      v: Number(m[2]),
    }));
    expect(yTicks.length).toBeGreaterThanOrEqual(2);
    const [a, b] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
    const yOf = (v: number) => a.y + ((v - a.v) * (b.y - a.y)) / (b.v - a.v);
    const limitLines = [...svg.matchAll(/<line class="limit"[^>]*\/>/g)].map((m) => attr(m[0], 'y1'));
    expect(limitLines[0]).toBeCloseTo(yOf(1.05), 0);
    expect(limitLines[1]).toBeCloseTo(yOf(0.95), 0);
    expect(limitLines[0]!).toBeLessThan(limitLines[1]!);
  });

  it('escapes names and says when there is nothing to draw', () => {
    const svg = chart.timeChart({ id: 'p', title: 'Price <per> kWh', unit: 'price per kWh', series: [] });
    expect(svg).toContain('Price &lt;per&gt; kWh');
    expect(texts(svg, 'legend')).toEqual(['no values yet']);
  });
});
