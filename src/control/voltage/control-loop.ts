import { seededRandom } from '../../trading/prng.js';
import { PushSumNode } from '../pushsum/push-sum.js';
import { voltagesWithSetpoints } from './feeder-response.js';
import { type InverterSpec, projectSetpoint, setpointCost, type VoltageProblem } from './problem.js';
import { feederSensitivities, type Sensitivities } from './sensitivity.js';
import { voltVarVoltWatt } from './volt-var.js';

export const VOLTAGE_METHODS = ['dual', 'gradient', 'volt-var'] as const;
export type VoltageMethod = (typeof VOLTAGE_METHODS)[number];

export interface VoltageRunOptions {
  method?: VoltageMethod;
  /** Cap on the total gossip rounds. */
  rounds?: number;
  seed?: number;
  /** Gossip rounds between two control steps. */
  gossipRoundsPerStep?: number;
  /** Fraction of agents that drop out (stop acting and gossiping, keep their last setpoint) at `dropoutAtStep`. */
  dropoutFraction?: number;
  dropoutAtStep?: number;
  /**
   * Reference mode for benchmarks: every agent sees the exact multipliers of all others (a coordinator)
   * instead of gossiped estimates, so the run isolates what gossip costs.
   */
  exactMultipliers?: boolean;
}

export interface VoltageRunResult {
  method: VoltageMethod;
  converged: boolean;
  setpoints: Record<string, { pKW: number; qKVAr: number }>;
  rounds: number;
  messages: number;
  steps: number;
  maxVoltagePu: number;
  minVoltagePu: number;
  cost: number;
  curtailedKW: number;
}

/**
 * One inverter's agent. It measures the voltage at its own bus, keeps the multipliers of its own
 * voltage limits (dual) or its own voltage excess (gradient), and learns everyone else's through
 * push-sum: each agent adds changes of its own entry to its push-sum mass, so s/w · n at every agent
 * tracks the whole vector. Its setpoint is its best response to that vector through its own column of
 * the sensitivities. No coordinator; gossip goes to random peers.
 */
class VoltageAgent {
  p: number;
  q = 0;
  /** Own entry: the multiplier ν = μ⁺ − μ⁻ (dual) or the voltage excess (gradient). */
  private own = 0;
  private muOver = 0;
  private muUnder = 0;
  readonly gossip: PushSumNode;
  active = true;

  constructor(
    readonly index: number,
    readonly spec: InverterSpec,
    private readonly n: number,
    private readonly column: { p: number[]; q: number[] },
    private readonly multiplierStep: number,
  ) {
    this.p = spec.pAvailableKW;
    this.gossip = new PushSumNode(spec.id, Array(n).fill(0));
  }

  private setOwn(value: number): void {
    const delta = Array(this.n).fill(0);
    delta[this.index] = value - this.own;
    this.own = value;
    this.gossip.addValue(delta);
  }

  /** Dual ascent on its own limits: μ⁺ grows with overvoltage, μ⁻ with undervoltage. */
  updateMultiplier(voltagePu: number, vMin: number, vMax: number): void {
    this.muOver = Math.max(0, this.muOver + this.multiplierStep * (voltagePu - vMax));
    this.muUnder = Math.max(0, this.muUnder + this.multiplierStep * (vMin - voltagePu));
    this.setOwn(this.muOver - this.muUnder);
  }

  updateExcess(voltagePu: number, vMin: number, vMax: number): void {
    this.setOwn(Math.max(0, voltagePu - vMax) - Math.max(0, vMin - voltagePu));
  }

  get entry(): number {
    return this.own;
  }

  /** Entries of all agents, when a coordinator shares them exactly (reference runs only). */
  exact: number[] | undefined;

  /** Σ_k entry_k · dV_k/dx_i with the gossiped entries. */
  private weighted(): { p: number; q: number } {
    const estimate = this.exact ? this.exact.map((e) => e / this.n) : this.gossip.estimate();
    let p = 0;
    let q = 0;
    for (let k = 0; k < this.n; k++) {
      const entry = (estimate[k] ?? 0) * this.n;
      p += entry * this.column.p[k]!;
      q += entry * this.column.q[k]!;
    }
    return { p, q };
  }

  /** argmin (pA − p)² + w·q² + Σ ν_k (dV_k/dp·p + dV_k/dq·q), projected on the inverter's limits. */
  bestResponse(): void {
    const g = this.weighted();
    [this.p, this.q] = projectSetpoint(this.spec, this.spec.pAvailableKW - g.p / 2, -g.q / (2 * this.spec.qWeight));
  }

  /** One gradient step on (pA − p)² + w·q² + (ρ/2) Σ excess_k². */
  gradientStep(rho: number, step: number): void {
    const g = this.weighted();
    const gp = -2 * (this.spec.pAvailableKW - this.p) + rho * g.p;
    const gq = 2 * this.spec.qWeight * this.q + rho * g.q;
    [this.p, this.q] = projectSetpoint(this.spec, this.p - step * gp, this.q - step * gq);
  }
}

function result(
  problem: VoltageProblem,
  method: VoltageMethod,
  p: number[],
  q: number[],
  run: { converged: boolean; rounds: number; messages: number; steps: number },
): VoltageRunResult {
  const v = Object.values(voltagesWithSetpoints(problem, p, q));
  return {
    method,
    ...run,
    setpoints: Object.fromEntries(problem.inverters.map((inv, i) => [inv.id, { pKW: p[i]!, qKVAr: q[i]! }])),
    maxVoltagePu: Math.max(...v),
    minVoltagePu: Math.min(...v),
    cost: setpointCost(problem.inverters, p, q),
    curtailedKW: problem.inverters.reduce((s, inv, i) => s + inv.pAvailableKW - p[i]!, 0),
  };
}

/**
 * The control loop closed through the power flow, which stands in for the feeder: every step each
 * active agent reads its bus voltage from the power flow with everyone's present setpoints, updates
 * its own entry, gossips, and moves its setpoint.
 */
export function runVoltageControl(problem: VoltageProblem, options: VoltageRunOptions = {}): VoltageRunResult {
  const method = options.method ?? 'dual';
  if (method === 'volt-var') {
    const r = voltVarVoltWatt(problem);
    return result(problem, method, r.p, r.q, { converged: r.converged, rounds: 0, messages: 0, steps: r.steps });
  }
  const random = seededRandom(options.seed ?? 1);
  const buses = problem.inverters.map((i) => i.bus);
  const sens: Sensitivities = feederSensitivities(problem.feeder, buses);
  const n = problem.inverters.length;
  const weights = problem.inverters.map((i) => i.qWeight);
  // Each agent's multiplier step from a Gershgorin bound on its row of the dual Hessian
  // H_kl = Σ_i (dV_k/dp_i · dV_l/dp_i / 2 + dV_k/dq_i · dV_l/dq_i / (2 w_i)).
  const stepFor = (k: number) => {
    let row = 0;
    for (let l = 0; l < n; l++) {
      let h = 0;
      for (let i = 0; i < n; i++)
        h += (sens.dvdp[k]![i]! * sens.dvdp[l]![i]!) / 2 + (sens.dvdq[k]![i]! * sens.dvdq[l]![i]!) / (2 * weights[i]!);
      row += Math.abs(h);
    }
    return row > 0 ? 1 / row : 0;
  };
  const agents = problem.inverters.map(
    (inv, i) =>
      new VoltageAgent(i, inv, n, { p: sens.dvdp.map((r) => r[i]!), q: sens.dvdq.map((r) => r[i]!) }, stepFor(i)),
  );
  const gossipPerStep = options.gossipRoundsPerStep ?? 5;
  const maxRounds = options.rounds ?? 20_000;
  const rho = method === 'gradient' ? 2e7 : 0;
  // Gradient step: 1 / (curvature of the agent's own penalised cost).
  const gradientSteps = agents.map((_, i) => {
    let c = 2 * Math.max(1, weights[i]!);
    for (let k = 0; k < n; k++) c += rho * (sens.dvdp[k]![i]! ** 2 + sens.dvdq[k]![i]! ** 2) * n;
    return 1 / c;
  });
  let rounds = 0;
  let messages = 0;
  let steps = 0;
  let converged = false;
  let stable = 0;
  while (rounds + gossipPerStep <= maxRounds) {
    if (options.dropoutFraction && steps === (options.dropoutAtStep ?? 50)) {
      const count = Math.floor(options.dropoutFraction * n);
      for (let k = 0; k < count; k++) agents[Math.floor(random() * n)]!.active = false;
    }
    const active = agents.filter((a) => a.active);
    const v = voltagesWithSetpoints(
      problem,
      agents.map((a) => a.p),
      agents.map((a) => a.q),
    );
    for (const a of active) {
      const vBus = v[a.spec.bus]!;
      if (method === 'dual') a.updateMultiplier(vBus, problem.vMinPu, problem.vMaxPu);
      else a.updateExcess(vBus, problem.vMinPu, problem.vMaxPu);
    }
    const ids = active.map((a) => a.spec.id);
    const byId = new Map(active.map((a) => [a.spec.id, a]));
    for (let g = 0; g < gossipPerStep; g++) {
      const sent = active.map((a) => a.gossip.tick(ids, random)).filter((m) => m !== undefined);
      for (const m of sent) {
        messages++;
        byId.get(m.to)!.gossip.receive(m);
        byId.get(m.from)!.gossip.acknowledged(m.seq);
      }
      rounds++;
    }
    if (options.exactMultipliers) {
      const entries = agents.map((a) => a.entry);
      for (const a of agents) a.exact = entries;
    }
    const before = agents.map((a) => [a.p, a.q]);
    active.forEach((a) => {
      if (method === 'dual') a.bestResponse();
      else a.gradientStep(rho, gradientSteps[a.index]!);
    });
    steps++;
    const moved = Math.max(...agents.map((a, i) => Math.abs(a.p - before[i]![0]!) + Math.abs(a.q - before[i]![1]!)));
    const worst = Math.max(
      ...active.map((a) => Math.max(v[a.spec.bus]! - problem.vMaxPu, problem.vMinPu - v[a.spec.bus]!, 0)),
    );
    stable = moved < 1e-3 && worst < 2e-4 ? stable + 1 : 0;
    if (stable >= 5) {
      converged = true;
      break;
    }
  }
  return result(
    problem,
    method,
    agents.map((a) => a.p),
    agents.map((a) => a.q),
    { converged, rounds, messages, steps },
  );
}
