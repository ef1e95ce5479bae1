import { Points } from '../../drivers/device.js';
import type { TimeScale } from '../scheduler.js';
import type { Role, RoleContext } from './role.js';

/**
 * Watches the voltage at the gateway's bus against the configured limits: how often and how long it
 * was out of bounds and the worst value seen. (Setpoint control by gossip joins with the control work.)
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

  tick(scale: TimeScale, ctx: RoleContext): void {
    if (scale !== 'primary') return;
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
