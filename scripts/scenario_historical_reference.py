"""Reference vectors for historical scenarios (src/scenario/historical.rs).

Run from the repository root:
    python3 scripts/scenario_historical_reference.py            # numpy only
    python3 scripts/scenario_historical_reference.py --extract  # also re-extract the data (needs pandas)

--extract rebuilds tests/data/scenario_index_closes.csv from the raw copies in
/work/shared/data (PyPI `arch` 8.0.0, `arch.data.sp500.load()` and
`arch.data.nasdaq.load()`, NCSA licence): the Close column of both indices for
the last 2000 trading days (2011-01..2018-12), values unmodified.

Then, independently of the Rust code, computes with numpy:
  - h-day overlapping returns r_t = f(P[t+h] / P[t]), t = 0..T-h-1,
    f = log or (x - 1), keeping the last `lookback` windows;
  - filtered historical simulation: daily returns r_s, zero-mean EWMA
    sigma2_1 = mean(r^2), sigma2_{s+1} = lam sigma2_s + (1 - lam) r_s^2,
    sigma_today = sigma_T (after the last return), filtered r_s * sigma_today / sigma_s,
    compounded over h days (sum for log, prod(1 + r) - 1 for simple).
Writes tests/data/scenario_historical_reference.json.
"""
import csv
import json
import sys

import numpy as np

CSV = "tests/data/scenario_index_closes.csv"
OUT = "tests/data/scenario_historical_reference.json"
ROWS = 2000

if "--extract" in sys.argv:
    import pandas as pd

    sp = pd.read_csv("/work/shared/data/arch_sp500_daily.csv", dtype=str)
    nq = pd.read_csv("/work/shared/data/arch_nasdaq_daily.csv", dtype=str)
    assert (sp["Date"] == nq["Date"]).all()
    with open(CSV, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["Date", "SP500", "NASDAQ"])
        for d, a, b in list(zip(sp["Date"], sp["Close"], nq["Close"]))[-ROWS:]:
            w.writerow([d, a, b])

with open(CSV) as f:
    rows = list(csv.reader(f))[1:]
dates = [r[0] for r in rows]
prices = np.array([[float(r[1]), float(r[2])] for r in rows])  # T x 2


def returns(p, start, end, kind):
    ratio = end / start
    return np.log(ratio) if kind == "log" else ratio - 1.0


def plain(p, h, kind, lookback):
    r = returns(p, p[:-h], p[h:], kind)  # (T-h) x 2
    return r[-lookback:] if lookback else r


def filtered(p, h, kind, lam, lookback):
    out = []
    for j in range(p.shape[1]):
        x = p[:, j]
        r = returns(x, x[:-1], x[1:], kind)
        var = np.mean(r * r)
        sig = np.empty_like(r)
        for s in range(len(r)):
            sig[s] = np.sqrt(var)
            var = lam * var + (1.0 - lam) * r[s] * r[s]
        f = r * (np.sqrt(var) / sig)
        windows = np.lib.stride_tricks.sliding_window_view(f, h)
        agg = windows.sum(axis=1) if kind == "log" else np.prod(1.0 + windows, axis=1) - 1.0
        out.append(agg)
    r = np.stack(out, axis=1)
    return r[-lookback:] if lookback else r


cases = []
for name, h, kind, filt, lookback in [
    ("log_10d_lookback_1000", 10, "log", None, 1000),
    ("simple_1d_lookback_500", 1, "simple", None, 500),
    ("fhs_log_10d_lambda_0.94_lookback_500", 10, "log", 0.94, 500),
    ("fhs_simple_5d_lambda_0.97_lookback_500", 5, "simple", 0.97, 500),
]:
    r = plain(prices, h, kind, lookback) if filt is None else filtered(prices, h, kind, filt, lookback)
    first = len(prices) - h - len(r)
    cases.append(
        {
            "name": name,
            "horizon_days": h,
            "return_kind": kind,
            "ewma_lambda": filt,
            "lookback": lookback,
            "first_name": f"{dates[first]}..{dates[first + h]}",
            "last_name": f"{dates[-1 - h]}..{dates[-1]}",
            "returns": r.tolist(),  # scenario-major, columns SP500, NASDAQ
        }
    )

with open(OUT, "w") as f:
    json.dump({"source": "scripts/scenario_historical_reference.py on " + CSV, "cases": cases}, f)
for c in cases:
    print(c["name"], len(c["returns"]), c["returns"][-1])
