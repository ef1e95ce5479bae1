import { seededRandom } from '../../core/prng.js';
import { feederSensitivities, type Sensitivities } from '../../grid/sensitivity.js';
import { PushSumNode } from '../pushsum/push-sum.js';
import {
  type AscentMethod,
  bestResponse,
  gershgorinStep,
  MultiplierAscent,
  projectOntoCapability,
} from './dual-ascent.js';
import { voltagesWithSetpoints } from './feeder-response.js';
import { type InverterSpec, setpointCost, type VoltageProblem } from './problem.js';
import { voltVarVoltWatt } from './volt-var.js';

/** `dual` (accelerated dual ascent), `dual-plain` (dual ascent without acceleration, to compare with), `gradient`, `volt-var`. */
export const VOLTAGE_METHODS = ['dual', 'dual-plain', 'gradient', 'volt-var'] as const;
export type VoltageMethod = (typeof VOLTAGE_METHODS)[number];

/**
 * How far inside the limits the agents aim by default, pu: none. The accelerated ascent settles on
 * the limit to within 1e-5 pu before its stop rule holds (`npm run bench:voltage`); the plain
 * ascent still approaches from outside when it stops.
 */
export const DEFAULT_MARGIN_PU = 0;

/** An inverter's size for the stop rule: its rating, else the most it can move either way, kW or kVAr. */
function inverterSize(inv: InverterSpec): number {
  return inv.sRatedKVA ?? Math.max(inv.pAvailableKW, inv.qMaxKVAr, 1e-3);
}

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
  /** Fraction of gossip messages lost on the way (the sender learns it and keeps the mass). */
  lossRate?: number;
  /** Called after every control step with the setpoints (benchmarks trace the convergence with it). */
  onStep?: (step: { steps: number; rounds: number; p: readonly number[]; q: readonly number[] }) => void;
  /**
   * Reference mode for benchmarks: every agent sees the exact multipliers of all others (a coordinator)
   * instead of gossiped estimates, so the run isolates what gossip costs.
   */
  exactMultipliers?: boolean;
  /**
   * The agents aim this far inside the limits (pu), so that the asymptotic approach of dual ascent
   * ends inside them rather than a hair outside. Default `DEFAULT_MARGIN_PU`.
   */
  marginPu?: number;
  /** volt-var only: both curves moved this much lower in voltage (tighter utility settings). */
  curveShiftPu?: number;
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
 * One inverter's agent. It keeps the multipliers of the voltage limits of the buses it watches (its
 * own bus and the buses without an inverter nearest to it, whose customers' smart meters report to
 * it) and learns everyone else's through push-sum: each agent adds changes of its own entries to its
 * push-sum mass, so s/w · n at every agent tracks the whole vector (one entry per watched bus). Its
 * setpoint is its best response to that vector through its own column of the sensitivities. No
 * coordinator; gossip goes to random peers.
 */
class VoltageAgent {
  p: number;
  q = 0;
  /** Own entries by bus index: the multiplier ν = μ⁺ − μ⁻ (dual) or the voltage excess (gradient). */
  private readonly own = new Map<number, number>();
  private readonly muOver = new Map<number, MultiplierAscent>();
  private readonly muUnder = new Map<number, MultiplierAscent>();
  readonly gossip: PushSumNode;
  active = true;

  constructor(
    readonly index: number,
    readonly spec: InverterSpec,
    /** Indices (into the watched-bus list) of the buses this agent watches. */
    readonly watched: readonly number[],
    private readonly n: number,
    private readonly column: { p: number[]; q: number[] },
    steps: { over: readonly number[]; under: readonly number[] },
    ascent: AscentMethod,
  ) {
    this.p = spec.pAvailableKW;
    this.gossip = new PushSumNode(spec.id, Array(column.p.length).fill(0));
    for (const b of watched) {
      this.muOver.set(b, new MultiplierAscent(steps.over[b]!, ascent));
      this.muUnder.set(b, new MultiplierAscent(steps.under[b]!, ascent));
    }
  }

  private setOwn(bus: number, value: number): void {
    const delta = Array(this.column.p.length).fill(0);
    delta[bus] = value - (this.own.get(bus) ?? 0);
    this.own.set(bus, value);
    this.gossip.addValue(delta);
  }

  /** Dual ascent on the limits of its watched buses: μ⁺ grows with overvoltage, μ⁻ with undervoltage. */
  updateMultipliers(voltagePu: (bus: number) => number, vMin: number, vMax: number): void {
    for (const b of this.watched) {
      const v = voltagePu(b);
      const over = this.muOver.get(b)!.step(v - vMax);
      const under = this.muUnder.get(b)!.step(vMin - v);
      this.setOwn(b, over - under);
    }
  }

  updateExcess(voltagePu: (bus: number) => number, vMin: number, vMax: number): void {
    for (const b of this.watched) {
      const v = voltagePu(b);
      this.setOwn(b, Math.max(0, v - vMax) - Math.max(0, vMin - v));
    }
  }

  /** Its own entries written into a full vector (reference runs share them exactly). */
  writeEntries(into: number[]): void {
    for (const [b, v] of this.own) into[b] = v;
  }

  /** Entries of all watched buses, when a coordinator shares them exactly (reference runs only). */
  exact: number[] | undefined;

  /** Σ_k entry_k · dV_k/dx_i with the gossiped entries. */
  private weighted(): { p: number; q: number } {
    const estimate = this.exact ? this.exact.map((e) => e / this.n) : this.gossip.estimate();
    let p = 0;
    let q = 0;
    for (let k = 0; k < this.column.p.length; k++) {
      // Its own entries it knows exactly; their gossip estimate overshoots right after a change.
      const entry = this.own.get(k) ?? (estimate[k] ?? 0) * this.n;
      p += entry * this.column.p[k]!;
      q += entry * this.column.q[k]!;
    }
    return { p, q };
  }

  /** argmin (pA − p)² + w·q² + Σ ν_k (dV_k/dp·p + dV_k/dq·q), projected on the inverter's limits. */
  bestResponse(): void {
    const g = this.weighted();
    ({ pKW: this.p, qKVAr: this.q } = bestResponse(this.spec, this.spec.qWeight, { gp: g.p, gq: g.q }));
  }

  /** One gradient step on (pA − p)² + w·q² + (ρ/2) Σ excess_k². */
  gradientStep(rho: number, step: number): void {
    const g = this.weighted();
    const gp = -2 * (this.spec.pAvailableKW - this.p) + rho * g.p;
    const gq = 2 * this.spec.qWeight * this.q + rho * g.q;
    [this.p, this.q] = projectOntoCapability(this.spec, this.p - step * gp, this.q - step * gq);
  }
}

/**
 * Which agent watches each bus: an inverter's own bus is its agent's; a bus without an inverter goes
 * to the agent electrically nearest (least path resistance between the two buses).
 */
export function assignWatchedBuses(problem: VoltageProblem): { buses: string[]; owner: number[] } {
  const buses = problem.feeder.order.filter((b) => b !== problem.feeder.slack);
  const all = feederSensitivities(problem.feeder, buses);
  const at = new Map(buses.map((b, i) => [b, i]));
  const owner = buses.map((bus, k) => {
    const own = problem.inverters.findIndex((inv) => inv.bus === bus);
    if (own >= 0) return own;
    let best = 0;
    let bestDistance = Number.POSITIVE_INFINITY;
    problem.inverters.forEach((inv, i) => {
      const j = at.get(inv.bus)!;
      // Path resistance between k and j: R_kk + R_jj − 2 R_kj (shared-path resistances).
      const distance = all.dvdp[k]![k]! + all.dvdp[j]![j]! - 2 * all.dvdp[k]![j]!;
      if (distance < bestDistance - 1e-15) {
        bestDistance = distance;
        best = i;
      }
    });
    return best;
  });
  return { buses, owner };
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
    const r = voltVarVoltWatt(problem, 2000, options.curveShiftPu ?? 0);
    return result(problem, method, r.p, r.q, { converged: r.converged, rounds: 0, messages: 0, steps: r.steps });
  }
  const random = seededRandom(options.seed ?? 1);
  const { buses, owner } = assignWatchedBuses(problem);
  const sens: Sensitivities = feederSensitivities(problem.feeder, buses);
  const busIndex = new Map(buses.map((b, k) => [b, k]));
  const n = problem.inverters.length;
  const m = buses.length;
  const weights = problem.inverters.map((i) => i.qWeight);
  const columns = problem.inverters.map((inv) => {
    const j = busIndex.get(inv.bus)!;
    return { p: sens.dvdp.map((r) => r[j]!), q: sens.dvdq.map((r) => r[j]!) };
  });
  // Each bus's multiplier step from a Gershgorin bound on its row of the dual Hessian (rows: watched
  // buses, columns: inverters).
  const rows = {
    dvdp: buses.map((_, k) => columns.map((c) => c.p[k]!)),
    dvdq: buses.map((_, k) => columns.map((c) => c.q[k]!)),
  };
  // Raising a voltage has only reactive power once the inverters give all the PV there is, so only
  // the reactive terms bound the curvature of an undervoltage multiplier (as in the gateway's agent).
  const multiplierSteps = {
    over: buses.map((_, k) => gershgorinStep(rows, k, (i) => weights[i]!)),
    under: buses.map((_, k) => gershgorinStep(rows, k, (i) => weights[i]!, { reactiveOnly: true })),
  };
  const ascent: AscentMethod = method === 'dual-plain' ? 'plain' : 'accelerated';
  const agents = problem.inverters.map(
    (inv, i) =>
      new VoltageAgent(
        i,
        inv,
        owner.flatMap((o, k) => (o === i ? [k] : [])),
        n,
        columns[i]!,
        multiplierSteps,
        ascent,
      ),
  );
  const gossipPerStep = options.gossipRoundsPerStep ?? 5;
  const maxRounds = options.rounds ?? 20_000;
  const rho = method === 'gradient' ? 2e7 : 0;
  // Gradient step: 1 / (curvature of the agent's own penalised cost).
  const gradientSteps = agents.map((_, i) => {
    let c = 2 * Math.max(1, weights[i]!);
    for (let k = 0; k < m; k++) c += rho * (columns[i]!.p[k]! ** 2 + columns[i]!.q[k]! ** 2) * n;
    return 1 / c;
  });
  const margin = options.marginPu ?? DEFAULT_MARGIN_PU;
  const lossRate = options.lossRate ?? 0;
  const vMin = problem.vMinPu + margin;
  const vMax = problem.vMaxPu - margin;
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
    const voltageAt = (k: number) => v[buses[k]!]!;
    for (const a of active) {
      if (method !== 'gradient') a.updateMultipliers(voltageAt, vMin, vMax);
      else a.updateExcess(voltageAt, vMin, vMax);
    }
    const ids = active.map((a) => a.spec.id);
    const byId = new Map(active.map((a) => [a.spec.id, a]));
    for (let g = 0; g < gossipPerStep; g++) {
      const sent = active.map((a) => a.gossip.tick(ids, random)).filter((m) => m !== undefined);
      for (const m of sent) {
        messages++;
        if (lossRate > 0 && random() < lossRate) {
          byId.get(m.from)!.gossip.lost(m.seq);
          continue;
        }
        byId.get(m.to)!.gossip.receive(m);
        byId.get(m.from)!.gossip.acknowledged(m.seq);
      }
      rounds++;
    }
    if (options.exactMultipliers) {
      const entries = Array(m).fill(0);
      for (const a of agents) a.writeEntries(entries);
      for (const a of agents) a.exact = entries;
    }
    const before = agents.map((a) => [a.p, a.q]);
    active.forEach((a) => {
      if (method !== 'gradient') a.bestResponse();
      else a.gradientStep(rho, gradientSteps[a.index]!);
    });
    steps++;
    options.onStep?.({ steps, rounds, p: agents.map((a) => a.p), q: agents.map((a) => a.q) });
    // Relative to each inverter's size, so that a feeder of 10 kW and one of 1 MW inverters stop alike.
    const moved = Math.max(
      ...agents.map((a, i) => (Math.abs(a.p - before[i]![0]!) + Math.abs(a.q - before[i]![1]!)) / inverterSize(a.spec)),
    );
    const watchedByActive = active.flatMap((a) => a.watched);
    const worst = Math.max(0, ...watchedByActive.map((k) => Math.max(voltageAt(k) - vMax, vMin - voltageAt(k))));
    stable = moved < 1e-4 && worst < 2e-5 ? stable + 1 : 0;
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
