import type { PointData } from './natures.js';

/**
 * A device as the runtime sees it: polled once per primary cycle into named points of the process
 * image (`<device id>.<point>`, the points of its nature: `natures.ts`). Capabilities that take
 * commands (Inverter, Relay) are built on top by the drivers; a device implements only what it can.
 */
export interface Device {
  readonly id: string;
  /** What it is, e.g. `pv-inverter`, `household-meter`, `sunspec-inverter`, `sdm630`. */
  readonly kind: string;
  /** The backend it talks through, e.g. `simulated`, `modbus-tcp`, `modbus-rtu`, `can`. */
  readonly backend: string;
  /** Reads every point once. Rejects with a P2PError when the device does not answer. */
  poll(now: number): Promise<Record<string, PointData>>;
  close(): Promise<void>;
  /** Present on devices that take power setpoints (the Inverter capability). */
  inverter?: InverterControl;
  /** Present on devices that switch a load (the Relay capability). */
  relay?: RelayControl;
}

/** The Relay capability: switches a load on or off. */
export interface RelayControl {
  set(on: boolean): Promise<void>;
}

/** The Inverter capability: what a controller may set on an inverter. */
export interface InverterControl {
  readonly ratedW: number;
  /** Active power limit as % of the rating (100 = none). */
  setActivePowerLimitPct(pct: number): Promise<void>;
  /** Reactive power setpoint; positive = injecting VArs (raises the voltage). */
  setReactivePowerVAr(vAr: number): Promise<void>;
}
