import { type MemoryBus, MemoryTransport } from '../../src/comms/memory-transport.js';
import { type ProvisionedIdentities, provisionIdentities } from '../../src/comms/provision.js';
import { EncryptionKeyring, EnvelopeSigner, MembersDirectory, MessageSecurity } from '../../src/comms/security.js';
import type { Delivery } from '../../src/comms/transport.js';
import type { Clock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';

export const silentLog = componentLogger('test');
silentLog.level = 'silent';

export const tick = () => new Promise((r) => setImmediate(r));

/**
 * A cell of gateways with keys and an operator-signed members list, on one in-memory bus. Each is an
 * inverter gateway (a prosumer) unless `kinds` says otherwise: the readers of a confidential body
 * go by role (a meter reading is sealed to the cell's transformer gateway and the platform).
 */
export function signedCell(
  ids: string[],
  dir: string,
  nowMs: number,
  cell = 'c1',
  kinds: Record<string, string> = {},
): ProvisionedIdentities {
  return provisionIdentities(
    ids.map((id) => ({ id, cell, kind: kinds[id] ?? 'inverter' })),
    dir,
    nowMs,
  );
}

export function securityFor(p: ProvisionedIdentities, id: string): MessageSecurity {
  const key = p.keys.get(id)!;
  return new MessageSecurity(
    new EnvelopeSigner(id, key.privateKey, key.publicKey),
    MembersDirectory.load(p.membersFile, p.operatorPublicKey),
    EncryptionKeyring.load(p.keyFile(id), id),
  );
}

export interface Endpoint {
  t: MemoryTransport;
  metrics: GatewayMetrics;
  got: Delivery[];
}

export function signedEndpoint(
  bus: MemoryBus,
  p: ProvisionedIdentities | undefined,
  id: string,
  clock: Clock,
  options: {
    stateDir?: string;
    cell?: string;
    retryInitialMs?: number;
    retryMaxMs?: number;
    random?: () => number;
  } = {},
): Endpoint {
  const metrics = new GatewayMetrics({ gateway: id });
  const t = new MemoryTransport(
    bus,
    { gatewayId: id, cell: options.cell ?? 'c1', role: 'inverter', version: 't', publicKey: '' },
    {
      clock,
      log: silentLog,
      metrics,
      ...(p ? { security: securityFor(p, id) } : {}),
      ...(options.stateDir ? { stateDir: options.stateDir } : {}),
      outbox: {
        ...(options.retryInitialMs ? { retryInitialMs: options.retryInitialMs } : {}),
        ...(options.retryMaxMs ? { retryMaxMs: options.retryMaxMs } : {}),
      },
      ...(options.random ? { random: options.random } : {}),
    },
  );
  return { t, metrics, got: [] };
}

/** The value of one sample of a metric in Prometheus text, 0 when absent. */
export async function metricValue(
  metrics: GatewayMetrics,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const json = await metrics.registry.getSingleMetricAsString(name);
  for (const line of json.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /\{([^}]*)\}\s+(\S+)$/.exec(line);
    if (!match) continue;
    const sample = Object.fromEntries(
      match[1]!.split(',').map((kv) => {
        const [k, v] = kv.split('=');
        return [k, v?.replace(/^"|"$/g, '')];
      }),
    );
    if (Object.entries(labels).every(([k, v]) => sample[k] === v)) return Number(match[2]);
  }
  return 0;
}
