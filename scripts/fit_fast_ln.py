#!/usr/bin/env python3
"""Fits the polynomial of src/math/fast.rs's `ln`: with s = f/(2+f), z = s^2,
ln(1+f) = f - (f^2/2 - s (f^2/2 + R)), R(z) = 2 (atanh(s)/s - 1) = z Q(z);
Q of degree DEG fitted by least squares on Chebyshev nodes of
z in [0, (3 - 2 sqrt2)^2] (f in [sqrt(1/2) - 1, sqrt2 - 1]), in mpmath.

Run: pip install mpmath; python3 scripts/fit_fast_ln.py
"""
import mpmath as mp

mp.mp.dps = 50
DEG = 6
ZMAX = (3 - 2 * mp.sqrt(2)) ** 2
N = 400
nodes = [ZMAX / 2 * (1 + mp.cos(mp.pi * (k + mp.mpf(1) / 2) / N)) for k in range(N)]


def q_exact(z):
    s = mp.sqrt(z)
    return 2 * (mp.atanh(s) / s - 1) / z


rows = [[z**j for j in range(DEG + 1)] for z in nodes]
rhs = [q_exact(z) for z in nodes]
A = mp.matrix(rows)
b = mp.matrix(rhs)
coef = mp.lu_solve(A.T * A, A.T * b)
coefs = [float(coef[j]) for j in range(DEG + 1)]
for j, c in enumerate(coefs):
    print(f"c{j} = {c!r}")
worst = 0
for k in range(1, 40001):
    x = 0.5 + 1.5 * k / 40000
    m, e = x, 0
    if m > 2**0.5:
        m, e = m / 2, 1
    elif m < 2**-0.5:
        m, e = m * 2, -1
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    q = 0.0
    for c in reversed(coefs):
        q = q * z + c
    r = z * q
    hfsq = 0.5 * f * f
    ln2 = float(mp.log(2))
    approx = e * ln2 + (f - (hfsq - s * (hfsq + r)))
    exact = mp.log(x)
    if exact != 0:
        worst = max(worst, abs((approx - exact) / exact))
print("max relative error (double evaluation, x in [0.5, 2]):", float(worst))
