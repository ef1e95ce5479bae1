/**
 * A simulated device as a Modbus server sees it: holding and input registers by address. Reads of an
 * address the device does not have throw `{ modbusErrorCode: 2 }` (Illegal Data Address), which the
 * server turns into an exception reply, as a real device does.
 */
export interface RegisterDevice {
  readonly kind: string;
  readHolding(address: number, count: number, now: number): number[];
  writeHolding(address: number, values: number[], now: number): void;
  readInput(address: number, count: number, now: number): number[];
}

export class ModbusException extends Error {
  constructor(readonly modbusErrorCode: number) {
    super(`Modbus exception ${modbusErrorCode}`);
  }
}

/** What a simulated inverter is connected to: the feeder model of the bench, or a fixed stand-in. */
export interface InverterPlant {
  /** PV power available now before any limit, W. */
  availableW(now: number): number;
  /** What the inverter produces with its present limit, and the voltage at its terminals. */
  read(now: number): { powerW: number; reactiveVAr: number; voltagePu: number; energyWh: number };
  /** Active power limit, % of the rating (100 = none). */
  setLimitPct(pct: number): void;
  /** Reactive power, positive = injecting. */
  setReactiveVAr(vAr: number): void;
}

/** What a simulated meter measures. */
export interface MeterPlant {
  read(now: number): { powerW: number; reactiveVAr: number; voltagePu: number; importWh: number; exportWh: number };
}

/** A plant of its own for a stand-alone simulated inverter (`p2p-edge simulate`): fixed sun, 1.0 pu. */
export class FixedInverterPlant implements InverterPlant {
  private limitPct = 100;
  private reactiveVAr = 0;
  private energyWh = 0;
  private lastMs: number | undefined;

  constructor(
    private readonly ratedW: number,
    private readonly sunW: number,
  ) {}

  availableW(): number {
    return this.sunW;
  }

  read(now: number): { powerW: number; reactiveVAr: number; voltagePu: number; energyWh: number } {
    const powerW = Math.min(this.sunW, (this.limitPct / 100) * this.ratedW);
    if (this.lastMs !== undefined) this.energyWh += (powerW * Math.max(0, now - this.lastMs)) / 3_600_000;
    this.lastMs = now;
    return { powerW, reactiveVAr: this.reactiveVAr, voltagePu: 1, energyWh: this.energyWh };
  }

  setLimitPct(pct: number): void {
    this.limitPct = Math.min(100, Math.max(0, pct));
  }

  setReactiveVAr(vAr: number): void {
    this.reactiveVAr = vAr;
  }
}

/** A household following a fixed load for a stand-alone simulated meter. */
export class FixedMeterPlant implements MeterPlant {
  private importWh = 0;
  private lastMs: number | undefined;

  constructor(private readonly loadW: number) {}

  read(now: number): { powerW: number; reactiveVAr: number; voltagePu: number; importWh: number; exportWh: number } {
    if (this.lastMs !== undefined) this.importWh += (this.loadW * Math.max(0, now - this.lastMs)) / 3_600_000;
    this.lastMs = now;
    return { powerW: this.loadW, reactiveVAr: 0.2 * this.loadW, voltagePu: 1, importWh: this.importWh, exportWh: 0 };
  }
}
