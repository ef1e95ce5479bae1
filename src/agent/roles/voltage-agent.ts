import { z } from 'zod';
import { type Capability, DualVoltageAgent } from '../../control/voltage/dual-agent.js';
import { gatewayCapability, splitSetpoint } from '../../control/voltage/inverter-shares.js';
import { categoryBInverter, followCurves } from '../../control/voltage/volt-var.js';
import type { TimerHandle } from '../../core/clock.js';
import { ErrorCode, errorMessage, P2PError } from '../../core/errors.js';
import { seededRandom } from '../../core/prng.js';
import { loadDataFile } from '../../core/validate.js';
import type { Device } from '../../drivers/device.js';
import { Points } from '../../drivers/natures.js';
import { buildRadialFeeder, FeederSchema } from '../../grid/feeder.js';
import type { TimeScale } from '../scheduler.js';
import type { Role, RoleContext } from './role.js';

/** A push-sum message on the wire (class `gossip`, type `pushsum`, addressed to one peer). */
const PushSumBody = z
  .object({
    bus: z.string().min(1).max(64),
    epoch: z.number().finite(),
    toEpoch: z.number().finite().optional(),
    seq: z.number().int().positive(),
    slot: z.number().int().nonnegative(),
    s: z.record(z.string().max(64), z.number().finite()).refine((r) => Object.keys(r).length <= 1000, 'too many keys'),
    w: z.number().finite().nonnegative(),
  })
  .strict();
/**
 * Gossip rounds per push-sum slot by default. Messages alternate between two slots' instances, so each
 * gets half of them: about 3e-2 right after a slot starts, 1e-3 after a slot and a half (eight agents,
 * 10 % loss, test/unit/slotted-push-sum.test.ts).
 */
export const GOSSIP_SLOT_ROUNDS = 100;

/**
 * A voltage agent's presence, broadcast to the cell every secondary step so that agents find each
 * other (class `gossip`, type `hello`); `multiplier` only while it is on the distributed control.
 */
const HelloBody = z
  .object({ bus: z.string().min(1).max(64), epoch: z.number().finite(), multiplier: z.number().finite().optional() })
  .strict();

/** A peer's announced multiplier counts for this many of the agent's secondary cycles (two hellos may be lost). */
export const REPORT_FRESH_CYCLES = 3;

/**
 * Watches the voltage at the gateway's bus against the configured limits (how often and how long it
 * was out of bounds, the worst value seen) and acts on the gateway's inverters through their Inverter
 * capability:
 * - `dual`: the distributed control. Each secondary step it updates the multiplier of its bus's limits
 *   with the voltage it measured, sets its inverters to the best response to all agents'
 *   multipliers, and announces its own in its hello to the cell. It takes the others' from their
 *   hellos, and for a peer whose hellos it does not hear from push-sum gossip with the cell's other
 *   agents (a timer of `gossipMs`). While it hears no peer for `fallbackAfterMs`, or comms are down,
 *   it falls back to the local curves, and returns when peers are heard again.
 * - `volt-var`: the IEEE 1547-2018 Category B volt-var and volt-watt curves, filtered like an
 *   inverter's open-loop response (30 % of the step per cycle).
 */
export class VoltageAgentRole implements Role {
  readonly name = 'voltage-agent' as const;
  private voltagePu: number | null = null;
  private violations = 0;
  private violationMs = 0;
  private inViolationSince: number | undefined;
  private worstHighPu = 0;
  private worstLowPu = Number.POSITIVE_INFINITY;
  private readonly history: { ts: number; v: number }[] = [];
  private lastTickMs = 0;
  /** Setpoints applied per inverter device. */
  private readonly applied = new Map<string, { pKW: number; qKVAr: number; limitPct: number }>();
  private agent: DualVoltageAgent | undefined;
  private gossipTimer: TimerHandle | undefined;
  private random: () => number = Math.random;
  /** `dual` while peers are heard, `fallback` (local curves) otherwise. */
  private mode: 'dual' | 'fallback' = 'fallback';
  private lastHeardMs = Number.NEGATIVE_INFINITY;
  private gossipSent = 0;
  private gossipReceived = 0;
  private gossipRejected = 0;
  private restored: { muOver: number; muUnder: number } | undefined;

  start(ctx: RoleContext): void {
    const vc = ctx.config.voltageControl;
    if (vc.method !== 'dual') return;
    const file = vc.feederFile!;
    const feeder = buildRadialFeeder(loadDataFile(file, FeederSchema, ErrorCode.config), file);
    const bus = ctx.config.gateway.bus!;
    if (!feeder.order.includes(bus) || bus === feeder.slack) {
      throw new P2PError(ErrorCode.config, `gateway.bus: bus "${bus}" is not a load bus of the feeder in ${file}`, {
        component: 'voltage-agent',
        field: 'gateway.bus',
      });
    }
    const epoch = ctx.clock.now();
    this.random = seededRandom(epoch % 2 ** 31);
    this.agent = new DualVoltageAgent({
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
      ...(this.restored ? { restartedAtMs: epoch } : {}),
    });
    if (this.restored) this.agent.restore(this.restored);
    const cell = ctx.config.gateway.cell;
    ctx.transport?.subscribe({ cell, cls: 'gossip', type: 'hello' }, ({ topic, envelope }) => {
      const hello = HelloBody.safeParse(envelope.body);
      if (!hello.success || topic.sender === this.agent!.id) return;
      this.heardFrom(topic.sender, hello.data.bus, ctx, hello.data.multiplier);
    });
    ctx.transport?.subscribe({ cell, cls: 'gossip', type: 'pushsum', target: this.agent.id }, ({ topic, envelope }) => {
      const body = PushSumBody.safeParse(envelope.body);
      if (!body.success) {
        this.gossipRejected++;
        ctx.log.debug({ from: topic.sender, err: body.error.issues[0]?.message }, 'push-sum message rejected');
        return;
      }
      this.heardFrom(topic.sender, body.data.bus, ctx);
      const { bus: _bus, ...m } = body.data;
      if (this.agent!.gossip.receive({ ...m, from: topic.sender, to: this.agent!.id }, ctx.clock.now()))
        this.gossipReceived++;
    });
    this.armGossip(ctx);
  }

  stop(ctx: RoleContext): void {
    if (this.gossipTimer) ctx.clock.clearTimeout(this.gossipTimer);
    this.gossipTimer = undefined;
  }

  private heardFrom(peer: string, bus: string, ctx: RoleContext, multiplier?: number): void {
    const now = ctx.clock.now();
    this.agent!.notePeer(peer, bus, now, multiplier);
    this.lastHeardMs = now;
  }

  private armGossip(ctx: RoleContext): void {
    this.gossipTimer = ctx.clock.setTimeout(() => {
      this.gossipRound(ctx);
      if (this.gossipTimer) this.armGossip(ctx);
    }, ctx.config.voltageControl.gossipMs);
  }

  /** One push-sum round: half of its mass to one random live peer. */
  private gossipRound(ctx: RoleContext): void {
    const agent = this.agent;
    if (!agent || !ctx.transport) return;
    const peers = agent.livePeers(ctx.clock.now(), ctx.config.voltageControl.fallbackAfterMs);
    const m = agent.gossip.tick(peers, this.random, ctx.clock.now());
    if (!m) return;
    const { from: _from, to, ...rest } = m;
    this.gossipSent++;
    ctx.transport.publish('gossip', 'pushsum', { bus: agent.bus, ...rest }, { target: to }).catch((err) => {
      ctx.log.debug({ to, err: errorMessage(err) }, 'push-sum message not sent');
    });
  }

  async tick(scale: TimeScale, ctx: RoleContext): Promise<void> {
    const method = ctx.config.voltageControl.method;
    if (scale === 'primary') {
      this.watch(ctx);
      if (method === 'volt-var' || (method === 'dual' && this.mode === 'fallback')) await this.applyCurves(ctx);
    } else if (scale === 'secondary' && this.agent) {
      await this.dualStep(ctx, this.agent);
    }
  }

  /** One step of the distributed control, or the switch to / from the local fallback. */
  private async dualStep(ctx: RoleContext, agent: DualVoltageAgent): Promise<void> {
    const now = ctx.clock.now();
    const vc = ctx.config.voltageControl;
    const connected = ctx.transport?.status().connected ?? false;
    const heard = now - this.lastHeardMs <= vc.fallbackAfterMs && agent.livePeers(now, vc.fallbackAfterMs).length > 0;
    const mode = connected && heard ? 'dual' : 'fallback';
    if (mode !== this.mode) {
      if (mode === 'fallback')
        ctx.log.warn(
          { connected, peers: agent.livePeers(now, vc.fallbackAfterMs).length },
          'no peers heard: local volt-var / volt-watt',
        );
      else
        ctx.log.info(
          { peers: agent.livePeers(now, vc.fallbackAfterMs).length },
          'peers heard: distributed voltage control',
        );
      this.mode = mode;
      if (mode === 'dual') this.takeOver(ctx, agent);
    }
    try {
      if (mode === 'dual') await this.controlStep(ctx, agent);
    } finally {
      // After the step, so that the peers act on the multiplier it acts on itself.
      const hello = { bus: agent.bus, epoch: agent.gossip.epoch };
      ctx.transport
        ?.publish('gossip', 'hello', mode === 'dual' ? { ...hello, multiplier: agent.state().multiplier } : hello)
        .catch((err) => ctx.log.debug({ err: errorMessage(err) }, 'hello not sent'));
    }
  }

  /** Starts the distributed control from what the gateway's inverters deliver now (bumpless transfer). */
  private takeOver(ctx: RoleContext, agent: DualVoltageAgent): void {
    const capability = this.capability(ctx);
    if (!capability) return;
    const delivered = { pKW: 0, qKVAr: 0 };
    for (const inv of capability.inverters) {
      const output = this.delivered(ctx, inv.device, inv.availableKW);
      delivered.pKW += output.pKW;
      delivered.qKVAr += output.qKVAr;
    }
    agent.takeOver(delivered, capability.total);
    ctx.log.info(
      { multiplier: agent.state().multiplier, ...delivered },
      "distributed control took over from the inverters' present output",
    );
  }

  /**
   * What an inverter delivers now, as its last readings say: its active power (no more than the PV
   * available; curtailment below 1 % of the rating counts as none, it is within the readings' noise)
   * and its reactive power. A gateway that restarts, or takes over from another mode, starts from
   * there rather than from no action at all: the inverter keeps the setpoints it was last given.
   */
  private delivered(ctx: RoleContext, device: Device, availableKW: number): { pKW: number; qKVAr: number } {
    const image = ctx.image();
    const ratedKVA = device.inverter!.ratedW / 1000;
    const possibleKW = Math.min(availableKW, ratedKVA);
    const acW = image.number(`${device.id}.${Points.acPowerW}`);
    const pKW = acW === undefined || possibleKW - acW / 1000 < 0.01 * ratedKVA ? possibleKW : Math.max(0, acW / 1000);
    return { pKW, qKVAr: (image.number(`${device.id}.${Points.reactivePowerVAr}`) ?? 0) / 1000 };
  }

  /** The multiplier of this bus from its measured voltage, then the inverters' best response to all multipliers. */
  private async controlStep(ctx: RoleContext, agent: DualVoltageAgent): Promise<void> {
    const now = ctx.clock.now();
    const vc = ctx.config.voltageControl;
    const voltagePu = this.voltagePu;
    if (voltagePu === null) return;
    agent.updateMultiplier(voltagePu);
    // A gateway with only a meter watches its bus and gossips its multiplier; the others act on it.
    const capability = this.capability(ctx);
    if (!capability) return;
    const target = agent.setpoint(capability.total, now, vc.fallbackAfterMs);
    await this.applyShares(ctx, capability.inverters, target);
  }

  /** The gateway's inverters with what they can do now (available PV from the process image). */
  private capability(
    ctx: RoleContext,
  ): { inverters: { device: Device; availableKW: number; ratedKVA: number }[]; total: Capability } | undefined {
    const image = ctx.image();
    const inverters = (ctx.devices ?? []).flatMap((device) => {
      const availableW = image.number(`${device.id}.${Points.availablePowerW}`);
      if (!device.inverter || availableW === undefined || device.inverter.ratedW <= 0) return [];
      return [{ device, availableKW: availableW / 1000, ratedKVA: device.inverter.ratedW / 1000 }];
    });
    if (inverters.length === 0) return undefined;
    return { inverters, total: gatewayCapability(inverters) };
  }

  /** Writes the gateway's setpoint to its inverters (`splitSetpoint`). */
  private async applyShares(
    ctx: RoleContext,
    inverters: { device: Device; availableKW: number; ratedKVA: number }[],
    target: { pKW: number; qKVAr: number },
  ): Promise<void> {
    const shares = splitSetpoint(inverters, target);
    for (const [i, inv] of inverters.entries()) await this.write(ctx, inv.device, shares[i]!);
  }

  /** Writes what changed since the last write (a tenth of a percent, 5 VAr). */
  private async write(
    ctx: RoleContext,
    device: Device,
    next: { pKW: number; qKVAr: number; limitPct: number },
  ): Promise<void> {
    const control = device.inverter!;
    const last = this.applied.get(device.id);
    try {
      if (!last || Math.abs(next.limitPct - last.limitPct) > 0.1) await control.setActivePowerLimitPct(next.limitPct);
      if (!last || Math.abs(next.qKVAr - last.qKVAr) > 0.005) await control.setReactivePowerVAr(next.qKVAr * 1000);
      this.applied.set(device.id, next);
    } catch (err) {
      ctx.log.warn({ device: device.id, err: errorMessage(err) }, 'setpoint not written');
    }
  }

  /** Moves each controllable inverter towards the setpoint its curves give at its voltage. */
  private async applyCurves(ctx: RoleContext): Promise<void> {
    const image = ctx.image();
    for (const device of ctx.devices ?? []) {
      const control = device.inverter;
      const v = image.number(`${device.id}.${Points.voltagePu}`);
      const availableW = image.number(`${device.id}.${Points.availablePowerW}`);
      if (!control || v === undefined || availableW === undefined || control.ratedW <= 0) continue;
      const spec = categoryBInverter(device.id, '', control.ratedW / 1000, availableW / 1000);
      const last = this.applied.get(device.id) ?? this.delivered(ctx, device, spec.pAvailableKW);
      await this.write(ctx, device, followCurves(spec, v, last));
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
    const outside = v < min || v > max;
    if (outside && this.inViolationSince === undefined) {
      this.inViolationSince = now;
      this.violations++;
      ctx.log.warn({ voltagePu: v, min, max }, 'voltage outside limits');
    } else if (!outside && this.inViolationSince !== undefined) {
      this.violationMs += now - this.inViolationSince;
      this.inViolationSince = undefined;
      ctx.log.info({ voltagePu: v }, 'voltage back within limits');
    }
  }

  state(): Record<string, unknown> {
    return {
      voltagePu: this.voltagePu,
      violations: this.violations,
      violationSeconds: (this.violationMs + this.ongoingViolationMs()) / 1000,
      inViolation: this.inViolationSince !== undefined,
      worstHighPu: this.worstHighPu || null,
      worstLowPu: Number.isFinite(this.worstLowPu) ? this.worstLowPu : null,
      setpoints: Object.fromEntries(this.applied),
      history: this.history,
      method: this.agent ? (this.mode === 'dual' ? 'dual' : 'volt-var (fallback)') : undefined,
      ...(this.agent
        ? {
            dual: {
              ...this.agent.state(),
              multipliers: Object.fromEntries(this.agent.multipliers(this.lastTickMs, Number.POSITIVE_INFINITY)),
              announcedPeers: this.agent.announcedPeers(this.lastTickMs),
              gossipSent: this.gossipSent,
              gossipReceived: this.gossipReceived,
              gossipRejected: this.gossipRejected,
            },
          }
        : {}),
    };
  }

  private ongoingViolationMs(): number {
    return this.inViolationSince === undefined ? 0 : this.lastTickMs - this.inViolationSince;
  }

  persist(): unknown {
    return {
      violations: this.violations,
      violationMs: this.violationMs + this.ongoingViolationMs(),
      ...(this.agent ? { multipliers: this.agent.persist() } : {}),
    };
  }

  restore(saved: unknown): void {
    const s = saved as { violations?: unknown; violationMs?: unknown; multipliers?: unknown } | null;
    if (typeof s?.violations === 'number') this.violations = s.violations;
    if (typeof s?.violationMs === 'number') this.violationMs = s.violationMs;
    const m = s?.multipliers as { muOver?: unknown; muUnder?: unknown } | undefined;
    if (typeof m?.muOver === 'number' && typeof m.muUnder === 'number')
      this.restored = { muOver: m.muOver, muUnder: m.muUnder };
  }
}
