import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import type { ModbusBusRegistry } from '../hal/modbus/bus.js';
import type { Device } from './device.js';
import type { NatureName } from './natures.js';

/**
 * What a driver is to the gateway: the schema of its device config and a factory, registered by name
 * (`registry.ts`). The gateway config's device list is built from the registered drivers, and the
 * gateway builds each device through its driver's factory.
 */

/**
 * What a device is for the gateway's balance: the connection point's meter (`grid`), a PV system
 * (`pv`), a consumer (`load`) or a battery (`battery`).
 */
export const DeviceUsage = z.enum(['grid', 'pv', 'load', 'battery']);
export type DeviceUsage = z.infer<typeof DeviceUsage>;

/** A device id: one segment of the process image's `<device id>.<point>` names. */
export const DeviceId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/,
    'expected 1-64 letters, digits, "-" or "_", starting with a letter or digit',
  );

/** A thing the devices of one gateway share, made by the first device that needs it (a simulated cell). */
export interface SharedKey<T> {
  readonly name: string;
  /** Only carries the type. */
  readonly type?: T;
}

export function sharedKey<T>(name: string): SharedKey<T> {
  return { name };
}

/** Everything a driver's factory gets besides the device's own config. */
export interface DriverContext {
  readonly clock: Clock;
  /** Modbus devices on one port or host:port share one bus (one request in flight). */
  readonly modbus: ModbusBusRegistry;
  /** Where the device is in the config (`devices[2]`), for errors that name the field. */
  readonly field: string;
  /** Every device of the gateway, as configured. */
  readonly devices: readonly DeviceConfigBase[];
  /** The value the gateway's devices share under `key`, made by `make` the first time. */
  shared<T>(key: SharedKey<T>, make: () => T): T;
}

/** What every device config has, whatever its driver. */
export interface DeviceConfigBase {
  readonly id: string;
  readonly driver: string;
  readonly usage: DeviceUsage;
}

type KindOf<Shape> = Shape extends { kind: z.ZodType<infer K extends string> } ? K : never;

/** One value for every device of a driver, or (for a driver whose config has a `kind`) one per kind. */
export type PerKind<Shape, T> = [KindOf<Shape>] extends [never]
  ? T
  : T | { readonly byKind: Readonly<Record<KindOf<Shape>, T>> };

export interface DriverSpec<Name extends string, Shape extends z.ZodRawShape, U extends DeviceUsage> {
  /** The `driver` value of a device config. */
  readonly driver: Name;
  /** The points its devices report (natures.ts). */
  readonly nature: PerKind<Shape, NatureName>;
  /** The usages a device of this driver may be configured with. */
  readonly usages: readonly U[];
  /** The usage when the config names none, so that configs written before `usage` existed keep their meaning. */
  readonly defaultUsage: PerKind<Shape, U>;
  /** The device config's own fields (besides `id`, `driver` and `usage`). */
  readonly fields: Shape;
  create(config: DeviceConfigOf<Name, Shape, U>, ctx: DriverContext): Device;
}

export type DeviceConfigOf<Name extends string, Shape extends z.ZodRawShape, U extends DeviceUsage> = {
  id: string;
  driver: Name;
  usage: U;
} & z.output<z.ZodObject<Shape>>;

/** A driver as the registry holds it. */
export interface RegisteredDriver {
  readonly driver: string;
  readonly nature: NatureName | { readonly byKind: Readonly<Record<string, NatureName>> };
  readonly usages: readonly DeviceUsage[];
  readonly defaultUsage: DeviceUsage | { readonly byKind: Readonly<Record<string, DeviceUsage>> };
  /** The device config: `id`, `driver`, `usage` and the driver's own fields; unknown keys refused. */
  readonly schema: z.ZodPipe<z.ZodObject, z.ZodTransform<DeviceConfigBase>>;
  create(config: DeviceConfigBase, ctx: DriverContext): Device;
}

/** Registers a driver's config fields, nature, usages and factory (see `registry.ts`). */
export function defineDriver<const Name extends string, Shape extends z.ZodRawShape, const U extends DeviceUsage>(
  spec: DriverSpec<Name, Shape, U>,
) {
  const nature = spec.nature as NatureName | { readonly byKind: Readonly<Record<string, NatureName>> };
  const defaultUsage = spec.defaultUsage as U | { readonly byKind: Readonly<Record<string, U>> };
  const usageOf = (d: { usage?: U | undefined; kind?: unknown }): U => {
    if (d.usage !== undefined) return d.usage;
    return typeof defaultUsage === 'string' ? defaultUsage : defaultUsage.byKind[String(d.kind)]!;
  };
  const schema = z
    .object({
      id: DeviceId,
      driver: z.literal(spec.driver),
      usage: z.enum(spec.usages as readonly U[] as [U, ...U[]]).optional(),
      ...spec.fields,
    })
    .strict()
    .transform((d) => ({ ...d, usage: usageOf(d as { usage?: U; kind?: unknown }) }) as DeviceConfigOf<Name, Shape, U>);
  return {
    driver: spec.driver,
    nature,
    usages: spec.usages,
    defaultUsage,
    schema,
    create: spec.create,
  } satisfies RegisteredDriver;
}
