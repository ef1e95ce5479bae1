import { describe, expect, it } from 'vitest';
import { ProcessImage } from '../../src/agent/process-image.js';

describe('ProcessImage', () => {
  it('freezes values per cycle: later writes do not change the snapshot', () => {
    const img = new ProcessImage(3000);
    img.write('pv.acPowerW', 100, 0);
    const snap = img.freeze(0);
    img.write('pv.acPowerW', 200, 500);
    expect(snap.number('pv.acPowerW')).toBe(100);
    expect(img.freeze(1000).number('pv.acPowerW')).toBe(200);
  });

  it('marks values older than the limit stale, and stale values read as absent', () => {
    const img = new ProcessImage(3000);
    img.write('pv.acPowerW', 100, 0);
    const snap = img.freeze(3001);
    expect(snap.get('pv.acPowerW')?.quality).toBe('stale');
    expect(snap.number('pv.acPowerW')).toBeUndefined();
  });

  it('marks every point of a failed device bad but keeps the last value for diagnosis', () => {
    const img = new ProcessImage(3000);
    img.write('pv.acPowerW', 100, 0);
    img.write('meter.acPowerW', 50, 0);
    img.markDeviceBad('pv');
    const snap = img.freeze(10);
    expect(snap.get('pv.acPowerW')).toMatchObject({ value: 100, quality: 'bad' });
    expect(snap.number('pv.acPowerW')).toBeUndefined();
    expect(snap.number('meter.acPowerW')).toBe(50);
    expect(Object.keys(snap.byDevice())).toEqual(['pv', 'meter']);
  });
});
