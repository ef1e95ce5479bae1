import type { TradeInputFile } from './model.js';

type AgentInput = TradeInputFile['agents'][number];
type Device = NonNullable<AgentInput['generators']>[number];
type StorageInput = NonNullable<AgentInput['storage']>[number];

/**
 * A prosumer's offer to its MG trader: its expected demand and its flexibility curves (PV and other
 * generation, demand response, storage) in the market's quadratic form.
 */
export interface ProsumerOffer {
  id: string;
  demand: number | number[];
  generators?: Device[];
  flexibleLoads?: Device[];
  storage?: StorageInput[];
}

/** Which prosumer owns each device of the aggregated MG, in the MG's device order. */
export interface DeviceOwners {
  generators: string[];
  flexibleLoads: string[];
  storage: string[];
}

const sumSeries = (values: (number | number[])[], horizon: number): number | number[] => {
  if (values.every((v) => typeof v === 'number')) return (values as number[]).reduce((a, b) => a + b, 0);
  return Array.from({ length: horizon }, (_, t) =>
    values.reduce<number>((s, v) => s + (typeof v === 'number' ? v : (v[t] ?? 0)), 0),
  );
};

/**
 * The MG trader's own agent: the sum of its prosumers' demands and all their devices. The MG's local
 * problem is separable by device, so trading with the aggregate and handing each prosumer its own
 * devices' schedule is exactly the optimum the prosumers would reach trading one by one.
 */
export function aggregateProsumers(
  mgId: string,
  offers: ProsumerOffer[],
  horizon: number,
  grid?: AgentInput['grid'],
): { agent: AgentInput; owners: DeviceOwners } {
  const owners: DeviceOwners = { generators: [], flexibleLoads: [], storage: [] };
  const generators: Device[] = [];
  const flexibleLoads: Device[] = [];
  const storage: StorageInput[] = [];
  for (const o of offers) {
    for (const g of o.generators ?? []) {
      generators.push(g);
      owners.generators.push(o.id);
    }
    for (const f of o.flexibleLoads ?? []) {
      flexibleLoads.push(f);
      owners.flexibleLoads.push(o.id);
    }
    for (const s of o.storage ?? []) {
      storage.push(s);
      owners.storage.push(o.id);
    }
  }
  const demand = sumSeries(
    offers.map((o) => o.demand),
    horizon,
  );
  return { agent: { id: mgId, demand, generators, flexibleLoads, storage, ...(grid ? { grid } : {}) }, owners };
}

/** One prosumer's share of the MG's schedule: its devices' setpoints and what it pays at the MG price. */
export interface ProsumerDispatch {
  generation: number[][];
  curtailment: number[][];
  charge: number[][];
  discharge: number[][];
  /** Net energy it takes from the MG per slot (demand − own supply); negative = it delivers. */
  netKWh: number[];
  /** Σ price × netKWh: what it pays the MG trader (negative = it is paid). */
  paymentTotal: number;
}

export function dispatchShares(
  offers: ProsumerOffer[],
  owners: DeviceOwners,
  schedule: { generation: number[][]; curtailment: number[][]; charge: number[][]; discharge: number[][] },
  prices: number[],
): Record<string, ProsumerDispatch> {
  const horizon = prices.length;
  const out: Record<string, ProsumerDispatch> = {};
  for (const o of offers) {
    const pick = (list: number[][], who: string[]) => list.filter((_, k) => who[k] === o.id);
    const generation = pick(schedule.generation, owners.generators);
    const curtailment = pick(schedule.curtailment, owners.flexibleLoads);
    const charge = pick(schedule.charge, owners.storage);
    const discharge = pick(schedule.discharge, owners.storage);
    const netKWh = Array.from({ length: horizon }, (_, t) => {
      const demand = typeof o.demand === 'number' ? o.demand : (o.demand[t] ?? 0);
      let supply = 0;
      for (const g of generation) supply += g[t]!;
      for (const r of curtailment) supply += r[t]!;
      charge.forEach((c, k) => {
        supply += discharge[k]![t]! - c[t]!;
      });
      return demand - supply;
    });
    out[o.id] = {
      generation,
      curtailment,
      charge,
      discharge,
      netKWh,
      paymentTotal: netKWh.reduce((s, e, t) => s + e * prices[t]!, 0),
    };
  }
  return out;
}
