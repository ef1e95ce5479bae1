import { fileURLToPath } from 'node:url';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { ModbusBus } from '../hal/modbus/bus.js';
import type { Device } from './device.js';
import { defineDriver } from './driver.js';
import { acquireModbusBus, modbusConnectionFields } from './modbus-connection.js';
import { type MeterReading, Points } from './natures.js';
import { combineRegisterPoints, loadRegisterMap, type RegisterMap, rawRegisterValue } from './register-map.js';

/**
 * The Eastron SDM630's registers, described once in `config/devices/sdm630.register-map.yaml` (input
 * registers, float32 high word first, 0-based addresses): this driver, the `register-map` driver and
 * the simulator all read that file.
 */
export const SDM630_MAP_FILE = fileURLToPath(new URL('../../config/devices/sdm630.register-map.yaml', import.meta.url));
export const SDM630_MAP: RegisterMap = loadRegisterMap(SDM630_MAP_FILE);

function addressOf(point: string, phase?: number): number {
  const p = SDM630_MAP.points.find((q) => q.point === point && q.phase === phase);
  if (!p) throw new P2PError(ErrorCode.config, `${SDM630_MAP_FILE}: no ${point}${phase ? ` phase ${phase}` : ''}`);
  return p.address;
}

/** The addresses of the points the driver reads, by the names of the manual's table. */
export const SDM630_REGISTERS = {
  voltageL1: addressOf('acVoltageV', 1),
  voltageL2: addressOf('acVoltageV', 2),
  voltageL3: addressOf('acVoltageV', 3),
  totalPower: addressOf('acPowerW'),
  totalVAr: addressOf('reactivePowerVAr'),
  frequency: addressOf('frequencyHz'),
  importKWh: addressOf('energyWh'),
  exportKWh: addressOf('energyExportWh'),
} as const;

/** The block the driver polls: every point of the map in one read. */
const BLOCK = (() => {
  const address = Math.min(...SDM630_MAP.points.map((p) => p.address));
  const end = Math.max(...SDM630_MAP.points.map((p) => p.address + (p.type.endsWith('16') ? 1 : 2)));
  return { address, count: end - address };
})();

/** Reads of the SDM630 block, decoded by the map. */
export function decodeSdm630(regs: readonly number[]): {
  voltageV: [number, number, number];
  powerW: number;
  reactiveVAr: number;
  frequencyHz: number;
  importWh: number;
  exportWh: number;
} {
  if (regs.length < BLOCK.count)
    throw new P2PError(
      ErrorCode.driver,
      `SDM630: the reply holds ${regs.length} registers, the block has ${BLOCK.count} (registers ${BLOCK.address}..${BLOCK.address + BLOCK.count - 1})`,
      { component: 'sdm630', recoverable: true },
    );
  const values = SDM630_MAP.points.map((p) => {
    const i = p.address - BLOCK.address;
    const raw = rawRegisterValue(p, regs.slice(i, i + (p.type.endsWith('16') ? 1 : 2)));
    // Without an offset the sign of a zero is kept (−0 stays −0), as the meter sent it.
    return p.offset === 0 ? raw * p.scale : raw * p.scale + p.offset;
  });
  const r = combineRegisterPoints(SDM630_MAP, values);
  const v = r.acVoltageV as readonly number[];
  return {
    voltageV: [v[0]!, v[1]!, v[2]!],
    powerW: r.acPowerW as number,
    reactiveVAr: r.reactivePowerVAr as number,
    frequencyHz: r.frequencyHz as number,
    importWh: r.energyWh as number,
    exportWh: r.energyExportWh as number,
  };
}

export async function readSdm630(bus: ModbusBus, unit: number, priority: 'fast' | 'slow' = 'fast') {
  return decodeSdm630(await bus.readInput(unit, BLOCK.address, BLOCK.count, priority));
}

/** An SDM630 as a gateway device: the household meter at the connection point. */
export class Sdm630Meter implements Device {
  readonly kind = 'sdm630';
  readonly backend: string;

  constructor(
    readonly id: string,
    private readonly bus: ModbusBus,
    private readonly unit: number,
    private readonly nominalPhaseV = 230,
    private readonly release: () => Promise<void> = async () => {},
  ) {
    this.backend = bus.endpoint.kind === 'tcp' ? 'modbus-tcp' : 'modbus-rtu';
  }

  async poll(): Promise<MeterReading> {
    const r = await readSdm630(this.bus, this.unit);
    const meanV = (r.voltageV[0] + r.voltageV[1] + r.voltageV[2]) / 3;
    return {
      [Points.acPowerW]: r.powerW,
      [Points.reactivePowerVAr]: r.reactiveVAr,
      [Points.acVoltageV]: r.voltageV,
      [Points.voltagePu]: meanV / this.nominalPhaseV,
      [Points.frequencyHz]: r.frequencyHz,
      [Points.energyWh]: r.importWh,
      [Points.energyExportWh]: r.exportWh,
    };
  }

  async close(): Promise<void> {
    await this.release();
  }
}

/** Driver `sdm630`: an Eastron SDM630 meter (FC4 float32), by default measuring the household's load. */
export const sdm630Driver = defineDriver({
  driver: 'sdm630',
  nature: 'meter',
  usages: ['grid', 'pv', 'load', 'battery'],
  defaultUsage: 'load',
  fields: modbusConnectionFields,
  create: (d, ctx) => {
    const { bus, release } = acquireModbusBus(d, ctx);
    return new Sdm630Meter(d.id, bus, d.unit, 230, release);
  },
});
