import { gatewayConfig } from '../../src/agent/config.js';
import { Gateway } from '../../src/agent/gateway.js';
import type { MemoryBus } from '../../src/comms/memory-transport.js';
import { MemoryTransport } from '../../src/comms/memory-transport.js';
import type { VirtualClock } from '../../src/core/clock.js';
import type { Logger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import type { Device } from '../../src/drivers/device.js';

/**
 * Gateways of cell c1 on one in-memory bus and a virtual clock: `make(config, devices)` builds one
 * from a config (the scheduler, state directory and status port filled in) and its devices (or a
 * function of its parsed config giving them).
 */
export function memoryGateways(o: {
  bus: MemoryBus;
  clock: VirtualClock;
  log: Logger;
  stateDir: string;
  scheduler: { primaryMs: number; secondaryMs: number; tertiaryMs: number };
}) {
  return (
    input: Parameters<typeof gatewayConfig>[0],
    devices: Device[] | ((config: ReturnType<typeof gatewayConfig>) => Device[]) = [],
  ): Gateway => {
    const config = gatewayConfig({ ...input, scheduler: o.scheduler, stateDir: o.stateDir, status: { port: 0 } });
    const metrics = new GatewayMetrics({ gateway: config.gateway.id });
    const transport = new MemoryTransport(
      o.bus,
      { gatewayId: config.gateway.id, cell: 'c1', role: config.gateway.kind, version: 'test', publicKey: '' },
      { clock: o.clock, log: o.log, metrics },
    );
    return new Gateway(config, {
      clock: o.clock,
      log: o.log,
      metrics,
      transport,
      devices: typeof devices === 'function' ? devices(config) : devices,
    });
  };
}
