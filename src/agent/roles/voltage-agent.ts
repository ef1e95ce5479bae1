import { z } from 'zod';
import type { InverterTransition } from '../../control/voltage/inverter-trips.js';
import {
  type BusLimitEvent,
  type DualControlState,
  type InverterReading,
  type InverterSetpoint,
  type OutputChangeEvent,
  VoltageController,
  type VoltageStepResult,
} from '../../control/voltage/voltage-controller.js';
import type { TimerHandle } from '../../core/clock.js';
import { ErrorCode, errorMessage, P2PError } from '../../core/errors.js';
import { seededRandom } from '../../core/prng.js';
import { loadDataFile } from '../../core/validate.js';
import type { Device } from '../../drivers/device.js';
import { Points } from '../../drivers/natures.js';
import { buildRadialFeeder, FeederSchema } from '../../grid/feeder.js';
import type { TimeScale } from '../scheduler.js';
import type { Role, RoleContext } from './role.js';

/**
 * Gossip rounds per push-sum slot by default. Messages alternate between two slots' instances, so each
 * gets half of them: about 3e-2 right after a slot starts, 1e-3 after a slot and a half (eight agents,
 * 10 % loss, test/unit/slotted-push-sum.test.ts).
 */
export const GOSSIP_SLOT_ROUNDS = 100;

/** A peer's announced multiplier counts for this many of the agent's secondary cycles (two hellos may be lost). */
export const REPORT_FRESH_CYCLES = 3;

/** What the voltage agent shows on the status page (`/api/state`, `roles['voltage-agent']`). */
export type VoltageAgentState = {
  /** The voltage at the gateway's bus (the reading farthest from 1 pu), null without a fresh one. */
  voltagePu: number | null;
  violations: number;
  violationSeconds: number;
  inViolation: boolean;
  worstHighPu: number | null;
  worstLowPu: number | null;
  /** The setpoint each inverter was last given. */
  setpoints: Record<string, InverterSetpoint>;
  history: { ts: number; v: number }[];
  /** The gateway's bus on its feeder (`gateway.bus`), null where none is configured. */
  bus: string | null;
  /** The limits the voltage is held within (`voltageLimitsPu`). */
  limitsPu: { min: number; max: number };
  /** `dual` only: the feeder's buses in order from the transformer (`slack` first, parents before children). */
  feederBuses?: string[];
  /** `dual` only: the distributed control, or the local curves while it falls back. */
  method?: 'dual' | 'volt-var (fallback)';
  dual?: DualControlState & { gossipSent: number; gossipReceived: number };
};

/** What the voltage agent saves (`gateway-state.json`, `roles['voltage-agent']`), checked when read back. */
export const VoltageAgentSavedSchema = z.object({
  violations: z.number().int().nonnegative(),
  violationMs: z.number().finite().nonnegative(),
  multipliers: z
    .object({ muOver: z.number().finite().nonnegative(), muUnder: z.number().finite().nonnegative() })
    .strict()
    .optional(),
});
export type VoltageAgentSaved = z.infer<typeof VoltageAgentSavedSchema>;

/**
 * Watches the voltage at the gateway's bus against the configured limits (how often and how long it
 * was out of bounds, the worst value seen) and runs the gateway's `VoltageController` (the mode
 * logic, `src/control/voltage/voltage-controller.ts`): hands it the measurements every primary and
 * secondary cycle, writes the setpoints it returns through the inverters' Inverter capability,
 * broadcasts its hello, gossips on a timer of `gossipMs` and hands it what peers send.
 * - `dual`: the distributed control, falling back to the local curves while no peer is heard for
 *   `fallbackAfterMs` or comms are down.
 * - `volt-var`: the IEEE 1547-2018 Category B volt-var and volt-watt curves, filtered like an
 *   inverter's open-loop response (30 % of the step per cycle).
 * The primary time scale's events go to the cell at once, at the sidelink's most urgent priority:
 * its bus going beyond a limit (`gossip/bus-limit`) and one of its inverters tripping or reconnecting
 * (`gossip/inverter-trip`, `-reconnect`); a peer's are acted on when they arrive (docs/control.md,
 * "Fast events").
 */
export class VoltageAgentRole implements Role {
  readonly name = 'voltage-agent' as const;
  private voltagePu: number | null = null;
  private violations = 0;
  private violationMs = 0;
  private inViolationSince: number | undefined;
  /** The value farthest from 1 pu in the violation going on now. */
  private episodeWorstPu: number | undefined;
  private worstHighPu = 0;
  private worstLowPu = Number.POSITIVE_INFINITY;
  private readonly history: { ts: number; v: number }[] = [];
  private lastTickMs = 0;
  private controller: VoltageController | undefined;
  private gossipTimer: TimerHandle | undefined;
  private gossipSent = 0;
  private gossipReceived = 0;
  private restored: VoltageAgentSaved['multipliers'];
  private bus: string | null = null;
  private limitsPu = { min: 0.95, max: 1.05 };
  private feederBuses: string[] | undefined;
  /** Why the saved state was not taken (logged at start, when the role has its logger). */
  private restoreProblem: string | undefined;

  start(ctx: RoleContext): void {
    if (this.restoreProblem !== undefined)
      ctx.log.warn(
        { err: this.restoreProblem },
        'saved voltage-agent state ignored: it is not what this version saves',
      );
    const vc = ctx.config.voltageControl;
    this.bus = ctx.config.gateway.bus ?? null;
    this.limitsPu = ctx.config.voltageLimitsPu;
    const epoch = ctx.clock.now();
    if (vc.method !== 'dual') {
      this.controller = new VoltageController({
        method: vc.method,
        fallbackAfterMs: vc.fallbackAfterMs,
        random: Math.random,
      });
      return;
    }
    const file = vc.feederFile!;
    const feeder = buildRadialFeeder(loadDataFile(file, FeederSchema, ErrorCode.config), file);
    const bus = ctx.config.gateway.bus!;
    if (!feeder.order.includes(bus) || bus === feeder.slack) {
      throw new P2PError(ErrorCode.config, `gateway.bus: bus "${bus}" is not a load bus of the feeder in ${file}`, {
        component: 'voltage-agent',
        field: 'gateway.bus',
      });
    }
    this.feederBuses = feeder.order;
    const controller = new VoltageController({
      method: 'dual',
      dual: {
        id: ctx.config.gateway.id,
        bus,
        feeder,
        vMinPu: ctx.config.voltageLimitsPu.min,
        vMaxPu: ctx.config.voltageLimitsPu.max,
        marginPu: vc.marginPu,
        qWeight: vc.qWeight,
        epoch,
        gossipSlotMs: vc.gossipSlotMs ?? GOSSIP_SLOT_ROUNDS * vc.gossipMs,
        reportFreshMs: REPORT_FRESH_CYCLES * ctx.config.scheduler.secondaryMs,
        ascent: vc.ascent,
      },
      fallbackAfterMs: vc.fallbackAfterMs,
      random: seededRandom(epoch % 2 ** 31),
      ...(this.restored ? { restored: this.restored } : {}),
    });
    this.controller = controller;
    const id = ctx.config.gateway.id;
    const cell = ctx.config.gateway.cell;
    // Bodies are checked against the message catalogue (src/comms/messages/gossip.ts) by the transport.
    ctx.transport?.on({ cell, cls: 'gossip', type: 'hello' }, ({ topic, envelope }) => {
      if (topic.sender === id) return;
      controller.heard(ctx.clock.now(), topic.sender, envelope.body.bus, envelope.body.multiplier);
    });
    ctx.transport?.on({ cell, cls: 'gossip', type: 'pushsum', target: id }, ({ topic, envelope }) => {
      const { bus: peerBus, ...m } = envelope.body;
      if (controller.receiveGossip(ctx.clock.now(), topic.sender, peerBus, m)) this.gossipReceived++;
    });
    ctx.transport?.on({ cell, cls: 'gossip', type: 'bus-limit' }, async ({ topic, envelope }) => {
      if (topic.sender === id) return;
      await this.actOnBusLimit(ctx, controller, topic.sender, envelope.body);
    });
    for (const type of ['inverter-trip', 'inverter-reconnect'] as const)
      ctx.transport?.on({ cell, cls: 'gossip', type }, async ({ topic, envelope }) => {
        if (topic.sender === id) return;
        const { inverter, pW, qVAr, ...rest } = envelope.body;
        const sign = type === 'inverter-trip' ? -1 : 1;
        const event = { ...rest, dPKW: (sign * pW) / 1000, dQKVAr: (sign * qVAr) / 1000 };
        await this.actOnOutputChange(ctx, controller, topic.sender, type, inverter, event);
      });
    this.armGossip(ctx, controller);
  }

  /**
   * A peer's bus beyond a limit, heard between cycles: the multiplier of that limit steps and the
   * inverters get their new setpoints now, not at the next secondary step (docs/control.md, "Fast
   * events"). Logged with the peer and the setpoints, the time the action took effect.
   */
  private async actOnBusLimit(
    ctx: RoleContext,
    controller: VoltageController,
    peer: string,
    event: BusLimitEvent,
  ): Promise<void> {
    const acted = controller.limitReported(ctx.clock.now(), peer, event, { inverters: this.readings(ctx) });
    if (!acted) return;
    await this.writeAll(ctx, controller, acted.setpoints);
    ctx.log.info(
      {
        peer,
        bus: event.bus,
        voltagePu: event.voltagePu,
        limit: event.limit,
        multiplier: acted.multiplier,
        setpoints: Object.fromEntries(acted.setpoints),
      },
      "acted on a peer's bus-limit",
    );
  }

  /**
   * A peer's inverter tripped or reconnected, heard between cycles: the peer's multiplier steps as the
   * voltage predicted at its bus calls for, and the inverters get their new setpoints now
   * (docs/control.md, "Fast events"). Logged like a bus-limit, once the setpoints are written.
   */
  private async actOnOutputChange(
    ctx: RoleContext,
    controller: VoltageController,
    peer: string,
    type: 'inverter-trip' | 'inverter-reconnect',
    inverter: string,
    event: OutputChangeEvent,
  ): Promise<void> {
    const acted = controller.outputChangeReported(ctx.clock.now(), peer, event, { inverters: this.readings(ctx) });
    if (!acted) {
      ctx.log.debug({ peer, inverter, bus: event.bus }, `nothing to act on in a peer's ${type}`);
      return;
    }
    await this.writeAll(ctx, controller, acted.setpoints);
    ctx.log.info(
      {
        peer,
        bus: event.bus,
        inverter,
        voltagePu: event.voltagePu,
        predictedPu: acted.predictedPu,
        multiplier: acted.multiplier,
        setpoints: Object.fromEntries(acted.setpoints),
      },
      `acted on a peer's ${type}`,
    );
  }

  /**
   * One of the gateway's inverters tripped or reconnected this primary cycle: its cell is told at once
   * (`gossip/inverter-trip` / `inverter-reconnect`, the most urgent sidelink priority), once per
   * transition, with the bus voltage of the cycle before (`voltageBeforePu`: the change itself is not
   * in it, the neighbours add it from the sensitivities). The sidelink sends each datagram twice; a
   * lost event is made good by this gateway's next hello, which carries the multiplier its own
   * secondary step gives with the voltage it then measures.
   */
  private tellTransition(ctx: RoleContext, t: InverterTransition, voltageBeforePu: number | null): void {
    const trip = t.to === 'tripped';
    const logged = { inverter: t.inverter, pKW: t.pKW, qKVAr: t.qKVAr, voltageBeforePu };
    if (trip) ctx.log.warn(logged, 'inverter tripped: out of service');
    else ctx.log.info(logged, 'inverter reconnected: in service');
    const bus = ctx.config.gateway.bus;
    if (!ctx.transport || bus === undefined || voltageBeforePu === null) return;
    const c = this.controller;
    const multiplier = c?.acting === 'dual' ? c.dualState(ctx.clock.now())?.multiplier : undefined;
    const type = trip ? 'inverter-trip' : 'inverter-reconnect';
    ctx.transport
      .publish('gossip', type, {
        inverter: t.inverter,
        bus,
        pW: Math.max(0, t.pKW * 1000),
        qVAr: t.qKVAr * 1000,
        voltagePu: voltageBeforePu,
        ...(multiplier !== undefined ? { multiplier } : {}),
      })
      .catch((err) => ctx.log.debug({ err: errorMessage(err) }, `${type} not sent`));
  }

  /**
   * The bus has just gone beyond a limit: its cell is told at once (`gossip/bus-limit`, the most
   * urgent sidelink priority), so that the neighbours act within this primary cycle.
   */
  private tellBusLimit(ctx: RoleContext, voltagePu: number, limit: 'max' | 'min', limitPu: number): void {
    const bus = ctx.config.gateway.bus;
    if (!ctx.transport || bus === undefined) return;
    const c = this.controller;
    const multiplier = c?.acting === 'dual' ? c.dualState(ctx.clock.now())?.multiplier : undefined;
    ctx.transport
      .publish('gossip', 'bus-limit', {
        bus,
        voltagePu,
        limit,
        limitPu,
        ...(multiplier !== undefined ? { multiplier } : {}),
      })
      .catch((err) => ctx.log.debug({ err: errorMessage(err) }, 'bus-limit not sent'));
  }

  stop(ctx: RoleContext): void {
    if (this.gossipTimer) ctx.clock.clearTimeout(this.gossipTimer);
    this.gossipTimer = undefined;
  }

  private armGossip(ctx: RoleContext, controller: VoltageController): void {
    this.gossipTimer = ctx.clock.setTimeout(() => {
      this.gossipRound(ctx, controller);
      if (this.gossipTimer) this.armGossip(ctx, controller);
    }, ctx.config.voltageControl.gossipMs);
  }

  /** One push-sum round: half of its mass to one random live peer. */
  private gossipRound(ctx: RoleContext, controller: VoltageController): void {
    if (!ctx.transport) return;
    const m = controller.gossipRound(ctx.clock.now());
    const bus = controller.bus;
    if (!m || bus === undefined) return;
    const { from: _from, to, ...rest } = m;
    this.gossipSent++;
    ctx.transport.publish('gossip', 'pushsum', { bus, ...rest }, { target: to }).catch((err) => {
      ctx.log.debug({ to, err: errorMessage(err) }, 'push-sum message not sent');
    });
  }

  async tick(scale: TimeScale, ctx: RoleContext): Promise<void> {
    const voltageBeforePu = this.voltagePu;
    if (scale === 'primary') this.watch(ctx);
    const controller = this.controller;
    if (!controller || (scale !== 'primary' && scale !== 'secondary')) return;
    const result = controller.step(ctx.clock.now(), scale, {
      voltagePu: this.voltagePu,
      connected: ctx.transport?.status().connected ?? false,
      inverters: this.readings(ctx),
    });
    this.logSwitch(ctx, result);
    for (const t of result.transitions ?? []) this.tellTransition(ctx, t, voltageBeforePu ?? this.voltagePu);
    try {
      await this.writeAll(ctx, controller, result.setpoints);
    } finally {
      if (result.hello)
        ctx.transport
          ?.publish('gossip', 'hello', result.hello)
          .catch((err) => ctx.log.debug({ err: errorMessage(err) }, 'hello not sent'));
    }
  }

  private logSwitch(ctx: RoleContext, { switched }: VoltageStepResult): void {
    if (!switched) return;
    if (switched.to === 'fallback')
      ctx.log.warn(
        { connected: switched.connected, peers: switched.peers },
        'no peers heard: local volt-var / volt-watt',
      );
    else {
      ctx.log.info({ peers: switched.peers }, 'peers heard: distributed voltage control');
      if (switched.takeover)
        ctx.log.info(switched.takeover, "distributed control took over from the inverters' present output");
    }
  }

  /** The gateway's inverters as the process image has them (a stale value reads as absent). */
  private readings(ctx: RoleContext): InverterReading[] {
    const image = ctx.image();
    return (ctx.devices ?? []).flatMap((device) => {
      if (!device.inverter || device.inverter.ratedW <= 0) return [];
      const kW = (point: string) => {
        const w = image.number(`${device.id}.${point}`);
        return w === undefined ? undefined : w / 1000;
      };
      const reading: InverterReading = { id: device.id, ratedKVA: device.inverter.ratedW / 1000 };
      const availableKW = kW(Points.availablePowerW);
      const voltagePu = image.number(`${device.id}.${Points.voltagePu}`);
      const acPowerKW = kW(Points.acPowerW);
      const reactiveKVAr = kW(Points.reactivePowerVAr);
      if (availableKW !== undefined) reading.availableKW = availableKW;
      if (voltagePu !== undefined) reading.voltagePu = voltagePu;
      if (acPowerKW !== undefined) reading.acPowerKW = acPowerKW;
      if (reactiveKVAr !== undefined) reading.reactiveKVAr = reactiveKVAr;
      return [reading];
    });
  }

  /** Writes each setpoint to its device (none goes to a tripped inverter: the controller leaves them out). */
  private async writeAll(
    ctx: RoleContext,
    controller: VoltageController,
    setpoints: ReadonlyMap<string, InverterSetpoint>,
  ): Promise<void> {
    for (const [deviceId, setpoint] of setpoints) {
      const device = ctx.devices?.find((d) => d.id === deviceId);
      if (device && !controller.isTripped(deviceId)) await this.write(ctx, controller, device, setpoint);
    }
  }

  /** Writes what changed since the last write (a tenth of a percent, 5 VAr). */
  private async write(
    ctx: RoleContext,
    controller: VoltageController,
    device: Device,
    next: InverterSetpoint,
  ): Promise<void> {
    const control = device.inverter!;
    const last = controller.holding(device.id);
    try {
      if (!last || Math.abs(next.limitPct - last.limitPct) > 0.1) await control.setActivePowerLimitPct(next.limitPct);
      if (!last || Math.abs(next.qKVAr - last.qKVAr) > 0.005) await control.setReactivePowerVAr(next.qKVAr * 1000);
      controller.applied(device.id, next);
    } catch (err) {
      ctx.log.warn({ device: device.id, err: errorMessage(err) }, 'setpoint not written');
    }
  }

  private watch(ctx: RoleContext): void {
    const now = ctx.clock.now();
    this.lastTickMs = now;
    const image = ctx.image();
    const readings = ctx.config.devices
      .map((d) => image.number(`${d.id}.${Points.voltagePu}`))
      .filter((v): v is number => v !== undefined);
    if (readings.length === 0) {
      this.voltagePu = null;
      return;
    }
    const v = readings.reduce((a, b) => (Math.abs(b - 1) > Math.abs(a - 1) ? b : a));
    this.voltagePu = v;
    this.worstHighPu = Math.max(this.worstHighPu, v);
    this.worstLowPu = Math.min(this.worstLowPu, v);
    ctx.metrics.voltagePu.set({ bus: ctx.config.gateway.bus ?? ctx.config.gateway.id }, v);
    this.history.push({ ts: now, v });
    if (this.history.length > 300) this.history.shift();

    const { min, max } = ctx.config.voltageLimitsPu;
    ctx.metrics.voltageLimitPu.set({ limit: 'min' }, min);
    ctx.metrics.voltageLimitPu.set({ limit: 'max' }, max);
    const outside = v < min || v > max;
    if (outside && this.inViolationSince === undefined) {
      this.inViolationSince = now;
      this.episodeWorstPu = v;
      this.violations++;
      ctx.log.warn({ voltagePu: v, min, max }, 'voltage outside limits');
      if (v > max) this.tellBusLimit(ctx, v, 'max', max);
      else this.tellBusLimit(ctx, v, 'min', min);
    } else if (!outside && this.inViolationSince !== undefined) {
      this.violationMs += now - this.inViolationSince;
      this.inViolationSince = undefined;
      ctx.log.info({ voltagePu: v }, 'voltage back within limits');
    }
    this.alarmVoltage(ctx, v, now);
  }

  /**
   * `voltage-high:<bus>` / `voltage-low:<bus>` while the bus is outside the limits, naming the value
   * now and the worst of the episode; cleared when it is back within them.
   */
  private alarmVoltage(ctx: RoleContext, v: number, now: number): void {
    const alarms = ctx.alarms;
    if (!alarms) return;
    const { min, max } = ctx.config.voltageLimitsPu;
    const bus = ctx.config.gateway.bus ?? ctx.config.gateway.id;
    if (this.inViolationSince !== undefined) {
      const worst = this.episodeWorstPu ?? v;
      this.episodeWorstPu = Math.abs(v - 1) > Math.abs(worst - 1) ? v : worst;
    }
    for (const side of ['high', 'low'] as const) {
      const id = `voltage-${side}:${bus}`;
      const beyond = side === 'high' ? v > max : v < min;
      if (!beyond) {
        alarms.clear(id, now);
        continue;
      }
      const limit = side === 'high' ? `above ${max} pu` : `below ${min} pu`;
      alarms.raise(
        id,
        {
          kind: 'voltage-violation',
          severity: 'critical',
          source: bus,
          text: `bus ${bus} at ${v.toFixed(3)} pu, ${limit} (worst ${(this.episodeWorstPu ?? v).toFixed(3)} pu since it began)`,
        },
        now,
      );
    }
  }

  state(): VoltageAgentState {
    const c = this.controller;
    const dual = c?.dualState(this.lastTickMs);
    return {
      voltagePu: this.voltagePu,
      violations: this.violations,
      violationSeconds: (this.violationMs + this.ongoingViolationMs()) / 1000,
      inViolation: this.inViolationSince !== undefined,
      worstHighPu: this.worstHighPu || null,
      worstLowPu: Number.isFinite(this.worstLowPu) ? this.worstLowPu : null,
      setpoints: c?.heldSetpoints() ?? {},
      history: this.history,
      bus: this.bus,
      limitsPu: this.limitsPu,
      ...(this.feederBuses ? { feederBuses: this.feederBuses } : {}),
      ...(dual
        ? {
            method: c?.acting === 'dual' ? 'dual' : 'volt-var (fallback)',
            dual: {
              ...dual,
              gossipSent: this.gossipSent,
              gossipReceived: this.gossipReceived,
            },
          }
        : {}),
    };
  }

  private ongoingViolationMs(): number {
    return this.inViolationSince === undefined ? 0 : this.lastTickMs - this.inViolationSince;
  }

  persist(): VoltageAgentSaved {
    const multipliers = this.controller?.persist();
    return {
      violations: this.violations,
      violationMs: this.violationMs + this.ongoingViolationMs(),
      ...(multipliers ? { multipliers } : {}),
    };
  }

  /** Takes back what `persist` saved; anything else is ignored (and logged at start), never a crash. */
  restore(saved: unknown): void {
    const parsed = VoltageAgentSavedSchema.safeParse(saved);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      this.restoreProblem = `${issue?.path.join('.') || '(top)'}: ${issue?.message ?? 'invalid'}`;
      return;
    }
    this.restoreProblem = undefined;
    this.violations = parsed.data.violations;
    this.violationMs = parsed.data.violationMs;
    this.restored = parsed.data.multipliers;
  }
}
