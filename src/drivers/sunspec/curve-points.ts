import { ErrorCode, P2PError } from '../../core/errors.js';

/**
 * A curve as the `control` command takes it: `V:Y,V:Y,...`, V the voltage in % of VRef (50..150,
 * rising), Y in % of WMax (−100..100): reactive power for volt-var (positive = injecting), active
 * power for volt-watt. A malformed list is an input error naming the option; how many points the
 * device's curve holds is checked by the writer against its model.
 */
export function parseCurvePoints(text: string, option: string): { vPct: number; yPct: number }[] {
  const fail = (why: string) =>
    new P2PError(ErrorCode.input, `${option} "${text}": ${why}`, {
      field: option,
      hint: 'points as V:Y separated by commas, e.g. 92:44,98:0,102:0,108:-44 (V in % of VRef, Y in % of WMax)',
    });
  const points = text.split(',').map((pair) => {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*:\s*(-?\d+(?:\.\d+)?)\s*$/.exec(pair);
    if (!m) throw fail(`"${pair}" is not V:Y`);
    return { vPct: Number(m[1]), yPct: Number(m[2]) };
  });
  if (points.length < 2) throw fail('a curve has at least 2 points');
  points.forEach((p, i) => {
    if (p.vPct < 50 || p.vPct > 150) throw fail(`voltage ${p.vPct} % is outside 50..150 % of VRef`);
    if (p.yPct < -100 || p.yPct > 100) throw fail(`${p.yPct} % is outside −100..100 % of WMax`);
    if (i > 0 && p.vPct <= points[i - 1]!.vPct) throw fail('the voltages must rise from point to point');
  });
  return points;
}
