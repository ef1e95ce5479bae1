import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ErrorCode, P2PError } from '../core/errors.js';
import { BaseTransport, type RawPublish, type TransportDeps, type TransportIdentity } from './base-transport.js';
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
}

/**
 * MQTT backend (mqtt.js). Presence is a retained `life/online` message with a Will that clears it,
 * so peers see a crashed gateway go offline within the keepalive time. Subscriptions are restored on
 * every reconnect (clean sessions).
 */
export class MqttTransport extends BaseTransport {
  private client: MqttClient | undefined;
  private readonly patterns = new Set<string>();

  constructor(
    private readonly options: MqttTransportOptions,
    identity: TransportIdentity,
    deps: TransportDeps,
  ) {
    super(identity, deps);
  }

  async start(): Promise<void> {
    const tls = readTlsFiles(this.options);
    const clientOptions: IClientOptions = {
      clientId: this.identity.gatewayId,
      keepalive: this.options.keepaliveS,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      will: { topic: this.onlineTopic, payload: Buffer.alloc(0), qos: 1, retain: true },
      ...(this.options.username ? { username: this.options.username } : {}),
      ...(this.options.password ? { password: this.options.password } : {}),
      ...tls,
    };
    const url = this.options.url.replace(/^tcp:/, 'mqtt:');
    const client = mqtt.connect(url, clientOptions);
    this.client = client;
    this.patterns.add(presencePattern(this.identity.cell));
    client.on('message', (topic, payload) => this.handleIncoming(topic, payload));
    client.on('connect', () => {
      this.deps.log.info({ url: this.options.url }, 'connected to broker');
      client.subscribe([...this.patterns], { qos: 1 });
      client.publish(this.onlineTopic, this.onlinePayload(), { qos: 1, retain: true });
    });
    client.on('offline', () => this.deps.log.warn({ url: this.options.url }, 'broker connection lost'));
    client.on('error', (err) => this.deps.log.warn({ err: err.message }, 'broker error'));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end(true);
        reject(
          new P2PError(ErrorCode.comms, `no connection to MQTT broker ${this.options.url}`, {
            component: 'mqtt',
            recoverable: true,
            hint: 'check comms.mqtt.url and that the broker runs',
          }),
        );
      }, clientOptions.connectTimeout);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    if (client.connected) {
      await client.publishAsync(this.onlineTopic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => undefined);
    }
    await client.endAsync();
  }

  status(): TransportStatus {
    return { backend: 'mqtt', connected: this.client?.connected ?? false, endpoint: this.options.url };
  }

  protected async sendRaw(topic: string, payload: string, options: RawPublish): Promise<void> {
    const client = this.client;
    if (!client) throw new P2PError(ErrorCode.comms, 'MQTT transport is not started', { component: 'mqtt' });
    if (options.qos === 0 && !client.connected) return; // best effort: dropped, as on a lossy link
    await client.publishAsync(topic, payload, { qos: options.qos, retain: options.retain });
  }

  protected listen(filter: TopicFilter): void {
    const fresh = subscriptionPatterns(filter).filter((p) => !this.patterns.has(p));
    for (const p of fresh) this.patterns.add(p);
    if (fresh.length > 0 && this.client?.connected) this.client.subscribe(fresh, { qos: 1 });
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
