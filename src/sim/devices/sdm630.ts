import { SDM630_REGISTERS } from '../../drivers/sdm630.js';
import { type MeterPlant, ModbusException, type RegisterDevice } from './register-device.js';

/**
 * Registers the simulated meter fills besides those of the driver's map (`SDM630_REGISTERS`, read
 * from `config/devices/sdm630.register-map.yaml`), so that a read of the whole bank looks real; no
 * driver reads them. Eastron SDM630 Modbus protocol, 0-based.
 */
const UNREAD_REGISTERS = {
  currentL1: 0x06,
  currentL2: 0x08,
  currentL3: 0x0a,
  powerL1: 0x0c,
  powerL2: 0x0e,
  powerL3: 0x10,
  powerFactorL1: 0x1e,
  powerFactorL2: 0x20,
  powerFactorL3: 0x22,
  totalVA: 0x38,
  totalPowerFactor: 0x3e,
  totalKWh: 0x156,
} as const;

/**
 * An Eastron SDM630 as a register map: input registers (FC4), IEEE-754 float32 big-endian, two
 * registers per value, addresses as in the manual (30001 = address 0). Addresses it does not have
 * answer Illegal Data Address.
 */
export class SimulatedSdm630 implements RegisterDevice {
  readonly kind = 'sdm630';
  silent = false;
  forcedException: number | undefined;
  /** Every read answered with random words (see SimulatedModbusServer). */
  garbage = false;

  constructor(private readonly plant: MeterPlant) {}

  private values(now: number): Map<number, number> {
    const r = this.plant.read(now);
    const v = 230 * r.voltagePu;
    const perPhaseW = r.powerW / 3;
    const perPhaseVAr = r.reactiveVAr / 3;
    const va = Math.hypot(perPhaseW, perPhaseVAr);
    const amps = va / v;
    const pf = va > 0 ? Math.abs(perPhaseW) / va : 1;
    const R = SDM630_REGISTERS;
    const X = UNREAD_REGISTERS;
    return new Map([
      [R.voltageL1, v],
      [R.voltageL2, v],
      [R.voltageL3, v],
      [X.currentL1, amps],
      [X.currentL2, amps],
      [X.currentL3, amps],
      [X.powerL1, perPhaseW],
      [X.powerL2, perPhaseW],
      [X.powerL3, perPhaseW],
      [X.powerFactorL1, pf],
      [X.powerFactorL2, pf],
      [X.powerFactorL3, pf],
      [R.totalPower, r.powerW],
      [X.totalVA, 3 * va],
      [R.totalVAr, r.reactiveVAr],
      [X.totalPowerFactor, pf],
      [R.frequency, 50],
      [R.importKWh, r.importWh / 1000],
      [R.exportKWh, r.exportWh / 1000],
      [X.totalKWh, (r.importWh + r.exportWh) / 1000],
    ]);
  }

  readInput(address: number, count: number, now: number): number[] {
    const values = this.values(now);
    const out: number[] = [];
    const buf = Buffer.alloc(4);
    for (let a = address; a < address + count; a++) {
      const start = a % 2 === 0 ? a : a - 1;
      const inBank = start <= 0x4a || start === UNREAD_REGISTERS.totalKWh;
      if (!inBank) throw new ModbusException(2);
      buf.writeFloatBE(values.get(start) ?? 0, 0);
      out.push(buf.readUInt16BE(a === start ? 0 : 2));
    }
    return out;
  }

  readHolding(): number[] {
    throw new ModbusException(2);
  }

  writeHolding(): void {
    throw new ModbusException(2);
  }
}
