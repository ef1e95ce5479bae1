import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { P2PError } from '../../src/core/errors.js';
import { buildRadialFeeder, type FeederInput, FeederSchema } from '../../src/grid/feeder.js';
import { solvePowerFlow } from '../../src/grid/sweep.js';
import { runCli, tempDir } from '../helpers/net.js';

const DATA = join(import.meta.dirname, '..', '..', 'src', 'grid', 'data');
const baranWu = (): FeederInput =>
  FeederSchema.parse(JSON.parse(readFileSync(join(DATA, 'feeder-baran-wu-33.json'), 'utf8')));
const tmp = tempDir();
afterAll(() => tmp.remove());

function inputError(input: unknown): P2PError {
  try {
    buildRadialFeeder(FeederSchema.parse(input));
  } catch (err) {
    return err as P2PError;
  }
  throw new Error('feeder accepted');
}

describe('backward/forward sweep power flow', () => {
  it('reproduces Baran & Wu (1989) 33-bus: losses 202.67 kW, Vmin 0.9131 pu at bus 18', () => {
    const r = solvePowerFlow(buildRadialFeeder(baranWu()));
    expect(r.converged).toBe(true);
    expect(r.lossesKW).toBeCloseTo(202.67, 0);
    expect(Math.abs(r.lossesKW - 202.68)).toBeLessThan(0.05);
    expect(r.voltagesPu['18']).toBeCloseTo(0.9131, 4);
    const vmin = Object.entries(r.voltagesPu).reduce((a, b) => (b[1] < a[1] ? b : a));
    expect(vmin[0]).toBe('18');
    expect(r.maxMismatchPu).toBeLessThanOrEqual(1e-6);
  });

  it('reproduces Baran & Wu (1989) 69-bus (MATPOWER case69): losses 224.9 kW, Vmin 0.9092 pu at bus 65', () => {
    const feeder = FeederSchema.parse(JSON.parse(readFileSync(join(DATA, 'feeder-baran-wu-69.json'), 'utf8')));
    const r = solvePowerFlow(buildRadialFeeder(feeder));
    expect(r.converged).toBe(true);
    expect(Math.abs(r.lossesKW - 224.95)).toBeLessThan(0.1);
    const vmin = Object.entries(r.voltagesPu).reduce((a, b) => (b[1] < a[1] ? b : a));
    expect(vmin[0]).toBe('65');
    expect(vmin[1]).toBeCloseTo(0.9092, 4);
  });

  it('balances power: what leaves the slack is the total load plus the losses', () => {
    const input = baranWu();
    const r = solvePowerFlow(buildRadialFeeder(input));
    const totalLoadKW = input.buses.filter((b) => b.id !== '1').reduce((s, b) => s + b.pKW, 0);
    const fromSlack = r.lineFlows.filter((f) => f.from === '1').reduce((s, f) => s + f.pKW, 0);
    expect(totalLoadKW).toBeCloseTo(3715, 6);
    expect(fromSlack).toBeCloseTo(totalLoadKW + r.lossesKW, 3);
  });

  it('does not depend on line order or direction; flows are measured at the listed from end', () => {
    const input = baranWu();
    const base = solvePowerFlow(buildRadialFeeder(input));
    const flipped = { ...input, lines: [...input.lines].reverse().map((l) => ({ ...l, from: l.to, to: l.from })) };
    const r = solvePowerFlow(buildRadialFeeder(flipped));
    for (const [bus, v] of Object.entries(base.voltagesPu)) expect(r.voltagesPu[bus]).toBeCloseTo(v, 10);
    // Flipped line k is original line N-1-k seen from its other end: the same flow, negated, less the line's losses.
    const n = base.lineFlows.length;
    r.lineFlows.forEach((flipped, k) => {
      const original = base.lineFlows[n - 1 - k]!;
      expect(flipped.from).toBe(original.to);
      expect(-flipped.pKW).toBeLessThanOrEqual(original.pKW + 1e-9);
      expect(-flipped.pKW).toBeGreaterThan(original.pKW - 0.02 * Math.abs(original.pKW) - 1e-6);
    });
  });

  it('raises voltage under reverse flow (PV export)', () => {
    const r = solvePowerFlow(
      buildRadialFeeder(
        FeederSchema.parse({
          baseKV: 0.4,
          slack: 'tx',
          buses: [{ id: 'b1', pKW: -20, qKVAr: 0 }],
          lines: [{ from: 'tx', to: 'b1', rOhm: 0.1, xOhm: 0.05 }],
        }),
      ),
    );
    // LinDistFlow estimate: 1 + r·P / V² = 1 + 0.1 × 20000 / 160000 = 1.0125; the exact value is slightly lower.
    expect(r.voltagesPu.b1).toBeGreaterThan(1.011);
    expect(r.voltagesPu.b1).toBeLessThan(1.0125);
  });
});

describe('feeder validation names the element at fault', () => {
  const ok = {
    baseKV: 0.4,
    slack: 'a',
    buses: [{ id: 'b', pKW: 1, qKVAr: 0 }],
    lines: [
      { from: 'a', to: 'b', rOhm: 0.1, xOhm: 0.1 },
      { from: 'b', to: 'c', rOhm: 0.1, xOhm: 0.1 },
    ],
  };
  it('accepts a bus with no load left out of buses (c is a junction-free end here only because buses is short)', () => {
    expect(() => buildRadialFeeder(FeederSchema.parse({ ...ok, buses: [] }))).not.toThrow();
  });
  it('a loop', () => {
    const e = inputError({ ...ok, buses: [], lines: [...ok.lines, { from: 'c', to: 'a', rOhm: 1, xOhm: 1 }] });
    expect(e.field).toMatch(/^lines\[[12]\]$/); // any line of the cycle a-b-c-a closes it
    expect(e.message).toMatch(/loop/);
  });
  it('an island', () => {
    const buses = [...ok.buses, { id: 'c', pKW: 1, qKVAr: 0 }, { id: 'z', pKW: 1, qKVAr: 0 }];
    expect(inputError({ ...ok, buses }).field).toBe('buses[2].id');
  });
  it('a line to a missing bus', () => {
    expect(inputError(ok).field).toBe('lines[1].to');
  });
  it('a non-positive impedance', () => {
    const r = FeederSchema.safeParse({ ...ok, lines: [{ from: 'a', to: 'b', rOhm: 0, xOhm: 0.1 }] });
    expect(r.success).toBe(false);
  });
  it('through the CLI: exit 2 with the file and field', async () => {
    const file = join(tmp.dir, 'loop.json');
    writeFileSync(
      file,
      JSON.stringify({ ...ok, buses: [], lines: [...ok.lines, { from: 'c', to: 'a', rOhm: 1, xOhm: 1 }] }),
    );
    const r = await runCli(['powerflow', '--feeder', file, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${file}: lines\\[[12]\\]: .*loop`));
    const bad = join(tmp.dir, 'neg.json');
    writeFileSync(bad, JSON.stringify({ ...ok, lines: [{ from: 'a', to: 'b', rOhm: -1, xOhm: 0.1 }] }));
    const r2 = await runCli(['powerflow', '--feeder', bad, '--json']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('lines[0].rOhm');
    const good = await runCli(['powerflow', '--feeder', join(DATA, 'feeder-baran-wu-33.json'), '--json']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ converged: true, voltagesPu: { '1': 1 } });
  });
});
