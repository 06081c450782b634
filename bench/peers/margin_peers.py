#!/usr/bin/env python3
"""Peer timings for the `margin` criterion bench: the same batch-margin work
in numpy/scipy.sparse, on the same machine, in the same sitting.

Work (as benches/margin.rs): loss arrays of 2,006 instruments on a
63-scenario grid (2 underlyings), 100,000 accounts of 20 distinct
instruments each drawn uniformly. Per account and underlying: the
quantity-weighted sum of the instruments' loss arrays, its maximum floored
at 0, summed over underlyings. The arrays are random numbers: pricing is
not timed (that is the `risk_arrays` bench), only the aggregation.

Two peers:
  * scipy.sparse: one CSR (accounts x instruments) product per underlying
    with the dense (instruments x 63) loss matrix, then a row max;
  * a naive loop: per account, numpy over its 20 rows (what a service
    written account by account does).

Run on demand (not in CI):
    pip install numpy scipy
    python3 bench/peers/margin_peers.py
Reports the median of repeated runs in ns per account.
"""
import statistics
import time

import numpy as np
import scipy.sparse as sp

INSTRUMENTS = 2006
SCENARIOS = 63
ACCOUNTS = 100_000
POSITIONS = 20


def setup(seed=11):
    rng = np.random.default_rng(seed)
    losses = rng.normal(0.0, 1000.0, (INSTRUMENTS, SCENARIOS))
    underlying = np.where(np.arange(INSTRUMENTS) < 1200, 0, 1)
    underlying[-6:-3] = 0
    underlying[-3:] = 1
    cols = np.stack([rng.choice(INSTRUMENTS, POSITIONS, replace=False) for _ in range(ACCOUNTS)])
    qty = rng.integers(-10, 11, (ACCOUNTS, POSITIONS)).astype(float)
    qty[qty == 0] = 0.5
    rows = np.repeat(np.arange(ACCOUNTS), POSITIONS)
    per_underlying = []
    for u in (0, 1):
        mask = underlying[cols.ravel()] == u
        a = sp.csr_matrix(
            (qty.ravel()[mask], (rows[mask], cols.ravel()[mask])), shape=(ACCOUNTS, INSTRUMENTS)
        )
        per_underlying.append(a)
    return losses, underlying, per_underlying, cols, qty


def sparse_margin(losses, per_underlying):
    total = np.zeros(ACCOUNTS)
    for a in per_underlying:
        scen = a @ losses
        total += np.maximum(scen.max(axis=1), 0.0)
    return total


def naive_margin(losses, underlying, cols, qty, n):
    out = np.empty(n)
    for i in range(n):
        c = cols[i]
        total = 0.0
        for u in (0, 1):
            m = underlying[c] == u
            if m.any():
                total += max((qty[i, m] @ losses[c[m]]).max(), 0.0)
        out[i] = total
    return out


def median_ns(fn, per, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) / per * 1e9)
    return statistics.median(times)


def main():
    losses, underlying, per_underlying, cols, qty = setup()
    sparse = median_ns(lambda: sparse_margin(losses, per_underlying), ACCOUNTS, 7)
    naive_n = 5_000
    naive = median_ns(lambda: naive_margin(losses, underlying, cols, qty, naive_n), naive_n, 3)
    print(f"scipy.sparse batch margin: {sparse:,.0f} ns per account")
    print(f"naive per-account numpy:   {naive:,.0f} ns per account")


if __name__ == "__main__":
    main()
