/**
 * Natures: what a kind of device reports, written once. A device's poll returns named points of the
 * process image (`<device id>.<point>`); each nature lists the points a device of that kind may
 * expose, with the unit and the sign convention of each (after OpenEMS's natures: controllers are
 * written against a nature, never against a device). A device reports only what it can: every point
 * is optional, and one a device does not implement is left out, never 0.
 */

/** The value of one point: a number, a text, a flag, or one number per phase (`null` where not measured). */
export type PointData = number | string | boolean | readonly (number | null)[];

/** How a point's value is written: `phases` is one number per phase of the device (1 or 3). */
export type PointShape = 'number' | 'phases' | 'text' | 'flag' | 'text-list';

export interface PointDefinition {
  readonly unit: string;
  readonly shape: PointShape;
  /** What it measures, and for signed quantities which direction is positive. */
  readonly meaning: string;
}

/** Points an AC device may report at its terminals. */
const acTerminal = {
  acVoltageV: { unit: 'V', shape: 'phases', meaning: 'phase-to-neutral voltage, per phase' },
  voltagePu: { unit: 'pu', shape: 'number', meaning: "mean phase voltage per unit of nominal (the device's bus)" },
  frequencyHz: { unit: 'Hz', shape: 'number', meaning: 'grid frequency' },
} as const satisfies Record<string, PointDefinition>;

/**
 * A meter: at the connection point (usage `grid`) or in front of a load, a PV system or a battery.
 * Positive power flows in through the meter: imported from the grid at a connection point, consumed
 * by a load (the contract's `scan`: meter `acPowerW` positive = imported).
 */
export const meterNature = {
  ...acTerminal,
  acPowerW: { unit: 'W', shape: 'number', meaning: 'active power; positive = imported (flowing in through the meter)' },
  reactivePowerVAr: { unit: 'VAr', shape: 'number', meaning: 'reactive power, as the meter reports it' },
  energyWh: { unit: 'Wh', shape: 'number', meaning: 'imported energy counter' },
  energyExportWh: { unit: 'Wh', shape: 'number', meaning: 'exported energy counter' },
} as const satisfies Record<string, PointDefinition>;

/** A PV inverter (the Inverter capability takes its setpoints). */
export const inverterNature = {
  ...acTerminal,
  acPowerW: { unit: 'W', shape: 'number', meaning: 'active power; positive = produced (as SunSpec reports it)' },
  reactivePowerVAr: {
    unit: 'VAr',
    shape: 'number',
    meaning: 'reactive power; positive = injected (raises the voltage)',
  },
  energyWh: { unit: 'Wh', shape: 'number', meaning: 'produced energy counter' },
  limitPct: { unit: '%', shape: 'number', meaning: 'active power limit in force, % of the rating (100 = none)' },
  availablePowerW: { unit: 'W', shape: 'number', meaning: 'PV power available before any limit' },
} as const satisfies Record<string, PointDefinition>;

/** A battery's management system (DC side), as a Pylontech-compatible BMS reports it. */
export const batteryNature = {
  socPct: { unit: '%', shape: 'number', meaning: 'state of charge' },
  sohPct: { unit: '%', shape: 'number', meaning: 'state of health' },
  voltageV: { unit: 'V', shape: 'number', meaning: 'battery (DC) voltage' },
  currentA: { unit: 'A', shape: 'number', meaning: 'battery current; positive = charging' },
  batteryPowerW: { unit: 'W', shape: 'number', meaning: 'DC power, voltage × current; positive = charging' },
  temperatureC: { unit: '°C', shape: 'number', meaning: 'battery temperature' },
  chargeVoltageLimitV: { unit: 'V', shape: 'number', meaning: 'highest charge voltage the BMS allows' },
  dischargeVoltageLimitV: { unit: 'V', shape: 'number', meaning: 'lowest discharge voltage the BMS allows' },
  chargeCurrentLimitA: { unit: 'A', shape: 'number', meaning: 'highest charge current the BMS allows' },
  dischargeCurrentLimitA: { unit: 'A', shape: 'number', meaning: 'highest discharge current the BMS allows' },
  protection: { unit: '', shape: 'text-list', meaning: 'protection alarms in force, comma-separated' },
  warnings: { unit: '', shape: 'text-list', meaning: 'warnings in force, comma-separated' },
  modules: { unit: '', shape: 'number', meaning: 'battery modules the BMS reports' },
  chargeEnabled: { unit: '', shape: 'flag', meaning: 'the BMS allows charging' },
  dischargeEnabled: { unit: '', shape: 'flag', meaning: 'the BMS allows discharging' },
  forceCharge: { unit: '', shape: 'flag', meaning: 'the BMS asks to be charged now' },
  fullChargeRequest: { unit: '', shape: 'flag', meaning: 'the BMS asks for a full charge' },
  manufacturer: { unit: '', shape: 'text', meaning: "the BMS's manufacturer" },
} as const satisfies Record<string, PointDefinition>;

/** A relay on an output or a contact on an input. */
export const switchNature = {
  active: { unit: '', shape: 'flag', meaning: 'the relay is switched on / the contact is closed (after activeLow)' },
} as const satisfies Record<string, PointDefinition>;

/** Every nature by name (a driver declares which one its devices have). */
export const NATURES = {
  meter: meterNature,
  inverter: inverterNature,
  battery: batteryNature,
  switch: switchNature,
} as const;
export type NatureName = keyof typeof NATURES;

type ValueOf<D extends PointDefinition> = D['shape'] extends 'number'
  ? number
  : D['shape'] extends 'phases'
    ? readonly (number | null)[]
    : D['shape'] extends 'flag'
      ? boolean
      : string;

/** One poll of a device of a nature: every point optional, each of its own type. */
export type ReadingOf<N extends Record<string, PointDefinition>> = { -readonly [P in keyof N]?: ValueOf<N[P]> };
export type MeterReading = ReadingOf<typeof meterNature>;
export type InverterReading = ReadingOf<typeof inverterNature>;
export type BatteryReading = ReadingOf<typeof batteryNature>;

/**
 * Power drawn from the grid at a device's terminals (positive = consumed), from its `acPowerW`: a
 * meter counts what flows in through it as positive, an inverter what it produces.
 */
export function consumedPowerW(nature: NatureName, acPowerW: number): number {
  return nature === 'inverter' ? -acPowerW : acPowerW;
}

/** A point name of any nature. */
export type PointName = { [N in NatureName]: keyof (typeof NATURES)[N] }[NatureName];

/** The names of every nature's points, for reading them back from the process image. */
export const Points = Object.fromEntries(
  Object.values(NATURES).flatMap((nature) => Object.keys(nature).map((name) => [name, name])),
) as { readonly [P in PointName]: P };
