import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { MAX_OLDER_EPOCHS, ReplayGuard } from '../../src/comms/replay-guard.js';
import { EnvelopeSigner } from '../../src/comms/security.js';
import type { Envelope } from '../../src/comms/transport.js';
import { writeFileAtomic } from '../../src/core/atomic-file.js';
import { VirtualClock } from '../../src/core/clock.js';
import { type MembersList, signMembersList } from '../../src/core/members.js';
import { generateKeyPair } from '../../src/core/signing.js';
import { tempDir } from '../helpers/net.js';
import { metricValue, signedCell, signedEndpoint, tick } from '../helpers/signed-cell.js';

const tmp = tempDir('p2p-comms-sec-');
afterAll(() => tmp.remove());
let n = 0;
const makeDir = () => join(tmp.dir, String(++n));

const T0 = 1_800_000_000_000;
const topic = 'p2p/v1/c1/a/meter/reading';

/**
 * A signed cell of a (sender) and b (receiver: the platform, which reads meter readings); `raw`
 * captures what a sends on the bus.
 */
async function cell() {
  const clock = new VirtualClock(T0);
  const bus = new MemoryBus();
  const p = signedCell(['a', 'b', 'x'], makeDir(), T0, 'c1', { b: 'transformer' });
  const a = signedEndpoint(bus, p, 'a', clock);
  const b = signedEndpoint(bus, p, 'b', clock);
  const raw: { topic: string; payload: string }[] = [];
  bus.subscribe('p2p/v1/+/a/#', (t, payload) => raw.push({ topic: t, payload }));
  await a.t.start();
  await b.t.start();
  b.t.subscribeUnchecked({ cell: 'c1', cls: 'meter' }, (d) => b.got.push(d));
  b.t.subscribeUnchecked({ cell: 'c1', cls: 'mkt' }, (d) => b.got.push(d));
  await tick();
  return { clock, bus, p, a, b, raw };
}

const rejected = (c: Awaited<ReturnType<typeof cell>>, reason: string) =>
  metricValue(c.b.metrics, 'p2p_messages_rejected_total', { reason });

describe('signed envelopes (docs/interfaces.md "Messages on the wire")', () => {
  it('a member signs, the receiver verifies and delivers exactly once', async () => {
    const c = await cell();
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 1200 });
    await tick();
    expect(c.b.got).toHaveLength(1);
    const env = c.b.got[0]!.envelope;
    expect(env.sig).toMatch(/^[A-Za-z0-9_-]{86}$/); // 64-byte Ed25519 signature, base64url without padding
    expect(env.body).toEqual({ netW: 1200 });
  });

  it('the payload as sent is the canonical JSON of the envelope with its signature last, which checks with node:crypto', () => {
    const keys = generateKeyPair();
    const signer = new EnvelopeSigner('a', keys.privateKey, keys.publicKey);
    const envelope: Envelope = {
      v: 1,
      sender: 'a',
      epoch: 3,
      seq: 12,
      ts: T0,
      expires: T0 + 60_000,
      type: 'reading',
      body: { netW: -1.5, pvW: 3000, note: 'é"\\' },
    };
    const payload = signer.signedPayload(envelope);
    const parsed = JSON.parse(payload) as Envelope;
    expect(parsed).toEqual(signer.sign(envelope));
    // RFC 8785 written out by hand: keys sorted, no blanks; then the signature.
    const canonical =
      '{"body":{"netW":-1.5,"note":"é\\"\\\\","pvW":3000},"epoch":3,"expires":1800000060000,"sender":"a","seq":12,"ts":1800000000000,"type":"reading","v":1}';
    expect(payload).toBe(`${canonical.slice(0, -1)},"sig":"${parsed.sig}"}`);
    const spki = Buffer.concat([
      Buffer.from('302a300506032b6570032100', 'hex'),
      Buffer.from(keys.publicKey, 'base64url'),
    ]);
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    expect(verify(null, Buffer.from(canonical), key, Buffer.from(parsed.sig!, 'base64url'))).toBe(true);
  });

  it('a forged signature, a changed body or an unsigned message never reaches a handler', async () => {
    const c = await cell();
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 1 });
    await tick();
    const genuine = JSON.parse(c.raw.find((r) => r.topic === topic)!.payload) as Envelope;
    c.b.got.length = 0;
    const intruder = generateKeyPair();
    const forged = new EnvelopeSigner('a', intruder.privateKey, intruder.publicKey).sign({
      ...genuine,
      seq: 1000 * 8 + 4,
    });
    c.bus.publish(topic, JSON.stringify(forged), false);
    c.bus.publish(topic, JSON.stringify({ ...genuine, seq: 1001 * 8 + 4, body: { netW: -5000 } }), false);
    const { sig: _sig, ...unsigned } = { ...genuine, seq: 1002 * 8 + 4 };
    c.bus.publish(topic, JSON.stringify(unsigned), false);
    await tick();
    expect(c.b.got).toHaveLength(0);
    expect(await rejected(c, 'signature')).toBe(3);
  });

  it('property: no single-field change of a signed envelope is accepted', async () => {
    const c = await cell();
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 1, phase: 'L1' });
    await tick();
    const genuine = JSON.parse(c.raw.find((r) => r.topic === topic)!.payload) as Envelope;
    c.b.got.length = 0;
    let k = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('ts', 'expires', 'type', 'body', 'epoch'),
        fc.integer({ min: 1, max: 10_000 }),
        async (field, delta) => {
          // a fresh seq each time, so that a rejection is the signature's doing and not the replay check
          const seq = (5000 + ++k) * 8 + 4;
          const changed: Record<string, unknown> = { ...genuine, seq };
          if (field === 'type') changed.type = `reading${delta}`;
          else if (field === 'body') changed.body = { netW: 1 + delta, phase: 'L1' };
          else changed[field] = (genuine[field as 'ts'] as number) + delta;
          c.bus.publish(topic, JSON.stringify(changed), false);
          await tick();
          return c.b.got.length === 0;
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a replayed or duplicated message is dropped; an older epoch is a replay', async () => {
    const c = await cell();
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 1 });
    await tick();
    const captured = c.raw.find((r) => r.topic === topic)!;
    c.bus.publish(captured.topic, captured.payload, false);
    c.bus.publish(captured.topic, captured.payload, false);
    await tick();
    expect(c.b.got).toHaveLength(1);
    expect(await rejected(c, 'duplicate')).toBe(2);
    // The sender restarts (new epochs). A message of an earlier epoch is still seen as a duplicate
    // (those epochs stay open for a persisted outbox); once more than MAX_OLDER_EPOCHS restarts back,
    // it is a replay.
    const first = (JSON.parse(captured.payload) as Envelope).epoch;
    for (let epoch = first + 1; epoch <= first + MAX_OLDER_EPOCHS + 1; epoch++) {
      const restarted = signedEndpoint(c.bus, c.p, 'a', c.clock);
      await restarted.t.start();
      (restarted.t as unknown as { stamper: { epoch: number } }).stamper.epoch = epoch;
      await restarted.t.publishUnchecked('meter', 'reading', { netW: epoch - first + 1 });
      await tick();
      if (epoch === first + 2) {
        const duplicates = await rejected(c, 'duplicate');
        c.bus.publish(captured.topic, captured.payload, false);
        await tick();
        expect(await rejected(c, 'duplicate')).toBe(duplicates + 1);
      }
    }
    expect(c.b.got).toHaveLength(MAX_OLDER_EPOCHS + 2);
    c.bus.publish(captured.topic, captured.payload, false);
    await tick();
    expect(c.b.got).toHaveLength(MAX_OLDER_EPOCHS + 2);
    expect(await rejected(c, 'replay')).toBe(1);
  });

  it('an expired message, or one stamped beyond the clock skew in the future, is dropped', async () => {
    const c = await cell();
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 1 }, { ttlMs: 1000 });
    c.clock.setTimeout(() => undefined, 0);
    const late = c.raw.length;
    await c.clock.advance(2000);
    await tick();
    expect(c.b.got).toHaveLength(1); // delivered while fresh
    const stale = c.raw[late - 1] ?? c.raw.find((r) => r.topic === topic)!;
    const env = JSON.parse(stale.payload) as Envelope;
    // Re-sent after expiry with a new seq: still expired, and the signature could not be renewed anyway.
    c.bus.publish(topic, JSON.stringify({ ...env, seq: env.seq + 8 * 50 }), false);
    // Someone with a's key (a compromised clock) stamps far in the future.
    const key = c.p.keys.get('a')!;
    const future = new EnvelopeSigner('a', key.privateKey, key.publicKey).sign({
      ...env,
      seq: env.seq + 8 * 60,
      ts: c.clock.now() + 3600_000,
      expires: c.clock.now() + 3660_000,
    });
    c.bus.publish(topic, JSON.stringify(future), false);
    await tick();
    expect(c.b.got).toHaveLength(1);
    expect(await rejected(c, 'expired')).toBe(2);
  });

  it('an oversized message is refused by the sender and dropped by the receiver', async () => {
    const c = await cell();
    await expect(c.a.t.publishUnchecked('meter', 'reading', { blob: 'x'.repeat(70_000) })).rejects.toThrow(
      /exceeds the 65536-byte/,
    );
    c.bus.publish(topic, JSON.stringify({ blob: 'x'.repeat(70_000) }), false);
    await tick();
    expect(c.b.got).toHaveLength(0);
    expect(await rejected(c, 'size')).toBe(1);
  });

  it('non-members, members of another cell, suspended and revoked members are rejected', async () => {
    const c = await cell();
    const clock = c.clock;
    // "x" is a member, but claims another cell.
    const other = signedEndpoint(c.bus, c.p, 'x', clock, { cell: 'c2' });
    await other.t.start();
    const stranger = signedCell(['mallory'], makeDir(), T0); // signed by a different operator
    const mallory = signedEndpoint(c.bus, stranger, 'mallory', clock);
    await mallory.t.start();
    // Mallory publishes into c1 directly (she could reach the broker or the radio).
    const env = { v: 1, sender: 'mallory', epoch: 1, seq: 12, ts: T0, expires: T0 + 60_000, type: 'reading', body: {} };
    const key = stranger.keys.get('mallory')!;
    c.bus.publish(
      'p2p/v1/c1/mallory/meter/reading',
      JSON.stringify(new EnvelopeSigner('mallory', key.privateKey, key.publicKey).sign(env as Envelope)),
      false,
    );
    const xEnv = { ...env, sender: 'x' };
    const xKey = c.p.keys.get('x')!;
    c.bus.publish(
      'p2p/v1/c2/x/meter/reading',
      JSON.stringify(new EnvelopeSigner('x', xKey.privateKey, xKey.publicKey).sign(xEnv as Envelope)),
      false,
    );
    b_subscribeAll(c);
    await tick();
    c.bus.publish(
      'p2p/v1/c2/x/meter/reading',
      JSON.stringify(new EnvelopeSigner('x', xKey.privateKey, xKey.publicKey).sign({ ...xEnv, seq: 20 } as Envelope)),
      false,
    );
    await tick();
    expect(c.b.got.filter((d) => d.envelope.sender !== 'a')).toHaveLength(0);
    expect(await rejected(c, 'member')).toBeGreaterThanOrEqual(2);
  });

  it('suspending a member takes effect when the members file changes; an older list is never taken', async () => {
    const c = await cell();
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 1 });
    await tick();
    expect(c.b.got).toHaveLength(1);
    const list = JSON.parse(readFileSync(c.p.membersFile, 'utf8')) as MembersList;
    // A list not signed by the operator is ignored.
    const bogus = signMembersList(
      { ...list, serial: 9, members: list.members.map((m) => ({ ...m, status: 'revoked' as const })) },
      generateKeyPair().privateKey,
    );
    writeFileAtomic(c.p.membersFile, JSON.stringify(bogus));
    await c.clock.advance(6000);
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 2 });
    await tick();
    expect(c.b.got).toHaveLength(2);
    // The cell operator suspends a: its messages are still signed, but a is no longer an active member.
    const suspended = signMembersList(
      {
        ...list,
        serial: 2,
        members: list.members.map((m) => (m.id === 'a' ? { ...m, status: 'suspended' as const } : m)),
      },
      c.p.operator.privateKey,
    );
    writeFileAtomic(c.p.membersFile, JSON.stringify(suspended));
    await c.clock.advance(6000);
    expect(await metricValue(c.b.metrics, 'p2p_members_serial', {})).toBe(2);
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 3 });
    await tick();
    expect(c.b.got).toHaveLength(2);
    expect(await rejected(c, 'member')).toBe(1);
    // Going back to the older list (serial 1, a active) is refused: a stays suspended.
    writeFileAtomic(c.p.membersFile, JSON.stringify(list));
    await c.clock.advance(6000);
    await c.a.t.publishUnchecked('meter', 'reading', { netW: 4 });
    await tick();
    expect(c.b.got).toHaveLength(2);
  });
});

function b_subscribeAll(c: Awaited<ReturnType<typeof cell>>): void {
  c.b.t.subscribeUnchecked({ cell: '+', cls: 'meter' }, (d) => c.b.got.push(d));
}

describe('ReplayGuard', () => {
  it('counts gaps and late arrivals per stream, refuses duplicates and anything older than the window', () => {
    const g = new ReplayGuard(16);
    const s = (k: number, stream = 4) => k * 8 + stream;
    expect(g.check('p', 1, s(1)).verdict).toBe('new');
    expect(g.check('p', 1, s(2)).verdict).toBe('new');
    expect(g.check('p', 1, s(5))).toEqual({ verdict: 'new', gap: 2, filled: false });
    expect(g.deliveryRatio('p')).toBeCloseTo(3 / 5);
    expect(g.check('p', 1, s(4))).toEqual({ verdict: 'new', gap: 0, filled: true });
    expect(g.check('p', 1, s(4)).verdict).toBe('duplicate');
    expect(g.deliveryRatio('p')).toBeCloseTo(4 / 5);
    // Another stream of the same sender has its own count.
    expect(g.check('p', 1, s(1, 2)).verdict).toBe('new');
    expect(g.check('p', 1, s(40)).verdict).toBe('new');
    // 37 below the highest, window 16: whether it was seen cannot be told.
    expect(g.check('p', 1, s(3))).toEqual({ verdict: 'replay', gap: 0, filled: false, unknown: true });
    // First heard in epoch 1: nothing is known of its older epochs, so a message of one cannot have
    // been seen before: it is taken once.
    expect(g.check('p', 0, s(100)).verdict).toBe('new');
    expect(g.check('p', 0, s(100)).verdict).toBe('duplicate');
    expect(g.check('p', 2, s(1)).verdict).toBe('new'); // restart of the sender
    // Its earlier epochs stay open (restarted again and again before its persisted outbox drained):
    // unseen counts are new, seen ones duplicates.
    expect(g.check('p', 0, s(101)).verdict).toBe('new');
    expect(g.check('p', 1, s(39)).verdict).toBe('new');
    expect(g.check('p', 1, s(40)).verdict).toBe('duplicate');
    // Up to MAX_OLDER_EPOCHS of them: older ones are closed for good.
    for (let epoch = 3; epoch <= MAX_OLDER_EPOCHS + 2; epoch++) expect(g.check('p', epoch, s(1)).verdict).toBe('new');
    expect(g.check('p', 1, s(38))).toEqual({ verdict: 'replay', gap: 0, filled: false }); // its epoch closed: a replay
    expect(g.check('p', 0, s(102)).verdict).toBe('replay');
    expect(g.check('p', 2, s(2)).verdict).toBe('new');
  });

  it('keeps the open older epochs of a sender across a restart of the receiver', () => {
    const g = new ReplayGuard(16);
    const s = (k: number) => k * 8 + 4;
    g.check('p', 5, s(1));
    g.check('p', 6, s(1));
    g.check('p', 7, s(1));
    expect(g.check('p', 5, s(3)).verdict).toBe('new');
    const restored = new ReplayGuard(16);
    restored.restore(JSON.parse(JSON.stringify(g.snapshot())));
    expect(restored.check('p', 5, s(3)).verdict).toBe('duplicate');
    expect(restored.check('p', 5, s(2)).verdict).toBe('new'); // a hole: sent, never received
    expect(restored.check('p', 6, s(2)).verdict).toBe('new');
    // Never heard before epoch 5 and nothing closed: an older epoch cannot have been seen.
    expect(restored.check('p', 4, s(1)).verdict).toBe('new');
    // A state file of an earlier version kept no older epochs: every older one is refused.
    const legacy = new ReplayGuard(16);
    legacy.restore({ p: { epoch: 7, highest: { 4: 1 }, holes: {} } });
    expect(legacy.check('p', 6, s(2)).verdict).toBe('replay');
  });

  it('after a restart refuses what was seen before, takes a count never seen within the window once, and refuses below it', () => {
    const g = new ReplayGuard(16);
    g.check('p', 7, 8 * 30 + 4);
    const restored = new ReplayGuard(16);
    restored.restore(g.snapshot());
    expect(restored.check('p', 7, 8 * 30 + 4).verdict).toBe('duplicate');
    expect(restored.check('p', 7, 8 * 29 + 4).verdict).toBe('new'); // sent, never received: a resend
    expect(restored.check('p', 7, 8 * 29 + 4).verdict).toBe('duplicate');
    expect(restored.check('p', 7, 8 * 14 + 4).verdict).toBe('replay'); // older than the window
    expect(restored.check('p', 7, 8 * 31 + 4).verdict).toBe('new');
  });
});

describe('comms state across restarts (written atomically under stateDir)', () => {
  it('a restarted sender takes a higher epoch; a restarted receiver still refuses what it saw before', async () => {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['a', 'b'], makeDir(), T0, 'c1', { b: 'transformer' });
    const stateA = makeDir();
    const stateB = makeDir();
    const raw: string[] = [];
    bus.subscribe(topic, (_t, payload) => raw.push(payload));
    const a1 = signedEndpoint(bus, p, 'a', clock, { stateDir: stateA });
    const b1 = signedEndpoint(bus, p, 'b', clock, { stateDir: stateB });
    await a1.t.start();
    await b1.t.start();
    b1.t.subscribeUnchecked({ cell: 'c1', cls: 'meter' }, (d) => b1.got.push(d));
    await a1.t.publishUnchecked('meter', 'reading', { netW: 1 });
    await tick();
    expect(b1.got).toHaveLength(1);
    const firstEpoch = b1.got[0]!.envelope.epoch;
    expect(firstEpoch).toBe(Math.floor(T0 / 1000));
    await a1.t.close();
    await b1.t.close();

    // The clock stepped back (no RTC after a power cut): the epoch still goes up.
    const earlier = new VirtualClock(T0 - 3600_000);
    const a2 = signedEndpoint(bus, p, 'a', earlier, { stateDir: stateA });
    const b2 = signedEndpoint(bus, p, 'b', clock, { stateDir: stateB });
    await a2.t.start();
    await b2.t.start();
    b2.t.subscribeUnchecked({ cell: 'c1', cls: 'meter' }, (d) => b2.got.push(d));
    bus.publish(topic, raw[0]!, false); // the old message replayed into the restarted receiver
    await tick();
    expect(b2.got).toHaveLength(0);
    expect(await metricValue(b2.metrics, 'p2p_messages_rejected_total', { reason: 'duplicate' })).toBe(1);
    await a2.t.publishUnchecked('meter', 'reading', { netW: 2 }, { ttlMs: 7200_000 });
    await tick();
    expect(b2.got.map((d) => d.envelope.epoch)).toEqual([firstEpoch + 1]);
    const saved = JSON.parse(readFileSync(join(stateA, 'comms-state.json'), 'utf8')) as { epoch: number };
    expect(saved.epoch).toBe(firstEpoch + 1);
  });
});

describe('gap detection and delivery ratio', () => {
  it('counts the messages a lossy link lost, per peer and class', async () => {
    const clock = new VirtualClock(T0);
    let i = 0;
    // Every 4th gossip message is lost (deterministic "random" source).
    const bus = new MemoryBus('lossy', { fraction: 0.25, random: () => (i++ % 4 === 3 ? 0 : 0.99) });
    const p = signedCell(['a', 'b'], makeDir(), T0);
    const a = signedEndpoint(bus, p, 'a', clock);
    const b = signedEndpoint(bus, p, 'b', clock);
    await a.t.start();
    await b.t.start();
    b.t.subscribeUnchecked({ cell: 'c1', cls: 'gossip' }, (d) => b.got.push(d));
    await tick();
    i = 0;
    for (let k = 0; k < 41; k++) await a.t.publishUnchecked('gossip', 'push-sum', { s: k, w: 1 });
    await tick();
    // 41 sent, every 4th lost: 31 arrive, 10 missing, seen as gaps once a later one arrives.
    expect(b.got).toHaveLength(31);
    expect(await metricValue(b.metrics, 'p2p_sequence_gaps_total', { class: 'gossip' })).toBe(10);
    expect(await metricValue(b.metrics, 'p2p_delivery_ratio', { class: 'gossip' })).toBeCloseTo(31 / 41, 5);
    // Per peer, over all its streams: the presence message arrived too.
    expect(await metricValue(b.metrics, 'p2p_peer_delivery_ratio', { peer: 'a' })).toBeCloseTo(32 / 42, 5);
    expect(b.t.linkQuality().peers).toEqual([{ peer: 'a', lastHeardMs: T0, deliveryRatio: 32 / 42 }]);
  });
});
