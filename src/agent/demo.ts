import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedBroker } from '../comms/embedded-broker.js';
import { systemClock } from '../core/clock.js';
import { componentLogger } from '../core/log.js';
import { GatewayMetrics, mergedMetricsText } from '../core/metrics.js';
import { CompressedDay } from '../sim/profiles.js';
import { demoFeeder, SimulatedCell } from '../sim/simulated-cell.js';
import { type GatewayConfig, gatewayConfig } from './config.js';
import { Gateway } from './gateway.js';
import { untilSignal } from './signals.js';
import { StatusServer } from './status-server.js';
import { buildDevices, buildTransport } from './wiring.js';

export interface DemoOptions {
  host: string;
  port: number;
  /** How many times faster than real time the simulated day runs. */
  speedup: number;
  houses: number;
  /** Simulated hour of day at start. */
  startHour: number;
  cell: string;
}

export const DEMO_DEFAULTS: DemoOptions = {
  host: '127.0.0.1',
  port: 8080,
  speedup: 120,
  houses: 6,
  startHour: 10,
  cell: 'cell-a',
};

/**
 * Configs of the demo cell: a transformer gateway and one inverter gateway per house, each house with
 * a PV inverter and a household meter on one LV feeder. Scheduler periods are scaled with the speed-up
 * so that a trading interval is still 15 simulated minutes.
 */
export function demoConfigs(o: DemoOptions, brokerUrl: string, stateDir: string): GatewayConfig[] {
  const tertiaryMs = Math.max(1000, Math.round(900_000 / o.speedup));
  const scheduler = { primaryMs: 1000, secondaryMs: Math.min(2000, tertiaryMs), tertiaryMs };
  const common = {
    scheduler,
    stateDir,
    status: { port: 0 },
    comms: { transport: 'mqtt' as const, mqtt: { url: brokerUrl, keepaliveS: 10 } },
  };
  const transformer = gatewayConfig({
    ...common,
    gateway: { id: 'tx-1', kind: 'transformer', cell: o.cell, bus: 'tx', transformerKVA: 50 },
  });
  const houses = Array.from({ length: o.houses }, (_, i) =>
    gatewayConfig({
      ...common,
      gateway: { id: `inv-${i + 1}`, kind: 'inverter', cell: o.cell, bus: `b${i + 1}` },
      devices: [
        { id: `pv-${i + 1}`, driver: 'simulated', kind: 'pv-inverter', ratedW: 8000, bus: `b${i + 1}` },
        { id: `meter-${i + 1}`, driver: 'simulated', kind: 'household-meter', ratedW: 4000, bus: `b${i + 1}` },
      ],
    }),
  );
  return [transformer, ...houses];
}

/** `p2p-edge start` / `npm start`: a simulated cell with its gateways, broker and status page. */
export async function runDemo(options: Partial<DemoOptions> = {}): Promise<void> {
  const o = { ...DEMO_DEFAULTS, ...options };
  const log = componentLogger('demo');
  const clock = systemClock;
  const broker = await startEmbeddedBroker();
  log.info({ url: broker.url }, 'embedded MQTT broker listening');

  const now = clock.now();
  const cell = new SimulatedCell(demoFeeder(o.houses), new CompressedDay(now, o.speedup, o.startHour));
  // Each demo run starts from a fresh state directory: counters of an earlier run would mislead.
  const stateDir = mkdtempSync(join(tmpdir(), 'p2p-edge-demo-'));
  const configs = demoConfigs(o, broker.url, stateDir);
  const gateways = configs.map((config, i) => {
    for (const d of config.devices)
      cell.addDevice(
        { id: d.id, kind: d.kind, bus: d.bus, ratedW: d.ratedW, scale: 0.9 + (0.2 * i) / configs.length },
        now,
      );
    const metrics = new GatewayMetrics({ gateway: config.gateway.id });
    const transport = buildTransport(config, clock, metrics);
    return new Gateway(config, {
      clock,
      metrics,
      devices: buildDevices(config, clock, cell),
      ...(transport ? { transport } : {}),
    });
  });

  const stopAll = async () => {
    await status.close();
    await Promise.all(gateways.map((g) => g.stop()));
    await broker.close();
    rmSync(stateDir, { recursive: true, force: true });
  };
  const status = new StatusServer({
    host: o.host,
    port: o.port,
    state: () => ({
      simulation: { hourOfDay: cell.hourAt(clock.now()), speedup: o.speedup, broker: broker.url, feeder: cell.buses },
      gateways: gateways.map((g) => g.state()),
    }),
    metrics: () => mergedMetricsText(gateways.map((g) => g.metrics)),
    log: componentLogger('status'),
  });
  try {
    await Promise.all(gateways.map((g) => g.start()));
    const address = await status.listen();
    log.info(
      { gateways: gateways.length, speedup: o.speedup, url: `http://${address.address}:${address.port}/` },
      'demo cell running: open the status page; Ctrl-C stops it',
    );
  } catch (err) {
    await stopAll();
    throw err;
  }
  await untilSignal(stopAll, log);
}
