import type { z } from 'zod';
import type { GatewayConfig } from '../agent/config.js';
import { DEMO_DSO_ID, DEMO_PLATFORM_ID, SIMULATED_SETTLEMENT_SCHEDULE } from '../agent/demo.js';
import type { BenchDevice } from './grid.js';
import type { Scenario } from './scenario.js';
import { SIDELINK_IFACE } from './sidelink-network.js';

type ConfigInput = z.input<typeof GatewayConfig>;

/** Where the bench serves a device: a Modbus URL and unit id. */
export interface DeviceEndpoint {
  url: string;
  unit: number;
}

export interface BenchLayout {
  /** The broker URL the gateways of each cell connect to (through that cell's proxy); `*` for the rest. */
  brokerUrls: Record<string, string>;
  stateDir: string;
  /** The feeder file of each cell (commissioning data for the voltage agents). */
  feederFiles: Record<string, string>;
  endpoints: Record<string, DeviceEndpoint>;
  statusPorts: Record<string, number>;
  /** Scheduler periods scaled to the speed-up. */
  speedup: number;
  /**
   * The gateways in network namespaces on their cell's sidelink (`sidelink: true`), by id, with the
   * uplink address their status page listens on.
   */
  sidelinkAddresses?: ReadonlyMap<string, string>;
  /** What the bench sends to the status pages that listen beyond loopback (theirs, in namespaces). */
  statusToken?: string;
}

/**
 * A cell gateway's comms on a sidelink: the voltage control's gossip over D2D (where the paper puts the
 * secondary control's data exchange), the rest over the broker, and the D2D relay for a neighbour cut
 * off from it (on by default).
 */
function sidelinkComms(mqtt: { url: string; keepaliveS: number }) {
  return {
    transport: 'hybrid' as const,
    mqtt,
    d2d: { interface: SIDELINK_IFACE },
    routes: { gossip: 'd2d', default: 'mqtt' },
  };
}

/**
 * The gateways' scheduler steps (primary: poll and local curves; secondary: a step of the distributed
 * control) at 600×: 2.5 simulated minutes each.
 */
export const BENCH_CONTROL_STEP_MS = 250;

/**
 * The control step at a speed-up: 2.5 simulated minutes (250 ms at 600×, 500 ms at 300×), so that
 * the control follows the day's ramps the same way at any speed-up; never below 250 ms (what a
 * gateway's Modbus polling needs) nor above the field's 5 s.
 */
export const benchControlStepMs = (speedup: number): number =>
  Math.min(5000, Math.max(BENCH_CONTROL_STEP_MS, Math.round((BENCH_CONTROL_STEP_MS * 600) / speedup)));

/** Push-sum rounds per control step (a round every 100 ms at 600×). */
const GOSSIP_ROUNDS_PER_STEP = 2.5;

/** The inverter gateways' distributed voltage control (`voltageControl` without the feeder file), at 600×. */
export const BENCH_VOLTAGE_CONTROL = {
  gossipMs: BENCH_CONTROL_STEP_MS / GOSSIP_ROUNDS_PER_STEP,
  fallbackAfterMs: 5000,
  // A target band 1 % inside the limits (0.96-1.04 pu). With a control step of 2.5 simulated minutes
  // the dual ascent lags the compressed day's ramps by a few thousandths of a pu, most at the start of
  // the evening peak while the multipliers climb from zero: `npm run bench:voltage-dynamics`.
  marginPu: 0.01,
} as const;

export const transformerId = (cell: string): string => `tx-${cell}`;
export const PLATFORM_ID = DEMO_PLATFORM_ID;
/** The network operator's gateway: the idle `dso` role for now, its account for settlement later. */
export const DSO_ID = DEMO_DSO_ID;

/** The published schedule every party checks its settlements against: the demo's (the same accounts). */
export const BENCH_SETTLEMENT_SCHEDULE = SIMULATED_SETTLEMENT_SCHEDULE;

/** A market interval of 15 simulated minutes, in the real milliseconds the gateways live in. */
export const benchIntervalMs = (speedup: number): number => Math.max(1000, Math.round(900_000 / speedup));

const GRID = { gridImport: { a: 0.0005, b: 0.3, maxKWh: 500 }, gridExport: { a: 0.0005, b: 0.04, maxKWh: 500 } };
const MV_LINK = { a: 0.001, b: 0.005, efficiency: 0.98 };

/**
 * The gateways of a scenario as `p2p-edge run` configs: a transformer gateway per cell (MG trader,
 * coupling agent trading one level up with the other cells), an inverter gateway per house reading
 * its inverter and meter over Modbus, a DR aggregator and the DSO's gateway (in the first cell). Scheduler periods follow the speed-up so
 * that a market interval stays 15 simulated minutes.
 */
export function benchConfigs(scenario: Scenario, devices: readonly BenchDevice[], layout: BenchLayout): ConfigInput[] {
  const tertiaryMs = benchIntervalMs(layout.speedup);
  const stepMs = benchControlStepMs(layout.speedup);
  const scheduler = { primaryMs: stepMs, secondaryMs: stepMs, tertiaryMs };
  const voltageControl = {
    ...BENCH_VOLTAGE_CONTROL,
    ...(scenario.voltageAscent ? { ascent: scenario.voltageAscent } : {}),
    ...(scenario.voltageMarginPu !== undefined ? { marginPu: scenario.voltageMarginPu } : {}),
    gossipMs: Math.round(stepMs / GOSSIP_ROUNDS_PER_STEP),
  };
  const common = (id: string, cell?: string) => {
    const mqtt = { url: layout.brokerUrls[cell ?? '*'] ?? layout.brokerUrls['*']!, keepaliveS: 5 };
    const address = layout.sidelinkAddresses?.get(id);
    return {
      scheduler,
      stateDir: layout.stateDir,
      voltageLimitsPu: scenario.voltageLimitsPu,
      status: {
        host: address ?? '127.0.0.1',
        port: layout.statusPorts[id]!,
        ...(address ? { token: layout.statusToken } : {}),
      },
      comms: {
        ...(address ? sidelinkComms(mqtt) : { transport: 'mqtt' as const, mqtt }),
        // The platform gateway of the run settles the meter readings.
        reliability: { platform: PLATFORM_ID },
      },
      settlement: { schedule: BENCH_SETTLEMENT_SCHEDULE },
      log: { level: 'info' as const },
    };
  };
  const configs: ConfigInput[] = [];
  for (const cell of scenario.cells) {
    const tx = transformerId(cell.id);
    const others = scenario.cells.filter((c) => c.id !== cell.id);
    configs.push({
      ...common(tx, cell.id),
      gateway: { id: tx, kind: 'transformer', cell: cell.id, bus: 'tx', transformerKVA: cell.transformerKVA },
      market: {
        horizonSlots: 4,
        slotMinutes: 15,
        roundMs: 100,
        // The cell's market has no neighbouring MG trader here: its rounds need no message, so it can
        // settle ten times tighter (an interval whose whole cost is a cent still meets 1e-3).
        tolerance: 0.1,
        generators: cell.generators,
        flexibleLoads: cell.flexibleLoads,
        ...GRID,
      },
      upperMarket: {
        roundMs: 100,
        ...GRID,
        neighbours: others.map((o) => ({
          peer: transformerId(o.id),
          sendCapacityKWh: 20,
          receiveCapacityKWh: 20,
          ...MV_LINK,
        })),
      },
    });
    const houses = [...new Set(devices.filter((d) => d.cell === cell.id).map((d) => d.gateway))];
    houses.forEach((gateway, i) => {
      const own = devices.filter((d) => d.gateway === gateway);
      configs.push({
        ...common(gateway, cell.id),
        gateway: { id: gateway, kind: 'inverter', cell: cell.id, bus: own[0]!.bus },
        voltageControl: { method: 'dual', feederFile: layout.feederFiles[cell.id]!, ...voltageControl },
        // Every other house can shift part of its load (a heat pump or a washing machine).
        flexibility: i % 2 === 0 ? [{ a: 0.02, b: 0.12, maxKW: 1.5 }] : [],
        devices: own.map((d) => ({
          id: d.id,
          driver: d.kind === 'pv-inverter' ? ('sunspec' as const) : ('sdm630' as const),
          modbus: layout.endpoints[d.id]!.url,
          unit: layout.endpoints[d.id]!.unit,
          bus: d.bus,
        })),
      });
    });
  }
  if (scenario.aggregator) {
    const firstHouses = scenario.cells.map((c) => devices.find((d) => d.cell === c.id)!.gateway);
    configs.push({
      ...common('agg-1'),
      gateway: { id: 'agg-1', kind: 'aggregator', cell: scenario.cells[0]!.id },
      dr: {
        buyer: { buyer: 'dso', price: 0.25, a: 0.002, maxKWh: 20 },
        providers: firstHouses.map((provider, i) => ({ provider, a: 0.02 + 0.01 * i, b: 0.08 - 0.01 * i, maxKWh: 2 })),
      },
    });
  }
  // The DSO is no house of the cell: like the aggregator, it connects to the upstream broker.
  configs.push({ ...common(DSO_ID), gateway: { id: DSO_ID, kind: 'dso', cell: scenario.cells[0]!.id } });
  return configs;
}
