import { z } from 'zod';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { type CanBus, type CanFrame, DeferredCanBus, MockCanBus } from '../hal/can/can-bus.js';
import type { Device } from './device.js';
import { defineDriver } from './driver.js';
import type { PointData } from './natures.js';

/**
 * Pylontech / "SMA-compatible" LV battery CAN protocol (500 kbit/s, 11-bit ids, little-endian), the
 * BMS sending about once a second and the inverter side sending the keep-alive 0x305. Frame layouts
 * after diyBMSv4ESP32 `pylon_canbus.cpp` and Battery-Emulator `PYLON-LV-CAN.cpp`. Senders differ in
 * frame lengths (0x351 without the discharge voltage, 0x355 with an SMA high-resolution SOC), so the
 * decoder reads what a frame holds and leaves out the rest.
 */
export const PYLONTECH_IDS = {
  limits: 0x351,
  socSoh: 0x355,
  measurements: 0x356,
  alarms: 0x359,
  requests: 0x35c,
  manufacturer: 0x35e,
  keepAlive: 0x305,
} as const;

export interface BmsState {
  chargeVoltageLimitV?: number;
  chargeCurrentLimitA?: number;
  dischargeCurrentLimitA?: number;
  dischargeVoltageLimitV?: number;
  socPct?: number;
  sohPct?: number;
  voltageV?: number;
  /** Positive = charging (as most Pylontech-compatible BMSs send it). */
  currentA?: number;
  temperatureC?: number;
  protection?: string[];
  warnings?: string[];
  modules?: number;
  chargeEnabled?: boolean;
  dischargeEnabled?: boolean;
  forceCharge?: boolean;
  fullChargeRequest?: boolean;
  manufacturer?: string;
}

const ALARM_BITS_0: [number, string][] = [
  [1, 'overvoltage'],
  [2, 'undervoltage'],
  [3, 'overtemperature'],
  [4, 'undertemperature'],
  [7, 'discharge-overcurrent'],
];
const ALARM_BITS_1: [number, string][] = [
  [0, 'charge-overcurrent'],
  [3, 'internal-comms'],
  [7, 'bms-internal'],
];

function bits(byte: number | undefined, table: [number, string][]): string[] {
  if (byte === undefined) return [];
  return table.filter(([bit]) => (byte >> bit) & 1).map(([, name]) => name);
}

/**
 * Folds one frame into the state; frames of other ids are ignored, and so are extended (29-bit)
 * frames: the protocol's ids are 11-bit, a 29-bit 0x351 belongs to another device. Returns what it changed.
 */
export function decodePylontechFrame(frame: CanFrame): BmsState {
  if (frame.extended) return {};
  const d = frame.data;
  const u16 = (at: number) => (d.length >= at + 2 ? d.readUInt16LE(at) : undefined);
  const s16 = (at: number) => (d.length >= at + 2 ? d.readInt16LE(at) : undefined);
  const scaled = (v: number | undefined, f: number) => (v === undefined ? undefined : Number((v * f).toFixed(3)));
  const defined = (o: BmsState): BmsState =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as BmsState;
  switch (frame.id) {
    case PYLONTECH_IDS.limits:
      return defined({
        chargeVoltageLimitV: scaled(u16(0), 0.1),
        chargeCurrentLimitA: scaled(s16(2), 0.1),
        dischargeCurrentLimitA: scaled(s16(4) === undefined ? undefined : Math.abs(s16(4)!), 0.1),
        dischargeVoltageLimitV: scaled(u16(6), 0.1),
      });
    case PYLONTECH_IDS.socSoh:
      return defined({ socPct: u16(0), sohPct: u16(2) });
    case PYLONTECH_IDS.measurements:
      return defined({
        voltageV: scaled(s16(0), 0.01),
        currentA: scaled(s16(2), 0.1),
        temperatureC: scaled(s16(4), 0.1),
      });
    case PYLONTECH_IDS.alarms:
      return defined({
        protection: [...bits(d[0], ALARM_BITS_0), ...bits(d[1], ALARM_BITS_1)],
        warnings: [...bits(d[2], ALARM_BITS_0), ...bits(d[3], ALARM_BITS_1)],
        modules: d.length > 4 ? d[4] : undefined,
      });
    case PYLONTECH_IDS.requests: {
      const b = d[0];
      if (b === undefined) return {};
      return {
        chargeEnabled: ((b >> 7) & 1) === 1,
        dischargeEnabled: ((b >> 6) & 1) === 1,
        forceCharge: ((b >> 5) & 1) === 1 || ((b >> 4) & 1) === 1,
        fullChargeRequest: ((b >> 3) & 1) === 1,
      };
    }
    case PYLONTECH_IDS.manufacturer:
      return { manufacturer: d.toString('latin1').replace(/\0/g, '').trim() };
    default:
      return {};
  }
}

/**
 * A Pylontech-compatible battery as a gateway device (the Battery capability's points). It listens
 * to the BMS's frames and sends the keep-alive every second; a BMS silent for `staleAfterMs` makes
 * the poll fail, so stale values never reach a controller.
 */
export class PylontechBattery implements Device {
  readonly kind = 'pylontech-bms';
  readonly backend = 'can';
  private state: BmsState = {};
  private lastFrameMs: number | undefined;
  private readonly unlisten: () => void;
  private timer: TimerHandle | undefined;
  private readonly clock: Clock;

  constructor(
    readonly id: string,
    private readonly bus: CanBus,
    private readonly o: { staleAfterMs?: number; clock?: Clock } = {},
  ) {
    this.clock = o.clock ?? systemClock;
    this.unlisten = bus.onFrame((frame) => {
      const change = decodePylontechFrame(frame);
      if (Object.keys(change).length === 0) return;
      this.state = { ...this.state, ...change };
      this.lastFrameMs = this.clock.now();
    });
    this.keepAlive();
  }

  private keepAlive(): void {
    try {
      this.bus.send({ id: PYLONTECH_IDS.keepAlive, data: Buffer.alloc(8) });
    } catch {
      // the bus is closing
    }
    this.timer = this.clock.setTimeout(() => this.keepAlive(), 1000);
  }

  async poll(now: number): Promise<Record<string, PointData>> {
    const staleAfter = this.o.staleAfterMs ?? 3000;
    const failure = (this.bus as { failure?: P2PError }).failure;
    if (failure) throw failure;
    if (this.lastFrameMs === undefined || now - this.lastFrameMs > staleAfter) {
      throw new P2PError(
        ErrorCode.driver,
        `${this.id}: no frame from the BMS on ${this.bus.name} for ${staleAfter} ms`,
        {
          component: this.id,
          recoverable: true,
        },
      );
    }
    const s = this.state;
    const out: Record<string, PointData> = {};
    for (const [k, v] of Object.entries(s)) {
      if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
      else if (Array.isArray(v)) out[k] = v.join(',');
    }
    if (s.voltageV !== undefined && s.currentA !== undefined)
      out.batteryPowerW = Number((s.voltageV * s.currentA).toFixed(1));
    return out;
  }

  async close(): Promise<void> {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.unlisten();
    await this.bus.close();
  }
}

/** Driver `pylontech-can`: a Pylontech-compatible LV battery on CAN, `can0` (SocketCAN) or `mock:<name>` (the in-process bus). */
export const pylontechDriver = defineDriver({
  driver: 'pylontech-can',
  nature: 'battery',
  usages: ['battery'],
  defaultUsage: 'battery',
  fields: {
    interface: z
      .string()
      .regex(/^(mock:[A-Za-z0-9_-]+|[a-z][a-z0-9]{0,14})$/, 'expected an interface name (can0) or mock:<name>'),
    bus: z.string().min(1).optional(),
  },
  create: (d, ctx) => {
    const can = d.interface.startsWith('mock:')
      ? new MockCanBus(d.interface.slice(5))
      : new DeferredCanBus(d.interface);
    return new PylontechBattery(d.id, can, { clock: ctx.clock });
  },
});
