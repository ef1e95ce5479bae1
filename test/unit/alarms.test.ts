import { describe, expect, it } from 'vitest';
import { AlarmBook } from '../../src/agent/alarms.js';
import { alarmConvergence } from '../../src/agent/roles/market-interval.js';
import type { RoleContext } from '../../src/agent/roles/role.js';

const deviceDown = (text: string) => ({
  kind: 'device-down' as const,
  severity: 'warning' as const,
  source: 'pv-1',
  text,
});

describe('AlarmBook', () => {
  it('keeps an alarm from when it was raised until it is cleared, the text following the latest figures', () => {
    const book = new AlarmBook();
    expect(book.raise('device-down:pv-1', deviceDown('pv-1 not answering: timeout'), 1000)).toBe('raised');
    expect(book.raise('device-down:pv-1', deviceDown('pv-1 not answering: CRC error'), 2000)).toBeUndefined();
    expect(book.list()).toEqual([
      {
        id: 'device-down:pv-1',
        kind: 'device-down',
        severity: 'warning',
        source: 'pv-1',
        text: 'pv-1 not answering: CRC error',
        since: 1000,
      },
    ]);
    expect(book.isActive('device-down:pv-1')).toBe(true);
    expect(book.clear('device-down:pv-1', 5000)).toMatchObject({ since: 1000, clearedAt: 5000 });
    expect(book.clear('device-down:pv-1', 6000)).toBeUndefined();
    expect(book.isActive('device-down:pv-1')).toBe(false);
    expect(book.list()).toHaveLength(1);
  });

  it('lists active alarms first (newest first), then the cleared ones (most recently cleared first), bounded', () => {
    const book = new AlarmBook(2);
    for (let i = 1; i <= 5; i++) book.raise(`a${i}`, deviceDown(`a${i}`), i * 1000);
    book.clear('a1', 10_000);
    book.clear('a3', 11_000);
    book.clear('a2', 12_000);
    expect(book.list().map((a) => [a.id, a.clearedAt])).toEqual([
      ['a5', undefined],
      ['a4', undefined],
      ['a2', 12_000],
      ['a3', 11_000],
    ]);
    // Raised again after it cleared: a new alarm with its own start.
    book.raise('a2', deviceDown('a2 again'), 13_000);
    expect(book.list()[0]).toMatchObject({ id: 'a2', since: 13_000 });
    expect(book.list()[0]?.clearedAt).toBeUndefined();
  });

  it('clears every active alarm a predicate picks', () => {
    const book = new AlarmBook();
    const dispute = { kind: 'settlement-dispute' as const, severity: 'warning' as const, text: 'disputed' };
    book.raise('settlement-dispute:u1:h1', { ...dispute, source: 'h1' }, 1);
    book.raise('settlement-dispute:u1:h2', { ...dispute, source: 'h2' }, 2);
    book.raise('settlement-dispute:u2:h1', { ...dispute, source: 'h1' }, 3);
    const cleared = book.clearWhere((a) => a.id.startsWith('settlement-dispute:u1:'), 10);
    expect(cleared.map((a) => a.id).sort()).toEqual(['settlement-dispute:u1:h1', 'settlement-dispute:u1:h2']);
    expect(book.isActive('settlement-dispute:u2:h1')).toBe(true);
  });

  it('counts the active alarms for every kind and severity, zero included', () => {
    const book = new AlarmBook();
    book.raise('device-down:pv-1', deviceDown('x'), 1);
    book.raise('device-down:pv-2', { ...deviceDown('y'), source: 'pv-2' }, 2);
    book.raise('voltage-high:b3', { kind: 'voltage-violation', severity: 'critical', source: 'b3', text: 'z' }, 3);
    book.clear('device-down:pv-2', 4);
    const counts = book.activeCounts();
    expect(counts).toHaveLength(12);
    expect(counts.find((c) => c.kind === 'device-down' && c.severity === 'warning')?.count).toBe(1);
    expect(counts.find((c) => c.kind === 'voltage-violation' && c.severity === 'critical')?.count).toBe(1);
    expect(counts.reduce((n, c) => n + c.count, 0)).toBe(2);
  });

  it('hands out copies: changing a listed alarm does not change the book', () => {
    const book = new AlarmBook();
    book.raise('device-down:pv-1', deviceDown('x'), 1);
    const [listed] = book.list();
    listed!.text = 'changed';
    expect(book.list()[0]?.text).toBe('x');
  });
});

describe('market-not-converged', () => {
  const alarms = new AlarmBook();
  let now = Date.UTC(2026, 5, 21, 12);
  const ctx = {
    alarms,
    clock: { now: () => now },
    config: { gateway: { id: 'tx-a' } },
  } as unknown as RoleContext;
  const session = (converged: boolean) => ({
    session: String(Date.UTC(2026, 5, 21, 12)),
    converged,
    rounds: 500,
    maxImbalanceKWh: 0.0421,
  });

  it('is raised by a session that did not converge and cleared by the next that did', () => {
    alarmConvergence(ctx, 'cell', session(false), 15 * 60_000);
    expect(alarms.list()).toEqual([
      {
        id: 'market-not-converged:cell',
        kind: 'market-not-converged',
        severity: 'warning',
        source: 'tx-a',
        text: 'cell market interval 2026-06-21T12:00:00.000Z–12:15:00.000Z did not settle in its time (500 rounds): nothing traded with neighbours, its own devices and grid connection balance it',
        since: now,
      },
    ]);
    now += 15 * 60_000;
    alarmConvergence(ctx, 'upper', session(true), 15 * 60_000);
    expect(alarms.isActive('market-not-converged:cell')).toBe(true);
    alarmConvergence(ctx, 'cell', session(true), 15 * 60_000);
    expect(alarms.list()[0]?.clearedAt).toBe(now);
  });
});
