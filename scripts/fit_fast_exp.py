#!/usr/bin/env python3
"""Fits the polynomial of src/math/fast.rs's `exp`: e^r = 1 + r + r^2 P(r) on
|r| <= ln2/2, P of degree DEG, by least squares on Chebyshev nodes in
high precision (mpmath), weighted for relative error of e^r.

Run: pip install mpmath; python3 scripts/fit_fast_exp.py
Prints the coefficients (low to high) and the max relative error of the
double-precision evaluation of 1 + (r + r*r*P(r)) against mpmath.
"""
import mpmath as mp

mp.mp.dps = 50
DEG = 9
H = mp.log(2) / 2
N = 400
nodes = [H * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / N) for k in range(N)]


def target(r):
    if abs(r) < mp.mpf("1e-30"):
        return mp.mpf(1) / 2
    return (mp.exp(r) - 1 - r) / (r * r)


# Weight: error in P is multiplied by r^2 / e^r in the relative error of e^r.
rows = []
rhs = []
for r in nodes:
    w = r * r / mp.exp(r)
    rows.append([w * r**j for j in range(DEG + 1)])
    rhs.append(w * target(r))
A = mp.matrix(rows)
b = mp.matrix(rhs)
coef = mp.lu_solve(A.T * A, A.T * b)
coefs = [float(coef[j]) for j in range(DEG + 1)]
for j, c in enumerate(coefs):
    print(f"c{j} = {c!r}")
worst = 0
for k in range(20001):
    r = float(-H + 2 * H * k / 20000)
    p = 0.0
    for c in reversed(coefs):
        p = p * r + c
    approx = 1.0 + (r + r * r * p)
    err = abs(mp.mpf(approx) / mp.exp(r) - 1)
    worst = max(worst, err)
print("max relative error of double evaluation:", float(worst))
