/**
 * npm run bench:lv — a day (96 × 15 min) on the IEEE European LV Test Feeder (906 buses, 55 houses on
 * single phases) with the published load shapes, and single-phase rooftop PV on 30 of the 55 houses
 * (seeded choice and sizes, 3–5.5 kWp, clear-sky half-sine 06:00–20:00). Three-phase unbalanced
 * power flow every 15 minutes. Scenarios: loads only, the PV on single phases, and the same PV split
 * evenly over three phases (what a balanced model would assume); each with the source at the feeder's
 * published 1.05 pu and at 1.00 pu; then the single-phase PV at 1.00 pu under voltage control: the
 * local IEEE 1547 Category B volt-var/volt-watt curves, and dual ascent on the voltage limits through
 * the three-phase sensitivities. Reports max/min phase voltage, hours with some house above
 * 1.05 / 1.10 pu, the worst voltage unbalance, curtailment, solve time per snapshot, and the time for
 * the sensitivities of the 30 PV inverters. Writes bench/results/lv.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dualAscent, type LvInverter, settleCurves } from '../src/control/voltage/lv-three-phase.js';
import { seededRandom } from '../src/core/prng.js';
import { buildThreePhaseModel } from '../src/grid/three-phase/feeder.js';
import { loadIeeeEuropeanLv } from '../src/grid/three-phase/ieee-european-lv.js';
import { type ThreePhaseSensitivities, threePhaseSensitivities } from '../src/grid/three-phase/sensitivities.js';
import { type PhaseInjection, solveThreePhase } from '../src/grid/three-phase/sweep.js';
import { pvShape } from '../src/sim/profiles.js';

const SEED = 7;
const PV_HOUSES = 30;
const STEPS = 96;
const STEP_HOURS = 0.25;
const V_MAX_PU = 1.05;
/** The dual-ascent agents aim this far under the limit, so that their convergence tolerance (1e-4 pu) stays inside it. */
const CONTROL_MARGIN_PU = 2e-4;

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
const phaseIndex = (phase: string) => ['a', 'b', 'c'].indexOf(phase);
const loadsAt = (step: number) =>
  new Map(eulv.loads.map((l) => [l.id!, eulv.profiles!.multipliers[l.id!]![step]!] as [string, number]));

/** The PV inverters at an hour: rated at their kWp, Category B reactive capability 0.44 of the rating. */
const invertersAt = (hour: number): LvInverter[] =>
  pv.map(({ house, kWp }) => ({
    id: `pv-${house.id}`,
    bus: house.bus,
    phase: house.phase,
    pAvailableKW: kWp * pvShape(hour),
    sRatedKVA: kWp,
    qMaxKVAr: 0.44 * kWp,
    qWeight: 0.1,
  }));

type PvMode = 'none' | 'single-phase' | 'split over 3 phases';
const CONTROLS = ['volt-var/volt-watt (IEEE 1547 Cat B, local)', 'dual ascent, 3-phase sensitivities'] as const;
type Control = 'none' | (typeof CONTROLS)[number];
type Row = Record<string, unknown>;

function runDay(vSlackPu: number, mode: PvMode, control: Control = 'none', sens?: ThreePhaseSensitivities): Row {
  const model = buildThreePhaseModel({ ...eulv, vSlackPu });
  const houseKeys = eulv.loads.map((l) => `${l.bus}.${l.phase}`);
  let vMax = { pu: 0, key: '', hour: 0 };
  let vMin = { pu: Number.POSITIVE_INFINITY, key: '', hour: 0 };
  let worstUnbalance = { pct: 0, bus: '', hour: 0 };
  let hoursAny105 = 0;
  let hoursAny110 = 0;
  let houseHours105 = 0;
  let houseHours110 = 0;
  let pvEnergyKWh = 0;
  let curtailedKWh = 0;
  let reactiveKVArh = 0;
  let loadEnergyKWh = 0;
  let lossesKWh = 0;
  let iterations = 0;
  let controlSteps = 0;
  const times: number[] = [];
  let previous: Float64Array | undefined;
  for (let step = 0; step < STEPS; step++) {
    const start = step * STEP_HOURS;
    const hour = start + STEP_HOURS / 2;
    const loadMultipliers = loadsAt(step);
    const warm = previous ? { initialVoltage: previous } : {};
    const injections: PhaseInjection[] = [];
    const started = performance.now();
    const inverters = invertersAt(hour);
    if (mode !== 'none' && control !== 'none' && inverters.some((i) => i.pAvailableKW > 0)) {
      const operatingPoint = { loadMultipliers, ...warm };
      const set =
        control === 'dual ascent, 3-phase sensitivities'
          ? dualAscent(model, inverters, sens!, { operatingPoint, vMaxPu: V_MAX_PU - CONTROL_MARGIN_PU })
          : settleCurves(model, inverters, operatingPoint);
      if (!set.converged) throw new Error(`${control}: step ${step} did not converge`);
      controlSteps = Math.max(controlSteps, set.steps);
      inverters.forEach((inv, i) => {
        const bus = model.busIndex.get(inv.bus)!;
        injections.push({ bus, phase: phaseIndex(inv.phase), pW: set.pKW[i]! * 1000, qVar: set.qKVAr[i]! * 1000 });
        pvEnergyKWh += set.pKW[i]! * STEP_HOURS;
        curtailedKWh += (inv.pAvailableKW - set.pKW[i]!) * STEP_HOURS;
        reactiveKVArh += Math.abs(set.qKVAr[i]!) * STEP_HOURS;
      });
    } else if (mode !== 'none')
      for (const inv of inverters) {
        if (inv.pAvailableKW <= 0) continue;
        const bus = model.busIndex.get(inv.bus)!;
        const pW = inv.pAvailableKW * 1000;
        if (mode === 'single-phase') injections.push({ bus, phase: phaseIndex(inv.phase), pW, qVar: 0 });
        else for (let phase = 0; phase < 3; phase++) injections.push({ bus, phase, pW: pW / 3, qVar: 0 });
        pvEnergyKWh += inv.pAvailableKW * STEP_HOURS;
      }
    const r = solveThreePhase(model, { loadMultipliers, extraInjections: injections, ...warm });
    times.push(performance.now() - started);
    previous = r.sweep.voltage;
    if (!r.converged) throw new Error(`step ${step} did not converge`);
    iterations = Math.max(iterations, r.iterations);
    lossesKWh += r.lossesKW * STEP_HOURS;
    loadEnergyKWh += [...loadMultipliers.values()].reduce((a, m) => a + m, 0) * STEP_HOURS;
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
    scenario: `${vSlackPu.toFixed(2)} pu, PV ${mode}${control === 'none' ? '' : `, ${control}`}`,
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
    curtailedKWh: Number(curtailedKWh.toFixed(2)),
    reactiveKVArh: Number(reactiveKVArh.toFixed(2)),
    lossesKWh: Number(lossesKWh.toFixed(2)),
    msPerSnapshotMean: Number((times.reduce((a, b) => a + b, 0) / times.length).toFixed(2)),
    msPerSnapshotP95: Number(times[Math.floor(0.95 * (times.length - 1))]!.toFixed(2)),
    maxSweepIterations: iterations,
    maxControlSteps: controlSteps,
  };
}

// Sensitivities of the 30 PV inverters at 13:00 with full PV (what the voltage controller is given at
// commissioning; the closed loop corrects for the operating point moving away from it).
const noonModel = buildThreePhaseModel({ ...eulv, vSlackPu: 1.0 });
const noonStep = 52;
const started = performance.now();
const sens = threePhaseSensitivities(
  noonModel,
  pv.map(({ house }) => ({ bus: house.bus, phase: house.phase })),
  {
    operatingPoint: {
      loadMultipliers: loadsAt(noonStep),
      extraInjections: invertersAt(noonStep * STEP_HOURS + STEP_HOURS / 2).map((inv) => ({
        bus: noonModel.busIndex.get(inv.bus)!,
        phase: phaseIndex(inv.phase),
        pW: inv.pAvailableKW * 1000,
        qVar: 0,
      })),
    },
  },
);
const sensitivityMs = performance.now() - started;
const own = sens.dvdp.map((row, i) => row[i]!);
// What a balanced model says for the same kW at the same bus (LinDistFlow, Baran & Wu): R1 of the
// path from the supply / V², the kW spread over three phases. Its ratio to the three-phase value is
// how far a controller given balanced sensitivities would misjudge a single-phase inverter.
const r1Path = new Float64Array(noonModel.buses.length);
r1Path[0] = noonModel.supplyZ ? noonModel.supplyZ[0]! - noonModel.supplyZ[2]! : 0; // Re(Zs − Zm) = R1
for (let i = 1; i < noonModel.buses.length; i++)
  r1Path[i] = r1Path[noonModel.parent[i]!]! + noonModel.branchZ[i]![0]! - noonModel.branchZ[i]![2]!;
const balanced = pv.map(
  ({ house }) => (r1Path[noonModel.busIndex.get(house.bus)!]! * 1000) / (noonModel.baseKV * 1000) ** 2,
);
const ratio = own.map((v, i) => v / balanced[i]!);
const sensitivities = {
  inverters: PV_HOUSES,
  powerFlows: 4 * PV_HOUSES + 1,
  totalMs: Number(sensitivityMs.toFixed(1)),
  ownDvdpPuPerKW: { min: Number(Math.min(...own).toExponential(3)), max: Number(Math.max(...own).toExponential(3)) },
  threePhaseOverBalanced: {
    min: Number(Math.min(...ratio).toFixed(2)),
    mean: Number((ratio.reduce((a, b) => a + b, 0) / ratio.length).toFixed(2)),
    max: Number(Math.max(...ratio).toFixed(2)),
  },
};

const rows: Row[] = [];
for (const vSlackPu of [1.05, 1.0])
  for (const mode of ['none', 'single-phase', 'split over 3 phases'] as const) rows.push(runDay(vSlackPu, mode));
// Control at the 1.00 pu source: at 1.05 pu the feeder is above 1.05 pu with no PV at all.
for (const control of CONTROLS) rows.push(runDay(1.0, 'single-phase', control, sens));

console.log(`IEEE European LV feeder, ${PV_HOUSES} single-phase PV systems (seed ${SEED}, ${pvKWp.toFixed(1)} kWp)`);
console.table(
  rows.map((r) => ({
    scenario: r.scenario,
    maxPu: r.maxVoltagePu,
    maxAt: r.maxAt,
    minPu: r.minVoltagePu,
    'h >1.05': r.hoursAnyHouseAbove105,
    'h >1.10': r.hoursAnyHouseAbove110,
    'house-h >1.05': r.houseHoursAbove105,
    'VUF %': r.maxUnbalancePct,
    curtailedKWh: r.curtailedKWh,
    kvarh: r.reactiveKVArh,
    'ms/snap': r.msPerSnapshotMean,
    ctrlSteps: r.maxControlSteps,
  })),
);
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
