import { describe, expect, it } from 'vitest';
import { eventually, freePort, startCli } from '../helpers/net.js';

type State = { gateways: { id: string; roles: Record<string, Record<string, unknown>> }[] };

describe('p2p-edge start (the demo)', () => {
  it("serves /api/state and /metrics within 15 s, clears each cell's market and trades the leftovers between the cells, stops cleanly on SIGINT", async () => {
    const port = await freePort();
    // 600× speed-up: a 15-minute trading interval every 1.5 s.
    const demo = startCli(['start', '--port', String(port), '--houses', '2', '--speedup', '600']);
    const t0 = Date.now();
    const state = await eventually(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as State;
      const trader = s.gateways.find((g) => g.id === 'tx-1')?.roles['mg-trader'];
      return trader && Object.keys(trader.prosumers as object).length === 2 ? s : undefined;
    }, 15_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(state.gateways.map((g) => g.id)).toEqual([
      'tx-1',
      'inv-1',
      'inv-2',
      'tx-2',
      'inv-3',
      'inv-4',
      'agg-1',
      'dso-1',
      'platform-1',
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/p2p_messages_received_total\{class="meter",gateway="tx-1"\} [1-9]/);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toContain('p2p-edge');

    // Both MG traders clear a market interval together over MQTT.
    const market = await eventually(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as State;
      const sessions = ['tx-1', 'tx-2'].map(
        (id) =>
          s.gateways.find((g) => g.id === id)?.roles['mg-trader']?.market as {
            converged: boolean;
            rounds: number;
            prices: number[];
          } | null,
      );
      return sessions.every((m) => m?.converged) ? sessions : undefined;
    }, 20_000);
    for (const m of market) {
      expect(m!.rounds).toBeGreaterThan(1);
      expect(m!.prices).toHaveLength(4);
    }
    // The coupling agents trade the cells' leftovers one level up, with each other and upstream.
    const upward = await eventually(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as State;
      const trades = ['tx-1', 'tx-2'].map(
        (id) =>
          s.gateways.find((g) => g.id === id)?.roles['coupling-agent']?.upwardTrade as {
            session: string;
            converged: boolean;
            exchangeKWh: Record<string, number>;
          } | null,
      );
      return trades.every((t) => t?.converged) && trades[0]!.session === trades[1]!.session ? trades : undefined;
    }, 20_000);
    const [a, b] = upward;
    // The two coupling agents agree on what crosses between the cells (each counts it before losses).
    expect((a!.exchangeKWh['tx-2'] ?? 0) + (b!.exchangeKWh['tx-1'] ?? 0)).toBeCloseTo(0, 1);
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(
      /p2p_price\{slot="0",gateway="tx-1"\} /,
    );
    // The platform stores the houses' metering intervals: it admitted every gateway the members list names.
    const platform = await eventually(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as State;
      const role = s.gateways.find((g) => g.id === 'platform-1')?.roles.platform as
        | { intervalsStored: number; fromNonMembers: number }
        | undefined;
      return role && role.intervalsStored > 0 ? role : undefined;
    }, 20_000);
    expect(platform.fromNonMembers).toBe(0);
    // Each interval settles while the demo runs, signed by every party on its own gateway, and a
    // member reads it on the status page.
    const settled = await eventually(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as State;
      const role = s.gateways.find((g) => g.id === 'platform-1')?.roles.platform as
        | { settlement: { committed: number; disputes: number; refusedSignatures: number } }
        | undefined;
      return role && role.settlement.committed >= 3 ? role.settlement : undefined;
    }, 40_000);
    expect(settled.disputes).toBe(0);
    expect(settled.refusedSignatures).toBe(0);
    const statement = (await (await fetch(`http://127.0.0.1:${port}/api/statements?member=inv-1`)).json()) as {
      settledIntervals: number;
      accounts: { id: string; intervals: number }[];
    };
    expect(statement.settledIntervals).toBeGreaterThan(0);
    expect(statement.accounts[0]).toMatchObject({ id: 'inv-1' });
    expect(await (await fetch(`http://127.0.0.1:${port}/statement?member=inv-1`)).text()).toContain('inv-1');
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
  });
});
