import { describe, expect, it } from 'vitest';
import { OngoingProblems } from '../../src/core/ongoing-problems.js';

describe('OngoingProblems', () => {
  it('says a problem began once, not again while it goes on, and that it ended once', () => {
    const p = new OngoingProblems();
    expect(p.ended('disk')).toBeUndefined(); // nothing going on: nothing to log
    expect(p.failed('disk', 'ENOSPC', 1000)).toBe('began');
    for (let t = 2000; t <= 10_000; t += 1000) expect(p.failed('disk', 'ENOSPC', t)).toBeUndefined();
    expect(p.current('disk')).toBe('ENOSPC');
    expect(p.ended('disk', 12_000)).toEqual({ message: 'ENOSPC', durationMs: 11_000, failures: 10 });
    expect(p.ended('disk', 13_000)).toBeUndefined();
    expect(p.current('disk')).toBeUndefined();
    expect(p.failed('disk', 'ENOSPC', 14_000)).toBe('began'); // a new outage
  });

  it('says when a problem going on fails differently, and keeps its start', () => {
    const p = new OngoingProblems();
    expect(p.failed('meter-1', 'timeout', 0)).toBe('began');
    expect(p.failed('meter-1', 'CRC error', 1000)).toBe('changed');
    expect(p.failed('meter-1', 'CRC error', 2000)).toBeUndefined();
    expect(p.failed('meter-1', 'timeout', 3000)).toBe('changed');
    expect(p.ended('meter-1', 5000)).toEqual({ message: 'timeout', durationMs: 5000, failures: 4 });
  });

  it('keeps keys apart', () => {
    const p = new OngoingProblems<string>();
    expect(p.failed('prosumer/primary', 'boom')).toBe('began');
    expect(p.failed('prosumer/secondary', 'boom')).toBe('began');
    expect(p.ended('prosumer/primary')).toMatchObject({ message: 'boom' });
    expect(p.failed('prosumer/secondary', 'boom')).toBeUndefined();
    expect(p.current('prosumer/primary')).toBeUndefined();
  });
});
