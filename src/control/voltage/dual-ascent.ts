/**
 * The dual-ascent core of the voltage control (Almasalma, Engels & Deconinck's dual decomposition):
 * minimise Σ_i (pAvailable_i − p_i)² + qWeight_i·q_i² subject to vMin ≤ V_k ≤ vMax, with V_k ≈ V0_k +
 * Σ_i dV_k/dp_i·p_i + dV_k/dq_i·q_i. Each bus k has a multiplier ν_k = μ⁺_k − μ⁻_k; each inverter
 * answers the multipliers with its best response. Each multiplier moves by `MultiplierAscent`
 * (accelerated by default). Used by the simulated control (`control-loop.ts`), the three-phase control
 * (`lv-three-phase.ts`) and the gateway's agent (`dual-agent.ts`).
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
 * faster than 1 / row. The accelerated ascent starts from the same step (its restart keeps it stable).
 */
export const GERSHGORIN_STEP_SCALE = 1.5;

/**
 * The accelerated ascent lengthens a multiplier's step up to this many times its Gershgorin step.
 * The row sum bounds the curvature of every direction at once, and is several times the curvature
 * along which a feeder's multipliers actually move; the cap bounds the step where a noisy
 * measurement (a gossip estimate off, a lost message) shows almost no curvature.
 */
export const SECANT_STEP_CAP = 10;

/** How a multiplier moves: `accelerated` (the default) or `plain` projected ascent, kept to compare with. */
export type AscentMethod = 'accelerated' | 'plain';

/**
 * One multiplier μ ≥ 0 of a voltage limit, moved by the excess measured at the limit's bus.
 * - `plain`: projected ascent μ ← [μ + α·excess]₊ with the Gershgorin step α.
 * - `accelerated`: the same step on the extrapolated point y with Nesterov's momentum (FISTA's
 *   sequence, Beck & Teboulle 2009), restarted whenever the step turns against the way the multiplier
 *   has been moving (O'Donoghue & Candès 2015, gradient restart, here per multiplier so that each agent
 *   decides alone); and the step lengthened by a secant estimate of the curvature, the excess's change
 *   over the multiplier's change along its own last move (Barzilai & Borwein 1988, one coordinate),
 *   within 1 and `SECANT_STEP_CAP` times the Gershgorin step. That change is measured on the feeder,
 *   so it counts what everyone's inverters did in response, not only this multiplier's share.
 * The inverters respond to `lookahead` (= μ for `plain`), and the excess handed to `step` is what was
 * measured with them acting on it.
 */
export class MultiplierAscent {
  /** The multiplier μ. */
  value = 0;
  /** The point the inverters respond to and the peers are told: μ plus momentum. */
  lookahead = 0;
  private momentumT = 1;
  private stepScale = 1;
  private last: { lookahead: number; excess: number } | undefined;

  constructor(
    private readonly gershgorinStep: number,
    readonly method: AscentMethod = 'accelerated',
    /**
     * The secant's cap on the step, in Gershgorin steps; 1 turns the secant off. A loop whose
     * measurement lags the setpoints by a step or more (a gateway's: Modbus writes, inverter ramps,
     * peers' multipliers a hello late) sees too little response for the move and would overstep.
     */
    private readonly maxStepScale = SECANT_STEP_CAP,
  ) {}

  /** One step with the constraint's excess (pu, positive beyond the limit) measured at `lookahead`; returns the new lookahead. */
  step(excess: number): number {
    if (this.method === 'plain') {
      this.value = ascend(this.value, this.gershgorinStep, excess);
      this.lookahead = this.value;
      return this.value;
    }
    this.measureCurvature(excess);
    const previous = this.value;
    const next = ascend(this.lookahead, this.gershgorinStep * this.stepScale, excess);
    this.value = next;
    // The step (next − lookahead) against the last move (next − previous): opposite ways → restart.
    if ((next - this.lookahead) * (next - previous) < 0) this.momentumT = 1;
    const t = (1 + Math.sqrt(1 + 4 * this.momentumT * this.momentumT)) / 2;
    const momentum = (this.momentumT - 1) / t;
    this.momentumT = t;
    this.lookahead = Math.max(0, next + momentum * (next - previous));
    return this.lookahead;
  }

  private measureCurvature(excess: number): void {
    const last = this.last;
    this.last = { lookahead: this.lookahead, excess };
    if (!last) return;
    const moved = this.lookahead - last.lookahead;
    const response = excess - last.excess;
    // A higher multiplier lowers its excess; a change the other way says nothing about the curvature.
    if (Math.abs(moved) < 1e-12 || moved * response >= 0) return;
    const curvature = -response / moved;
    this.stepScale = Math.min(this.maxStepScale, Math.max(1, 1 / (curvature * this.gershgorinStep)));
  }

  /** Sets μ (a takeover, a restored checkpoint): no momentum, and the curvature is measured afresh. */
  reset(value: number): void {
    this.value = Math.max(0, value);
    this.lookahead = this.value;
    this.momentumT = 1;
    this.last = undefined;
  }
}

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
