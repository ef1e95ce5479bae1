import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type GpioChip, readGpioChips, sysfsGpioNumber } from '../../src/hal/gpio-numbering.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

/** A /sys/class/gpio as the kernel lays it out: export, unexport and a directory per controller. */
function fakeSysfs(name: string, chips: { label: string; base: number; ngpio: number }[]): string {
  const root = join(tmp.dir, name);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'export'), '');
  writeFileSync(join(root, 'unexport'), '');
  for (const c of chips) {
    const dir = join(root, `gpiochip${c.base}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'label'), `${c.label}\n`);
    writeFileSync(join(dir, 'base'), `${c.base}\n`);
    writeFileSync(join(dir, 'ngpio'), `${c.ngpio}\n`);
  }
  return root;
}

describe('sysfs GPIO numbers from the controller base', () => {
  it('kernels before 6.6: the header controller from 0, BCM 17 is 17', () => {
    // Raspberry Pi 4 on a 6.1 kernel: the SoC's controller and the firmware's expander.
    const root = fakeSysfs('pi4-6.1', [
      { label: 'pinctrl-bcm2711', base: 0, ngpio: 58 },
      { label: 'raspberrypi-exp-gpio', base: 504, ngpio: 8 },
    ]);
    expect(sysfsGpioNumber(17, readGpioChips(root))).toBe(17);
  });

  it('Raspberry Pi OS since 6.6: the same controller from 512, BCM 17 is 529', () => {
    const root = fakeSysfs('pi4-6.6', [
      { label: 'pinctrl-bcm2711', base: 512, ngpio: 58 },
      { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
    ]);
    const chips = readGpioChips(root);
    expect(chips.map((c) => c.name).sort()).toEqual(['gpiochip512', 'gpiochip570']);
    expect(sysfsGpioNumber(17, chips)).toBe(529);
    expect(sysfsGpioNumber(0, chips)).toBe(512);
  });

  it('a Pi 5: the header on the RP1 controller, whatever its base', () => {
    const chips: GpioChip[] = [
      { name: 'gpiochip512', label: 'gpio-brcmstb@107d508500', base: 512, ngpio: 32 },
      { name: 'gpiochip571', label: 'pinctrl-rp1', base: 571, ngpio: 54 },
    ];
    expect(sysfsGpioNumber(17, chips)).toBe(588);
  });

  it('another board: the controller named by its label', () => {
    const root = fakeSysfs('sunxi', [
      { label: 'r_pio', base: 352, ngpio: 32 },
      { label: '1c20800.pinctrl', base: 0, ngpio: 224 },
    ]);
    expect(sysfsGpioNumber(10, readGpioChips(root), 'r_pio')).toBe(362);
    expect(() => sysfsGpioNumber(10, readGpioChips(root))).toThrow(
      /no Raspberry Pi header GPIO controller .* \(controllers: .*gpiochip352 "r_pio"/,
    );
    expect(() => sysfsGpioNumber(10, readGpioChips(root), 'pinctrl-bcm2711')).toThrow(
      /no GPIO controller labelled "pinctrl-bcm2711"/,
    );
  });

  it('a pin beyond the controller is refused naming it; no sysfs at all lists no controller', () => {
    const chips = readGpioChips(fakeSysfs('pi3', [{ label: 'pinctrl-bcm2835', base: 512, ngpio: 54 }]));
    expect(() => sysfsGpioNumber(54, chips)).toThrow(/pin 54 is beyond gpiochip512 "pinctrl-bcm2835" \(54 lines\)/);
    expect(readGpioChips(join(tmp.dir, 'no-such-sysfs'))).toEqual([]);
    expect(() => sysfsGpioNumber(17, [])).toThrow(/controllers: none/);
  });
});
