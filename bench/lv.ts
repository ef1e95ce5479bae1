/**
 * npm run bench:lv — a day (96 × 15 min) on the IEEE European LV Test Feeder (906 buses, 55 houses on
 * single phases) with the published load shapes, and single-phase rooftop PV on 30 of the 55 houses
 * (seeded choice and sizes, 3–5.5 kWp, clear-sky half-sine 06:00–20:00). Three-phase unbalanced
 * power flow every 15 minutes. Scenarios: loads only, the PV on single phases, and the same PV split
 * evenly over three phases (what a balanced model would assume); each with the source at the feeder's
 * published 1.05 pu and at 1.00 pu. Reports max/min phase voltage, hours with some house above
 * 1.05 / 1.10 pu, the worst voltage unbalance, solve time per snapshot, and the time for the
 * sensitivities of the 30 PV inverters. Writes bench/results/lv.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildThreePhaseModel, type ThreePhaseFeederInput } from '../src/sim/powerflow/three-phase/feeder.js';
import { loadIeeeEuropeanLv } from '../src/sim/powerflow/three-phase/ieee-european-lv.js';
import { threePhaseSensitivities } from '../src/sim/powerflow/three-phase/sensitivities.js';
import { type PhaseInjection, solveThreePhase } from '../src/sim/powerflow/three-phase/sweep.js';
import { pvShape } from '../src/sim/profiles.js';
import { seededRandom } from '../src/trading/prng.js';

const SEED = 7;
const PV_HOUSES = 30;
const STEPS = 96;
const STEP_HOURS = 0.25;

const eulv = loadIeeeEuropeanLv();
const random = seededRandom(SEED);
// Seeded choice of 30 houses (partial Fisher–Yates) and their PV sizes.
const order = eulv.loads.map((_, i) => i);
for (let i = 0; i < PV_HOUSES; i++) {
  const j = i + Math.floor(random() * (order.length - i));
  [order[i], order[j]] = [order[j]!, order[i]!];
}
const pv = order.slice(0, PV_HOUSES).map((i) => ({ house: eulv.loads[i]!, kWp: 3 + Math.round(random() * 25) / 10 }));
const pvKWp = pv.reduce((a, p) => a + p.kWp, 0);

type PvMode = 'none' | 'single-phase' | 'split over 3 phases';
interface Row extends Record<string, unknown> {
  scenario: string;
}

function runDay(vSlackPu: number, mode: PvMode): Row {
  const input: ThreePhaseFeederInput = { ...eulv, vSlackPu };
  const model = buildThreePhaseModel(input);
  const houseKeys = eulv.loads.map((l) => `${l.bus}.${l.phase}`);
  let vMax = { pu: 0, key: '', hour: 0 };
  let vMin = { pu: Number.POSITIVE_INFINITY, key: '', hour: 0 };
  let worstUnbalance = { pct: 0, bus: '', hour: 0 };
  let hoursAny105 = 0;
  let hoursAny110 = 0;
  let houseHours105 = 0;
  let houseHours110 = 0;
  let pvEnergyKWh = 0;
  let loadEnergyKWh = 0;
  let lossesKWh = 0;
  const times: number[] = [];
  let iterations = 0;
  let previous: Float64Array | undefined;
  for (let step = 0; step < STEPS; step++) {
    const hour = (step + 0.5) * STEP_HOURS;
    const loadMultipliers = new Map(
      eulv.loads.map((l) => [l.id!, eulv.profiles!.multipliers[l.id!]![step]!] as [string, number]),
    );
    const extraInjections: PhaseInjection[] = [];
    if (mode !== 'none')
      for (const { house, kWp } of pv) {
        const pW = kWp * 1000 * pvShape(hour);
        if (pW <= 0) continue;
        const bus = model.busIndex.get(house.bus)!;
        if (mode === 'single-phase')
          extraInjections.push({ bus, phase: ['a', 'b', 'c'].indexOf(house.phase), pW, qVar: 0 });
        else for (let phase = 0; phase < 3; phase++) extraInjections.push({ bus, phase, pW: pW / 3, qVar: 0 });
        pvEnergyKWh += (pW / 1000) * STEP_HOURS;
      }
    const started = performance.now();
    const r = solveThreePhase(model, {
      loadMultipliers,
      extraInjections,
      ...(previous ? { initialVoltage: previous } : {}),
    });
    times.push(performance.now() - started);
    previous = r.sweep.voltage;
    if (!r.converged) throw new Error(`step ${step} did not converge`);
    iterations = Math.max(iterations, r.iterations);
    lossesKWh += r.lossesKW * STEP_HOURS;
    loadEnergyKWh += [...loadMultipliers.values()].reduce((a, m) => a + m, 0) * STEP_HOURS;
    const start = step * STEP_HOURS;
    if (r.maxVoltage.pu > vMax.pu) vMax = { ...r.maxVoltage, hour: start };
    if (r.minVoltage.pu < vMin.pu) vMin = { ...r.minVoltage, hour: start };
    if (r.maxUnbalance.pct > worstUnbalance.pct) worstUnbalance = { ...r.maxUnbalance, hour: start };
    const houseVoltages = houseKeys.map((k) => r.voltagesPu[k]!);
    if (houseVoltages.some((v) => v > 1.05)) hoursAny105 += STEP_HOURS;
    if (houseVoltages.some((v) => v > 1.1)) hoursAny110 += STEP_HOURS;
    houseHours105 += houseVoltages.filter((v) => v > 1.05).length * STEP_HOURS;
    houseHours110 += houseVoltages.filter((v) => v > 1.1).length * STEP_HOURS;
  }
  times.sort((a, b) => a - b);
  const at = (h: number) =>
    `${String(Math.floor(h)).padStart(2, '0')}:${String(Math.round((h % 1) * 60)).padStart(2, '0')}`;
  return {
    scenario: `source ${vSlackPu.toFixed(2)} pu, PV ${mode}`,
    maxVoltagePu: Number(vMax.pu.toFixed(4)),
    maxAt: `${vMax.key} ${at(vMax.hour)}`,
    minVoltagePu: Number(vMin.pu.toFixed(4)),
    minAt: `${vMin.key} ${at(vMin.hour)}`,
    hoursAnyHouseAbove105: hoursAny105,
    hoursAnyHouseAbove110: hoursAny110,
    houseHoursAbove105: houseHours105,
    houseHoursAbove110: houseHours110,
    maxUnbalancePct: Number(worstUnbalance.pct.toFixed(3)),
    maxUnbalanceAt: `${worstUnbalance.bus} ${at(worstUnbalance.hour)}`,
    loadKWh: Number(loadEnergyKWh.toFixed(1)),
    pvKWh: Number(pvEnergyKWh.toFixed(1)),
    lossesKWh: Number(lossesKWh.toFixed(2)),
    solveMsMean: Number((times.reduce((a, b) => a + b, 0) / times.length).toFixed(2)),
    solveMsP95: Number(times[Math.floor(0.95 * (times.length - 1))]!.toFixed(2)),
    maxIterations: iterations,
  };
}

const rows: Row[] = [];
for (const vSlackPu of [1.05, 1.0])
  for (const mode of ['none', 'single-phase', 'split over 3 phases'] as const) rows.push(runDay(vSlackPu, mode));

// Sensitivities of the 30 PV inverters at solar noon (what a voltage controller would be given).
const model = buildThreePhaseModel(eulv);
const noonStep = 52; // 13:00–13:15
const noonInjections: PhaseInjection[] = pv.map(({ house, kWp }) => ({
  bus: model.busIndex.get(house.bus)!,
  phase: ['a', 'b', 'c'].indexOf(house.phase),
  pW: kWp * 1000 * pvShape((noonStep + 0.5) * STEP_HOURS),
  qVar: 0,
}));
const started = performance.now();
const sens = threePhaseSensitivities(
  model,
  pv.map(({ house }) => ({ bus: house.bus, phase: house.phase })),
  {
    operatingPoint: {
      loadMultipliers: new Map(eulv.loads.map((l) => [l.id!, eulv.profiles!.multipliers[l.id!]![noonStep]!])),
      extraInjections: noonInjections,
    },
  },
);
const sensitivityMs = performance.now() - started;
const own = sens.dvdp.map((row, i) => row[i]!);
const sensitivities = {
  inverters: PV_HOUSES,
  solves: 4 * PV_HOUSES + 1,
  totalMs: Number(sensitivityMs.toFixed(1)),
  ownDvdpPuPerKW: { min: Number(Math.min(...own).toExponential(3)), max: Number(Math.max(...own).toExponential(3)) },
};

console.log(
  `IEEE European LV feeder, ${PV_HOUSES} single-phase PV systems (seed ${SEED}, ${pvKWp.toFixed(1)} kWp in all)`,
);
console.table(rows);
console.log('sensitivities at 13:00:', sensitivities);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'lv.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      feeder: 'ieee-european-lv',
      seed: SEED,
      pv: pv.map(({ house, kWp }) => ({ house: house.id, bus: house.bus, phase: house.phase, kWp })),
      rows,
      sensitivities,
    },
    null,
    2,
  )}\n`,
);
