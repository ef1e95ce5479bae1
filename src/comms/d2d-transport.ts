import { BaseTransport, type RawPublish, type TransportDeps, type TransportIdentity } from './base-transport.js';
import { D2DLink, type D2DOptions } from './d2d-link.js';
import type { TopicFilter } from './topics.js';
import type { TransportStatus } from './transport.js';

export { D2D_DEFAULTS, D2D_PRIORITY, type D2DOptions, PRIORITY_DSCP, trafficClassRules } from './d2d-link.js';

/** The transport over one D2D sidelink (`D2DLink`: UDP over IPv6 link-local multicast, heartbeat presence). */
export class D2DTransport extends BaseTransport {
  private readonly link: D2DLink;

  constructor(options: Partial<D2DOptions> & { interface: string }, identity: TransportIdentity, deps: TransportDeps) {
    super(identity, deps);
    this.link = new D2DLink(options, { clock: deps.clock, log: deps.log, metrics: deps.metrics });
  }

  get options(): D2DOptions {
    return this.link.options;
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

  protected override assertFits(topic: string, payload: string): void {
    this.link.assertFits(topic, payload);
  }

  protected sendRaw(topic: string, payload: string, options: RawPublish): Promise<void> {
    return this.link.send(topic, payload, options);
  }

  protected listen(filter: TopicFilter): void {
    this.link.listen(filter);
  }

  protected override onPresence(sender: string, cell: string, online: boolean, now: number): void {
    this.link.presenceHeard(sender, cell, online, now);
  }
}
