import { ErrorCode, P2PError } from '../../core/errors.js';
import { type ModbusBus, type ModbusPriority, modbusExceptionOf } from '../../hal/modbus/bus.js';

/** Where SunSpec devices put their `SunS` marker, in the order they are tried. */
export const SUNSPEC_BASES = [40_000, 0, 50_000];
const SUNS = [0x5375, 0x6e53];
const END = 0xffff;
const MAX_MODELS = 64;
const ILLEGAL_DATA_ADDRESS = 2;
/** Registers are addressed 0..65535. */
const REGISTER_SPACE = 0x10000;

export interface ModelLocation {
  id: number;
  /** Address of the model's ID register. */
  address: number;
  /** L: registers after ID and L. */
  length: number;
}

export interface SunSpecMap {
  /** Address of `SunS`. */
  base: number;
  models: ModelLocation[];
}

/**
 * Finds the SunSpec marker and walks the model chain by the lengths the device reports. A device
 * without the end marker answers the next read with Illegal Data Address (or nothing readable): that
 * ends the chain. Returns undefined when the unit has no SunSpec map; rejects when it does not answer.
 */
export async function discoverSunSpec(bus: ModbusBus, unit: number): Promise<SunSpecMap | undefined> {
  let base: number | undefined;
  for (const candidate of SUNSPEC_BASES) {
    try {
      const regs = await bus.readHolding(unit, candidate, 2, 'slow');
      if (regs[0] === SUNS[0] && regs[1] === SUNS[1]) {
        base = candidate;
        break;
      }
    } catch (err) {
      // An exception means "not here"; silence means the unit is not there at all.
      if (modbusExceptionOf(err) === undefined) throw err;
    }
  }
  if (base === undefined) return undefined;
  const models: ModelLocation[] = [];
  let address = base + 2;
  for (let i = 0; i < MAX_MODELS; i++) {
    let header: number[];
    try {
      header = await bus.readHolding(unit, address, 2, 'slow');
    } catch (err) {
      if (modbusExceptionOf(err) === ILLEGAL_DATA_ADDRESS) break;
      throw err;
    }
    const [id, length] = header as [number, number];
    if (id === END || id === 0) break;
    models.push({ id, address, length });
    address += length + 2;
    // the next header (ID and L) must fit below the end of the register space
    if (address + 2 > REGISTER_SPACE) break;
  }
  if (models.length === 0) {
    throw new P2PError(ErrorCode.driver, `unit ${unit}: SunSpec marker at ${base} but no model after it`, {
      component: 'sunspec',
    });
  }
  return { base, models };
}

/** Reads a whole model (ID and L included) in blocks of at most 125 registers. */
export async function readModel(
  bus: ModbusBus,
  unit: number,
  m: ModelLocation,
  priority: ModbusPriority = 'fast',
): Promise<number[]> {
  const total = m.length + 2;
  if (m.address + total > REGISTER_SPACE)
    throw new P2PError(
      ErrorCode.driver,
      `unit ${unit}: SunSpec model ${m.id} at ${m.address} claims ${m.length} registers, past the last register (65535)`,
      { component: 'sunspec' },
    );
  const out: number[] = [];
  for (let at = 0; at < total; at += 125) {
    out.push(...(await bus.readHolding(unit, m.address + at, Math.min(125, total - at), priority)));
  }
  // A device that reset, changed firmware or sends garbage no longer has the model where it was found.
  if (out[0] !== m.id || out[1] !== m.length)
    throw new P2PError(
      ErrorCode.driver,
      `unit ${unit}: SunSpec model ${m.id} is no longer at ${m.address} (its header reads ${out[0]}, length ${out[1]}): the map is read again`,
      { component: 'sunspec', recoverable: true },
    );
  return out;
}
