import { BaseTransport, type RawPublish, type TransportDeps, type TransportIdentity } from './base-transport.js';
import { presencePattern, subscriptionPatterns, type TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

type Listener = (topic: string, payload: string) => void;

/** MQTT topic pattern match with `+` (one level) and `#` (rest). */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('/');
  const t = topic.split('/');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '#') return true;
    if (i >= t.length || (p[i] !== '+' && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}

/**
 * An in-process broker for simulation and tests: retained messages, wills, and optional loss (a
 * fraction of non-retained deliveries dropped by an injected random source).
 */
export class MemoryBus {
  private readonly subscriptions: { pattern: string; listener: Listener }[] = [];
  private readonly retained = new Map<string, string>();

  constructor(
    readonly name = 'memory',
    private readonly loss: { fraction: number; random: () => number } = { fraction: 0, random: Math.random },
  ) {}

  subscribe(pattern: string, listener: Listener): () => void {
    const entry = { pattern, listener };
    this.subscriptions.push(entry);
    for (const [topic, payload] of this.retained)
      if (topicMatches(pattern, topic)) queueMicrotask(() => listener(topic, payload));
    return () => {
      const i = this.subscriptions.indexOf(entry);
      if (i >= 0) this.subscriptions.splice(i, 1);
    };
  }

  publish(topic: string, payload: string, retain: boolean): void {
    if (retain) {
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, payload);
    } else if (this.loss.fraction > 0 && this.loss.random() < this.loss.fraction) {
      return;
    }
    for (const s of [...this.subscriptions])
      if (topicMatches(s.pattern, topic)) queueMicrotask(() => s.listener(topic, payload));
  }
}

export class MemoryTransport extends BaseTransport {
  private readonly unsubscribers: (() => void)[] = [];
  private connected = false;

  constructor(
    private readonly bus: MemoryBus,
    identity: TransportIdentity,
    deps: TransportDeps,
  ) {
    super(identity, deps);
  }

  protected async startBackend(): Promise<void> {
    this.connected = true;
    this.unsubscribers.push(
      this.bus.subscribe(presencePattern(this.identity.cell), (t, p) => this.handleIncoming(t, p)),
    );
    this.bus.publish(this.onlineTopic, this.onlinePayload(), true);
    this.onLinkUp(false);
  }

  /** Leaves as a crashed gateway would: the broker's will clears its presence. */
  crash(): void {
    this.halt();
    this.detach();
    this.bus.publish(this.onlineTopic, '', true);
  }

  protected async closeBackend(): Promise<void> {
    if (!this.connected) return;
    this.bus.publish(this.onlineTopic, '', true);
    this.detach();
  }

  status(): TransportStatus {
    return { backend: 'memory', connected: this.connected, endpoint: this.bus.name };
  }

  protected async sendRaw(topic: string, payload: string, options: RawPublish): Promise<void> {
    if (this.connected) this.bus.publish(topic, payload, options.retain);
  }

  protected listen(filter: TopicFilter): void {
    for (const pattern of subscriptionPatterns(filter)) {
      this.unsubscribers.push(this.bus.subscribe(pattern, (t, p) => this.handleIncoming(t, p)));
    }
  }

  private detach(): void {
    this.connected = false;
    for (const u of this.unsubscribers.splice(0)) u();
  }
}
