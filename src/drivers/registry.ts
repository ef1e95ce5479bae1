import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { Device } from './device.js';
import type { DeviceConfigBase, DriverContext, RegisteredDriver } from './driver.js';
import { gpioInputDriver, gpioRelayDriver } from './gpio.js';
import type { NatureName } from './natures.js';
import { pylontechDriver } from './pylontech-bms.js';
import { registerMapDriver } from './register-map.js';
import { sdm630Driver } from './sdm630.js';
import { sunspecDriver } from './sunspec/inverter.js';
import { sunspecMeterDriver } from './sunspec/meter.js';

/**
 * The drivers of real devices, by the `driver` name a device config gives. Adding a driver is its
 * module (config fields, factory: `defineDriver`), its test and one line here. The gateway adds the
 * simulated driver of `src/sim` to these (`src/agent/config.ts`).
 */
export const FIELD_DRIVERS = [
  sunspecDriver,
  sdm630Driver,
  sunspecMeterDriver,
  registerMapDriver,
  pylontechDriver,
  gpioRelayDriver,
  gpioInputDriver,
] as const;

type Schemas<D extends readonly RegisteredDriver[]> = { -readonly [K in keyof D]: D[K]['schema'] };

/** The schema of one device config: the driver named by `driver`, its fields, `usage` filled in. */
export function deviceConfigSchema<const D extends readonly [RegisteredDriver, ...RegisteredDriver[]]>(drivers: D) {
  return z.discriminatedUnion('driver', drivers.map((d) => d.schema) as unknown as Schemas<D>);
}

/** The nature of a configured device: its driver's, or the one of its `kind`. */
export function natureOf(
  drivers: readonly RegisteredDriver[],
  config: DeviceConfigBase & { readonly kind?: unknown },
): NatureName | undefined {
  const nature = drivers.find((d) => d.driver === config.driver)?.nature;
  return typeof nature === 'object' ? nature.byKind[String(config.kind)] : nature;
}

/** Builds a device through the factory of its driver. */
export function createDevice(
  drivers: readonly RegisteredDriver[],
  config: DeviceConfigBase,
  ctx: DriverContext,
): Device {
  const driver = drivers.find((d) => d.driver === config.driver);
  if (!driver)
    throw new P2PError(
      ErrorCode.config,
      `${ctx.field}: driver "${config.driver}" of ${config.id} is not in this build`,
      {
        field: `${ctx.field}.driver`,
      },
    );
  return driver.create(config, ctx);
}
