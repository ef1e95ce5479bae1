import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Backoff } from '../../src/comms/backoff.js';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { DEFAULT_OUTBOX, Outbox } from '../../src/comms/outbox.js';
import { ReplayGuard, STREAM_COUNT, streamOf } from '../../src/comms/replay-guard.js';
import { VirtualClock } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/prng.js';
import { tempDir } from '../helpers/net.js';
import { metricValue, signedCell, signedEndpoint, tick } from '../helpers/signed-cell.js';

/** The transformer gateway and the platform read the cell's meter readings (they are sealed to them). */
const KINDS = { tx: 'transformer', platform: 'platform' };

const tmp = tempDir('p2p-comms-rel-');
afterAll(() => tmp.remove());
let n = 0;
const makeDir = () => join(tmp.dir, String(++n));
const T0 = 1_800_000_000_000;

/** A seeded source for the lossy bus, so that a failure can be replayed. */
const seeded = seededRandom;

describe('reliability by class over a lossy link (30 % of messages and acks lost)', () => {
  it('market and DR messages to a target, and meter readings to the cell, all arrive exactly once', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus('lossy', { fraction: 0.3, random: seeded(7) });
    const p = signedCell(['tx', 'inv'], makeDir(), T0, 'c1', KINDS);
    // The resend jitter seeded as well. A message and its ack both get through with probability 0.49:
    // with resends at most 2 s apart each has 15 or more chances before the check (0.51^15 ≈ 4·10⁻⁵).
    const retry = { retryInitialMs: 200, retryMaxMs: 2000 };
    const tx = signedEndpoint(bus, p, 'tx', clock, { ...retry, random: seeded(8) });
    const inv = signedEndpoint(bus, p, 'inv', clock, { ...retry, random: seeded(9) });
    await tx.t.start();
    await inv.t.start();
    inv.t.subscribeUnchecked({ cell: 'c1', cls: 'mkt', type: 'dispatch', target: 'inv' }, (d) => inv.got.push(d));
    inv.t.subscribeUnchecked({ cell: 'c1', cls: 'dr' }, (d) => inv.got.push(d));
    tx.t.subscribeUnchecked({ cell: 'c1', cls: 'meter' }, (d) => tx.got.push(d));
    tx.t.subscribeUnchecked({ cell: 'c1', cls: 'gossip' }, (d) => tx.got.push(d));
    await tick();
    for (let k = 0; k < 100; k++) {
      await tx.t.publishUnchecked('mkt', 'dispatch', { k }, { target: 'inv' });
      await tx.t.publishUnchecked('dr', 'call', { k }, { target: 'inv' });
      await inv.t.publishUnchecked('meter', 'energy', { k });
      await inv.t.publishUnchecked('gossip', 'push-sum', { k });
      await clock.advance(100);
    }
    // An attempt gets through both ways with 0.7² = 0.49: after 30 s (9 attempts) a message still waits
    // with 0.51⁹ ≈ 0.2 %, after 55 s (12 attempts, within the market's 60 s TTL) with 0.03 % (the loss
    // is seeded: the same run each time).
    await clock.advance(55_000);
    const keys = (got: typeof inv.got, type: string) =>
      got.filter((d) => d.envelope.type === type).map((d) => (d.envelope.body as { k: number }).k);
    const all = Array.from({ length: 100 }, (_, k) => k);
    // Every reliable message arrives once (no duplicate reaches a handler) ...
    expect(keys(inv.got, 'dispatch').sort((a, b) => a - b)).toEqual(all);
    expect(keys(inv.got, 'call').sort((a, b) => a - b)).toEqual(all);
    // The first meter reading goes out before tx's interest is known: up to 3 blind attempts.
    expect(keys(tx.got, 'energy').sort((a, b) => a - b)).toEqual(all);
    // ... gossip is best effort: about 70 % arrive, none twice.
    const gossip = keys(tx.got, 'push-sum');
    expect(new Set(gossip).size).toBe(gossip.length);
    expect(gossip.length).toBeGreaterThan(55);
    expect(gossip.length).toBeLessThan(85);
    expect(await metricValue(tx.metrics, 'p2p_retransmits_total', { class: 'mkt' })).toBeGreaterThan(10);
    expect(await metricValue(inv.metrics, 'p2p_messages_rejected_total', { reason: 'duplicate' })).toBeGreaterThan(0);
    expect(await metricValue(tx.metrics, 'p2p_outbox_pending', { class: 'mkt' })).toBe(0);
    expect(tx.t.linkQuality().outboxPending).toBe(0);
  });

  it('a reading of every cycle, which the next replaces, is sent once: neither kept, resent nor acknowledged', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['tx', 'inv'], makeDir(), T0, 'c1', KINDS);
    const tx = signedEndpoint(bus, p, 'tx', clock, { retryInitialMs: 200 });
    const inv = signedEndpoint(bus, p, 'inv', clock, { retryInitialMs: 200 });
    for (const e of [tx, inv]) await e.t.start();
    tx.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'reading' }, (d) => tx.got.push(d));
    await tick();
    for (let k = 0; k < 5; k++) {
      await inv.t.publishUnchecked('meter', 'reading', { k });
      await clock.advance(500);
    }
    expect(tx.got.map((d) => (d.envelope.body as { k: number }).k)).toEqual([0, 1, 2, 3, 4]);
    expect(inv.t.linkQuality().outboxPending).toBe(0);
    expect(await metricValue(inv.metrics, 'p2p_retransmits_total', { class: 'meter' })).toBe(0);
    expect(await metricValue(inv.metrics, 'p2p_reliable_sent_total', { class: 'meter', type: 'reading' })).toBe(0);
    expect(await metricValue(inv.metrics, 'p2p_acks_received_total', { class: 'meter', peer: 'tx' })).toBe(0);
  });

  it('a reader that wants only the latest reading takes it without acknowledging: the sender waits for the others only', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['tx', 'inv', 'platform'], makeDir(), T0, 'c1', KINDS);
    const tx = signedEndpoint(bus, p, 'tx', clock, { retryInitialMs: 200 });
    const inv = signedEndpoint(bus, p, 'inv', clock, { retryInitialMs: 200 });
    const platform = signedEndpoint(bus, p, 'platform', clock, { retryInitialMs: 200 });
    for (const e of [tx, inv, platform]) await e.t.start();
    tx.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'energy' }, (d) => tx.got.push(d), {
      acknowledge: false,
    });
    platform.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'energy' }, (d) => platform.got.push(d));
    await tick();
    for (let k = 0; k < 20; k++) {
      await inv.t.publishUnchecked('meter', 'energy', { k });
      await clock.advance(100);
    }
    await clock.advance(1000);
    expect(tx.got).toHaveLength(20);
    expect(platform.got).toHaveLength(20);
    // The first readings go out before any receiver is known (blind resends): a few are acknowledged twice.
    expect(
      await metricValue(inv.metrics, 'p2p_acks_received_total', { class: 'meter', peer: 'platform' }),
    ).toBeGreaterThanOrEqual(20);
    expect(await metricValue(inv.metrics, 'p2p_acks_received_total', { class: 'meter', peer: 'tx' })).toBe(0);
    // The platform away: what it has not acknowledged waits for it, the silent reader does not hold anything.
    await platform.t.close();
    await inv.t.publishUnchecked('meter', 'energy', { k: 20 });
    await clock.advance(1000);
    expect(tx.got).toHaveLength(21);
    expect(inv.t.linkQuality().outboxPending).toBe(1);
    expect(await metricValue(inv.metrics, 'p2p_retransmits_total', { class: 'meter' })).toBeGreaterThan(0);
  });

  it('a message to a peer that never answers is resent with back-off until it expires, then counted as given up', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['tx', 'gone'], makeDir(), T0, 'c1', KINDS);
    // The jitter at its low end: each send waits the lower bound of its window.
    const tx = signedEndpoint(bus, p, 'tx', clock, { retryInitialMs: 1000, random: () => 0 });
    const lines: { msg: string; [k: string]: unknown }[] = [];
    (tx.t as unknown as { deps: { log: unknown } }).deps.log = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    await tx.t.start();
    await tx.t.publishUnchecked('mkt', 'dispatch', { k: 1 }, { target: 'gone', ttlMs: 20_000 });
    await clock.advance(25_000);
    // No round trip measured: RTO = 1 s, doubled by each timeout (at most once per RTO) up to the 8 s
    // ceiling. Send n waits within [RTO·2^(n−1), RTO·2^n] (the window capped at the ceiling, never
    // below the RTO), the RTO as it is when the message goes out: at the low end 1, 2, 4, 4, 8 s, so
    // resends at 1, 3, 7, 11, 19 s: 5 before the 20 s expiry.
    expect(await metricValue(tx.metrics, 'p2p_retransmits_total', { class: 'mkt' })).toBe(5);
    expect(await metricValue(tx.metrics, 'p2p_outbox_dropped_total', { class: 'mkt', reason: 'expired' })).toBe(1);
    // Said in the log too; more of them within the minute wait for the next line, which counts them.
    for (let k = 2; k <= 4; k++) await tx.t.publishUnchecked('mkt', 'dispatch', { k }, { target: 'gone', ttlMs: 5000 });
    await clock.advance(10_000);
    await clock.advance(60_000);
    await tx.t.publishUnchecked('mkt', 'dispatch', { k: 5 }, { target: 'gone', ttlMs: 5000 });
    await clock.advance(10_000);
    const givenUp = lines.filter((l) => l.msg === 'outbox gave up messages');
    expect(givenUp.map((l) => [l.cls, l.reason, l.messages])).toEqual([
      ['mkt', 'expired', 1],
      ['mkt', 'expired', 4],
    ]);
  });

  it('after an outage longer than the replay window, every reading reaches a handler that keeps them by id; no other handler sees the old ones', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['house', 'platform'], makeDir(), T0, 'c1', KINDS);
    const house = signedEndpoint(bus, p, 'house', clock);
    await house.t.start();
    const send = async (from: number, to: number) => {
      for (let k = from; k < to; k++) {
        await house.t.publishUnchecked('meter', 'energy', { k }, { target: 'platform' });
        await clock.advance(100);
      }
    };
    await send(0, 700); // the platform away: 700 readings wait, more than the 512 the window holds
    const platform = signedEndpoint(bus, p, 'platform', clock);
    const other: number[] = [];
    await platform.t.start();
    platform.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'energy' }, (d) => platform.got.push(d), {
      idempotent: true,
    });
    platform.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'energy' }, (d) => {
      other.push((d.envelope.body as { k: number }).k);
    });
    await tick();
    await send(700, 750); // new readings go out at once, ahead of the resent ones
    await clock.advance(60_000);
    const taken = platform.got.map((d) => (d.envelope.body as { k: number }).k);
    expect(new Set(taken).size).toBe(750);
    expect(house.t.linkQuality().outboxPending).toBe(0);
    // Those the window could no longer place reached only the handler that keeps readings by id.
    const placed = new Set(other);
    expect(placed.size).toBeLessThan(750);
    expect(taken.filter((k) => !placed.has(k)).length).toBeGreaterThan(0);
    expect(await metricValue(platform.metrics, 'p2p_messages_rejected_total', { reason: 'replay' })).toBe(0);
  });

  it('pending messages survive a restart (persisted outbox) and are delivered once the peer is back', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['tx', 'inv'], makeDir(), T0, 'c1', KINDS);
    const state = makeDir();
    const tx1 = signedEndpoint(bus, p, 'tx', clock, { stateDir: state });
    await tx1.t.start();
    await tx1.t.publishUnchecked('dr', 'call', { kWh: 2 }, { target: 'inv' });
    await tx1.t.close();
    const saved = JSON.parse(readFileSync(join(state, 'outbox.json'), 'utf8')) as { entries: unknown[] };
    expect(saved.entries).toHaveLength(1);
    const inv = signedEndpoint(bus, p, 'inv', clock);
    await inv.t.start();
    inv.t.subscribeUnchecked({ cell: 'c1', cls: 'dr' }, (d) => inv.got.push(d));
    const tx2 = signedEndpoint(bus, p, 'tx', clock, { stateDir: state });
    await tx2.t.start();
    await clock.advance(2000);
    // The message keeps its first epoch: the receiver accepts it from the sender's previous epoch.
    expect(inv.got.map((d) => d.envelope.body)).toEqual([{ kWh: 2 }]);
    expect(inv.got[0]!.envelope.epoch).toBe(Math.floor(T0 / 1000));
    expect(tx2.t.linkQuality().outboxPending).toBe(0);
  });
});

describe('application-level acknowledgement', () => {
  it('means "delivered to the addressee\'s application": a bystander that sees the message does not ack it', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['tx', 'inv', 'nosy'], makeDir(), T0, 'c1', KINDS);
    const tx = signedEndpoint(bus, p, 'tx', clock);
    const nosy = signedEndpoint(bus, p, 'nosy', clock); // listens to all market traffic of the cell
    for (const e of [tx, nosy]) await e.t.start();
    nosy.t.subscribeUnchecked({ cell: 'c1', cls: 'mkt' }, (d) => nosy.got.push(d));
    await tick();
    await tx.t.publishUnchecked('mkt', 'dispatch', { kW: 2 }, { target: 'inv' });
    await clock.advance(3000);
    expect(nosy.got).toHaveLength(1); // it sees the message, but it was not for it
    expect(tx.t.linkQuality().outboxPending).toBe(1); // still waiting for inv
    const inv = signedEndpoint(bus, p, 'inv', clock);
    await inv.t.start();
    inv.t.subscribeUnchecked({ cell: 'c1', cls: 'mkt', target: 'inv' }, (d) => inv.got.push(d));
    await clock.advance(5000); // the next resend reaches inv, which acknowledges it
    expect(inv.got).toHaveLength(1);
    expect(tx.t.linkQuality().outboxPending).toBe(0);
    expect(nosy.got).toHaveLength(1); // the resend is a duplicate for nosy
  });

  it('covers the messages of one sender taken within 150 ms with one acknowledgement (at most 32); a resend is acknowledged at once, alone', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['tx', 'inv'], makeDir(), T0, 'c1', KINDS);
    const tx = signedEndpoint(bus, p, 'tx', clock, { retryInitialMs: 1000 });
    const inv = signedEndpoint(bus, p, 'inv', clock, { retryInitialMs: 1000 });
    for (const e of [tx, inv]) await e.t.start();
    const acks: string[] = [];
    const dispatches: string[] = [];
    bus.subscribe('p2p/v1/c1/inv/mkt/ack/tx', (_topic, payload) => acks.push(payload));
    bus.subscribe('p2p/v1/c1/tx/mkt/dispatch/inv', (_topic, payload) => dispatches.push(payload));
    inv.t.subscribeUnchecked({ cell: 'c1', cls: 'mkt', target: 'inv' }, (d) => inv.got.push(d));
    await tick();
    for (let k = 0; k < 3; k++) {
      await tx.t.publishUnchecked('mkt', 'dispatch', { k }, { target: 'inv' });
      await clock.advance(40);
    }
    // 120 ms after the first: all three taken, their acknowledgement still held.
    expect(inv.got).toHaveLength(3);
    expect(acks).toHaveLength(0);
    expect(tx.t.linkQuality().outboxPending).toBe(3);
    await clock.advance(40);
    expect(acks).toHaveLength(1);
    expect(tx.t.linkQuality().outboxPending).toBe(0);
    // A resend (its acknowledgement lost) is a duplicate: acknowledged at once, by itself.
    bus.publish('p2p/v1/c1/tx/mkt/dispatch/inv', dispatches[0]!, false);
    await tick();
    expect(acks).toHaveLength(2);
    expect(inv.got).toHaveLength(3);
    // A burst of 40: one acknowledgement as soon as 32 are held, one for the other 8 after 150 ms.
    for (let k = 0; k < 40; k++) await tx.t.publishUnchecked('mkt', 'dispatch', { k: 100 + k }, { target: 'inv' });
    await tick();
    expect(acks).toHaveLength(3);
    expect(tx.t.linkQuality().outboxPending).toBe(8);
    await clock.advance(150);
    expect(acks).toHaveLength(4);
    expect(tx.t.linkQuality().outboxPending).toBe(0);
    expect(await metricValue(tx.metrics, 'p2p_retransmits_total', { class: 'mkt' })).toBe(0);
  });
});

describe('Outbox', () => {
  it('is bounded: the oldest entry goes first when it is full', () => {
    const box = new Outbox({ maxEntries: 2, retryInitialMs: 100, retryMaxMs: 400, maxBlindAttempts: 3 });
    const entry = (id: string) => ({
      id,
      cls: 'mkt' as const,
      type: 't',
      topic: 'x',
      payload: '{}',
      retain: false,
      expires: 10_000,
      awaiting: ['p'],
      blind: false,
    });
    expect(box.add(entry('1:8'), 0)).toBeUndefined();
    expect(box.add(entry('1:16'), 0)).toBeUndefined();
    expect(box.add(entry('1:24'), 0)?.id).toBe('1:8');
    expect(box.all().map((e) => e.id)).toEqual(['1:16', '1:24']);
    expect(box.ack('p', '1:16')?.id).toBe('1:16');
    expect(box.ack('p', '1:16')).toBeUndefined();
  });
});

describe('Backoff (reconnect)', () => {
  it('doubles from the first delay to the ceiling, half fixed and half random', () => {
    const lo = new Backoff(500, 30_000, () => 0);
    expect(Array.from({ length: 9 }, () => lo.next())).toEqual([
      250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000,
    ]);
    const hi = new Backoff(500, 30_000, () => 0.999_999);
    expect(Array.from({ length: 8 }, () => hi.next())).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    hi.reset();
    expect(hi.next()).toBe(500);
  });
});

describe('replay protection across a restart', () => {
  it('takes a resend of a message it never saw, and refuses what it saw', () => {
    const before = new ReplayGuard(64);
    const meter = (n: number) => n * STREAM_COUNT + streamOf('meter', false);
    for (const n of [0, 1, 2, 4, 5]) expect(before.check('inv-1', 7, meter(n)).verdict).toBe('new'); // 3 was lost
    const after = new ReplayGuard(64);
    after.restore(JSON.parse(JSON.stringify(before.snapshot())));
    expect(after.check('inv-1', 7, meter(3)).verdict).toBe('new');
    expect(after.check('inv-1', 7, meter(3)).verdict).toBe('duplicate');
    expect(after.check('inv-1', 7, meter(4)).verdict).toBe('duplicate');
    expect(after.check('inv-1', 7, meter(6)).verdict).toBe('new');
  });
});

describe('replay protection across a restart, without holes', () => {
  it('answers a resend of what it saw as a duplicate (so that it is acknowledged again)', () => {
    const before = new ReplayGuard(64);
    const meter = (n: number) => n * STREAM_COUNT + streamOf('meter', false);
    for (const n of [0, 1, 2]) before.check('inv-1', 7, meter(n));
    const after = new ReplayGuard(64);
    after.restore(JSON.parse(JSON.stringify(before.snapshot())));
    expect(after.check('inv-1', 7, meter(1)).verdict).toBe('duplicate');
    // A state file of an earlier version (no holes): everything up to the highest count is refused.
    const old = new ReplayGuard(64);
    old.restore({ 'inv-1': { epoch: 7, highest: { [streamOf('meter', false)]: 2 } } });
    expect(old.check('inv-1', 7, meter(1)).verdict).toBe('replay');
  });
});

describe('outbox on disk', () => {
  const entry = (id: string) => ({
    id,
    cls: 'meter' as const,
    type: 'reading',
    topic: `p2p/v1/c1/a/meter/reading`,
    payload: '{}',
    retain: false,
    expires: 10_000,
    awaiting: ['platform-1'],
    blind: false,
  });

  it('has a message on disk as soon as it is added: a crash before the next write of the file loses nothing', () => {
    const dir = tmp.dir;
    const file = join(dir, 'outbox-crash.json');
    const before = new Outbox(DEFAULT_OUTBOX, file);
    before.add(entry('1:4'), 0);
    before.flush();
    before.add(entry('1:12'), 10);
    before.add(entry('1:20'), 20);
    // Killed here: no flush, no close. The journal's last line is cut short as well.
    appendFileSync(`${file}.journal`, '{"id":"1:28","cls":"me');
    const after = new Outbox(DEFAULT_OUTBOX, file);
    expect(after.load(100)).toBe(3);
    expect(after.all().map((e) => e.id)).toEqual(['1:4', '1:12', '1:20']);
    // The next write of the file empties the journal.
    after.flush();
    after.close();
    expect(readFileSync(`${file}.journal`, 'utf8')).toBe('');
  });

  it('keeps a message that means nothing after a restart (a round price) in memory only, resent until acknowledged', () => {
    const file = join(tmp.dir, 'outbox-volatile.json');
    const outbox = new Outbox(DEFAULT_OUTBOX, file);
    outbox.add(entry('1:4'), 0);
    outbox.flush();
    const written = readFileSync(file, 'utf8');
    outbox.add({ ...entry('1:12'), cls: 'mkt', volatile: true }, 10);
    expect(readFileSync(`${file}.journal`, 'utf8')).toBe('');
    // Resent like any other (the first wait is at most twice the initial timeout), acknowledged like
    // any other, and nothing written meanwhile.
    expect(outbox.takeDue(10 + 2 * DEFAULT_OUTBOX.retryInitialMs).resend.map((e) => e.id)).toEqual(['1:4', '1:12']);
    expect(outbox.ack('platform-1', '1:12')?.id).toBe('1:12');
    outbox.flush();
    // The resend of 1:4 changed what is on disk; the round price never got there.
    expect(readFileSync(file, 'utf8')).not.toBe(written);
    expect(readFileSync(file, 'utf8')).not.toContain('1:12');
    outbox.close();
    const after = new Outbox(DEFAULT_OUTBOX, file);
    after.load(20);
    expect(after.all().map((e) => e.id)).toEqual(['1:4']);
  });
});
