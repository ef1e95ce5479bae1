/**
 * npm run bench:voltage-dynamics — the distributed voltage control's dynamics over the bench's
 * compressed day, in one process and in seconds: the bench's grid (`BenchGrid`, the same houses and
 * profiles as `p2p-edge bench`) with one `VoltageController` per house (what the voltage-agent role
 * runs: local curves until peers are heard, bumpless takeover, the dual agent), stepped on a virtual
 * clock with the bench gateways' timing (a primary and a secondary step every 250 ms, each followed
 * by a hello with the agent's multiplier; gossip every 100 ms; 600×) over a network that loses
 * nothing and delivers at once. What the real bench adds (processes, Modbus, MQTT, a loaded machine)
 * only delays the loop more, so the real runs sit a little further out.
 * 1. Every cell of the default scenario with the target band at 0.3, 0.6 and 1 % inside the limits,
 *    with both multipliers on the plain dual ascent (before), both accelerated, and the gateways'
 *    default (plain for overvoltage, accelerated for undervoltage), with readings as old as the step
 *    and 100 ms older (about what the real bench's Modbus polls add): the highest and lowest voltage
 *    and the curtailment, i.e. how far the control lags the day's ramps.
 * 2. The `sigkill` scenario's killed inverter gateway: its agent gone for the fault's duration, then
 *    back from its checkpoint, against the same run without the fault.
 * 3. The same with the announced multipliers switched off (`announced: no`): every agent acts on the
 *    push-sum estimates only, as before the hellos carried multipliers (docs/control.md says why
 *    that is not enough when a gateway dies).
 * Writes bench/results/voltage-dynamics.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOSSIP_SLOT_ROUNDS, REPORT_FRESH_CYCLES } from '../src/agent/roles/voltage-agent.js';
import { BENCH_CONTROL_STEP_MS, BENCH_VOLTAGE_CONTROL } from '../src/bench/configs.js';
import { CONTROL_SETTLE_MS } from '../src/bench/gateway-processes.js';
import { BenchGrid } from '../src/bench/grid.js';
import { VoltageTally } from '../src/bench/kpi.js';
import { loadScenario, type Scenario } from '../src/bench/scenario.js';
import { GATEWAY_ASCENT, type LimitAscent } from '../src/control/voltage/dual-agent.js';
import { VoltageController } from '../src/control/voltage/voltage-controller.js';
import { seededRandom } from '../src/core/prng.js';
import { demoFeeder } from '../src/grid/demo-feeder.js';
import { buildRadialFeeder } from '../src/grid/feeder.js';
import { CompressedDay } from '../src/sim/profiles.js';

/** A clock reading far from zero, so that push-sum slots fall as they do on a real clock. */
const EPOCH_MS = 1_796_000_003_000;
const TICK_MS = 10;
const SEEDS = [1, 2, 3];
type ControllerCheckpoint = ReturnType<VoltageController['persist']>;

interface Run {
  scenario: Scenario;
  cell: string;
  marginPu: number;
  durationS: number;
  seed: number;
  kill?: { gateway: string; atS: number; downS: number };
  /** Agents act on the multipliers peers announce (default), or on push-sum estimates only. */
  announced?: boolean;
  /**
   * How old a reading is when the control step acts on it, ms: a gateway reads its meter on the
   * Modbus poll before its control cycle, and its inverter takes the setpoint on a later write.
   */
  readingAgeMs?: number;
  /** How the multipliers move (default: the gateways'). */
  ascent?: LimitAscent;
}

interface House {
  gateway: string;
  bus: string;
  inverter: string;
  ratedKVA: number;
  phaseMs: number;
  gossipPhaseMs: number;
  controller: VoltageController | undefined;
}

function simulate(run: Run) {
  const { scenario, seed } = run;
  const cellSpec = scenario.cells.find((c) => c.id === run.cell)!;
  const day = new CompressedDay(0, scenario.speedup, scenario.startHour);
  day.hold();
  const grid = new BenchGrid(scenario, day, 0);
  const feeder = buildRadialFeeder(demoFeeder(cellSpec.houses, cellSpec.segmentOhm, cellSpec.vSlackPu));
  const random = seededRandom(seed);
  const vc = BENCH_VOLTAGE_CONTROL;
  const newController = (house: { gateway: string; bus: string }, now: number, restored?: ControllerCheckpoint) =>
    new VoltageController({
      method: 'dual',
      dual: {
        id: house.gateway,
        bus: house.bus,
        feeder,
        vMinPu: scenario.voltageLimitsPu.min,
        vMaxPu: scenario.voltageLimitsPu.max,
        marginPu: run.marginPu,
        qWeight: 0.5,
        epoch: now,
        gossipSlotMs: GOSSIP_SLOT_ROUNDS * vc.gossipMs,
        reportFreshMs: REPORT_FRESH_CYCLES * BENCH_CONTROL_STEP_MS,
        ascent: run.ascent ?? GATEWAY_ASCENT,
      },
      fallbackAfterMs: vc.fallbackAfterMs,
      random,
      announcedMultipliers: run.announced ?? true,
      ...(restored ? { restored } : {}),
    });
  const houses: House[] = grid.devices
    .filter((d) => d.cell === run.cell && d.kind === 'pv-inverter')
    .map((d) => ({
      gateway: d.gateway,
      bus: d.bus,
      inverter: d.id,
      ratedKVA: d.ratedW / 1000,
      phaseMs: Math.floor((random() * BENCH_CONTROL_STEP_MS) / TICK_MS) * TICK_MS,

      gossipPhaseMs: Math.floor((random() * vc.gossipMs) / TICK_MS) * TICK_MS,
      controller: undefined,
    }));
  for (const h of houses) h.controller = newController(h, EPOCH_MS);
  const sim = grid.cellOf(houses[0]!.inverter);
  /** Each inverter's setpoint, which it keeps while its gateway is down. */
  const held = new Map<string, { limitPct: number; qKVAr: number }>();
  const tally = new VoltageTally(scenario.voltageLimitsPu);
  const killAt = run.kill ? CONTROL_SETTLE_MS + run.kill.atS * 1000 : Number.POSITIVE_INFINITY;
  const backAt = run.kill ? killAt + run.kill.downS * 1000 : Number.POSITIVE_INFINITY;
  const killed = houses.find((h) => h.gateway === run.kill?.gateway);
  let checkpoint: ControllerCheckpoint | undefined;
  const end = CONTROL_SETTLE_MS + run.durationS * 1000;
  let curtailedKWh = 0;
  /** The feeder's voltages of the last ticks, oldest first, as old as a reading can be. */
  const past: Map<string, number>[] = [];
  const ageTicks = Math.round((run.readingAgeMs ?? 0) / TICK_MS);
  for (let t = 0; t < end; t += TICK_MS) {
    const now = EPOCH_MS + t;
    // A power flow every tick only where readings age; else once in a tick where some house steps,
    // before the first of them changes a setpoint.
    if (ageTicks > 0) {
      past.push(sim.voltages(t));
      if (past.length > ageTicks + 1) past.shift();
    }
    let atTickStart: Map<string, number> | undefined;
    if (t === CONTROL_SETTLE_MS) day.restartAt(t);
    if (killed && t === killAt) {
      checkpoint = killed.controller!.persist(); // its inverter keeps its last setpoints
      killed.controller = undefined;
    }
    // Back from its checkpoint; the role's switch to the distributed control then takes over from
    // what its inverter delivers.
    if (killed && t === backAt) killed.controller = newController(killed, now, checkpoint);
    const live = houses.filter((h) => h.controller);
    for (const h of live) {
      const controller = h.controller!;
      if ((t - h.gossipPhaseMs) % vc.gossipMs === 0) {
        const m = controller.gossipRound(now);
        const to = m && houses.find((x) => x.gateway === m.to)?.controller;
        if (m && to) {
          const { from, to: _to, ...body } = m;
          to.receiveGossip(now, from, h.bus, body);
        }
      }
      if ((t - h.phaseMs) % BENCH_CONTROL_STEP_MS !== 0) continue;
      if (ageTicks === 0) atTickStart ??= sim.voltages(t);
      const voltagePu = (ageTicks > 0 ? past[0]! : atTickStart!).get(h.bus)!;
      const availableKW = sim.availableW(h.inverter, t) / 1000;
      const setpoint = held.get(h.inverter);
      const measurements = {
        voltagePu,
        connected: true,
        inverters: [
          {
            id: h.inverter,
            ratedKVA: h.ratedKVA,
            availableKW,
            voltagePu,
            acPowerKW: Math.min(availableKW, ((setpoint?.limitPct ?? 100) / 100) * h.ratedKVA),
            reactiveKVAr: setpoint?.qKVAr ?? 0,
          },
        ],
      };
      // A primary then a secondary cycle, as the bench gateways run them (both every 250 ms).
      for (const scale of ['primary', 'secondary'] as const) {
        const result = controller.step(now, scale, measurements);
        const next = result.setpoints.get(h.inverter);
        if (next) {
          sim.setLimitPct(h.inverter, next.limitPct);
          sim.setReactiveVAr(h.inverter, next.qKVAr * 1000);
          held.set(h.inverter, next);
          controller.applied(h.inverter, next);
        }
        const hello = result.hello;
        if (hello)
          for (const other of live)
            if (other !== h) other.controller!.heard(now, h.gateway, hello.bus, hello.multiplier);
      }
    }
    if (t < CONTROL_SETTLE_MS) continue;
    const voltagesPu = Object.fromEntries(sim.voltages(t));
    tally.add({ tMs: t, hour: day.hourAt(t), voltagesPu });
    for (const h of houses) {
      const availableKW = sim.availableW(h.inverter, t) / 1000;
      const deliveredKW = Math.min(availableKW, ((held.get(h.inverter)?.limitPct ?? 100) / 100) * h.ratedKVA);
      curtailedKWh += ((availableKW - deliveredKW) * TICK_MS * scenario.speedup) / 3_600_000;
    }
  }
  const v = tally.result();
  return {
    maxPu: Number(v.maxPu.toFixed(4)),
    minPu: Number(v.minPu.toFixed(4)),
    violations: v.violations,
    violationS: Number(v.violationSeconds.toFixed(2)),
    curtailedKWh: Number(curtailedKWh.toFixed(1)),
  };
}

type Result = ReturnType<typeof simulate>;

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

/** The worst of the seeds' runs: highest maximum, lowest minimum, all violations. */
function worstOf(results: Result[]) {
  return {
    maxPu: Math.max(...results.map((r) => r.maxPu)),
    minPu: Math.min(...results.map((r) => r.minPu)),
    violations: results.reduce((s, r) => s + r.violations, 0),
    violationS: Number(results.reduce((s, r) => s + r.violationS, 0).toFixed(2)),
    curtailedKWh: Number((results.reduce((s, r) => s + r.curtailedKWh, 0) / results.length).toFixed(1)),
  };
}

const rows: Record<string, unknown>[] = [];
const t0 = performance.now();
// As docs/bench.md's runs: `--duration 80`, 10:00 to 23:20 simulated, past the evening peak.
const byDefault = loadScenario('default');
const sigkill = loadScenario('sigkill');
const killFaults = sigkill.faults.filter((f) => f.kind === 'sigkill' && f.target?.startsWith('inv-'));
const MARGINS = [0.003, 0.006, 0.01];
const both = (a: 'plain' | 'accelerated'): LimitAscent => ({ overvoltage: a, undervoltage: a });
/** Both multipliers plain (before), both accelerated, and the gateways' default (plain over, accelerated under). */
const ASCENTS: [string, LimitAscent][] = [
  ['plain', both('plain')],
  ['accelerated', both('accelerated')],
  ['plain over, accelerated under', GATEWAY_ASCENT],
];
/** Readings as old as the step acts on them (0), and about as old as in the real bench (100 ms at 600×). */
const READING_AGES_MS = [0, 100];
for (const readingAgeMs of READING_AGES_MS)
  for (const [ascentLabel, ascent] of ASCENTS)
    for (const cell of byDefault.cells)
      for (const marginPu of MARGINS) {
        const results = SEEDS.map((seed) =>
          simulate({ scenario: byDefault, cell: cell.id, marginPu, durationS: 80, seed, ascent, readingAgeMs }),
        );
        rows.push({
          scenario: 'default',
          cell: cell.id,
          marginPu,
          ascent: ascentLabel,
          readingAgeMs,
          announced: 'yes',
          fault: '-',
          ...worstOf(results),
        });
      }
for (const announced of [true, false]) {
  if (!announced)
    for (const cell of byDefault.cells) {
      const marginPu = BENCH_VOLTAGE_CONTROL.marginPu;
      const results = SEEDS.map((seed) =>
        simulate({ scenario: byDefault, cell: cell.id, marginPu, durationS: 80, seed, announced }),
      );
      rows.push({
        scenario: 'default',
        cell: cell.id,
        marginPu,
        ascent: 'plain over, accelerated under',
        readingAgeMs: 0,
        announced: 'no',
        fault: '-',
        ...worstOf(results),
      });
    }
  for (const fault of killFaults) {
    const cell = sigkill.cells.find((c) =>
      new BenchGrid(sigkill, new CompressedDay(0, 1), 0).devices.some(
        (d) => d.cell === c.id && d.gateway === fault.target,
      ),
    )!;
    for (const withFault of [false, true]) {
      const results = SEEDS.map((seed) =>
        simulate({
          scenario: sigkill,
          cell: cell.id,
          marginPu: BENCH_VOLTAGE_CONTROL.marginPu,
          durationS: sigkill.durationS,
          seed,
          announced,
          ...(withFault ? { kill: { gateway: fault.target!, atS: fault.atS, downS: fault.durationS ?? 0 } } : {}),
        }),
      );
      const label = withFault ? `${fault.target} killed at ${fault.atS} s for ${fault.durationS ?? 0} s` : 'none';
      rows.push({
        scenario: 'sigkill',
        cell: cell.id,
        marginPu: BENCH_VOLTAGE_CONTROL.marginPu,
        ascent: 'plain over, accelerated under',
        readingAgeMs: 0,
        announced: yesNo(announced),
        fault: label,
        ...worstOf(results),
      });
    }
  }
}
console.table(rows);
console.log(
  `worst of ${SEEDS.length} seeds each (violations and seconds summed, curtailment averaged); announced: the agents act on the multipliers their peers announce (no: on push-sum estimates only); ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'voltage-dynamics.json'),
  `${JSON.stringify({ date: new Date().toISOString(), seeds: SEEDS, rows }, null, 2)}\n`,
);
