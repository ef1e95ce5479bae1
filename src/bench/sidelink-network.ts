import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ErrorCode, P2PError } from '../core/errors.js';

/** The interface names a gateway sees in its namespace: the sidelink and the uplink (as in `comms.d2d.interface`). */
export const SIDELINK_IFACE = 'd2d0';
const UPLINK_IFACE = 'up0';

/** A gateway of the bench in a namespace of its own: how to start a process there and where it is reached. */
export interface NamespacedGateway {
  namespace: string;
  /** Its uplink address, where its status page listens and from which it reaches the brokers. */
  address: string;
}

const run = (args: readonly string[]): string =>
  execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

const firstLine = (err: unknown): string => {
  const e = err as { stderr?: Buffer; message: string };
  return (e.stderr?.toString().trim() || e.message).split('\n')[0]!;
};

/** A /16 under 10/8 that no address or route of this machine uses yet. */
function freeSubnet(): number {
  const used = run(['-4', '-o', 'addr']) + run(['-4', 'route']);
  for (let second = 200; second < 255; second++) if (!used.includes(`10.${second}.`)) return second;
  throw new P2PError(ErrorCode.unavailable, 'no free 10.200-254.0.0/16 subnet for the bench gateways uplinks', {
    component: 'bench',
  });
}

/**
 * The field's two links for each cell's gateways, on one machine: every gateway of a cell in a network
 * namespace of its own (its "house"), with
 * - `d2d0` on its cell's sidelink segment (a bridge in a namespace of its own, standing for the radio:
 *   IPv6 link-local multicast reaches every gateway of the cell and no other);
 * - `up0`, its uplink, on a bridge of the host's, where the bench serves the brokers at
 *   `brokerAddress` and the gateways' devices at `lanAddress`.
 * Cutting a gateway's uplink (`cutUplink`) blocks the broker's address in its namespace: its broker
 * connection goes the way of a lost LTE link, while its devices (its own LAN) still answer. Needs root
 * and iproute2; `create` says so otherwise, and `close` removes everything it made.
 */
export class SidelinkNetwork {
  private readonly gateways = new Map<string, NamespacedGateway>();
  private readonly namespaces: string[] = [];
  private bridge: string | undefined;

  private constructor(
    private readonly tag: string,
    private readonly subnet: number,
  ) {}

  /** Where the bench serves the brokers, as the gateways in the namespaces reach them. */
  get brokerAddress(): string {
    return `10.${this.subnet}.0.2`;
  }

  /** Where the bench serves the devices (the houses' LAN side). */
  get lanAddress(): string {
    return `10.${this.subnet}.0.1`;
  }

  /** Every gateway of each cell (`cells`: cell id → gateway ids) in its own namespace on its cell's sidelink. */
  static create(cells: ReadonlyMap<string, readonly string[]>): SidelinkNetwork {
    if (process.getuid?.() !== 0)
      throw new P2PError(
        ErrorCode.unavailable,
        'a scenario with sidelinks runs each gateway in a network namespace: it needs root (run the bench with sudo)',
        { component: 'bench', field: 'sidelink' },
      );
    let net: SidelinkNetwork | undefined;
    try {
      net = new SidelinkNetwork(randomBytes(2).toString('hex'), freeSubnet());
      // Namespaces outlive the process that made them: a bench that fails or exits takes them along.
      process.once('exit', net.closeAtExit);
      net.build(cells);
      return net;
    } catch (err) {
      net?.close();
      if (err instanceof P2PError) throw err;
      throw new P2PError(ErrorCode.unavailable, `cannot make the sidelink namespaces: ${firstLine(err)}`, {
        component: 'bench',
        field: 'sidelink',
        cause: err,
      });
    }
  }

  private build(cells: ReadonlyMap<string, readonly string[]>): void {
    const bridge = `p2pw${this.tag}`;
    run(['link', 'add', 'name', bridge, 'type', 'bridge']);
    this.bridge = bridge;
    run(['addr', 'add', `${this.lanAddress}/16`, 'dev', bridge]);
    run(['addr', 'add', `${this.brokerAddress}/16`, 'dev', bridge]);
    run(['link', 'set', bridge, 'up']);
    const radio = this.namespace('air');
    let k = 0;
    [...cells.keys()].forEach((cell, c) => {
      // Multicast snooping off: the sidelink's link-local group goes to every gateway of the cell.
      const segment = `cell${c}`;
      run(['-n', radio, 'link', 'add', 'name', segment, 'type', 'bridge', 'mcast_snooping', '0']);
      run(['-n', radio, 'link', 'set', segment, 'up']);
      cells.get(cell)!.forEach((gateway, g) => {
        const ns = this.namespace(String(k));
        run([
          'netns',
          'exec',
          ns,
          'sysctl',
          '-qw',
          'net.ipv6.conf.all.accept_dad=0',
          'net.ipv6.conf.default.accept_dad=0',
        ]);
        run(['-n', ns, 'link', 'set', 'lo', 'up']);
        const address = `10.${this.subnet}.${c + 1}.${g + 1}`;
        this.link(`p2pu${this.tag}${k}`, ns, UPLINK_IFACE, { master: bridge });
        run(['-n', ns, 'addr', 'add', `${address}/16`, 'dev', UPLINK_IFACE]);
        this.link(`p2pd${this.tag}${k}`, ns, SIDELINK_IFACE, { namespace: radio, master: segment });
        this.gateways.set(gateway, { namespace: ns, address });
        k++;
      });
    });
  }

  /** A new namespace, removed by `close`. */
  private namespace(suffix: string): string {
    const name = `p2p-bench-${this.tag}-${suffix}`;
    run(['netns', 'add', name]);
    this.namespaces.push(name);
    return name;
  }

  /** A veth pair: one end as `iface` in `ns`, the other on the bridge `master` (in `o.namespace`, else the host's). */
  private link(name: string, ns: string, iface: string, o: { master: string; namespace?: string }): void {
    const peer = `${name}p`;
    run(['link', 'add', name, 'type', 'veth', 'peer', 'name', peer]);
    run(['link', 'set', peer, 'netns', ns]);
    run(['-n', ns, 'link', 'set', peer, 'name', iface]);
    run(['-n', ns, 'link', 'set', iface, 'up']);
    if (o.namespace) run(['link', 'set', name, 'netns', o.namespace]);
    const at = o.namespace ? ['-n', o.namespace] : [];
    run([...at, 'link', 'set', name, 'master', o.master]);
    run([...at, 'link', 'set', name, 'up']);
  }

  /** The namespace and address of a gateway placed here; undefined for the gateways of no cell. */
  of(gateway: string): NamespacedGateway | undefined {
    return this.gateways.get(gateway);
  }

  /** The command prefix that runs a program in the gateway's namespace. */
  prefix(gateway: string): string[] | undefined {
    const g = this.gateways.get(gateway);
    return g ? ['ip', 'netns', 'exec', g.namespace] : undefined;
  }

  /** Cuts (or restores) a gateway's uplink: the brokers' address unreachable from its namespace. */
  cutUplink(gateway: string, cut: boolean): void {
    const g = this.gateways.get(gateway);
    if (!g)
      throw new P2PError(ErrorCode.input, `no gateway "${gateway}" on a sidelink to cut the uplink of`, {
        component: 'bench',
        field: 'faults.target',
      });
    run(['-n', g.namespace, 'route', cut ? 'add' : 'del', 'prohibit', `${this.brokerAddress}/32`]);
  }

  private readonly closeAtExit = (): void => this.close();

  /** Removes the namespaces (their veth pairs go with them) and the host's bridge. */
  close(): void {
    process.off('exit', this.closeAtExit);
    for (const ns of this.namespaces.splice(0)) {
      try {
        run(['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    if (this.bridge) {
      try {
        run(['link', 'del', this.bridge]);
      } catch {
        // already gone
      }
      this.bridge = undefined;
    }
  }
}
