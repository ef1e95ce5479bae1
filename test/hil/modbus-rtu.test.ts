import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sdm630Meter } from '../../src/drivers/sdm630.js';
import { discoverSunSpec } from '../../src/drivers/sunspec/discovery.js';
import { SunSpecControls, SunSpecInverter } from '../../src/drivers/sunspec/inverter.js';
import { ModbusBus } from '../../src/hal/modbus/bus.js';
import { parseModbusUrl } from '../../src/hal/modbus/url.js';
import { SimulatedModbusServer } from '../../src/sim/devices/modbus-server.js';
import { PtyPair } from '../../src/sim/devices/pty-pair.js';
import { FixedInverterPlant, FixedMeterPlant } from '../../src/sim/devices/register-device.js';
import { SimulatedSdm630 } from '../../src/sim/devices/sdm630.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';
import { eventually } from '../helpers/net.js';
import { requireTool } from '../helpers/system-tools.js';

/**
 * A request's timeout here only bounds a lost request: the tests are about what comes back, and on a
 * loaded machine (the simulated device runs in this process, socat in another) a reply can take
 * far longer than on an idle one.
 */
const REQUEST_TIMEOUT_MS = 5000;

/**
 * Until the server on the far end of the line answers. Its port may open after `listen` has
 * returned, and opening a serial port flushes what is already waiting on it: a request sent before
 * would be lost. Asked from a bus of its own that never backs off, so that the bus under test starts
 * with a clean record.
 */
async function untilServerAnswers(path: string, unit: number, address: number): Promise<void> {
  const probe = new ModbusBus(parseModbusUrl(`rtu://${path}?baud=19200&parity=none`), {
    timeoutMs: 1000,
    backoff: { initialMs: 0, maxMs: 0 },
  });
  try {
    await eventually(async () => (await probe.readHolding(unit, address, 1)) && true, 20_000, 50);
  } finally {
    await probe.close();
  }
}

// socat makes the pty pair: without it every test here fails, naming the package.
beforeAll(() => {
  requireTool('socat');
});

describe('Modbus RTU over a pty pair (socat) at 19200 baud', () => {
  let pty: PtyPair;
  let server: SimulatedModbusServer;
  let bus: ModbusBus;

  beforeAll(async () => {
    pty = await PtyPair.open();
    server = new SimulatedModbusServer(
      new Map<number, SimulatedSunSpecInverter | SimulatedSdm630>([
        [1, new SimulatedSunSpecInverter({ ratedW: 5000 }, new FixedInverterPlant(5000, 3000))],
        [2, new SimulatedSdm630(new FixedMeterPlant(1200))],
      ]),
    );
    await server.listen(parseModbusUrl(`rtu://${pty.a}?baud=19200&parity=none`));
    await untilServerAnswers(pty.b, 1, 40_000);
    bus = new ModbusBus(parseModbusUrl(`rtu://${pty.b}?baud=19200&parity=none`), { timeoutMs: REQUEST_TIMEOUT_MS });
  }, 60_000);
  afterAll(async () => {
    await bus?.close();
    await server?.close();
    await pty?.close();
  });

  it('discovers, reads and controls the inverter and reads the meter on one line', async () => {
    const map = await discoverSunSpec(bus, 1);
    expect(map?.models.map((m) => m.id)).toEqual([1, 103, 120, 121, 122, 123]);
    const inverter = new SunSpecInverter('pv-1', bus, 1, { ratedW: 5000 });
    expect((await inverter.poll(Date.now())).acPowerW).toBe(3000);
    await new SunSpecControls(bus, 1, map!).setLimit(40);
    expect((await inverter.poll(Date.now())).acPowerW).toBe(2000);
    expect((await new Sdm630Meter('m', bus, 2).poll()).acPowerW).toBeCloseTo(1200, 1);
  });
});

describe('a reply with a bad CRC', () => {
  it('is reported as a CRC error, not as data', async () => {
    const pty = await PtyPair.open();
    // A byte-level device on the other end: it answers any request with a frame whose CRC is wrong.
    const fd = openSync(pty.a, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOCTTY);
    // The request (8 bytes) is gathered across reads: a loaded machine may hand it over in pieces.
    let answering = true;
    const loop = (async () => {
      const buf = Buffer.alloc(256);
      let request = Buffer.alloc(0);
      while (answering) {
        await new Promise((r) => setTimeout(r, 5));
        let n = 0;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch {
          continue; // nothing to read yet (EAGAIN)
        }
        request = Buffer.concat([request, buf.subarray(0, n)]);
        if (request.length >= 8) {
          writeSync(fd, Buffer.from([request[0]!, 0x03, 0x02, 0x12, 0x34, 0xde, 0xad]));
          request = Buffer.alloc(0);
        }
      }
    })();
    const bus = new ModbusBus(parseModbusUrl(`rtu://${pty.b}?baud=19200`), { timeoutMs: REQUEST_TIMEOUT_MS });
    const err = await bus.readHolding(1, 40_000, 1).catch((e) => e);
    answering = false;
    await loop;
    await bus.close();
    closeSync(fd);
    await pty.close();
    expect(String(err?.message)).toMatch(/read holding 40000\+1: CRC error in the reply/);
    expect(bus.stats.crcErrors).toBe(1);
  });
});
