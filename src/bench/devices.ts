import { ErrorCode, P2PError } from '../core/errors.js';
import { parseModbusUrl } from '../hal/modbus/url.js';
import { SimulatedModbusServer } from '../sim/devices/modbus-server.js';
import { PtyPair } from '../sim/devices/pty-pair.js';
import type { InverterPlant, MeterPlant } from '../sim/devices/register-device.js';
import { SimulatedSdm630 } from '../sim/devices/sdm630.js';
import { SimulatedSunSpecInverter } from '../sim/devices/sunspec-inverter.js';
import type { SimulatedCell } from '../sim/simulated-cell.js';
import type { DeviceEndpoint } from './configs.js';
import type { BenchDevice, BenchGrid } from './grid.js';

/** A simulated inverter's plant: its device on the bench's feeder. */
function inverterPlant(cell: SimulatedCell, id: string): InverterPlant {
  return {
    availableW: (now) => cell.availableW(id, now),
    read: (now) => {
      const r = cell.read(id, now)!;
      return { powerW: r.powerW, reactiveVAr: r.reactiveVAr, voltagePu: r.voltagePu, energyWh: r.energyWh };
    },
    setLimitPct: (pct) => cell.setLimitPct(id, pct),
    setReactiveVAr: (vAr) => cell.setReactiveVAr(id, vAr),
  };
}

function meterPlant(cell: SimulatedCell, id: string): MeterPlant {
  return {
    read: (now) => {
      const r = cell.read(id, now)!;
      return {
        powerW: r.powerW,
        reactiveVAr: 0.2 * r.powerW,
        voltagePu: r.voltagePu,
        importWh: r.energyWh,
        exportWh: 0,
      };
    },
  };
}

/**
 * Every house's devices served as real Modbus servers: one server per house (inverter unit 1, meter
 * unit 2, as behind one RS485-to-Ethernet gateway), over TCP, or over RTU on a socat pty pair for the
 * houses the scenario puts on serial lines.
 */
export class BenchDeviceServers {
  readonly endpoints: Record<string, DeviceEndpoint> = {};
  private readonly servers: SimulatedModbusServer[] = [];
  private readonly ptys: PtyPair[] = [];
  /** socat was missing: houses meant for RTU are on TCP. */
  rtuUnavailable = false;
  private readonly byDevice = new Map<string, SimulatedSunSpecInverter | SimulatedSdm630>();

  /** `host`: where the TCP servers listen (loopback, or the houses' LAN side: `SidelinkNetwork.lanAddress`). */
  static async start(
    grid: BenchGrid,
    onNote?: (line: string) => void,
    host = '127.0.0.1',
  ): Promise<BenchDeviceServers> {
    const s = new BenchDeviceServers();
    const houses = new Map<string, BenchDevice[]>();
    for (const d of grid.devices) houses.set(d.gateway, [...(houses.get(d.gateway) ?? []), d]);
    for (const devices of houses.values()) {
      const units = new Map<number, SimulatedSunSpecInverter | SimulatedSdm630>();
      for (const d of devices) {
        const cell = grid.cellOf(d.id);
        const sim =
          d.kind === 'pv-inverter'
            ? new SimulatedSunSpecInverter({ ratedW: d.ratedW, serial: d.id }, inverterPlant(cell, d.id))
            : new SimulatedSdm630(meterPlant(cell, d.id));
        units.set(d.kind === 'pv-inverter' ? 1 : 2, sim);
        s.byDevice.set(d.id, sim);
      }
      const server = new SimulatedModbusServer(units);
      let clientUrl: string | undefined;
      if (devices[0]!.rtu) {
        const pty = await PtyPair.open().catch((err: unknown) => {
          // A machine without socat (a first `npm start`) still runs the bench, with these houses on TCP.
          if (!(err instanceof P2PError && err.code === ErrorCode.unavailable)) throw err;
          if (!s.rtuUnavailable) onNote?.(`${err.describe()}: the RTU houses are served over TCP instead`);
          s.rtuUnavailable = true;
          return undefined;
        });
        if (pty) {
          s.ptys.push(pty);
          await server.listen(parseModbusUrl(`rtu://${pty.a}?baud=19200`));
          clientUrl = `rtu://${pty.b}?baud=19200`;
        }
      }
      clientUrl ??= await server.listen(parseModbusUrl(`tcp://${host}:0`));
      s.servers.push(server);
      for (const d of devices) s.endpoints[d.id] = { url: clientUrl, unit: d.kind === 'pv-inverter' ? 1 : 2 };
    }
    return s;
  }

  /** A device stops answering (fault scenarios) or answers again. */
  setSilent(deviceId: string, silent: boolean): boolean {
    const d = this.byDevice.get(deviceId);
    if (d) d.silent = silent;
    return d !== undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.close()));
    await Promise.all(this.ptys.map((p) => p.close()));
  }
}
