import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseModbusUrl } from '../../src/hal/modbus/url.js';
import { SimulatedModbusServer } from '../../src/sim/devices/modbus-server.js';
import { FixedInverterPlant, FixedMeterPlant } from '../../src/sim/devices/register-device.js';
import { SimulatedSdm630 } from '../../src/sim/devices/sdm630.js';
import { SimulatedSunSpecInverter } from '../../src/sim/devices/sunspec-inverter.js';
import { eventually, freePort, startCli, tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('p2p-edge run with Modbus devices', () => {
  it('polls a SunSpec inverter and an SDM630 over TCP into the process image; a device that vanishes and comes back', async () => {
    const inverter = new SimulatedSunSpecInverter({ ratedW: 5000 }, new FixedInverterPlant(5000, 4000));
    const meter = new SimulatedSdm630(new FixedMeterPlant(1500));
    const server = new SimulatedModbusServer(
      new Map<number, SimulatedSunSpecInverter | SimulatedSdm630>([
        [1, inverter],
        [2, meter],
      ]),
    );
    const url = await server.listen(parseModbusUrl('tcp://127.0.0.1:0'));
    const port = await freePort();
    const config = join(tmp.dir, 'gw.yaml');
    writeFileSync(
      config,
      stringify({
        gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1', bus: 'b1' },
        scheduler: { primaryMs: 200, secondaryMs: 400, tertiaryMs: 60_000 },
        stateDir: tmp.dir,
        status: { port },
        voltageControl: { method: 'volt-var' },
        devices: [
          { id: 'pv-1', driver: 'sunspec', modbus: url, unit: 1, timeoutMs: 200 },
          { id: 'meter-1', driver: 'sdm630', modbus: url, unit: 2, timeoutMs: 200 },
        ],
      }),
    );
    const gw = startCli(['run', '--config', config]);
    type State = { devices: Record<string, { up: boolean; points: Record<string, { value: unknown }> }> };
    const state = async () => (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as State;
    const up = await eventually(async () => {
      const s = await state();
      return s.devices['pv-1']?.up && s.devices['meter-1']?.up ? s : undefined;
    }, 15_000);
    expect(up.devices['pv-1']!.points.acPowerW!.value).toBe(4000);
    expect(up.devices['meter-1']!.points.acPowerW!.value).toBeCloseTo(1500, 1);
    meter.silent = true;
    await eventually(async () => ((await state()).devices['meter-1']?.up === false ? true : undefined), 10_000);
    expect((await state()).devices['pv-1']!.up).toBe(true); // the inverter on the same link goes on
    meter.silent = false;
    await eventually(async () => ((await state()).devices['meter-1']?.up ? true : undefined), 15_000);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    await server.close();
  });
});
