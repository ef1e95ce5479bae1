import { ErrorCode, P2PError } from '../../core/errors.js';
import type { SlottedMessage } from '../pushsum/slotted.js';
import { type DualAgentOptions, DualVoltageAgent } from './dual-agent.js';
import { gatewayCapability, splitSetpoint } from './inverter-shares.js';
import { type InverterTransition, InverterTripWatch } from './inverter-trips.js';
import { categoryBInverter, followCurves } from './volt-var.js';

/** How a gateway's voltage agent acts (the config's `voltageControl.method`). */
export type VoltageControlMethod = 'dual' | 'volt-var' | 'monitor';

/** The time scales the controller acts on: the local curves every primary, the distributed control every secondary cycle. */
export type ControlScale = 'primary' | 'secondary';

export interface VoltageControllerOptions {
  method: VoltageControlMethod;
  /** `dual` only: the gateway's dual agent (its bus, the cell's feeder, limits, gossip timing). */
  dual?: Omit<DualAgentOptions, 'restartedAtMs'>;
  /** Without a word from any peer for this long (or with the transport down) it acts on the local curves. */
  fallbackAfterMs: number;
  /** Picks the peer each push-sum message goes to. */
  random: () => number;
  /**
   * Act on the multipliers the peers announce in their hellos while fresh, and on push-sum estimates
   * only for peers not heard (default). Off, every peer's multiplier comes from push-sum: what the
   * agents did before the hellos carried multipliers, kept for `npm run bench:voltage-dynamics` to compare.
   */
  announcedMultipliers?: boolean;
  /** The multipliers saved before a restart; the push-sum then knows this gateway ran before. */
  restored?: { muOver: number; muUnder: number };
}

/** One of the gateway's inverters as its last readings say (absent values are unknown or stale). */
export interface InverterReading {
  id: string;
  ratedKVA: number;
  /** What its panels could give now, kW; an inverter without it is left alone. */
  availableKW?: number;
  /** Voltage at its terminals (its curves act on it), pu. */
  voltagePu?: number;
  /** Active power it delivers now, kW. */
  acPowerKW?: number;
  /** Reactive power it delivers now (positive = injecting), kVAr. */
  reactiveKVAr?: number;
}

export interface VoltageMeasurements {
  /** The voltage at the gateway's bus, pu; null when no fresh reading. */
  voltagePu: number | null;
  /** Whether the gateway's transport is connected. */
  connected: boolean;
  inverters: readonly InverterReading[];
}

/** A setpoint for one inverter: `limitPct` of its rating (100 = no limit) and reactive power. */
export interface InverterSetpoint {
  pKW: number;
  qKVAr: number;
  limitPct: number;
}

/** The body of a `gossip/hello`: who takes part, where, and its multiplier while on the distributed control. */
export interface HelloAnnouncement {
  bus: string;
  epoch: number;
  multiplier?: number;
}

/** The body of a `gossip/bus-limit`: a peer's bus beyond a limit, with its multiplier while on the distributed control. */
export interface BusLimitEvent {
  bus: string;
  voltagePu: number;
  limit: 'max' | 'min';
  limitPu: number;
  multiplier?: number;
}

/**
 * A peer's output changed at once at its bus (`gossip/inverter-trip`: `dPKW`, `dQKVAr` the output lost,
 * negative; `gossip/inverter-reconnect`: the output coming back), with its bus voltage before the change.
 */
export interface OutputChangeEvent {
  bus: string;
  voltagePu: number;
  dPKW: number;
  dQKVAr: number;
  multiplier?: number;
}

/** A change between the distributed control and the local curves, for the log. */
export type ModeSwitch =
  | { to: 'fallback'; connected: boolean; peers: number }
  | { to: 'dual'; peers: number; takeover?: { multiplier: number; pKW: number; qKVAr: number } };

export interface VoltageStepResult {
  /** Setpoints by inverter id, for the runtime to write. */
  setpoints: Map<string, InverterSetpoint>;
  /** The hello to broadcast to the cell after a secondary step of the `dual` method. */
  hello?: HelloAnnouncement;
  switched?: ModeSwitch;
  /** Primary steps: the inverters that tripped or reconnected since the last one (`InverterTripWatch`). */
  transitions?: InverterTransition[];
}

/** Status of the distributed control (`dual` only). */
export interface DualControlState {
  multiplier: number;
  muOver: number;
  muUnder: number;
  peers: number;
  multipliers: Record<string, number>;
  announcedPeers: number;
}

/**
 * One gateway's voltage control, without I/O: the runtime hands in measurements, the time and the
 * messages heard, and writes the setpoints and sends the hello and gossip it returns.
 * - `dual`: every secondary step, while connected and hearing a peer within `fallbackAfterMs`, the
 *   dual agent's multiplier moves with the bus voltage and the inverters get its best response to
 *   all multipliers (the peers' announced ones while fresh, push-sum estimates for the others), split
 *   over them (`splitSetpoint`). Else the inverters follow their local curves (the fallback) every
 *   primary step. On each switch to `dual` (at start, after a restart, after a fallback) it takes
 *   over bumplessly from what the inverters deliver. After each secondary step it announces itself,
 *   with its multiplier while on the distributed control.
 * - `volt-var`: the local IEEE 1547-2018 Category B curves every primary step.
 * - `monitor`: nothing.
 * Every primary step it also tells which inverters tripped or reconnected (`InverterTripWatch`): a
 * tripped one gets no setpoint and is left out of the gateway's capability until it produces again.
 */
export class VoltageController {
  readonly method: VoltageControlMethod;
  private readonly agent: DualVoltageAgent | undefined;
  private mode: 'dual' | 'fallback' = 'fallback';
  private lastHeardMs = Number.NEGATIVE_INFINITY;
  /** The setpoint each inverter holds: what was last written to it successfully (`applied`). */
  private readonly held = new Map<string, InverterSetpoint>();
  private readonly announced: boolean;
  private readonly trips = new InverterTripWatch();

  constructor(private readonly o: VoltageControllerOptions) {
    this.method = o.method;
    this.announced = o.announcedMultipliers ?? true;
    if (o.method === 'dual') {
      if (!o.dual)
        throw new P2PError(ErrorCode.config, 'the dual voltage control needs its agent options', {
          component: 'voltage-agent',
        });
      this.agent = new DualVoltageAgent({ ...o.dual, ...(o.restored ? { restartedAtMs: o.dual.epoch } : {}) });
      if (o.restored) this.agent.restore(o.restored);
    }
  }

  /** Identity on the wire (dual only). */
  get id(): string | undefined {
    return this.agent?.id;
  }

  get bus(): string | undefined {
    return this.agent?.bus;
  }

  /** The distributed control while peers are heard, the local curves otherwise (and always for `volt-var`). */
  get acting(): 'dual' | 'volt-var' | 'volt-var (fallback)' | 'none' {
    if (this.method === 'monitor') return 'none';
    if (this.method === 'volt-var') return 'volt-var';
    return this.mode === 'dual' ? 'dual' : 'volt-var (fallback)';
  }

  /** A hello from a peer: it is alive at `bus`, with its multiplier unless it is on its local curves. */
  heard(now: number, peer: string, bus: string, multiplier?: number): void {
    if (!this.agent || peer === this.agent.id) return; // its own hello, back from the broker
    this.agent.notePeer(peer, bus, now, this.announced ? multiplier : undefined);
    this.lastHeardMs = now;
  }

  /**
   * A peer's bus beyond a limit (its `bus-limit` event): on the distributed control, the multiplier of
   * that limit steps at once (`DualVoltageAgent.limitReported`) and the inverters get the best response
   * to the multipliers now, within the primary cycle, instead of at the next secondary step; the own
   * multiplier is left to the secondary step. Undefined when there is nothing to act on (not on the
   * distributed control, the bus unknown, the voltage within the limit, no inverter).
   */
  limitReported(
    now: number,
    peer: string,
    event: BusLimitEvent,
    m: Pick<VoltageMeasurements, 'inverters'>,
  ): { multiplier: number; setpoints: Map<string, InverterSetpoint> } | undefined {
    const agent = this.agent;
    if (!agent || peer === agent.id || this.mode !== 'dual') return undefined;
    const multiplier = agent.limitReported(now, peer, event, this.o.fallbackAfterMs);
    if (multiplier === undefined) return undefined;
    this.lastHeardMs = now;
    return { multiplier, setpoints: this.bestResponse(now, agent, m.inverters) };
  }

  /**
   * A peer's inverter tripped or reconnected (`OutputChangeEvent`): on the distributed control, that
   * peer's multiplier takes the step the predicted voltage at its bus calls for
   * (`DualVoltageAgent.outputChangeReported`) and the inverters get the best response now, within the
   * primary cycle. Undefined when there is nothing to act on (not on the distributed control, the bus
   * unknown, no multiplier in force and the predicted voltage within the band).
   */
  outputChangeReported(
    now: number,
    peer: string,
    event: OutputChangeEvent,
    m: Pick<VoltageMeasurements, 'inverters'>,
  ): { multiplier: number; predictedPu: number; setpoints: Map<string, InverterSetpoint> } | undefined {
    const agent = this.agent;
    if (!agent || peer === agent.id || this.mode !== 'dual') return undefined;
    const stepped = agent.outputChangeReported(now, peer, event, this.o.fallbackAfterMs);
    if (stepped === undefined) return undefined;
    this.lastHeardMs = now;
    return { ...stepped, setpoints: this.bestResponse(now, agent, m.inverters) };
  }

  /** Whether one of the gateway's inverters is tripped (out of service: no setpoint goes to it). */
  isTripped(inverter: string): boolean {
    return this.trips.isTripped(inverter);
  }

  /** A push-sum message from a peer; false when the gossip did not take it (stale, repeated). */
  receiveGossip(now: number, from: string, bus: string, message: Omit<SlottedMessage, 'from' | 'to'>): boolean {
    if (!this.agent) return false;
    this.agent.notePeer(from, bus, now);
    this.lastHeardMs = now;
    return this.agent.gossip.receive({ ...message, from, to: this.agent.id }, now);
  }

  /** One push-sum round: half of its mass to one random live peer (none without peers). */
  gossipRound(now: number): SlottedMessage | undefined {
    const agent = this.agent;
    if (!agent) return undefined;
    return agent.gossip.tick(agent.livePeers(now, this.o.fallbackAfterMs), this.o.random, now);
  }

  /** The runtime wrote this setpoint to the inverter: the curves go on from it, a takeover does not. */
  applied(inverter: string, setpoint: InverterSetpoint): void {
    this.held.set(inverter, setpoint);
  }

  /** The setpoint an inverter holds (last written), if any. */
  holding(inverter: string): InverterSetpoint | undefined {
    return this.held.get(inverter);
  }

  /** Every inverter's held setpoint, by inverter id. */
  heldSetpoints(): Record<string, InverterSetpoint> {
    return Object.fromEntries(this.held);
  }

  step(now: number, scale: ControlScale, m: VoltageMeasurements): VoltageStepResult {
    if (scale === 'primary') return this.primaryStep(now, m);
    if (!this.agent) return { setpoints: new Map() };
    return this.dualStep(now, this.agent, m);
  }

  /**
   * Every primary cycle: which inverters tripped or reconnected, then the local curves (`volt-var`,
   * or the fallback). On the distributed control, a trip or a reconnect gets the best response at
   * once, split over the inverters in service: a tripped one's share moves to the others.
   */
  private primaryStep(now: number, m: VoltageMeasurements): VoltageStepResult {
    const transitions = this.trips.observe(m.inverters, (id) => this.held.get(id)?.limitPct ?? 100);
    const changed = transitions.length > 0 ? { transitions } : {};
    if (this.acting.startsWith('volt-var')) return { setpoints: this.curves(m), ...changed };
    if (this.agent && this.mode === 'dual' && transitions.length > 0)
      return { setpoints: this.bestResponse(now, this.agent, m.inverters), ...changed };
    return { setpoints: new Map(), ...changed };
  }

  private dualStep(now: number, agent: DualVoltageAgent, m: VoltageMeasurements): VoltageStepResult {
    const timeoutMs = this.o.fallbackAfterMs;
    const peers = agent.livePeers(now, timeoutMs).length;
    const heard = now - this.lastHeardMs <= timeoutMs && peers > 0;
    const mode = m.connected && heard ? 'dual' : 'fallback';
    let switched: ModeSwitch | undefined;
    if (mode !== this.mode) {
      this.mode = mode;
      if (mode === 'fallback') switched = { to: 'fallback', connected: m.connected, peers };
      else {
        const takeover = this.takeOver(agent, m);
        switched = { to: 'dual', peers, ...(takeover ? { takeover } : {}) };
      }
    }
    const setpoints = mode === 'dual' ? this.controlStep(now, agent, m) : new Map<string, InverterSetpoint>();
    // After the step, so that the peers act on the multiplier it acts on itself.
    const hello: HelloAnnouncement = { bus: agent.bus, epoch: agent.gossip.epoch };
    if (mode === 'dual') hello.multiplier = agent.state().multiplier;
    return { setpoints, hello, ...(switched ? { switched } : {}) };
  }

  /** The multiplier of its bus from the measured voltage, then the inverters' best response to all multipliers. */
  private controlStep(now: number, agent: DualVoltageAgent, m: VoltageMeasurements): Map<string, InverterSetpoint> {
    if (m.voltagePu === null) return new Map();
    agent.updateMultiplier(m.voltagePu);
    return this.bestResponse(now, agent, m.inverters);
  }

  /** The inverters' best response to all multipliers, split over them. */
  private bestResponse(
    now: number,
    agent: DualVoltageAgent,
    readings: readonly InverterReading[],
  ): Map<string, InverterSetpoint> {
    // A gateway with only a meter watches its bus and gossips its multiplier; the others act on it.
    const inverters = this.inService(readings);
    if (inverters.length === 0) return new Map();
    const target = agent.setpoint(gatewayCapability(inverters), now, this.o.fallbackAfterMs);
    const shares = splitSetpoint(inverters, target);
    return new Map(inverters.map((inv, i) => [inv.id, shares[i]!]));
  }

  /** Starts the distributed control from what the gateway's inverters deliver now (bumpless transfer). */
  private takeOver(
    agent: DualVoltageAgent,
    m: VoltageMeasurements,
  ): { multiplier: number; pKW: number; qKVAr: number } | undefined {
    const inverters = this.inService(m.inverters);
    if (inverters.length === 0) return undefined;
    const delivered = { pKW: 0, qKVAr: 0 };
    for (const inv of inverters) {
      const output = deliveredBy(inv, inv.availableKW);
      delivered.pKW += output.pKW;
      delivered.qKVAr += output.qKVAr;
    }
    agent.takeOver(delivered, gatewayCapability(inverters));
    return { multiplier: agent.state().multiplier, ...delivered };
  }

  /** Each inverter one step towards the setpoint its curves give at its own voltage, from the one it holds. */
  private curves(m: VoltageMeasurements): Map<string, InverterSetpoint> {
    const out = new Map<string, InverterSetpoint>();
    for (const inv of m.inverters) {
      if (this.trips.isTripped(inv.id)) continue;
      if (inv.voltagePu === undefined || inv.availableKW === undefined || inv.ratedKVA <= 0) continue;
      const spec = categoryBInverter(inv.id, '', inv.ratedKVA, inv.availableKW);
      const last = this.held.get(inv.id) ?? deliveredBy(inv, spec.pAvailableKW);
      out.set(inv.id, followCurves(spec, inv.voltagePu, last));
    }
    return out;
  }

  /** The inverters the distributed control can act on (`controllable`) that have not tripped. */
  private inService(readings: readonly InverterReading[]): Controllable[] {
    return controllable(readings).filter((i) => !this.trips.isTripped(i.id));
  }

  /** The distributed control's state (`dual` only), with every multiplier it would use at `now`. */
  dualState(now: number): DualControlState | undefined {
    const agent = this.agent;
    if (!agent) return undefined;
    return {
      ...agent.state(),
      multipliers: Object.fromEntries(agent.multipliers(now, Number.POSITIVE_INFINITY)),
      announcedPeers: agent.announcedPeers(now),
    };
  }

  /** What must survive a restart: the multipliers, so the control does not start over from no curtailment. */
  persist(): { muOver: number; muUnder: number } | undefined {
    return this.agent?.persist();
  }
}

type Controllable = InverterReading & { availableKW: number };

/** The inverters the distributed control can act on: those with a rating and a fresh available power. */
function controllable(inverters: readonly InverterReading[]): Controllable[] {
  return inverters.filter((i): i is Controllable => i.availableKW !== undefined && i.ratedKVA > 0);
}

/**
 * What an inverter delivers now, as its last readings say: its active power (no more than the PV
 * available; curtailment below 1 % of the rating counts as none, it is within the readings' noise)
 * and its reactive power. A gateway that restarts, or takes over from another mode, starts from
 * there rather than from no action at all: the inverter keeps the setpoints it was last given.
 */
function deliveredBy(inv: InverterReading, availableKW: number): { pKW: number; qKVAr: number } {
  const possibleKW = Math.min(availableKW, inv.ratedKVA);
  const ac = inv.acPowerKW;
  const pKW = ac === undefined || possibleKW - ac < 0.01 * inv.ratedKVA ? possibleKW : Math.max(0, ac);
  return { pKW, qKVAr: inv.reactiveKVAr ?? 0 };
}
