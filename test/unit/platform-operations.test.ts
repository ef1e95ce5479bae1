import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Contracts } from '../../src/platform/contracts.js';
import { DrEvents } from '../../src/platform/dr-events.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { Readings } from '../../src/platform/readings.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const Q = 900_000; // 15-minute metering
const EVENT_START = Date.parse('2026-07-10T17:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function platform(name: string) {
  const ledger = Ledger.open(join(tmp.dir, `${name}.db`));
  const op = generateKeyPair();
  const operator = { id: 'op', ...op };
  const members = new Membership(ledger.db, { id: 'op', privateKey: op.privateKey }, () => Date.now());
  for (const [id, role] of [
    ['house-1', 'prosumer'],
    ['agg-1', 'aggregator'],
  ] as const) {
    members.register({ id, publicKey: generateKeyPair().publicKey, role, cell: 'cell-a' });
    members.admit(id);
  }
  const readings = new Readings(ledger.db, members);
  const contracts = new Contracts(ledger.db, members);
  const events = new DrEvents(ledger, contracts, readings);
  return { ledger, members, readings, contracts, events, operator };
}

const drContract = (baseline: object) => ({
  kind: 'dr-service',
  provider: 'house-1',
  buyer: 'agg-1',
  from: '2026-07-01T00:00:00Z',
  to: '2026-08-01T00:00:00Z',
  capacityKW: 2,
  pricePerKWh: 0.3,
  baseline,
  meteringIntervalS: 900,
  tolerancePct: 10,
});

/** Readings of house-1 at the interval ends of [startMs, startMs + n·Q). */
const batch = (startMs: number, kWh: number[]) => ({
  readings: kWh.map((energyKWh, k) => ({
    member: 'house-1',
    meter: 'main',
    time: iso(startMs + (k + 1) * Q),
    energyKWh,
  })),
});

describe('meter readings', () => {
  it('stores a batch whole; a duplicate, an out-of-order reading or a non-member refuses it and changes nothing', () => {
    const p = platform('readings');
    expect(p.readings.add(batch(EVENT_START, [1, 1, 1]))).toBe(3);
    expect(() => p.readings.add(batch(EVENT_START + 2 * Q, [1, 1]))).toThrow(/duplicated reading/);
    expect(() => p.readings.add(batch(EVENT_START - 4 * Q, [1]))).toThrow(/out of order/);
    expect(() =>
      p.readings.add({ readings: [{ member: 'ghost', meter: 'm', time: iso(EVENT_START), energyKWh: 1 }] }),
    ).toThrow(/readings\[0\]: ghost is not an active member/);
    expect(() =>
      p.readings.add({ readings: [{ member: 'house-1', meter: 'main', time: 'noon', energyKWh: 1 }] }),
    ).toThrow(/readings\[0\]\.time: expected an ISO 8601 time/);
    expect(p.readings.list()).toHaveLength(3);
    p.ledger.close();
  });
});

describe('DR events: measurement and verification from stored readings', () => {
  it('metered before/after: 1 kWh per quarter before, 0.4 during → 1.2 kWh delivered of 1.0 contracted, met', () => {
    const p = platform('before-after');
    const c = p.contracts.add(drContract({ method: 'metered-before-after', beforeMinutes: 60 }));
    p.readings.add(batch(EVENT_START - 4 * Q, [1, 1, 1, 1, 0.4, 0.4]));
    const e = p.events.add({ contract: c.id, start: iso(EVENT_START), end: iso(EVENT_START + 2 * Q) });
    expect(() => p.events.add({ contract: c.id, start: iso(EVENT_START + Q), end: iso(EVENT_START + 3 * Q) })).toThrow(
      /overlaps event/,
    );
    expect(() => p.events.add({ contract: c.id, start: '2026-09-01T00:00:00Z', end: '2026-09-01T01:00:00Z' })).toThrow(
      /outside contract/,
    );
    const { event, entry } = p.events.evaluate(e.id, p.operator, '2026-07-10T18:00:00Z');
    expect(event.result?.baselineKWh).toEqual([1, 1]);
    expect(event.result?.deliveredKWh).toBeCloseTo(1.2, 9);
    expect(event.result?.contractedKWh).toBeCloseTo(1.0, 9); // 2 kW × 30 min
    expect(event.result?.met).toBe(true);
    expect(entry.kind).toBe('dr-event');
    expect(() => p.events.evaluate(e.id, p.operator, '2026-07-10T18:01:00Z')).toThrow(/already evaluated/);
    expect(p.ledger.verify().ok).toBe(true);
    p.ledger.close();
  });

  it('high 2 of 3: the two highest of the last three days in the event window; a day with an event is skipped', () => {
    const p = platform('high-x-of-y');
    const c = p.contracts.add(drContract({ method: 'high-x-of-y', x: 2, y: 3 }));
    const DAY = 86_400_000;
    // Four days back to one day back, the same two quarters: 0.8, 1.2, (an event day), 1.0, 0.6 kWh per quarter.
    p.readings.add(batch(EVENT_START - 5 * DAY, [0.8, 0.8]));
    p.readings.add(batch(EVENT_START - 4 * DAY, [1.2, 1.2]));
    p.readings.add(batch(EVENT_START - 3 * DAY, [0.1, 0.1]));
    p.readings.add(batch(EVENT_START - 2 * DAY, [1.0, 1.0]));
    p.readings.add(batch(EVENT_START - 1 * DAY, [0.6, 0.6]));
    p.readings.add(batch(EVENT_START, [0.3, 0.3]));
    p.events.add({ contract: c.id, start: iso(EVENT_START - 3 * DAY), end: iso(EVENT_START - 3 * DAY + 2 * Q) });
    const e = p.events.add({ contract: c.id, start: iso(EVENT_START), end: iso(EVENT_START + 2 * Q) });
    const { event } = p.events.evaluate(e.id, p.operator, '2026-07-10T18:00:00Z');
    // Eligible: days −1 (0.6), −2 (1.0), −4 (1.2); the highest two: 1.2 and 1.0 → 1.1 per quarter.
    expect(event.result?.baselineKWh.map((x) => Number(x.toFixed(9)))).toEqual([1.1, 1.1]);
    expect(event.result?.deliveredKWh).toBeCloseTo(1.6, 9); // 2 × (1.1 − 0.3)
    p.ledger.close();
  });

  it('missing readings during the event: a clear error, the event stays unevaluated', () => {
    const p = platform('missing');
    const c = p.contracts.add(drContract({ method: 'metered-before-after', beforeMinutes: 30 }));
    const e = p.events.add({ contract: c.id, start: iso(EVENT_START), end: iso(EVENT_START + Q) });
    expect(() => p.events.evaluate(e.id, p.operator, '2026-07-10T18:00:00Z')).toThrow(/readings of house-1 missing/);
    expect(p.events.get(e.id)?.result).toBeNull();
    expect(p.ledger.entries()).toHaveLength(0);
    p.ledger.close();
  });
});
