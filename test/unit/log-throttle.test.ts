import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../../src/core/log-throttle.js';

describe('LogThrottle', () => {
  it('lets the first event of a key through, then one a period with how many it stands for', () => {
    const t = new LogThrottle(60_000);
    expect(t.take('primary', 0)).toBe(1);
    for (let s = 1; s < 60; s++) expect(t.take('primary', s * 1000)).toBe(0);
    expect(t.take('secondary', 30_000)).toBe(1); // keys are apart
    expect(t.take('primary', 60_000)).toBe(60); // this one and the 59 held back
    expect(t.take('primary', 60_001)).toBe(0);
    expect(t.take('primary', 500_000)).toBe(2);
    expect(t.take('primary', 600_000)).toBe(1);
  });
});
