#!/usr/bin/env python3
"""Peer timings for the `greeks` criterion bench: the same work in numpy/scipy
and in QuantLib's Python bindings, on the same machine, in the same sitting.

Work: price + delta, gamma, vega, theta, rho of mixed European options
(calls/puts, strikes within +-50% log of spot, vols 10%..120%, 1 day..2 years,
rates 0..8%, carry 0..4%), the same distribution as benches/greeks.rs.

Run on demand (not in CI):
    pip install numpy scipy QuantLib
    python3 bench/peers/greeks_peers.py            # 1,000,000 options in numpy, 20,000 in QuantLib
Reports the median of repeated runs in ns per option.
"""
import statistics
import sys
import time

import numpy as np
from scipy.special import ndtr


def mixed(n, seed=42):
    rng = np.random.default_rng(seed)
    phi = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    s = np.full(n, 100.0)
    k = s * np.exp(rng.uniform(-0.5, 0.5, n))
    t = rng.uniform(1 / 365, 2.0, n)
    v = rng.uniform(0.1, 1.2, n)
    r = rng.uniform(0.0, 0.08, n)
    q = rng.uniform(0.0, 0.04, n)
    return phi, s, k, t, v, r, q


def numpy_greeks(phi, s, k, t, v, r, q):
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    d1 = (np.log(s / k) + (r - q) * t) / sd + 0.5 * sd
    d2 = d1 - sd
    dq = np.exp(-q * t)
    dr = np.exp(-r * t)
    pdf1 = np.exp(-0.5 * d1 * d1) / np.sqrt(2 * np.pi)
    n1 = ndtr(phi * d1)
    n2 = ndtr(phi * d2)
    value = phi * (s * dq * n1 - k * dr * n2)
    delta = phi * dq * n1
    gamma = dq * pdf1 / (s * sd)
    vega = s * dq * pdf1 * sqrt_t
    theta = -s * dq * pdf1 * v / (2 * sqrt_t) + phi * q * s * dq * n1 - phi * r * k * dr * n2
    rho = phi * t * k * dr * n2
    return value, delta, gamma, vega, theta, rho


def median_ns_per_option(fn, n, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / n * 1e9


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    data = mixed(n)
    ns = median_ns_per_option(lambda: numpy_greeks(*data), n, 7)
    print(f"numpy/scipy {np.__version__}: {ns:.1f} ns per option (n = {n}, median of 7)")
    try:
        import QuantLib as ql
    except ImportError:
        print("QuantLib not installed: pip install QuantLib")
        return
    m = 20_000
    phi, s, k, t, v, r, q = (x[:m] for x in mixed(m))
    today = ql.Date(25, 11, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()

    def run_quantlib():
        for i in range(m):
            days = max(1, int(round(t[i] * 365)))
            payoff = ql.PlainVanillaPayoff(ql.Option.Call if phi[i] > 0 else ql.Option.Put, float(k[i]))
            option = ql.EuropeanOption(payoff, ql.EuropeanExercise(today + days))
            process = ql.BlackScholesMertonProcess(
                ql.QuoteHandle(ql.SimpleQuote(float(s[i]))),
                ql.YieldTermStructureHandle(ql.FlatForward(today, float(q[i]), dc)),
                ql.YieldTermStructureHandle(ql.FlatForward(today, float(r[i]), dc)),
                ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), float(v[i]), dc)),
            )
            option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
            option.NPV(), option.delta(), option.gamma(), option.vega(), option.theta(), option.rho()

    ns = median_ns_per_option(run_quantlib, m, 3)
    print(f"QuantLib {ql.__version__} (Python): {ns:.0f} ns per option (n = {m}, median of 3)")


if __name__ == "__main__":
    main()
