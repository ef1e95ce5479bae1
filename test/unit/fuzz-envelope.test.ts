import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, EnvelopeStamper, MAX_CLOCK_SKEW_MS, MAX_PAYLOAD_BYTES } from '../../src/comms/envelope.js';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { ReplayGuard } from '../../src/comms/replay-guard.js';
import { EnvelopeSigner, GatewayKeyFile, MembersDirectory } from '../../src/comms/security.js';
import { MESSAGE_CLASSES, parseTopic, type TopicParts, topicFor } from '../../src/comms/topics.js';
import type { Envelope } from '../../src/comms/transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { ErrorCode } from '../../src/core/errors.js';
import { MembersList } from '../../src/core/members.js';
import { generateKeyPair } from '../../src/core/signing.js';
import { parseWith, readDataFile } from '../../src/core/validate.js';
import { check, fuzz, mutated, outcome } from '../helpers/fuzz.js';
import { tempDir } from '../helpers/net.js';
import { securityFor, signedCell, signedEndpoint, tick } from '../helpers/signed-cell.js';

/**
 * Fuzzing of the MQTT/D2D wire format (docs/fuzzing.md; comms-security.test.ts has the scenario
 * tests): envelope decoding of arbitrary bytes and JSON, topics, the replay guard, and the whole
 * acceptance path of a receiving gateway fed genuine, forged, tampered, replayed, expired and
 * misaddressed messages. Nothing throws; only genuine, fresh, first copies reach a handler.
 */

const tmp = tempDir('p2p-fuzz-envelope-');
afterAll(() => tmp.remove());

const T0 = 1_800_000_000_000;

const genuineEnvelope: Envelope = {
  v: 1,
  sender: 'a',
  epoch: 1_800_000,
  seq: 8 * 12 + 3,
  ts: T0,
  expires: T0 + 10_000,
  type: 'pushsum',
  body: { bus: '7', epoch: 2, seq: 12, s: { a: 1.5 }, w: 0.5 },
  sig: 'x'.repeat(86),
};

describe('fuzz: envelope decoding (src/comms/envelope.ts)', () => {
  const payloads = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.string({ maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    mutated(genuineEnvelope).map((v) => JSON.stringify(v) ?? ''),
  );
  const hostile = fc.oneof(
    fc.nat({ max: 30_000 }).map((depth) => `{"v":1,"body":${'['.repeat(depth)}${']'.repeat(depth)}}`),
    fc.constant('x'.repeat(MAX_PAYLOAD_BYTES + 1)),
  );

  it('any payload: an envelope inside the time window or a rejection reason, never a throw', () => {
    fc.assert(
      fc.property(
        fc.oneof({ weight: 50, arbitrary: payloads }, { weight: 1, arbitrary: hostile }),
        fc.integer({ min: T0 - 100_000, max: T0 + 100_000 }),
        (payload, now) => {
          const r = decodeEnvelope(payload, now);
          if (!r.ok) {
            expect(['size', 'schema', 'expired']).toContain(r.reason);
            return;
          }
          const e = r.envelope;
          expect(e.v).toBe(1);
          expect(e.expires).toBeGreaterThanOrEqual(now);
          expect(e.ts).toBeLessThanOrEqual(now + MAX_CLOCK_SKEW_MS);
          for (const n of [e.epoch, e.seq, e.ts, e.expires]) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
        },
      ),
      fuzz(),
    );
  });

  it('stamp → sign → JSON → decode gives the envelope back, and it verifies', () => {
    const p = signedCell(['a', 'b'], join(tmp.dir, 'roundtrip'), T0);
    const security = securityFor(p, 'a');
    const clock = new VirtualClock(T0);
    const stamper = new EnvelopeStamper('a', clock);
    fc.assert(
      fc.property(
        fc.constantFrom(...MESSAGE_CLASSES),
        fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
        fc.jsonValue({ maxDepth: 3 }),
        fc.boolean(),
        (cls, type, body, targeted) => {
          const env = security.sign(stamper.stamp(cls, type, body, undefined, targeted));
          const r = decodeEnvelope(Buffer.from(JSON.stringify(env)), clock.now());
          expect(r.ok).toBe(true);
          if (!r.ok) return;
          expect(r.envelope).toEqual(JSON.parse(JSON.stringify(env)));
          expect(security.check(r.envelope, { cell: 'c1', sender: 'a', cls, type })).toBeUndefined();
        },
      ),
      fuzz(0.1),
    );
  });
});

describe('fuzz: topics (src/comms/topics.ts)', () => {
  const level = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
  it('any topic string: parts or undefined; the parts of a topic made by topicFor come back', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .array(fc.oneof(level, fc.string({ maxLength: 5 }), fc.constantFrom('p2p', 'v1', 'mkt', '+', '#', '')), {
              maxLength: 9,
            })
            .map((l) => l.join('/')),
        ),
        fc.record(
          { cell: level, sender: level, cls: fc.constantFrom(...MESSAGE_CLASSES), type: level, target: level },
          { requiredKeys: ['cell', 'sender', 'cls', 'type'] },
        ),
        (topic, parts: TopicParts) => {
          const r = outcome(() => parseTopic(topic));
          expect(r.ok).toBe(true);
          expect(parseTopic(topicFor(parts))).toEqual(parts);
        },
      ),
      fuzz(0.5),
    );
  });
});

describe('fuzz: replay guard (src/comms/replay-guard.ts)', () => {
  it('any sequence of (sender, epoch, seq): no triple is ever new twice', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('a', 'b'),
            fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant(Number.MAX_SAFE_INTEGER)),
            fc.oneof(fc.nat({ max: 200 }), fc.nat({ max: 100_000 }), fc.constant(Number.MAX_SAFE_INTEGER)),
          ),
          { maxLength: 30 },
        ),
        (messages) => {
          const guard = new ReplayGuard(16);
          const accepted = new Set<string>();
          for (const [sender, epoch, seq] of messages) {
            const r = guard.check(sender, epoch, seq);
            const key = `${sender}/${epoch}/${seq}`;
            if (!(r.gap >= 0)) throw new Error(`negative gap ${r.gap} for ${key}`);
            if (r.verdict !== 'new') continue;
            if (accepted.has(key)) throw new Error(`${key} accepted twice`);
            accepted.add(key);
          }
        },
      ),
      fuzz(),
    );
  });
});

type Attack =
  | 'genuine'
  | 'forged'
  | 'tampered'
  | 'unsigned'
  | 'topic-sender'
  | 'non-member'
  | 'other-cell'
  | 'replayed'
  | 'expired'
  | 'future'
  | 'garbage';

describe('fuzz: acceptance of received messages (src/comms/base-transport.ts, security.ts)', () => {
  it('only a genuine, fresh, first copy from a member of the cell reaches a handler; nothing throws', async () => {
    const p = signedCell(['a', 'b', 'x'], join(tmp.dir, 'accept'), T0);
    const clock = new VirtualClock(T0);
    const receiver = signedEndpoint(new MemoryBus(), p, 'b', clock);
    await receiver.t.start();
    receiver.t.subscribeUnchecked({ cell: '+', cls: 'gossip' }, (d) => receiver.got.push(d));
    await tick();
    const handleIncoming = (topic: string, payload: string | Uint8Array) =>
      (receiver.t as unknown as { handleIncoming(t: string, p: string | Uint8Array): void }).handleIncoming(
        topic,
        payload,
      );
    const a = securityFor(p, 'a');
    const intruderKey = generateKeyPair();
    const intruder = new EnvelopeSigner('a', intruderKey.privateKey, intruderKey.publicKey);
    const outsider = new EnvelopeSigner('zz', intruderKey.privateKey, intruderKey.publicKey);
    let seq = 0;

    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Attack>(
          'genuine',
          'forged',
          'tampered',
          'unsigned',
          'topic-sender',
          'non-member',
          'other-cell',
          'replayed',
          'expired',
          'future',
          'garbage',
        ),
        fc.constantFrom('ts', 'expires', 'type', 'body', 'epoch', 'seq', 'sender', 'v'),
        fc.jsonValue({ maxDepth: 2 }),
        fc.uint8Array({ maxLength: 64 }),
        async (attack, field, body, bytes) => {
          await clock.advance(1);
          const now = clock.now();
          seq += 1;
          const base: Envelope = {
            v: 1,
            sender: 'a',
            epoch: 1,
            seq: seq * 8 + 3,
            ts: now,
            expires: now + 10_000,
            type: 'pushsum',
            body,
          };
          let topic = 'p2p/v1/c1/a/gossip/pushsum';
          let payload: string | Uint8Array = JSON.stringify(a.sign(base));
          let expected = 1;
          switch (attack) {
            case 'genuine':
              break;
            case 'forged':
              payload = JSON.stringify(intruder.sign(base));
              expected = 0;
              break;
            case 'tampered': {
              const changed: Record<string, unknown> = { ...a.sign(base) };
              changed[field] =
                typeof changed[field] === 'number' ? (changed[field] as number) + 1 : `${String(changed[field])}x`;
              if (field === 'body') changed.body = { changed: body };
              payload = JSON.stringify(changed);
              expected = 0;
              break;
            }
            case 'unsigned':
              payload = JSON.stringify(base);
              expected = 0;
              break;
            case 'topic-sender':
              topic = 'p2p/v1/c1/x/gossip/pushsum';
              expected = 0;
              break;
            case 'non-member':
              topic = 'p2p/v1/c1/zz/gossip/pushsum';
              payload = JSON.stringify(outsider.sign({ ...base, sender: 'zz' }));
              expected = 0;
              break;
            case 'other-cell':
              topic = 'p2p/v1/c2/a/gossip/pushsum';
              expected = 0;
              break;
            case 'replayed': {
              const first = receiver.got.length;
              handleIncoming(topic, payload);
              expect(receiver.got.length - first).toBe(1);
              expected = 0; // the second copy
              break;
            }
            case 'expired':
              payload = JSON.stringify(a.sign({ ...base, ts: now - 20_000, expires: now - 1 }));
              expected = 0;
              break;
            case 'future':
              payload = JSON.stringify(a.sign({ ...base, ts: now + MAX_CLOCK_SKEW_MS + 1, expires: now + 60_000 }));
              expected = 0;
              break;
            case 'garbage':
              payload = bytes;
              expected = 0;
              break;
          }
          const before = receiver.got.length;
          handleIncoming(topic, payload);
          expect(receiver.got.length - before).toBe(expected);
        },
      ),
      fuzz(),
    );
    await receiver.t.close();
  });
});

describe('fuzz: members list and key files (src/comms/security.ts, src/core/members.ts)', () => {
  const p = signedCell(['a', 'b', 'x'], join(tmp.dir, 'members'), T0);
  const signedList = readDataFile(p.membersFile, ErrorCode.config);
  const original = parseWith(MembersList, signedList, { code: ErrorCode.config });

  it('a changed members list: refused with a config error, or it is the same list (the signature covers every field)', () => {
    const directory = new MembersDirectory(p.operatorPublicKey, original);
    fc.assert(
      fc.property(mutated(signedList), (input) => {
        const r = outcome(() => {
          const list = parseWith(MembersList, input, { file: 'members.json', code: ErrorCode.config });
          return { list, directory: new MembersDirectory(p.operatorPublicKey, list, undefined) };
        }, [ErrorCode.config]);
        if (r.ok)
          check(
            JSON.stringify(r.value.list) === JSON.stringify(original),
            () => `a changed list was accepted: ${JSON.stringify(input)}`,
          );
        const list = MembersList.safeParse(input);
        if (list.success) check(directory.update(list.data) === false, 'a changed list replaced the signed one');
      }),
      fuzz(),
    );
  });

  it('a mutated key file: a signer, or a config/input error', () => {
    const key = p.keys.get('a')!;
    fc.assert(
      fc.property(mutated({ id: 'a', publicKey: key.publicKey, privateKey: key.privateKey }), (input) => {
        outcome(() => {
          const k = parseWith(GatewayKeyFile, input, { file: 'a.key.json', code: ErrorCode.config });
          return new EnvelopeSigner(k.id, k.privateKey, k.publicKey);
        }, [ErrorCode.config, ErrorCode.input]);
      }),
      fuzz(0.3),
    );
  });
});
