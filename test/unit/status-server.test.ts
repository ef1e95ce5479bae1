import { afterEach, describe, expect, it } from 'vitest';
import { StatusServer } from '../../src/agent/status-server.js';
import { componentLogger } from '../../src/core/log.js';
import { GatewayMetrics } from '../../src/core/metrics.js';

const log = componentLogger('test');
log.level = 'silent';
let server: StatusServer | undefined;
afterEach(async () => {
  await server?.close();
});

async function start(token?: string, health?: () => { ok: boolean; status: string }) {
  const metrics = new GatewayMetrics({ gateway: 'g1' });
  metrics.voltagePu.set({ bus: 'b3' }, 1.02);
  server = new StatusServer({
    host: '127.0.0.1',
    port: 0,
    token,
    state: () => ({ id: 'g1', roles: {} }),
    metrics: () => metrics.text(),
    ...(health ? { health } : {}),
    log,
  });
  const { port } = await server.listen();
  return `http://127.0.0.1:${port}`;
}

describe('StatusServer', () => {
  it('serves the state as JSON, metrics as Prometheus text and the HTML page', async () => {
    const url = await start();
    const state = await fetch(`${url}/api/state`);
    expect(state.headers.get('content-type')).toBe('application/json');
    expect(await state.json()).toEqual({ id: 'g1', roles: {} });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('# TYPE p2p_voltage_pu gauge');
    expect(metrics).toContain('p2p_voltage_pu{bus="b3",gateway="g1"} 1.02');
    const page = await (await fetch(`${url}/`)).text();
    expect(page).toMatch(/<title>p2p-edge status<\/title>/);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/api/state`, { method: 'POST' })).status).toBe(405);
  });

  it('/healthz answers 200 while the control loop runs and 503 with the reason when it stalls', async () => {
    let health = { ok: true, status: 'running; g1' };
    const url = await start(undefined, () => health);
    const ok = await fetch(`${url}/healthz`);
    expect([ok.status, await ok.text()]).toEqual([200, 'ok\n']);
    health = { ok: false, status: 'stalled: no control cycle for 12 s; g1' };
    const stalled = await fetch(`${url}/healthz`);
    expect([stalled.status, await stalled.text()]).toEqual([503, 'stalled: no control cycle for 12 s; g1\n']);
  });

  it('with a token, refuses requests without it', async () => {
    const token = 'a-long-enough-token-123';
    const url = await start(token);
    expect((await fetch(`${url}/api/state`)).status).toBe(401);
    expect((await fetch(`${url}/api/state`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${url}/api/state`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${url}/metrics?token=${token}`)).status).toBe(200);
  });

  it('reports a port in use as a config error naming status.port', async () => {
    const url = await start();
    const port = Number(new URL(url).port);
    const second = new StatusServer({ host: '127.0.0.1', port, state: () => ({}), metrics: async () => '', log });
    await expect(second.listen()).rejects.toMatchObject({ code: 'config', field: 'status.port' });
  });
});
