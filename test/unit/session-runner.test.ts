import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { ProcessImage } from '../../src/agent/process-image.js';
import { RoleHandOver } from '../../src/agent/roles/hand-over.js';
import type { RoleContext } from '../../src/agent/roles/role.js';
import { SessionRunner } from '../../src/agent/roles/session-runner.js';
import { MemoryBus, MemoryTransport } from '../../src/comms/memory-transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { seededRandom } from '../../src/core/prng.js';
import { compileModel, TradeInputSchema } from '../../src/trading/model.js';
import { localTradeModel, MarketSession } from '../../src/trading/session.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';

// Two traders one level up: A has a cheap generator, B only an expensive grid import; a link each way.
const T = 2;
const agentOf = (agent: unknown) =>
  compileModel(TradeInputSchema.parse({ horizon: T, agents: [agent] }), undefined, false).agents[0]!;
const agents = {
  A: agentOf({ id: 'A', demand: [10, 12], generators: [{ a: 0.002, b: 0.05, max: 60 }] }),
  B: agentOf({ id: 'B', demand: [20, 25], grid: { import: { a: 0.001, b: 0.3, max: 100 } } }),
};
const link = { sendCapacityKWh: 30, receiveCapacityKWh: 30, a: 0.001, b: 0.005, efficiency: 0.98 };
const ROUND_MS = 50;

async function runner(id: 'A' | 'B', bus: MemoryBus, clock: VirtualClock): Promise<SessionRunner> {
  const config = gatewayConfig({
    gateway: { id, kind: 'transformer', cell: `cell-${id}`, transformerKVA: 100 },
    status: { port: 0 },
    stateDir: tmp.dir,
  });
  const metrics = new GatewayMetrics({ gateway: id });
  const transport = new MemoryTransport(
    bus,
    { gatewayId: id, cell: `cell-${id}`, role: 'transformer', version: 'test', publicKey: '' },
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
    shared: new RoleHandOver().view,
  };
  return new SessionRunner(ctx, 'price-up');
}

/** One session of A and B over a bus losing `loss` of the messages, ended by `deadlineMs` or by settling. */
async function session(seed: number, loss: number, durationMs: number) {
  const clock = new VirtualClock(Date.UTC(2026, 5, 21, 12));
  const bus = new MemoryBus('lossy', { fraction: loss, random: seededRandom(seed) });
  const [ra, rb] = [await runner('A', bus, clock), await runner('B', bus, clock)];
  const open = (id: 'A' | 'B', peer: string) =>
    new MarketSession('s', localTradeModel(agents[id], [{ peer, ...link }], T, 0.25), 'accelerated', 500);
  const [sa, sb] = [open('A', 'B'), open('B', 'A')];
  const deadlineMs = clock.now() + durationMs;
  // Each trader decides the moment its run ends, as the role closes its interval then.
  const traded: boolean[] = [];
  let ended = 0;
  for (const [i, r, s] of [
    [0, ra, sa],
    [1, rb, sb],
  ] as const)
    void r.run(s, ROUND_MS, deadlineMs).then(() => {
      traded[i] = s.outcome().model.links.length > 0;
      ended++;
    });
  while (ended < 2 && clock.now() < deadlineMs + 1000) await clock.advance(5);
  expect(ended).toBe(2);
  // The background repeats end by the deadline: let them run out before the next session.
  await clock.advance(durationMs + 1000);
  ra.stop();
  rb.stop();
  const info = { rounds: [sa.status().round, sb.status().round], done: [sa.done(), sb.done()] };
  return { traded, settled: [sa.status().settled, sb.status().settled], info };
}

describe('SessionRunner: both ends of a link act on it, or neither', () => {
  it('over a link losing 10 % of the messages, sessions ended by settling or by the deadline: the two traders agree on trading every time', async () => {
    const results: { traded: boolean[] }[] = [];
    for (let seed = 1; seed <= 60; seed++) {
      // From a deadline well before the session can settle to one well after.
      const r = await session(seed, 0.1, 60 + 5 * seed);
      results.push(r);
      expect(
        r.traded[0],
        `seed ${seed}: A ${r.traded[0]}, B ${r.traded[1]}, settled ${r.settled}, ${JSON.stringify(r.info)}`,
      ).toBe(r.traded[1]);
    }
    // Both outcomes happen: sessions cut short trade nothing, those with the time settle and trade.
    const both = results.filter((r) => r.traded[0]).length;
    expect(both).toBeGreaterThan(10);
    expect(results.length - both).toBeGreaterThan(5);
  }, 60_000);
});
