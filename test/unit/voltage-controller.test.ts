import { describe, expect, it } from 'vitest';
import {
  type InverterReading,
  VoltageController,
  type VoltageControllerOptions,
} from '../../src/control/voltage/voltage-controller.js';
import { seededRandom } from '../../src/core/prng.js';
import { demoFeeder } from '../../src/grid/demo-feeder.js';
import { buildRadialFeeder } from '../../src/grid/feeder.js';

const NOW = 1_796_000_000_000;
const FALLBACK_MS = 5000;
const MARGIN_PU = 0.01;
/** The top of the target band: 1.05 pu less the margin. A voltage there leaves the multiplier as it is. */
const V_TARGET_PU = 1.05 - MARGIN_PU;
const feeder = buildRadialFeeder(demoFeeder(4));

function controller(options: Partial<VoltageControllerOptions> = {}): VoltageController {
  return new VoltageController({
    method: 'dual',
    dual: {
      id: 'inv-2',
      bus: 'b2',
      feeder,
      vMinPu: 0.95,
      vMaxPu: 1.05,
      marginPu: MARGIN_PU,
      qWeight: 0.5,
      epoch: NOW,
      gossipSlotMs: 10_000,
      reportFreshMs: 750,
    },
    fallbackAfterMs: FALLBACK_MS,
    random: seededRandom(1),
    ...options,
  });
}

/** One 8 kVA inverter with 7 kW of sun, delivering `output`, at `voltagePu`. */
function measured(voltagePu: number | null, output = { pKW: 7, qKVAr: 0 }, connected = true) {
  const inverter: InverterReading = {
    id: 'pv-2',
    ratedKVA: 8,
    availableKW: 7,
    acPowerKW: output.pKW,
    reactiveKVAr: output.qKVAr,
  };
  if (voltagePu !== null) inverter.voltagePu = voltagePu;
  return { voltagePu, connected, inverters: [inverter] };
}

describe('voltage controller: the local curves (IEEE 1547-2018 Category B)', () => {
  it('volt-var: each primary step moves 30 % of the way to the curves, from the setpoint the inverter holds', () => {
    const c = controller({ method: 'volt-var' });
    // At 1.07 pu: volt-var −0.44 × 8 × (1.07 − 1.02) / 0.06 = −2.933 kVAr; volt-watt 8 × (1.10 − 1.07) / 0.04 = 6 kW.
    const first = c.step(NOW, 'primary', measured(1.07)).setpoints.get('pv-2')!;
    expect(first.qKVAr).toBeCloseTo(0.3 * -2.9333, 3);
    expect(first.pKW).toBeCloseTo(7 + 0.3 * (6 - 7), 9);
    expect(first.limitPct).toBeCloseTo((100 * first.pKW) / 8, 9);
    c.applied('pv-2', first);
    const second = c.step(NOW + 250, 'primary', measured(1.07)).setpoints.get('pv-2')!;
    expect(second.qKVAr).toBeCloseTo(first.qKVAr + 0.3 * (-2.9333 - first.qKVAr), 3);
    // Nothing on the secondary scale, no hello: the curves need no peer.
    const secondary = c.step(NOW + 500, 'secondary', measured(1.07));
    expect(secondary.setpoints.size).toBe(0);
    expect(secondary.hello).toBeUndefined();
    expect(c.persist()).toBeUndefined();
  });

  it('the curves start from what the inverter delivers when it was given nothing yet', () => {
    const c = controller({ method: 'volt-var' });
    const next = c.step(NOW, 'primary', measured(1.07, { pKW: 7, qKVAr: -2 })).setpoints.get('pv-2')!;
    expect(next.qKVAr).toBeCloseTo(-2 + 0.3 * (-2.9333 + 2), 3);
  });

  it('monitor: never a setpoint', () => {
    const c = controller({ method: 'monitor' });
    expect(c.step(NOW, 'primary', measured(1.09)).setpoints.size).toBe(0);
    expect(c.acting).toBe('none');
  });
});

describe('voltage controller: the distributed control and its fallback', () => {
  it('acts on its local curves until it hears a peer, and announces itself without a multiplier', () => {
    const c = controller();
    c.heard(NOW, 'inv-2', 'b2', 5); // its own hello, back from the broker, is no peer
    expect(c.acting).toBe('volt-var (fallback)');
    const secondary = c.step(NOW, 'secondary', measured(1.07));
    expect(secondary.setpoints.size).toBe(0);
    expect(secondary.switched).toBeUndefined();
    expect(secondary.hello).toEqual({ bus: 'b2', epoch: NOW });
    expect(c.step(NOW, 'primary', measured(1.07)).setpoints.get('pv-2')!.qKVAr).toBeLessThan(0);
  });

  it('takes over bumplessly when a peer is heard: its first setpoint moves its bus as much as what the inverter delivered', () => {
    const c = controller();
    c.heard(NOW, 'inv-3', 'b3', 0);
    const delivered = { pKW: 7, qKVAr: -2 };
    const r = c.step(NOW + 250, 'secondary', measured(V_TARGET_PU, delivered));
    expect(r.switched).toMatchObject({ to: 'dual', peers: 1, takeover: { pKW: 7, qKVAr: -2 } });
    const multiplier = c.dualState(NOW + 250)!.multiplier;
    expect(multiplier).toBeGreaterThan(0);
    expect(r.hello).toEqual({ bus: 'b2', epoch: NOW, multiplier });
    const next = r.setpoints.get('pv-2')!;
    // The dual response mixes curtailment and reactive power in its own ratio, to the same voltage effect.
    const own = feederSensitivity('b2');
    expect(own.p * next.pKW + own.q * next.qKVAr).toBeCloseTo(own.p * 7 + own.q * -2, 9);
    expect(next.qKVAr).toBeLessThan(0);
    // On the distributed control the primary steps leave the inverters alone.
    expect(c.acting).toBe('dual');
    expect(c.step(NOW + 500, 'primary', measured(1.07)).setpoints.size).toBe(0);
  });

  it('dual ascent: an overvoltage raises its multiplier and with it the curtailment and the VArs absorbed', () => {
    const c = controller();
    c.heard(NOW, 'inv-3', 'b3', 0);
    const first = c.step(NOW + 250, 'secondary', measured(1.06)).setpoints.get('pv-2')!;
    const second = c.step(NOW + 500, 'secondary', measured(1.06)).setpoints.get('pv-2')!;
    expect(second.pKW).toBeLessThan(first.pKW);
    expect(second.qKVAr).toBeLessThan(first.qKVAr);
  });

  it(`falls back when no peer has been heard for fallbackAfterMs (${FALLBACK_MS} ms), and comes back`, () => {
    const c = controller();
    c.heard(NOW, 'inv-3', 'b3', 0);
    c.step(NOW + 250, 'secondary', measured(V_TARGET_PU));
    expect(c.step(NOW + FALLBACK_MS, 'secondary', measured(V_TARGET_PU)).switched).toBeUndefined();
    const silent = c.step(NOW + FALLBACK_MS + 1, 'secondary', measured(V_TARGET_PU));
    expect(silent.switched).toEqual({ to: 'fallback', connected: true, peers: 0 });
    expect(silent.setpoints.size).toBe(0);
    expect(silent.hello?.multiplier).toBeUndefined();
    expect(c.acting).toBe('volt-var (fallback)');
    c.heard(NOW + FALLBACK_MS + 100, 'inv-3', 'b3');
    expect(c.step(NOW + FALLBACK_MS + 250, 'secondary', measured(V_TARGET_PU)).switched?.to).toBe('dual');
  });

  it('falls back at once while its transport is down, peers or not', () => {
    const c = controller();
    c.heard(NOW, 'inv-3', 'b3', 0);
    c.step(NOW + 250, 'secondary', measured(V_TARGET_PU));
    const r = c.step(NOW + 500, 'secondary', measured(V_TARGET_PU, undefined, false));
    expect(r.switched).toEqual({ to: 'fallback', connected: false, peers: 1 });
  });

  it("acts on a peer's announced multiplier; with announcements off, on its push-sum estimate only", () => {
    const announced = controller();
    announced.heard(NOW, 'inv-3', 'b3', 120);
    expect(announced.dualState(NOW)!.multipliers['inv-3']).toBe(120);
    expect(announced.dualState(NOW)!.announcedPeers).toBe(1);
    const estimatesOnly = controller({ announcedMultipliers: false });
    estimatesOnly.heard(NOW, 'inv-3', 'b3', 120);
    expect(estimatesOnly.dualState(NOW)!.announcedPeers).toBe(0);
    // Nothing gossiped yet: no estimate of inv-3's multiplier, and the 120 it announced is not taken.
    expect(estimatesOnly.dualState(NOW)!.multipliers['inv-3']).toBeUndefined();
  });

  it('hears a peer through its push-sum messages too, and gossips only once it knows a peer', () => {
    const a = controller();
    expect(a.gossipRound(NOW)).toBeUndefined();
    const b = new VoltageController({
      method: 'dual',
      dual: { ...optionsOf('inv-3', 'b3') },
      fallbackAfterMs: FALLBACK_MS,
      random: seededRandom(2),
    });
    b.heard(NOW, 'inv-2', 'b2');
    const m = b.gossipRound(NOW + 100)!;
    expect(m.to).toBe('inv-2');
    const { from, to: _to, ...body } = m;
    expect(a.receiveGossip(NOW + 100, from, 'b3', body)).toBe(true);
    expect(a.step(NOW + 250, 'secondary', measured(V_TARGET_PU)).switched?.to).toBe('dual');
  });

  it("splits the gateway's setpoint over its inverters: curtailment in proportion to the PV each has, VArs to each rating", () => {
    const c = controller();
    c.heard(NOW, 'inv-3', 'b3', 0);
    const inverters: InverterReading[] = [
      { id: 'pv-a', ratedKVA: 4, availableKW: 4, acPowerKW: 4, reactiveKVAr: 0, voltagePu: 1.07 },
      { id: 'pv-b', ratedKVA: 8, availableKW: 2, acPowerKW: 2, reactiveKVAr: 0, voltagePu: 1.07 },
    ];
    c.step(NOW + 250, 'secondary', { voltagePu: 1.07, connected: true, inverters });
    const r = c.step(NOW + 500, 'secondary', { voltagePu: 1.07, connected: true, inverters });
    const a = r.setpoints.get('pv-a')!;
    const b = r.setpoints.get('pv-b')!;
    expect(a.pKW).toBeLessThan(4);
    expect(a.pKW / b.pKW).toBeCloseTo(4 / 2, 9);
    expect(a.qKVAr / b.qKVAr).toBeCloseTo(4 / 8, 9);
    expect(a.limitPct).toBeCloseTo((100 * a.pKW) / 4, 9);
    expect(b.limitPct).toBeCloseTo((100 * b.pKW) / 8, 9);
  });

  it('a gateway with only a meter gives no setpoint but watches its bus and announces its multiplier', () => {
    const c = controller();
    c.heard(NOW, 'inv-3', 'b3', 0);
    const r = c.step(NOW + 250, 'secondary', { voltagePu: 1.06, connected: true, inverters: [] });
    expect(r.setpoints.size).toBe(0);
    expect(r.hello?.multiplier).toBeGreaterThan(0);
  });

  it('without a fresh voltage reading it holds its multiplier and gives no setpoint, but still announces itself', () => {
    const c = controller({ restored: { muOver: 40, muUnder: 0 } });
    c.heard(NOW, 'inv-3', 'b3', 0);
    c.step(NOW + 250, 'secondary', measured(V_TARGET_PU)); // the takeover replaces the restored multiplier
    const held = c.dualState(NOW + 250)!.multiplier;
    const r = c.step(NOW + 500, 'secondary', measured(null));
    expect(r.setpoints.size).toBe(0);
    expect(r.hello?.multiplier).toBe(held);
  });

  it('starts from the multipliers it saved before a restart', () => {
    const c = controller({ restored: { muOver: 40, muUnder: 0 } });
    expect(c.dualState(NOW)).toMatchObject({ muOver: 40, multiplier: 40 });
    expect(c.persist()).toEqual({ muOver: 40, muUnder: 0 });
  });
});

describe("voltage controller: a peer's bus beyond a limit (gossip/bus-limit), within the primary cycle", () => {
  /** Two agents on the distributed control: inv-2 at b2 and inv-3 at b3, both at the top of the target band. */
  function pair() {
    const b2 = controller();
    const b3 = controller({ dual: optionsOf('inv-3', 'b3') });
    b2.heard(NOW, 'inv-3', 'b3', 0);
    b3.heard(NOW, 'inv-2', 'b2', 0);
    const before = b2.step(NOW + 100, 'secondary', measured(V_TARGET_PU)).setpoints.get('pv-2')!;
    const b3Hello = b3.step(NOW + 100, 'secondary', measured(V_TARGET_PU)).hello!;
    b2.heard(NOW + 110, 'inv-3', 'b3', b3Hello.multiplier);
    return { b2, b3, before, b3Multiplier: b3Hello.multiplier! };
  }

  it('steps the multiplier of b3 at once as b3 itself steps it at its next secondary cycle, and answers it now', () => {
    const { b2, b3, before, b3Multiplier } = pair();
    // b3 reads 1.07 pu, above 1.05 (the example of the paper's fast events): its gateway tells the cell.
    const event = { bus: 'b3', voltagePu: 1.07, limit: 'max' as const, limitPu: 1.05, multiplier: b3Multiplier };
    const acted = b2.limitReported(NOW + 150, 'inv-3', event, measured(V_TARGET_PU))!;
    expect(acted.multiplier).toBeGreaterThan(b3Multiplier);
    const now = acted.setpoints.get('pv-2')!;
    expect(now.pKW).toBeLessThan(before.pKW);
    expect(now.qKVAr).toBeLessThan(before.qKVAr);
    expect(b2.dualState(NOW + 150)!.multipliers['inv-3']).toBe(acted.multiplier);
    // b3's own secondary step with the same reading: its hello carries what b2 already acts on.
    const b3Hello = b3.step(NOW + 200, 'secondary', measured(1.07)).hello!;
    expect(b3Hello.multiplier).toBeCloseTo(acted.multiplier, 12);
    // The gossip confirms it: b2's next secondary step, with b3's hello, gives the same setpoint.
    b2.heard(NOW + 210, 'inv-3', 'b3', b3Hello.multiplier);
    const confirmed = b2.step(NOW + 300, 'secondary', measured(V_TARGET_PU)).setpoints.get('pv-2')!;
    expect(confirmed.pKW).toBeCloseTo(now.pKW, 9);
    expect(confirmed.qKVAr).toBeCloseTo(now.qKVAr, 9);
  });

  it('an undervoltage steps the multiplier down (more VArs injected), by the step b3 takes without its momentum', () => {
    const { b2, b3, before } = pair();
    const event = { bus: 'b3', voltagePu: 0.93, limit: 'min' as const, limitPu: 0.95 };
    const acted = b2.limitReported(NOW + 150, 'inv-3', event, measured(V_TARGET_PU))!;
    expect(acted.multiplier).toBeLessThan(0);
    expect(acted.setpoints.get('pv-2')!.qKVAr).toBeGreaterThan(before.qKVAr);
    // b3's undervoltage multiplier moves by accelerated ascent: μ⁻ takes the same step, and b3
    // announces it with its momentum on top (its hello then corrects b2 by the momentum alone).
    const announced = b3.step(NOW + 200, 'secondary', measured(0.93)).hello!.multiplier!;
    expect(b3.dualState(NOW + 200)!.muUnder).toBeCloseTo(-acted.multiplier, 9);
    expect(announced).toBeLessThan(acted.multiplier);
  });

  it('nothing to act on: on the local curves, a bus not on its feeder, its own event', () => {
    const event = { bus: 'b3', voltagePu: 1.07, limit: 'max' as const, limitPu: 1.05 };
    const fallback = controller();
    expect(fallback.limitReported(NOW, 'inv-3', event, measured(V_TARGET_PU))).toBeUndefined();
    const { b2 } = pair();
    expect(b2.limitReported(NOW + 150, 'inv-9', { ...event, bus: 'b99' }, measured(1))).toBeUndefined();
    expect(b2.limitReported(NOW + 150, 'inv-2', { ...event, bus: 'b2' }, measured(1))).toBeUndefined();
  });
});

describe("voltage controller: a peer's inverter tripping or reconnecting (gossip/inverter-trip, -reconnect)", () => {
  // On the demo feeder (0.08 + j0.03 Ω a segment, 0.4 kV, 1.02 pu at tx) b3 is three segments out:
  // dV/dp = 0.24 Ω / (0.4 kV)² / 1.02 = 1.470588e-3 pu/kW, dV/dq = 0.09 Ω / (0.4 kV)² / 1.02 = 5.514706e-4 pu/kVAr.
  const DVDP_B3 = 0.24 / 160 / 1.02;
  const DVDQ_B3 = 0.09 / 160 / 1.02;

  /** inv-2 at b2 and inv-3 at b3 on the distributed control; b3 has read `b3Pu` at its secondary step. */
  function pair(b3Pu: number) {
    const b2 = controller();
    const b3 = controller({ dual: optionsOf('inv-3', 'b3') });
    b2.heard(NOW, 'inv-3', 'b3', 0);
    b3.heard(NOW, 'inv-2', 'b2', 0);
    b2.step(NOW + 100, 'secondary', measured(V_TARGET_PU));
    const b3Multiplier = b3.step(NOW + 100, 'secondary', measured(b3Pu)).hello!.multiplier!;
    b2.heard(NOW + 110, 'inv-3', 'b3', b3Multiplier);
    const before = b2.step(NOW + 120, 'secondary', measured(V_TARGET_PU)).setpoints.get('pv-2')!;
    return { b2, b3, before, b3Multiplier };
  }

  it('the sensitivities used are the feeder’s (the numbers above)', () => {
    expect(feederSensitivity('b3').p).toBeCloseTo(1.470588e-3, 9);
    expect(feederSensitivity('b3').q).toBeCloseTo(5.514706e-4, 9);
  });

  it('a trip at b3 that takes its voltage off the top lowers its overvoltage multiplier by the step b3 will take: less curtailment at b2', () => {
    // b3 read 1.07 pu: its μ⁺ is up. Then 6 kW of its PV trip, which absorbed 2 kVAr, at 1.045 pu:
    // V' = 1.045 − 6 × 1.470588e-3 + 2 × 5.514706e-4 = 1.0372794 pu, 0.0027206 below 1.04 (1.05 less the margin).
    const { b2, b3, before, b3Multiplier } = pair(1.07);
    expect(b3Multiplier).toBeGreaterThan(0);
    const event = { bus: 'b3', voltagePu: 1.045, dPKW: -6, dQKVAr: 2, multiplier: b3Multiplier };
    const acted = b2.outputChangeReported(NOW + 150, 'inv-3', event, measured(V_TARGET_PU))!;
    expect(acted.predictedPu).toBeCloseTo(1.0372794, 6);
    expect(acted.multiplier).toBeLessThan(b3Multiplier);
    expect(acted.multiplier).toBeGreaterThan(0);
    expect(b2.dualState(NOW + 150)!.multipliers['inv-3']).toBe(acted.multiplier);
    expect(acted.setpoints.get('pv-2')!.pKW).toBeGreaterThan(before.pKW);
    // b3 measures that voltage at its next secondary step: its own (plain) step gives the same multiplier.
    const v3 = 1.045 - 6 * DVDP_B3 + 2 * DVDQ_B3;
    expect(b3.step(NOW + 1100, 'secondary', measured(v3)).hello!.multiplier).toBeCloseTo(acted.multiplier, 6);

    // The inverter reconnects at 1.0372794 pu and ramps back to the 6 kW and −2 kVAr: V' = 1.045 pu,
    // 0.005 above 1.04, and μ⁺ steps up again by b3's step × 0.005.
    const back = { bus: 'b3', voltagePu: v3, dPKW: 6, dQKVAr: -2, multiplier: acted.multiplier };
    const reacted = b2.outputChangeReported(NOW + 1150, 'inv-3', back, measured(V_TARGET_PU))!;
    expect(reacted.predictedPu).toBeCloseTo(1.045, 6);
    expect(b3.step(NOW + 2100, 'secondary', measured(1.045)).hello!.multiplier).toBeCloseTo(reacted.multiplier, 6);
    expect(reacted.multiplier).toBeGreaterThan(acted.multiplier);
    expect(reacted.setpoints.get('pv-2')!.pKW).toBeLessThan(acted.setpoints.get('pv-2')!.pKW);
  });

  it('a trip at b3 that takes its voltage below the band raises its undervoltage multiplier: b2 injects VArs', () => {
    // 6 kW lost at 0.965 pu: V' = 0.965 − 6 × 1.470588e-3 = 0.9561765 pu, 0.0038235 below 0.96 (0.95 plus the margin).
    const { b2, b3, before } = pair(V_TARGET_PU);
    const event = { bus: 'b3', voltagePu: 0.965, dPKW: -6, dQKVAr: 0, multiplier: 0 };
    const acted = b2.outputChangeReported(NOW + 150, 'inv-3', event, measured(V_TARGET_PU))!;
    expect(acted.predictedPu).toBeCloseTo(0.9561765, 6);
    expect(acted.multiplier).toBeLessThan(0);
    expect(acted.setpoints.get('pv-2')!.qKVAr).toBeGreaterThan(before.qKVAr);
    // b3's μ⁻ after its own step at that voltage (without the momentum its announcement adds).
    b3.step(NOW + 1100, 'secondary', measured(0.965 - 6 * DVDP_B3));
    expect(b3.dualState(NOW + 1100)!.muUnder).toBeCloseTo(-acted.multiplier, 6);
  });

  it('nothing to act on: no multiplier in force and the predicted voltage within the band, on the local curves, a bus not on the feeder', () => {
    const { b2 } = pair(V_TARGET_PU);
    // 1 kW lost at 1.0 pu: 0.9985 pu, well within 0.96–1.04.
    const within = { bus: 'b3', voltagePu: 1.0, dPKW: -1, dQKVAr: 0, multiplier: 0 };
    expect(b2.outputChangeReported(NOW + 150, 'inv-3', within, measured(V_TARGET_PU))).toBeUndefined();
    const event = { bus: 'b3', voltagePu: 0.965, dPKW: -6, dQKVAr: 0 };
    expect(controller().outputChangeReported(NOW, 'inv-3', event, measured(1))).toBeUndefined();
    expect(b2.outputChangeReported(NOW + 150, 'inv-9', { ...event, bus: 'b99' }, measured(1))).toBeUndefined();
    expect(b2.outputChangeReported(NOW + 150, 'inv-2', { ...event, bus: 'b2' }, measured(1))).toBeUndefined();
  });
});

describe('voltage controller: its own inverter trips (out of service, its share moves to the others)', () => {
  /** Two 8 kVA inverters with 7 kW of sun each at b2. */
  const two = (a: { pKW: number; qKVAr: number }, b: { pKW: number; qKVAr: number }, voltagePu = V_TARGET_PU) => ({
    voltagePu,
    connected: true,
    inverters: [
      { id: 'pv-a', ratedKVA: 8, availableKW: 7, acPowerKW: a.pKW, reactiveKVAr: a.qKVAr, voltagePu },
      { id: 'pv-b', ratedKVA: 8, availableKW: 7, acPowerKW: b.pKW, reactiveKVAr: b.qKVAr, voltagePu },
    ] satisfies InverterReading[],
  });

  it('on the distributed control: told at once, no setpoint for it, and the other takes the whole reactive power', () => {
    const c = controller();
    c.heard(NOW, 'inv-3', 'b3', 20); // b3 far above its limit: b2 absorbs and curtails
    const out = { pKW: 7, qKVAr: 0 };
    expect(c.step(NOW + 10, 'primary', two(out, out)).transitions).toBeUndefined();
    const shared = c.step(NOW + 100, 'secondary', two(out, out)).setpoints;
    const qTotal = shared.get('pv-a')!.qKVAr + shared.get('pv-b')!.qKVAr;
    expect(qTotal).toBeLessThan(0);
    for (const [id, sp] of shared) c.applied(id, sp);
    const before = { pKW: shared.get('pv-a')!.pKW, qKVAr: shared.get('pv-a')!.qKVAr };
    // pv-a stops producing with 7 kW still available and its limit allowing it.
    const tripped = c.step(NOW + 110, 'primary', two(before, before));
    expect(tripped.transitions).toBeUndefined();
    const now = c.step(NOW + 120, 'primary', two({ pKW: 0, qKVAr: 0 }, before));
    expect(now.transitions).toEqual([{ inverter: 'pv-a', to: 'tripped', ...before }]);
    expect(c.isTripped('pv-a')).toBe(true);
    expect([...now.setpoints.keys()]).toEqual(['pv-b']);
    // The gateway's reactive power does not depend on its active capability (its term −ν·dV/dq / 2w
    // is within one 8 kVA inverter here): pv-b now gives all of it.
    expect(now.setpoints.get('pv-b')!.qKVAr).toBeCloseTo(qTotal, 9);
    expect(c.step(NOW + 200, 'secondary', two({ pKW: 0, qKVAr: 0 }, before)).setpoints.has('pv-a')).toBe(false);
    // It produces again: in service, told once, and it gets its share back.
    const back = c.step(NOW + 220, 'primary', two({ pKW: 1, qKVAr: 0 }, before));
    expect(back.transitions).toMatchObject([{ inverter: 'pv-a', to: 'reconnected' }]);
    expect([...back.setpoints.keys()].sort()).toEqual(['pv-a', 'pv-b']);
  });

  it('on the local curves: no curve step for a tripped inverter', () => {
    const c = controller({ method: 'volt-var' });
    const out = { pKW: 7, qKVAr: 0 };
    c.step(NOW, 'primary', two(out, out, 1.07));
    const r = c.step(NOW + 100, 'primary', two({ pKW: 0, qKVAr: 0 }, out, 1.07));
    expect(r.transitions).toMatchObject([{ inverter: 'pv-a', to: 'tripped', pKW: 7 }]);
    expect([...r.setpoints.keys()]).toEqual(['pv-b']);
  });
});

function optionsOf(id: string, bus: string) {
  return {
    id,
    bus,
    feeder,
    vMinPu: 0.95,
    vMaxPu: 1.05,
    marginPu: MARGIN_PU,
    qWeight: 0.5,
    epoch: NOW,
    gossipSlotMs: 10_000,
    reportFreshMs: 750,
  };
}

/** dV at `bus` per kW and per kVAr injected there (LinDistFlow): R and X of its path from the slack, per V². */
function feederSensitivity(bus: string): { p: number; q: number } {
  let r = 0;
  let x = 0;
  for (let b = bus; b !== feeder.slack; ) {
    const line = feeder.parentLine.get(b)!;
    r += line.rOhm;
    x += line.xOhm;
    b = line.parent;
  }
  const perKWPu = 1000 / (feeder.baseKV * 1000) ** 2 / feeder.vSlackPu;
  return { p: r * perKWPu, q: x * perKWPu };
}
