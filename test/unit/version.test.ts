import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';
import { FIRMWARE_VERSION } from '../../src/core/version.js';

const packageVersion = (
  JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the firmware version', () => {
  it('is the version of package.json', () => {
    expect(packageVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(FIRMWARE_VERSION).toBe(packageVersion);
  });

  it('is what `p2p-edge --version` prints', async () => {
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    expect(await main(['--version'])).toBe(0);
    expect(written.join('').trim()).toBe(packageVersion);
  });
});
