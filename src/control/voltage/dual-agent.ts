import type { RadialFeeder } from '../../grid/feeder.js';
import { feederSensitivities } from '../../grid/sensitivity.js';
import { SlottedPushSum } from '../pushsum/slotted.js';
import {
  type AscentMethod,
  ascend,
  bestResponse,
  type Capability,
  gershgorinStep,
  MultiplierAscent,
} from './dual-ascent.js';

export type { Capability } from './dual-ascent.js';

/**
 * The runtime side of the dual voltage control (the same method as `runVoltageControl`, for one
 * gateway on real links): the agent owns the multipliers of its own bus's limits, shares them with
 * the cell's other agents through running-sum push-sum (entries keyed by agent id, robust to lost,
 * repeated and late messages), and sets its inverters to its best response to everyone's multipliers
 * through the sensitivities of the feeder it received at commissioning. Pure: the caller supplies
 * measurements, time, the random source and moves the messages.
 */
export interface DualAgentOptions {
  id: string;
  bus: string;
  /** The cell's feeder (commissioning data): sensitivities between its buses. */
  feeder: RadialFeeder;
  vMinPu: number;
  vMaxPu: number;
  /** Aim this far inside the limits, so that dual ascent settles inside them. */
  marginPu: number;
  /** Weight of reactive power against curtailment in the cost (per kVAr² against per kW²). */
  qWeight: number;
  /** Identifies this run of the agent to its peers (a restart starts a new epoch). */
  epoch: number;
  /** Push-sum starts afresh this often (clock-aligned), so that mass lost with a dead peer heals. */
  gossipSlotMs: number;
  /** Set when the agent restarted (it restored its multipliers): when, so that it does not count itself twice. */
  restartedAtMs?: number;
  /**
   * A multiplier a peer announced itself (in its hello) counts instead of the gossip estimate for
   * this long; an older one gives way to the estimate (a peer heard only through others' gossip).
   */
  reportFreshMs: number;
  /** How its two multipliers move (default `GATEWAY_ASCENT`). */
  ascent?: LimitAscent;
}

/** How a gateway's overvoltage and undervoltage multipliers move. */
export interface LimitAscent {
  overvoltage: AscentMethod;
  undervoltage: AscentMethod;
}

/**
 * A gateway acts on readings a Modbus poll old. The overvoltage multiplier acts through curtailment,
 * the strongest lever on an LV cable, and over that lag its momentum rings; the undervoltage one acts
 * through reactive power only and climbs from zero at every evening ramp, where momentum closes the
 * lag (`npm run bench:voltage-dynamics`, docs/control.md).
 */
export const GATEWAY_ASCENT: LimitAscent = { overvoltage: 'plain', undervoltage: 'accelerated' };

export class DualVoltageAgent {
  readonly gossip: SlottedPushSum;
  private ascentState: { over: MultiplierAscent; under: MultiplierAscent } | undefined;
  private own = 0;
  /** Bus of each peer agent and when it was last heard of. */
  private readonly peers = new Map<string, { bus: string; lastMs: number }>();
  /** The multiplier each peer last announced, and when it was heard. */
  private readonly reports = new Map<string, { multiplier: number; atMs: number }>();
  private readonly sensitivityCache = new Map<string, { p: number; q: number }>();

  constructor(private readonly o: DualAgentOptions) {
    this.gossip = new SlottedPushSum(o.id, o.epoch, o.gossipSlotMs, o.restartedAtMs);
  }

  get id(): string {
    return this.o.id;
  }

  get bus(): string {
    return this.o.bus;
  }

  /**
   * A peer agent is alive and sits at `bus` (from its gossip or its hello); a hello also carries the
   * peer's own multiplier, unless it is on its local curves.
   */
  notePeer(id: string, bus: string, now: number, multiplier?: number): void {
    if (id === this.o.id) return;
    if (!this.o.feeder.order.includes(bus)) return;
    this.peers.set(id, { bus, lastMs: now });
    if (multiplier !== undefined && Number.isFinite(multiplier)) this.reports.set(id, { multiplier, atMs: now });
  }

  /** Peers heard of within `timeoutMs`; older ones are dropped (their entries no longer count). */
  livePeers(now: number, timeoutMs: number): string[] {
    for (const [id, p] of this.peers) {
      if (now - p.lastMs <= timeoutMs) continue;
      this.peers.delete(id);
      this.reports.delete(id);
    }
    return [...this.peers.keys()];
  }

  /** dV at `bus` per kW / kVAr injected at this agent's bus (LinDistFlow shared-path impedance). */
  private sensitivity(bus: string): { p: number; q: number } {
    let s = this.sensitivityCache.get(bus);
    if (!s) {
      const m = feederSensitivities(this.o.feeder, [bus, this.o.bus]);
      s = { p: m.dvdp[0]![1]!, q: m.dvdq[0]![1]! };
      this.sensitivityCache.set(bus, s);
    }
    return s;
  }

  /** Agents of the cell as this one knows them: itself and its live peers, with their buses. */
  private agents(): { id: string; bus: string }[] {
    return [{ id: this.o.id, bus: this.o.bus }, ...[...this.peers].map(([id, p]) => ({ id, bus: p.bus }))];
  }

  private readonly steps = new Map<string, { over: number; under: number }>();

  /**
   * Steps of its own multipliers: Gershgorin bounds on its row of the dual Hessian with an agent at
   * every bus the feeder file lists (or every bus, when it lists none). A bound over only the peers
   * heard so far would be far too large while they are few (at start-up, or when peers drop out),
   * and a multiplier driven up by such steps takes very long to come down again. The undervoltage
   * multiplier has a step of its own: raising a voltage can only use reactive power (the inverters
   * already give all the PV there is), so only the reactive terms bound its curvature, and a step
   * bounded by the active ones too would be several times too small (slow to act on an evening peak).
   */
  multiplierStep(): { over: number; under: number } {
    return this.multiplierStepAt(this.o.bus);
  }

  /**
   * The steps the agent at `bus` takes (`multiplierStep` there): every agent has the same feeder, so
   * each can tell the step any other takes.
   */
  multiplierStepAt(bus: string): { over: number; under: number } {
    let steps = this.steps.get(bus);
    if (steps === undefined) {
      const f = this.o.feeder;
      const listed = [...f.loadKW.keys()].filter((b) => b !== f.slack);
      const candidates = (listed.length > 0 ? listed : f.order.filter((b) => b !== f.slack)).filter((b) => b !== bus);
      // Rows and columns alike: the bus first, then an agent at every other bus.
      const sens = feederSensitivities(f, [bus, ...candidates]);
      const qWeight = () => this.o.qWeight;
      steps = {
        over: gershgorinStep(sens, 0, qWeight),
        under: gershgorinStep(sens, 0, qWeight, { reactiveOnly: true }),
      };
      this.steps.set(bus, steps);
    }
    return steps;
  }

  /**
   * A peer's bus is beyond a limit (its `bus-limit` event, heard within a primary cycle): the agent
   * takes one projected ascent step of that limit's multiplier for it, with the reported voltage and
   * the step the peer itself takes (`multiplierStepAt`), from the multiplier the peer sent (or the last
   * one known), and counts the result as the peer's announced multiplier. The peer makes the same
   * step at its next secondary cycle with its own measurement, and its hello then replaces this one
   * (confirms or corrects it). Returns the multiplier now counted for the peer, or undefined when the
   * bus is not on the feeder or the voltage is within the limit less the margin.
   */
  limitReported(
    now: number,
    peer: string,
    event: { bus: string; voltagePu: number; limit: 'max' | 'min'; limitPu: number; multiplier?: number },
    timeoutMs: number,
  ): number | undefined {
    if (peer === this.o.id || !this.o.feeder.order.includes(event.bus) || event.bus === this.o.feeder.slack)
      return undefined;
    const excessPu =
      event.limit === 'max'
        ? event.voltagePu - (event.limitPu - this.o.marginPu)
        : event.limitPu + this.o.marginPu - event.voltagePu;
    if (!(excessPu > 0)) return undefined;
    const known = this.multipliers(now, timeoutMs).get(peer) ?? 0;
    const base = event.multiplier ?? known;
    const step = this.multiplierStepAt(event.bus);
    // ν = μ⁺ − μ⁻: the limit beyond which the bus is has its multiplier stepped, the other is taken as 0.
    const nu =
      event.limit === 'max'
        ? ascend(Math.max(0, base), step.over, excessPu)
        : -ascend(Math.max(0, -base), step.under, excessPu);
    this.notePeer(peer, event.bus, now, nu);
    return nu;
  }

  /**
   * A peer's output changed at once (one of its inverters tripped or reconnected: `gossip/inverter-trip`,
   * `gossip/inverter-reconnect`): the agent predicts the voltage at the peer's bus after the change,
   * V' = V + dV/dp·Δp + dV/dq·Δq (the bus's own LinDistFlow sensitivities, from the same feeder file
   * every agent has), from the voltage the peer measured before it, and takes for the peer the one
   * projected ascent step of both of its bus's multipliers that the peer takes at its next secondary
   * cycle once it measures V': μ⁺ ← [μ⁺ + α⁺·(V' − (V_max − margin))]₊, μ⁻ ← [μ⁻ + α⁻·((V_min + margin) − V')]₊,
   * from the multiplier the peer sent (or the last one known). So a trip that takes the voltage
   * below the band raises μ⁻, one that takes it off the top lowers μ⁺, and a reconnect the reverse.
   * Counted as the peer's announced multiplier (its next hello confirms or corrects it). Undefined
   * when the bus is not on the feeder or the step changes nothing (no multiplier in force and V'
   * within the band).
   */
  outputChangeReported(
    now: number,
    peer: string,
    event: { bus: string; voltagePu: number; dPKW: number; dQKVAr: number; multiplier?: number },
    timeoutMs: number,
  ): { multiplier: number; predictedPu: number } | undefined {
    const f = this.o.feeder;
    if (peer === this.o.id || !f.order.includes(event.bus) || event.bus === f.slack) return undefined;
    const s = feederSensitivities(f, [event.bus]);
    const predictedPu = event.voltagePu + s.dvdp[0]![0]! * event.dPKW + s.dvdq[0]![0]! * event.dQKVAr;
    const base = event.multiplier ?? this.multipliers(now, timeoutMs).get(peer) ?? 0;
    const step = this.multiplierStepAt(event.bus);
    const over = ascend(Math.max(0, base), step.over, predictedPu - (this.o.vMaxPu - this.o.marginPu));
    const under = ascend(Math.max(0, -base), step.under, this.o.vMinPu + this.o.marginPu - predictedPu);
    const nu = over - under;
    if (nu === base) return undefined;
    this.notePeer(peer, event.bus, now, nu);
    return { multiplier: nu, predictedPu };
  }

  /** Its two multipliers, each moved by the dual-ascent core with its own step. */
  private get ascent(): { over: MultiplierAscent; under: MultiplierAscent } {
    if (!this.ascentState) {
      const step = this.multiplierStep();
      const ascent = this.o.ascent ?? GATEWAY_ASCENT;
      // No secant: the gateway measures its bus a control step or more after its setpoints changed.
      this.ascentState = {
        over: new MultiplierAscent(step.over, ascent.overvoltage, 1),
        under: new MultiplierAscent(step.under, ascent.undervoltage, 1),
      };
    }
    return this.ascentState;
  }

  /** Dual ascent on its own bus's limits with the voltage it measured. */
  updateMultiplier(voltagePu: number): void {
    const vMax = this.o.vMaxPu - this.o.marginPu;
    const vMin = this.o.vMinPu + this.o.marginPu;
    const { over, under } = this.ascent;
    this.publishOwn(over.step(voltagePu - vMax) - under.step(vMin - voltagePu));
  }

  /**
   * Every agent's multiplier: its own exactly; a peer's as the peer last announced it, while that is
   * fresh; else as gossip estimates it (average × number of agents), for a peer whose hellos do not
   * reach this agent. Announced values come first because push-sum estimates go wrong when a peer
   * dies: it takes mass with it and the others keep sending it half of theirs until they drop it, so
   * every agent's weight drains and each later change of a multiplier enters the estimates n / Σw
   * times, far off and of either sign, until the slot's instance is retired. Its own
   * estimate would overshoot right after a change, before gossip has spread it.
   */
  multipliers(now: number, timeoutMs: number): Map<string, number> {
    const live = this.livePeers(now, timeoutMs);
    const out = new Map<string, number>([[this.o.id, this.own]]);
    for (const [id, multiplier] of this.freshReports(now)) out.set(id, multiplier);
    if (out.size === 1 + live.length) return out; // every peer announced: no estimate needed
    for (const [id, average] of this.gossip.estimate(now))
      if (this.peers.has(id) && !out.has(id)) out.set(id, average * (1 + live.length));
    return out;
  }

  /** Peers whose own announced multiplier counts now (the rest come from the gossip estimates). */
  announcedPeers(now: number): number {
    return [...this.freshReports(now)].length;
  }

  /** The live peers' announced multipliers that are still fresh. */
  private *freshReports(now: number): Generator<[string, number]> {
    for (const [id, r] of this.reports)
      if (this.peers.has(id) && now - r.atMs <= this.o.reportFreshMs) yield [id, r.multiplier];
  }

  /** Σ ν_k dV_k/dp and Σ ν_k dV_k/dq at this agent's bus, over every agent's multiplier. */
  private gradient(now: number, timeoutMs: number): { gp: number; gq: number } {
    const busOf = new Map(this.agents().map((a) => [a.id, a.bus]));
    let gp = 0;
    let gq = 0;
    for (const [id, nu] of this.multipliers(now, timeoutMs)) {
      const bus = busOf.get(id);
      if (bus === undefined) continue;
      const s = this.sensitivity(bus);
      gp += nu * s.p;
      gq += nu * s.q;
    }
    return { gp, gq };
  }

  /** argmin (pA − p)² + w·q² + Σ ν_k (dV_k/dp·p + dV_k/dq·q) within the inverters' limits. */
  setpoint(capability: Capability, now: number, timeoutMs: number): { pKW: number; qKVAr: number } {
    return this.response(capability, this.gradient(now, timeoutMs));
  }

  private response(capability: Capability, g: { gp: number; gq: number }): { pKW: number; qKVAr: number } {
    return bestResponse(capability, this.o.qWeight, g);
  }

  /**
   * Bumpless transfer: sets its own multiplier so that its best response alone moves the voltage at
   * its bus as much as what its inverters deliver now (the local curves' reactive power and
   * curtailment mix the two in another ratio, so the voltage is what is matched). Taking over from
   * the curves, or after a restart, then starts from their action instead of first undoing it; dual
   * ascent goes on from there. The others' multipliers are left out: while gossip is still settling
   * (at start, after a restart) its estimates can be far off, even of the wrong sign, and counting
   * them on top errs on the side of more action, which dual ascent takes back.
   */
  takeOver(delivered: { pKW: number; qKVAr: number }, capability: Capability): void {
    const own = this.sensitivity(this.o.bus);
    const effect = (r: { pKW: number; qKVAr: number }) => own.p * r.pKW + own.q * r.qKVAr;
    const target = effect(delivered);
    // The response's effect falls as ν rises (less power, less reactive power): bracket, then bisect.
    const effectAt = (nu: number) => effect(this.response(capability, { gp: nu * own.p, gq: nu * own.q }));
    let low = -1;
    let high = 1;
    for (let i = 0; i < 60 && effectAt(low) < target; i++) low *= 2;
    for (let i = 0; i < 60 && effectAt(high) > target; i++) high *= 2;
    for (let i = 0; i < 100 && high - low > 1e-12 * Math.max(1, Math.abs(high)); i++) {
      const mid = (low + high) / 2;
      if (effectAt(mid) > target) low = mid;
      else high = mid;
    }
    const nu = (low + high) / 2;
    this.setOwn(Math.max(0, nu), Math.max(0, -nu));
  }

  /** Sets both multipliers (no momentum from before). */
  private setOwn(muOver: number, muUnder: number): void {
    const { over, under } = this.ascent;
    over.reset(muOver);
    under.reset(muUnder);
    this.publishOwn(over.lookahead - under.lookahead);
  }

  /** The entry it acts on and tells its peers (and its gossip). */
  private publishOwn(entry: number): void {
    this.gossip.addValue(this.o.id, entry - this.own);
    this.own = entry;
  }

  state(): { multiplier: number; muOver: number; muUnder: number; peers: number } {
    const { over, under } = this.ascent;
    return { multiplier: this.own, muOver: over.value, muUnder: under.value, peers: this.peers.size };
  }

  /** Multipliers survive a restart, so the control does not start over from no curtailment. */
  persist(): { muOver: number; muUnder: number } {
    const { over, under } = this.ascent;
    return { muOver: over.value, muUnder: under.value };
  }

  restore(saved: { muOver: number; muUnder: number }): void {
    this.setOwn(Math.max(0, saved.muOver), Math.max(0, saved.muUnder));
  }
}
