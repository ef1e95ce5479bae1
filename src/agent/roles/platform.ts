import { errorMessage } from '../../core/errors.js';
import { Ledger } from '../../platform/ledger/ledger.js';
import { Membership } from '../../platform/membership.js';
import { Readings } from '../../platform/readings.js';
import type { TimeScale } from '../scheduler.js';
import { isMeterReading } from './cell-readings.js';
import type { Role, RoleContext } from './role.js';

interface MeterState {
  /** Energy taken since the start of the current metering interval, Wh (negative = fed in). */
  energyWh: number;
  lastMs: number;
  intervalEnd: number;
}

/**
 * The trading platform as a role of the runtime (on a transformer gateway or a server): it listens
 * to the `meter/reading` messages of its cells, integrates each member's net power into energy per
 * metering interval and stores it in the platform database, where measurement and verification and
 * settlement read it. Readings of senders that are not active members are counted and dropped.
 */
export class PlatformRole implements Role {
  readonly name = 'platform' as const;
  private ledger: Ledger | undefined;
  private readings: Readings | undefined;
  private members: Membership | undefined;
  private readonly meters = new Map<string, MeterState>();
  private stored = 0;
  private notMember = 0;
  private refused = 0;
  private lastError: string | undefined;

  start(ctx: RoleContext): void {
    const config = ctx.config.platform!;
    this.ledger = Ledger.open(config.db);
    this.members = new Membership(this.ledger.db, undefined, () => ctx.clock.now());
    this.readings = new Readings(this.ledger.db, this.members);
    const intervalMs = config.meteringIntervalS * 1000;
    for (const cell of config.cells) {
      ctx.transport?.subscribe({ cell, cls: 'meter', type: 'reading' }, ({ envelope }) => {
        if (!isMeterReading(envelope.body)) return;
        this.onReading(ctx, envelope.sender, envelope.body.netW, intervalMs);
      });
    }
  }

  private onReading(ctx: RoleContext, member: string, netW: number, intervalMs: number): void {
    const now = ctx.clock.now();
    if (this.members?.get(member)?.status !== 'active') {
      this.notMember++;
      return;
    }
    const nextEnd = (t: number) => Math.floor(t / intervalMs) * intervalMs + intervalMs;
    const m = this.meters.get(member) ?? { energyWh: 0, lastMs: now, intervalEnd: nextEnd(now) };
    // A gap longer than two intervals (the gateway was away) is not filled in.
    if (now - m.lastMs > 2 * intervalMs) {
      m.energyWh = 0;
      m.intervalEnd = nextEnd(now);
      m.lastMs = now;
    }
    while (now >= m.intervalEnd) {
      m.energyWh += (netW * (m.intervalEnd - m.lastMs)) / 3_600_000;
      this.store(ctx, member, m.intervalEnd, m.energyWh / 1000);
      m.lastMs = m.intervalEnd;
      m.energyWh = 0;
      m.intervalEnd += intervalMs;
    }
    m.energyWh += (netW * (now - m.lastMs)) / 3_600_000;
    m.lastMs = now;
    this.meters.set(member, m);
  }

  private store(ctx: RoleContext, member: string, endMs: number, energyKWh: number): void {
    try {
      this.readings!.add({
        readings: [
          { member, meter: 'net', time: new Date(endMs).toISOString(), energyKWh: Number(energyKWh.toFixed(6)) },
        ],
      });
      this.stored++;
    } catch (err) {
      this.refused++;
      const message = errorMessage(err);
      if (message !== this.lastError) ctx.log.warn({ member, err: message }, 'meter reading not stored');
      this.lastError = message;
    }
  }

  tick(_scale: TimeScale, _ctx: RoleContext): void {}

  stop(): void {
    this.ledger?.close();
    this.ledger = undefined;
  }

  state(): Record<string, unknown> {
    return {
      metersHeard: this.meters.size,
      readingsStored: this.stored,
      fromNonMembers: this.notMember,
      refused: this.refused,
    };
  }
}
