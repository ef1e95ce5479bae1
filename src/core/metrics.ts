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
  readonly deviceUp: Gauge<'device'>;
  readonly voltagePu: Gauge<'bus'>;
  readonly price: Gauge<'slot'>;
  readonly cycleDuration: Histogram<'scale'>;
  readonly cycleOverruns: Counter<'scale'>;

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
      help: 'Messages dropped before reaching an algorithm, by reason (signature, replay, expired, member, schema, size).',
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
    this.deviceUp = new Gauge({
      name: 'p2p_device_up',
      help: '1 while the device answers and its values are fresh.',
      labelNames: ['device'],
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
    this.cycleOverruns = new Counter({
      name: 'p2p_cycle_overruns_total',
      help: 'Ticks skipped because the previous cycle of the same time scale was still running.',
      labelNames: ['scale'],
      registers,
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * Several gateways' metrics as one Prometheus page (the in-process demo serves its whole cell). Each
 * registry carries a distinct `gateway` default label, so no two samples collide when aggregated.
 */
export async function mergedMetricsText(all: GatewayMetrics[]): Promise<string> {
  const perGateway = await Promise.all(all.map((m) => m.registry.getMetricsAsJSON()));
  return AggregatorRegistry.aggregate(perGateway).metrics();
}
