import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EnvelopeStamper } from '../../src/comms/envelope.js';
import type { SettleDraftBody, SettleSignatureBody, SignedContent } from '../../src/comms/messages/settle.js';
import { SealedBody, sealBody } from '../../src/comms/sealed-body.js';
import { EncryptionKeyring, EnvelopeSigner, GatewayKeyFile, sealingContext } from '../../src/comms/security.js';
import type { Envelope } from '../../src/comms/transport.js';
import { systemClock } from '../../src/core/clock.js';
import { generateKeyPair, verifyCanonical } from '../../src/core/signing.js';
import { contentHash, Ledger, signContent } from '../../src/platform/ledger/ledger.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { BROKERS, type TestBroker } from '../helpers/brokers.js';
import { BIN, eventually, tempDir } from '../helpers/net.js';

/**
 * The co-signed settlement's refusals, with real processes: a bench run (one cell of three houses,
 * its trader, the DSO and the platform, each a `p2p-edge run` process) over a real Mosquitto that
 * this test's client also listens to and publishes on, sealing messages with the run's own keys;
 * and a platform killed in the middle of its commits.
 */

const CELL = 'cell-a';
const PLATFORM = 'platform-1';
const MEMBER = 'inv-1';

interface Seen {
  topic: string;
  bytes: Buffer;
  envelope: Envelope<unknown>;
}

let broker: TestBroker;
let client: MqttClient;
const seen: Seen[] = [];
let bench: ChildProcess;
let benchOut = '';
let benchErr = '';
let benchExit: Promise<number | null>;
let runDir = '';
const work = tempDir('p2p-settle-hil-');

const topicOf = (sender: string, type: string, target?: string) =>
  `p2p/v1/${CELL}/${sender}/settle/${type}${target ? `/${target}` : ''}`;

/** The messages seen on a topic, their bodies opened with the key of the gateway they are addressed to. */
const from = (sender: string, type: string, target?: string) =>
  seen
    .filter((m) => m.topic === topicOf(sender, type, target))
    .map((m) => ({ ...m, envelope: { ...m.envelope, body: opened(m, target) } }));

const keyrings = new Map<string, EncryptionKeyring>();

function opened(m: Seen, target: string | undefined): unknown {
  const body = m.envelope.body;
  if (target === undefined || typeof body !== 'object' || body === null || !('enc' in body)) return body;
  let keyring = keyrings.get(target);
  if (!keyring) {
    keyring = EncryptionKeyring.load(keyFile(target), target);
    keyrings.set(target, keyring);
  }
  const result = keyring.open(SealedBody.parse(body), sealingContext(m.topic, m.envelope), Date.now());
  if (!result.ok) throw new Error(`${m.topic}: ${result.problem}`);
  return result.body;
}

function keyFile(id: string): string {
  return join(runDir, 'identities', `${id}.key.json`);
}

function publicKeyOf(id: string): string {
  return (JSON.parse(readFileSync(keyFile(id), 'utf8')) as { publicKey: string }).publicKey;
}

/**
 * A message signed as `sender` with the run's key and its body sealed to `target` (as the sender's
 * transport does), in the epoch before its current one (so the replay guard takes it as new).
 */
function sealed(sender: string, type: string, body: unknown, target: string): { envelope: Envelope; bytes: string } {
  const current = seen.filter((m) => m.envelope.sender === sender).at(-1)!.envelope.epoch;
  const stamper = new EnvelopeStamper(sender, systemClock, current - 1);
  const plain = stamper.stamp('settle', type, body, undefined, true);
  const targetKey = GatewayKeyFile.parse(JSON.parse(readFileSync(keyFile(target), 'utf8'))).encryptionPublicKey!;
  const sealedBody = sealBody(
    body,
    [{ id: target, encryptionKey: targetKey }],
    sealingContext(topicOf(sender, type, target), plain),
  );
  const envelope = EnvelopeSigner.fromKeyFile(keyFile(sender), sender).sign({ ...plain, body: sealedBody });
  return { envelope, bytes: JSON.stringify(envelope) };
}

async function statusPort(id: string): Promise<number> {
  const config = parseYaml(readFileSync(join(runDir, `${id}.yaml`), 'utf8')) as { status: { port: number } };
  return config.status.port;
}

async function platformSettlement(): Promise<{ refusedSignatures: number; refusedDisputes: number }> {
  const r = await fetch(`http://127.0.0.1:${await statusPort(PLATFORM)}/api/state`);
  const state = (await r.json()) as {
    roles: { platform: { settlement: { refusedSignatures: number; refusedDisputes: number } } };
  };
  return state.roles.platform.settlement;
}

async function rejected(reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${await statusPort(PLATFORM)}/metrics`)).text();
  const m = new RegExp(`^p2p_messages_rejected_total\\{[^}]*reason="${reason}"[^}]*\\}\\s+(\\S+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function withDb<T>(read: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase(join(runDir, 'platform', 'ledger.db'), { mustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  broker = await BROKERS[1]!.start();
  client = mqtt.connect(broker.url, { clientId: 'settle-hil-observer', reconnectPeriod: 200 });
  client.on('message', (topic, payload) => {
    seen.push({ topic, bytes: Buffer.from(payload), envelope: JSON.parse(payload.toString()) as Envelope<unknown> });
  });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync('p2p/v1/+/+/settle/#', { qos: 1 });
  const scenario = join(work.dir, 'settle.yaml');
  writeFileSync(
    scenario,
    [
      'name: settle-hil',
      'durationS: 34',
      'speedup: 600',
      'startHour: 11',
      'aggregator: false',
      'cells:',
      `  - { id: ${CELL}, houses: 3, pvKW: 8, loadKW: 4 }`,
      '',
    ].join('\n'),
  );
  bench = spawn(process.execPath, [BIN, 'bench', '--scenario', scenario, '--broker', broker.url, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  bench.stdout!.on('data', (d) => {
    benchOut += d;
  });
  bench.stderr!.on('data', (d) => {
    benchErr += d;
  });
  benchExit = new Promise((resolve) => bench.on('exit', (code) => resolve(code)));
  runDir = await eventually(() => /run directory (\S+)/.exec(benchErr)?.[1], 30_000);
  // Settlement is under way: the platform drafts, the member signs.
  await eventually(() => (from(MEMBER, 'signature', PLATFORM).length >= 2 ? true : undefined), 45_000, 200);
}, 80_000);

afterAll(async () => {
  if (bench && bench.exitCode === null) bench.kill('SIGTERM');
  await benchExit;
  client?.end(true);
  await broker?.close();
  work.remove();
});

/** The last real draft the platform sent the member. */
function realDraft(): SettleDraftBody {
  // Not the tampered one the test itself sent for an interval an hour ahead.
  const drafts = from(PLATFORM, 'draft', MEMBER)
    .map((m) => m.envelope.body as SettleDraftBody)
    .filter((d) => Number(d.unit.split('/')[0]) <= Date.now());
  // One with trades, where the platform is a party (its fees), when there is one.
  return drafts.findLast((d) => d.content.parties.some((p) => p.id === PLATFORM)) ?? drafts.at(-1)!;
}

describe('co-signed settlement between real gateway processes', () => {
  it('a draft with one member’s bill inflated (moved to the platform’s account) gets a dispute naming amounts.<member> with both figures, never a signature', async () => {
    const real = realDraft();
    const payload = real.content.payload as { interval: number; market: string; cell: string; unit: string };
    // An interval an hour on: a unit the member has not answered (one it signed it would refuse as another version).
    const interval = payload.interval + 3_600_000;
    const unit = `${interval}/${payload.market}/${payload.cell}`;
    const inflateBy = 0.5;
    const amounts = { ...real.content.amounts };
    const own = amounts[MEMBER]!;
    amounts[MEMBER] = Number((own - inflateBy).toFixed(9));
    amounts[PLATFORM] = Number(((amounts[PLATFORM] ?? 0) + inflateBy).toFixed(9));
    const parties = real.content.parties.some((p) => p.id === PLATFORM)
      ? real.content.parties
      : [...real.content.parties, { id: PLATFORM, publicKey: publicKeyOf(PLATFORM) }];
    const content: SignedContent = { ...real.content, parties, amounts, payload: { ...payload, interval, unit } };
    expect(Object.values(amounts).reduce((a, b) => a + b, 0)).toBeCloseTo(0, 6);
    const hash = contentHash(content);
    const refusedBefore = (await platformSettlement()).refusedDisputes;
    const { bytes } = sealed(PLATFORM, 'draft', { unit, content }, MEMBER);
    await client.publishAsync(topicOf(PLATFORM, 'draft', MEMBER), bytes, { qos: 1 });

    const dispute = await eventually(
      () =>
        from(MEMBER, 'dispute', PLATFORM)
          .map(
            (m) =>
              m.envelope.body as {
                unit: string;
                contentHash: string;
                lines: { line: string; draft: unknown; own: unknown }[];
              },
          )
          .find((d) => d.contentHash === hash),
      15_000,
    );
    expect(dispute.unit).toBe(unit);
    const line = dispute.lines.find((l) => l.line === `amounts.${MEMBER}`);
    expect(line, JSON.stringify(dispute.lines)).toBeDefined();
    expect(line!.draft).toBe(amounts[MEMBER]);
    expect(line!.own as number).toBeCloseTo(own, 8);
    // The platform holds no draft of that content: it refuses the dispute (its state counts it).
    await eventually(async () => ((await platformSettlement()).refusedDisputes > refusedBefore ? true : undefined));
    await new Promise((r) => setTimeout(r, 1000));
    const signed = from(MEMBER, 'signature', PLATFORM).filter(
      (m) => (m.envelope.body as SettleSignatureBody).contentHash === hash,
    );
    expect(signed).toEqual([]);
  }, 25_000);

  it('a member’s signature made with another key, in a message the member sealed, is refused and counted; nothing of it is stored or committed', async () => {
    const real = realDraft();
    const hash = contentHash(real.content);
    // A key no member has (another member's key would make that member's genuine signature).
    const forged = signContent(real.content, generateKeyPair().privateKey);
    expect(verifyCanonical(real.content, forged, publicKeyOf(MEMBER))).toBe(false);
    const before = (await platformSettlement()).refusedSignatures;
    const { envelope, bytes } = sealed(
      MEMBER,
      'signature',
      { unit: real.unit, contentHash: hash, signature: forged },
      PLATFORM,
    );
    await client.publishAsync(topicOf(MEMBER, 'signature', PLATFORM), bytes, { qos: 1 });

    // Taken by the platform (acknowledged: not dropped as a replay) and refused.
    await eventually(() =>
      from(PLATFORM, 'ack', MEMBER).some((m) => {
        const b = m.envelope.body as { epoch: number; seq: number };
        return b.epoch === envelope.epoch && b.seq === envelope.seq;
      })
        ? true
        : undefined,
    );
    await eventually(async () => ((await platformSettlement()).refusedSignatures === before + 1 ? true : undefined));
    const log = readFileSync(join(runDir, `${PLATFORM}.log`), 'utf8');
    expect(log).toContain(`signature of ${MEMBER} on ${real.unit} does not check`);
    const { storedForged, storedOwn, entries } = withDb((db) => ({
      storedForged: db
        .prepare('SELECT count(*) AS n FROM platform_settlement_signatures WHERE signature = ?')
        .get(forged) as {
        n: number;
      },
      storedOwn: db
        .prepare('SELECT signature FROM platform_settlement_signatures WHERE content_hash = ? AND party = ?')
        .all(hash, MEMBER) as { signature: string }[],
      entries: db.prepare('SELECT signatures FROM ledger_entries').all() as { signatures: string }[],
    }));
    expect(storedForged.n).toBe(0);
    // What is stored of the member for this draft is its own signature (it signs the real draft itself).
    for (const s of storedOwn) expect(verifyCanonical(real.content, s.signature, publicKeyOf(MEMBER))).toBe(true);
    expect(entries.some((e) => e.signatures.includes(forged))).toBe(false);
  }, 25_000);

  it('the exact bytes of a real signature message published again are refused as a duplicate (acknowledged again), the signature stored once', async () => {
    const original = from('tx-cell-a', 'signature', PLATFORM).at(-1)!;
    const body = original.envelope.body as SettleSignatureBody;
    // An acknowledgement names it first or among the others it covers (`more`).
    const acksOf = () =>
      from(PLATFORM, 'ack', 'tx-cell-a').filter((m) => {
        const b = m.envelope.body as { epoch: number; seq: number; more?: { epoch: number; seq: number }[] };
        return [b, ...(b.more ?? [])].some(
          (a) => a.epoch === original.envelope.epoch && a.seq === original.envelope.seq,
        );
      }).length;
    // The first one was taken and acknowledged.
    const acksBefore = await eventually(() => (acksOf() > 0 ? acksOf() : undefined));
    const duplicatesBefore = await rejected('duplicate');
    const refusedBefore = (await platformSettlement()).refusedSignatures;
    await client.publishAsync(original.topic, original.bytes, { qos: 1 });

    await eventually(() => (acksOf() > acksBefore ? true : undefined));
    await eventually(async () => ((await rejected('duplicate')) > duplicatesBefore ? true : undefined));
    expect((await platformSettlement()).refusedSignatures).toBe(refusedBefore);
    const rows = withDb(
      (db) =>
        db
          .prepare('SELECT count(*) AS n FROM platform_settlement_signatures WHERE content_hash = ? AND party = ?')
          .get(body.contentHash, 'tx-cell-a') as { n: number },
    );
    expect(rows.n).toBe(1);
  }, 25_000);

  it('the run ends cleanly, its ledger verifies and balances, and none of the injected messages left a trace in it', async () => {
    const code = await benchExit;
    expect(code, benchErr.slice(-2000)).toBe(0);
    const report = JSON.parse(benchOut) as { settlement: { balance: number; units: { committed: number } } };
    expect(report.settlement.units.committed).toBeGreaterThan(0);
    expect(Math.abs(report.settlement.balance)).toBeLessThanOrEqual(1e-6);
    const ledger = Ledger.open(join(runDir, 'platform', 'ledger.db'), {});
    try {
      expect(ledger.verify().ok).toBe(true);
      const future = ledger.db
        .prepare('SELECT count(*) AS n FROM platform_settlement_drafts WHERE interval > ?')
        .get(Date.now()) as { n: number };
      expect(future.n).toBe(0);
    } finally {
      ledger.close();
    }
  }, 60_000);
});

describe('a platform killed in the middle of its commits', () => {
  const FIXTURE = join(import.meta.dirname, 'fixtures', 'settlement-commit-loop.ts');
  // Enough that a kill 0.2-1 s into the loop lands while it commits.
  const UNITS = 1500;
  const KILLS = 4;

  function child(args: string[]): { process: ChildProcess; output: () => string; exited: Promise<number | null> } {
    const p = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      out += d;
    });
    return { process: p, output: () => out, exited: new Promise((resolve) => p.on('exit', (code) => resolve(code))) };
  }

  /** The database as a restarted platform finds it: a verified ledger, one entry per committed unit, each unit once. */
  function expectWhole(dbFile: string): number {
    const ledger = Ledger.open(dbFile, {});
    try {
      const verify = ledger.verify();
      expect(verify.ok, JSON.stringify(verify)).toBe(true);
      const entries = ledger.entries();
      const settled = ledger.db
        .prepare('SELECT unit, content_hash, ledger_index FROM platform_settled_units')
        .all() as { unit: string; content_hash: string; ledger_index: number }[];
      expect(entries.length).toBe(settled.length);
      const units = entries.map((e) => (e.payload as { unit: string }).unit);
      expect(new Set(units).size).toBe(units.length);
      const byIndex = new Map(entries.map((e) => [e.index, e]));
      for (const s of settled)
        expect((byIndex.get(s.ledger_index)?.payload as { unit: string } | undefined)?.unit).toBe(s.unit);
      return settled.length;
    } finally {
      ledger.close();
    }
  }

  it('SIGKILLed at random moments several times: after each kill the ledger verifies with no half entry and no unit twice; restarted, every unit is committed exactly once', async () => {
    const dbFile = join(work.dir, 'commits', 'ledger.db');
    const dir = join(work.dir, 'commits');
    mkdirSync(dir);
    const setup = child(['setup', dir]);
    expect(await setup.exited, setup.output()).toBe(0);
    let committed = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const run = child(['commit', dir, String(UNITS)]);
      await eventually(() => (run.output().includes('committing') ? true : undefined), 20_000, 20);
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
      expect(run.output(), 'killed before it finished').not.toContain('done');
      run.process.kill('SIGKILL');
      expect(await run.exited).toBeNull();
      const now = expectWhole(dbFile);
      expect(now).toBeGreaterThanOrEqual(committed);
      committed = now;
    }
    expect(committed).toBeLessThan(UNITS);
    const last = child(['commit', dir, String(UNITS)]);
    expect(await last.exited, last.output()).toBe(0);
    expect(last.output()).toContain('done');
    expect(expectWhole(dbFile)).toBe(UNITS);
  }, 60_000);
});
