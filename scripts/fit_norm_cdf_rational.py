#!/usr/bin/env python3
"""Fits the rational of the batch kernel's normal CDF (src/math/normal.rs,
`MILLS_P`/`MILLS_Q`): for y >= 0,

    Phi(-y) = exp(-y^2/2) g(y),   g(y) = P(y) / Q(y),

P of degree DEG, Q of degree DEG + 1 with Q(0) = 1 (g decays like
1 / (y sqrt(2 pi))), on y in [0, YMAX]. Beyond YMAX = 38 the factor
exp(-y^2/2) is below the smallest normal double, so one rational covers the
whole line where Cody's ANORM needs three.

Method: linearised least squares for relative error (Sanathanan-Koerner
iterations, dividing each row by the previous Q), then Lawson reweighting
towards the minimax solution, all in mpmath at 40 digits on Chebyshev nodes.
Prints the coefficients (low to high), the maximum relative error of the
exact rational, and that of its double evaluation as the kernel does it
(even and odd parts in y^2 by Horner, with and without fused multiply-add),
against mpmath on a dense grid.

Run: pip install mpmath; python3 scripts/fit_norm_cdf_rational.py
(a few minutes).
"""
import mpmath as mp

mp.mp.dps = 40
DEG = 9
YMAX = mp.mpf(38)
N = 400
SK_ITERS = 12
LAWSON_ITERS = 30


def g(y):
    return mp.erfc(y / mp.sqrt(2)) / 2 * mp.exp(y * y / 2)


def fit():
    n, m = DEG, DEG + 1
    nodes = [YMAX * (1 + mp.cos(mp.pi * (k + mp.mpf(1) / 2) / N)) / 2 for k in range(N)]
    gs = [g(y) for y in nodes]
    w = [mp.mpf(1)] * N
    qprev = [mp.mpf(1)] * N
    best = None
    for it in range(SK_ITERS + LAWSON_ITERS):
        rows, rhs = [], []
        for y, gv, wj, qp in zip(nodes, gs, w, qprev):
            s = mp.sqrt(wj) / (gv * qp)
            # P(y) - g (Q(y) - 1) = g, unknowns p_0..p_n, q_1..q_m.
            rows.append([s * y**i for i in range(n + 1)] + [-s * gv * y**j for j in range(1, m + 1)])
            rhs.append(s * gv)
        x = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))[0]
        p = [x[i] for i in range(n + 1)]
        q = [mp.mpf(1)] + [x[n + j] for j in range(1, m + 1)]
        errs = [mp.polyval(p[::-1], y) / mp.polyval(q[::-1], y) / gv - 1 for y, gv in zip(nodes, gs)]
        worst = max(abs(e) for e in errs)
        if best is None or worst < best[0]:
            best = (worst, p, q)
        if it < SK_ITERS:
            qprev = [mp.polyval(q[::-1], y) for y in nodes]
        else:
            total = sum(wj * abs(e) for wj, e in zip(w, errs))
            w = [max(wj * abs(e) / total, mp.mpf(10) ** -30) for wj, e in zip(w, errs)]
    return best


def fma(a, b, c):
    return float(mp.mpf(a) * mp.mpf(b) + mp.mpf(c))


def plain(a, b, c):
    return a * b + c


def split_horner(c, y, madd):
    """c_0 + c_1 y + ... as E(y^2) + y O(y^2), each part by Horner."""
    z = y * y

    def horner(cs):
        acc = cs[-1]
        for k in reversed(cs[:-1]):
            acc = madd(acc, z, k)
        return acc

    return madd(horner(c[1::2]), y, horner(c[0::2]))


def main():
    worst, p, q = fit()
    pf = [float(c) for c in p]
    qf = [float(c) for c in q]
    print("MILLS_P =", pf)
    print("MILLS_Q =", qf)
    print("exact rational, max relative error on the nodes:", mp.nstr(worst, 3))
    grid = [float(YMAX) * k / 8000 for k in range(8001)]
    ref = [g(mp.mpf(y)) for y in grid]
    eps = mp.mpf(2) ** -52
    for name, madd in [("fused", fma), ("unfused", plain)]:
        err = max(
            abs(mp.mpf(split_horner(pf, y, madd) / split_horner(qf, y, madd)) / r - 1)
            for y, r in zip(grid, ref)
        )
        print(f"double evaluation ({name}), max relative error: {float(err / eps):.2f} eps")


if __name__ == "__main__":
    main()
