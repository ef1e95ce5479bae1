import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/core/clock.js';
import { GpioDevice } from '../../src/drivers/gpio.js';
import { decodePylontechFrame, PylontechBattery } from '../../src/drivers/pylontech-bms.js';
import { MockCanBus, openCanBus } from '../../src/hal/can/can-bus.js';
import { MockGpio, openGpio } from '../../src/hal/gpio.js';
import { SimulatedPylontechBms } from '../../src/sim/devices/pylontech-bms.js';

const frame = (id: number, hex: string) => ({ id, data: Buffer.from(hex.replace(/ /g, ''), 'hex') });

describe('Pylontech LV CAN frames (captured bytes)', () => {
  it('0x351 charge/discharge limits, with and without the discharge voltage (DLC 8 and 6)', () => {
    // 56.8 V, 50.0 A, 50.0 A, 46.0 V
    expect(decodePylontechFrame(frame(0x351, '3802 f401 f401 cc01'))).toEqual({
      chargeVoltageLimitV: 56.8,
      chargeCurrentLimitA: 50,
      dischargeCurrentLimitA: 50,
      dischargeVoltageLimitV: 46,
    });
    expect(decodePylontechFrame(frame(0x351, '3802 f401 f401'))).toEqual({
      chargeVoltageLimitV: 56.8,
      chargeCurrentLimitA: 50,
      dischargeCurrentLimitA: 50,
    });
  });

  it('0x355 SOC/SOH, 0x356 voltage, current (signed) and temperature', () => {
    expect(decodePylontechFrame(frame(0x355, '4b00 6200'))).toEqual({ socPct: 75, sohPct: 98 });
    // 52.10 V, −12.5 A (discharging), 25.1 °C
    expect(decodePylontechFrame(frame(0x356, '5a14 83ff fb00'))).toEqual({
      voltageV: 52.1,
      currentA: -12.5,
      temperatureC: 25.1,
    });
  });

  it('0x359 alarms, 0x35C requests, 0x35E manufacturer; unknown ids ignored', () => {
    expect(decodePylontechFrame(frame(0x359, '0601 0008 02 504e'))).toEqual({
      protection: ['overvoltage', 'undervoltage', 'charge-overcurrent'],
      warnings: ['internal-comms'],
      modules: 2,
    });
    expect(decodePylontechFrame(frame(0x35c, 'c0 00'))).toEqual({
      chargeEnabled: true,
      dischargeEnabled: true,
      forceCharge: false,
      fullChargeRequest: false,
    });
    expect(decodePylontechFrame(frame(0x35e, Buffer.from('PYLON   ').toString('hex')))).toEqual({
      manufacturer: 'PYLON',
    });
    expect(decodePylontechFrame(frame(0x123, '00'))).toEqual({});
  });
});

describe('battery over the mock CAN bus', () => {
  it('reads the simulated BMS, which stops without the keep-alive; stale values are refused', async () => {
    const clock = new VirtualClock(0);
    const bms = new SimulatedPylontechBms(new MockCanBus('b1'), clock, {
      capacityAh: 100,
      socPct: 50,
      shortFrames: true,
    });
    bms.currentA = -20;
    const battery = new PylontechBattery('bat-1', new MockCanBus('b1'), { clock });
    await clock.advance(3000);
    const p = await battery.poll(clock.now());
    expect(p.socPct).toBe(50);
    expect(p.currentA).toBe(-20);
    expect(p.batteryPowerW).toBeLessThan(0);
    expect(p).not.toHaveProperty('dischargeVoltageLimitV'); // short 0x351
    expect(p.manufacturer).toBe('PYLON');
    await battery.close(); // no more keep-alive
    const sent = bms.framesSent;
    await clock.advance(5000);
    expect(bms.framesSent - sent).toBeLessThanOrEqual(3 * 6); // it goes on for at most 3 s
    const stopped = bms.framesSent;
    await clock.advance(5000);
    expect(bms.framesSent).toBe(stopped);
    const late = new PylontechBattery('bat-2', new MockCanBus('b1'), { clock });
    await expect(late.poll(clock.now())).rejects.toThrow(/no frame from the BMS on b1 for 3000 ms/);
    await late.close();
    await bms.close();
  });

  it('a real interface needs SocketCAN: a clear error where there is none', async () => {
    await expect(openCanBus('can-does-not-exist')).rejects.toThrow(/CAN|socketcan/);
  });
});

describe('GPIO relays and inputs', () => {
  it('switches a relay (active low) and reads a contact on the mock chip', async () => {
    const relay = new GpioDevice('shed-1', 'relay', () => openGpio('mock:t', 17, 'out'), true);
    await relay.relay!.set(true);
    expect(MockGpio.get('t:17')).toBe(0); // active low: on = 0
    expect((await relay.poll()).active).toBe(true);
    const contact = new GpioDevice('lock', 'digital-input', () => openGpio('mock:t', 4, 'in'));
    MockGpio.set('t:4', 1);
    expect((await contact.poll()).active).toBe(true);
    await expect(new MockGpio('t:4', 'in').write(1)).rejects.toThrow(/is an input/);
  });

  it('a real pin where there is no GPIO: a clear error from the poll, no crash at start', async () => {
    const relay = new GpioDevice('r', 'relay', () => openGpio('gpio', 5, 'out'));
    await expect(relay.poll()).rejects.toThrow(/GPIO|onoff/);
  });
});
