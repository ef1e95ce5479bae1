import { z } from 'zod';
import { type GpioLine, openGpio } from '../hal/gpio.js';
import type { Device, RelayControl } from './device.js';
import { defineDriver } from './driver.js';
import type { PointData } from './natures.js';

/**
 * A relay on a GPIO output (load shedding, a heat pump's utility-lock contact) or a contact on a GPIO
 * input. The line opens in the background; until it has, the poll fails with the reason.
 */
export class GpioDevice implements Device {
  readonly backend = 'gpio';
  readonly relay: RelayControl | undefined;
  private line: GpioLine | undefined;
  private failure: unknown;
  private readonly opening: Promise<void>;

  constructor(
    readonly id: string,
    readonly kind: 'relay' | 'digital-input',
    open: () => Promise<GpioLine>,
    /** The output is active low (relay boards that switch on a 0). */
    private readonly activeLow = false,
  ) {
    this.opening = open().then(
      (line) => {
        this.line = line;
      },
      (err: unknown) => {
        this.failure = err;
      },
    );
    this.relay =
      kind === 'relay'
        ? {
            set: async (on: boolean) => {
              await this.opening;
              if (!this.line) throw this.failure;
              await this.line.write(on !== this.activeLow ? 1 : 0);
            },
          }
        : undefined;
  }

  async poll(): Promise<Record<string, PointData>> {
    await this.opening;
    if (!this.line) throw this.failure;
    const level = await this.line.read();
    return { active: (level === 1) !== this.activeLow };
  }

  async close(): Promise<void> {
    await this.opening;
    await this.line?.close();
  }
}

/**
 * Where the line is: `chip` is `gpio` (sysfs, the onoff module) or `mock:<name>` (in-process lines);
 * `pin` the line on its controller (on a Raspberry Pi the BCM GPIO number of the header's pinout);
 * `chipLabel` the controller's label in /sys/class/gpio/gpiochip*\/label, for a board other than a
 * Raspberry Pi.
 */
const gpioFields = {
  chip: z.string().regex(/^(gpio|mock:[A-Za-z0-9_-]+)$/, 'expected gpio or mock:<name>'),
  pin: z.number().int().min(0).max(1023),
  chipLabel: z.string().min(1).optional(),
  activeLow: z.boolean().default(false),
  bus: z.string().min(1).optional(),
};

/** Driver `gpio-relay`: a relay on a GPIO output (the Relay capability), switching a load. */
export const gpioRelayDriver = defineDriver({
  driver: 'gpio-relay',
  nature: 'switch',
  usages: ['load'],
  defaultUsage: 'load',
  fields: gpioFields,
  create: (d) => new GpioDevice(d.id, 'relay', () => openGpio(d.chip, d.pin, 'out', d.chipLabel), d.activeLow),
});

/** Driver `gpio-input`: a contact on a GPIO input (point `active`), e.g. a utility's lock signal. */
export const gpioInputDriver = defineDriver({
  driver: 'gpio-input',
  nature: 'switch',
  usages: ['load'],
  defaultUsage: 'load',
  fields: gpioFields,
  create: (d) => new GpioDevice(d.id, 'digital-input', () => openGpio(d.chip, d.pin, 'in', d.chipLabel), d.activeLow),
});
