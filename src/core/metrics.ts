import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The metrics every gateway exports at `/metrics` (names fixed by the interface contract). One
 * registry per gateway, so that several gateways in one process (simulation, demo) do not mix counts.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly messagesSent: Counter<'class'>;
  readonly messagesReceived: Counter<'class'>;
  readonly messagesRejected: Counter<'reason'>;
  readonly deliveryRatio: Gauge<'class'>;
  readonly peerUp: Gauge<'peer'>;
  readonly peerDeliveryRatio: Gauge<'peer'>;
  readonly sequenceGaps: Counter<'class'>;
  readonly retransmits: Counter<'class'>;
  readonly acksReceived: Counter<'class' | 'peer'>;
  readonly outboxPending: Gauge<'class'>;
  readonly outboxDropped: Counter<'class' | 'reason'>;
  readonly reliableSent: Counter<'class' | 'type'>;
  readonly reliableDelivered: Counter<'class' | 'type' | 'attempt'>;
  readonly deliverySeconds: Histogram<'class' | 'attempt'>;
  readonly retransmitTimeout: Gauge;
  readonly ackRtt: Gauge;
  readonly reconnects: Counter;
  readonly membersSerial: Gauge;
  readonly lteRegistered: Gauge;
  readonly lteSignal: Gauge<'quantity'>;
  readonly lteRecoveries: Counter<'step'>;
  readonly deviceUp: Gauge<'device'>;
  readonly deviceErrors: Counter<'device'>;
  readonly clockJumps: Counter;
  readonly voltagePu: Gauge<'bus'>;
  readonly price: Gauge<'slot'>;
  readonly cycleDuration: Histogram<'scale'>;
  readonly cycleOverruns: Counter<'scale'>;
  readonly messageLatency: Histogram<'class'>;

  constructor(labels: Record<string, string> = {}) {
    this.registry.setDefaultLabels(labels);
    const registers = [this.registry];
    this.messagesSent = new Counter({
      name: 'p2p_messages_sent_total',
      help: 'Messages published, by message class.',
      labelNames: ['class'],
      registers,
    });
    this.messagesReceived = new Counter({
      name: 'p2p_messages_received_total',
      help: 'Messages accepted, by message class.',
      labelNames: ['class'],
      registers,
    });
    this.messagesRejected = new Counter({
      name: 'p2p_messages_rejected_total',
      help: 'Messages dropped before reaching an algorithm, by reason (signature, replay, duplicate, expired, member, schema, size).',
      labelNames: ['reason'],
      registers,
    });
    this.deliveryRatio = new Gauge({
      name: 'p2p_delivery_ratio',
      help: 'Fraction of the messages peers sent that arrived, by class (from sequence gaps).',
      labelNames: ['class'],
      registers,
    });
    this.peerUp = new Gauge({
      name: 'p2p_peer_up',
      help: '1 while the peer is present (online message seen, no Will received).',
      labelNames: ['peer'],
      registers,
    });
    this.peerDeliveryRatio = new Gauge({
      name: 'p2p_peer_delivery_ratio',
      help: 'Fraction of the messages a peer sent to this gateway that arrived (from sequence gaps).',
      labelNames: ['peer'],
      registers,
    });
    this.sequenceGaps = new Counter({
      name: 'p2p_sequence_gaps_total',
      help: "Messages found missing from gaps in the peers' sequence numbers, by class (late arrivals are not subtracted).",
      labelNames: ['class'],
      registers,
    });
    this.retransmits = new Counter({
      name: 'p2p_retransmits_total',
      help: 'Messages sent again because no application-level acknowledgement came, by class.',
      labelNames: ['class'],
      registers,
    });
    this.acksReceived = new Counter({
      name: 'p2p_acks_received_total',
      help: 'Pending messages a peer acknowledged (its first acknowledgement of each), by class and peer.',
      labelNames: ['class', 'peer'],
      registers,
    });
    this.outboxPending = new Gauge({
      name: 'p2p_outbox_pending',
      help: 'Messages waiting in the outbox for an acknowledgement, by class.',
      labelNames: ['class'],
      registers,
    });
    this.outboxDropped = new Counter({
      name: 'p2p_outbox_dropped_total',
      help: 'Messages given up without an acknowledgement, by class and reason (expired, overflow, unacked).',
      labelNames: ['class', 'reason'],
      registers,
    });
    this.reliableSent = new Counter({
      name: 'p2p_reliable_sent_total',
      help: 'Reliable messages this gateway sent, each once (resends not counted, nor messages reloaded after a restart), by class and type.',
      labelNames: ['class', 'type'],
      registers,
    });
    this.reliableDelivered = new Counter({
      name: 'p2p_reliable_delivered_total',
      help: 'Reliable messages this gateway sent that every receiver they awaited acknowledged, by class, type and attempt (first: never resent; retried).',
      labelNames: ['class', 'type', 'attempt'],
      registers,
    });
    this.deliverySeconds = new Histogram({
      name: 'p2p_delivery_seconds',
      help: "From a reliable message's first send to the acknowledgement that completed it, by class and attempt (first, retried).",
      labelNames: ['class', 'attempt'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.retransmitTimeout = new Gauge({
      name: 'p2p_retransmit_timeout_seconds',
      help: 'Retransmission timeout of the reliable classes (RTO from the measured acknowledgement round trips, before per-message back-off and jitter).',
      registers,
    });
    this.ackRtt = new Gauge({
      name: 'p2p_ack_rtt_seconds',
      help: 'Smoothed round trip from sending a reliable message to its acknowledgement (SRTT; resent messages give no sample).',
      registers,
    });
    this.reconnects = new Counter({
      name: 'p2p_comms_reconnects_total',
      help: 'Reconnections of the transport after a lost link.',
      registers,
    });
    this.membersSerial = new Gauge({
      name: 'p2p_members_serial',
      help: 'Serial of the operator-signed members list in use.',
      registers,
    });
    this.lteRegistered = new Gauge({
      name: 'p2p_lte_registered',
      help: '1 while the LTE modem is registered (home or roaming).',
      registers,
    });
    this.lteSignal = new Gauge({
      name: 'p2p_lte_signal',
      help: 'LTE signal by quantity (rssi_dbm, rsrp_dbm, sinr_db, rsrq_db).',
      labelNames: ['quantity'],
      registers,
    });
    this.lteRecoveries = new Counter({
      name: 'p2p_lte_recoveries_total',
      help: 'LTE link recovery steps taken, by step (reattach, radio-restart, modem-reset, power-cycle).',
      labelNames: ['step'],
      registers,
    });
    this.deviceUp = new Gauge({
      name: 'p2p_device_up',
      help: '1 while the device answers and its values are fresh.',
      labelNames: ['device'],
      registers,
    });
    this.deviceErrors = new Counter({
      name: 'p2p_device_errors_total',
      help: 'Polls of a device that failed: no answer, an exception, a bad reply or an implausible reading.',
      labelNames: ['device'],
      registers,
    });
    this.clockJumps = new Counter({
      name: 'p2p_clock_jumps_total',
      help: 'Steps of the wall clock against the monotonic clock (more than 2 s between two primary cycles).',
      registers,
    });
    this.voltagePu = new Gauge({
      name: 'p2p_voltage_pu',
      help: 'Latest voltage magnitude at a bus, per unit.',
      labelNames: ['bus'],
      registers,
    });
    this.price = new Gauge({
      name: 'p2p_price',
      help: 'Local energy price per slot of the current trading horizon (currency per kWh).',
      labelNames: ['slot'],
      registers,
    });
    this.cycleDuration = new Histogram({
      name: 'p2p_cycle_duration_seconds',
      help: 'Time one scheduler cycle took, by time scale.',
      labelNames: ['scale'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.messageLatency = new Histogram({
      name: 'p2p_message_latency_seconds',
      help: 'From the sender stamping a message to this gateway accepting it (clocks of one machine or NTP-synchronised).',
      labelNames: ['class'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.cycleOverruns = new Counter({
      name: 'p2p_cycle_overruns_total',
      help: 'Ticks skipped because the previous cycle of the same time scale was still running.',
      labelNames: ['scale'],
      registers,
    });
  }

  /**
   * The process's own memory, under the names of Prometheus's Node.js exporters (dashboards and the
   * soak benchmark read them). Only for a registry that is the whole process: in a simulation of
   * many gateways in one process each would report the same memory.
   */
  addProcessMetrics(): void {
    const registers = [this.registry];
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size in bytes.',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    // From V8's heap statistics: process.memoryUsage() would also read /proc for the RSS each time.
    new Gauge({
      name: 'nodejs_heap_size_used_bytes',
      help: 'Process heap size used from Node.js in bytes.',
      registers,
      collect() {
        this.set(getHeapStatistics().used_heap_size);
      },
    });
    new Gauge({
      name: 'nodejs_heap_size_total_bytes',
      help: 'Process heap size from Node.js in bytes (committed by V8, used or not).',
      registers,
      collect() {
        this.set(getHeapStatistics().total_heap_size);
      },
    });
    new Gauge({
      name: 'nodejs_external_memory_bytes',
      help: 'Node.js external memory size in bytes (buffers and other memory held outside the heap by JS objects).',
      registers,
      collect() {
        this.set(getHeapStatistics().external_memory);
      },
    });
    watchFullCollections();
    new Gauge({
      name: 'p2p_heap_live_bytes',
      help: 'Heap in use right after the last full (mark-compact) collection: what the process really holds, without garbage not collected yet.',
      registers,
      collect() {
        if (heapAfterFullCollection !== undefined) this.set(heapAfterFullCollection);
      },
    });
    // Which part of the heap V8 holds on to (old objects, code, large objects...): where a growing heap grows.
    new Gauge({
      name: 'nodejs_heap_space_size_total_bytes',
      help: 'Process heap space size total from Node.js in bytes.',
      labelNames: ['space'],
      registers,
      collect() {
        for (const space of getHeapSpaceStatistics())
          this.set({ space: space.space_name.replace(/_space$/, '') }, space.space_size);
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** `p2p_alarms_active{kind,severity}`, read from `activeCounts` (the gateway's alarm book) at each scrape. */
  addAlarmsMetric(activeCounts: () => { kind: string; severity: string; count: number }[]): void {
    new Gauge({
      name: 'p2p_alarms_active',
      help: 'Alarms active now, by kind and severity (the alarms of /api/state).',
      labelNames: ['kind', 'severity'],
      registers: [this.registry],
      collect() {
        for (const { kind, severity, count } of activeCounts()) this.set({ kind, severity }, count);
      },
    });
  }
}

/** Heap in use right after the process's last full collection, bytes (undefined before the first). */
let heapAfterFullCollection: number | undefined;
let collections: PerformanceObserver | undefined;

/** Follows the process's garbage collections (once per process) and notes the heap after each full one. */
function watchFullCollections(): void {
  if (collections) return;
  collections = new PerformanceObserver((list) => {
    const full = list
      .getEntries()
      .some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
    if (full) heapAfterFullCollection = getHeapStatistics().used_heap_size;
  });
  collections.observe({ entryTypes: ['gc'] });
}

/**
 * Several gateways' metrics as one Prometheus page (the in-process demo serves its whole cell). Each
 * registry carries a distinct `gateway` default label, so no two samples collide when aggregated.
 */
export async function mergedMetricsText(all: GatewayMetrics[]): Promise<string> {
  const perGateway = await Promise.all(all.map((m) => m.registry.getMetricsAsJSON()));
  return AggregatorRegistry.aggregate(perGateway).metrics();
}
