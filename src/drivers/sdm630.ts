import { ErrorCode, P2PError } from '../core/errors.js';
import type { ModbusBus } from '../hal/modbus/bus.js';
import type { Device } from './device.js';
import { defineDriver } from './driver.js';
import { acquireModbusBus, modbusConnectionFields } from './modbus-connection.js';
import { type MeterReading, Points } from './natures.js';

/**
 * Eastron SDM630 input registers (FC4, float32 big-endian, two registers each), 0-based as on the
 * wire (the manual's 30001 is address 0). Source: Eastron SDM630 Modbus protocol; volkszaehler/mbmd.
 */
export const SDM630_REGISTERS = {
  voltageL1: 0x00,
  voltageL2: 0x02,
  voltageL3: 0x04,
  currentL1: 0x06,
  currentL2: 0x08,
  currentL3: 0x0a,
  powerL1: 0x0c,
  powerL2: 0x0e,
  powerL3: 0x10,
  powerFactorL1: 0x1e,
  powerFactorL2: 0x20,
  powerFactorL3: 0x22,
  totalPower: 0x34,
  totalVA: 0x38,
  totalVAr: 0x3c,
  totalPowerFactor: 0x3e,
  frequency: 0x46,
  importKWh: 0x48,
  exportKWh: 0x4a,
  totalKWh: 0x156,
} as const;

/** The block the driver polls: voltages through export energy in one read. */
const BLOCK = { address: 0x00, count: 0x4c };

/** Reads of the SDM630 block, decoded (float32 big-endian pairs). */
export function decodeSdm630(regs: readonly number[]): {
  voltageV: [number, number, number];
  currentA: [number, number, number];
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
  const buf = Buffer.alloc(4);
  const f = (address: number) => {
    const i = address - BLOCK.address;
    buf.writeUInt16BE(regs[i]!, 0);
    buf.writeUInt16BE(regs[i + 1]!, 2);
    return buf.readFloatBE(0);
  };
  const R = SDM630_REGISTERS;
  return {
    voltageV: [f(R.voltageL1), f(R.voltageL2), f(R.voltageL3)],
    currentA: [f(R.currentL1), f(R.currentL2), f(R.currentL3)],
    powerW: f(R.totalPower),
    reactiveVAr: f(R.totalVAr),
    frequencyHz: f(R.frequency),
    importWh: f(R.importKWh) * 1000,
    exportWh: f(R.exportKWh) * 1000,
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
