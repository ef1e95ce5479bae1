import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildOnlyPackagesIn,
  buildRelease,
  folderBytes,
  type InstalledRelease,
  installRelease,
  peakResidentKiB,
  REPO,
  RSS_SETTLE_MS,
  RSS_WINDOW_MS,
  startInstalledGateway,
  waitForOk,
  writeGatewayConfig,
} from '../../scripts/release-check.js';
import { freePort, runProcess, tempDir } from '../helpers/net.js';

// The release a gateway installs (`npm run release`), installed into an empty folder with
// `npm install --omit=dev --ignore-scripts` (no native module built: the optional ones must stay out
// of the way), and run from that folder's `p2p-edge` command: no sources, no tsx.
describe('the release installed without dev dependencies', () => {
  const tmp = tempDir('p2p-edge-release-');
  let release: InstalledRelease;

  beforeAll(() => {
    release = installRelease(buildRelease(), join(tmp.dir, 'install'));
  }, 240_000);
  afterAll(() => tmp.remove());

  it('brings no compiler, and the package holds compiled JavaScript only', () => {
    const nodeModules = join(release.dir, 'node_modules');
    expect(buildOnlyPackagesIn(nodeModules)).toEqual([]);
    expect(existsSync(join(release.packageDir, 'dist', 'main.js'))).toBe(true);
    expect(existsSync(join(release.packageDir, 'src'))).toBe(false);
    const manifest = JSON.parse(readFileSync(join(release.packageDir, 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies)).not.toContain('tsx');
    const installedMB = folderBytes(nodeModules) / 1e6;
    console.log(`release installed: ${installedMB.toFixed(1)} MB`);
    expect(installedMB).toBeLessThan(67);
  });

  it('trades: the 4-microgrid case reaches its optimum', async () => {
    const input = join(REPO, 'test', 'fixtures', 'trading', 'trade-4mg.json');
    const optimum = JSON.parse(readFileSync(input.replace(/\.json$/, '.optimum.json'), 'utf8'));
    const r = await runProcess(release.bin, ['trade', '--input', input, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.converged).toBe(true);
    expect(Math.abs(out.cost - optimum.optimalCost) / optimum.optimalCost).toBeLessThan(1e-3);
    for (const [id, prices] of Object.entries(optimum.prices as Record<string, number[]>))
      expect(out.prices[id][0]).toBeCloseTo(prices[0] as number, 3);
  });

  it('solves a power flow: Baran & Wu 33-bus, 202.67 kW losses, 0.9131 pu at bus 18', async () => {
    const feeder = join(REPO, 'src', 'grid', 'data', 'feeder-baran-wu-33.json');
    const r = await runProcess(release.bin, ['powerflow', '--feeder', feeder, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.converged).toBe(true);
    expect(out.lossesKW).toBeCloseTo(202.67, 0);
    expect(out.voltagesPu['18']).toBeCloseTo(0.9131, 3);
  });

  it('runs a gateway on simulated devices: healthy status page, clean exit on SIGTERM', async () => {
    const port = await freePort();
    const gateway = startInstalledGateway(release, writeGatewayConfig(release, tmp.dir, port));
    try {
      expect(await waitForOk(`http://127.0.0.1:${port}/healthz`, 30_000, gateway)).toContain('ok');
      const state = await (await fetch(`http://127.0.0.1:${port}/api/state`)).json();
      expect(JSON.stringify(state)).toContain('house-1');
      await new Promise((r) => setTimeout(r, RSS_SETTLE_MS));
      const rssMB = (await peakResidentKiB(gateway.child.pid as number, RSS_WINDOW_MS)) / 1024;
      console.log(`release gateway (p2p-edge run, simulated devices): ${rssMB.toFixed(1)} MB resident`);
      expect(rssMB).toBeGreaterThan(10);
      expect(rssMB).toBeLessThan(150);
    } finally {
      gateway.child.kill('SIGTERM');
    }
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.output()).not.toMatch(/tsx|\.ts:\d/);
  }, 60_000);
});
