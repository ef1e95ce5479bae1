import { verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import {
  BodyOpener,
  BodySealer,
  EPHEMERAL_LIFETIME_MS,
  generateEncryptionKeyPair,
  keyId,
  openBody,
  ownEncryptionKey,
  SEALED_SCHEME,
  SealedBody,
  sealBody,
} from '../../src/comms/sealed-body.js';
import {
  EncryptionKeyring,
  EnvelopeSigner,
  GatewayKeyFile,
  rotateEncryptionKey,
  sealingContext,
} from '../../src/comms/security.js';
import type { Envelope } from '../../src/comms/transport.js';
import { writeFileAtomic } from '../../src/core/atomic-file.js';
import { VirtualClock } from '../../src/core/clock.js';
import { signMembersList } from '../../src/core/members.js';
import { canonicalJson, publicKeyObject } from '../../src/core/signing.js';
import { tempDir } from '../helpers/net.js';
import { type Endpoint, metricValue, signedCell, signedEndpoint, tick } from '../helpers/signed-cell.js';

const tmp = tempDir('p2p-sealed-');
afterAll(() => tmp.remove());
let n = 0;
const makeDir = () => join(tmp.dir, String(++n));
const T0 = 1_800_000_000_000;

describe('sealed bodies (X25519 + HKDF-SHA256 + AES-256-GCM)', () => {
  const alice = generateEncryptionKeyPair();
  const bob = generateEncryptionKeyPair();
  const eve = generateEncryptionKeyPair();
  const context = Buffer.from('p2p/v1/c1/inv-1/meter/reading|1|7');
  const body = { netW: 1234.5, pvW: 2000, loadW: 765.5, voltagePu: 1.01 };

  it('each reader opens it with its own key; nobody else can, and nothing of the body shows', () => {
    const sealed = sealBody(
      body,
      [
        { id: 'alice', encryptionKey: alice.publicKey },
        { id: 'bob', encryptionKey: bob.publicKey },
      ],
      context,
    );
    expect(SealedBody.parse(sealed).enc).toBe(SEALED_SCHEME);
    const text = JSON.stringify(sealed);
    for (const plain of ['netW', 'pvW', '1234.5', '765.5']) expect(text).not.toContain(plain);
    expect(openBody(sealed, 'alice', [ownEncryptionKey(alice)], context)).toEqual({ ok: true, body });
    expect(openBody(sealed, 'bob', [ownEncryptionKey(bob)], context)).toEqual({ ok: true, body });
    // Eve is not a reader; with her own key under Bob's name she holds no key the body was sealed to.
    expect(openBody(sealed, 'eve', [ownEncryptionKey(eve)], context)).toEqual({ ok: false, problem: 'not a reader' });
    expect(openBody(sealed, 'bob', [ownEncryptionKey(eve)], context)).toEqual({ ok: false, problem: 'not a reader' });
    // Two seals of the same body share nothing (fresh ephemeral key, content key and nonce each time).
    const again = sealBody(body, [{ id: 'alice', encryptionKey: alice.publicKey }], context);
    expect(again.ct).not.toBe(sealed.ct);
    expect(again.epk).not.toBe(sealed.epk);
  });

  it('a changed ciphertext, wrapped key or nonce, or another message context, does not open', () => {
    const sealed = sealBody(body, [{ id: 'alice', encryptionKey: alice.publicKey }], context);
    const flip = (b64: string, at: number) => {
      const bytes = Buffer.from(b64, 'base64url');
      bytes[at % bytes.length]! ^= 0x01;
      return bytes.toString('base64url');
    };
    const keys = [ownEncryptionKey(alice)];
    const unreadable = { ok: false, problem: 'unreadable' };
    for (let at = 0; at < 40; at += 7)
      expect(openBody({ ...sealed, ct: flip(sealed.ct, at) }, 'alice', keys, context)).toEqual(unreadable);
    const entry = sealed.to[0]!;
    expect(openBody({ ...sealed, to: [{ ...entry, key: flip(entry.key, 3) }] }, 'alice', keys, context)).toEqual(
      unreadable,
    );
    expect(openBody({ ...sealed, iv: flip(sealed.iv, 0) }, 'alice', keys, context)).toEqual(unreadable);
    expect(openBody({ ...sealed, to: [{ ...entry, n: flip(entry.n, 5) }] }, 'alice', keys, context)).toEqual(
      unreadable,
    );
    expect(openBody({ ...sealed, epk: eve.publicKey }, 'alice', keys, context)).toEqual(unreadable);
    expect(openBody(sealed, 'alice', keys, Buffer.from('p2p/v1/c1/inv-2/meter/reading|1|7'))).toEqual(unreadable);
  });
});

describe('a sealer and an opener over time', () => {
  const reader = generateEncryptionKeyPair();
  const context = Buffer.from('p2p/v1/c1/inv-1/meter/reading|1|7');
  const to = [{ id: 'r', encryptionKey: reader.publicKey }];

  it('seal with one ephemeral key for a while, each message under its own content key and nonces', () => {
    const sealer = new BodySealer();
    const opener = new BodyOpener();
    const keys = [ownEncryptionKey(reader)];
    const a = sealer.seal({ k: 1 }, to, context, 0);
    const b = sealer.seal({ k: 2 }, to, context, 1000);
    expect(b.epk).toBe(a.epk);
    expect(b.to[0]!.n).not.toBe(a.to[0]!.n);
    expect(b.to[0]!.key).not.toBe(a.to[0]!.key);
    expect(opener.open(a, 'r', keys, context)).toEqual({ ok: true, body: { k: 1 } });
    expect(opener.open(b, 'r', keys, context)).toEqual({ ok: true, body: { k: 2 } });
    // One entry moved onto the other message does not open it: each wraps its own content key.
    expect(opener.open({ ...b, to: a.to }, 'r', keys, context)).toEqual({ ok: false, problem: 'unreadable' });
    // A new ephemeral key once its lifetime is over (and after a clock step back).
    expect(sealer.seal({ k: 3 }, to, context, EPHEMERAL_LIFETIME_MS).epk).not.toBe(a.epk);
    const c = sealer.seal({ k: 4 }, to, context, 0);
    expect(opener.open(c, 'r', keys, context)).toEqual({ ok: true, body: { k: 4 } });
  });
});

/** A cell: two houses, the cell's transformer gateway (its MG trader), a platform; `raw` is everything on the bus. */
async function cell() {
  const clock = new VirtualClock(T0);
  const bus = new MemoryBus();
  const dir = makeDir();
  const p = signedCell(['inv-1', 'inv-2', 'tx', 'platform'], dir, T0, 'c1', {
    tx: 'transformer',
    platform: 'platform',
  });
  const ends: Record<string, Endpoint> = {};
  for (const id of ['inv-1', 'inv-2', 'tx', 'platform']) {
    ends[id] = signedEndpoint(bus, p, id, clock, { retryInitialMs: 500 });
    await ends[id]!.t.start();
  }
  const raw: { topic: string; payload: string }[] = [];
  bus.subscribe('p2p/v1/#', (topic, payload) => raw.push({ topic, payload }));
  await tick();
  const rejected = (id: string) =>
    metricValue(ends[id]!.metrics, 'p2p_messages_rejected_total', { reason: 'confidential' });
  return { clock, bus, p, dir, ends, raw, rejected };
}

const reading = { netW: 1234.5, pvW: 2000, loadW: 765.5, voltagePu: 1.01 };

/** A meter reading envelope signed by `sender` with its own key around `body`, as it is (not sealed by a transport). */
function signedReading(c: Awaited<ReturnType<typeof cell>>, sender: string, body: unknown): Envelope {
  const keys = c.p.keys.get(sender)!;
  return new EnvelopeSigner(sender, keys.privateKey, keys.publicKey).sign({
    v: 1,
    sender,
    epoch: 1,
    seq: 12,
    ts: c.clock.now(),
    expires: c.clock.now() + 60_000,
    type: 'reading',
    body,
  });
}

describe('confidential messages between gateways', () => {
  it("a meter reading reaches the cell's MG trader only; a neighbour or the platform cannot read it", async () => {
    const c = await cell();
    const got: Record<string, unknown[]> = { tx: [], platform: [], 'inv-2': [] };
    for (const id of Object.keys(got))
      c.ends[id]!.t.on({ cell: 'c1', cls: 'meter', type: 'reading' }, ({ envelope }) => {
        got[id]!.push(envelope.body);
      });
    await c.ends['inv-1']!.t.publish('meter', 'reading', reading);
    await tick();
    expect(got.tx).toEqual([reading]);
    expect(got.platform).toEqual([]);
    expect(got['inv-2']).toEqual([]);
    expect(await c.rejected('inv-2')).toBe(1);
    expect(await c.rejected('platform')).toBe(1);

    // On the wire (what the broker and a D2D neighbour see): sealed, and still signed by its sender.
    const onWire = c.raw.find((r) => r.topic === 'p2p/v1/c1/inv-1/meter/reading')!;
    for (const plain of ['netW', 'pvW', 'loadW', '1234.5', '765.5']) expect(onWire.payload).not.toContain(plain);
    const envelope = JSON.parse(onWire.payload) as Envelope<SealedBody>;
    expect(envelope.body.enc).toBe(SEALED_SCHEME);
    expect(envelope.body.to.map((t) => t.id)).toEqual(['tx']);
    const { sig, ...unsigned } = envelope;
    const senderKey = publicKeyObject(c.p.keys.get('inv-1')!.publicKey);
    expect(verify(null, Buffer.from(canonicalJson(unsigned)), senderKey, Buffer.from(sig!, 'base64url'))).toBe(true);
  });

  it('an addressed dispatch opens only at its target; its acknowledgement is sealed to its sender', async () => {
    const c = await cell();
    const dispatch = { session: '1', prices: [0.2], pvKWh: [1], curtailKWh: [0], netKWh: [-1], paymentTotal: -0.2 };
    const got: Record<string, unknown[]> = { 'inv-1': [], 'inv-2': [] };
    for (const id of Object.keys(got))
      c.ends[id]!.t.on({ cell: 'c1', cls: 'mkt', type: 'dispatch', target: 'inv-1' }, ({ envelope }) => {
        got[id]!.push(envelope.body);
      });
    await c.ends.tx!.t.publish('mkt', 'dispatch', dispatch, { target: 'inv-1' });
    await tick();
    expect(got['inv-1']).toEqual([dispatch]);
    expect(got['inv-2']).toEqual([]);
    expect(await c.rejected('inv-2')).toBe(1);
    // The acknowledgement is held a moment (up to 150 ms) in case more messages of tx's follow.
    await c.clock.advance(200);
    const wire = c.raw.filter((r) => r.topic.includes('/mkt/'));
    expect(wire.map((r) => r.topic).sort()).toEqual(['p2p/v1/c1/inv-1/mkt/ack/tx', 'p2p/v1/c1/tx/mkt/dispatch/inv-1']);
    for (const r of wire) {
      expect(r.payload).not.toContain('paymentTotal');
      expect((JSON.parse(r.payload) as Envelope<SealedBody>).body.enc).toBe(SEALED_SCHEME);
    }
    // The acknowledgement opened at the dispatch's sender: nothing waits in its outbox.
    expect(c.ends.tx!.t.linkQuality().outboxPending).toBe(0);
  });

  it("a member that re-signs another's sealed body as its own sends what nobody can open", async () => {
    const c = await cell();
    const got: unknown[] = [];
    c.ends.tx!.t.on({ cell: 'c1', cls: 'meter', type: 'reading' }, ({ envelope }) => {
      got.push(envelope);
    });
    await c.ends['inv-1']!.t.publish('meter', 'reading', reading);
    await tick();
    expect(got).toHaveLength(1);
    const stolen = (JSON.parse(c.raw.find((r) => r.topic.endsWith('inv-1/meter/reading'))!.payload) as Envelope).body;
    // inv-2 sends inv-1's sealed reading under its own name (a valid signature of its own).
    await c.ends['inv-2']!.t.publishUnchecked('meter', 'reading', stolen);
    await tick();
    // It was sealed again by inv-2's transport around the stolen body: that opens, but is no reading.
    expect(got).toHaveLength(1);
    // The same bytes sent raw, signed by inv-2: bound to inv-1's message, they do not open.
    const before = await c.rejected('tx');
    const forged = signedReading(c, 'inv-2', stolen);
    c.bus.publish('p2p/v1/c1/inv-2/meter/reading', JSON.stringify(forged), false);
    await tick();
    expect(got).toHaveLength(1);
    expect(await c.rejected('tx')).toBe(before + 1);
    expect(sealingContext('p2p/v1/c1/inv-2/meter/reading', forged)).not.toEqual(
      sealingContext('p2p/v1/c1/inv-1/meter/reading', { ...forged, sender: 'inv-1' }),
    );
  });

  it('is never sent in the clear: without a reader nothing is sent, with readers but no key the publish fails', async () => {
    // A cell of houses only: a reading has no reader, so it is not sent at all.
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const p = signedCell(['h-1', 'h-2'], makeDir(), T0);
    const house = signedEndpoint(bus, p, 'h-1', clock);
    await house.t.start();
    const wire: string[] = [];
    bus.subscribe('p2p/v1/+/+/meter/#', (topic) => wire.push(topic));
    await house.t.publish('meter', 'reading', reading);
    await tick();
    expect(wire).toEqual([]);
    expect(house.t.linkQuality().outboxPending).toBe(0);

    // The cell's MG trader is in a list that gives it no encryption key: the house refuses to send.
    const c = await cell();
    const noKey = signMembersList(
      {
        ...c.p.members,
        serial: c.p.members.serial + 1,
        members: c.p.members.members.map(({ encryptionKey: _key, ...m }) => m),
      },
      c.p.operator.privateKey,
    );
    writeFileAtomic(c.p.membersFile, JSON.stringify(noKey));
    await c.clock.advance(6000); // the transports read a changed members file every 5 s
    const before = c.raw.length;
    await expect(c.ends['inv-1']!.t.publish('meter', 'reading', reading)).rejects.toThrow(
      /meter\/reading: no reader of it has an encryption key .*tx without one; a confidential body is not sent in the clear/,
    );
    await expect(
      c.ends.tx!.t.publish(
        'mkt',
        'dispatch',
        { session: '1', prices: [], pvKWh: [], curtailKWh: [], netKWh: [], paymentTotal: 0 },
        { target: 'inv-1' },
      ),
    ).rejects.toThrow(/mkt\/dispatch: no reader of it has an encryption key .*inv-1 without one/);
    await tick();
    expect(c.raw.slice(before).filter((r) => !r.topic.includes('/life/'))).toEqual([]);
  });

  it('a confidential body sent in the clear is refused', async () => {
    const c = await cell();
    const got: unknown[] = [];
    c.ends.tx!.t.on({ cell: 'c1', cls: 'meter', type: 'reading' }, ({ envelope }) => {
      got.push(envelope);
    });
    const clear = signedReading(c, 'inv-1', reading);
    c.bus.publish('p2p/v1/c1/inv-1/meter/reading', JSON.stringify(clear), false);
    await tick();
    expect(got).toEqual([]);
    expect(await c.rejected('tx')).toBe(1);
  });

  it('survives a rotation of a reader’s key: what was sealed to the old key still opens, new messages use the new one', async () => {
    const c = await cell();
    const got: unknown[] = [];
    const take = (e: Endpoint) =>
      e.t.on({ cell: 'c1', cls: 'meter', type: 'energy', target: 'platform' }, ({ envelope }) => {
        got.push(envelope.body);
      });
    take(c.ends.platform!);
    const house = c.ends['inv-1']!;
    const interval = (netKWh: number) => ({ fromMs: T0, toMs: T0 + 900_000, netKWh, coveredMs: 900_000 });
    const send = (netKWh: number) => house.t.publish('meter', 'energy', interval(netKWh), { target: 'platform' });
    await send(1);
    await tick();
    expect(got).toHaveLength(1);

    // The platform goes away; the house's next interval waits in its outbox, sealed to the platform's key.
    await c.ends.platform!.t.close();
    await send(2);
    await tick();
    expect(got).toHaveLength(1);

    // Meanwhile its gateway rotates its key (keygen --rotate) and the operator publishes the new one.
    const keyFile = c.p.keyFile('platform');
    const before = GatewayKeyFile.parse(JSON.parse(readFileSync(keyFile, 'utf8')));
    const fresh = generateEncryptionKeyPair();
    writeFileAtomic(keyFile, JSON.stringify(rotateEncryptionKey(before, fresh, c.clock.now())));
    const list = c.p.members;
    const next = signMembersList(
      {
        ...list,
        serial: list.serial + 1,
        members: list.members.map((m) => (m.id === 'platform' ? { ...m, encryptionKey: fresh.publicKey } : m)),
      },
      c.p.operator.privateKey,
    );
    writeFileAtomic(c.p.membersFile, JSON.stringify(next));
    await c.clock.advance(6000); // the transports read a changed members file every 5 s
    await tick();

    // Back with the rotated key file: the waiting interval, sealed to the retired key, still opens.
    const back = signedEndpoint(c.bus, c.p, 'platform', c.clock, { retryInitialMs: 500 });
    take(back);
    await back.t.start();
    const arrived = () => got.some((b) => (b as { netKWh: number }).netKWh === 2);
    for (let i = 0; i < 20 && !arrived(); i++) {
      await c.clock.advance(1000);
      await tick();
    }
    expect(got).toContainEqual(interval(2));

    // New messages are sealed to the new key.
    await send(3);
    await tick();
    expect(got).toContainEqual(interval(3));
    const latest = c.raw.filter((r) => r.topic.endsWith('inv-1/meter/energy/platform')).at(-1)!;
    const sealed = (JSON.parse(latest.payload) as Envelope<SealedBody>).body;
    expect(sealed.to.find((t) => t.id === 'platform')!.kid).toBe(ownEncryptionKey(fresh).kid);

    // A day and more after the rotation the retired key is no longer opened.
    const second = c.raw.filter((r) => r.topic.endsWith('inv-1/meter/energy/platform'))[1]!;
    const envelope = JSON.parse(second.payload) as Envelope<SealedBody>;
    expect(envelope.body.to.find((t) => t.id === 'platform')!.kid).toBe(keyId(before.encryptionPublicKey!));
    const keyring = EncryptionKeyring.load(keyFile, 'platform');
    const context = sealingContext(second.topic, envelope);
    expect(keyring.open(envelope.body, context, c.clock.now()).ok).toBe(true);
    expect(keyring.open(envelope.body, context, c.clock.now() + 26 * 3600_000)).toEqual({
      ok: false,
      problem: 'not a reader',
    });
  });
});
