import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, eventually, freePort, startCli, tempDir } from '../helpers/net.js';

// One real gateway (config/single-gateway.example.yaml on free ports) as systemd would run it: its
// stderr is the "journal stream" named by JOURNAL_STREAM. What it exports is checked against the
// Grafana dashboard's queries, what it logs against the journal's priority prefixes.
const REPO = join(import.meta.dirname, '..', '..');
const tmp = tempDir('p2p-edge-observability-');
afterAll(() => tmp.remove());

/**
 * Metric names a PromQL expression reads: identifiers that are not functions, keywords or label
 * names, with label matchers, strings, durations and grouping clauses taken out first.
 */
function metricNames(expr: string): string[] {
  const KEYWORDS = new Set([
    'by',
    'without',
    'on',
    'ignoring',
    'group_left',
    'group_right',
    'bool',
    'and',
    'or',
    'unless',
    'offset',
  ]);
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  // An identifier followed by "(" is a function.
  return [...bare.matchAll(/\b([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)]
    .filter((m) => m[2] === undefined && !KEYWORDS.has(m[1] as string))
    .map((m) => m[1] as string);
}

/** Every metric name a /metrics page declares, histograms with their series suffixes. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name as string);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

/** The dashboard's PromQL expressions (panels and template variables). */
function dashboardExprs(): string[] {
  const dashboard = JSON.parse(readFileSync(join(REPO, 'deploy', 'grafana', 'p2p-edge.json'), 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
    templating: { list: { query?: unknown }[] };
  };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const v of dashboard.templating.list) {
    const q = v.query as { query?: string } | string | undefined;
    const text = typeof q === 'object' ? q.query : undefined;
    const labelValues = text && /^label_values\((\w+),/.exec(text);
    if (labelValues) exprs.push(labelValues[1] as string);
  }
  return exprs;
}

/** The example config on free ports, its state under this test's directory. */
async function exampleOnFreePorts(name: string): Promise<{ config: string; statusPort: number }> {
  const statusPort = await freePort();
  const brokerPort = await freePort();
  const yaml = readFileSync(join(REPO, 'config', 'single-gateway.example.yaml'), 'utf8')
    .replace(/port: 8081/, `port: ${statusPort}`)
    .replaceAll('1884', String(brokerPort))
    .replace('stateDir: ./var', `stateDir: ${join(tmp.dir, name)}`);
  expect(yaml).toContain(`port: ${statusPort}`);
  const file = join(tmp.dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return { config: file, statusPort };
}

describe('observability of a running gateway', () => {
  it('the metric names work as parsed from PromQL', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, scale) (rate(p2p_cycle_duration_seconds_bucket{gateway=~"$gateway"}[5m])))',
      ),
    ).toEqual(['p2p_cycle_duration_seconds_bucket']);
    expect(metricNames('-sum by (g) (a_total{x="y"}) / on (g) b > 0')).toEqual(['a_total', 'b']);
  });

  it('exports what the Grafana dashboard queries; logs carry their journal priority on the journal stream', async () => {
    const { config, statusPort } = await exampleOnFreePorts('journal');
    // systemd's side: the gateway's stderr is a file, named by JOURNAL_STREAM as device:inode.
    const stderrFile = join(tmp.dir, 'journal-stream.log');
    const fd = openSync(stderrFile, 'w');
    const { dev, ino } = fstatSync(fd, { bigint: true });
    const child = spawn(process.execPath, [BIN, 'run', '--config', config], {
      env: { ...process.env, JOURNAL_STREAM: `${dev}:${ino}` },
      stdio: ['ignore', 'ignore', fd],
    });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let metrics: string;
    try {
      metrics = await eventually(async () => {
        const text = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
        return /p2p_device_power_watts\{device="meter-1",usage="load",gateway="house-1"\} -?\d/.test(text) &&
          /nodejs_eventloop_lag_p99_seconds\{gateway="house-1"\} \d/.test(text)
          ? text
          : undefined;
      }, 40_000);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);

    // Every name the dashboard reads is one this gateway exports.
    const exported = exportedNames(metrics);
    // p2p_alarms_active{kind,severity} comes with the gateway's alarms (src/agent/alarms.ts), added
    // beside this dashboard: allowed here until the gauge is on the page.
    const ALLOWED_MISSING = new Set(['p2p_alarms_active']);
    const queried = new Set(dashboardExprs().flatMap(metricNames));
    expect(queried.size).toBeGreaterThan(20);
    expect([...queried].filter((n) => !exported.has(n) && !ALLOWED_MISSING.has(n))).toEqual([]);

    // Device readings with units in their names; the build; the event loop.
    expect(metrics).toMatch(/p2p_device_power_watts\{device="pv-1",usage="pv",gateway="house-1"\} (-\d|0)/);
    expect(metrics).toMatch(/p2p_device_voltage_volts\{device="meter-1",phase="3",gateway="house-1"\} 2\d\d/);
    expect(metrics).toMatch(/# TYPE p2p_device_energy_import_watt_hours_total counter/);
    const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
    expect(metrics).toContain(
      `p2p_build_info{version="${version}",node="${process.versions.node}",gateway="house-1"} 1`,
    );
    expect(metrics).toMatch(/p2p_voltage_limit_pu\{limit="max",gateway="house-1"\} 1.05/);
    expect(metrics).not.toMatch(/p2p_lte_signal/);

    // Each log line: `<priority>` then pino's JSON; the priority from the level (journald's numbers).
    const lines = readFileSync(stderrFile, 'utf8').split('\n').filter(Boolean);
    const priorities = new Set<string>();
    for (const line of lines) {
      const m = /^<(\d)>(\{.*\})$/.exec(line);
      expect(m, line).not.toBeNull();
      const level = (JSON.parse(m?.[2] as string) as { level: number }).level;
      const expected = { 60: '3', 50: '3', 40: '4', 30: '6', 20: '7', 10: '7' }[level];
      expect(m?.[1], line).toBe(expected);
      priorities.add(m?.[1] as string);
    }
    // The lab config's warning (messages unsigned) is a warning to the journal, the rest information.
    expect(lines.find((l) => l.includes('comms.security.unsigned'))).toMatch(/^<4>\{/);
    expect(priorities).toEqual(new Set(['4', '6']));
  }, 60_000);

  it('without the journal on stderr (a pipe, or no JOURNAL_STREAM) the lines stay plain JSON', async () => {
    for (const env of [{ JOURNAL_STREAM: '8:12345' }, { JOURNAL_STREAM: '' }]) {
      const { config, statusPort } = await exampleOnFreePorts('plain');
      const gw = startCli(['run', '--config', config], env);
      try {
        // Up once its status page answers (it stops cleanly on SIGTERM from then on).
        await eventually(async () => (await fetch(`http://127.0.0.1:${statusPort}/healthz`)).ok || undefined, 40_000);
      } finally {
        gw.child.kill('SIGTERM');
      }
      expect(await gw.exited).toBe(0);
      const lines = gw.output().split('\n').filter(Boolean);
      expect(lines.length).toBeGreaterThan(2);
      for (const line of lines) expect(line).toMatch(/^\{"level":\d+,/);
    }
  }, 90_000);
});
