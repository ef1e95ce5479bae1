import { ErrorCode, P2PError } from '../../core/errors.js';
import { PHASES, type Phase, type ThreePhaseModel } from './feeder.js';
import { type PhaseInjection, sweepThreePhase, type ThreePhaseOptions } from './sweep.js';

export interface BusPhase {
  bus: string;
  phase: Phase;
}

export interface ThreePhaseSensitivities {
  /** `bus.phase` of each injection (columns) — and of each observed voltage (rows) unless `observe` was given. */
  keys: string[];
  /** Rows: `bus.phase` of the observed voltages. */
  observed: string[];
  /** dvdp[k][i] = ∂|V_k| / ∂P_i, pu per kW injected at injection i; dvdq likewise per kVAr injected. */
  dvdp: number[][];
  dvdq: number[][];
  /** |V| at the operating point, pu, per observed key. */
  voltagePu: number[];
}

export interface SensitivityOptions {
  /** The operating point (load multipliers, the PV already there…). */
  operatingPoint?: ThreePhaseOptions;
  /** Voltages to observe; default the injection points themselves (a square matrix, as the voltage controller uses). */
  observe?: readonly BusPhase[];
  /** Finite-difference step, kW / kVAr (central differences). */
  stepKW?: number;
}

/**
 * Per-phase voltage sensitivities of single-phase injections, by central finite differences of the
 * full three-phase power flow around an operating point: the exact local linearisation of the
 * unbalanced feeder, including the neutral-shift coupling between phases that a balanced
 * (LinDistFlow) model leaves out. Same shape as the balanced `feederSensitivities` of the voltage
 * controller (pu per kW / kVAr injected), keyed by `bus.phase`.
 */
export function threePhaseSensitivities(
  model: ThreePhaseModel,
  injections: readonly BusPhase[],
  options: SensitivityOptions = {},
): ThreePhaseSensitivities {
  const locate = (e: BusPhase, what: string): { bus: number; phase: number; key: string } => {
    const bus = model.busIndex.get(e.bus);
    const phase = PHASES.indexOf(e.phase);
    if (bus === undefined || phase < 0)
      throw new P2PError(ErrorCode.input, `${what} ${e.bus}.${e.phase}: no such bus-phase in feeder ${model.name}`, {
        component: 'powerflow',
      });
    return { bus, phase, key: `${e.bus}.${e.phase}` };
  };
  const inj = injections.map((e) => locate(e, 'injection'));
  const obs = (options.observe ?? injections).map((e) => locate(e, 'observed voltage'));
  const stepW = (options.stepKW ?? 0.1) * 1000;
  const base = options.operatingPoint ?? {};
  const solveOptions: ThreePhaseOptions = { ...base, tolerancePu: Math.min(base.tolerancePu ?? 1e-9, 1e-12) };
  const at = sweepThreePhase(model, solveOptions);
  const magnitudes = (v: Float64Array): number[] =>
    obs.map((o) => Math.hypot(v[6 * o.bus + 2 * o.phase]!, v[6 * o.bus + 2 * o.phase + 1]!) / model.vBaseV);
  const derivative = (i: { bus: number; phase: number }, kind: 'p' | 'q'): number[] => {
    const probe = (sign: number): number[] => {
      const extra: PhaseInjection = {
        bus: i.bus,
        phase: i.phase,
        pW: kind === 'p' ? sign * stepW : 0,
        qVar: kind === 'q' ? sign * stepW : 0,
      };
      const r = sweepThreePhase(model, {
        ...solveOptions,
        extraInjections: [...(base.extraInjections ?? []), extra],
        initialVoltage: at.voltage,
      });
      return magnitudes(r.voltage);
    };
    const up = probe(1);
    const down = probe(-1);
    return up.map((u, k) => (u - down[k]!) / (2 * (stepW / 1000)));
  };
  const columnsP = inj.map((i) => derivative(i, 'p'));
  const columnsQ = inj.map((i) => derivative(i, 'q'));
  return {
    keys: inj.map((i) => i.key),
    observed: obs.map((o) => o.key),
    dvdp: obs.map((_, k) => columnsP.map((c) => c[k]!)),
    dvdq: obs.map((_, k) => columnsQ.map((c) => c[k]!)),
    voltagePu: magnitudes(at.voltage),
  };
}
