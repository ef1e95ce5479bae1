/**
 * Tells, from one inverter's readings of each primary cycle, when it trips (disconnects on its own
 * protection) and when it reconnects. Pure: the caller hands in the readings and the active power
 * limit it holds the inverter to.
 *
 * A trip is an output collapse the gateway did not command: the last reading produced at least
 * `TRIP_FROM_FRACTION` of the rating, this one at most `TRIP_OUTPUT_FRACTION`, while the panels still
 * give at least `TRIP_FROM_FRACTION` (the available power, SunSpec model 122's WAval) within the limit
 * the gateway set. So neither a cloud (the available power falls with the output), nor a curtailment
 * (the limit falls), nor an inverter still ramping up to a raised limit (its last output was low) is
 * taken for one. An inverter that stops answering (its readings go stale and read as absent) is not
 * taken for a trip either: the gateway cannot tell a lost Modbus link from a lost inverter, and
 * telling the cell that power is gone when it is not would make the neighbours act the wrong way; a
 * silent inverter keeps the state it had. The process image has no SunSpec operating state (St) to
 * read; the output and the available power are read from every inverter that has the Inverter nature.
 * A tripped inverter is back once it produces `RECONNECT_OUTPUT_FRACTION` of its rating again (it then
 * ramps up to what its limit allows).
 */

/** An output at or below this fraction of the rating after a trip is taken as none (the readings' noise). */
export const TRIP_OUTPUT_FRACTION = 0.01;
/** Only an output, and an available power, of at least this fraction of the rating can be seen to trip. */
export const TRIP_FROM_FRACTION = 0.1;
/** A tripped inverter producing this fraction of its rating has reconnected (above `TRIP_OUTPUT_FRACTION`: no flapping on noise). */
export const RECONNECT_OUTPUT_FRACTION = 0.02;

/** One inverter's readings of a primary cycle (absent: unknown or stale). */
export interface TripReading {
  id: string;
  ratedKVA: number;
  availableKW?: number;
  acPowerKW?: number;
  reactiveKVAr?: number;
}

/** One inverter's change of service. */
export interface InverterTransition {
  inverter: string;
  to: 'tripped' | 'reconnected';
  /**
   * Tripped: what it delivered the cycle before (the output lost). Reconnected: the output it ramps
   * back to, its available power within its limit (what it delivered before the trip when its
   * available power is not read), with the reactive power it delivered before the trip.
   */
  pKW: number;
  qKVAr: number;
}

export class InverterTripWatch {
  /** The output of each inverter in service at its last reading. */
  private readonly lastOutput = new Map<string, { pKW: number; qKVAr: number }>();
  /** Each tripped inverter, with what it delivered before it tripped. */
  private readonly trippedWith = new Map<string, { pKW: number; qKVAr: number }>();

  isTripped(inverter: string): boolean {
    return this.trippedWith.has(inverter);
  }

  /** The readings of one primary cycle; `limitPctOf` gives the active power limit the gateway holds each inverter to. */
  observe(readings: readonly TripReading[], limitPctOf: (inverter: string) => number): InverterTransition[] {
    const transitions: InverterTransition[] = [];
    for (const r of readings) {
      if (r.acPowerKW === undefined || r.ratedKVA <= 0) continue; // not answering: it keeps its state
      const output = { pKW: r.acPowerKW, qKVAr: r.reactiveKVAr ?? 0 };
      const allowedKW =
        r.availableKW === undefined
          ? undefined
          : Math.min(r.availableKW, r.ratedKVA, (r.ratedKVA * limitPctOf(r.id)) / 100);
      const lost = this.trippedWith.get(r.id);
      if (lost) {
        if (output.pKW >= RECONNECT_OUTPUT_FRACTION * r.ratedKVA) {
          this.trippedWith.delete(r.id);
          this.lastOutput.set(r.id, output);
          transitions.push({ inverter: r.id, to: 'reconnected', pKW: allowedKW ?? lost.pKW, qKVAr: lost.qKVAr });
        }
        continue;
      }
      const before = this.lastOutput.get(r.id);
      const collapsed =
        before !== undefined &&
        before.pKW >= TRIP_FROM_FRACTION * r.ratedKVA &&
        output.pKW <= TRIP_OUTPUT_FRACTION * r.ratedKVA &&
        allowedKW !== undefined &&
        allowedKW >= TRIP_FROM_FRACTION * r.ratedKVA;
      if (collapsed) {
        this.trippedWith.set(r.id, before);
        this.lastOutput.delete(r.id);
        transitions.push({ inverter: r.id, to: 'tripped', ...before });
      } else this.lastOutput.set(r.id, output);
    }
    return transitions;
  }
}
