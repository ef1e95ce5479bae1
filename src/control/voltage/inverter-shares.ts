import type { Capability } from './dual-ascent.js';
import { Q_SHARE_OF_RATING } from './volt-var.js';

/** One inverter of a gateway: the PV it could give now and its rating. */
export interface InverterShare {
  availableKW: number;
  ratedKVA: number;
}

/** What a gateway's inverters can do together: the PV they have (each up to its rating), the rating, the VAr limit. */
export function gatewayCapability(inverters: readonly InverterShare[]): Required<Capability> {
  const ratedKVA = inverters.reduce((s, i) => s + i.ratedKVA, 0);
  return {
    pAvailableKW: inverters.reduce((s, i) => s + Math.min(i.availableKW, i.ratedKVA), 0),
    sRatedKVA: ratedKVA,
    qMaxKVAr: Q_SHARE_OF_RATING * ratedKVA,
  };
}

/**
 * Splits a gateway's setpoint over its inverters: curtailment in proportion to what each has, VArs
 * to its rating. `limitPct` is 100 (no limit) unless the setpoint curtails.
 */
export function splitSetpoint(
  inverters: readonly InverterShare[],
  target: { pKW: number; qKVAr: number },
): { pKW: number; qKVAr: number; limitPct: number }[] {
  const total = gatewayCapability(inverters);
  const fraction = total.pAvailableKW > 0 ? target.pKW / total.pAvailableKW : 1;
  return inverters.map((inv) => {
    const pKW = Math.min(inv.availableKW, inv.ratedKVA) * fraction;
    return {
      pKW,
      qKVAr: (target.qKVAr * inv.ratedKVA) / total.sRatedKVA,
      limitPct: fraction < 1 - 1e-4 ? Math.min(100, (100 * pKW) / inv.ratedKVA) : 100,
    };
  });
}
