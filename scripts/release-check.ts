// `npm run release:check [-- --tarball FILE]`: what a gateway gets from a release. Builds the release
// (`npm run release`) unless given one, installs it as a gateway does but without install scripts
// (`npm install --omit=dev --ignore-scripts` into an empty folder, so no native module is built),
// checks that no compiler came with it, starts the installed `p2p-edge run` on simulated devices with
// the node flags of the systemd unit, and prints the installed size and the gateway's resident memory.
// Writes bench/results/release-install.json. test/hil/release-install.test.ts uses the same steps.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort } from '../src/core/net.js';

export const REPO = resolve(import.meta.dirname, '..');
/** Packages that only building or running TypeScript needs: a release must not bring them. */
export const BUILD_ONLY_PACKAGES = ['tsx', 'esbuild', 'typescript'];
const RESULT_FILE = join(REPO, 'bench', 'results', 'release-install.json');

/** `npm run release`: builds dist/ and packs it; the tarball's absolute path. */
export function buildRelease(): string {
  const out = execFileSync(process.execPath, [join(REPO, 'scripts', 'release.mjs')], {
    cwd: REPO,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const last = out.trim().split('\n').pop();
  if (!last) throw new Error('release: no tarball named');
  return resolve(REPO, last);
}

export interface InstalledRelease {
  /** The folder the release was installed into (its node_modules, package.json). */
  dir: string;
  /** The installed package: node_modules/p2p-edge. */
  packageDir: string;
  /** The `p2p-edge` command npm linked (node_modules/.bin/p2p-edge). */
  bin: string;
}

/**
 * `npm install --omit=dev --ignore-scripts TARBALL` in an empty folder. Packages come from npm's cache
 * where it has them (--prefer-offline), from the registry otherwise.
 */
export function installRelease(tarball: string, dir: string): InstalledRelease {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'gateway', private: true })}\n`);
  execFileSync(
    'npm',
    ['install', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', tarball],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 },
  );
  return {
    dir,
    packageDir: join(dir, 'node_modules', 'p2p-edge'),
    bin: join(dir, 'node_modules', '.bin', 'p2p-edge'),
  };
}

/** Every package folder under a node_modules, nested ones too: name → paths. */
export function installedPackages(nodeModules: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (name: string, path: string) => {
    found.set(name, [...(found.get(name) ?? []), path]);
    const nested = join(path, 'node_modules');
    if (statSync(nested, { throwIfNoEntry: false })?.isDirectory()) walk(nested);
  };
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.name.startsWith('@')) {
        for (const scoped of readdirSync(path, { withFileTypes: true }))
          if (scoped.isDirectory()) add(`${entry.name}/${scoped.name}`, join(path, scoped.name));
      } else {
        add(entry.name, path);
      }
    }
  };
  walk(nodeModules);
  return found;
}

/** The build-only packages found, including esbuild's platform packages (@esbuild/linux-x64...). */
export function buildOnlyPackagesIn(nodeModules: string): string[] {
  return [...installedPackages(nodeModules).keys()]
    .filter((name) => BUILD_ONLY_PACKAGES.includes(name) || name.startsWith('@esbuild/'))
    .sort();
}

/** Bytes of all files under a folder (what the files hold, not the blocks they take). */
export function folderBytes(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) bytes += folderBytes(path);
    else if (entry.isFile()) bytes += statSync(path).size;
  }
  return bytes;
}

/** The node flags and environment of the unit's ExecStart/Environment lines (deploy/systemd). */
export function unitNodeSettings(unitFile: string): { flags: string[]; env: Record<string, string> } {
  const unit = readFileSync(unitFile, 'utf8');
  const exec = /^ExecStart=\S*node((?:\s+--\S+)*)\s/m.exec(unit);
  if (!exec) throw new Error(`${unitFile}: no ExecStart running node`);
  const flags = (exec[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(\w+)=(\S*)$/gm)) env[m[1] as string] = m[2] as string;
  return { flags, env };
}

/**
 * config/single-gateway.example.yaml of the installed release (simulated devices, no peers) with its
 * status page on `statusPort` and its state under `stateDir`; returns the config file's path.
 */
export function writeGatewayConfig(release: InstalledRelease, dir: string, statusPort: number): string {
  const config = parse(readFileSync(join(release.packageDir, 'config', 'single-gateway.example.yaml'), 'utf8'));
  config.status = { ...config.status, host: '127.0.0.1', port: statusPort };
  config.stateDir = join(dir, 'state');
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

/** Resident memory of a process, kB (VmRSS in /proc/<pid>/status). */
export function residentKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]);
}

export interface RunningGateway {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `p2p-edge run --config FILE` from the installed release, started as the systemd unit starts it. */
export function startInstalledGateway(release: InstalledRelease, configFile: string): RunningGateway {
  const { flags, env } = unitNodeSettings(join(release.packageDir, 'deploy', 'systemd', 'p2p-edge.service'));
  const child = spawn(process.execPath, [...flags, release.bin, 'run', '--config', configFile], {
    cwd: release.dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/** Waits until `url` answers 200; its body. */
export async function waitForOk(url: string, timeoutMs: number, gateway: RunningGateway): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (gateway.child.exitCode !== null)
      throw new Error(`the gateway exited (${gateway.child.exitCode}):\n${gateway.output()}`);
    try {
      const r = await fetch(url);
      if (r.ok) return await r.text();
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${gateway.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The largest resident memory over `durationMs`, sampled every 250 ms, kB. */
export async function peakResidentKiB(pid: number, durationMs: number): Promise<number> {
  let peak = 0;
  const until = Date.now() + durationMs;
  while (Date.now() < until) {
    peak = Math.max(peak, residentKiB(pid));
    await new Promise((r) => setTimeout(r, 250));
  }
  return peak;
}

/** How long the gateway runs after it is healthy before its memory is read, and over how long. */
export const RSS_SETTLE_MS = 3000;
export const RSS_WINDOW_MS = 3000;

export interface ReleaseFigures {
  tarball: string;
  tarballMB: number;
  installedMB: number;
  packages: number;
  buildOnlyPackages: string[];
  gatewayRssMB: number;
  node: string;
  arch: string;
  measuredAt: string;
}

async function main(): Promise<void> {
  const tarballArg = process.argv.indexOf('--tarball');
  const tarball = tarballArg > 0 ? resolve(process.argv[tarballArg + 1] ?? '') : buildRelease();
  const dir = mkdtempSync(join(tmpdir(), 'p2p-edge-release-'));
  try {
    const release = installRelease(tarball, join(dir, 'install'));
    const nodeModules = join(release.dir, 'node_modules');
    const port = await freePort();
    const gateway = startInstalledGateway(release, writeGatewayConfig(release, dir, port));
    let rssKiB: number;
    try {
      await waitForOk(`http://127.0.0.1:${port}/healthz`, 30_000, gateway);
      await new Promise((r) => setTimeout(r, RSS_SETTLE_MS));
      rssKiB = await peakResidentKiB(gateway.child.pid as number, RSS_WINDOW_MS);
    } finally {
      gateway.child.kill('SIGTERM');
    }
    const exit = await gateway.exited;
    if (exit.code !== 0) throw new Error(`the gateway exited with ${exit.code ?? exit.signal} on SIGTERM`);
    const figures: ReleaseFigures = {
      tarball: tarball.startsWith(REPO) ? tarball.slice(REPO.length + 1) : tarball,
      tarballMB: round2(statSync(tarball).size / 1e6),
      installedMB: round2(folderBytes(nodeModules) / 1e6),
      packages: installedPackages(nodeModules).size,
      buildOnlyPackages: buildOnlyPackagesIn(nodeModules),
      gatewayRssMB: round2(rssKiB / 1024),
      node: process.version,
      arch: `${process.platform}-${process.arch}`,
      measuredAt: new Date().toISOString(),
    };
    mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
    writeFileSync(RESULT_FILE, `${JSON.stringify(figures, null, 2)}\n`);
    const rows: [string, string][] = [
      ['release tarball', `${figures.tarball} (${figures.tarballMB} MB)`],
      ['installed (npm install --omit=dev)', `${figures.installedMB} MB in ${figures.packages} packages`],
      ['tsx / esbuild / typescript', figures.buildOnlyPackages.length ? figures.buildOnlyPackages.join(', ') : 'none'],
      ['`p2p-edge run`, simulated devices', `${figures.gatewayRssMB} MB resident (VmRSS, unit's node flags)`],
      ['measured on', `Node ${process.versions.node}, ${figures.arch}`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    process.stdout.write(`(${RESULT_FILE.slice(REPO.length + 1)})\n`);
    if (figures.buildOnlyPackages.length > 0) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
