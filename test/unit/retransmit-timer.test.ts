import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AckBody } from '../../src/comms/messages/ack.js';
import { Outbox } from '../../src/comms/outbox.js';
import { ReliableDelivery } from '../../src/comms/reliable-delivery.js';
import { RetransmitTimer, RTO_FLOOR_MS } from '../../src/comms/retransmit-timer.js';
import type { MessageClass, TopicParts } from '../../src/comms/topics.js';
import type { Envelope } from '../../src/comms/transport.js';
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { seededRandom } from '../../src/core/prng.js';
import { tempDir } from '../helpers/net.js';
import { metricValue, silentLog } from '../helpers/signed-cell.js';

/** A clock the test sets by hand (reliable delivery sets no timers: the transport drives it). */
class ManualClock implements Clock {
  constructor(private ms = 0) {}
  now(): number {
    return this.ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
  setTimeout(): TimerHandle {
    throw new Error('no timers here');
  }
  clearTimeout(): void {}
}

const tmp = tempDir('p2p-rto-');
afterAll(() => tmp.remove());

/** RFC 6298 with the outbox's defaults: 1 s before any sample, 8 s ceiling, a 100 ms timer. */
const timer = (random: () => number = () => 0, options: Partial<{ initialRtoMs: number; maxRtoMs: number }> = {}) =>
  new RetransmitTimer({ initialRtoMs: 1000, maxRtoMs: 8000, granularityMs: 100, ...options }, random);

describe('RetransmitTimer: RFC 6298 worked by hand (α = 1/8, β = 1/4, K = 4, G = 100 ms)', () => {
  it('is the initial timeout before any sample, then SRTT = R, RTTVAR = R/2 (2.2)', () => {
    const t = timer();
    expect(t.rtoMs).toBe(1000);
    expect(t.srttMs).toBeUndefined();
    expect(t.observe(200, false)).toBe(true);
    expect(t.srttMs).toBe(200);
    expect(t.rttvarMs).toBe(100);
    // RTO = 200 + max(100, 4·100) = 600
    expect(t.rtoMs).toBe(600);
  });

  it('updates RTTVAR from the old SRTT, then SRTT (2.3)', () => {
    const t = timer();
    t.observe(200, false);
    t.observe(400, false);
    // RTTVAR = 3/4·100 + 1/4·|200 − 400| = 125; SRTT = 7/8·200 + 1/8·400 = 225; RTO = 225 + 4·125 = 725
    expect(t.rttvarMs).toBe(125);
    expect(t.srttMs).toBe(225);
    expect(t.rtoMs).toBe(725);
    t.observe(225, false);
    // RTTVAR = 3/4·125 + 0 = 93.75; SRTT = 225; RTO = 225 + 375 = 600
    expect(t.rttvarMs).toBe(93.75);
    expect(t.rtoMs).toBe(600);
  });

  it("takes no sample from a message that was resent (Karn's rule)", () => {
    const t = timer();
    t.observe(200, false);
    expect(t.observe(5000, true)).toBe(false);
    expect(t.srttMs).toBe(200);
    expect(t.rtoMs).toBe(600);
  });

  it('backs the RTO off on a timeout (5.5), at most once per RTO, until a message sent once gives a sample', () => {
    const t = timer();
    t.observe(200, false); // RTO 600
    t.timedOut(10_000);
    expect(t.rtoMs).toBe(1200);
    t.timedOut(10_500); // other messages timing out together: no further doubling within the RTO
    expect(t.rtoMs).toBe(1200);
    t.timedOut(11_200);
    expect(t.rtoMs).toBe(2400);
    for (const now of [13_600, 16_000, 20_000]) t.timedOut(now);
    expect(t.rtoMs).toBe(8000); // the ceiling
    t.observe(200, true); // a resent message: still no sample
    expect(t.rtoMs).toBe(8000);
    t.observe(200, false); // SRTT 200, RTTVAR 75: RTO from the measurements again
    expect(t.rtoMs).toBe(500);
  });

  it('adds at least the timer granularity G, and clamps to the floor and the ceiling', () => {
    const steady = timer();
    steady.observe(1000, false);
    for (let i = 0; i < 60; i++) steady.observe(1000, false);
    // RTTVAR → 500·(3/4)^60 ≈ 0: RTO = 1000 + max(G, 4·RTTVAR) = 1100
    expect(steady.rtoMs).toBe(1100);
    const fast = timer();
    fast.observe(20, false); // 20 + max(100, 40) = 120, below the floor
    expect(fast.rtoMs).toBe(RTO_FLOOR_MS);
    expect(RTO_FLOOR_MS).toBe(300);
    const slow = timer();
    slow.observe(5000, false); // 5000 + 4·2500 = 15 000, above the 8 s ceiling
    expect(slow.rtoMs).toBe(8000);
    // A lab bench asking for 200 ms resends lowers the floor to that.
    const lab = timer(() => 0, { initialRtoMs: 200 });
    expect(lab.rtoMs).toBe(200);
    lab.observe(20, false);
    expect(lab.rtoMs).toBe(200);
    // An initial timeout above the ceiling is the ceiling.
    expect(timer(() => 0, { initialRtoMs: 20_000 }).rtoMs).toBe(8000);
  });

  it('backs off per send: the window doubles up to the ceiling, equal jitter within it, never below the RTO', () => {
    // RTO 1 s, ceiling 8 s: send n waits in [min(2^(n−1), 4), min(2^n, 8)] s.
    const low = timer(() => 0);
    expect([1, 2, 3, 4, 5, 10].map((n) => low.timeoutMs(n))).toEqual([1000, 2000, 4000, 4000, 4000, 4000]);
    const high = timer(() => 0.999_999);
    expect([1, 2, 3, 4, 5].map((n) => high.timeoutMs(n))).toEqual([2000, 4000, 8000, 8000, 8000]);
    const middle = timer(() => 0.5);
    expect([1, 2, 3, 4].map((n) => middle.timeoutMs(n))).toEqual([1500, 3000, 6000, 6000]);
    // RTO 6 s: the first window [4, 8] s (capped) is raised to start at the RTO.
    const slowLink = timer(() => 0);
    slowLink.observe(2000, false); // 2000 + 4·1000 = 6000
    expect(slowLink.timeoutMs(1)).toBe(6000);
  });

  it('spreads a reconnection over [0, min(RTO, 1 s)]', () => {
    const t = timer(() => 0.5);
    t.observe(200, false); // RTO 600
    expect(t.spreadMs()).toBe(300);
    const slow = timer(() => 0.5);
    slow.observe(2000, false); // RTO 6000: the window stays 1 s
    expect(slow.spreadMs()).toBe(500);
  });
});

const entry = (id: string) => ({
  id,
  cls: 'dr' as const,
  type: 'call',
  topic: 'x',
  payload: '{}',
  retain: false,
  expires: 600_000,
  awaiting: ['p'],
  blind: false,
});

describe('Outbox due times', () => {
  it('each resend due within its jittered window, doubling to the ceiling', () => {
    const box = new Outbox(
      { maxEntries: 10, retryInitialMs: 1000, retryMaxMs: 8000, maxBlindAttempts: 3 },
      undefined,
      timer(seededRandom(3)),
    );
    box.add(entry('1:1'), 0);
    const windows = [
      [1000, 2000],
      [2000, 4000],
      [4000, 8000],
      [4000, 8000],
      [4000, 8000],
      [4000, 8000],
    ];
    let sentAt = 0;
    const waits: number[] = [];
    for (const [lo, hi] of windows) {
      const due = box.all()[0]!.nextAt;
      const wait = due - sentAt;
      expect(wait).toBeGreaterThanOrEqual(lo!);
      expect(wait).toBeLessThanOrEqual(hi!);
      waits.push(wait);
      expect(box.takeDue(due - 1).resend).toHaveLength(0);
      expect(box.takeDue(due).resend).toHaveLength(1);
      sentAt = due;
    }
    // Jittered: the waits at the ceiling are not all the same.
    expect(new Set(waits.slice(2)).size).toBeGreaterThan(1);
    expect(box.all()[0]!.attempts).toBe(7);
  });

  it('two gateways sending the same instant resend at different instants', () => {
    const a = new Outbox(undefined, undefined, timer(seededRandom(1)));
    const b = new Outbox(undefined, undefined, timer(seededRandom(2)));
    a.add(entry('1:1'), 0);
    b.add(entry('1:1'), 0);
    expect(a.all()[0]!.nextAt).not.toBe(b.all()[0]!.nextAt);
  });
});

/** A reliable delivery on a fake link: what it sends, with metrics; acks handed in by the test. */
function delivery(options: { random?: () => number; stateDir?: string; clock?: ManualClock } = {}) {
  const clock = options.clock ?? new ManualClock(0);
  const metrics = new GatewayMetrics({ gateway: 'g' });
  const sent: { topic: string; at: number }[] = [];
  const d = new ReliableDelivery(
    { gatewayId: 'g', cell: 'c1' },
    {
      clock,
      log: silentLog,
      metrics,
      random: options.random ?? (() => 0),
      ...(options.stateDir ? { stateDir: options.stateDir } : {}),
    },
    {
      seal: () => undefined,
      send: async (topic) => {
        sent.push({ topic, at: clock.now() });
      },
      peers: () => [],
    },
  );
  let seq = 0;
  const send = (cls: MessageClass, type: string, target?: string, ttlMs = 600_000) => {
    seq += 1;
    const envelope = { epoch: 1, seq, expires: clock.now() + ttlMs } as Envelope;
    d.track(envelope, cls, type, `t/${seq}`, '{}', target ? { target } : {});
    return seq;
  };
  const ack = (from: string, cls: MessageClass, type: string, seqAcked: number) => {
    const parts: TopicParts = { cell: 'c1', sender: from, cls, type: 'ack', target: 'g' };
    const body: AckBody = { epoch: 1, seq: seqAcked, type };
    d.acknowledged(parts, { sender: from, body } as Envelope<AckBody>, clock.now());
  };
  /** The outbox's timer, as the transport drives it (every 100 ms). */
  const run = (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      clock.set(clock.now() + 100);
      d.resendDue();
    }
  };
  return { d, clock, metrics, sent, send, ack, run };
}

/** Count and sum of the delivery-time histogram for one class and attempt. */
async function histogram(metrics: GatewayMetrics, labels: { class: string; attempt: string }) {
  const { values } = await metrics.deliverySeconds.get();
  const pick = (name: string) =>
    values.find((v) => v.metricName === name && v.labels.class === labels.class && v.labels.attempt === labels.attempt)
      ?.value ?? 0;
  return { count: pick('p2p_delivery_seconds_count'), sum: pick('p2p_delivery_seconds_sum') };
}

describe('reliable delivery: the timer from acknowledgements, and delivery counted at the sender', () => {
  it('a message acknowledged without a resend: sent once, delivered first, its round trip measured', async () => {
    const g = delivery();
    expect(await metricValue(g.metrics, 'p2p_retransmit_timeout_seconds', {})).toBe(1);
    const seq = g.send('dr', 'call', 'p');
    g.clock.set(120);
    g.ack('p', 'dr', 'call', seq);
    expect(await metricValue(g.metrics, 'p2p_reliable_sent_total', { class: 'dr', type: 'call' })).toBe(1);
    expect(
      await metricValue(g.metrics, 'p2p_reliable_delivered_total', { class: 'dr', type: 'call', attempt: 'first' }),
    ).toBe(1);
    expect(await histogram(g.metrics, { class: 'dr', attempt: 'first' })).toEqual({ count: 1, sum: 0.12 });
    // SRTT 120, RTTVAR 60: RTO = 120 + 240 = 360 ms
    expect(g.d.ackRttMs).toBe(120);
    expect(await metricValue(g.metrics, 'p2p_ack_rtt_seconds', {})).toBe(0.12);
    expect(await metricValue(g.metrics, 'p2p_retransmit_timeout_seconds', {})).toBe(0.36);
    // A second acknowledgement of the same message counts nothing.
    g.ack('p', 'dr', 'call', seq);
    expect(
      await metricValue(g.metrics, 'p2p_reliable_delivered_total', { class: 'dr', type: 'call', attempt: 'first' }),
    ).toBe(1);
  });

  it('a resent message: counted as sent once, delivered as retried, its delivery time from the first send, no RTT sample', async () => {
    const g = delivery();
    const seq = g.send('mkt', 'dispatch', 'p');
    g.run(1500); // RTO 1 s, jitter 0: resent at 1 s
    expect(g.sent.map((s) => s.at)).toEqual([1000]);
    g.ack('p', 'mkt', 'dispatch', seq);
    expect(await metricValue(g.metrics, 'p2p_reliable_sent_total', { class: 'mkt', type: 'dispatch' })).toBe(1);
    expect(await metricValue(g.metrics, 'p2p_retransmits_total', { class: 'mkt' })).toBe(1);
    const delivered = (attempt: string) =>
      metricValue(g.metrics, 'p2p_reliable_delivered_total', { class: 'mkt', type: 'dispatch', attempt });
    expect(await delivered('retried')).toBe(1);
    expect(await delivered('first')).toBe(0);
    expect(await histogram(g.metrics, { class: 'mkt', attempt: 'retried' })).toEqual({ count: 1, sum: 1.5 });
    expect(g.d.ackRttMs).toBeUndefined();
    // The timeout backed the RTO off; no sample has come since.
    expect(g.d.retransmitTimeoutMs).toBe(2000);
  });

  it('a message to the cell whose receivers are not known yet is delivered by the first acknowledgement', async () => {
    const g = delivery();
    const price = g.send('mkt', 'price');
    g.clock.set(50);
    g.ack('a', 'mkt', 'price', price);
    g.ack('b', 'mkt', 'price', price);
    expect(
      await metricValue(g.metrics, 'p2p_reliable_delivered_total', { class: 'mkt', type: 'price', attempt: 'first' }),
    ).toBe(1);
    // A meter reading to the cell stays for all its blind attempts once heard: delivered once, at the first ack.
    const reading = g.send('meter', 'reading');
    g.clock.set(80);
    g.ack('a', 'meter', 'reading', reading);
    g.ack('b', 'meter', 'reading', reading);
    g.run(10_000);
    expect(
      await metricValue(g.metrics, 'p2p_reliable_delivered_total', {
        class: 'meter',
        type: 'reading',
        attempt: 'first',
      }),
    ).toBe(1);
    expect(await histogram(g.metrics, { class: 'meter', attempt: 'first' })).toEqual({ count: 1, sum: 0.03 });
  });

  it('a message whose receiver went away, or that was given up, is not counted as delivered', async () => {
    const g = delivery();
    // a and b learnt as readers of mkt/offer from their acknowledgements.
    const first = g.send('mkt', 'offer');
    g.ack('a', 'mkt', 'offer', first);
    g.ack('b', 'mkt', 'offer', first);
    const second = g.send('mkt', 'offer');
    g.d.peerGone('b');
    g.ack('a', 'mkt', 'offer', second);
    expect(g.d.outbox.size).toBe(0);
    expect(await metricValue(g.metrics, 'p2p_reliable_sent_total', { class: 'mkt', type: 'offer' })).toBe(2);
    expect(await metricValue(g.metrics, 'p2p_reliable_delivered_total', { class: 'mkt', type: 'offer' })).toBe(1);
    // Never acknowledged: expires and is given up.
    g.send('dr', 'call', 'gone', 5000);
    g.run(10_000);
    expect(await metricValue(g.metrics, 'p2p_outbox_dropped_total', { class: 'dr', reason: 'expired' })).toBe(1);
    expect(await metricValue(g.metrics, 'p2p_reliable_sent_total', { class: 'dr', type: 'call' })).toBe(1);
    expect(await metricValue(g.metrics, 'p2p_reliable_delivered_total', { class: 'dr', type: 'call' })).toBe(0);
  });

  it('a message reloaded after a restart is not counted as sent again, is counted as delivered, and gives no RTT sample', async () => {
    const stateDir = join(tmp.dir, 'reloaded');
    const clock = new ManualClock(0);
    const before = delivery({ stateDir, clock });
    const a = before.send('meter', 'energy', 'platform');
    const b = before.send('meter', 'energy', 'platform');
    before.d.outbox.close();
    clock.set(60_000);
    const after = delivery({ stateDir, clock });
    expect(after.d.load(clock.now())).toBe(2);
    // Acknowledged before its resend after the restart: its round trip would span the restart.
    clock.set(60_050);
    after.ack('platform', 'meter', 'energy', a);
    after.run(200); // the other is resent at once, then acknowledged
    after.ack('platform', 'meter', 'energy', b);
    const labels = { class: 'meter', type: 'energy' };
    expect(await metricValue(after.metrics, 'p2p_reliable_sent_total', labels)).toBe(0);
    expect(await metricValue(after.metrics, 'p2p_reliable_delivered_total', { ...labels, attempt: 'first' })).toBe(1);
    expect(await metricValue(after.metrics, 'p2p_reliable_delivered_total', { ...labels, attempt: 'retried' })).toBe(1);
    // From the first send, before the restart.
    expect((await histogram(after.metrics, { class: 'meter', attempt: 'first' })).sum).toBe(60.05);
    expect(after.d.ackRttMs).toBeUndefined();
  });

  it('after a reconnection everything pending goes out spread over [0, min(RTO, 1 s)], not in one instant', () => {
    let next = 0;
    const draws = [0, 0, 0, 0, 0.1, 0.45, 0.9, 0.3];
    const g = delivery({ random: () => draws[next++] ?? 0 });
    for (let i = 0; i < 4; i++) g.send('dr', 'call', 'p');
    g.clock.set(200);
    g.d.resendAll();
    expect(g.sent).toHaveLength(0); // nothing in the instant of the reconnection
    expect(g.d.outbox.all().map((e) => e.nextAt)).toEqual([300, 650, 1100, 500]);
    g.run(1000);
    expect(g.sent.map((s) => s.at)).toEqual([300, 500, 700, 1100]);
  });
});
