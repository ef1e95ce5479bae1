import { describe, expect, it } from 'vitest';
import { InverterTripWatch, type TripReading } from '../../src/control/voltage/inverter-trips.js';

/** A 5 kVA inverter (the thresholds below: 10 % = 0.5 kW, 1 % = 0.05 kW, 2 % = 0.1 kW). */
const reading = (acPowerKW: number | undefined, availableKW: number | undefined, reactiveKVAr = 0): TripReading => ({
  id: 'pv-1',
  ratedKVA: 5,
  ...(acPowerKW !== undefined ? { acPowerKW } : {}),
  ...(availableKW !== undefined ? { availableKW } : {}),
  reactiveKVAr,
});
const noLimit = () => 100;

describe('inverter trip watch: an output collapse the gateway did not command', () => {
  it('a trip: 4 kW and −1 kVAr, then nothing with 4 kW still available; told once, then once back', () => {
    const watch = new InverterTripWatch();
    expect(watch.observe([reading(4, 4, -1)], noLimit)).toEqual([]);
    expect(watch.observe([reading(0, 4, 0)], noLimit)).toEqual([
      { inverter: 'pv-1', to: 'tripped', pKW: 4, qKVAr: -1 },
    ]);
    expect(watch.isTripped('pv-1')).toBe(true);
    // While it stays out (and while it does not answer), nothing more is told.
    expect(watch.observe([reading(0, 4)], noLimit)).toEqual([]);
    expect(watch.observe([reading(undefined, undefined)], noLimit)).toEqual([]);
    // Noise below 2 % of 5 kVA (0.1 kW) is not a reconnect.
    expect(watch.observe([reading(0.08, 4)], noLimit)).toEqual([]);
    expect(watch.isTripped('pv-1')).toBe(true);
    // Back, ramping: it returns to its available 3.5 kW within the 60 % limit = 3 kW, with the −1 kVAr it had.
    expect(watch.observe([reading(0.3, 3.5)], () => 60)).toEqual([
      { inverter: 'pv-1', to: 'reconnected', pKW: 3, qKVAr: -1 },
    ]);
    expect(watch.isTripped('pv-1')).toBe(false);
  });

  it('a reconnect without an available power read returns to what it delivered before the trip', () => {
    const watch = new InverterTripWatch();
    watch.observe([reading(4, 4, 0.5)], noLimit);
    watch.observe([reading(0, 4)], noLimit);
    expect(watch.observe([reading(1, undefined)], noLimit)).toEqual([
      { inverter: 'pv-1', to: 'reconnected', pKW: 4, qKVAr: 0.5 },
    ]);
  });

  it('not a trip: a cloud (the available power falls with the output), a curtailment to 0, a ramp up to a raised limit', () => {
    const cloud = new InverterTripWatch();
    cloud.observe([reading(4, 4)], noLimit);
    expect(cloud.observe([reading(0.02, 0.4)], noLimit)).toEqual([]); // 0.4 kW available < 0.5 kW
    const curtailed = new InverterTripWatch();
    curtailed.observe([reading(4, 4)], noLimit);
    expect(curtailed.observe([reading(0, 4)], () => 5)).toEqual([]); // allowed 5 % of 5 kVA = 0.25 kW
    const ramping = new InverterTripWatch();
    ramping.observe([reading(0.2, 4)], () => 4); // held at 4 %: 0.2 kW
    expect(ramping.observe([reading(0, 4)], noLimit)).toEqual([]); // its last output was below 0.5 kW
  });

  it('not a trip: an inverter that stops answering keeps its state, and is judged from its next reading', () => {
    const watch = new InverterTripWatch();
    watch.observe([reading(4, 4)], noLimit);
    expect(watch.observe([reading(undefined, undefined)], noLimit)).toEqual([]);
    expect(watch.isTripped('pv-1')).toBe(false);
    // Its output before the silence still counts as the one before.
    expect(watch.observe([reading(0, 4)], noLimit)).toEqual([{ inverter: 'pv-1', to: 'tripped', pKW: 4, qKVAr: 0 }]);
  });
});
