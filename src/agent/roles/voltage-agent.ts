import { curveSetpoint } from '../../control/voltage/volt-var.js';
import { errorMessage } from '../../core/errors.js';
import { Points } from '../../drivers/device.js';
import type { TimeScale } from '../scheduler.js';
import type { Role, RoleContext } from './role.js';

/**
 * Watches the voltage at the gateway's bus against the configured limits (how often and how long it
 * was out of bounds, the worst value seen) and, with `voltageControl.method: volt-var`, acts on the
 * gateway's inverters through their Inverter capability with the IEEE 1547-2018 Category B volt-var
 * and volt-watt curves, filtered like an inverter's open-loop response (30 % of the step per cycle).
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

  async tick(scale: TimeScale, ctx: RoleContext): Promise<void> {
    if (scale !== 'primary') return;
    this.watch(ctx);
    if (ctx.config.voltageControl.method === 'volt-var') await this.applyCurves(ctx);
  }

  /** Moves each controllable inverter towards the setpoint its curves give at its voltage. */
  private async applyCurves(ctx: RoleContext): Promise<void> {
    const image = ctx.image();
    for (const device of ctx.devices ?? []) {
      const control = device.inverter;
      const v = image.number(`${device.id}.${Points.voltagePu}`);
      const availableW = image.number(`${device.id}.${Points.availablePowerW}`);
      if (!control || v === undefined || availableW === undefined || control.ratedW <= 0) continue;
      const ratedKVA = control.ratedW / 1000;
      const spec = {
        id: device.id,
        bus: '',
        pAvailableKW: availableW / 1000,
        qMaxKVAr: 0.44 * ratedKVA,
        qWeight: 1,
        sRatedKVA: ratedKVA,
      };
      const [targetP, targetQ] = curveSetpoint(spec, v);
      const last = this.applied.get(device.id) ?? { pKW: spec.pAvailableKW, qKVAr: 0, limitPct: 100 };
      const pKW = last.pKW + 0.3 * (targetP - last.pKW);
      const qKVAr = last.qKVAr + 0.3 * (targetQ - last.qKVAr);
      // A limit only where the curve asks for less than is available; 100 % otherwise.
      const limitPct = targetP < spec.pAvailableKW - 1e-6 ? Math.min(100, (100 * pKW) / ratedKVA) : 100;
      try {
        if (Math.abs(limitPct - last.limitPct) > 0.1) await control.setActivePowerLimitPct(limitPct);
        if (Math.abs(qKVAr - last.qKVAr) > 0.005) await control.setReactivePowerVAr(qKVAr * 1000);
        this.applied.set(device.id, { pKW, qKVAr, limitPct });
      } catch (err) {
        ctx.log.warn({ device: device.id, err: errorMessage(err) }, 'setpoint not written');
      }
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
    };
  }

  private ongoingViolationMs(): number {
    return this.inViolationSince === undefined ? 0 : this.lastTickMs - this.inViolationSince;
  }

  persist(): unknown {
    return { violations: this.violations, violationMs: this.violationMs + this.ongoingViolationMs() };
  }

  restore(saved: unknown): void {
    const s = saved as { violations?: unknown; violationMs?: unknown } | null;
    if (typeof s?.violations === 'number') this.violations = s.violations;
    if (typeof s?.violationMs === 'number') this.violationMs = s.violationMs;
  }
}
