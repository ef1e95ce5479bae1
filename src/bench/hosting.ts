import { join } from 'node:path';
import { PLATFORM_ID } from './configs.js';
import { ControllerProcess, GATEWAY_NODE, type HostedGatewayFiles, type NodeSettings } from './processes.js';
import type { Scenario } from './scenario.js';

/**
 * Which gateways of a run share a process. A gateway that a fault kills runs alone, so that SIGKILL
 * takes exactly it; so does the platform (its database writes would hold up the others' event loop).
 * So does a gateway in a network namespace of its own (`prefix`). The rest are packed by cell, at most
 * `perProcess` to a process, in their start order. Sharing a
 * process changes no gateway's behaviour: each keeps its own identity, keys, state directory,
 * connection and status page (`p2p-edge run --config A --config B ...`).
 */
export function hostGroups<G extends HostedGatewayFiles>(
  gateways: readonly G[],
  o: { perProcess: number; alone: ReadonlySet<string>; cellOf: ReadonlyMap<string, string> },
): { id: string; gateways: G[] }[] {
  const groups: { id: string; gateways: G[] }[] = [];
  const open = new Map<string, G[]>();
  const close = (cell: string) => {
    const members = open.get(cell);
    if (!members?.length) return;
    groups.push({ id: members.length === 1 ? members[0]!.id : `host-${cell}-${groups.length + 1}`, gateways: members });
    open.delete(cell);
  };
  for (const g of gateways) {
    if (o.alone.has(g.id) || o.perProcess <= 1 || g.prefix) {
      groups.push({ id: g.id, gateways: [g] });
      continue;
    }
    const cell = o.cellOf.get(g.id) ?? '';
    const members = open.get(cell) ?? [];
    members.push(g);
    open.set(cell, members);
    if (members.length >= o.perProcess) close(cell);
  }
  for (const cell of [...open.keys()]) close(cell);
  return groups;
}

/** The gateways a scenario must run alone: the platform and every target of a `sigkill` fault. */
export function gatewaysAlone(s: Scenario): Set<string> {
  return new Set([PLATFORM_ID, ...s.faults.flatMap((f) => (f.kind === 'sigkill' && f.target ? [f.target] : []))]);
}

/**
 * How node runs a process hosting `gateways` gateways. One gateway alone runs exactly as the systemd
 * unit starts it. A process of several is not a field gateway's: its young generation grows with
 * the gateways it hosts (a megabyte each, as the unit gives one), so that it does not collect n times
 * as often, and it keeps V8's optimising compilers (`--lite-mode` off), whose memory is paid once for
 * all of them. What each gateway does is the same; only how fast the process runs its JavaScript.
 */
export function hostNodeSettings(gateways: number): NodeSettings {
  if (gateways <= 1) return GATEWAY_NODE;
  const flags = GATEWAY_NODE.flags
    .filter((f) => f !== '--lite-mode' && !f.startsWith('--max-semi-space-size='))
    .concat(`--max-semi-space-size=${Math.min(16, gateways)}`);
  return { flags, env: GATEWAY_NODE.env };
}

/** The bench's controller processes: each group of `hostGroups` started as one, its log in the run directory. */
export function hostProcesses(
  s: Scenario,
  gateways: readonly HostedGatewayFiles[],
  o: {
    dir: string;
    cellOf: ReadonlyMap<string, string>;
    nodeSettings?: (gatewayId: string) => NodeSettings | undefined;
  },
): ControllerProcess[] {
  const groups = hostGroups(gateways, { perProcess: s.gatewaysPerProcess, alone: gatewaysAlone(s), cellOf: o.cellOf });
  return groups.map(
    (g) =>
      new ControllerProcess(
        g.id,
        g.gateways,
        join(o.dir, `${g.id}.log`),
        o.nodeSettings?.(g.gateways[0]!.id) ?? hostNodeSettings(g.gateways.length),
      ),
  );
}
