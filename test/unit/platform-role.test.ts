import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { generateKeyPair } from '../../src/core/signing.js';
import { demoFeeder } from '../../src/grid/demo-feeder.js';
import { buildRadialFeeder } from '../../src/grid/feeder.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { Readings } from '../../src/platform/readings.js';
import { CompressedDay } from '../../src/sim/profiles.js';
import { SimulatedCell } from '../../src/sim/simulated-cell.js';
import { SimulatedDevice } from '../../src/sim/simulated-device.js';
import { memoryGateways } from '../helpers/memory-gateways.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';

/** A platform database with inv-1 admitted (inv-2 stays a stranger). */
function platformDb(file: string): string {
  const ledger = Ledger.open(file);
  const members = new Membership(ledger.db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
  members.register({ id: 'inv-1', publicKey: generateKeyPair().publicKey, role: 'prosumer', cell: 'c1' });
  members.admit('inv-1');
  ledger.close();
  return file;
}

/** Gateways of cell c1 on one in-memory bus and a virtual clock. */
function cellGateways(bus: MemoryBus, clock: VirtualClock) {
  const scheduler = { primaryMs: 1000, secondaryMs: 5000, tertiaryMs: 600_000 };
  return memoryGateways({ bus, clock, log, stateDir: tmp.dir, scheduler });
}

describe('the platform role in the runtime', () => {
  it('resumes from its database: a platform replaced mid-run stores every interval once, as one that ran throughout', async () => {
    const dbs = ['steady', 'replaced'].map((name) => platformDb(join(tmp.dir, `${name}.db`)));
    const clock = new VirtualClock(Date.UTC(2026, 5, 21, 19, 0));
    const bus = new MemoryBus();
    const cell = new SimulatedCell(buildRadialFeeder(demoFeeder(1)), new CompressedDay(clock.now(), 1, 19));
    cell.addDevice({ id: 'load-0', kind: 'household-meter', bus: 'b1', ratedW: 3000 }, clock.now());
    const make = cellGateways(bus, clock);
    const platform = (id: string, db: string) =>
      make({ gateway: { id, kind: 'platform', cell: 'c1' }, platform: { db, cells: ['c1'], meteringIntervalS: 60 } });
    const house = make(
      {
        gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1', bus: 'b1' },
        devices: [{ id: 'load-0', driver: 'simulated', kind: 'household-meter', ratedW: 3000, bus: 'b1' }],
      },
      [new SimulatedDevice('load-0', 'household-meter', cell, 3000)],
    );
    const steady = platform('platform-1', dbs[0]!);
    let replaced = platform('platform-2', dbs[1]!);
    for (const g of [steady, replaced, house]) await g.start();
    await clock.advance(150_000);
    // Replaced in the middle of an interval, gone for 20 s; the house's outbox resends what it missed.
    await replaced.stop();
    await clock.advance(20_000);
    replaced = platform('platform-2', dbs[1]!);
    await replaced.start();
    await clock.advance(250_000);
    for (const g of [house, steady, replaced]) await g.stop();

    const stored = dbs.map((db) => {
      const ledger = Ledger.open(db);
      const list = new Readings(ledger.db, new Membership(ledger.db, undefined, () => 0)).list({ member: 'inv-1' });
      ledger.close();
      return list;
    });
    expect(stored[0]!.length).toBeGreaterThanOrEqual(5);
    expect(stored[1]!.map((r) => r.timeMs)).toEqual(stored[0]!.map((r) => r.timeMs));
    stored[1]!.forEach((r, i) => {
      expect(r.energyKWh).toBeCloseTo(stored[0]![i]!.energyKWh, 6);
    });
  });

  it("stores each member's energy per metering interval from the cell's meter readings; non-members are dropped", async () => {
    const db = platformDb(join(tmp.dir, 'platform.db'));
    const clock = new VirtualClock(Date.UTC(2026, 5, 21, 19, 0));
    const bus = new MemoryBus();
    const cell = new SimulatedCell(buildRadialFeeder(demoFeeder(2)), new CompressedDay(clock.now(), 1, 19));
    const make = cellGateways(bus, clock);
    const houses = ['inv-1', 'inv-2'].map((id, i) => {
      cell.addDevice({ id: `load-${i}`, kind: 'household-meter', bus: `b${i + 1}`, ratedW: 3000 }, clock.now());
      return make(
        {
          gateway: { id, kind: 'inverter', cell: 'c1', bus: `b${i + 1}` },
          devices: [{ id: `load-${i}`, driver: 'simulated', kind: 'household-meter', ratedW: 3000, bus: `b${i + 1}` }],
        },
        [new SimulatedDevice(`load-${i}`, 'household-meter', cell, 3000)],
      );
    });
    const platform = make({
      gateway: { id: 'platform-1', kind: 'platform', cell: 'c1' },
      platform: { db, cells: ['c1'], meteringIntervalS: 60 },
    });
    for (const g of [platform, ...houses]) await g.start();
    await clock.advance(5 * 60_000 + 10_000);
    const state = platform.state().roles.platform as { readingsStored: number; fromNonMembers: number };
    for (const g of [...houses, platform]) await g.stop();

    expect(state.readingsStored).toBeGreaterThanOrEqual(4);
    expect(state.fromNonMembers).toBeGreaterThan(0); // inv-2 is not a member
    const ledger = Ledger.open(db);
    const stored = new Readings(ledger.db, new Membership(ledger.db, undefined, () => 0)).list({ member: 'inv-1' });
    ledger.close();
    expect(stored.length).toBe(state.readingsStored);
    // An evening household near its peak: roughly 3 kW × 1 min = 0.05 kWh a minute.
    for (const r of stored.slice(1)) expect(r.energyKWh).toBeGreaterThan(0.02);
    expect(stored.every((r) => r.timeMs % 60_000 === 0)).toBe(true);
  });
});
