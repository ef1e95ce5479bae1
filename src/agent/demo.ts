import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedBroker } from '../comms/embedded-broker.js';
import { systemClock } from '../core/clock.js';
import { componentLogger } from '../core/log.js';
import { GatewayMetrics, mergedMetricsText } from '../core/metrics.js';
import { untilSignal } from '../core/signals.js';
import { demoFeeder } from '../grid/demo-feeder.js';
import { buildRadialFeeder } from '../grid/feeder.js';
import { Ledger } from '../platform/ledger/ledger.js';
import { PROVISIONING_OPERATOR_ID, provisionThroughPlatform, registerDrContracts } from '../platform/provision.js';
import { statementRoutes } from '../platform/statement-routes.js';
import { CompressedDay } from '../sim/profiles.js';
import { SimulatedCell } from '../sim/simulated-cell.js';
import { type GatewayConfig, gatewayConfig } from './config.js';
import { Gateway } from './gateway.js';
import { StatusServer } from './status-server.js';
import { buildDevices, buildTransport } from './wiring.js';

export interface DemoOptions {
  host: string;
  port: number;
  /** How many times faster than real time the simulated day runs. */
  speedup: number;
  /** Inverter gateways per cell. */
  houses: number;
  /** Simulated hour of day at start. */
  startHour: number;
}

export const DEMO_DEFAULTS: DemoOptions = { host: '127.0.0.1', port: 8080, speedup: 120, houses: 4, startHour: 10 };

type Offer = { a: number; b: number; maxKWh: number };

/** The demo's two cells: cell A has a local generator (e.g. a CHP), cell B only flexible demand. */
const DEMO_CELLS: { cell: string; transformer: string; market: { generators: Offer[]; flexibleLoads: Offer[] } }[] = [
  {
    cell: 'cell-a',
    transformer: 'tx-1',
    market: { generators: [{ a: 0.002, b: 0.09, maxKWh: 15 }], flexibleLoads: [] },
  },
  { cell: 'cell-b', transformer: 'tx-2', market: { generators: [], flexibleLoads: [{ a: 0.01, b: 0.2, maxKWh: 4 }] } },
];

/** The demo's platform gateway and the DSO's (in the first cell). */
export const DEMO_PLATFORM_ID = 'platform-1';
export const DEMO_DSO_ID = 'dso-1';

/**
 * The published schedule of the simulated community (demo and bench): network and platform fees per
 * kWh traded, and imbalance at the grid's prices (the markets' `gridImport`/`gridExport` marginal
 * prices); the DSO's gateway is the network operator and the account above the cells. A market
 * interval stands for 15 simulated minutes of energy however few real seconds it lasts.
 */
export const SIMULATED_SETTLEMENT_SCHEDULE = {
  networkOperator: DEMO_DSO_ID,
  networkFeePerKWh: 0.02,
  platform: DEMO_PLATFORM_ID,
  platformFeePerKWh: 0.004,
  importPricePerKWh: 0.3,
  exportPricePerKWh: 0.04,
  upperLevel: DEMO_DSO_ID,
  slotMinutes: 15,
} as const;

/** Where the demo's platform keeps its database, under the run's state directory. */
export const demoPlatformDb = (stateDir: string): string => join(stateDir, 'platform', 'ledger.db');

/**
 * Configs of the demo: two cells, each a transformer gateway (MG trader + coupling agent) and
 * `houses` inverter gateways with a PV inverter and a household meter on one LV feeder. Each cell's
 * MG trader clears its own market; the two coupling agents trade what is left over one level up. A
 * DR aggregator, the DSO's gateway and the platform (storing every cell's meter readings and trade
 * reports) complete it. Scheduler periods are scaled with the speed-up so that a trading interval is
 * still 15 simulated minutes.
 */
export function demoConfigs(
  o: DemoOptions,
  brokerUrl: string,
  stateDir: string,
  feederFiles: Record<string, string>,
): GatewayConfig[] {
  const tertiaryMs = Math.max(1000, Math.round(900_000 / o.speedup));
  // Fast primary and secondary cycles so that the distributed voltage control keeps up with the
  // compressed day (a simulated hour passes in 30 s at the default speed-up).
  const scheduler = { primaryMs: 250, secondaryMs: Math.min(500, tertiaryMs), tertiaryMs };
  const common = {
    scheduler,
    stateDir,
    status: { port: 0 },
    comms: {
      transport: 'mqtt' as const,
      mqtt: { url: brokerUrl, keepaliveS: 10 },
      // The demo's platform settles the meter readings and takes the trade reports.
      reliability: { platform: DEMO_PLATFORM_ID },
    },
    settlement: { schedule: SIMULATED_SETTLEMENT_SCHEDULE },
  };
  const grid = { gridImport: { a: 0.0005, b: 0.3, maxKWh: 200 }, gridExport: { a: 0.0005, b: 0.04, maxKWh: 200 } };
  const cells = DEMO_CELLS.flatMap(({ cell, transformer, market }, c) => {
    const peer = DEMO_CELLS[1 - c]!.transformer;
    const tx = gatewayConfig({
      ...common,
      gateway: { id: transformer, kind: 'transformer', cell, bus: 'tx', transformerKVA: 50 },
      market: { horizonSlots: 4, slotMinutes: 15, roundMs: 100, ...market, ...grid },
      // Hierarchical balancing: what the cell's market leaves over, its coupling agent trades with
      // the other cell's over the MV network, and the rest with the upstream grid.
      upperMarket: {
        roundMs: 100,
        ...grid,
        neighbours: [{ peer, sendCapacityKWh: 10, receiveCapacityKWh: 10, a: 0.001, b: 0.005, efficiency: 0.98 }],
      },
    });
    const houses = Array.from({ length: o.houses }, (_, i) => {
      const n = c * o.houses + i + 1;
      return gatewayConfig({
        ...common,
        gateway: { id: `inv-${n}`, kind: 'inverter', cell, bus: `b${i + 1}` },
        voltageControl: { method: 'dual', feederFile: feederFiles[cell]!, gossipMs: 100, fallbackAfterMs: 5000 },
        // Every other house can shift part of its load (a heat pump or a washing machine).
        flexibility: i % 2 === 0 ? [{ a: 0.02, b: 0.12, maxKW: 1.5 }] : [],
        devices: [
          { id: `pv-${n}`, driver: 'simulated', kind: 'pv-inverter', ratedW: 8000, bus: `b${i + 1}` },
          { id: `meter-${n}`, driver: 'simulated', kind: 'household-meter', ratedW: 4000, bus: `b${i + 1}` },
        ],
      });
    });
    return [tx, ...houses];
  });
  // A DR aggregator contracting the first house of each cell and selling the flexibility to the DSO.
  const aggregator = gatewayConfig({
    ...common,
    gateway: { id: 'agg-1', kind: 'aggregator', cell: 'cell-a' },
    dr: {
      buyer: { buyer: 'dso', price: 0.25, a: 0.002, maxKWh: 20 },
      providers: [
        { provider: 'inv-1', a: 0.02, b: 0.08, maxKWh: 2 },
        { provider: `inv-${o.houses + 1}`, a: 0.03, b: 0.06, maxKWh: 2 },
      ],
    },
  });
  const dso = gatewayConfig({ ...common, gateway: { id: DEMO_DSO_ID, kind: 'dso', cell: DEMO_CELLS[0]!.cell } });
  const platform = gatewayConfig({
    ...common,
    gateway: { id: DEMO_PLATFORM_ID, kind: 'platform', cell: DEMO_CELLS[0]!.cell },
    // A 15-minute simulated metering interval, in real seconds, and a simulated day of raw samples (as the bench).
    platform: {
      db: demoPlatformDb(stateDir),
      cells: DEMO_CELLS.map((c) => c.cell),
      meteringIntervalS: tertiaryMs / 1000,
      sampleRetentionH: 24 / o.speedup,
    },
    // Each market interval's settlement drafted a metering interval and a grace second after it ends.
    settlement: { schedule: SIMULATED_SETTLEMENT_SCHEDULE, intervalMs: tertiaryMs, graceS: 1, maxReadingWaitS: 30 },
    comms: { transport: 'mqtt', mqtt: { url: brokerUrl, keepaliveS: 10 } },
  });
  return [...cells, aggregator, dso, platform];
}

/**
 * Registers on the platform database a DR contract between each aggregator of `configs` and each of
 * its providers, at the platform's metering interval (demo and bench, after provisioning).
 */
export function registerDemoDrContracts(
  configs: readonly GatewayConfig[],
  platformDb: string,
  operator: { publicKey: string; privateKey: string },
  nowMs: number,
): void {
  const platform = configs.find((c) => c.platform)?.platform;
  if (!platform) return;
  const terms = configs.flatMap((c) =>
    c.dr ? [{ aggregator: c.gateway.id, providers: c.dr.providers, pricePerKWh: c.dr.buyer.price }] : [],
  );
  if (terms.length === 0) return;
  registerDrContracts(platformDb, { id: PROVISIONING_OPERATOR_ID, ...operator }, terms, {
    meteringIntervalS: platform.meteringIntervalS,
    slotMinutes: SIMULATED_SETTLEMENT_SCHEDULE.slotMinutes,
    nowMs,
  });
}

/** `p2p-edge start` / `npm start`: a simulated cell with its gateways, broker and status page. */
export async function runDemo(options: Partial<DemoOptions> = {}): Promise<void> {
  const o = { ...DEMO_DEFAULTS, ...options };
  const log = componentLogger('demo');
  const clock = systemClock;
  const broker = await startEmbeddedBroker();
  log.info({ url: broker.url }, 'embedded MQTT broker listening');

  const now = clock.now();
  const day = new CompressedDay(now, o.speedup, o.startHour);
  const feeders = new Map(
    DEMO_CELLS.map(({ cell }) => [cell, new SimulatedCell(buildRadialFeeder(demoFeeder(o.houses)), day)]),
  );
  // Each demo run starts from a fresh state directory: counters of an earlier run would mislead.
  const stateDir = mkdtempSync(join(tmpdir(), 'p2p-edge-demo-'));
  // The inverter gateways' commissioning data: each cell's feeder, for the voltage sensitivities.
  const feederFiles = Object.fromEntries(
    [...feeders.keys()].map((cell) => {
      const file = join(stateDir, `feeder-${cell}.json`);
      writeFileSync(file, JSON.stringify(demoFeeder(o.houses)));
      return [cell, file];
    }),
  );
  // Every demo gateway signs its messages: keys made for this run, every gateway registered and
  // admitted on the demo's platform, and the members list it issued given to every gateway.
  const plain = demoConfigs(o, broker.url, stateDir, feederFiles);
  let ids: ReturnType<typeof provisionThroughPlatform>;
  try {
    ids = provisionThroughPlatform(
      plain.map((c) => c.gateway),
      join(stateDir, 'identities'),
      demoPlatformDb(stateDir),
      now,
    );
    registerDemoDrContracts(plain, demoPlatformDb(stateDir), ids.operator, now);
  } catch (err) {
    await broker.close();
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  const configs = plain.map((c) => ({
    ...c,
    comms: {
      ...c.comms,
      security: {
        ...c.comms.security,
        keyFile: ids.keyFile(c.gateway.id),
        membersFile: ids.membersFile,
        operatorPublicKey: ids.operatorPublicKey,
      },
    },
  }));
  const gateways = configs.map((config, i) => {
    const cell = feeders.get(config.gateway.cell)!;
    for (const d of config.devices.filter((x) => x.driver === 'simulated'))
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

  // The status page also serves each member's statement, from the platform's database (read side).
  const statements = Ledger.open(demoPlatformDb(stateDir), { mustExist: true, pageCacheKiB: 1024 });
  const stopAll = async () => {
    await status.close();
    statements.close();
    await Promise.all(gateways.map((g) => g.stop()));
    await broker.close();
    rmSync(stateDir, { recursive: true, force: true });
  };
  const status = new StatusServer({
    host: o.host,
    port: o.port,
    state: () => ({
      simulation: {
        hourOfDay: day.hourAt(clock.now()),
        speedup: o.speedup,
        broker: broker.url,
        cells: [...feeders.keys()],
      },
      gateways: gateways.map((g) => g.state()),
    }),
    metrics: () => mergedMetricsText(gateways.map((g) => g.metrics)),
    routes: statementRoutes(statements, () => clock.now()),
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
