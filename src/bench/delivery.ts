import type { GatewayState } from '../agent/gateway.js';
import { deliveryRatio } from './kpi.js';
import { histogramQuantile, type Sample, sumOf } from './prometheus.js';

/** The reliable classes whose delivery the senders count (acknowledged by every receiver they await). */
export const COUNTED_CLASSES = ['mkt', 'dr', 'meter', 'settle'] as const;

const SENDER_METRICS = new Set([
  'p2p_reliable_sent_total',
  'p2p_reliable_delivered_total',
  'p2p_outbox_dropped_total',
  'p2p_delivery_seconds_bucket',
]);

/** Metering intervals of a house kept between samples (its state lists the last few it sent). */
const MAX_INTERVALS_PER_MEMBER = 100_000;

/** Latency percentiles, ms (null without observations). */
export interface LatencyPercentiles {
  p50: number | null;
  p99: number | null;
  count: number;
}

export interface EndToEndDelivery {
  /** Per class: messages acknowledged by every receiver they were meant for, over messages sent. */
  ratio: Record<string, number | null>;
  /** The same with only the messages that got there at their first attempt. */
  firstAttempt: Record<string, number | null>;
  sent: Record<string, number>;
  /** Given up by an outbox, per class and reason (expired, unacked, overflow). */
  givenUp: Record<string, Record<string, number>>;
  /** Per `<class>/<type>`: sent, delivered (after retries) and delivered at the first attempt. */
  byKind: Record<string, { sent: number; delivered: number; firstAttempt: number }>;
  /** From a message's first send to the acknowledgement that completed it, at the sender. */
  latencyMs: { first: LatencyPercentiles; retried: LatencyPercentiles };
}

/**
 * Delivery counted where messages are sent: each gateway's counters of the reliable messages it sent
 * and of those every receiver acknowledged (`p2p_reliable_*`), and the metering intervals each house
 * says it sent. A gateway's counters start again with its process, so the tally keeps the last
 * sample of every run of every gateway (its generation: the process's start count) and adds them up;
 * the bench samples a gateway once more right before it kills it.
 */
export class DeliveryTally {
  private readonly last = new Map<string, Sample[]>();
  private readonly intervals = new Map<string, Set<number>>();
  /** Per run of each gateway and class, the messages it had sent when the day ended (`endOfRun`). */
  private sentAtEnd: Map<string, number> | undefined;

  /** A gateway's metrics and state at one sample, in its `generation`-th run. */
  add(gateway: string, generation: number, metrics: readonly Sample[] | undefined, state?: GatewayState): void {
    if (metrics)
      this.last.set(
        `${gateway}#${generation}`,
        metrics.filter((m) => SENDER_METRICS.has(m.name)),
      );
    const sent = state?.roles.prosumer?.intervalsSent;
    if (sent?.length) {
      const known = this.intervals.get(gateway) ?? new Set<number>();
      for (const fromMs of sent) if (known.size < MAX_INTERVALS_PER_MEMBER) known.add(fromMs);
      this.intervals.set(gateway, known);
    }
  }

  /** The metering intervals (their start, ms) each house sent to the platform. */
  intervalsSent(): ReadonlyMap<string, ReadonlySet<number>> {
    return this.intervals;
  }

  /**
   * Per run of each gateway and class: reliable messages sent so far, and those whose fate is known
   * (delivered or given up). Kept apart so that one gateway's quick answers do not hide another's wait.
   */
  progress(): Map<string, { sent: number; resolved: number }> {
    const out = new Map<string, { sent: number; resolved: number }>();
    for (const [run, samples] of this.last) {
      for (const cls of COUNTED_CLASSES) {
        const sent = sumOf(samples, 'p2p_reliable_sent_total', { class: cls });
        if (sent === 0) continue;
        const resolved =
          sumOf(samples, 'p2p_reliable_delivered_total', { class: cls }) +
          sumOf(samples, 'p2p_outbox_dropped_total', { class: cls });
        out.set(`${run}/${cls}`, { sent, resolved });
      }
    }
    return out;
  }

  /**
   * The day ends now: the ratios count the messages sent until now. The gateways go on sending while
   * the bench waits for the acknowledgements; of what each run of a gateway delivered by the last
   * sample, the messages it sent after this moment are taken as delivered first (the count of the
   * day's messages delivered is never overstated).
   */
  endOfRun(): void {
    this.sentAtEnd = new Map([...this.progress()].map(([key, p]) => [key, p.sent]));
  }

  /** Delivered (all, and at the first attempt) among the messages of `cls` sent by the end of the day. */
  private deliveredOfTheDay(cls: string): { sent: number; delivered: number; first: number } {
    const total = { sent: 0, delivered: 0, first: 0 };
    for (const [run, samples] of this.last) {
      const sentNow = sumOf(samples, 'p2p_reliable_sent_total', { class: cls });
      const sentByEnd = this.sentAtEnd ? (this.sentAtEnd.get(`${run}/${cls}`) ?? 0) : sentNow;
      const later = Math.max(0, sentNow - sentByEnd);
      const delivered = sumOf(samples, 'p2p_reliable_delivered_total', { class: cls });
      const first = sumOf(samples, 'p2p_reliable_delivered_total', { class: cls, attempt: 'first' });
      total.sent += sentByEnd;
      total.delivered += Math.max(0, delivered - later);
      total.first += Math.max(0, first - later);
    }
    return total;
  }

  result(): EndToEndDelivery {
    const all = [...this.last.values()].flat();
    const ratio: Record<string, number | null> = {};
    const firstAttempt: Record<string, number | null> = {};
    const sent: Record<string, number> = {};
    const givenUp: Record<string, Record<string, number>> = {};
    for (const cls of COUNTED_CLASSES) {
      sent[cls] = sumOf(all, 'p2p_reliable_sent_total', { class: cls });
      givenUp[cls] = {};
      for (const m of all)
        if (m.name === 'p2p_outbox_dropped_total' && m.labels.class === cls && m.labels.reason)
          givenUp[cls][m.labels.reason] = (givenUp[cls][m.labels.reason] ?? 0) + m.value;
      const day = this.deliveredOfTheDay(cls);
      ratio[cls] = day.sent > 0 ? round4(deliveryRatio(day.delivered, day.sent)) : null;
      firstAttempt[cls] = day.sent > 0 ? round4(deliveryRatio(day.first, day.sent)) : null;
    }
    const latency = (attempt: string): LatencyPercentiles => {
      const q = (p: number) => {
        const s = histogramQuantile(all, 'p2p_delivery_seconds', p, { attempt });
        return Number.isNaN(s) ? null : Number((s * 1000).toFixed(2));
      };
      const count = all
        .filter(
          (m) => m.name === 'p2p_delivery_seconds_bucket' && m.labels.attempt === attempt && m.labels.le === '+Inf',
        )
        .reduce((n, m) => n + m.value, 0);
      return { p50: q(0.5), p99: q(0.99), count };
    };
    const byKind: EndToEndDelivery['byKind'] = {};
    for (const m of all) {
      if (m.name !== 'p2p_reliable_sent_total' && m.name !== 'p2p_reliable_delivered_total') continue;
      const kind = `${m.labels.class}/${m.labels.type}`;
      const k = byKind[kind] ?? { sent: 0, delivered: 0, firstAttempt: 0 };
      byKind[kind] = k;
      if (m.name === 'p2p_reliable_sent_total') k.sent += m.value;
      else {
        k.delivered += m.value;
        if (m.labels.attempt === 'first') k.firstAttempt += m.value;
      }
    }
    return {
      ratio,
      firstAttempt,
      sent,
      givenUp,
      byKind,
      latencyMs: { first: latency('first'), retried: latency('retried') },
    };
  }
}

const round4 = (x: number) => Number(x.toFixed(4));
