import type { CellLimits } from '../../control/coupling.js';

/** The reading side of a slot: what every role of the gateway gets. */
export interface SlotReader<T> {
  /** The last value written, or undefined before the first. */
  get(): T | undefined;
}

/**
 * One value that a role hands the other roles of its gateway. Whoever holds the `Slot` writes it;
 * everyone else gets only its `reader`, which has no way to write.
 */
export class Slot<T> {
  private value: T | undefined;
  readonly reader: SlotReader<T> = { get: () => this.value };

  get(): T | undefined {
    return this.value;
  }

  set(value: T): void {
    this.value = value;
  }
}

/** What a cell's market left to the level above, per slot (written by the MG trader). */
export interface CellImbalance {
  session: string;
  slotHours: number;
  /** What the cell still takes from (+) or gives to (−) the level above, kWh per slot. */
  netImportKWh: number[];
  /** When the interval ends (clock ms): the trade above must be done by then. */
  intervalEndMs?: number;
}

/** What roles of one gateway hand each other, as every role reads it. */
export interface HandOverView {
  /** Energy the cell may import / export per market slot (written by the coupling agent, read by the MG trader). */
  readonly cellLimits: SlotReader<CellLimits>;
  /** The cell market's leftover (written by the MG trader, traded one level up by the coupling agent). */
  readonly cellImbalance: SlotReader<CellImbalance>;
}

/**
 * The slots of one gateway, each with one writer: the gateway gives the writable slot to the role that
 * writes it when it builds the roles (`createRole`), and every role the read-only `view`.
 */
export class RoleHandOver {
  /** Written by the coupling agent. */
  readonly cellLimits = new Slot<CellLimits>();
  /** Written by the MG trader. */
  readonly cellImbalance = new Slot<CellImbalance>();
  readonly view: HandOverView = { cellLimits: this.cellLimits.reader, cellImbalance: this.cellImbalance.reader };
}
