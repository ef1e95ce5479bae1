import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../core/clock.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Backoff } from './backoff.js';
import { assertWithinPayloadLimit, type Link, type LinkHost, type RawPublish } from './link.js';
import { presencePattern, subscriptionPatterns, type TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

export interface MqttTransportOptions {
  url: string;
  keepaliveS: number;
  username?: string;
  password?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** How long `start()` waits for the first connection before failing. */
  connectTimeoutMs?: number;
  /** Reconnect back-off: first delay and ceiling (jittered exponential, see `Backoff`). */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
}

/**
 * A connection to an MQTT broker (mqtt.js). Presence is a retained `life/online` message with a Will
 * that clears it, so peers see a crashed gateway go offline within the keepalive time. Subscriptions
 * are restored on every reconnect (clean sessions). mqtt.js's fixed-period reconnect is off: this
 * class reconnects with jittered exponential back-off, and the transport's outbox (not mqtt.js's
 * unbounded in-memory queue) resends what must arrive.
 */
export class MqttLink implements Link {
  readonly backend = 'mqtt';
  client: MqttClient | undefined;
  private readonly patterns = new Set<string>();
  private readonly backoff: Backoff;
  private reconnectTimer: TimerHandle | undefined;
  private closing = false;
  private everConnected = false;
  private host: LinkHost | undefined;

  constructor(
    private readonly options: MqttTransportOptions,
    private readonly deps: { clock: Clock; log: Logger; clientId: string; cell: string },
  ) {
    this.backoff = new Backoff(options.reconnectInitialMs ?? 500, options.reconnectMaxMs ?? 30_000);
  }

  async start(host: LinkHost): Promise<void> {
    this.host = host;
    const tls = readTlsFiles(this.options);
    this.closing = false;
    const clientOptions: IClientOptions = {
      clientId: this.deps.clientId,
      keepalive: this.options.keepaliveS,
      clean: true,
      reconnectPeriod: 0,
      queueQoSZero: false,
      // mqtt-packet otherwise keeps 65 536 two-byte Buffers (6 MB of heap) to write packet ids with.
      writeCache: false,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      will: { topic: host.onlineTopic, payload: Buffer.alloc(0), qos: 1, retain: true },
      ...(this.options.username ? { username: this.options.username } : {}),
      ...(this.options.password ? { password: this.options.password } : {}),
      ...tls,
    };
    const url = this.options.url.replace(/^tcp:/, 'mqtt:');
    const client = mqtt.connect(url, clientOptions);
    this.client = client;
    this.patterns.add(presencePattern(this.deps.cell));
    client.on('message', (topic, payload) => host.receive(topic, payload));
    client.on('connect', () => {
      const reconnect = this.everConnected;
      this.everConnected = true;
      this.backoff.reset();
      // Small control messages must not wait for Nagle's algorithm (up to 40 ms with delayed ACKs).
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      this.deps.log.info({ url: this.options.url, reconnect }, 'connected to broker');
      client.subscribe([...this.patterns], { qos: 1 });
      client.publish(host.onlineTopic, host.onlinePayload(), { qos: 1, retain: true });
      host.linkUp(reconnect);
    });
    client.on('close', () => {
      // Clean sessions: QoS 1 publishes in flight when the link dropped are never completed by
      // mqtt.js (it would keep them, and `end()` would wait for them, forever). The outbox resends
      // what must arrive, so they are failed here.
      (client as unknown as { _flush?: () => void })._flush?.();
      host.linkDown();
      this.scheduleReconnect();
    });
    client.on('error', (err) => this.deps.log.warn({ err: err.message }, 'broker error'));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.closing = true;
        this.cancelReconnect();
        client.end(true);
        reject(
          new P2PError(ErrorCode.comms, `no connection to MQTT broker ${this.options.url}`, {
            component: 'mqtt',
            recoverable: true,
            hint: 'check comms.mqtt.url, the TLS files and that the broker runs',
          }),
        );
      }, clientOptions.connectTimeout);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private scheduleReconnect(): void {
    const client = this.client;
    if (this.closing || !client || this.reconnectTimer) return;
    const delayMs = this.backoff.next();
    if (this.everConnected && this.backoff.attempts === 1)
      this.deps.log.warn({ url: this.options.url }, 'broker connection lost');
    this.deps.log.debug({ delayMs, attempt: this.backoff.attempts }, 'reconnecting');
    this.reconnectTimer = this.deps.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closing && this.client === client && !client.connected) client.reconnect();
    }, delayMs);
  }

  private cancelReconnect(): void {
    if (this.reconnectTimer) this.deps.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.closing = true;
    this.cancelReconnect();
    if (!client) return;
    this.client = undefined;
    // Leaving must not hang on a broker that stopped answering: bounded waits, then a forced end.
    if (client.connected) {
      await within(
        client.publishAsync(this.host!.onlineTopic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => undefined),
        CLOSE_STEP_MS,
      );
    }
    const ended = await within(client.endAsync(), CLOSE_STEP_MS);
    if (!ended) client.end(true);
  }

  status(): TransportStatus {
    return { backend: 'mqtt', connected: this.client?.connected ?? false, endpoint: this.options.url };
  }

  /** Best effort: while the link is down nothing is sent (the outbox resends reliable classes on reconnect). */
  async send(topic: string, payload: string, options: RawPublish): Promise<void> {
    const client = this.client;
    if (!client?.connected) return;
    await new Promise<void>((resolve) => {
      client.publish(topic, payload, { qos: options.qos, retain: options.retain }, () => resolve());
    });
  }

  assertFits(topic: string, payload: string): void {
    assertWithinPayloadLimit(topic, payload);
  }

  listen(filter: TopicFilter): void {
    const fresh = subscriptionPatterns(filter).filter((p) => !this.patterns.has(p));
    for (const p of fresh) this.patterns.add(p);
    if (fresh.length > 0 && this.client?.connected) this.client.subscribe(fresh, { qos: 1 });
  }

  unlisten(filter: TopicFilter): void {
    const gone = subscriptionPatterns(filter).filter((p) => this.patterns.delete(p));
    if (gone.length > 0 && this.client?.connected) this.client.unsubscribe(gone);
  }
}

const CLOSE_STEP_MS = 2000;

/** True when `promise` settled within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function readTlsFiles(o: MqttTransportOptions): Partial<IClientOptions> {
  const read = (file: string | undefined, what: string) => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new P2PError(ErrorCode.config, `comms.mqtt.${what}: cannot read ${file}: ${(err as Error).message}`, {
        component: 'mqtt',
        field: `comms.mqtt.${what}`,
      });
    }
  };
  const ca = read(o.caFile, 'caFile');
  const cert = read(o.certFile, 'certFile');
  const key = read(o.keyFile, 'keyFile');
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}
