import { type LossyProxy, startLossyProxy } from '../comms/lossy-proxy.js';
import { seededRandom } from '../core/prng.js';
import { type BenchBroker, type CellBroker, startBenchBroker, startCellBrokers } from './broker.js';
import type { Scenario } from './scenario.js';

/**
 * The bench's message network: the upstream broker, a broker per cell bridged to it (with
 * Mosquitto), and one lossy proxy per cell (its gateways' link to their broker) plus one for the
 * gateways of no cell (`*`), so that loss applies to every link; a partition cuts a cell's uplink
 * (or its gateways' link, where every cell shares one broker). A run that loses nothing on those
 * links (no `--loss`, no `loss` fault, and no partition to make there) connects the gateways to
 * their brokers directly: a proxy would only copy every byte once more in the bench's own process.
 */
export class BenchNetwork {
  private constructor(
    readonly broker: BenchBroker,
    readonly cellBrokers: Map<string, CellBroker>,
    readonly proxies: Map<string, LossyProxy>,
    /** The loss every link has when no fault says otherwise (`--loss`). */
    readonly baseLoss: number,
    /** Each cell's broker (`*`: the upstream one), where the gateways connect without a proxy. */
    private readonly directUrls: Record<string, string>,
  ) {}

  /** `host`: where the brokers listen (loopback, or where gateways in namespaces reach them). */
  static async start(
    s: Scenario,
    o: { dir: string; broker?: string; loss?: number; host?: string },
  ): Promise<BenchNetwork> {
    const host = o.host ?? '127.0.0.1';
    const broker = await startBenchBroker(o.dir, o.broker, host);
    const cellIds = s.cells.map((c) => c.id);
    const cellBrokers = await startCellBrokers(o.dir, cellIds, broker, seededRandom(s.seed + 100), host);
    const proxies = new Map<string, LossyProxy>();
    const partitionsHere = cellBrokers.size === 0 && s.faults.some((f) => f.kind === 'partition');
    const lossy = (o.loss ?? 0) > 0 || s.faults.some((f) => f.kind === 'loss');
    if (lossy || partitionsHere) {
      for (const [i, key] of [...cellIds, '*'].entries()) {
        const port = cellBrokers.get(key)?.broker.port ?? broker.port;
        proxies.set(key, await startLossyProxy(port, o.loss ?? 0, seededRandom(s.seed + i), host, host));
      }
    }
    const direct = Object.fromEntries(
      [...cellIds, '*'].map((key) => [key, cellBrokers.get(key)?.broker.url ?? broker.url]),
    );
    return new BenchNetwork(broker, cellBrokers, proxies, o.loss ?? 0, direct);
  }

  /** The broker URL the gateways of each cell connect to (their proxy, if any); `*` for the gateways of no cell. */
  get brokerUrls(): Record<string, string> {
    if (this.proxies.size === 0) return { ...this.directUrls };
    return Object.fromEntries([...this.proxies].map(([k, p]) => [k, p.url]));
  }

  /**
   * The brokers that together see every message: the upstream one and each cell's (whose gossip is
   * not bridged upstream).
   */
  get observedBrokerUrls(): string[] {
    return [this.broker.url, ...[...this.cellBrokers.values()].map((c) => c.broker.url)];
  }

  /** Every link of the gateways loses this fraction of messages from now on. */
  setLoss(fraction: number): void {
    for (const p of this.proxies.values()) p.setLoss(fraction);
  }

  /** Every cell broker's bridge connected upstream again. */
  bridgesUp(): boolean {
    return [...this.cellBrokers.values()].every((c) => c.uplink.connections > 0);
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    for (const c of this.cellBrokers.values()) {
      await c.broker.stop().catch(() => {});
      await c.uplink.close();
    }
    await this.broker.stop().catch(() => {});
  }
}
