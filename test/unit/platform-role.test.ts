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

/** Gateways of cell c1 on one in-memory bus and a virtual clock; a metering (market) interval of a minute. */
function cellGateways(bus: MemoryBus, clock: VirtualClock) {
  const scheduler = { primaryMs: 1000, secondaryMs: 5000, tertiaryMs: 60_000 };
  return memoryGateways({ bus, clock, log, stateDir: tmp.dir, scheduler });
}

/** A house whose gateway sends its metering intervals to platform-1. */
const houseConfig = (id: string, bus: string, device: string) => ({
  gateway: { id, kind: 'inverter' as const, cell: 'c1', bus },
  comms: { reliability: { platform: 'platform-1' } },
  devices: [{ id: device, driver: 'simulated' as const, kind: 'household-meter' as const, ratedW: 3000, bus }],
});

describe('the platform role in the runtime', () => {
  it('resumes from its database: a platform replaced mid-run stores every interval the house sent, once', async () => {
    const db = platformDb(join(tmp.dir, 'replaced.db'));
    const clock = new VirtualClock(Date.UTC(2026, 5, 21, 19, 0));
    const bus = new MemoryBus();
    const cell = new SimulatedCell(buildRadialFeeder(demoFeeder(1)), new CompressedDay(clock.now(), 1, 19));
    cell.addDevice({ id: 'load-0', kind: 'household-meter', bus: 'b1', ratedW: 3000 }, clock.now());
    const make = cellGateways(bus, clock);
    const platform = () =>
      make({
        gateway: { id: 'platform-1', kind: 'platform', cell: 'c1' },
        platform: { db, cells: ['c1'], meteringIntervalS: 60 },
      });
    const house = make(houseConfig('inv-1', 'b1', 'load-0'), [
      new SimulatedDevice('load-0', 'household-meter', cell, 3000),
    ]);
    let replaced = platform();
    for (const g of [replaced, house]) await g.start();
    await clock.advance(150_000);
    // Replaced in the middle of an interval, gone for 80 s; the house's outbox resends what it missed.
    await replaced.stop();
    await clock.advance(80_000);
    replaced = platform();
    await replaced.start();
    await clock.advance(250_000);
    const sent = (house.state().roles.prosumer as { intervalsPublished: number }).intervalsPublished;
    for (const g of [house, replaced]) await g.stop();

    const ledger = Ledger.open(db);
    const intervals = ledger.db
      .prepare(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT from_ms) AS distinct_from FROM platform_meter_intervals WHERE member = 'inv-1'",
      )
      .get() as { n: number; distinct_from: number };
    const readings = new Readings(ledger.db, new Membership(ledger.db, undefined, () => 0)).list({ member: 'inv-1' });
    ledger.close();
    expect(sent).toBeGreaterThanOrEqual(7);
    expect(intervals).toEqual({ n: sent, distinct_from: sent });
    // Written to the readings one interval after its end, every one, with no gap.
    expect(readings.length).toBeGreaterThanOrEqual(sent - 2);
    readings.slice(1).forEach((r, i) => {
      expect(r.timeMs - readings[i]!.timeMs).toBe(60_000);
    });
  });

  it("stores each member's energy per metering interval as its house sent it; non-members are dropped", async () => {
    const db = platformDb(join(tmp.dir, 'platform.db'));
    const clock = new VirtualClock(Date.UTC(2026, 5, 21, 19, 0));
    const bus = new MemoryBus();
    const cell = new SimulatedCell(buildRadialFeeder(demoFeeder(2)), new CompressedDay(clock.now(), 1, 19));
    const make = cellGateways(bus, clock);
    const houses = ['inv-1', 'inv-2'].map((id, i) => {
      cell.addDevice({ id: `load-${i}`, kind: 'household-meter', bus: `b${i + 1}`, ratedW: 3000 }, clock.now());
      return make(houseConfig(id, `b${i + 1}`, `load-${i}`), [
        new SimulatedDevice(`load-${i}`, 'household-meter', cell, 3000),
      ]);
    });
    const platform = make({
      gateway: { id: 'platform-1', kind: 'platform', cell: 'c1' },
      platform: { db, cells: ['c1'], meteringIntervalS: 60 },
    });
    for (const g of [platform, ...houses]) await g.start();
    await clock.advance(5 * 60_000 + 10_000);
    const state = platform.state().roles.platform as { readingsStored: number; fromNonMembers: number };
    for (const g of [...houses, platform]) await g.stop();

    expect(state.readingsStored).toBeGreaterThanOrEqual(3);
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
