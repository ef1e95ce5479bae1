import { ErrorCode, P2PError } from '../../core/errors.js';
import type { TradeModel } from '../model.js';

/**
 * Centralised reference for tests and benchmarks only: the whole trading QP solved at once by a
 * primal-dual interior-point method (Mehrotra predictor-corrector), independent of the distributed code.
 *
 *   min ½ zᵀHz + fᵀz   s.t.  A z = b (one balance row per agent and slot),
 *                            lo ≤ z ≤ hi, G z ≤ h (storage soc bounds)
 *
 * H is diagonal. The Newton system is reduced to the balance rows: M = A Q⁻¹ Aᵀ with Q = H + barrier
 * terms, where Q is diagonal except for one dense block per storage unit (its soc rows couple its own
 * charge/discharge variables). M is dense, m × m with m = agents × slots, so this is meant for
 * instances up to a few hundred agent-slots... to a few thousand (seconds to a minute).
 */

interface Column {
  /** Balance rows this variable enters, with coefficients. */
  rows: number[];
  coef: number[];
  h: number;
  f: number;
  lo: number;
  hi: number;
  /** Storage block this variable belongs to (soc rows), or -1. */
  block: number;
}

interface Block {
  columns: number[];
  /** Rows of G (soc ≤ hi, −soc ≤ −lo), dense over `columns`. */
  g: number[][];
  h: number[];
}

export interface ReferenceSolution {
  cost: number;
  /** Dual of each agent's balance per slot (the price), by agent id. */
  prices: Record<string, number[]>;
  iterations: number;
  /** z in the layout of `variables`. */
  z: Float64Array;
  variables: { agent?: number; link?: number; kind: string; unit: number; t: number }[];
}

function buildProblem(model: TradeModel) {
  const T = model.horizon;
  const columns: Column[] = [];
  const variables: ReferenceSolution['variables'] = [];
  const blocks: Block[] = [];
  const row = (agent: number, t: number) => agent * T + t;
  const add = (c: Column, v: ReferenceSolution['variables'][number]) => {
    columns.push(c);
    variables.push(v);
    return columns.length - 1;
  };
  model.agents.forEach((agent, i) => {
    for (let t = 0; t < T; t++) {
      agent.generators.forEach((g, k) => {
        add(
          { rows: [row(i, t)], coef: [1], h: 2 * g.a[t]!, f: g.b[t]!, lo: 0, hi: g.max[t]!, block: -1 },
          { agent: i, kind: 'generation', unit: k, t },
        );
      });
      agent.flexibleLoads.forEach((g, k) => {
        add(
          { rows: [row(i, t)], coef: [1], h: 2 * g.a[t]!, f: g.b[t]!, lo: 0, hi: g.max[t]!, block: -1 },
          { agent: i, kind: 'curtailment', unit: k, t },
        );
      });
      if (agent.gridImport) {
        const g = agent.gridImport;
        add(
          { rows: [row(i, t)], coef: [1], h: 2 * g.a[t]!, f: g.b[t]!, lo: 0, hi: g.max[t]!, block: -1 },
          { agent: i, kind: 'import', unit: 0, t },
        );
      }
      if (agent.gridExport) {
        const g = agent.gridExport;
        add(
          { rows: [row(i, t)], coef: [-1], h: 2 * g.a[t]!, f: -g.b[t]!, lo: 0, hi: g.max[t]!, block: -1 },
          { agent: i, kind: 'export', unit: 0, t },
        );
      }
    }
    agent.storage.forEach((s, k) => {
      const block: Block = { columns: [], g: [], h: [] };
      const charge: number[] = [];
      const discharge: number[] = [];
      for (let t = 0; t < T; t++) {
        charge.push(
          add(
            { rows: [row(i, t)], coef: [-1], h: 2 * s.a, f: 0, lo: 0, hi: s.maxChargeKWh, block: blocks.length },
            { agent: i, kind: 'charge', unit: k, t },
          ),
        );
        discharge.push(
          add(
            { rows: [row(i, t)], coef: [1], h: 2 * s.a, f: 0, lo: 0, hi: s.maxDischargeKWh, block: blocks.length },
            { agent: i, kind: 'discharge', unit: k, t },
          ),
        );
      }
      block.columns = [...charge, ...discharge];
      for (let t = 1; t <= T; t++) {
        // soc_t = soc0 + Σ_{s<t} (η c_s − d_s/η)
        const coeffs = block.columns.map((_, j) =>
          j < T ? (j < t ? s.efficiency : 0) : j - T < t ? -1 / s.efficiency : 0,
        );
        block.g.push(coeffs);
        block.h.push(s.capacityKWh - s.socKWh);
        block.g.push(coeffs.map((c) => -c));
        block.h.push(s.socKWh - (t === T && s.socEndMinKWh !== undefined ? s.socEndMinKWh : 0));
      }
      blocks.push(block);
    });
  });
  model.links.forEach((l, k) => {
    for (let t = 0; t < T; t++) {
      add(
        {
          rows: [row(l.from, t), row(l.to, t)],
          coef: [-1, l.efficiency],
          h: 2 * l.a[t]!,
          f: l.b[t]!,
          lo: 0,
          hi: l.capacity[t]!,
          block: -1,
        },
        { link: k, kind: 'flow', unit: 0, t },
      );
    }
  });
  const b = new Float64Array(model.agents.length * T);
  model.agents.forEach((a, i) => {
    for (let t = 0; t < T; t++) b[row(i, t)] = a.demand[t]!;
  });
  return { columns, variables, blocks, b, m: b.length };
}

function cholesky(a: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let k = 0; k < j; k++) d -= a[j * n + k]! ** 2;
    if (!(d > 0)) d = 1e-18; // a tiny pivot only where the balance rows are (numerically) dependent
    const ljj = Math.sqrt(d);
    a[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= a[i * n + k]! * a[j * n + k]!;
      a[i * n + j] = s / ljj;
    }
  }
}

function choleskySolve(l: Float64Array, n: number, rhs: Float64Array): Float64Array {
  const y = Float64Array.from(rhs);
  for (let i = 0; i < n; i++) {
    let s = y[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!;
    y[i] = s / l[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * y[k]!;
    y[i] = s / l[i * n + i]!;
  }
  return y;
}

export function solveReference(
  model: TradeModel,
  options: { tolerance?: number; maxIterations?: number } = {},
): ReferenceSolution {
  const { columns, variables, blocks, b, m } = buildProblem(model);
  const n = columns.length;
  const tol = options.tolerance ?? 1e-10;
  // Inequalities: z ≥ lo (slack sl), z ≤ hi (slack su), G z ≤ h per block (slack sg).
  const z = new Float64Array(n);
  const sl = new Float64Array(n);
  const su = new Float64Array(n);
  const wl = new Float64Array(n);
  const wu = new Float64Array(n);
  columns.forEach((c, j) => {
    const span = c.hi - c.lo;
    z[j] = c.lo + span / 2;
    sl[j] = Math.max(span / 2, 1);
    su[j] = Math.max(span / 2, 1);
    wl[j] = 1;
    wu[j] = 1;
  });
  const gRows = blocks.map((bl) => bl.h.length);
  const sg = blocks.map((bl) => new Float64Array(bl.h.length).fill(1));
  const wg = blocks.map((bl) => new Float64Array(bl.h.length).fill(1));
  const y = new Float64Array(m);
  const gz = (k: number, zz: Float64Array) =>
    blocks[k]!.g.map((r) => r.reduce((s, c, j) => s + c * zz[blocks[k]!.columns[j]!]!, 0));

  let iterations = 0;
  for (; iterations < (options.maxIterations ?? 200); iterations++) {
    // Residuals: dual rd = Hz + f − Aᵀy − wl + wu + Gᵀwg; primal rp = b − Az; bounds: lo + sl − z = 0, z + su − hi = 0, Gz + sg − h = 0.
    const rd = new Float64Array(n);
    const az = new Float64Array(m);
    columns.forEach((c, j) => {
      let v = c.h * z[j]! + c.f - wl[j]! + wu[j]!;
      c.rows.forEach((r, k) => {
        v -= c.coef[k]! * y[r]!;
        az[r]! += c.coef[k]! * z[j]!;
      });
      rd[j] = v;
    });
    blocks.forEach((bl, k) => {
      bl.g.forEach((r, i) => {
        r.forEach((c, jj) => {
          if (c !== 0) rd[bl.columns[jj]!]! += c * wg[k]![i]!;
        });
      });
    });
    const rp = b.map((v, r) => v - az[r]!);
    const rl = columns.map((c, j) => c.lo + sl[j]! - z[j]!);
    const ru = columns.map((c, j) => z[j]! + su[j]! - c.hi);
    const rg = blocks.map((bl, k) => {
      const g = gz(k, z);
      return bl.h.map((h, i) => g[i]! + sg[k]![i]! - h);
    });
    let gap = 0;
    let count = 0;
    for (let j = 0; j < n; j++) {
      gap += sl[j]! * wl[j]! + su[j]! * wu[j]!;
      count += 2;
    }
    blocks.forEach((_, k) => {
      for (let i = 0; i < gRows[k]!; i++) {
        gap += sg[k]![i]! * wg[k]![i]!;
        count++;
      }
    });
    const mu = gap / Math.max(1, count);
    const resid = Math.max(
      ...Array.from(rd, Math.abs),
      ...Array.from(rp, Math.abs),
      ...rl.map(Math.abs),
      ...ru.map(Math.abs),
      ...rg.flat().map(Math.abs),
      0,
    );
    if (resid < tol && mu < tol) break;

    // Newton direction for a target complementarity σμ (predictor σ = 0, then corrector).
    const solveDirection = (
      sigmaMu: number,
      corr?: {
        dsl: Float64Array;
        dwl: Float64Array;
        dsu: Float64Array;
        dwu: Float64Array;
        dsg: Float64Array[];
        dwg: Float64Array[];
      },
    ) => {
      // Eliminating slacks and multipliers leaves Q dz − Aᵀ dy = −rd − (bound terms), with Q = H + wl/sl + wu/su + Gᵀ(wg/sg)G.
      const qDiag = new Float64Array(n);
      const rhs = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        const c = columns[j]!;
        qDiag[j] = c.h + wl[j]! / sl[j]! + wu[j]! / su[j]!;
        // complementarity targets: sl·wl = σμ − (corr), su·wu likewise
        const cl = sigmaMu - sl[j]! * wl[j]! - (corr ? corr.dsl[j]! * corr.dwl[j]! : 0);
        const cu = sigmaMu - su[j]! * wu[j]! - (corr ? corr.dsu[j]! * corr.dwu[j]! : 0);
        // From dl: sl dwl + wl dsl = cl with dsl = dz − rl;  du: su dwu + wu dsu = cu with dsu = −dz − ru.
        rhs[j] = -rd[j]! + (cl + wl[j]! * rl[j]!) / sl[j]! - (cu + wu[j]! * ru[j]!) / su[j]!;
      }
      const blockQ: Float64Array[] = [];
      blocks.forEach((bl, k) => {
        const nb = bl.columns.length;
        const q = new Float64Array(nb * nb);
        bl.columns.forEach((col, a) => {
          q[a * nb + a] = qDiag[col]!;
        });
        bl.g.forEach((r, i) => {
          const ratio = wg[k]![i]! / sg[k]![i]!;
          const cg = sigmaMu - sg[k]![i]! * wg[k]![i]! - (corr ? corr.dsg[k]![i]! * corr.dwg[k]![i]! : 0);
          // dsg = −G dz − rg;  sg dwg + wg dsg = cg
          const term = (cg + wg[k]![i]! * rg[k]![i]!) / sg[k]![i]!;
          r.forEach((ca, a) => {
            if (ca === 0) return;
            rhs[bl.columns[a]!]! -= ca * term;
            r.forEach((cb, bb) => {
              if (cb !== 0) q[a * nb + bb]! += ratio * ca * cb;
            });
          });
        });
        cholesky(q, nb);
        blockQ.push(q);
      });
      const qInv = (v: Float64Array): Float64Array => {
        const out = new Float64Array(n);
        for (let j = 0; j < n; j++) if (columns[j]!.block < 0) out[j] = v[j]! / qDiag[j]!;
        blocks.forEach((bl, k) => {
          const sol = choleskySolve(
            blockQ[k]!,
            bl.columns.length,
            Float64Array.from(bl.columns, (c) => v[c]!),
          );
          bl.columns.forEach((c, a) => {
            out[c] = sol[a]!;
          });
        });
        return out;
      };
      // A dz = rp and Q dz − Aᵀ dy = rhs  ⇒  (A Q⁻¹ Aᵀ) dy = rp − A Q⁻¹ rhs
      const mm = new Float64Array(m * m);
      for (let j = 0; j < n; j++) {
        const c = columns[j]!;
        if (c.block >= 0) continue;
        for (let p = 0; p < c.rows.length; p++) {
          for (let q = 0; q < c.rows.length; q++)
            mm[c.rows[p]! * m + c.rows[q]!]! += (c.coef[p]! * c.coef[q]!) / qDiag[j]!;
        }
      }
      blocks.forEach((bl, k) => {
        const nb = bl.columns.length;
        for (let a = 0; a < nb; a++) {
          const e = new Float64Array(nb);
          e[a] = 1;
          const colInv = choleskySolve(blockQ[k]!, nb, e);
          const ca = columns[bl.columns[a]!]!;
          for (let bb = 0; bb < nb; bb++) {
            const cb = columns[bl.columns[bb]!]!;
            mm[ca.rows[0]! * m + cb.rows[0]!]! += ca.coef[0]! * cb.coef[0]! * colInv[bb]!;
          }
        }
      });
      cholesky(mm, m);
      const qr = qInv(rhs);
      const aqr = new Float64Array(m);
      columns.forEach((c, j) => {
        c.rows.forEach((r, p) => {
          aqr[r]! += c.coef[p]! * qr[j]!;
        });
      });
      const dy = choleskySolve(
        mm,
        m,
        rp.map((v, r) => v - aqr[r]!),
      );
      const aty = new Float64Array(n);
      columns.forEach((c, j) => {
        c.rows.forEach((r, p) => {
          aty[j]! += c.coef[p]! * dy[r]!;
        });
      });
      const dz = qInv(rhs.map((v, j) => v + aty[j]!));
      const dsl = new Float64Array(n);
      const dsu = new Float64Array(n);
      const dwl = new Float64Array(n);
      const dwu = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        dsl[j] = dz[j]! - rl[j]!;
        dsu[j] = -dz[j]! - ru[j]!;
        const cl = sigmaMu - sl[j]! * wl[j]! - (corr ? corr.dsl[j]! * corr.dwl[j]! : 0);
        const cu = sigmaMu - su[j]! * wu[j]! - (corr ? corr.dsu[j]! * corr.dwu[j]! : 0);
        dwl[j] = (cl - wl[j]! * dsl[j]!) / sl[j]!;
        dwu[j] = (cu - wu[j]! * dsu[j]!) / su[j]!;
      }
      const dsg: Float64Array[] = [];
      const dwg: Float64Array[] = [];
      blocks.forEach((bl, k) => {
        const gdz = gz(k, dz);
        const s = new Float64Array(bl.h.length);
        const w = new Float64Array(bl.h.length);
        for (let i = 0; i < bl.h.length; i++) {
          s[i] = -gdz[i]! - rg[k]![i]!;
          const cg = sigmaMu - sg[k]![i]! * wg[k]![i]! - (corr ? corr.dsg[k]![i]! * corr.dwg[k]![i]! : 0);
          w[i] = (cg - wg[k]![i]! * s[i]!) / sg[k]![i]!;
        }
        dsg.push(s);
        dwg.push(w);
      });
      return { dz, dy, dsl, dsu, dwl, dwu, dsg, dwg };
    };
    const maxStep = (d: ReturnType<typeof solveDirection>) => {
      let alpha = 1;
      const limit = (v: number, dv: number) => {
        if (dv < 0) alpha = Math.min(alpha, -v / dv);
      };
      for (let j = 0; j < n; j++) {
        limit(sl[j]!, d.dsl[j]!);
        limit(su[j]!, d.dsu[j]!);
        limit(wl[j]!, d.dwl[j]!);
        limit(wu[j]!, d.dwu[j]!);
      }
      blocks.forEach((_, k) => {
        for (let i = 0; i < gRows[k]!; i++) {
          limit(sg[k]![i]!, d.dsg[k]![i]!);
          limit(wg[k]![i]!, d.dwg[k]![i]!);
        }
      });
      return alpha;
    };
    const predictor = solveDirection(0);
    const aAff = maxStep(predictor);
    let gapAff = 0;
    for (let j = 0; j < n; j++) {
      gapAff += (sl[j]! + aAff * predictor.dsl[j]!) * (wl[j]! + aAff * predictor.dwl[j]!);
      gapAff += (su[j]! + aAff * predictor.dsu[j]!) * (wu[j]! + aAff * predictor.dwu[j]!);
    }
    blocks.forEach((_, k) => {
      for (let i = 0; i < gRows[k]!; i++)
        gapAff += (sg[k]![i]! + aAff * predictor.dsg[k]![i]!) * (wg[k]![i]! + aAff * predictor.dwg[k]![i]!);
    });
    const sigma = (gapAff / Math.max(gap, 1e-300)) ** 3;
    const d = solveDirection(sigma * mu, predictor);
    const alpha = Math.min(1, 0.995 * maxStep(d));
    for (let j = 0; j < n; j++) {
      z[j]! += alpha * d.dz[j]!;
      sl[j]! += alpha * d.dsl[j]!;
      su[j]! += alpha * d.dsu[j]!;
      wl[j]! += alpha * d.dwl[j]!;
      wu[j]! += alpha * d.dwu[j]!;
    }
    for (let r = 0; r < m; r++) y[r]! += alpha * d.dy[r]!;
    blocks.forEach((_, k) => {
      for (let i = 0; i < gRows[k]!; i++) {
        sg[k]![i]! += alpha * d.dsg[k]![i]!;
        wg[k]![i]! += alpha * d.dwg[k]![i]!;
      }
    });
  }
  if (iterations >= (options.maxIterations ?? 200)) {
    throw new P2PError(ErrorCode.algorithm, 'reference solver did not converge (is the instance feasible?)', {
      component: 'trading-reference',
    });
  }
  let cost = 0;
  columns.forEach((c, j) => {
    cost += 0.5 * c.h * z[j]! ** 2 + c.f * z[j]!;
  });
  const prices: Record<string, number[]> = {};
  model.agents.forEach((a, i) => {
    prices[a.id] = Array.from({ length: model.horizon }, (_, t) => y[i * model.horizon + t]!);
  });
  return { cost, prices, iterations, z, variables };
}
