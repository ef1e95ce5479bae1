import { componentLogger } from '../core/log.js';
import { untilSignal } from '../core/signals.js';
import { parseModbusUrl } from '../hal/modbus/url.js';
import { SimulatedModbusServer } from './devices/modbus-server.js';
import { FixedInverterPlant, FixedMeterPlant } from './devices/register-device.js';
import { SimulatedSdm630 } from './devices/sdm630.js';
import { SimulatedSunSpecInverter } from './devices/sunspec-inverter.js';

/** `p2p-edge simulate --device sunspec-inverter|sdm630 --modbus URL [--unit N] [--rated-w W] [--available-w W]` */
export async function simulateCommand(o: {
  device: 'sunspec-inverter' | 'sdm630';
  modbus: string;
  unit?: number;
  ratedW?: number;
  availableW?: number;
}): Promise<void> {
  const endpoint = parseModbusUrl(o.modbus, '--modbus');
  const ratedW = o.ratedW ?? 5000;
  const device =
    o.device === 'sunspec-inverter'
      ? new SimulatedSunSpecInverter({ ratedW }, new FixedInverterPlant(ratedW, o.availableW ?? 0.8 * ratedW))
      : new SimulatedSdm630(new FixedMeterPlant(o.availableW ?? 1500));
  const server = new SimulatedModbusServer(new Map([[o.unit ?? 1, device]]));
  const url = await server.listen(endpoint);
  process.stdout.write(`${JSON.stringify({ ready: true, device: o.device, url })}\n`);
  const log = componentLogger('simulate');
  await untilSignal(() => server.close(), log);
}
