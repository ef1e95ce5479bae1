import { describe, expect, it } from 'vitest';
import { cellTradingLimits, INITIAL_CELL_LIMITS } from '../../src/control/coupling.js';

const base = { ratingKVA: 250, slotHours: 0.25, vMinPu: 0.95, vMaxPu: 1.05 };

describe('coupling agent: cell trading limits (congestion management)', () => {
  it('starts from the transformer rating less a 10 % reserve, per slot', () => {
    const l = cellTradingLimits(INITIAL_CELL_LIMITS, { ...base, maxVoltagePu: 1.02, minVoltagePu: 0.98 });
    expect(l.importKWh).toBeCloseTo(250 * 0.25 * 0.9, 9); // 56.25 kWh per 15 minutes
    expect(l.exportKWh).toBeCloseTo(56.25, 9);
  });

  it('cuts the export limit while the cell runs over voltage, down to 20 %, and gives it back once clear', () => {
    let l = cellTradingLimits(INITIAL_CELL_LIMITS, { ...base, maxVoltagePu: 1.07, minVoltagePu: 1.0 });
    expect(l.exportFactor).toBeCloseTo(0.8, 12);
    expect(l.importFactor).toBe(1);
    for (let i = 0; i < 20; i++) l = cellTradingLimits(l, { ...base, maxVoltagePu: 1.07, minVoltagePu: 1.0 });
    expect(l.exportFactor).toBeCloseTo(0.2, 12);
    l = cellTradingLimits(l, { ...base, maxVoltagePu: 1.045, minVoltagePu: 1.0 }); // inside, but within 0.01 of the limit
    expect(l.exportFactor).toBeCloseTo(0.2, 12);
    for (let i = 0; i < 10; i++) l = cellTradingLimits(l, { ...base, maxVoltagePu: 1.03, minVoltagePu: 1.0 });
    expect(l.exportFactor).toBe(1);
  });

  it('cuts the import limit on undervoltage', () => {
    const l = cellTradingLimits(INITIAL_CELL_LIMITS, { ...base, maxVoltagePu: 0.97, minVoltagePu: 0.93 });
    expect(l.importFactor).toBeCloseTo(0.8, 12);
    expect(l.exportFactor).toBe(1);
  });
});
