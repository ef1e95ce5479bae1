import { ErrorCode, P2PError } from '../core/errors.js';
import { readGpioChips, SYSFS_GPIO, sysfsGpioNumber } from './gpio-numbering.js';

/** One GPIO line as an output (relay) or an input (a contact). */
export interface GpioLine {
  read(): Promise<0 | 1>;
  write(value: 0 | 1): Promise<void>;
  close(): Promise<void>;
}

/**
 * In-process GPIO lines by chip name and pin, for the bench and tests (and for reading back what
 * an output was set to): `mock:<chip>` in a config.
 */
export class MockGpio implements GpioLine {
  private static readonly lines = new Map<string, 0 | 1>();

  constructor(
    private readonly key: string,
    readonly direction: 'in' | 'out',
  ) {
    if (!MockGpio.lines.has(key)) MockGpio.lines.set(key, 0);
  }

  /** Drives a mock input from outside (a test or a simulated contact). */
  static set(key: string, value: 0 | 1): void {
    MockGpio.lines.set(key, value);
  }

  static get(key: string): 0 | 1 | undefined {
    return MockGpio.lines.get(key);
  }

  async read(): Promise<0 | 1> {
    return MockGpio.lines.get(this.key) ?? 0;
  }

  async write(value: 0 | 1): Promise<void> {
    if (this.direction !== 'out')
      throw new P2PError(ErrorCode.hal, `GPIO ${this.key} is an input`, { component: 'gpio' });
    MockGpio.lines.set(this.key, value);
  }

  async close(): Promise<void> {}
}

interface OnoffGpio {
  read(): Promise<0 | 1>;
  write(value: 0 | 1): Promise<void>;
  unexport(): void;
}

/**
 * A sysfs GPIO through the optional `onoff` module, loaded only when a real pin is used. `pin` is the
 * line on the controller labelled `chipLabel` (default: the Raspberry Pi's header, BCM numbering),
 * exported under the number sysfs gives it from the controller's base (`sysfsGpioNumber`).
 */
export async function openGpio(
  chip: string,
  pin: number,
  direction: 'in' | 'out',
  chipLabel?: string,
): Promise<GpioLine> {
  if (chip.startsWith('mock:')) return new MockGpio(`${chip.slice(5)}:${pin}`, direction);
  let Gpio: { new (pin: number, direction: 'in' | 'out'): OnoffGpio; accessible: boolean };
  try {
    const moduleName = 'onoff';
    ({ Gpio } = (await import(moduleName)) as { Gpio: typeof Gpio });
  } catch (err) {
    throw new P2PError(ErrorCode.unavailable, 'GPIO needs the onoff module, which is not available here', {
      component: 'gpio',
      cause: err,
    });
  }
  if (!Gpio.accessible) {
    throw new P2PError(ErrorCode.unavailable, `GPIO ${pin} is not accessible on this machine (no /sys/class/gpio)`, {
      component: 'gpio',
      hint: 'run on the gateway, as a user in the gpio group',
    });
  }
  const line = new Gpio(sysfsGpioNumber(pin, readGpioChips(SYSFS_GPIO), chipLabel), direction);
  return {
    read: () => line.read(),
    write: (v) => line.write(v),
    close: async () => line.unexport(),
  };
}
