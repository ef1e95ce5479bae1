import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/core/clock.js';
import { ErrorCode } from '../../src/core/errors.js';
import {
  type BmsState,
  decodePylontechFrame,
  PYLONTECH_IDS,
  PylontechBattery,
} from '../../src/drivers/pylontech-bms.js';
import { type CanFrame, MockCanBus } from '../../src/hal/can/can-bus.js';
import { fuzz, outcome } from '../helpers/fuzz.js';

/**
 * Fuzzing of the CAN side (docs/fuzzing.md): the Pylontech BMS decoder with arbitrary ids and
 * payloads of 0..8 bytes (and more, as CAN FD or a broken driver may hand over), frames encoded the
 * way BMSs send them decoded back, and the battery device fed arbitrary frame sequences.
 */

const BMS_KEYS = new Set<keyof BmsState>([
  'chargeVoltageLimitV',
  'chargeCurrentLimitA',
  'dischargeCurrentLimitA',
  'dischargeVoltageLimitV',
  'socPct',
  'sohPct',
  'voltageV',
  'currentA',
  'temperatureC',
  'protection',
  'warnings',
  'modules',
  'chargeEnabled',
  'dischargeEnabled',
  'forceCharge',
  'fullChargeRequest',
  'manufacturer',
]);
const pylonIds = Object.values(PYLONTECH_IDS);

const frame: fc.Arbitrary<CanFrame> = fc.record(
  {
    id: fc.oneof(
      fc.constantFrom(...pylonIds),
      fc.integer({ min: 0, max: 0x7ff }),
      fc.integer({ min: 0, max: 0x1fffffff }),
    ),
    data: fc
      .oneof(
        { weight: 9, arbitrary: fc.uint8Array({ maxLength: 8 }) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 9, maxLength: 64 }) },
      )
      .map((a) => Buffer.from(a)),
    extended: fc.boolean(),
  },
  { requiredKeys: ['id', 'data'] },
);

function checkState(s: BmsState): void {
  for (const [k, v] of Object.entries(s)) {
    expect(BMS_KEYS.has(k as keyof BmsState)).toBe(true);
    if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);
    else if (Array.isArray(v)) for (const x of v) expect(typeof x).toBe('string');
    else expect(['boolean', 'string']).toContain(typeof v);
  }
}

const le16 = (x: number) => [x & 0xff, (x >> 8) & 0xff];

describe('fuzz: Pylontech BMS frames (src/drivers/pylontech-bms.ts)', () => {
  it('any id, any payload: a partial state of known points with finite numbers, never a throw', () => {
    fc.assert(
      fc.property(frame, (f) => {
        const r = outcome(() => decodePylontechFrame(f));
        if (!r.ok) return;
        checkState(r.value);
        if (!pylonIds.includes(f.id as never)) expect(r.value).toEqual({});
      }),
      fuzz(),
    );
  });

  it('an extended (29-bit) frame is never read as a Pylontech frame (their ids are 11-bit)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...pylonIds), fc.uint8Array({ minLength: 8, maxLength: 8 }), (id, bytes) => {
        expect(decodePylontechFrame({ id, data: Buffer.from(bytes), extended: true })).toEqual({});
      }),
      fuzz(0.1),
    );
  });

  it('encode → decode: limits, SOC/SOH, measurements and requests come back as sent', () => {
    fc.assert(
      fc.property(
        fc.record({
          chargeV: fc.integer({ min: 0, max: 0xffff }),
          chargeA: fc.integer({ min: -0x8000, max: 0x7fff }),
          dischargeA: fc.integer({ min: -0x7fff, max: 0x7fff }),
          dischargeV: fc.integer({ min: 0, max: 0xffff }),
          soc: fc.integer({ min: 0, max: 100 }),
          soh: fc.integer({ min: 0, max: 100 }),
          volts: fc.integer({ min: -0x8000, max: 0x7fff }),
          amps: fc.integer({ min: -0x8000, max: 0x7fff }),
          temp: fc.integer({ min: -0x8000, max: 0x7fff }),
          request: fc.integer({ min: 0, max: 0xff }),
          short: fc.boolean(),
        }),
        (v) => {
          const tenth = (x: number) => Number((x * 0.1).toFixed(3));
          const limits = [...le16(v.chargeV), ...le16(v.chargeA), ...le16(v.dischargeA), ...le16(v.dischargeV)];
          expect(
            decodePylontechFrame({
              id: PYLONTECH_IDS.limits,
              data: Buffer.from(v.short ? limits.slice(0, 6) : limits),
            }),
          ).toEqual({
            chargeVoltageLimitV: tenth(v.chargeV),
            chargeCurrentLimitA: tenth(v.chargeA),
            dischargeCurrentLimitA: tenth(Math.abs(v.dischargeA)),
            ...(v.short ? {} : { dischargeVoltageLimitV: tenth(v.dischargeV) }),
          });
          expect(
            decodePylontechFrame({ id: PYLONTECH_IDS.socSoh, data: Buffer.from([...le16(v.soc), ...le16(v.soh)]) }),
          ).toEqual({ socPct: v.soc, sohPct: v.soh });
          expect(
            decodePylontechFrame({
              id: PYLONTECH_IDS.measurements,
              data: Buffer.from([...le16(v.volts), ...le16(v.amps), ...le16(v.temp)]),
            }),
          ).toEqual({
            voltageV: Number((v.volts * 0.01).toFixed(3)),
            currentA: tenth(v.amps),
            temperatureC: tenth(v.temp),
          });
          const b = v.request;
          expect(decodePylontechFrame({ id: PYLONTECH_IDS.requests, data: Buffer.from([b, 0]) })).toEqual({
            chargeEnabled: (b & 0x80) !== 0,
            dischargeEnabled: (b & 0x40) !== 0,
            forceCharge: (b & 0x30) !== 0,
            fullChargeRequest: (b & 0x08) !== 0,
          });
        },
      ),
      fuzz(0.3),
    );
  });

  it('the battery device fed arbitrary frames: sending only refuses bad frames (hal error), polls give plain points', async () => {
    const clock = new VirtualClock(0);
    const name = `fuzz-${process.pid}`;
    const bms = new MockCanBus(name);
    const battery = new PylontechBattery('bat', new MockCanBus(name), { clock, staleAfterMs: 1e12 });
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 4 }), async (frames) => {
        for (const f of frames) {
          const r = outcome(() => bms.send(f), [ErrorCode.hal]);
          if (r.ok) sent++;
          else expect(f.data.length > 8 || (!f.extended && f.id > 0x7ff)).toBe(true);
        }
        await Promise.resolve();
        const polled = await battery.poll(clock.now()).catch((err: unknown) => err);
        if (polled instanceof Error) {
          expect(polled.message).toContain('no frame from the BMS');
          return;
        }
        for (const v of Object.values(polled as Record<string, unknown>))
          expect(['number', 'string', 'boolean'].includes(typeof v) || Array.isArray(v)).toBe(true);
      }),
      fuzz(0.3),
    );
    expect(sent).toBeGreaterThan(0);
    await battery.close();
    await bms.close();
  });
});
