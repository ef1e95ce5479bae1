/**
 * `npm run bench:node-flags`: what the node settings of a gateway (deploy/systemd/p2p-edge.service,
 * `GATEWAY_NODE_FLAGS` in src/bench/processes.ts) save in memory and cost in CPU, measured side by
 * side in one run of the default bench: its inverter gateways are started with one setting each, in
 * turn, so that each setting runs on a quarter of them through the same day (the other gateways run
 * with the unit's settings). Per setting: the median over its gateways of the median resident memory
 * over the second half of the run, the peak, and the CPU time over the run, and each as a ratio to
 * node's defaults. Prints a table and writes bench/results/node-flags.json.
 *
 *   npm run bench:node-flags -- [--duration 80]
 */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GATEWAY_NODE, type NodeSettings } from '../src/bench/processes.js';
import { table } from '../src/bench/report-table.js';
import { runBench } from '../src/bench/run.js';
import { loadScenario } from '../src/bench/scenario.js';

const SETTINGS: { name: string; node: NodeSettings }[] = [
  { name: 'node defaults', node: { flags: [], env: {} } },
  { name: '1 MB young generation', node: { flags: ['--max-semi-space-size=1'], env: {} } },
  {
    name: '+ one GC, V8 and 2 libuv threads',
    node: {
      flags: ['--max-semi-space-size=1', '--single-threaded-gc', '--v8-pool-size=1'],
      env: { UV_THREADPOOL_SIZE: '2' },
    },
  },
  { name: '+ --lite-mode (the unit)', node: GATEWAY_NODE },
];

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const durationS = Number(arg('duration', '80'));
// One gateway per process: each setting is a process's.
const scenario = { ...loadScenario('default'), gatewaysPerProcess: 1 };

const settingOf = new Map<string, number>();
const rssSamples = new Map<string, { tS: number; rssMB: number }[]>();
const report = await runBench(scenario, {
  durationS,
  progress: (line) => process.stderr.write(`${line}\n`),
  nodeSettings: (id) => {
    if (!id.startsWith('inv-')) return undefined;
    const index = settingOf.size % SETTINGS.length;
    settingOf.set(id, index);
    return SETTINGS[index]!.node;
  },
  onProcessSample: (tS, samples) => {
    for (const s of samples) {
      if (s.rssMB === undefined || !settingOf.has(s.id)) continue;
      const points = rssSamples.get(s.id) ?? [];
      points.push({ tS, rssMB: s.rssMB });
      rssSamples.set(s.id, points);
    }
  },
});

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const results = SETTINGS.map((setting, index) => {
  const gateways = report.processes
    .filter((p) => settingOf.get(p.id) === index)
    .map((p) => {
      const late = (rssSamples.get(p.id) ?? []).filter((x) => x.tS >= report.durationS / 2).map((x) => x.rssMB);
      return { id: p.id, rssMB: late.length ? median(late) : null, peakRssMB: p.rssMB, cpuS: p.cpuS };
    });
  const rss = gateways.flatMap((g) => (g.rssMB === null ? [] : [g.rssMB]));
  return {
    setting: setting.name,
    flags: setting.node.flags,
    env: setting.node.env,
    gateways,
    rssMB: rss.length ? median(rss) : null,
    rssRangeMB: rss.length ? [Math.min(...rss), Math.max(...rss)] : null,
    peakRssMB: median(gateways.map((g) => g.peakRssMB)),
    cpuS: median(gateways.map((g) => g.cpuS)),
    cpuRangeS: [Math.min(...gateways.map((g) => g.cpuS)), Math.max(...gateways.map((g) => g.cpuS))],
  };
});
const base = results[0]!;
const ratio = (x: number | null, of: number | null) => (x === null || !of ? null : x / of);
const rows = results.map((r) => ({
  ...r,
  rssRatio: ratio(r.rssMB, base.rssMB),
  cpuRatio: ratio(r.cpuS, base.cpuS),
}));
const f = (x: number | null, digits = 1) => (x === null ? '–' : x.toFixed(digits));
process.stdout.write(
  `${table([
    ['setting', 'gateways', 'RSS MB (2nd half)', 'range', 'peak MB', 'CPU s', 'range', 'RSS ×', 'CPU ×'],
    ...rows.map((r) => [
      r.setting,
      String(r.gateways.length),
      f(r.rssMB),
      r.rssRangeMB ? `${f(r.rssRangeMB[0]!)}-${f(r.rssRangeMB[1]!)}` : '–',
      f(r.peakRssMB),
      f(r.cpuS, 2),
      `${f(r.cpuRangeS[0]!, 2)}-${f(r.cpuRangeS[1]!, 2)}`,
      f(r.rssRatio, 2),
      f(r.cpuRatio, 2),
    ]),
  ]).join('\n')}\n`,
);
const runFrom = fromBuild() ? 'the build (dist/)' : 'the sources through tsx';
process.stdout.write(
  `default scenario, ${report.durationS} s, ${report.gateways} gateways, each started from ${runFrom}; ratios to node defaults\n`,
);

const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'node-flags.json'),
  `${JSON.stringify({ date: new Date().toISOString(), scenario: scenario.name, durationS: report.durationS, runFrom, settings: rows }, null, 2)}\n`,
);

/** Whether bin/p2p-edge.mjs starts the gateways from the build: it does when dist/.built is newer than every source. */
function fromBuild(): boolean {
  const root = join(import.meta.dirname, '..');
  const stamp = join(root, 'dist', '.built');
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  return (
    process.env.P2P_EDGE_FROM_SOURCE !== '1' &&
    existsSync(stamp) &&
    statSync(stamp).mtimeMs >= newest(join(root, 'src'))
  );
}
