import { Ledger } from '../platform/ledger/ledger.js';
import type { BenchGateway } from './processes.js';
import { parsePrometheus, type Sample, sumOf } from './prometheus.js';
import type { SidelinkNetwork } from './sidelink-network.js';
import { sleep } from './wait.js';

/** The classes whose delivery a gateway cut off from the broker is judged by: its meter readings and market bids. */
export const RELAYED_CLASSES = ['meter', 'mkt'] as const;

/**
 * How long before the uplink comes back the bench stops counting what the cut gateway sends: what it
 * sent until then has that long to be acknowledged through the relay (a message sent later and
 * acknowledged meanwhile is not counted as one of those). Seconds: on a bench whose 2 cores host every
 * gateway, a message's round trip through the relay reaches 2-4 s at the p99.
 */
const SETTLE_BEFORE_RESTORE_MS = 5000;
/**
 * How long the bench waits, before the cut, for a moment when the gateway awaits no acknowledgement of
 * these classes: the count then takes nothing sent before the cut for something sent during it.
 */
const IDLE_WAIT_MS = 3000;

export interface ClassThroughRelay {
  /** Reliable messages of the class the gateway sent while cut off (its own counter). */
  sent: number;
  /** Of those, acknowledged by every receiver before the uplink came back: only the relay could carry them. */
  delivered: number;
  ratio: number | null;
}

/** What a gateway cut off from the broker got through its neighbours' D2D relay. */
export interface UplinkCutReport {
  delivery: Record<(typeof RELAYED_CLASSES)[number], ClassThroughRelay>;
  /**
   * End to end at the platform: the metering intervals the gateway sent while cut off (its state's
   * list) and those of them in the platform's database before its uplink came back.
   */
  readingsAtPlatform: { sent: number; stored: number; ratio: number | null } | null;
  /** Messages it handed to a relay, and messages a relay brought down to it (its own counters). */
  handedUp: number;
  receivedDown: number;
  /** Its messages its neighbours published on the broker for it, per neighbour (their counters). */
  relayedBy: Record<string, number>;
}

/**
 * Of the messages sent between the cut (`atCut`) and the last count (`lastCount`), those acknowledged
 * by the end of the cut (`atEnd`), counted so as never to overstate: every acknowledgement that came
 * during the cut goes first to the messages that were awaiting one when the cut began, then to those
 * sent after the last count, and only the rest to the messages counted.
 */
export function deliveredWhileCut(
  atCut: ReliableCounts,
  lastCount: ReliableCounts,
  atEnd: ReliableCounts,
): ClassThroughRelay {
  const pendingAtCut = Math.max(0, atCut.sent - atCut.delivered - atCut.dropped);
  const sent = lastCount.sent - atCut.sent;
  const acknowledged = atEnd.delivered - atCut.delivered;
  const delivered = Math.max(0, Math.min(sent, acknowledged - pendingAtCut - (atEnd.sent - lastCount.sent)));
  return { sent, delivered, ratio: sent > 0 ? Number((delivered / sent).toFixed(4)) : null };
}

/** The metering intervals (their start) a house lists as sent, the last few. */
async function intervalsSentBy(g: BenchGateway): Promise<number[]> {
  return (await g.state())?.roles.prosumer?.intervalsSent ?? [];
}

/** The metering intervals of `member` in the platform's database now; undefined before it exists. */
function storedIntervals(platformDb: string, member: string): Set<number> | undefined {
  let ledger: Ledger;
  try {
    ledger = Ledger.open(platformDb, { mustExist: true });
  } catch {
    return undefined;
  }
  try {
    const rows = ledger.db.prepare('SELECT from_ms FROM platform_meter_intervals WHERE member = ?').all(member) as {
      from_ms: number;
    }[];
    return new Set(rows.map((r) => r.from_ms));
  } finally {
    ledger.close();
  }
}

/** The gateway's metrics at a moment it awaits no acknowledgement of the counted classes (or after `IDLE_WAIT_MS`). */
async function idleMoment(g: BenchGateway): Promise<Sample[]> {
  const until = Date.now() + IDLE_WAIT_MS;
  for (;;) {
    const m = await metricsOf(g);
    const pending = RELAYED_CLASSES.reduce((n, cls) => {
      const r = reliable(m, cls);
      return n + Math.max(0, r.sent - r.delivered - r.dropped);
    }, 0);
    if (pending === 0 || Date.now() >= until) return m;
    await sleep(50);
  }
}

async function metricsOf(g: BenchGateway): Promise<Sample[]> {
  const text = await g.metrics();
  return text ? parsePrometheus(text) : [];
}

/** A gateway's counters of the reliable messages of one class it sent, had delivered and gave up. */
export interface ReliableCounts {
  sent: number;
  delivered: number;
  dropped: number;
}

const reliable = (m: readonly Sample[], cls: string): ReliableCounts => ({
  sent: sumOf(m, 'p2p_reliable_sent_total', { class: cls }),
  delivered: sumOf(m, 'p2p_reliable_delivered_total', { class: cls }),
  dropped: sumOf(m, 'p2p_outbox_dropped_total', { class: cls }),
});

/**
 * Cuts `target`'s uplink for `durationMs` and counts, from its own metrics, what of the meter readings
 * and market messages it sent meanwhile was acknowledged before the link came back: those can only
 * have gone through a neighbour's relay. The count is conservative: messages still awaiting an
 * acknowledgement when the cut began are taken as acknowledged during it, and the acknowledgements in
 * the last `SETTLE_BEFORE_RESTORE_MS` go first to what was sent in that time (never counted).
 */
export async function cutUplink(
  sidelink: SidelinkNetwork,
  target: BenchGateway,
  neighbours: readonly BenchGateway[],
  durationMs: number,
  platformDb: string,
): Promise<UplinkCutReport> {
  const before = await idleMoment(target);
  const intervalsAtCut = new Set(await intervalsSentBy(target));
  sidelink.cutUplink(target.id, true);
  let lastCount: Sample[] = before;
  let atEnd: Sample[] = before;
  let intervalsWhileCut: number[] = [];
  let stored: Set<number> | undefined;
  try {
    await sleep(Math.max(0, durationMs - SETTLE_BEFORE_RESTORE_MS));
    lastCount = await metricsOf(target);
    intervalsWhileCut = (await intervalsSentBy(target)).filter((fromMs) => !intervalsAtCut.has(fromMs));
    await sleep(Math.min(durationMs, SETTLE_BEFORE_RESTORE_MS));
    atEnd = await metricsOf(target);
    stored = storedIntervals(platformDb, target.id);
  } finally {
    sidelink.cutUplink(target.id, false);
  }
  const readingsStored = stored ? intervalsWhileCut.filter((fromMs) => stored.has(fromMs)).length : 0;
  const delivery = Object.fromEntries(
    RELAYED_CLASSES.map((cls) => [
      cls,
      deliveredWhileCut(reliable(before, cls), reliable(lastCount, cls), reliable(atEnd, cls)),
    ]),
  ) as UplinkCutReport['delivery'];
  const relayedBy: Record<string, number> = {};
  for (const n of neighbours) {
    const relayed = sumOf(await metricsOf(n), 'p2p_relay_messages_total', {
      peer: target.id,
      direction: 'up',
      outcome: 'relayed',
    });
    if (relayed > 0) relayedBy[n.id] = relayed;
  }
  return {
    delivery,
    readingsAtPlatform: stored
      ? {
          sent: intervalsWhileCut.length,
          stored: readingsStored,
          ratio: intervalsWhileCut.length > 0 ? Number((readingsStored / intervalsWhileCut.length).toFixed(4)) : null,
        }
      : null,
    handedUp:
      sumOf(atEnd, 'p2p_relay_messages_total', { direction: 'up', outcome: 'handed' }) -
      sumOf(before, 'p2p_relay_messages_total', { direction: 'up', outcome: 'handed' }),
    receivedDown:
      sumOf(atEnd, 'p2p_relay_messages_total', { direction: 'down', outcome: 'received' }) -
      sumOf(before, 'p2p_relay_messages_total', { direction: 'down', outcome: 'received' }),
    relayedBy,
  };
}
