import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { gatewayConfig } from '../agent/config.js';
import { registerDemoDrContracts } from '../agent/demo.js';
import { freePorts } from '../core/net.js';
import { demoFeeder } from '../grid/demo-feeder.js';
import { provisionThroughPlatform } from '../platform/provision.js';
import {
  BENCH_SETTLEMENT_SCHEDULE,
  benchConfigs,
  benchIntervalMs,
  type DeviceEndpoint,
  DSO_ID,
  PLATFORM_ID,
  transformerId,
} from './configs.js';
import type { BenchGrid } from './grid.js';
import type { Scenario } from './scenario.js';
import type { SidelinkNetwork } from './sidelink-network.js';

/** Shared memory, where the machine has it: a file system in RAM. */
const RAM_DIR = '/dev/shm';

/**
 * Where the gateways of a run keep their state (outboxes, comms state, settlement records). On a
 * field gateway that is its own disk; the bench packs dozens of gateways onto one machine, whose one
 * disk would serialise their fsyncs (each gateway makes a few a second) and hold up every gateway of
 * a process behind the others'. So the bench puts them in RAM where it can (`/dev/shm`): the gateways
 * write and fsync exactly as in the field, the writes just cost no disk wait. `dir/state` links to it;
 * `release()` removes it after the report.
 */
export function gatewayStateDir(dir: string): { path: string; release(): void } {
  try {
    accessSync(RAM_DIR, constants.W_OK);
  } catch {
    return { path: join(dir, 'state'), release: () => {} };
  }
  const path = mkdtempSync(join(RAM_DIR, 'p2p-bench-state-'));
  symlinkSync(path, join(dir, 'state'));
  return { path, release: () => rmSync(path, { recursive: true, force: true }) };
}

/** What a gateway of the bench is started with. */
export interface BenchGatewayFiles {
  id: string;
  configFile: string;
  statusPort: number;
  /** Where its status page listens, when not on loopback (a gateway in a namespace). */
  statusHost?: string;
  /** The command prefix that starts it in its namespace (`ip netns exec NS`). */
  prefix?: string[];
  /** The token its status page asks for (one listening beyond loopback). */
  statusToken?: string;
}

/** The gateways of each cell (its transformer gateway and its houses), as a sidelink segment takes them. */
export function cellGateways(s: Scenario, grid: BenchGrid): Map<string, string[]> {
  return new Map(
    s.cells.map((c) => [
      c.id,
      [transformerId(c.id), ...new Set(grid.devices.filter((d) => d.cell === c.id).map((d) => d.gateway))],
    ]),
  );
}

/** The run directory made ready for the gateway processes. */
export interface ProvisionedBench {
  /** In start order: transformer gateways, inverter gateways, the aggregator, the DSO, the platform. */
  gateways: BenchGatewayFiles[];
  /** The cell of every gateway, by id. */
  cellOf: Map<string, string>;
  /** The platform's database, left on disk after the run. */
  platformDb: string;
  stateDir: string;
  /** What a third party may know: the members list file and the operator's public key that signs it. */
  membersFile: string;
  operatorPublicKey: string;
}

/**
 * Fills the run directory `dir`: each cell's feeder file, a status port per gateway, every gateway's
 * config (the scenario's gateways, the DSO and the platform) with its signing key, and the members
 * list: every gateway registered and admitted on the platform's database (ledger entries, so that it
 * stores their readings), the list the last admission issued given to every gateway.
 */
export async function provisionBench(
  s: Scenario,
  grid: BenchGrid,
  o: {
    dir: string;
    /** The gateways' state directory (`gatewayStateDir`). */
    stateDir: string;
    brokerUrls: Record<string, string>;
    endpoints: Record<string, DeviceEndpoint>;
    now: number;
    /** Where the cells' gateways run in namespaces of their own (`sidelink: true`). */
    sidelink?: SidelinkNetwork;
  },
): Promise<ProvisionedBench> {
  const { dir, stateDir, brokerUrls, now } = o;
  const feederFiles: Record<string, string> = {};
  for (const c of s.cells) {
    feederFiles[c.id] = join(dir, `feeder-${c.id}.json`);
    writeFileSync(feederFiles[c.id]!, JSON.stringify(demoFeeder(c.houses, c.segmentOhm, c.vSlackPu)));
  }
  const gatewayIds = [
    ...s.cells.map((c) => `tx-${c.id}`),
    ...new Set(grid.devices.map((d) => d.gateway)),
    ...(s.aggregator ? ['agg-1'] : []),
    DSO_ID,
    PLATFORM_ID,
  ];
  const statusPorts: Record<string, number> = {};
  const ports = await freePorts(gatewayIds.length);
  gatewayIds.forEach((id, i) => {
    statusPorts[id] = ports[i]!;
  });
  const sidelinkAddresses = new Map(
    gatewayIds.flatMap((id) => {
      const placed = o.sidelink?.of(id);
      return placed ? [[id, placed.address] as const] : [];
    }),
  );
  // The status pages in namespaces listen on their uplink address, so they ask for a token.
  const statusToken = sidelinkAddresses.size > 0 ? randomBytes(16).toString('hex') : undefined;
  const plain = benchConfigs(s, grid.devices, {
    brokerUrls,
    stateDir,
    feederFiles,
    endpoints: o.endpoints,
    statusPorts,
    speedup: s.speedup,
    sidelinkAddresses,
    ...(statusToken ? { statusToken } : {}),
  });
  const platformDb = join(dir, 'platform', 'ledger.db');
  plain.push({
    gateway: { id: PLATFORM_ID, kind: 'platform', cell: s.cells[0]!.id },
    // A 15-minute simulated metering interval (the market's), in the real seconds the gateways live in.
    platform: {
      db: platformDb,
      cells: s.cells.map((c) => c.id),
      meteringIntervalS: benchIntervalMs(s.speedup) / 1000,
      // A simulated day of raw samples, as the field keeps a real one: the database (and SQLite's
      // page cache of it) stays the size it has in the field however many days the bench runs.
      sampleRetentionH: 24 / s.speedup,
    },
    // Drafts each market interval's settlement a metering interval and a grace second after it ends.
    settlement: {
      schedule: BENCH_SETTLEMENT_SCHEDULE,
      intervalMs: benchIntervalMs(s.speedup),
      graceS: 1,
      maxReadingWaitS: 30,
    },
    scheduler: { primaryMs: 1000, secondaryMs: 1000, tertiaryMs: 60_000 },
    stateDir,
    status: { host: '127.0.0.1', port: statusPorts[PLATFORM_ID]! },
    comms: { transport: 'mqtt', mqtt: { url: brokerUrls['*']!, keepaliveS: 5 } },
  });
  const configs = plain.map((c) => gatewayConfig(c));
  const ids = provisionThroughPlatform(
    configs.map((c) => c.gateway),
    join(dir, 'identities'),
    platformDb,
    now,
  );
  // A DR contract between the aggregator and each of its providers: its dispatches are paid under it.
  registerDemoDrContracts(configs, platformDb, ids.operator, now);
  const gateways = configs.map((c) => {
    const configFile = join(dir, `${c.gateway.id}.yaml`);
    const withKeys = {
      ...plain.find((p) => p.gateway.id === c.gateway.id),
      comms: {
        ...(plain.find((p) => p.gateway.id === c.gateway.id)!.comms as object),
        security: {
          keyFile: ids.keyFile(c.gateway.id),
          membersFile: ids.membersFile,
          operatorPublicKey: ids.operatorPublicKey,
        },
      },
    };
    writeFileSync(configFile, stringify(withKeys));
    const statusHost = sidelinkAddresses.get(c.gateway.id);
    const prefix = o.sidelink?.prefix(c.gateway.id);
    return {
      id: c.gateway.id,
      configFile,
      statusPort: statusPorts[c.gateway.id]!,
      ...(statusHost ? { statusHost, statusToken } : {}),
      ...(prefix ? { prefix } : {}),
    };
  });
  return {
    gateways,
    cellOf: new Map(configs.map((c) => [c.gateway.id, c.gateway.cell])),
    platformDb,
    stateDir,
    membersFile: ids.membersFile,
    operatorPublicKey: ids.operatorPublicKey,
  };
}
