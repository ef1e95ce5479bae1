/**
 * Congestion management by the coupling agent at a transformer: the energy the cell may import or
 * export per market slot. The base is the transformer's rating less a reserve; when the cell's
 * voltage runs beyond a limit, the limit on the flow that causes it (export for overvoltage, import
 * for undervoltage) is cut by 20 % per interval down to 20 % of the base, and given back by 25 % per
 * interval once the voltage is 0.01 pu inside the limit. Pure: the caller keeps the state.
 */
export interface CellLimitState {
  importFactor: number;
  exportFactor: number;
}

export interface CellLimits extends CellLimitState {
  importKWh: number;
  exportKWh: number;
}

export const INITIAL_CELL_LIMITS: CellLimitState = { importFactor: 1, exportFactor: 1 };

export function cellTradingLimits(
  previous: CellLimitState,
  o: {
    ratingKVA: number;
    slotHours: number;
    reserve?: number;
    maxVoltagePu: number | null;
    minVoltagePu: number | null;
    vMinPu: number;
    vMaxPu: number;
  },
): CellLimits {
  const base = o.ratingKVA * o.slotHours * (1 - (o.reserve ?? 0.1));
  const adjust = (factor: number, beyond: boolean, clear: boolean) =>
    beyond ? Math.max(0.2, factor * 0.8) : clear ? Math.min(1, factor * 1.25) : factor;
  const exportFactor = adjust(
    previous.exportFactor,
    o.maxVoltagePu !== null && o.maxVoltagePu > o.vMaxPu,
    o.maxVoltagePu === null || o.maxVoltagePu < o.vMaxPu - 0.01,
  );
  const importFactor = adjust(
    previous.importFactor,
    o.minVoltagePu !== null && o.minVoltagePu < o.vMinPu,
    o.minVoltagePu === null || o.minVoltagePu > o.vMinPu + 0.01,
  );
  return { importFactor, exportFactor, importKWh: base * importFactor, exportKWh: base * exportFactor };
}
