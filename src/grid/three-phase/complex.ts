/**
 * The complex arithmetic of the three-phase power flow. Scalars are `{ re, im }`; a 3×3 complex
 * matrix (a phase impedance matrix) is a Float64Array of 18 numbers, row-major, re/im interleaved:
 * element (r, c) is at [6r + 2c] (re) and [6r + 2c + 1] (im). Three-phase vectors are Float64Arrays
 * of 6 numbers (a.re, a.im, b.re, b.im, c.re, c.im). The hot loops work on these arrays in place.
 */
export interface Complex {
  re: number;
  im: number;
}

export const complex = (re: number, im = 0): Complex => ({ re, im });
export const add = (a: Complex, b: Complex): Complex => ({ re: a.re + b.re, im: a.im + b.im });
export const sub = (a: Complex, b: Complex): Complex => ({ re: a.re - b.re, im: a.im - b.im });
export const mul = (a: Complex, b: Complex): Complex => ({
  re: a.re * b.re - a.im * b.im,
  im: a.re * b.im + a.im * b.re,
});
export const scale = (a: Complex, k: number): Complex => ({ re: a.re * k, im: a.im * k });
export const conj = (a: Complex): Complex => ({ re: a.re, im: -a.im });
export const abs = (a: Complex): number => Math.hypot(a.re, a.im);
export function div(a: Complex, b: Complex): Complex {
  const d = b.re * b.re + b.im * b.im;
  return { re: (a.re * b.re + a.im * b.im) / d, im: (a.im * b.re - a.re * b.im) / d };
}
export const polar = (magnitude: number, angleRad: number): Complex => ({
  re: magnitude * Math.cos(angleRad),
  im: magnitude * Math.sin(angleRad),
});

/** The Fortescue operator a = 1∠120°. */
export const A120 = polar(1, (2 * Math.PI) / 3);

export type Mat3 = Float64Array;
export type Vec3 = Float64Array;

export const mat3 = (): Mat3 => new Float64Array(18);
export const vec3 = (): Vec3 => new Float64Array(6);

/**
 * The phase impedance matrix of a transposed three-phase element from its sequence impedances
 * (Kron-reduced, the neutral/earth return folded into the zero sequence): self Zs = (2·Z1 + Z0)/3 on
 * the diagonal, mutual Zm = (Z0 − Z1)/3 off it.
 */
export function phaseMatrixFromSequence(z1: Complex, z0: Complex): Mat3 {
  const zs = scale(add(scale(z1, 2), z0), 1 / 3);
  const zm = scale(sub(z0, z1), 1 / 3);
  const m = mat3();
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++) {
      const z = r === c ? zs : zm;
      m[6 * r + 2 * c] = z.re;
      m[6 * r + 2 * c + 1] = z.im;
    }
  return m;
}

export function mat3Add(a: Mat3, b: Mat3): Mat3 {
  const m = mat3();
  for (let k = 0; k < 18; k++) m[k] = a[k]! + b[k]!;
  return m;
}

export function mat3Scale(a: Mat3, k: number): Mat3 {
  const m = mat3();
  for (let i = 0; i < 18; i++) m[i] = a[i]! * k;
  return m;
}

export const mat3Get = (m: Mat3, r: number, c: number): Complex => ({
  re: m[6 * r + 2 * c]!,
  im: m[6 * r + 2 * c + 1]!,
});

/** out = m · v (out must not alias v). */
export function mat3MulVec(m: Mat3, v: Vec3, out: Vec3): Vec3 {
  for (let r = 0; r < 3; r++) {
    let re = 0;
    let im = 0;
    for (let c = 0; c < 3; c++) {
      const zr = m[6 * r + 2 * c]!;
      const zi = m[6 * r + 2 * c + 1]!;
      const vr = v[2 * c]!;
      const vi = v[2 * c + 1]!;
      re += zr * vr - zi * vi;
      im += zr * vi + zi * vr;
    }
    out[2 * r] = re;
    out[2 * r + 1] = im;
  }
  return out;
}

/** Symmetrical components (zero, positive, negative) of a phase vector. */
export function sequenceComponents(v: Vec3): [Complex, Complex, Complex] {
  const va = { re: v[0]!, im: v[1]! };
  const vb = { re: v[2]!, im: v[3]! };
  const vc = { re: v[4]!, im: v[5]! };
  const a2 = mul(A120, A120);
  const v0 = scale(add(add(va, vb), vc), 1 / 3);
  const v1 = scale(add(add(va, mul(A120, vb)), mul(a2, vc)), 1 / 3);
  const v2 = scale(add(add(va, mul(a2, vb)), mul(A120, vc)), 1 / 3);
  return [v0, v1, v2];
}
