import { Points } from '../../drivers/device.js';
import type { TimeScale } from '../scheduler.js';
import type { MeterReadingBody } from './cell-readings.js';
import type { Role, RoleContext } from './role.js';

/**
 * The inverter gateway towards its microgrid: measures its connection point from the process image
 * and reports it to the MG trader every secondary cycle. (Offers and dispatch join with trading.)
 */
export class ProsumerRole implements Role {
  readonly name = 'prosumer' as const;
  private last: (MeterReadingBody & { ts: number }) | undefined;
  private published = 0;

  tick(scale: TimeScale, ctx: RoleContext): Promise<void> | undefined {
    if (scale !== 'secondary') return undefined;
    const reading = this.measure(ctx);
    if (!reading) return undefined;
    this.last = { ...reading, ts: ctx.clock.now() };
    if (!ctx.transport) return undefined;
    return ctx.transport.publish('meter', 'reading', reading).then(() => {
      this.published++;
    });
  }

  /** Net consumption from the devices' fresh values; undefined when no device has one. */
  private measure(ctx: RoleContext): MeterReadingBody | undefined {
    const image = ctx.image();
    let pvW = 0;
    let loadW = 0;
    let any = false;
    let voltagePu: number | null = null;
    for (const device of ctx.config.devices) {
      const power = image.number(`${device.id}.${Points.acPowerW}`);
      const v = image.number(`${device.id}.${Points.voltagePu}`);
      if (v !== undefined) voltagePu = v;
      if (power === undefined) continue;
      any = true;
      if (device.kind === 'pv-inverter') pvW += power;
      else loadW += power;
    }
    return any ? { netW: loadW - pvW, pvW, loadW, voltagePu } : undefined;
  }

  state(): Record<string, unknown> {
    return { lastReading: this.last ?? null, readingsPublished: this.published };
  }
}
