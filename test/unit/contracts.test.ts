import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Contracts } from '../../src/platform/contracts.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { Membership } from '../../src/platform/membership.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
let n = 0;

function setup() {
  const db = openDatabase(join(tmp.dir, `contracts-${n++}.db`));
  const members = new Membership(db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
  for (const [id, role] of [
    ['house-1', 'prosumer'],
    ['agg', 'aggregator'],
    ['dso', 'dso'],
    ['house-2', 'prosumer'],
  ] as const) {
    members.register({ id, publicKey: generateKeyPair().publicKey, role, cell: 'c1' });
    if (id !== 'house-2') members.admit(id);
  }
  return new Contracts(db, members);
}

const dr = {
  kind: 'dr-service',
  provider: 'house-1',
  buyer: 'agg',
  from: '2026-06-01T00:00:00Z',
  to: '2026-09-01T00:00:00Z',
  capacityKW: 3,
  pricePerKWh: 0.25,
  baseline: { method: 'high-x-of-y', x: 4, y: 5 },
  meteringIntervalS: 900,
  tolerancePct: 10,
};

describe('contracts', () => {
  it('stores DR, bilateral and congestion-relief contracts between active members', () => {
    const c = setup();
    expect(c.add(dr).id).toBe(1);
    c.add({
      kind: 'bilateral-energy',
      provider: 'house-1',
      buyer: 'agg',
      from: dr.from,
      to: dr.to,
      energyKWhPerInterval: 1,
      intervalS: 900,
      pricePerKWh: 0.12,
    });
    c.add({
      kind: 'congestion-relief',
      provider: 'agg',
      buyer: 'dso',
      from: dr.from,
      to: dr.to,
      cell: 'c1',
      cellLimitKW: 250,
      pricePerKWh: 0.3,
    });
    expect(c.list().map((x) => x.kind)).toEqual(['dr-service', 'bilateral-energy', 'congestion-relief']);
    // Same kind and pair in a later, non-overlapping period is fine ([from, to) periods touch).
    c.add({ ...dr, from: '2026-09-01T00:00:00Z', to: '2026-12-01T00:00:00Z' });
    expect(c.list()).toHaveLength(4);
  });

  it('refuses unknown or inactive peers, overlaps and bad terms with a clear error; nothing changes', () => {
    const c = setup();
    c.add(dr);
    expect(() => c.add({ ...dr, buyer: 'nobody' })).toThrow(/unknown peer nobody/);
    expect(() => c.add({ ...dr, provider: 'house-2' })).toThrow(/house-2 is pending/);
    expect(() => c.add({ ...dr, from: '2026-08-31T00:00:00Z', to: '2026-10-01T00:00:00Z' })).toThrow(
      /overlaps dr-service contract 1/,
    );
    // The pair in the other direction is the same pair.
    expect(() => c.add({ ...dr, provider: 'agg', buyer: 'house-1' })).toThrow(/overlaps dr-service contract 1/);
    expect(() => c.add({ ...dr, baseline: { method: 'high-x-of-y', x: 0, y: 5 } })).toThrow(/baseline.x/);
    expect(() => c.add({ ...dr, to: dr.from })).toThrow(/before it starts/);
    expect(() =>
      c.add({
        kind: 'congestion-relief',
        provider: 'house-1',
        buyer: 'agg',
        from: dr.from,
        to: dr.to,
        cell: 'c1',
        cellLimitKW: 9,
        pricePerKWh: 0,
      }),
    ).toThrow(/not one/);
    expect(c.list()).toHaveLength(1);
  });
});
