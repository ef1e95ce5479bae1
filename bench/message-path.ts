/**
 * `npm run bench:message-path [-- --messages N]`: where a message's CPU goes. Each step a gateway runs
 * for one reliable message, timed alone on one core over N meter readings (5 000 by default) with the
 * project's own code: on the sender, stamping, sealing to the cell's MG trader, signing (canonical
 * JSON + Ed25519), serialising and the outbox's journal (appended and fsynced before `publish`
 * returns, the message is then safe; for what is kept on disk: a house's reading of every cycle is
 * kept in memory only, its metering interval, a dispatch or a draft are not); on the receiver, decoding (JSON, envelope schema, window), the
 * member and signature check, the replay guard, opening, the body's schema, the metrics and a log
 * line. The acknowledgement goes through the same steps again, its body smaller. Prints a table and
 * writes bench/results/message-path.json. Times are wall time per step; only the outbox waits (for the
 * disk), the other steps are CPU.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { table } from '../src/bench/report-table.js';
import { decodeEnvelope, EnvelopeStamper } from '../src/comms/envelope.js';
import { checkBody } from '../src/comms/messages/catalogue.js';
import { DEFAULT_OUTBOX, Outbox } from '../src/comms/outbox.js';
import { provisionIdentities } from '../src/comms/provision.js';
import { ReplayGuard } from '../src/comms/replay-guard.js';
import { EncryptionKeyring, EnvelopeSigner, MembersDirectory, MessageSecurity } from '../src/comms/security.js';
import { parseTopic, topicFor } from '../src/comms/topics.js';
import { VirtualClock } from '../src/core/clock.js';
import { GatewayMetrics } from '../src/core/metrics.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg('messages', 5000);
const T0 = Date.now();
const dir = mkdtempSync(join(tmpdir(), 'p2p-bench-path-'));

const ids = provisionIdentities(
  [
    { id: 'inv-1', cell: 'c1', kind: 'inverter' },
    { id: 'tx-1', cell: 'c1', kind: 'transformer' },
  ],
  join(dir, 'ids'),
  T0,
);
const security = (id: string) => {
  const key = ids.keys.get(id)!;
  return new MessageSecurity(
    new EnvelopeSigner(id, key.privateKey, key.publicKey),
    MembersDirectory.load(ids.membersFile, ids.operatorPublicKey),
    EncryptionKeyring.load(ids.keyFile(id), id),
  );
};
const house = security('inv-1');
const trader = security('tx-1');
const topic = topicFor({ cell: 'c1', sender: 'inv-1', cls: 'meter', type: 'reading' });
const parts = parseTopic(topic)!;
const clock = new VirtualClock(T0);
const stamper = new EnvelopeStamper('inv-1', clock, 1);

type Step = { step: string; side: 'sender' | 'receiver'; usPerMessage: number };
const steps: Step[] = [];
/** Runs `f` over every message once to warm up, then times a second pass: µs per message. */
function time<T, R>(step: string, side: Step['side'], inputs: T[], f: (x: T, i: number) => R): R[] {
  inputs.forEach(f);
  const t = performance.now();
  const out = inputs.map(f);
  steps.push({ step, side, usPerMessage: Math.round(((performance.now() - t) * 1000 * 10) / inputs.length) / 10 });
  return out;
}

const indices = Array.from({ length: N }, (_, i) => i);
const bodies = indices.map((i) => ({ netW: 1234.5 - i, pvW: 3000 + i, loadW: 4234.5, voltagePu: 1.02 }));
const stamped = time('stamp (epoch, seq, times)', 'sender', bodies, (b) => stamper.stamp('meter', 'reading', b, 750));
const sealed = time('seal to the MG trader (ephemeral key held)', 'sender', stamped, (e) => {
  const out = house.seal(topic, parts, e);
  if (!out) throw new Error('no reader');
  return out.envelope;
});
const signed = time('sign (canonical JSON + Ed25519)', 'sender', sealed, (e) => house.sign(e));
const payloads = time('serialise (JSON)', 'sender', signed, (e) => JSON.stringify(e));
const outbox = new Outbox({ ...DEFAULT_OUTBOX, maxEntries: 2 * N + 10 }, join(dir, 'outbox.json'));
outbox.load(T0);
let journalled = 0;
time('outbox: journal appended and fsynced (wall time: the disk)', 'sender', payloads, (payload) =>
  outbox.add(
    {
      id: `1:${journalled++}`,
      cls: 'meter',
      type: 'reading',
      topic,
      payload,
      retain: false,
      expires: T0 + 60_000,
      awaiting: ['tx-1'],
      blind: false,
    },
    T0,
  ),
);
outbox.close();

const decoded = time('decode (JSON, envelope schema, window)', 'receiver', payloads, (p) => {
  const d = decodeEnvelope(p, T0);
  if (!d.ok) throw new Error(d.reason);
  return d.envelope;
});
time('member and signature (canonical JSON + Ed25519)', 'receiver', decoded, (e) => {
  if (trader.check(e, parts)) throw new Error('refused');
});
let guard = new ReplayGuard();
time('replay guard', 'receiver', decoded, (e, i) => {
  if (i === 0) guard = new ReplayGuard();
  return guard.check(e.sender, e.epoch, e.seq);
});
const opened = time('open (sealed body)', 'receiver', decoded, (e) => {
  const o = trader.open(topic, parts, e, T0);
  if (!o.ok) throw new Error(o.problem);
  return o.body;
});
time('body schema (catalogue)', 'receiver', opened, (b) => {
  if (!checkBody(parts, b).ok) throw new Error('refused');
});
const metrics = new GatewayMetrics({ gateway: 'tx-1' });
time('metrics (received, latency histogram)', 'receiver', decoded, (e) => {
  metrics.messagesReceived.inc({ class: 'meter' });
  metrics.messageLatency.observe({ class: 'meter' }, (T0 - e.ts) / 1000);
});
const sink = join(dir, 'log');
const { default: pino } = await import('pino');
const fileLog = pino({ level: 'info' }, pino.destination({ dest: sink, sync: false }));
time('a log line (pino, asynchronous file)', 'receiver', decoded, (e) =>
  fileLog.info({ topic, sender: e.sender, seq: e.seq }, 'message'),
);
fileLog.flush();

const sum = (side: Step['side']) => steps.filter((s) => s.side === side).reduce((a, s) => a + s.usPerMessage, 0);
const total = sum('sender') + sum('receiver');
rmSync(dir, { recursive: true, force: true });
const rows = steps.map((s) => [
  s.side,
  s.step,
  s.usPerMessage.toFixed(1),
  `${((100 * s.usPerMessage) / total).toFixed(0)} %`,
]);
process.stdout.write(
  `${N} meter readings, each step alone on one core (Node ${process.version})\n${table([
    ['side', 'step', 'µs per message', 'share'],
    ...rows,
    [
      '',
      'sender / receiver / both',
      `${sum('sender').toFixed(1)} / ${sum('receiver').toFixed(1)} / ${total.toFixed(1)}`,
      '',
    ],
  ]).join('\n')}\n`,
);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'message-path.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, messages: N, steps, totalUs: total }, null, 2)}\n`,
);
