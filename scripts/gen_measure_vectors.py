#!/usr/bin/env python3
"""Reference vectors for `src/measure/*` and `src/volatility.rs`.

Run from the repository root:

    pip install numpy scipy pandas arch==8.0.0
    python3 scripts/gen_measure_vectors.py

Writes `tests/data/measure_vectors.json`, read by `tests/measure_reference.rs`.
Values compared bit for bit are also stored as IEEE-754 bit patterns (`bits`),
since JSON float parsers need not round correctly.
Input: `tests/data/sp500_adj_close.csv` (Date and Adj Close columns of the S&P 500
series shipped by PyPI `arch` 8.0.0, NCSA licence; see tests/data/README.md).

What is computed, and by what:
- Daily P&L series = percent simple returns `100 * (p_t / p_{t-1} - 1)` of Adj Close
  (what `arch`'s documentation fits), "long" = returns, "short" = -returns.
- Historical VaR/ES per window and confidence:
  * empirical rule (crate convention): k = ceil(n (1 - c)) with the crate's relative
    snap of 1e-9, VaR = k-th largest loss, ES = sum of the k largest losses added
    in descending order one by one (plain IEEE adds, the order the crate uses), / k;
    `es_numpy_mean` is `np.mean` of the same k losses (pairwise summation, for
    information);
  * linear rule: VaR = `np.quantile(losses, c, method="linear")`; ES = the
    Acerbi-Tasche fractional-tail mean, m = n (1 - c) (same snap),
    (sum of floor(m) largest + (m - floor(m)) * next) / m, added in the crate's order.
- Kupiec / Christoffersen: explicit likelihood ratios with `scipy.special.xlogy`,
  p-values from `scipy.stats.chi2.sf`.
- Basel traffic light zone limits from `scipy.stats.binom.cdf` (95% / 99.99%).
- Parametric: delta-normal with `scipy.stats.norm`, delta-gamma cumulants with numpy
  matrix products, Cornish-Fisher quantile.
- Volatility: `arch.arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="normal")`
  fitted on percent returns (params, loglikelihood, 10-day forecast), and EWMA(0.94)
  via `arch.univariate.EWMAVariance` on the same series.
"""

import json
import math
import os
import struct

import numpy as np
import pandas as pd
import scipy
from scipy import special, stats

import arch
from arch import arch_model
from arch.univariate import EWMAVariance, ZeroMean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
SNAP_REL = 1e-9
CONFIDENCES = [0.9, 0.95, 0.975, 0.99, 0.995, 0.999]


def bits(x):
    """IEEE-754 bit pattern of a float as an integer: exact through any JSON parser."""
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def tail_size(n, c):
    """m = n (1 - c), snapped to the nearest integer when within SNAP_REL relative."""
    m = n * (1.0 - c)
    r = round(m)
    if abs(m - r) <= SNAP_REL * m:
        m = float(r)
    return m


def empirical(losses, c):
    n = len(losses)
    desc = np.sort(losses)[::-1]
    k = max(1, min(n, math.ceil(tail_size(n, c))))
    var = float(desc[k - 1])
    s = 0.0
    for x in desc[:k]:
        s += float(x)
    es = max(s / k, var)
    return k, var, es, float(np.mean(desc[:k]))


def linear(losses, c):
    n = len(losses)
    desc = np.sort(losses)[::-1]
    var = float(np.quantile(losses, c, method="linear"))
    m = tail_size(n, c)
    if m <= 1.0:
        es = float(desc[0])
    else:
        j = int(math.floor(m))
        s = 0.0
        for x in desc[:j]:
            s += float(x)
        frac = m - j
        if frac > 0.0 and j < n:
            s += frac * float(desc[j])
        es = s / m
    return var, max(es, var)


def historical(returns):
    windows = {
        "full": returns,
        "last_250": returns[-250:],
        "last_500": returns[-500:],
        "first_1000": returns[:1000],
    }
    out = []
    for wname, r in windows.items():
        for side, pnl in (("long", r), ("short", -r)):
            losses = -pnl
            for c in CONFIDENCES:
                k, v, e, e_np = empirical(losses, c)
                lv, le = linear(losses, c)
                out.append(
                    {
                        "window": wname,
                        "side": side,
                        "n": len(pnl),
                        "confidence": c,
                        "k": k,
                        "var_empirical": v,
                        "es_empirical": e,
                        "es_numpy_mean": e_np,
                        "var_linear": lv,
                        "es_linear": le,
                        "bits": {
                            "var_empirical": bits(v),
                            "es_empirical": bits(e),
                            "var_linear": bits(lv),
                            "es_linear": bits(le),
                        },
                    }
                )
    return windows, out


def xlogy(x, y):
    return float(special.xlogy(x, y))


def kupiec(x, n, c):
    p = 1.0 - c
    phat = x / n
    ll0 = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    ll1 = xlogy(n - x, 1.0 - phat) + xlogy(x, phat)
    lr = max(-2.0 * (ll0 - ll1), 0.0)
    return lr, float(stats.chi2.sf(lr, 1))


def christoffersen(seq, c):
    seq = [int(b) for b in seq]
    n00 = n01 = n10 = n11 = 0
    for a, b in zip(seq[:-1], seq[1:]):
        if a == 0 and b == 0:
            n00 += 1
        elif a == 0 and b == 1:
            n01 += 1
        elif a == 1 and b == 0:
            n10 += 1
        else:
            n11 += 1
    pi0 = n01 / (n00 + n01) if n00 + n01 > 0 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 > 0 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    ll_restricted = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    ll_markov = (
        xlogy(n00, 1.0 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1.0 - pi1) + xlogy(n11, pi1)
    )
    lr_ind = max(-2.0 * (ll_restricted - ll_markov), 0.0)
    lr_uc, p_uc = kupiec(sum(seq), len(seq), c)
    lr_cc = lr_uc + lr_ind
    return {
        "transitions": [n00, n01, n10, n11],
        "lr_uc": lr_uc,
        "p_uc": p_uc,
        "lr_ind": lr_ind,
        "p_ind": float(stats.chi2.sf(lr_ind, 1)),
        "lr_cc": lr_cc,
        "p_cc": float(stats.chi2.sf(lr_cc, 2)),
    }


def backtests():
    rng = np.random.default_rng(20240601)
    seqs = {
        "random_p02_n250": (rng.random(250) < 0.02).astype(int).tolist(),
        "random_p01_n500": (rng.random(500) < 0.01).astype(int).tolist(),
        "clustered_n250": [1 if 100 <= i < 106 else 0 for i in range(250)],
        "zero_exceptions_n250": [0] * 250,
        "last_only_n250": [0] * 249 + [1],
        "first_only_n250": [1] + [0] * 249,
        "alternating_n40": [i % 2 for i in range(40)],
        "all_exceptions_n20": [1] * 20,
        "random_p10_n1000": (rng.random(1000) < 0.10).astype(int).tolist(),
    }
    out = []
    for name, seq in seqs.items():
        for c in (0.99, 0.95):
            row = {"name": name, "confidence": c, "exceptions": seq}
            row.update(christoffersen(seq, c))
            out.append(row)
    kup = []
    for x, n, c in [(0, 250, 0.99), (4, 250, 0.99), (5, 250, 0.99), (10, 250, 0.99),
                    (250, 250, 0.99), (3, 1000, 0.999), (60, 1000, 0.95), (1, 1, 0.99)]:
        lr, p = kupiec(x, n, c)
        kup.append({"exceptions": x, "observations": n, "confidence": c, "lr": lr, "p_value": p})
    return out, kup


def traffic_lights():
    out = []
    for n, c in [(250, 0.99), (500, 0.99), (250, 0.975), (1000, 0.99), (250, 0.95),
                 (100, 0.99), (20, 0.99), (1, 0.99), (260, 0.99)]:
        p = 1.0 - c
        cdf = [float(stats.binom.cdf(x, n, p)) for x in range(n + 1)]
        yellow = next((x for x in range(n + 1) if cdf[x] >= 0.95), n + 1)
        red = next((x for x in range(n + 1) if cdf[x] >= 0.9999), n + 1)
        out.append({"observations": n, "confidence": c, "yellow_from": yellow,
                    "red_from": red, "cdf_first_16": cdf[:16]})
    return out


def parametric():
    delta = np.array([1.5, -0.7, 2.0])
    gamma = np.array([[0.8, 0.1, -0.2], [0.1, -0.5, 0.05], [-0.2, 0.05, 0.3]])
    vols = np.array([0.02, 0.015, 0.03])
    corr = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.4], [-0.2, 0.4, 1.0]])
    cov = np.outer(vols, vols) * corr
    out = {"delta": delta.tolist(), "gamma": gamma.ravel().tolist(),
           "covariance": cov.ravel().tolist(), "cases": []}
    sigma = math.sqrt(delta @ cov @ delta)
    gs = gamma @ cov
    # Cumulants of Q = delta'x + 1/2 x'Gamma x, x ~ N(0, Sigma).
    k1 = 0.5 * np.trace(gs)
    k2 = delta @ cov @ delta + 0.5 * np.trace(gs @ gs)
    k3 = 3.0 * delta @ cov @ gamma @ cov @ delta + np.trace(gs @ gs @ gs)
    k4 = 12.0 * delta @ cov @ gs @ gs @ delta + 3.0 * np.trace(gs @ gs @ gs @ gs)
    # Loss L = -Q.
    mean, var, skew, exkurt = -k1, k2, -k3 / k2**1.5, k4 / k2**2
    for c in (0.95, 0.99, 0.999):
        z = float(stats.norm.ppf(c))
        w = (z + (z * z - 1) * skew / 6 + (z**3 - 3 * z) * exkurt / 24
             - (2 * z**3 - 5 * z) * skew**2 / 36)
        out["cases"].append({
            "confidence": c,
            "delta_normal_var": z * sigma,
            "delta_normal_es": sigma * float(stats.norm.pdf(z)) / (1 - c),
            "loss_mean": float(mean),
            "loss_std": math.sqrt(var),
            "loss_skewness": float(skew),
            "loss_excess_kurtosis": float(exkurt),
            "delta_gamma_var": float(mean + math.sqrt(var) * w),
        })
    return out


def volatility(returns, dates):
    am = arch_model(returns, mean="Zero", vol="GARCH", p=1, q=1, dist="normal")
    res = am.fit(disp="off", options={"ftol": 1e-12, "maxiter": 1000})
    params = res.params
    fc = res.forecast(horizon=10, reindex=False)
    var_fc = fc.variance.values[-1].tolist()
    sigma2 = (res.conditional_volatility ** 2).tolist()
    ewma = ZeroMean(returns, volatility=EWMAVariance(0.94))
    ewma_res = ewma.fit(disp="off")
    ewma_sigma2 = (ewma_res.conditional_volatility ** 2).tolist()
    ewma_fc = ewma_res.forecast(horizon=1, reindex=False).variance.values[-1].tolist()
    idx = list(range(0, len(returns), 97)) + [len(returns) - 1]
    return {
        "model": 'arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="normal"), r in percent',
        "omega": float(params["omega"]),
        "alpha": float(params["alpha[1]"]),
        "beta": float(params["beta[1]"]),
        "loglikelihood": float(res.loglikelihood),
        "backcast": float(am.volatility.backcast(np.asarray(returns))),
        "forecast_variance_h1_to_h10": var_fc,
        "sigma2_index": idx,
        "sigma2_at_index": [sigma2[i] for i in idx],
        "ewma_lambda": 0.94,
        "ewma_sigma2_at_index": [ewma_sigma2[i] for i in idx],
        "ewma_forecast_h1": ewma_fc[0],
    }


def main():
    prices = pd.read_csv(os.path.join(DATA, "sp500_adj_close.csv"))
    adj = prices["Adj Close"].to_numpy(dtype=float)
    returns = 100.0 * (adj[1:] / adj[:-1] - 1.0)
    assert np.all(np.isfinite(returns))
    _, hist = historical(returns)
    bt, kup = backtests()
    out = {
        "generator": "scripts/gen_measure_vectors.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "arch": arch.__version__, "pandas": pd.__version__},
        "returns": {
            "definition": "100 * (adj_close[t] / adj_close[t-1] - 1), t = 1..n",
            "count": int(len(returns)),
            "first": float(returns[0]),
            "last": float(returns[-1]),
            "sum_sequential": float(sum(float(x) for x in returns)),
            "bits_first_last_sum": [bits(returns[0]), bits(returns[-1]),
                                    bits(sum(float(x) for x in returns))],
        },
        "historical": hist,
        "christoffersen": bt,
        "kupiec": kup,
        "traffic_light": traffic_lights(),
        "parametric": parametric(),
        "garch": volatility(pd.Series(returns), prices["Date"].iloc[1:]),
    }
    path = os.path.join(DATA, "measure_vectors.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    g = out["garch"]
    print(f"wrote {path}: {len(hist)} historical rows; GARCH omega={g['omega']:.6g} "
          f"alpha={g['alpha']:.6g} beta={g['beta']:.6g} loglik={g['loglikelihood']:.10g}")


if __name__ == "__main__":
    main()
