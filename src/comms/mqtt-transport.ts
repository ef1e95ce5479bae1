import { BaseTransport, type RawPublish, type TransportDeps, type TransportIdentity } from './base-transport.js';
import { MqttLink, type MqttTransportOptions } from './mqtt-link.js';
import type { TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

export type { MqttTransportOptions } from './mqtt-link.js';

/** The transport over one MQTT broker connection (`MqttLink`: presence by retained message and Will, reconnects). */
export class MqttTransport extends BaseTransport {
  private readonly link: MqttLink;

  constructor(options: MqttTransportOptions, identity: TransportIdentity, deps: TransportDeps) {
    super(identity, deps);
    this.link = new MqttLink(options, {
      clock: deps.clock,
      log: deps.log,
      clientId: identity.gatewayId,
      cell: identity.cell,
    });
  }

  /** The mqtt.js client while connected (tests cut its socket to play a lost link). */
  get client() {
    return this.link.client;
  }

  protected startBackend(): Promise<void> {
    return this.link.start(this.linkHost());
  }

  protected closeBackend(): Promise<void> {
    return this.link.close();
  }

  status(): TransportStatus {
    return this.link.status();
  }

  protected sendRaw(topic: string, payload: string, options: RawPublish): Promise<void> {
    return this.link.send(topic, payload, options);
  }

  protected listen(filter: TopicFilter): void {
    this.link.listen(filter);
  }
}
