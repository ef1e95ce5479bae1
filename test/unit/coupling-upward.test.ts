import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { ProcessImage } from '../../src/agent/process-image.js';
import { CouplingAgentRole } from '../../src/agent/roles/coupling-agent.js';
import { RoleHandOver } from '../../src/agent/roles/hand-over.js';
import type { RoleContext } from '../../src/agent/roles/role.js';
import { MemoryBus, MemoryTransport } from '../../src/comms/memory-transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { type BalancingLevel, jointInstance, levelNodeId } from '../../src/trading/hierarchy.js';
import { compileModel } from '../../src/trading/model.js';
import { solveReference } from '../../src/trading/reference/interior-point.js';
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
  const handOver = new RoleHandOver();
  const ctx: RoleContext = {
    config,
    clock,
    log,
    metrics,
    transport,
    image: () => image.snapshot(),
    shared: handOver.view,
  };
  const role = new CouplingAgentRole(handOver.cellLimits);
  role.start(ctx);
  // The test writes the cell's leftover where the cell's MG trader would.
  return { role, ctx, cellImbalance: handOver.cellImbalance };
}

describe("coupling agents trade the cells' leftovers one level up", () => {
  it('a short cell buys from a long one over the MV link, at the optimum of the whole two-cell instance solved at once', async () => {
    const clock = new VirtualClock(Date.UTC(2026, 5, 21, 12));
    const bus = new MemoryBus();
    const a = await couplingAgent('cell-a', 'cell-b', bus, clock);
    const b = await couplingAgent('cell-b', 'cell-a', bus, clock);
    // Cell A's market left it 6 kWh short per slot; cell B has 4 kWh to spare.
    const session = String(clock.now());
    a.cellImbalance.set({ session, slotHours: 0.25, netImportKWh: [6, 6] });
    b.cellImbalance.set({ session, slotHours: 0.25, netImportKWh: [-4, -4] });
    a.role.tick('secondary', a.ctx);
    b.role.tick('secondary', b.ctx);
    for (let i = 0; i < 400; i++) await clock.advance(50);
    await Promise.all([a.role.stop(), b.role.stop()]);

    const ta = a.role.state().upwardTrade!;
    const tb = b.role.state().upwardTrade!;
    expect(ta.converged && tb.converged).toBe(true);
    // The reference: both cells and the MV level as one instance, solved centrally by the interior-point
    // method (independent of the distributed code). Each cell is one trader with nothing but its
    // leftover and its transformer, so its own market has no choice to make and the hierarchical
    // trade above can reach this joint optimum.
    const grid = { import: { a: 0.0005, b: 0.3, max: 200 }, export: { a: 0.0005, b: 0.04, max: 200 } };
    const cell = (id: string, demand: number[]): BalancingLevel => ({
      id,
      market: { horizon: 2, slotHours: 0.25, agents: [{ id, demand, grid }] },
    });
    const twoCells: BalancingLevel = {
      id: 'mv',
      upstream: grid,
      links: [
        { from: 'cell-a', to: 'cell-b', capacity: 10, a: 0.001, b: 0.005, efficiency: 0.98 },
        { from: 'cell-b', to: 'cell-a', capacity: 10, a: 0.001, b: 0.005, efficiency: 0.98 },
      ],
      children: [cell('cell-a', [6, 6]), cell('cell-b', [-4, -4])],
    };
    const model = compileModel(jointInstance(twoCells));
    const optimum = solveReference(model);
    const flow = (from: string, to: string, t: number) => {
      const [i, j] = [from, to].map((id) => model.agents.findIndex((x) => x.id === levelNodeId(id)));
      const k = model.links.findIndex((l) => l.from === i && l.to === j);
      const z = optimum.variables.findIndex((v) => v.link === k && v.t === t);
      return optimum.z[z]!;
    };
    const upstreamImport = (cellId: string, t: number) => {
      const i = model.agents.findIndex((x) => x.id === levelNodeId(cellId));
      return optimum.z[optimum.variables.findIndex((v) => v.agent === i && v.kind === 'import' && v.t === t)]!;
    };
    const sentBtoA = flow('cell-b', 'cell-a', 0);
    expect(sentBtoA).toBeGreaterThan(3); // nearly all of B's spare energy goes to A rather than upstream
    // B sends what A receives (before losses), and both match the joint optimum.
    expect(tb.exchangeKWh['cell-a']).toBeCloseTo(-(ta.exchangeKWh['cell-b'] ?? 0), 2);
    expect(tb.exchangeKWh['cell-a']).toBeCloseTo(sentBtoA, 2);
    expect(ta.upstreamImportKWh[0]).toBeCloseTo(upstreamImport('cell-a', 0), 2);
  });
});
