import { describe, expect, it } from 'vitest';
import { DualVoltageAgent } from '../../src/control/voltage/dual-agent.js';
import { demoFeeder } from '../../src/grid/demo-feeder.js';
import { buildRadialFeeder } from '../../src/grid/feeder.js';
import { feederSensitivities } from '../../src/grid/sensitivity.js';

const NOW = 1_000_000;
const capability = { pAvailableKW: 7, sRatedKVA: 8, qMaxKVAr: 3.52 };

function agent(id: string, bus: string) {
  return new DualVoltageAgent({
    id,
    bus,
    feeder: buildRadialFeeder(demoFeeder(6)),
    vMinPu: 0.95,
    vMaxPu: 1.05,
    marginPu: 0.006,
    qWeight: 0.5,
    epoch: NOW,
    gossipSlotMs: 10_000,
    reportFreshMs: 1500,
  });
}

describe('dual voltage agent: bumpless transfer', () => {
  it('with no multiplier its best response is no action at all', () => {
    const next = agent('inv-6', 'b6').setpoint(capability, NOW, 5000);
    expect(next.pKW).toBe(7);
    expect(next.qKVAr).toBeCloseTo(0, 12);
  });

  /** How much a setpoint moves the voltage at the agent's own bus, per the feeder's sensitivities. */
  const effect = (r: { pKW: number; qKVAr: number }) => {
    const s = feederSensitivities(buildRadialFeeder(demoFeeder(6)), ['b6']);
    return s.dvdp[0]![0]! * r.pKW + s.dvdq[0]![0]! * r.qKVAr;
  };

  it('takes over the reactive power its inverters absorb now: the same voltage at its bus', () => {
    const a = agent('inv-6', 'b6');
    const delivered = { pKW: 7, qKVAr: -2 };
    a.takeOver(delivered, capability);
    expect(a.state().muOver).toBeGreaterThan(0);
    expect(a.state().muUnder).toBe(0);
    const next = a.setpoint(capability, NOW, 5000);
    // The dual response mixes curtailment and reactive power in its own ratio.
    expect(next.pKW).toBeLessThan(7);
    expect(next.qKVAr).toBeLessThan(0);
    expect(effect(next)).toBeCloseTo(effect(delivered), 9);
  });

  it('takes over curtailment with the reactive power at its limit, as volt-watt leaves it at a high voltage', () => {
    const a = agent('inv-6', 'b6');
    const delivered = { pKW: 5, qKVAr: -capability.qMaxKVAr };
    a.takeOver(delivered, capability);
    expect(effect(a.setpoint(capability, NOW, 5000))).toBeCloseTo(effect(delivered), 9);
  });

  it('takes over reactive power injected against an undervoltage', () => {
    const a = agent('inv-6', 'b6');
    a.takeOver({ pKW: 7, qKVAr: 1.5 }, capability);
    expect(a.state().muUnder).toBeGreaterThan(0);
    expect(a.state().muOver).toBe(0);
    const next = a.setpoint(capability, NOW, 5000);
    expect(next.pKW).toBe(7);
    expect(next.qKVAr).toBeCloseTo(1.5, 9);
  });

  it("leaves the others' estimates out (gossip still settling), and dual ascent goes on from what it took over", () => {
    const alone = agent('inv-6', 'b6');
    alone.takeOver({ pKW: 7, qKVAr: -2 }, capability);
    const a = agent('inv-6', 'b6');
    a.notePeer('inv-5', 'b5', NOW);
    a.gossip.addValue('inv-5', 5000); // a large estimate of a peer's multiplier
    a.takeOver({ pKW: 7, qKVAr: -2 }, capability);
    const taken = a.state().muOver;
    expect(taken).toBeCloseTo(alone.state().muOver, 9);
    // With the peer's multiplier on top it does more than before, never less.
    expect(a.setpoint(capability, NOW, 5000).qKVAr).toBeLessThan(-2);
    a.updateMultiplier(1.06);
    expect(a.state().muOver).toBeGreaterThan(taken);
  });
});
