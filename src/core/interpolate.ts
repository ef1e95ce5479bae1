/** Piecewise-linear interpolation through `curve` (x ascending), constant beyond its ends. */
export function piecewiseLinear(curve: readonly (readonly [number, number])[], x: number): number {
  if (x <= curve[0]![0]) return curve[0]![1];
  for (let i = 1; i < curve.length; i++) {
    const [x1, y1] = curve[i]!;
    const [x0, y0] = curve[i - 1]!;
    if (x <= x1) return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
  }
  return curve[curve.length - 1]![1];
}
