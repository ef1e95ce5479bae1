import type { Clock, TimerHandle } from '../../core/clock.js';
import { PYLONTECH_IDS } from '../../drivers/pylontech-bms.js';
import type { CanBus } from '../../hal/can/can-bus.js';

/**
 * A simulated Pylontech-compatible BMS on a CAN bus: sends its frames every second with a state of
 * charge that follows the current, and, like real ones, stops when the inverter's keep-alive (0x305)
 * has not come for 3 s. `shortFrames` sends the variants some senders use (0x351 without the
 * discharge voltage, DLC 6).
 */
export class SimulatedPylontechBms {
  socPct: number;
  currentA = 0;
  private lastKeepAliveMs: number;
  private timer: TimerHandle | undefined;
  private readonly unlisten: () => void;
  framesSent = 0;

  constructor(
    private readonly bus: CanBus,
    private readonly clock: Clock,
    private readonly o: { capacityAh: number; socPct?: number; shortFrames?: boolean; voltageV?: number } = {
      capacityAh: 100,
    },
  ) {
    this.socPct = o.socPct ?? 60;
    this.lastKeepAliveMs = clock.now();
    this.unlisten = bus.onFrame((f) => {
      if (f.id === PYLONTECH_IDS.keepAlive) this.lastKeepAliveMs = this.clock.now();
    });
    this.schedule();
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      this.tick();
      this.schedule();
    }, 1000);
  }

  private tick(): void {
    this.socPct = Math.min(100, Math.max(0, this.socPct + (this.currentA / this.o.capacityAh) * (100 / 3600)));
    if (this.clock.now() - this.lastKeepAliveMs > 3000) return;
    const v = this.o.voltageV ?? 48 + 6 * (this.socPct / 100);
    const frame = (id: number, bytes: number[]) => {
      this.bus.send({ id, data: Buffer.from(bytes) });
      this.framesSent++;
    };
    const le16 = (x: number) => {
      const u = Math.round(x) & 0xffff;
      return [u & 0xff, u >> 8];
    };
    const limits = [...le16(568), ...le16(500), ...le16(500), ...le16(460)];
    frame(PYLONTECH_IDS.limits, this.o.shortFrames ? limits.slice(0, 6) : limits);
    frame(PYLONTECH_IDS.socSoh, [...le16(this.socPct), ...le16(98)]);
    frame(PYLONTECH_IDS.measurements, [...le16(v * 100), ...le16(this.currentA * 10), ...le16(251)]);
    frame(PYLONTECH_IDS.alarms, [0, 0, 0, 0, 2, 0x50, 0x4e]);
    frame(PYLONTECH_IDS.requests, [0b1100_0000, 0]);
    frame(PYLONTECH_IDS.manufacturer, [...Buffer.from('PYLON   ', 'latin1')]);
  }

  async close(): Promise<void> {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.unlisten();
    await this.bus.close();
  }
}
