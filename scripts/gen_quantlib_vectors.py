#!/usr/bin/env python3
"""Independent reference values for the Black-Scholes-Merton / Black-76 kernel.

Writes tests/data/quantlib_vectors.json, read by tests/quantlib_vectors.rs.

How to run (from the repository root; Python 3.11):

    pip install QuantLib==1.44 mpmath==1.3.0
    python3 scripts/gen_quantlib_vectors.py

Each case is priced twice, independently:

* QuantLib (1.44): BSM cases with VanillaOption + AnalyticEuropeanEngine on a
  BlackScholesMertonProcess (flat continuously compounded rate and dividend
  curves, flat BlackConstantVol, Actual365Fixed, maturity an integer number
  of days after the evaluation date, so T = days/365 exactly); Black-76
  cases with ql.BlackCalculator(type, strike, forward, vol sqrt(T), e^{-rT}):
  value, deltaForward, gammaForward, vega(T), theta(F, T). Passing the
  forward as the "spot" makes BlackCalculator's theta hold the forward
  fixed (its ln(F/S) term vanishes), which is the kernel's Black-76
  convention. QuantLib's theta is per year and is dV/dt (calendar time
  passing), the kernel's convention: no conversion. QuantLib's Black-76 rho
  (spot fixed) is not the kernel's (forward fixed, -T V), so Black-76 rho
  comes from mpmath only.
* mpmath at 50 significant digits: all nine from the closed forms (Haug
  2007), each checked against mpmath.diff of the 50-digit price as a
  function of underlying, years, vol and rate (theta = -dV/dT, charm =
  -d2V/dU dT) to 1e-20 relative, or 1e-30 of the option's size for Greeks
  tiny against it (where diff, accurate to ~50 digits of the price, is not
  relatively accurate but the closed form is).

The script also checks QuantLib against mpmath and prints the worst relative
disagreement per Greek (with the floor the Rust test uses).

Inputs are drawn from numpy's PCG64 with a fixed seed and rounded to a few
significant digits, so the JSON decimals parse to the exact doubles priced
here. T is the double days/365.0, as the Rust test computes it.
"""

import json
import math
import os
import sys

import mpmath as mp
import numpy as np
import QuantLib as ql

SEED = 20_261_125
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "quantlib_vectors.json")
GREEKS = ["value", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga", "charm"]
# Number of underlying-price derivatives in each Greek (for the floor).
SPOT_ORDER = {"value": 0, "delta": 1, "gamma": 2, "vega": 0, "theta": 0, "rho": 0,
              "vanna": 1, "volga": 0, "charm": 1}
REL_TOL = 1e-12
FLOOR = 1e-12
mp.mp.dps = 50


def rounded(x, digits):
    """x rounded to `digits` significant digits (exact as a short decimal)."""
    return float(f"{x:.{digits - 1}e}")


# ---------------------------------------------------------------------------
# Cases

def draw_cases():
    rng = np.random.Generator(np.random.PCG64(SEED))
    cases = []

    def case(group, kind, model, underlying, strike, days, vol, rate, carry):
        cases.append({
            "id": f"{group}-{len(cases):03d}",
            "kind": kind,
            "model": model,
            "underlying": rounded(underlying, 6),
            "strike": rounded(strike, 6),
            "days": int(days),
            "vol": rounded(vol, 4),
            "rate": rounded(rate, 4),
            "carry_yield": rounded(carry, 4) if model == "black_scholes_merton" else 0.0,
        })

    def common():
        kind = ["call", "put"][rng.integers(2)]
        model = ["black_scholes_merton", "black76"][rng.integers(2)]
        underlying = math.exp(rng.uniform(math.log(1.0), math.log(1e5)))
        rate = rng.uniform(-0.05, 0.2)
        carry = rng.uniform(-0.05, 0.2)
        return kind, model, underlying, rate, carry

    # 120 general cases: 1 day to 5 years, moneyness e^[-1.5, 1.5], vol 5%..200%.
    for _ in range(120):
        kind, model, s, r, q = common()
        days = round(math.exp(rng.uniform(0.0, math.log(1825.0))))
        vol = math.exp(rng.uniform(math.log(0.05), math.log(2.0)))
        k = s * math.exp(-rng.uniform(-1.5, 1.5))
        case("general", kind, model, s, k, days, vol, r, q)
    # 40 short expiries: 1, 2 or 7 days, strikes within 3 standard deviations.
    for _ in range(40):
        kind, model, s, r, q = common()
        days = [1, 2, 7][rng.integers(3)]
        vol = math.exp(rng.uniform(math.log(0.05), math.log(3.0)))
        sd = vol * math.sqrt(days / 365.0)
        k = s * math.exp(-rng.uniform(-3.0, 3.0) * sd)
        case("short", kind, model, s, k, days, vol, r, q)
    # 40 deep in or out of the money: |ln(F/K)| of 4 to 8 standard deviations.
    for _ in range(40):
        kind, model, s, r, q = common()
        days = round(math.exp(rng.uniform(0.0, math.log(1825.0))))
        vol = math.exp(rng.uniform(math.log(0.05), math.log(1.0)))
        sd = vol * math.sqrt(days / 365.0)
        sign = [-1.0, 1.0][rng.integers(2)]
        k = s * math.exp(-sign * rng.uniform(4.0, 8.0) * sd)
        case("deep", kind, model, s, k, days, vol, r, q)
    return cases


# ---------------------------------------------------------------------------
# mpmath

def mp_price(kind, model, u, k, t, vol, r, q):
    """Kernel value: BSM on the spot u with yield q, or Black-76 on the forward u."""
    phi = 1 if kind == "call" else -1
    sd = vol * mp.sqrt(t)
    if model == "black_scholes_merton":
        u_carry = u * mp.exp(-q * t)
    else:
        u_carry = u * mp.exp(-r * t)
    k_df = k * mp.exp(-r * t)
    # d1 from the carried underlying and discounted strike (the same as
    # ln(F/K)/sd + sd/2 with F = u_carry / df).
    d1 = mp.log(u_carry / k_df) / sd + sd / 2
    d2 = d1 - sd
    return phi * (u_carry * mp.ncdf(phi * d1) - k_df * mp.ncdf(phi * d2))


def mp_greeks(c):
    """All nine from the closed forms, each checked against mpmath.diff."""
    kind, model = c["kind"], c["model"]
    u, k = mp.mpf(c["underlying"]), mp.mpf(c["strike"])
    t = mp.mpf(c["days"] / 365.0)
    vol, r, q = mp.mpf(c["vol"]), mp.mpf(c["rate"]), mp.mpf(c["carry_yield"])

    # Closed forms (Haug 2007, ch. 1-2): cost of carry b = r - q (BSM) or 0
    # (Black-76 on the forward).
    phi = 1 if kind == "call" else -1
    b = r - q if model == "black_scholes_merton" else mp.mpf(0)
    sd = vol * mp.sqrt(t)
    d1 = (mp.log(u / k) + b * t) / sd + sd / 2
    d2 = d1 - sd
    carry_df, df = mp.exp((b - r) * t), mp.exp(-r * t)
    pdf1, cdf1, cdf2 = mp.npdf(d1), mp.ncdf(phi * d1), mp.ncdf(phi * d2)
    value = phi * (u * carry_df * cdf1 - k * df * cdf2)
    vega = u * carry_df * pdf1 * mp.sqrt(t)
    closed = {
        "value": value,
        "delta": phi * carry_df * cdf1,
        "gamma": carry_df * pdf1 / (u * sd),
        "vega": vega,
        "theta": (-u * carry_df * pdf1 * vol / (2 * mp.sqrt(t))
                  - phi * (b - r) * u * carry_df * cdf1
                  - phi * r * k * df * cdf2),
        "rho": phi * t * k * df * cdf2 if model == "black_scholes_merton" else -t * value,
        "vanna": -carry_df * pdf1 * d2 / vol,
        "volga": vega * d1 * d2 / vol,
        "charm": -carry_df * (phi * (b - r) * cdf1 + pdf1 * (b / sd - d2 / (2 * t))),
    }

    # Independent check: derivatives of the price function itself (spot or
    # forward, years, vol, rate as variables; theta = -dV/dT, charm =
    # -d2V/dU dT). mpmath.diff is accurate to ~dps digits of the price's
    # scale, not of a tiny Greek, hence the floor far below double precision.
    def f(u_, t_, vol_, r_):
        return mp_price(kind, model, u_, k, t_, vol_, r_, q)

    x = (u, t, vol, r)
    orders = {
        "value": (0, 0, 0, 0), "delta": (1, 0, 0, 0), "gamma": (2, 0, 0, 0),
        "vega": (0, 0, 1, 0), "theta": (0, 1, 0, 0), "rho": (0, 0, 0, 1),
        "vanna": (1, 0, 1, 0), "volga": (0, 0, 2, 0), "charm": (1, 1, 0, 0),
    }
    sign = {"theta": -1, "charm": -1}
    size = (u + k) / min(t, 1) ** 2
    for name, value in closed.items():
        diff = sign.get(name, 1) * mp.diff(f, x, orders[name])
        tol = mp.mpf(10) ** -20 * abs(value) + mp.mpf(10) ** -30 * size * u ** -SPOT_ORDER[name]
        if abs(value - diff) > tol:
            sys.exit(f"{c['id']}: {name} closed form {value} != mpmath.diff {diff}")
    return closed


# ---------------------------------------------------------------------------
# QuantLib

def ql_greeks(c):
    days, t = c["days"], c["days"] / 365.0
    kind = ql.Option.Call if c["kind"] == "call" else ql.Option.Put
    u, k, vol, r, q = c["underlying"], c["strike"], c["vol"], c["rate"], c["carry_yield"]
    if c["model"] == "black76":
        payoff = ql.PlainVanillaPayoff(kind, k)
        calc = ql.BlackCalculator(payoff, u, vol * math.sqrt(t), math.exp(-r * t))
        return {
            "value": calc.value(),
            "delta": calc.deltaForward(),
            "gamma": calc.gammaForward(),
            "vega": calc.vega(t),
            "theta": calc.theta(u, t),
        }
    today = ql.Date(25, 11, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    maturity = today + days
    assert dc.yearFraction(today, maturity) == t
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(u)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc, ql.Continuous)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc, ql.Continuous)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )
    option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, k), ql.EuropeanExercise(maturity))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return {
        "value": option.NPV(),
        "delta": option.delta(),
        "gamma": option.gamma(),
        "vega": option.vega(),
        "theta": option.theta(),
        "rho": option.rho(),
    }


def floor(name, underlying):
    return FLOOR * underlying ** (1 - SPOT_ORDER[name])


def main():
    cases = draw_cases()
    worst = {}
    for c in cases:
        exact = mp_greeks(c)
        c["mpmath"] = {name: float(value) for name, value in exact.items()}
        c["quantlib"] = ql_greeks(c)
        for name, value in c["quantlib"].items():
            err = abs(mp.mpf(value) - exact[name])
            rel = float(err / max(abs(exact[name]), mp.mpf(floor(name, c["underlying"]) / REL_TOL)))
            if rel > worst.get(name, (0.0, ""))[0]:
                worst[name] = (rel, c["id"])
    print(f"{len(cases)} cases; QuantLib vs mpmath, worst relative error (floor {FLOOR} x U^(1-n)):")
    for name in GREEKS:
        if name in worst:
            print(f"  {name:6} {worst[name][0]:.3e}  ({worst[name][1]})")
    bad = [n for n, (rel, _) in worst.items() if rel > REL_TOL]
    if bad:
        sys.exit(f"QuantLib and mpmath disagree beyond {REL_TOL}: {bad}")
    data = {
        "meta": {
            "generator": "scripts/gen_quantlib_vectors.py",
            "seed": SEED,
            "quantlib_version": ql.__version__,
            "mpmath_version": mp.__version__,
            "mpmath_digits": mp.mp.dps,
            "years": "days / 365.0 (Actual365Fixed)",
            "underlying": "spot for black_scholes_merton, forward for black76 (carry_yield unused)",
            "units": {
                "vega": "per 1.00 vol",
                "theta": "per year, dV/dt (calendar time passing): -dV/dT",
                "rho": "per 1.00 rate; BSM: spot and carry yield fixed; Black-76: forward fixed (-T V)",
                "vanna": "d2V/dU dvol",
                "volga": "d2V/dvol2",
                "charm": "d(delta)/dt = -d2V/dU dT",
            },
            "quantlib_fields": "value, delta, gamma, vega, theta, rho (BSM); value, delta, gamma, vega, theta (Black-76)",
            "mpmath_fields": "all nine from 50-digit closed forms, each checked against mpmath.diff of the 50-digit price",
        },
        "cases": cases,
    }
    with open(OUT, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
