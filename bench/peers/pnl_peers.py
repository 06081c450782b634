#!/usr/bin/env python3
"""Peer timing for the `pnl` criterion bench (historical VaR with full
revaluation): the same work in numpy/scipy on the same machine.

Work (as benches/pnl.rs): 1,000 BTC options (calls and puts, strikes within
+-50% log of spot, 1 day to 1 year, vol 55%, r 4%, q 1%) fully revalued
under 2,500 scenarios of Student-t(4) spot log returns (3.5% scale) and vol
log moves (6%), one day forward; the book's P&L per scenario, then VaR and
ES at 99% (k = ceil(n (1 - c)) largest losses). Vectorised over a
1,000 x 2,500 array (2.5 million Black-Scholes prices).

Run on demand (not in CI):
    pip install numpy scipy
    python3 bench/peers/pnl_peers.py
Reports the median of repeated runs.
"""
import math
import statistics
import time

import numpy as np
from scipy.special import ndtr

OPTIONS = 1_000
SCENARIOS = 2_500


def setup(seed=42):
    rng = np.random.default_rng(seed)
    phi = np.where(rng.random(OPTIONS) < 0.5, 1.0, -1.0)
    k = 100_000.0 * np.exp(rng.uniform(-0.5, 0.5, OPTIONS))
    t = rng.uniform(1.0, 365.0, OPTIONS) / 365.0
    q = rng.integers(-10, 11, OPTIONS).astype(float)
    ds = rng.standard_t(4, SCENARIOS) * 0.035
    dv = rng.standard_t(4, SCENARIOS) * 0.06
    return phi, k, t, q, ds, dv


def bs(phi, s, k, t, v, r=0.04, b=0.03):
    sq = v * np.sqrt(t)
    d1 = (np.log(s / k) + (b + 0.5 * v * v) * t) / sq
    d2 = d1 - sq
    return phi * (s * np.exp((b - r) * t) * ndtr(phi * d1) - k * np.exp(-r * t) * ndtr(phi * d2))


def run(phi, k, t, q, ds, dv):
    s0, v0, h = 100_000.0, 0.55, 1.0 / 365.0
    base = bs(phi, s0, k, t, v0)
    s = s0 * np.exp(ds)[None, :]
    v = v0 * np.exp(dv)[None, :]
    tt = np.maximum(t - h, 1e-9)[:, None]
    values = bs(phi[:, None], s, k[:, None], tt, v)
    pnl = q @ (values - base[:, None])
    losses = np.sort(-pnl)[::-1]
    n = math.ceil(SCENARIOS * 0.01)
    return losses[n - 1], losses[:n].mean()


def main():
    args = setup()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - start)
    print(f"numpy full revaluation + VaR/ES, {OPTIONS} x {SCENARIOS}: {statistics.median(times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
