#!/usr/bin/env python3
"""Centralised optimum of a `voltage` instance, computed independently of the TypeScript code.

    min  sum_i (pAvailable_i - p_i)^2 + qWeight_i * q_i^2
    s.t. vMinPu <= |V_k(p, q)| <= vMaxPu   at every non-slack bus (exact AC power flow)
         0 <= p_i <= pAvailable_i,  |q_i| <= qMax_i,  p_i^2 + q_i^2 <= sRated_i^2 (if given)

The power flow is the Z-bus form of the backward/forward sweep on the radial tree:
V = V0 - Zbus conj(S / V), where Zbus = A diag(z) A^T and A[k, b] = 1 when branch b lies on
the path from the slack bus to bus k. Voltage sensitivities come from differentiating that fixed
point (implicit function theorem), not from finite differences (these only check them).

Two methods must agree:
  1. successive linearisation: the exact cost with the voltages linearised at the current point,
     solved with SLSQP, repeated until the AC voltages meet the limits and the setpoints stop moving;
  2. SLSQP directly on the AC constraints (power flow and its Jacobian at every evaluation),
     started from the result of 1, and again from the uncurtailed point.
The better feasible point is kept, and its first-order optimality (KKT) is checked with NNLS.

Usage:
  python3 bench/reference/voltage_optimum.py INPUT.json [--out OUTPUT.json]
  python3 bench/reference/voltage_optimum.py --selftest
"""

import argparse
import json
import math
import os
import sys
import time
from collections import deque

import numpy as np
import scipy
from scipy.optimize import minimize, nnls

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
BASE_KVA = 1000.0  # per-unit power base: 1 MVA
PF_TOL_PU = 1e-12
V_LIMIT_TOL_PU = 1e-7
MOVE_TOL_KW = 1e-6


class Feeder:
    """A radial feeder: the slack bus, the other buses in breadth-first order, Zbus in pu."""

    def __init__(self, feeder):
        self.name = feeder.get('name', '')
        self.v_slack = float(feeder['vSlackPu'])
        self.slack = feeder['slack']
        buses = feeder['buses']
        load = {b['id']: complex(b['pKW'], b['qKVAr']) for b in buses}
        if len(load) != len(buses):
            raise ValueError('a bus id is used twice')
        z_base = feeder['baseKV'] ** 2 / (BASE_KVA / 1000.0)
        neighbours = {bus_id: [] for bus_id in load}
        for line in feeder['lines']:
            z = complex(line['rOhm'], line['xOhm']) / z_base
            neighbours[line['from']].append((line['to'], z))
            neighbours[line['to']].append((line['from'], z))
        if len(feeder['lines']) != len(buses) - 1:
            raise ValueError('the feeder is not a tree (lines != buses - 1)')
        parent, branch_z, order = {}, {}, []
        seen = {self.slack}
        queue = deque([self.slack])
        while queue:
            u = queue.popleft()
            for v, z in neighbours[u]:
                if v in seen:
                    continue
                seen.add(v)
                parent[v], branch_z[v] = u, z
                order.append(v)
                queue.append(v)
        if len(order) != len(buses) - 1:
            raise ValueError('the feeder is not connected')
        self.order = order
        self.index = {bus_id: k for k, bus_id in enumerate(order)}
        n = len(order)
        path = np.zeros((n, n))
        for k, bus_id in enumerate(order):
            u = bus_id
            while u != self.slack:
                path[k, self.index[u]] = 1.0
                u = parent[u]
        z = np.array([branch_z[b] for b in order])
        self.zbus = (path * z) @ path.T
        self.load_pu = np.array([load[b] for b in order]) / BASE_KVA
        self.slack_load_kw = load[self.slack]

    def solve(self, net_load_pu):
        """Complex bus voltages (pu, non-slack buses) for the given net loads (pu, consumption positive)."""
        v = np.full(len(self.order), self.v_slack, dtype=complex)
        for _ in range(200):
            v_next = self.v_slack - self.zbus @ np.conj(net_load_pu / v)
            step = np.max(np.abs(v_next - v))
            v = v_next
            if step < PF_TOL_PU:
                return v
        raise RuntimeError(f'power flow did not converge (last step {step:.2e} pu)')

    def losses_kw(self, v, net_load_pu):
        slack_power = self.v_slack * np.sum(net_load_pu / v)
        return float((slack_power.real - net_load_pu.real.sum()) * BASE_KVA)

    def magnitude_sensitivities(self, v, net_load_pu, buses):
        """d|V| / d(injected p, q) in pu per kW / kVAr, for an injection at each of `buses` (indices)."""
        n = len(v)
        vc = np.conj(v)
        m = self.zbus * (np.conj(net_load_pu) / vc**2)
        lhs = np.block([[np.eye(n) - m.real, -m.imag], [-m.imag, np.eye(n) + m.real]])
        b = self.zbus[:, buses] / vc[buses]
        # injecting p lowers the net load: dS = -dp, conj(dS) = -dp; injecting q: dS = -j dq, conj(dS) = +j dq
        rhs_c = np.concatenate([b, -1j * b], axis=1) / BASE_KVA
        sol = np.linalg.solve(lhs, np.concatenate([rhs_c.real, rhs_c.imag]))
        dv_re, dv_im = sol[:n], sol[n:]
        mag = np.abs(v)[:, None]
        grad = (v.real[:, None] * dv_re + v.imag[:, None] * dv_im) / mag
        k = len(buses)
        return grad[:, :k], grad[:, k:]


class Instance:
    def __init__(self, data):
        self.feeder = Feeder(data['feeder'])
        self.v_min = float(data['vMinPu'])
        self.v_max = float(data['vMaxPu'])
        inv = data['inverters']
        self.ids = [i['id'] for i in inv]
        self.m = len(inv)
        for i in inv:
            if i['bus'] == self.feeder.slack:
                raise ValueError(f'inverter {i["id"]} is at the slack bus')
        self.bus = np.array([self.feeder.index[i['bus']] for i in inv])
        self.p_avail = np.array([float(i['pAvailableKW']) for i in inv])
        self.q_max = np.array([float(i['qMaxKVAr']) for i in inv])
        self.w = np.array([float(i['qWeight']) for i in inv])
        self.s_rated = np.array([float(i.get('sRatedKVA', math.inf)) for i in inv])
        self.has_s = np.isfinite(self.s_rated)
        self.bounds = [(0.0, pa) for pa in self.p_avail] + [(-qm, qm) for qm in self.q_max]
        # cost in units of scale^2, so that SLSQP sees O(1) numbers on MV and LV feeders alike
        self.scale = max(1.0, float(np.max(np.concatenate([self.p_avail, self.q_max]))))
        self._cache_x = None

    def split(self, x):
        return x[: self.m], x[self.m :]

    def cost(self, x):
        p, q = self.split(x)
        return float(np.sum((self.p_avail - p) ** 2 + self.w * q**2))

    def cost_grad(self, x):
        p, q = self.split(x)
        return np.concatenate([-2 * (self.p_avail - p), 2 * self.w * q])

    def net_load(self, x):
        p, q = self.split(x)
        inj = np.zeros(len(self.feeder.order), dtype=complex)
        np.add.at(inj, self.bus, (p + 1j * q) / BASE_KVA)
        return self.feeder.load_pu - inj

    def flow(self, x):
        """Voltage magnitudes and their Jacobian wrt x = (p, q), cached for the last x."""
        if self._cache_x is None or not np.array_equal(self._cache_x, x):
            s = self.net_load(x)
            v = self.feeder.solve(s)
            jp, jq = self.feeder.magnitude_sensitivities(v, s, self.bus)
            self._cache = (np.abs(v), np.concatenate([jp, jq], axis=1))
            self._cache_x = np.array(x, copy=True)
        return self._cache

    def voltage_violation(self, x):
        vm, _ = self.flow(x)
        return float(max(0.0, np.max(vm - self.v_max), np.max(self.v_min - vm)))

    def capability_violation(self, x):
        p, q = self.split(x)
        over = [np.max(-p), np.max(p - self.p_avail), np.max(np.abs(q) - self.q_max)]
        if self.has_s.any():
            over.append(np.max(np.hypot(p, q)[self.has_s] - self.s_rated[self.has_s]))
        return float(max(0.0, *over))

    # constraints g(x) >= 0 shared by both methods; voltages scaled so 1 unit = 0.01 pu
    def disc_constraint(self):
        idx = np.nonzero(self.has_s)[0]
        if len(idx) == 0:
            return []
        s2 = self.s_rated[idx] ** 2

        def fun(x):
            p, q = self.split(x)
            return (s2 - p[idx] ** 2 - q[idx] ** 2) / s2

        def jac(x):
            p, q = self.split(x)
            j = np.zeros((len(idx), 2 * self.m))
            j[np.arange(len(idx)), idx] = -2 * p[idx] / s2
            j[np.arange(len(idx)), self.m + idx] = -2 * q[idx] / s2
            return j

        return [{'type': 'ineq', 'fun': fun, 'jac': jac}]

    def slsqp(self, x0, constraints, max_iter=3000):
        """SLSQP in the variables z = x / d, chosen so that the cost's Hessian in z is the identity
        (SLSQP's starting Hessian): one search direction then solves the cost exactly, and small
        and large inverters are weighted alike."""
        d = self.scale / np.sqrt(2 * np.concatenate([np.ones(self.m), self.w]))
        sc = self.scale**2
        lo = np.array([b[0] for b in self.bounds])
        hi = np.array([b[1] for b in self.bounds])

        def in_z(c):
            return {'type': 'ineq', 'fun': lambda z: c['fun'](z * d), 'jac': lambda z: c['jac'](z * d) * d}

        res = minimize(
            lambda z: self.cost(z * d) / sc,
            np.clip(x0, lo, hi) / d,
            jac=lambda z: self.cost_grad(z * d) * d / sc,
            method='SLSQP',
            bounds=list(zip(lo / d, hi / d)),
            constraints=[in_z(c) for c in constraints + self.disc_constraint()],
            options={'ftol': 1e-13, 'maxiter': max_iter},
        )
        res.x = np.clip(res.x * d, lo, hi)
        return res

    def linearised_step(self, x_lin, trust_kw):
        vm0, jac0 = self.flow(x_lin)
        vm0, jac0 = vm0.copy(), jac0.copy()
        cons = [
            {
                'type': 'ineq',
                'fun': lambda x: 100 * (self.v_max - vm0 - jac0 @ (x - x_lin)),
                'jac': lambda x: -100 * jac0,
            },
            {
                'type': 'ineq',
                'fun': lambda x: 100 * (vm0 + jac0 @ (x - x_lin) - self.v_min),
                'jac': lambda x: 100 * jac0,
            },
        ]
        if trust_kw is not None:
            # box trust region around the point of linearisation, as a linear constraint
            cons.append(
                {
                    'type': 'ineq',
                    'fun': lambda x: np.concatenate([trust_kw - (x - x_lin), trust_kw + (x - x_lin)]) / self.scale,
                    'jac': lambda x: np.vstack([-np.eye(2 * self.m), np.eye(2 * self.m)]) / self.scale,
                }
            )
        return self.slsqp(x_lin, cons)

    def successive_linearisation(self, x0, max_outer=100):
        x = np.array(x0, dtype=float)
        trust = None
        history = []
        for it in range(1, max_outer + 1):
            res = self.linearised_step(x, trust)
            if not res.success:
                # linearised problem infeasible or not solved: shrink to a trust region and retry
                trust = 0.1 * self.scale if trust is None else trust / 2
                if trust < 1e-9:
                    raise RuntimeError(f'successive linearisation stalled: {res.message}')
                continue
            move = float(np.max(np.abs(res.x - x)))
            x_new = res.x
            history.append((it, self.cost(x_new), self.voltage_violation(x_new), move))
            x = x_new
            if move < MOVE_TOL_KW and self.voltage_violation(x) <= V_LIMIT_TOL_PU:
                return x, it, history
        raise RuntimeError(f'successive linearisation did not converge in {max_outer} iterations: {history[-3:]}')

    def ac_constraints(self):
        return [
            {
                'type': 'ineq',
                'fun': lambda x: 100 * (self.v_max - self.flow(x)[0]),
                'jac': lambda x: -100 * self.flow(x)[1],
            },
            {
                'type': 'ineq',
                'fun': lambda x: 100 * (self.flow(x)[0] - self.v_min),
                'jac': lambda x: 100 * self.flow(x)[1],
            },
        ]

    def direct(self, x0):
        res = self.slsqp(x0, self.ac_constraints())
        return res

    def kkt_residual(self, x, active_tol=1e-6):
        """Relative residual of grad f = sum lambda_i grad g_i (lambda >= 0) over the active constraints g >= 0."""
        p, q = self.split(x)
        vm, jac = self.flow(x)
        rows = []
        n2 = 2 * self.m
        for k in range(self.m):
            e_p, e_q = np.eye(n2)[k], np.eye(n2)[self.m + k]
            if p[k] <= active_tol:
                rows.append(e_p)
            if p[k] >= self.p_avail[k] - active_tol:
                rows.append(-e_p)
            if q[k] >= self.q_max[k] - active_tol:
                rows.append(-e_q)
            if q[k] <= -self.q_max[k] + active_tol:
                rows.append(e_q)
            if self.has_s[k] and math.hypot(p[k], q[k]) >= self.s_rated[k] - active_tol:
                rows.append(-(2 * p[k] * e_p + 2 * q[k] * e_q))
        for b in range(len(vm)):
            if vm[b] >= self.v_max - active_tol:
                rows.append(-jac[b] * 1000)
            if vm[b] <= self.v_min + active_tol:
                rows.append(jac[b] * 1000)
        g = self.cost_grad(x)
        if not rows:
            return float(np.linalg.norm(g) / max(1.0, np.linalg.norm(g))), 0
        a = np.array(rows)
        norms = np.linalg.norm(a, axis=1)
        norms[norms == 0] = 1
        _, resid = nnls((a / norms[:, None]).T, g)
        return float(resid / max(1.0, np.linalg.norm(g))), len(rows)


def optimise(data, log=print):
    inst = Instance(data)
    t0 = time.time()
    uncurtailed = np.concatenate([inst.p_avail, np.zeros(inst.m)])
    if inst.has_s.any():
        uncurtailed[: inst.m] = np.minimum(uncurtailed[: inst.m], np.where(inst.has_s, inst.s_rated, np.inf))
    x_lin, outer, history = inst.successive_linearisation(uncurtailed)
    cost_lin = inst.cost(x_lin)
    log(f'  successive linearisation: {outer} QPs, cost {cost_lin:.8f}, violation {inst.voltage_violation(x_lin):.1e} pu')
    candidates = [('successive linearisation', x_lin)]
    direct_results = []
    for label, start in (('from the linearisation result', x_lin), ('from the uncurtailed point', uncurtailed)):
        res = inst.direct(start)
        v_viol, c_viol = inst.voltage_violation(res.x), inst.capability_violation(res.x)
        log(
            f'  direct AC SLSQP {label}: {res.message} ({res.nit} it), cost {inst.cost(res.x):.8f}, '
            f'violation {v_viol:.1e} pu / {c_viol:.1e} kW'
        )
        direct_results.append((label, res, v_viol, c_viol))
        if v_viol <= V_LIMIT_TOL_PU and c_viol <= 1e-7:
            candidates.append((f'direct AC SLSQP {label}', res.x))
    best_label, best = min(candidates, key=lambda c: inst.cost(c[1]))
    best_cost = inst.cost(best)
    kkt, n_active = inst.kkt_residual(best)
    log(f'  best: {best_label}, cost {best_cost:.8f}, KKT residual {kkt:.1e} over {n_active} active constraints')
    feasible_direct = [(lab, r) for lab, r, vv, cv in direct_results if vv <= V_LIMIT_TOL_PU and cv <= 1e-7]
    if not feasible_direct:
        raise RuntimeError('no direct AC solve ended feasible; nothing confirms the linearisation')
    for lab, r in feasible_direct:
        rel = abs(inst.cost(r.x) - cost_lin) / max(abs(cost_lin), 1e-9)
        if rel > 1e-4:
            raise RuntimeError(f'methods disagree: linearisation {cost_lin} vs direct {lab} {inst.cost(r.x)} ({rel:.1e})')
    if kkt > 1e-5:
        raise RuntimeError(f'KKT residual {kkt:.1e} too large at the best point')
    vm, _ = inst.flow(best)
    p, q = inst.split(best)
    agreements = '; '.join(
        f'direct SLSQP on the AC constraints {lab}: cost {inst.cost(r.x):.6f} '
        f'(relative difference {abs(inst.cost(r.x) - cost_lin) / max(abs(cost_lin), 1e-9):.1e})'
        for lab, r in feasible_direct
    )
    return {
        'optimalCost': round(best_cost, 4),
        'maxVoltagePu': round(float(vm.max()), 6),
        'minVoltagePu': round(float(vm.min()), 6),
        'setpoints': {
            inv_id: {'pKW': round(float(p[k]), 3) + 0.0, 'qKVAr': round(float(q[k]), 3) + 0.0}
            for k, inv_id in enumerate(inst.ids)
        },
        'solver': (
            f'bench/reference/voltage_optimum.py: own Z-bus backward/forward sweep AC power flow (tol 1e-12 pu) '
            f'with implicit-function voltage sensitivities; successive linearisation, each step solved by '
            f'SLSQP (numpy {np.__version__}, scipy {scipy.__version__}); kept: {best_label}'
        ),
        'checkedBy': (
            f'successive linearisation ({outer} steps) cost {cost_lin:.6f}; {agreements}; '
            f'KKT residual {kkt:.1e} (NNLS over {n_active} active constraints)'
        ),
        '_seconds': time.time() - t0,
    }


def selftest():
    ok = True

    def check(label, got, want, tol):
        nonlocal ok
        good = abs(got - want) <= tol
        ok = ok and good
        print(f'  {"ok  " if good else "FAIL"} {label}: {got:.4f} (published {want}, tolerance {tol})')

    def base_case(name, feeder, losses_kw, v_min_pu, v_min_bus):
        fd = Feeder(feeder)
        s = fd.load_pu
        v = fd.solve(s)
        vm = np.abs(v)
        k = int(np.argmin(vm))
        print(f'{name}: losses {fd.losses_kw(v, s):.3f} kW, Vmin {vm[k]:.5f} pu at bus {fd.order[k]}')
        check(f'{name} losses kW', fd.losses_kw(v, s), losses_kw, 0.05)
        check(f'{name} Vmin pu', vm[k], v_min_pu, 5e-5)
        nonlocal ok
        if fd.order[k] != v_min_bus:
            ok = False
            print(f'  FAIL {name}: lowest voltage at bus {fd.order[k]}, published at bus {v_min_bus}')
        else:
            print(f'  ok   {name}: lowest voltage at bus {v_min_bus}')

    with open(os.path.join(REPO, 'src/grid/data/feeder-baran-wu-33.json')) as f:
        base_case('Baran & Wu 33-bus', json.load(f), 202.67, 0.9131, '18')

    path69 = os.path.join(REPO, 'src/grid/data/feeder-baran-wu-69.json')
    if os.path.exists(path69):
        with open(path69) as f:
            feeder69 = json.load(f)
        source = path69
    else:
        # No feeder-only file: take the 69-bus instance's feeder and scale its loads back to the
        # published base case (3802.19 kW, 2694.60 kVAr in total; the instance scales all loads alike).
        source = 'test/fixtures/voltage/voltage-69bus-evening.json, loads scaled to 3802.19 kW / 2694.60 kVAr'
        with open(os.path.join(REPO, 'test/fixtures/voltage/voltage-69bus-evening.json')) as f:
            feeder69 = json.load(f)['feeder']
        kp = 3802.19 / sum(b['pKW'] for b in feeder69['buses'])
        kq = 2694.60 / sum(b['qKVAr'] for b in feeder69['buses'])
        feeder69['buses'] = [dict(b, pKW=b['pKW'] * kp, qKVAr=b['qKVAr'] * kq) for b in feeder69['buses']]
    print(f'69-bus feeder from {source}')
    base_case('Baran & Wu 69-bus', feeder69, 224.95, 0.9092, '65')

    # the analytic sensitivities against central finite differences of the power flow
    with open(os.path.join(REPO, 'test/fixtures/voltage/voltage-33bus-noon.json')) as f:
        inst = Instance(json.load(f))
    rng = np.random.default_rng(1)
    x = np.concatenate([inst.p_avail * rng.uniform(0.3, 1, inst.m), inst.q_max * rng.uniform(-1, 1, inst.m)])
    _, jac = inst.flow(x)
    fd_jac = np.zeros_like(jac)
    h = 1e-3
    for j in range(2 * inst.m):
        e = np.zeros(2 * inst.m)
        e[j] = h
        fd_jac[:, j] = (np.abs(inst.feeder.solve(inst.net_load(x + e))) - np.abs(inst.feeder.solve(inst.net_load(x - e)))) / (
            2 * h
        )
    err = float(np.max(np.abs(jac - fd_jac)) / np.max(np.abs(jac)))
    good = err < 1e-6
    ok = ok and good
    print(f'  {"ok  " if good else "FAIL"} voltage sensitivities vs finite differences: relative error {err:.1e}')
    print('self-test', 'passed' if ok else 'FAILED')
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('input', nargs='?', help='a `voltage` input JSON')
    ap.add_argument('--out', help='write the optimum here (JSON)')
    ap.add_argument('--selftest', action='store_true', help='check the power flow against published figures')
    args = ap.parse_args()
    if args.selftest:
        sys.exit(0 if selftest() else 1)
    if not args.input:
        ap.error('INPUT.json or --selftest is needed')
    with open(args.input) as f:
        data = json.load(f)
    print(f'{args.input}:', file=sys.stderr)
    result = optimise(data, log=lambda s: print(s, file=sys.stderr))
    seconds = result.pop('_seconds')
    print(f'  {seconds:.1f} s', file=sys.stderr)
    text = json.dumps(result, indent=1) + '\n'
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == '__main__':
    main()
