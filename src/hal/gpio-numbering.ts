import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, P2PError } from '../core/errors.js';

/**
 * Which sysfs GPIO number a pin of a GPIO controller has. The sysfs interface numbers every line
 * from its controller's `base`: 0 for the Raspberry Pi's header controller on kernels before 6.6,
 * 512 on Raspberry Pi OS since kernel 6.6 (raspberrypi/linux#6084), 571 for the Pi 5's RP1. Exporting
 * BCM 17 as 17 there fails with EINVAL; it is 512 + 17. So the number is read, never assumed.
 */

/** A controller as `/sys/class/gpio/gpiochipN/{label,base,ngpio}` describe it. */
export interface GpioChip {
  /** Its directory name, `gpiochip<base>`. */
  name: string;
  label: string;
  base: number;
  ngpio: number;
}

/**
 * The labels of the controllers whose lines are the Raspberry Pi's 40-pin header, numbered like the
 * BCM GPIOs: Pi 1-3 and Zero (bcm2835), Pi 4 and 400 (bcm2711), Pi 5 (its RP1 I/O chip).
 */
export const HEADER_GPIO_LABELS = ['pinctrl-bcm2835', 'pinctrl-bcm2711', 'pinctrl-rp1'] as const;

export const SYSFS_GPIO = '/sys/class/gpio';

/** The controllers the kernel lists under `sysfsRoot`; none where there is no sysfs GPIO. */
export function readGpioChips(sysfsRoot = SYSFS_GPIO): GpioChip[] {
  let names: string[];
  try {
    names = readdirSync(sysfsRoot).filter((n) => n.startsWith('gpiochip'));
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const read = (file: string) => readFileSync(join(sysfsRoot, name, file), 'utf8').trim();
    try {
      const base = Number(read('base'));
      const ngpio = Number(read('ngpio'));
      if (!Number.isInteger(base) || !Number.isInteger(ngpio)) return [];
      return [{ name, label: read('label'), base, ngpio }];
    } catch {
      return []; // a controller going away while it is read
    }
  });
}

/**
 * The sysfs number of line `pin` of the controller labelled `chipLabel`, or of the Raspberry Pi's
 * header controller when no label is given (`pin` is then the BCM GPIO number, as on the header's
 * pinout).
 */
export function sysfsGpioNumber(pin: number, chips: readonly GpioChip[], chipLabel?: string): number {
  const listed = chips.map((c) => `${c.name} "${c.label}"`).join(', ') || 'none';
  const chip = chipLabel
    ? chips.find((c) => c.label === chipLabel)
    : chips.find((c) => (HEADER_GPIO_LABELS as readonly string[]).includes(c.label));
  if (!chip) {
    throw new P2PError(
      ErrorCode.unavailable,
      chipLabel
        ? `no GPIO controller labelled "${chipLabel}" (controllers: ${listed})`
        : `no Raspberry Pi header GPIO controller (${HEADER_GPIO_LABELS.join(', ')}) here (controllers: ${listed})`,
      { component: 'gpio', hint: 'set chipLabel to the label of the controller the pin is on' },
    );
  }
  if (pin >= chip.ngpio) {
    throw new P2PError(
      ErrorCode.config,
      `GPIO pin ${pin} is beyond ${chip.name} "${chip.label}" (${chip.ngpio} lines)`,
      {
        component: 'gpio',
        field: 'pin',
      },
    );
  }
  return chip.base + pin;
}
