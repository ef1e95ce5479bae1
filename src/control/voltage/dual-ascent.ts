/**
 * The dual-ascent core of the voltage control (Almasalma, Engels & Deconinck's dual decomposition):
 * minimise Σ_i (pAvailable_i − p_i)² + qWeight_i·q_i² subject to vMin ≤ V_k ≤ vMax, with V_k ≈ V0_k +
 * Σ_i dV_k/dp_i·p_i + dV_k/dq_i·q_i. Each bus k has a multiplier ν_k = μ⁺_k − μ⁻_k; each inverter
 * answers the multipliers with its best response. Used by the simulated control (`control-loop.ts`),
 * the three-phase control (`lv-three-phase.ts`) and the gateway's agent (`dual-agent.ts`).
 */

/** What an inverter (or all of a gateway's inverters together) can do now. */
export interface Capability {
  /** What the panels could give now, kW. */
  pAvailableKW: number;
  /** Reactive power limit either way (IEEE 1547 Category B: 44 % of the rating), kVAr. */
  qMaxKVAr: number;
  /** Apparent power rating, kVA; no circle limit when absent. */
  sRatedKVA?: number;
}

/**
 * Keeps a setpoint within the inverter's capability: |q| ≤ qMax, 0 ≤ p ≤ pAvailable, p² + q² ≤ S².
 * Reactive power has priority: at the kVA limit active power gives way to the VArs. IEEE 1547-2018
 * (Category B, Table 7) and VDE AR-N 4105 ask for the reactive power at full active power, so an
 * inverter whose rating leaves no room for it curtails rather than drop the VArs the grid counts on;
 * the local volt-var curves (`curveSetpoint`) give way the same, so a takeover or a fallback does not
 * switch priorities. Keeping p first would leave an inverter at full sun with no VArs at all.
 */
export function projectOntoCapability(capability: Capability, pKW: number, qKVAr: number): [number, number] {
  const s = capability.sRatedKVA ?? Number.POSITIVE_INFINITY;
  const qLimit = Math.min(capability.qMaxKVAr, s);
  const q = Math.min(Math.max(qKVAr, -qLimit), qLimit);
  const pMax = Math.min(capability.pAvailableKW, Math.sqrt(Math.max(0, s * s - q * q)));
  return [Math.min(Math.max(pKW, 0), pMax), q];
}

/**
 * An inverter's best response to the multipliers: argmin (pA − p)² + w·q² + gp·p + gq·q with
 * gp = Σ_k ν_k·dV_k/dp and gq = Σ_k ν_k·dV_k/dq, i.e. p = pA − gp/2, q = −gq/(2w), projected onto its
 * capability (`projectOntoCapability`).
 */
export function bestResponse(
  capability: Capability,
  qWeight: number,
  gradient: { gp: number; gq: number },
): { pKW: number; qKVAr: number } {
  const [pKW, qKVAr] = projectOntoCapability(
    capability,
    capability.pAvailableKW - gradient.gp / 2,
    gradient.gq === 0 ? 0 : -gradient.gq / (2 * qWeight), // (gq = 0 gives q = 0, not −0)
  );
  return { pKW, qKVAr };
}

/** One step of projected dual ascent: a multiplier grows with its constraint's excess and stays ≥ 0. */
export function ascend(multiplier: number, step: number, excess: number): number {
  return Math.max(0, multiplier + step * excess);
}

/**
 * Dual ascent is stable for steps below 2/L (L the Lipschitz constant of the dual gradient); the
 * Gershgorin row sum bounds L from above, so 1.5 / row keeps a margin and converges about a third
 * faster than 1 / row. Accelerated (Nesterov) ascent needs 1 / L: it passes a scale of 1.
 */
export const GERSHGORIN_STEP_SCALE = 1.5;

/** Sensitivities of the constrained voltages (rows k) to the injections of the inverters (columns i), pu per kW / kVAr. */
export interface SensitivityRows {
  dvdp: readonly (ArrayLike<number> | readonly number[])[];
  dvdq: readonly (ArrayLike<number> | readonly number[])[];
}

/**
 * The step of bus k's multiplier: scale / Σ_l |H_kl|, a Gershgorin bound on row k of the dual Hessian
 * H_kl = Σ_i (dV_k/dp_i·dV_l/dp_i / 2 + dV_k/dq_i·dV_l/dq_i / (2 w_i)). `reactiveOnly` leaves the
 * active terms out: raising a voltage can only use reactive power once the inverters give all the PV
 * there is, so only the reactive terms bound the curvature of an undervoltage multiplier.
 */
export function gershgorinStep(
  sens: SensitivityRows,
  k: number,
  qWeight: (i: number) => number,
  options: { scale?: number; reactiveOnly?: boolean } = {},
): number {
  const scale = options.scale ?? GERSHGORIN_STEP_SCALE;
  const pk = sens.dvdp[k]!;
  const qk = sens.dvdq[k]!;
  const n = pk.length;
  let row = 0;
  for (let l = 0; l < sens.dvdp.length; l++) {
    const pl = sens.dvdp[l]!;
    const ql = sens.dvdq[l]!;
    let h = 0;
    for (let i = 0; i < n; i++)
      h += (options.reactiveOnly ? 0 : (pk[i]! * pl[i]!) / 2) + (qk[i]! * ql[i]!) / (2 * qWeight(i));
    row += Math.abs(h);
  }
  return row > 0 ? scale / row : 0;
}
