import { componentLogger } from '../core/log.js';
import { untilSignal } from '../core/signals.js';
import { parseModbusUrl } from '../hal/modbus/url.js';
import { SimulatedModbusServer } from './devices/modbus-server.js';
import { FixedInverterPlant, FixedMeterPlant } from './devices/register-device.js';
import { SimulatedSdm630 } from './devices/sdm630.js';
import { SimulatedSunSpecInverter } from './devices/sunspec-inverter.js';
import { SimulatedSunSpecMeter } from './devices/sunspec-meter.js';

export type SimulatedDeviceKind = 'sunspec-inverter' | 'sunspec-meter' | 'sdm630';

/**
 * `p2p-edge simulate --device sunspec-inverter|sunspec-meter|sdm630 --modbus URL [--unit N] [--rated-w W]
 * [--available-w W] [--float] [--curves]`
 */
export async function simulateCommand(o: {
  device: SimulatedDeviceKind;
  modbus: string;
  unit?: number;
  ratedW?: number;
  availableW?: number;
  /** SunSpec float models (111-113, 211-213) instead of the integer ones. */
  float?: boolean;
  /** The inverter also serves volt-var 126, volt-watt 132 and IEEE 1547 volt-var 705. */
  curves?: boolean;
}): Promise<void> {
  const endpoint = parseModbusUrl(o.modbus, '--modbus');
  const ratedW = o.ratedW ?? 5000;
  const device =
    o.device === 'sunspec-inverter'
      ? new SimulatedSunSpecInverter(
          { ratedW, float: o.float, voltVar: o.curves, voltWatt: o.curves, voltVar1547: o.curves },
          new FixedInverterPlant(ratedW, o.availableW ?? 0.8 * ratedW),
        )
      : o.device === 'sunspec-meter'
        ? new SimulatedSunSpecMeter({ float: o.float }, new FixedMeterPlant(o.availableW ?? 1500))
        : new SimulatedSdm630(new FixedMeterPlant(o.availableW ?? 1500));
  const server = new SimulatedModbusServer(new Map([[o.unit ?? 1, device]]));
  const url = await server.listen(endpoint);
  process.stdout.write(`${JSON.stringify({ ready: true, device: o.device, url })}\n`);
  const log = componentLogger('simulate');
  await untilSignal(() => server.close(), log);
}
