import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, freePort, runCli, startCli, tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('p2p-edge command line', () => {
  it('--help lists every command of the contract', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of [
      'run',
      'start',
      'trade',
      'powerflow',
      'voltage',
      'scan',
      'control',
      'simulate',
      'ledger',
      'bench',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
    }
  });

  it('a usage error exits 2', async () => {
    const r = await runCli(['trade']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--input/);
    expect((await runCli(['control', '--modbus', 'tcp://x:1', '--unit', 'one'])).code).toBe(2);
    expect((await runCli(['frobnicate'])).code).toBe(2);
  });

  it('a bad config file exits 2 naming the file and the field', async () => {
    const file = join(tmp.dir, 'bad.yaml');
    writeFileSync(file, 'gateway: { id: g1, kind: inverter, cell: c1 }\nscheduler: { primaryMs: "fast" }\n');
    const r = await runCli(['run', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('scheduler.primaryMs');
    const check = await runCli(['run', '--config', file, '--check']);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('scheduler.primaryMs');
    const good = join(tmp.dir, 'good.yaml');
    writeFileSync(good, 'gateway: { id: g1, kind: inverter, cell: c1 }\n');
    expect(await runCli(['run', '--config', good, '--check'])).toMatchObject({ code: 0, stdout: `${good}: valid\n` });
    const missing = await runCli(['run', '--config', join(tmp.dir, 'none.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/none\.yaml: cannot read: file not found/);
    // Several configs for one process: each is checked, and one id twice is refused before anything starts.
    const same = join(tmp.dir, 'same-id.yaml');
    writeFileSync(same, 'gateway: { id: g1, kind: inverter, cell: c1 }\n');
    const twice = await runCli(['run', '--config', good, '--config', same]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain(`${same}: gateway.id "g1" is also the id in ${good}`);
    const both = await runCli(['run', '--config', good, '--config', file, '--check']);
    expect(both.code).toBe(2);
    expect(both.stdout).toBe(`${good}: valid\n`);
    expect(both.stderr).toContain('scheduler.primaryMs');
  });

  it('runs one gateway from a config, serves its status, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const file = join(tmp.dir, 'gw.yaml');
    writeFileSync(
      file,
      [
        'gateway: { id: inv-9, kind: inverter, cell: c1, bus: b1 }',
        `status: { port: ${port} }`,
        'scheduler: { primaryMs: 200, secondaryMs: 400, tertiaryMs: 2000 }',
        'devices:',
        '  - { id: pv, driver: simulated, kind: pv-inverter, bus: b1 }',
        `stateDir: ${join(tmp.dir, 'var')}`,
      ].join('\n'),
    );
    const gw = startCli(['run', '--config', file]);
    const state = await eventually(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as { cycles: { primary: number } };
      return s.cycles.primary >= 3 ? s : undefined;
    });
    expect(state).toMatchObject({ id: 'inv-9', kind: 'inverter', roles: { prosumer: {}, 'voltage-agent': {} } });
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(
      /p2p_device_up\{device="pv",gateway="inv-9"\} 1/,
    );
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    expect(gw.output()).toMatch(/"msg":"gateway stopped"/);
    expect(existsSync(join(tmp.dir, 'var', 'inv-9', 'gateway-state.json'))).toBe(true);
  });

  it("README's one gateway runs as written: config/single-gateway.example.yaml, its own broker, no keys", async () => {
    // Its own working directory, so that the example's stateDir (./var) is this test's.
    const cwd = join(tmp.dir, 'single');
    mkdirSync(cwd);
    const example = join(import.meta.dirname, '..', '..', 'config', 'single-gateway.example.yaml');
    const gw = startCli(['run', '--config', example], {}, cwd);
    let watcher: MqttClient | undefined;
    try {
      const metrics = await eventually(async () => {
        const text = await (await fetch('http://127.0.0.1:8081/metrics')).text();
        return /p2p_device_up\{device="meter-1",gateway="house-1"\} 1/.test(text) ? text : undefined;
      }, 40_000);
      expect(metrics).toMatch(/p2p_device_up\{device="pv-1",gateway="house-1"\} 1/);
      expect(metrics).toMatch(/p2p_voltage_pu\{bus="b3",gateway="house-1"\} \d/);
      // The broker it hosts takes other clients: its presence is there for a peer or `mosquitto_sub`.
      watcher = await mqtt.connectAsync('mqtt://127.0.0.1:1884', { reconnectPeriod: 0 });
      const topics: string[] = [];
      watcher.on('message', (topic) => topics.push(topic));
      await watcher.subscribeAsync('p2p/#');
      await eventually(async () => topics.some((t) => t.includes('house-1')) || undefined, 10_000);
    } finally {
      await watcher?.endAsync();
      gw.child.kill('SIGTERM');
    }
    expect(await gw.exited, gw.output()).toBe(0);
    expect(gw.output()).toMatch(/hosting an MQTT broker in the process/);
    expect(existsSync(join(cwd, 'var', 'house-1', 'gateway-state.json'))).toBe(true);
  }, 60_000);

  it('a hosted broker whose port is taken stops the gateway with exit 2 naming comms.broker', async () => {
    const port = await freePort();
    const blocker = createServer().listen(port, '127.0.0.1');
    await once(blocker, 'listening');
    const file = join(tmp.dir, 'taken.yaml');
    writeFileSync(
      file,
      [
        'gateway: { id: house-9, kind: inverter, cell: cell-a, bus: b1 }',
        `stateDir: ${join(tmp.dir, 'taken-state')}`,
        'status: { port: 0 }',
        `comms: { transport: mqtt, broker: { port: ${port} }, mqtt: { url: "mqtt://127.0.0.1:${port}" }, security: { unsigned: true } }`,
        'devices: [{ id: pv-1, driver: simulated, kind: pv-inverter, ratedW: 3000, bus: b1 }]',
      ].join('\n'),
    );
    try {
      const r = await runCli(['run', '--config', file]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`comms\\.broker: cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      blocker.close();
    }
  }, 30_000);
});
