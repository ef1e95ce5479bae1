import { afterAll, describe, expect, it } from 'vitest';
import type { CouplingAgentState } from '../../src/agent/roles/coupling-agent.js';
import { RoleHandOver } from '../../src/agent/roles/hand-over.js';
import type { MgTraderState } from '../../src/agent/roles/mg-trader.js';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { memoryGateways } from '../helpers/memory-gateways.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';

describe('what the roles of one gateway hand each other', () => {
  it('reaches every reader through a view that cannot write', () => {
    const handOver = new RoleHandOver();
    const limits = { importFactor: 1, exportFactor: 0.5, importKWh: 20, exportKWh: 10 };
    expect(handOver.view.cellLimits.get()).toBeUndefined();
    handOver.cellLimits.set(limits);
    expect(handOver.view.cellLimits.get()).toEqual(limits);
    expect('set' in handOver.view.cellLimits).toBe(false);
    expect('set' in handOver.view.cellImbalance).toBe(false);
    // @ts-expect-error: a reader has no `set` (the type check fails here if the view ever gets one).
    expect(() => handOver.view.cellImbalance.set({ session: '0', slotHours: 1, netImportKWh: [1] })).toThrow(TypeError);
  });

  it("carries the coupling agent's limits to the MG trader's market and the cell's leftover back", async () => {
    const clock = new VirtualClock(Date.UTC(2026, 5, 21, 12));
    const make = memoryGateways({
      bus: new MemoryBus(),
      clock,
      log,
      stateDir: tmp.dir,
      scheduler: { primaryMs: 1000, secondaryMs: 2000, tertiaryMs: 60_000 },
    });
    const tx = make({
      gateway: { id: 'tx', kind: 'transformer', cell: 'c1', transformerKVA: 10 },
      market: {
        roundMs: 20,
        slotMinutes: 15,
        gridImport: { a: 0.001, b: 0.3, maxKWh: 1000 },
        gridExport: { a: 0.001, b: 0.04, maxKWh: 1000 },
      },
      upperMarket: { roundMs: 20, gridImport: { a: 0.001, b: 0.3, maxKWh: 1000 } },
    });
    await tx.start();
    await clock.advance(3 * 60_000);
    const roles = tx.state().roles;
    const coupling = roles['coupling-agent'] as CouplingAgentState;
    const trader = roles['mg-trader'] as MgTraderState;
    await tx.stop();
    // The limits the coupling agent set (from its transformer's rating, 10 kVA over 15 minutes) cap the
    // grid exchange of the MG trader's last session.
    const limits = coupling.cellLimits as { importKWh: number; exportKWh: number };
    expect(limits.importKWh).toBeGreaterThan(0);
    expect(limits.importKWh).toBeLessThan(2.5);
    const agent = trader.market!.instance!.agent;
    expect(agent.gridImport!.max[0]).toBe(limits.importKWh);
    expect(agent.gridExport!.max[0]).toBe(limits.exportKWh);
    // The cell's leftover of each interval went up: the coupling agent traded it one level up.
    expect(coupling.upwardTrades).toBeGreaterThan(0);
    expect(coupling.upwardTrade!.session).toBe(trader.recentSessions.at(-1)!.session);
  });
});
