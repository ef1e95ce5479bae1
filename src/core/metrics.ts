import { constants, type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FIRMWARE_VERSION } from './version.js';

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
  readonly linkUp: Gauge<'link'>;
  readonly linkMessages: Counter<'link' | 'class' | 'direction'>;
  readonly relayMessages: Counter<'peer' | 'direction' | 'outcome'>;
  readonly membersSerial: Gauge;
  readonly lteRegistered: Gauge;
  readonly lteRssi: Gauge;
  readonly lteRsrp: Gauge;
  readonly lteRsrq: Gauge;
  readonly lteSinr: Gauge;
  readonly lteRecoveries: Counter<'step'>;
  readonly deviceUp: Gauge<'device'>;
  readonly deviceErrors: Counter<'device'>;
  readonly devicePower: Gauge<'device' | 'usage'>;
  readonly deviceVoltage: Gauge<'device' | 'phase'>;
  readonly deviceFrequency: Gauge<'device'>;
  readonly deviceEnergyImport: Counter<'device' | 'usage'>;
  readonly deviceEnergyExport: Counter<'device' | 'usage'>;
  readonly deviceStateOfCharge: Gauge<'device'>;
  readonly deviceDcVoltage: Gauge<'device'>;
  readonly deviceTemperature: Gauge<'device'>;
  readonly devicePowerLimit: Gauge<'device'>;
  readonly deviceAvailablePower: Gauge<'device'>;
  readonly buildInfo: Gauge<'version' | 'node'>;
  readonly clockJumps: Counter;
  readonly voltagePu: Gauge<'bus'>;
  readonly voltageLimitPu: Gauge<'limit'>;
  readonly marketSessions: Counter<'converged'>;
  readonly marketRounds: Gauge;
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
    this.linkUp = new Gauge({
      name: 'p2p_link_up',
      help: 'Links of a hybrid transport: 1 while the link is connected.',
      labelNames: ['link'],
      registers,
    });
    this.linkMessages = new Counter({
      name: 'p2p_link_messages_total',
      help: 'Messages sent and arriving over each link of a hybrid transport, by class (arrivals before the duplicate check: D2D copies count).',
      labelNames: ['link', 'class', 'direction'],
      registers,
    });
    this.relayMessages = new Counter({
      name: 'p2p_relay_messages_total',
      help: 'Messages through the D2D relay, by the gateway relayed for (or relaying), direction (up: to the broker, down: to the gateway cut off) and outcome (handed to the relay, relayed, received; dropped_queue beyond the rate and queue, too_big for a datagram, refused: not asked for by a member of the cell).',
      labelNames: ['peer', 'direction', 'outcome'],
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
    // One metric per quantity, each of one unit (dBm for powers, dB for ratios).
    this.lteRssi = new Gauge({
      name: 'p2p_lte_rssi_dbm',
      help: 'LTE received signal strength (RSSI), dBm.',
      registers,
    });
    this.lteRsrp = new Gauge({
      name: 'p2p_lte_rsrp_dbm',
      help: 'LTE reference signal received power (RSRP), dBm.',
      registers,
    });
    this.lteRsrq = new Gauge({
      name: 'p2p_lte_rsrq_db',
      help: 'LTE reference signal received quality (RSRQ), dB.',
      registers,
    });
    this.lteSinr = new Gauge({
      name: 'p2p_lte_sinr_db',
      help: 'LTE signal to interference plus noise ratio (SINR), dB.',
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
    // Device readings, set from each cycle's process image (src/agent/device-metrics.ts): only fresh,
    // good values; a device that does not answer has no samples until it does again.
    this.devicePower = new Gauge({
      name: 'p2p_device_power_watts',
      help: "Active power at a device's terminals, W; positive = drawn from the grid (consumed, imported, charging), negative = fed in (produced, exported, discharging). A battery's is its DC power.",
      labelNames: ['device', 'usage'],
      registers,
    });
    this.deviceVoltage = new Gauge({
      name: 'p2p_device_voltage_volts',
      help: 'Phase-to-neutral voltage a device measures, V, by phase (1, 2, 3).',
      labelNames: ['device', 'phase'],
      registers,
    });
    this.deviceFrequency = new Gauge({
      name: 'p2p_device_frequency_hertz',
      help: 'Grid frequency a device measures, Hz.',
      labelNames: ['device'],
      registers,
    });
    this.deviceEnergyImport = new Counter({
      name: 'p2p_device_energy_import_watt_hours_total',
      help: "A meter's imported energy register, Wh (as the device counts it: a replaced meter starts again).",
      labelNames: ['device', 'usage'],
      registers,
    });
    this.deviceEnergyExport = new Counter({
      name: 'p2p_device_energy_export_watt_hours_total',
      help: "Energy fed into the grid, Wh: a meter's exported energy register, an inverter's produced energy register.",
      labelNames: ['device', 'usage'],
      registers,
    });
    this.deviceStateOfCharge = new Gauge({
      name: 'p2p_device_state_of_charge_ratio',
      help: "A battery's state of charge, 0 to 1.",
      labelNames: ['device'],
      registers,
    });
    this.deviceDcVoltage = new Gauge({
      name: 'p2p_device_dc_voltage_volts',
      help: "A battery's DC voltage, V.",
      labelNames: ['device'],
      registers,
    });
    this.deviceTemperature = new Gauge({
      name: 'p2p_device_temperature_celsius',
      help: "A battery's temperature, °C.",
      labelNames: ['device'],
      registers,
    });
    this.devicePowerLimit = new Gauge({
      name: 'p2p_device_power_limit_ratio',
      help: "An inverter's active power limit in force, as a fraction of its rating (1 = none).",
      labelNames: ['device'],
      registers,
    });
    this.deviceAvailablePower = new Gauge({
      name: 'p2p_device_available_power_watts',
      help: 'PV power an inverter could produce before any limit, W.',
      labelNames: ['device'],
      registers,
    });
    this.buildInfo = new Gauge({
      name: 'p2p_build_info',
      help: 'Always 1: the firmware version and the Node.js version the gateway runs.',
      labelNames: ['version', 'node'],
      registers,
    });
    this.buildInfo.set({ version: FIRMWARE_VERSION, node: process.versions.node }, 1);
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
    this.voltageLimitPu = new Gauge({
      name: 'p2p_voltage_limit_pu',
      help: "The gateway's voltage limits (voltageLimitsPu of its config), per unit, by limit (min, max).",
      labelNames: ['limit'],
      registers,
    });
    this.marketSessions = new Counter({
      name: 'p2p_market_sessions_total',
      help: 'Market sessions this MG trader closed, by whether the price rounds converged (true, false).',
      labelNames: ['converged'],
      registers,
    });
    this.marketRounds = new Gauge({
      name: 'p2p_market_rounds',
      help: 'Price rounds the last market session this MG trader closed took.',
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
    // The event loop's delay, as prom-client's default metrics name it: how late timers and I/O
    // callbacks run. The statistics cover the time since the previous scrape.
    if (!loopDelay) {
      loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
    }
    const statistics = { min: 'minimum', max: 'maximum', mean: 'mean', stddev: 'standard deviation' } as const;
    const percentiles = { p50: '50th percentile', p90: '90th percentile', p99: '99th percentile' } as const;
    for (const [stat, what] of Object.entries({ ...statistics, ...percentiles }) as [keyof LoopDelayStats, string][]) {
      new Gauge({
        name: `nodejs_eventloop_lag_${stat}_seconds`,
        help: `The ${what} of the event loop delays since the last scrape, seconds.`,
        registers,
        collect() {
          const stats = loopDelaySinceLastScrape();
          if (stats) this.set(stats[stat] / 1e9);
        },
      });
    }
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

/** The event loop's delays over some time, nanoseconds. */
interface LoopDelayStats {
  min: number;
  max: number;
  mean: number;
  stddev: number;
  p50: number;
  p90: number;
  p99: number;
}

/** Delays of the event loop, sampled every 10 ms (once per process), and the last scrape's figures. */
let loopDelay: IntervalHistogram | undefined;
let loopDelayStats: { readAt: number; stats: LoopDelayStats | undefined } | undefined;

/**
 * The event loop's delays since the last scrape: the first gauge read in a scrape takes the figures
 * and resets the histogram, the others of the same scrape (within 1 s) read the same figures.
 * Undefined while no delay was recorded.
 */
function loopDelaySinceLastScrape(now = Date.now()): LoopDelayStats | undefined {
  if (!loopDelay) return undefined;
  if (loopDelayStats && now - loopDelayStats.readAt <= 1000) return loopDelayStats.stats;
  const h = loopDelay;
  const stats =
    h.count > 0
      ? {
          min: h.min,
          max: h.max,
          mean: h.mean,
          stddev: h.stddev,
          p50: h.percentile(50),
          p90: h.percentile(90),
          p99: h.percentile(99),
        }
      : undefined;
  h.reset();
  loopDelayStats = { readAt: now, stats };
  return stats;
}

/**
 * Several gateways' metrics as one Prometheus page (the in-process demo serves its whole cell). Each
 * registry carries a distinct `gateway` default label, so no two samples collide when aggregated.
 */
export async function mergedMetricsText(all: GatewayMetrics[]): Promise<string> {
  const perGateway = await Promise.all(all.map((m) => m.registry.getMetricsAsJSON()));
  return AggregatorRegistry.aggregate(perGateway).metrics();
}
