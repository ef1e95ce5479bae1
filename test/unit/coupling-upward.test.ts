import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { ProcessImage } from '../../src/agent/process-image.js';
import { CouplingAgentRole } from '../../src/agent/roles/coupling-agent.js';
import type { RoleContext } from '../../src/agent/roles/role.js';
import { MemoryBus, MemoryTransport } from '../../src/comms/memory-transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { balanceHierarchy } from '../../src/trading/hierarchy.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';
const upstream = { gridImport: { a: 0.0005, b: 0.3, maxKWh: 200 }, gridExport: { a: 0.0005, b: 0.04, maxKWh: 200 } };
const mv = { sendCapacityKWh: 10, receiveCapacityKWh: 10, a: 0.001, b: 0.005, efficiency: 0.98 };

async function couplingAgent(id: string, peer: string, bus: MemoryBus, clock: VirtualClock) {
  const config = gatewayConfig({
    gateway: { id, kind: 'transformer', cell: id, transformerKVA: 100 },
    status: { port: 0 },
    stateDir: tmp.dir,
    upperMarket: { roundMs: 50, ...upstream, neighbours: [{ peer, ...mv }] },
  });
  const metrics = new GatewayMetrics({ gateway: id });
  const transport = new MemoryTransport(
    bus,
    { gatewayId: id, cell: id, role: 'transformer', version: 'test', publicKey: '' },
    { clock, log, metrics },
  );
  await transport.start();
  const image = new ProcessImage(3000);
  const ctx: RoleContext = {
    config,
    clock,
    log,
    metrics,
    transport,
    image: () => image.snapshot(),
    shared: {},
  };
  const role = new CouplingAgentRole();
  role.start(ctx);
  return { role, ctx };
}

describe("coupling agents trade the cells' leftovers one level up", () => {
  it("a short cell buys from a long one over the MV link, at the centralised hierarchy's optimum", async () => {
    const clock = new VirtualClock(Date.UTC(2026, 5, 21, 12));
    const bus = new MemoryBus();
    const a = await couplingAgent('cell-a', 'cell-b', bus, clock);
    const b = await couplingAgent('cell-b', 'cell-a', bus, clock);
    // Cell A's market left it 6 kWh short per slot; cell B has 4 kWh to spare.
    const session = String(clock.now());
    a.ctx.shared.cellImbalance = { session, slotHours: 0.25, netImportKWh: [6, 6] };
    b.ctx.shared.cellImbalance = { session, slotHours: 0.25, netImportKWh: [-4, -4] };
    a.role.tick('secondary', a.ctx);
    b.role.tick('secondary', b.ctx);
    for (let i = 0; i < 400; i++) await clock.advance(50);
    await Promise.all([a.role.stop(), b.role.stop()]);

    const ta = a.role.state().upwardTrade as {
      converged: boolean;
      exchangeKWh: Record<string, number>;
      upstreamImportKWh: number[];
    };
    const tb = b.role.state().upwardTrade as {
      converged: boolean;
      exchangeKWh: Record<string, number>;
      upstreamExportKWh: number[];
    };
    expect(ta.converged && tb.converged).toBe(true);
    const central = balanceHierarchy({
      id: 'mv',
      upstream: { import: { a: 0.0005, b: 0.3, max: 200 }, export: { a: 0.0005, b: 0.04, max: 200 } },
      links: [
        { from: 'cell-a', to: 'cell-b', capacity: 10, a: 0.001, b: 0.005, efficiency: 0.98 },
        { from: 'cell-b', to: 'cell-a', capacity: 10, a: 0.001, b: 0.005, efficiency: 0.98 },
      ],
      children: [
        {
          id: 'cell-a',
          market: {
            horizon: 2,
            agents: [
              {
                id: 'cell-a',
                demand: [6, 6],
                grid: { import: { a: 0.0005, b: 0.3, max: 200 }, export: { a: 0.0005, b: 0.04, max: 200 } },
              },
            ],
          },
        },
        {
          id: 'cell-b',
          market: {
            horizon: 2,
            agents: [
              {
                id: 'cell-b',
                demand: [-4, -4],
                grid: { import: { a: 0.0005, b: 0.3, max: 200 }, export: { a: 0.0005, b: 0.04, max: 200 } },
              },
            ],
          },
        },
      ],
    });
    const sentBtoA = central.market.flows.find((f) => f.from === 'cell-b' && f.to === 'cell-a')!.energy[0]!;
    expect(sentBtoA).toBeGreaterThan(3); // nearly all of B's spare energy goes to A rather than upstream
    // B sends what A receives (before losses), and both match the centralised optimum.
    expect(tb.exchangeKWh['cell-a']).toBeCloseTo(-(ta.exchangeKWh['cell-b'] ?? 0), 2);
    expect(tb.exchangeKWh['cell-a']).toBeCloseTo(sentBtoA, 2);
    expect(ta.upstreamImportKWh[0]).toBeCloseTo(central.market.agents['cell-a']!.import[0]!, 2);
  });
});
