import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { Gateway } from '../../src/agent/gateway.js';
import { MemoryBus } from '../../src/comms/memory-transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import type { Device } from '../../src/drivers/device.js';
import { demoFeeder } from '../../src/grid/demo-feeder.js';
import { buildRadialFeeder } from '../../src/grid/feeder.js';
import { CompressedDay } from '../../src/sim/profiles.js';
import { SimulatedCell } from '../../src/sim/simulated-cell.js';
import { SimulatedDevice } from '../../src/sim/simulated-device.js';
import { memoryGateways } from '../helpers/memory-gateways.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';
const NOON = Date.UTC(2026, 5, 21, 12);

function cellGateways(clock: VirtualClock, bus: MemoryBus) {
  const cell = new SimulatedCell(buildRadialFeeder(demoFeeder(2)), new CompressedDay(clock.now(), 1, 12));
  const make = memoryGateways({
    bus,
    clock,
    log,
    stateDir: tmp.dir,
    scheduler: { primaryMs: 1000, secondaryMs: 2000, tertiaryMs: 10_000 },
  });
  const tx = make({ gateway: { id: 'tx', kind: 'transformer', cell: 'c1', transformerKVA: 10 } }, () => []);
  const inv = make(
    {
      gateway: { id: 'inv1', kind: 'inverter', cell: 'c1', bus: 'b2' },
      devices: [
        { id: 'pv', driver: 'simulated', kind: 'pv-inverter', ratedW: 10_000, bus: 'b2' },
        { id: 'load', driver: 'simulated', kind: 'household-meter', ratedW: 2000, bus: 'b2' },
      ],
    },
    (c) =>
      c.devices.flatMap((d) => {
        if (d.driver !== 'simulated') return [];
        cell.addDevice({ id: d.id, kind: d.kind, bus: d.bus, ratedW: d.ratedW }, clock.now());
        return new SimulatedDevice(d.id, d.kind, cell);
      }),
  );
  return { tx, inv, cell };
}

describe('Gateway', () => {
  it('reads devices, reports to the MG trader over comms, and watches voltage and loading', async () => {
    const clock = new VirtualClock(NOON);
    const { tx, inv } = cellGateways(clock, new MemoryBus());
    await tx.start();
    await inv.start();
    await clock.advance(10_000);

    const invState = inv.state();
    expect(invState.devices.pv?.up).toBe(true);
    expect(invState.devices.pv?.points.acPowerW?.value).toBeGreaterThan(9000); // near solar noon
    const reading = invState.roles.prosumer?.lastReading as { netW: number; pvW: number };
    expect(reading.netW).toBeLessThan(-5000); // noon PV exceeds the house load
    const voltage = invState.roles['voltage-agent'] as { voltagePu: number; violations: number };
    expect(voltage.voltagePu).toBeGreaterThan(1.02); // reverse flow raises the feeder end above the slack
    expect(invState.cycles.primary).toBeGreaterThanOrEqual(10);

    const txState = tx.state();
    expect(Object.keys(txState.roles['mg-trader']?.prosumers as object)).toEqual(['inv1']);
    expect(txState.roles['coupling-agent']?.loadingPct as number).toBeGreaterThan(50);
    expect(txState.peers.map((p) => p.id)).toContain('inv1');
    expect(await tx.metrics.text()).toMatch(/p2p_messages_received_total\{class="meter",gateway="tx"\} [1-9]/);

    await inv.stop();
    await tx.stop();
  });

  it('marks a device that stops answering bad, and recovers when it answers again', async () => {
    const clock = new VirtualClock(NOON);
    let fail = false;
    let voltagePu = 1;
    const flaky: Device = {
      id: 'm',
      kind: 'household-meter',
      backend: 'test',
      poll: async () => {
        if (fail) throw new Error('timeout');
        return { acPowerW: 100, voltagePu };
      },
      close: async () => {},
    };
    const config = gatewayConfig({
      gateway: { id: 'g', kind: 'inverter', cell: 'c1' },
      devices: [{ id: 'm', driver: 'simulated', kind: 'household-meter', bus: 'b1' }],
      stateDir: tmp.dir,
    });
    const g = new Gateway(config, { clock, log, devices: [flaky] });
    await g.start();
    await clock.advance(2000);
    expect(g.state().devices.m?.up).toBe(true);
    fail = true;
    await clock.advance(2000);
    expect(g.state().devices.m).toMatchObject({ up: false, lastError: 'timeout' });
    expect(g.state().devices.m?.points.acPowerW?.quality).toBe('bad');
    expect(await g.metrics.text()).toMatch(/p2p_device_up\{device="m",gateway="g"\} 0/);
    const down = g.state().alarms.find((a) => a.id === 'device-down:m');
    expect(down).toMatchObject({ kind: 'device-down', severity: 'warning', source: 'm' });
    expect(down?.text).toContain('timeout');
    expect(down?.clearedAt).toBeUndefined();
    expect(await g.metrics.text()).toMatch(/p2p_alarms_active\{kind="device-down",severity="warning",gateway="g"\} 1/);
    fail = false;
    await clock.advance(2000);
    expect(g.state().devices.m?.up).toBe(true);
    expect(g.state().alarms.find((a) => a.id === 'device-down:m')?.clearedAt).toBe(clock.now() - 1000);
    expect(await g.metrics.text()).toMatch(/p2p_alarms_active\{kind="device-down",severity="warning",gateway="g"\} 0/);
    // The voltage agent's bus (the meter's) above the default 1.05 pu limit, then back.
    voltagePu = 1.062;
    await clock.advance(2000);
    const high = g.state().alarms[0];
    expect(high).toMatchObject({ id: 'voltage-high:g', kind: 'voltage-violation', severity: 'critical' });
    expect(high?.text).toContain('1.062 pu, above 1.05 pu');
    voltagePu = 1.0;
    await clock.advance(2000);
    expect(g.state().alarms.find((a) => a.id === 'voltage-high:g')?.clearedAt).toBeDefined();
    await g.stop();
  });

  it("raises peer-lost while its cell's transformer gateway is offline, and clears it when it is back", async () => {
    const clock = new VirtualClock(NOON);
    const bus = new MemoryBus();
    const { tx, inv } = cellGateways(clock, bus);
    await tx.start();
    await inv.start();
    await clock.advance(3000);
    expect(inv.state().alarms.filter((a) => a.kind === 'peer-lost')).toEqual([]);
    await tx.stop();
    await clock.advance(3000);
    const lost = inv.state().alarms.find((a) => a.id === 'peer-lost:tx');
    expect(lost).toMatchObject({ kind: 'peer-lost', severity: 'warning', source: 'tx' });
    expect(lost?.text).toMatch(/^the cell's transformer gateway \(its MG trader\) tx offline for [23] s/);
    expect(lost?.clearedAt).toBeUndefined();
    const back = cellGateways(clock, bus).tx;
    await back.start();
    await clock.advance(2000);
    expect(inv.state().alarms.find((a) => a.id === 'peer-lost:tx')?.clearedAt).toBeDefined();
    await inv.stop();
    await back.stop();
  });

  it("the MG trader's alarm for a house reporting its voltage above the limit stays while the house is silent, and clears once it reports being within", async () => {
    const clock = new VirtualClock(NOON);
    const bus = new MemoryBus();
    let voltagePu = 1.071;
    const meter: Device = {
      id: 'm',
      kind: 'household-meter',
      backend: 'test',
      poll: async () => ({ acPowerW: 500, voltagePu }),
      close: async () => {},
    };
    const make = memoryGateways({
      bus,
      clock,
      log,
      stateDir: tmp.dir,
      scheduler: { primaryMs: 1000, secondaryMs: 2000, tertiaryMs: 10_000 },
    });
    const tx = make({ gateway: { id: 'tx', kind: 'transformer', cell: 'c1', transformerKVA: 10 } }, () => []);
    const house = () =>
      make(
        {
          gateway: { id: 'h1', kind: 'inverter', cell: 'c1', bus: 'b1' },
          devices: [{ id: 'm', driver: 'simulated', kind: 'household-meter', bus: 'b1' }],
        },
        () => [meter],
      );
    const h1 = house();
    await tx.start();
    await h1.start();
    await clock.advance(5000);
    const alarmOf = () => tx.state().alarms.find((a) => a.id === 'voltage-high:h1');
    expect(alarmOf()).toMatchObject({ kind: 'voltage-violation', severity: 'critical', source: 'h1' });
    expect(alarmOf()?.text).toBe('h1 reports 1.071 pu at its connection point, above 1.05 pu');
    // The house goes silent (its link down): no reading is no all-clear.
    await h1.stop();
    await clock.advance(20_000);
    expect(alarmOf()?.clearedAt).toBeUndefined();
    // Back, and within the limits: cleared.
    voltagePu = 1.01;
    const again = house();
    await again.start();
    await clock.advance(5000);
    expect(alarmOf()?.clearedAt).toBeDefined();
    await again.stop();
    await tx.stop();
  });

  it('writes state atomically at stop and restores it at the next start', async () => {
    const clock = new VirtualClock(NOON);
    const { inv } = cellGateways(clock, new MemoryBus());
    await inv.start();
    await clock.advance(5000);
    const violations = inv.state().roles['voltage-agent']!.violations;
    await inv.stop();
    const file = join(tmp.dir, 'inv1', 'gateway-state.json');
    expect(existsSync(file)).toBe(true);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.roles['voltage-agent'].violations).toBe(violations);

    const again = cellGateways(new VirtualClock(NOON), new MemoryBus()).inv;
    await again.start();
    expect(again.state().roles['voltage-agent']!.violations).toBeGreaterThanOrEqual(violations);
    await again.stop();
  });

  it('refuses to start on a state file that is not a gateway state, naming the file and the field', async () => {
    const dir = join(tmp.dir, 'inv1');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'gateway-state.json');
    writeFileSync(file, JSON.stringify({ roles: ['voltage-agent'] }));
    const { inv } = cellGateways(new VirtualClock(NOON), new MemoryBus());
    await expect(inv.start()).rejects.toThrow(`${file}: roles:`);
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify({ roles: ['voltage-agent'] }));
    rmSync(file);
  });

  it('stop() is idempotent', async () => {
    const clock = new VirtualClock(NOON);
    const { inv } = cellGateways(clock, new MemoryBus());
    await inv.start();
    await Promise.all([inv.stop(), inv.stop()]);
  });
});

describe('voltage agent acting through the Inverter capability', () => {
  async function voltageAfter(method: 'volt-var' | 'monitor') {
    const clock = new VirtualClock(NOON);
    const cell = new SimulatedCell(
      buildRadialFeeder(demoFeeder(2, { r: 0.25, x: 0.1 })),
      new CompressedDay(clock.now(), 1, 12),
    );
    const config = gatewayConfig({
      gateway: { id: 'inv-v', kind: 'inverter', cell: 'c1', bus: 'b2' },
      devices: [{ id: 'pv', driver: 'simulated', kind: 'pv-inverter', ratedW: 12_000, bus: 'b2' }],
      voltageControl: { method },
      stateDir: tmp.dir,
    });
    cell.addDevice({ id: 'pv', kind: 'pv-inverter', bus: 'b2', ratedW: 12_000 }, clock.now());
    const g = new Gateway(config, { clock, log, devices: [new SimulatedDevice('pv', 'pv-inverter', cell, 12_000)] });
    await g.start();
    await clock.advance(30_000);
    const state = g.state();
    await g.stop();
    return {
      v: (state.roles['voltage-agent'] as { voltagePu: number }).voltagePu,
      q: state.devices.pv?.points.reactivePowerVAr?.value as number,
    };
  }

  it('IEEE 1547 volt-var absorbs VArs at high voltage and lowers it', async () => {
    const monitored = await voltageAfter('monitor');
    const controlled = await voltageAfter('volt-var');
    expect(monitored.v).toBeGreaterThan(1.05); // 12 kW of noon PV at the end of a weak feeder
    expect(monitored.q).toBe(0);
    expect(controlled.q).toBeLessThan(-500);
    expect(controlled.v).toBeLessThan(monitored.v - 0.002);
  });
});
