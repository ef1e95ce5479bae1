/**
 * Writes the voltage-control instances on the Baran & Wu feeders (`test/fixtures/voltage/`): PV at
 * every load bus rated twice the bus's nominal load (at least 20 kW), reactive power to 44 % of the
 * rating (IEEE 1547 Category B), reactive weights 0.1 / 0.05 / 0.2 in turn, limits 0.95-1.05 pu.
 * Noon: loads at 30 %, all PV available. Evening: no PV (reactive support only), loads at 90 %
 * (33-bus) and 75 % (69-bus), the most each feeder's inverters can hold at 0.95 pu with room to spare.
 * And the contract's LV example in the evening: loads × 6, no PV (as `npm run bench:voltage` had it).
 * Their optima come from `voltage_optimum.py` (README.md). Run: npx tsx bench/reference/voltage-instances.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FeederInput } from '../../src/grid/feeder.js';

const ROOT = join(import.meta.dirname, '..', '..');
const WEIGHTS = [0.1, 0.05, 0.2];

function instance(feederName: string, loadScale: number, noon: boolean) {
  const feeder = JSON.parse(
    readFileSync(join(ROOT, 'src', 'grid', 'data', `feeder-${feederName}.json`), 'utf8'),
  ) as FeederInput;
  const buses = feeder.buses.map((b) => ({
    ...b,
    pKW: Number((b.pKW * loadScale).toFixed(3)),
    qKVAr: Number((b.qKVAr * loadScale).toFixed(3)),
  }));
  const inverters = feeder.buses
    .filter((b) => b.pKW > 0 && b.id !== feeder.slack)
    .map((b, i) => {
      const ratedKVA = Math.max(20, Math.round(b.pKW * 2));
      return {
        id: `pv${b.id}`,
        bus: b.id,
        pAvailableKW: noon ? ratedKVA : 0,
        qMaxKVAr: Number((0.44 * ratedKVA).toFixed(2)),
        qWeight: WEIGHTS[i % WEIGHTS.length]!,
        sRatedKVA: ratedKVA,
      };
    });
  return { feeder: { ...feeder, buses }, vMinPu: 0.95, vMaxPu: 1.05, inverters };
}

/** The LV example's evening peak: every load six times (consumption), the PV gone. */
function lvEvening() {
  const lv = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'voltage-lv-20pv.json'), 'utf8'));
  return {
    ...lv,
    feeder: {
      ...lv.feeder,
      buses: lv.feeder.buses.map((b: { pKW: number; qKVAr: number }) => ({
        ...b,
        pKW: Math.abs(b.pKW) * 6,
        qKVAr: Math.abs(b.qKVAr) * 6,
      })),
    },
    inverters: lv.inverters.map((i: object) => ({ ...i, pAvailableKW: 0 })),
  };
}

const out = join(ROOT, 'test', 'fixtures', 'voltage');
for (const [name, input] of Object.entries({
  '33bus-noon': instance('baran-wu-33', 0.3, true),
  '33bus-evening': instance('baran-wu-33', 0.9, false),
  '69bus-noon': instance('baran-wu-69', 0.3, true),
  '69bus-evening': instance('baran-wu-69', 0.75, false),
  'lv-20pv-evening': lvEvening(),
}))
  writeFileSync(join(out, `voltage-${name}.json`), `${JSON.stringify(input, null, 1)}\n`);
