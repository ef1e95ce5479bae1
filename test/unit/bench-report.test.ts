import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchGrid } from '../../src/bench/grid.js';
import { deliveryRatio, energyKWh, percentile, voltageKpi } from '../../src/bench/kpi.js';
import { lineChartSvg, niceTicks } from '../../src/bench/plots.js';
import { loadScenario, SCENARIO_DIR } from '../../src/bench/scenario.js';
import { CompressedDay } from '../../src/sim/profiles.js';
import { tempDir } from '../helpers/net.js';

describe('bench KPIs', () => {
  it('percentiles interpolate between order statistics', () => {
    const v = Array.from({ length: 101 }, (_, i) => i);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile([1, 2], 50)).toBe(1.5);
    expect(percentile([], 50)).toBeNaN();
  });

  it('counts a bus going beyond a limit once per excursion and times it', () => {
    const limits = { min: 0.95, max: 1.05 };
    const k = voltageKpi(
      [
        { tMs: 0, voltagesPu: { a: 1.0, b: 1.02 } },
        { tMs: 1000, voltagesPu: { a: 1.06, b: 1.02 } },
        { tMs: 2000, voltagesPu: { a: 1.07, b: 1.051 } },
        { tMs: 3000, voltagesPu: { a: 1.0, b: 1.0 } },
        { tMs: 4000, voltagesPu: { a: 0.94, b: 1.0 } },
        { tMs: 5000, voltagesPu: { a: 1.0, b: 1.0 } },
      ],
      limits,
    );
    expect(k.violations).toBe(3); // a high, b high, a low
    expect(k.violationSeconds).toBe(3);
    expect(k.maxPu).toBe(1.07);
    expect(k.minPu).toBe(0.94);
  });

  it('integrates energy and bounds delivery ratios', () => {
    expect(
      energyKWh([
        { tMs: 0, kW: 2 },
        { tMs: 1_800_000, kW: 2 },
        { tMs: 3_600_000, kW: 4 },
      ]),
    ).toBeCloseTo(2.5, 12);
    expect(deliveryRatio(99, 100)).toBe(0.99);
    expect(deliveryRatio(0, 0)).toBe(1);
  });
});

describe('bench plots', () => {
  it('round ticks cover the range', () => {
    expect(niceTicks(0.95, 1.07)).toEqual([0.95, 0.975, 1, 1.025, 1.05]);
    expect(niceTicks(0, 24)).toEqual([0, 5, 10, 15, 20]);
  });

  it('draws each series with its label and the limits, escaping text', () => {
    const svg = lineChartSvg(
      [
        {
          label: 'max <bus>',
          points: [
            { x: 10, y: 1.04 },
            { x: 11, y: 1.06 },
          ],
        },
        {
          label: 'min',
          points: [
            { x: 10, y: 0.99 },
            { x: 11, y: 0.98 },
          ],
        },
      ],
      { title: 'Voltage envelope', xLabel: 'hour', yLabel: 'pu', limits: [{ y: 1.05, label: 'max 1.05' }] },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain('max &lt;bus&gt;');
    expect(svg).toContain('stroke-dasharray="5 4"');
    expect(svg.trim().endsWith('</svg>')).toBe(true);
  });
});

describe('bench scenarios', () => {
  it('every shipped scenario validates, and the default has two cells and about 20 gateways', () => {
    for (const f of readdirSync(SCENARIO_DIR).filter((x) => x.endsWith('.yaml'))) {
      expect(() => loadScenario(join(SCENARIO_DIR, f)), f).not.toThrow();
    }
    const d = loadScenario('default');
    expect(d.cells).toHaveLength(2);
    const gateways = d.cells.reduce((s, c) => s + c.houses + 1, 0) + (d.aggregator ? 1 : 0);
    expect(gateways).toBeGreaterThanOrEqual(18);
    const large = loadScenario('large');
    expect(large.cells.reduce((s, c) => s + c.houses, 0)).toBeGreaterThanOrEqual(50);
  });

  it('a bad scenario names the field; an unknown name says so', () => {
    const t = tempDir();
    const file = join(t.dir, 'bad.yaml');
    writeFileSync(file, 'name: x\ncells: [{ id: a, houses: 2 }]\nfaults: [{ kind: sigkill, atS: 3 }]\n');
    expect(() => loadScenario(file)).toThrow(/faults\[0\]\.target: a sigkill fault needs a target/);
    expect(() => loadScenario('no-such-scenario')).toThrow(/no scenario "no-such-scenario"/);
    t.remove();
  });
});

describe('bench grid', () => {
  it('midday on the default scenario: over 1.05 pu without control; the volt-var baseline curtails and stays above', () => {
    const s = loadScenario('default');
    const t0 = Date.UTC(2026, 5, 21, 0);
    const grid = new BenchGrid(s, new CompressedDay(t0, 1, 12), t0);
    expect(grid.devices.filter((d) => d.kind === 'pv-inverter')).toHaveLength(16);
    expect(grid.devices.filter((d) => d.rtu)).toHaveLength(4); // two houses of cell-a, inverter + meter each
    let sample = grid.sample(t0);
    for (let i = 1; i <= 40; i++) sample = grid.sample(t0 + i * 100);
    const max = (o: Record<string, number>) => Math.max(...Object.values(o));
    expect(max(sample.voltagesPu)).toBeGreaterThan(1.1);
    expect(sample.curtailedKW).toBe(0);
    expect(max(sample.baselineVoltagesPu)).toBeGreaterThan(1.05);
    expect(max(sample.baselineVoltagesPu)).toBeLessThan(max(sample.voltagesPu));
    expect(sample.baselineCurtailedKW).toBeGreaterThan(1);
    expect(sample.transformerKW['cell-a']).toBeLessThan(0); // the cell exports at noon
  });
});
