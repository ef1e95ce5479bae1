import { SDM630_REGISTERS } from '../../drivers/sdm630.js';
import { type MeterPlant, ModbusException, type RegisterDevice } from './register-device.js';

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
    return new Map([
      [R.voltageL1, v],
      [R.voltageL2, v],
      [R.voltageL3, v],
      [R.currentL1, amps],
      [R.currentL2, amps],
      [R.currentL3, amps],
      [R.powerL1, perPhaseW],
      [R.powerL2, perPhaseW],
      [R.powerL3, perPhaseW],
      [R.powerFactorL1, pf],
      [R.powerFactorL2, pf],
      [R.powerFactorL3, pf],
      [R.totalPower, r.powerW],
      [R.totalVA, 3 * va],
      [R.totalVAr, r.reactiveVAr],
      [R.totalPowerFactor, pf],
      [R.frequency, 50],
      [R.importKWh, r.importWh / 1000],
      [R.exportKWh, r.exportWh / 1000],
      [R.totalKWh, (r.importWh + r.exportWh) / 1000],
    ]);
  }

  readInput(address: number, count: number, now: number): number[] {
    const values = this.values(now);
    const out: number[] = [];
    const buf = Buffer.alloc(4);
    for (let a = address; a < address + count; a++) {
      const start = a % 2 === 0 ? a : a - 1;
      const inBank = start <= 0x4a || (start >= 0x156 && start <= 0x156);
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
