import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trafficClassRules } from '../../src/comms/d2d-transport.js';
import { URGENT_PRIORITY } from '../../src/comms/messages/catalogue.js';
import { createD2dNetnsPair, type Netns, requireNamespaces } from '../helpers/netns.js';
import { findTool, requireTool } from '../helpers/system-tools.js';

const SCENARIO = join(import.meta.dirname, '..', 'helpers', 'primary-events-scenario.ts');
const EVENTS = 3;
// Without its tools the namespaces are not tried: the suite then fails in beforeAll, naming the package.
const pair = ['ip', 'sysctl', 'nft'].every((t) => findTool(t) !== undefined) ? createD2dNetnsPair() : undefined;
afterAll(() => {
  if (Array.isArray(pair)) for (const ns of pair) ns.remove();
});

interface ScenarioEvent {
  voltagePu: number;
  seenMs: number | null;
  actedMs: number | null;
  acted: {
    peer: string;
    bus: string;
    voltagePu: number;
    limit?: string;
    inverter?: string;
    predictedPu?: number;
    multiplier: number;
    setpoints: Record<string, { pKW: number; qKVAr: number; limitPct: number }>;
  } | null;
}

describe('primary-scale events over D2D between two gateway processes', () => {
  beforeAll(() => {
    requireTool('ip'); // makes the namespaces and the veth link between them
    requireTool('sysctl'); // turns off duplicate address detection in them
    requireNamespaces(pair);
    requireTool('nft'); // loads the traffic-class rules
  });

  it("gw-b's voltage agent acts on each bus-limit gw-a sends when its bus goes above 1.05 pu (it steps b3's multiplier and absorbs VArs), and on each trip and reconnect of gw-a's inverter; the events go at priority 0", async () => {
    const [a, b] = pair as [Netns, Netns];
    execFileSync('ip', ['netns', 'exec', a.name, 'nft', '-f', '-'], {
      input: trafficClassRules({ interface: a.iface, port: 47_000 }),
    });
    const r = await a.exec(process.execPath, ['--import', 'tsx', SCENARIO, b.name, String(EVENTS), '10000'], 180_000);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      ready: boolean;
      events: ScenarioEvent[];
      trips: ScenarioEvent[];
      reconnects: ScenarioEvent[];
      logA?: string;
      logB?: string;
    };
    expect(out.ready, `${out.logA}\n${out.logB}`).toBe(true);
    expect(out.events).toHaveLength(EVENTS);
    let lastMultiplier = 0;
    for (const e of out.events) {
      // gw-a saw each step (its SunSpec inverter's voltage, read over Modbus) and gw-b acted on it,
      // by the path that only a bus-limit takes, after gw-a saw it.
      expect(e.seenMs).not.toBeNull();
      expect(e.acted, `event at ${e.voltagePu} pu`).not.toBeNull();
      expect(e.actedMs!).toBeGreaterThanOrEqual(e.seenMs!);
      expect(e.acted).toMatchObject({ peer: 'gw-a', bus: 'b3', limit: 'max' });
      expect(e.acted!.voltagePu).toBeCloseTo(e.voltagePu, 6);
      // b3 above its limit: its overvoltage multiplier up, so gw-b's inverter absorbs reactive power
      // (its sun, if any, is curtailed too: the dual control's best response, docs/control.md).
      expect(e.acted!.multiplier).toBeGreaterThan(0);
      expect(e.acted!.setpoints['pv-b']!.qKVAr).toBeLessThan(0);
      lastMultiplier = e.acted!.multiplier;
    }
    expect(lastMultiplier).toBeGreaterThan(0);
    // gw-a's inverter trips at 0.9515 pu: 4 kW lost at b3 (dV/dp there 0.24 Ω / (0.4 kV)² / 1.02 pu =
    // 1.4706e-3 pu/kW) predict 0.9515 − 0.0059 = 0.9456 pu, below 0.9503 (0.95 plus the margin):
    // b3's undervoltage multiplier steps up and gw-b injects VArs. It reconnects at 1.046 pu: the
    // 4 kW coming back predict 1.0519 pu, above 1.0497: the overvoltage one, and gw-b absorbs.
    const DVDP_B3 = 0.24 / 160 / 1.02;
    for (const [events, sign] of [
      [out.trips, -1],
      [out.reconnects, 1],
    ] as const) {
      expect(events).toHaveLength(EVENTS);
      for (const e of events) {
        expect(e.seenMs, `${sign < 0 ? 'trip' : 'reconnect'} at ${e.voltagePu} pu`).not.toBeNull();
        expect(e.acted, `${sign < 0 ? 'trip' : 'reconnect'} at ${e.voltagePu} pu`).not.toBeNull();
        expect(e.actedMs!).toBeGreaterThanOrEqual(e.seenMs!);
        expect(e.acted).toMatchObject({ peer: 'gw-a', bus: 'b3', inverter: 'pv-a' });
        expect(e.acted!.voltagePu).toBeCloseTo(e.voltagePu, 6);
        expect(e.acted!.predictedPu).toBeCloseTo(e.voltagePu + sign * 4 * DVDP_B3, 4);
        expect(Math.sign(e.acted!.multiplier)).toBe(sign);
        expect(Math.sign(e.acted!.setpoints['pv-b']!.qKVAr)).toBe(-sign);
      }
    }
    // Only the bus-limit, trip and reconnect events use the urgent priority's port (47000): its rule counted them.
    const ruleset = a.run(['nft', 'list', 'table', 'ip6', 'p2p_d2d']);
    const urgentRule = ruleset.split('\n').find((l) => l.includes(`dport ${47_000 + URGENT_PRIORITY} `));
    expect(urgentRule).toMatch(/counter packets ([1-9]\d*)/);
    expect(urgentRule).toMatch(/dscp set ef/);
    const packets = Number(/counter packets (\d+)/.exec(urgentRule!)![1]);
    // Two copies of each event (the D2D default), and nothing else on that port.
    expect(packets).toBe(2 * 3 * EVENTS);
  });
});
