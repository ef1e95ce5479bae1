import { describe, expect, it } from 'vitest';
import { eventually, freePort, startCli } from '../helpers/net.js';

describe('p2p-edge start (the demo)', () => {
  it('serves /api/state and /metrics within 15 s and stops cleanly on SIGINT', async () => {
    const port = await freePort();
    const demo = startCli(['start', '--port', String(port), '--houses', '3']);
    const t0 = Date.now();
    const state = await eventually(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as {
        gateways: { id: string; roles: Record<string, Record<string, unknown>> }[];
      };
      const trader = s.gateways.find((g) => g.id === 'tx-1')?.roles['mg-trader'];
      return trader && Object.keys(trader.prosumers as object).length === 3 ? s : undefined;
    }, 15_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(state.gateways.map((g) => g.id)).toEqual(['tx-1', 'inv-1', 'inv-2', 'inv-3']);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/p2p_messages_received_total\{class="meter",gateway="tx-1"\} [1-9]/);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toContain('p2p-edge');
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
  });
});
