import type { PointData } from '../agent/process-image.js';
import type { GpioLine } from '../hal/gpio.js';
import type { Device, RelayControl } from './device.js';

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
