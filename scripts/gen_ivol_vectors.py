#!/usr/bin/env python3
"""Reference vectors for `implied_volatility` and `black_price`.

Writes tests/data/implied_vol_reference.json, read by tests/implied_vol.rs.

Run from the repository root:

    pip install mpmath numpy QuantLib
    python3 scripts/gen_ivol_vectors.py

Oracles (independent of the crate):
* mpmath at 60 significant digits (checked against 100 digits): the Black
  price F N(d1) - K N(d2) / K N(-d2) - F N(-d1) of the exact binary inputs,
  and the exact implied volatility of the price *after* rounding to f64
  (Newton in 100-digit arithmetic), so a test compares like with like.
* QuantLib (`ql.blackFormula`, `ql.blackFormulaImpliedStdDev`), an
  independent f64 implementation, on moderate inputs where its direct
  formula and Newton solver are accurate.

All numbers are written as decimal strings of the f64 value (Python repr, so
they parse back to the identical f64 with Rust's `str::parse::<f64>`).
"""

import json
import math
import os

import mpmath as mp
import numpy as np

try:
    import QuantLib as ql
except ImportError:  # QuantLib section is optional
    ql = None

DPS = 60
CHECK_DPS = 100
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "implied_vol_reference.json")


def black(forward, strike, s, kind):
    """Undiscounted Black price at the current mpmath precision (inputs exact)."""
    f, k, s = mp.mpf(forward), mp.mpf(strike), mp.mpf(s)
    d1 = mp.log(f / k) / s + s / 2
    d2 = d1 - s
    if kind == "call":
        return f * mp.ncdf(d1) - k * mp.ncdf(d2)
    return k * mp.ncdf(-d2) - f * mp.ncdf(-d1)


def vega(forward, strike, s):
    """d price / d s (same for calls and puts)."""
    f, k, s = mp.mpf(forward), mp.mpf(strike), mp.mpf(s)
    d1 = mp.log(f / k) / s + s / 2
    return f * mp.npdf(d1)


def exact_price(forward, strike, s, kind):
    """Price of the exact f64 inputs, checked for stability across precisions."""
    with mp.workdps(DPS):
        p = black(forward, strike, s, kind)
    with mp.workdps(CHECK_DPS):
        q = black(forward, strike, s, kind)
        assert q == 0 or abs(p - q) <= abs(q) * mp.mpf(10) ** (-40), (forward, strike, s, kind)
    return q


def implied_std_dev(price, forward, strike, kind, guess):
    """Exact total std dev whose Black price is the (f64) `price`."""
    with mp.workdps(CHECK_DPS):
        target = mp.mpf(price)
        s = mp.mpf(guess)
        for _ in range(200):
            step = (black(forward, strike, s, kind) - target) / vega(forward, strike, s)
            s_new = s - step
            if s_new <= 0:
                s_new = s / 2
            if abs(s_new - s) <= abs(s) * mp.mpf(10) ** (-60):
                s = s_new
                break
            s = s_new
        else:
            raise RuntimeError("mpmath Newton did not converge")
        return s


def fstr(x):
    return repr(float(x))


def implied_vol_cases():
    cases = []
    forwards = [100.0, 1.0, 65_000.0, 0.03]
    years_list = [1.0 / 365.0, 0.25, 1.0, 10.0]
    std_devs = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0, 2.0, 5.0]
    # ln(F/K) in standard deviations (scaled) ...
    scaled = [-30.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.3, 0.0, 0.3, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0]
    # ... and absolute ln(F/K) in [-10, 10].
    absolute = [-10.0, -3.0, -1.0, -0.1, 0.1, 1.0, 3.0, 10.0]
    i = 0
    for s in std_devs:
        moneyness = [k * s for k in scaled] + absolute
        for x in moneyness:
            forward = forwards[i % len(forwards)]
            years = years_list[(i // 3) % len(years_list)]
            i += 1
            strike = float(forward * math.exp(-x))
            vol = float(s / math.sqrt(years))
            for kind in ("call", "put"):
                cases.append((forward, strike, years, vol, kind))
    rng = np.random.default_rng(20_240_611)
    for _ in range(300):
        s = float(10 ** rng.uniform(-6, math.log10(5.0)))
        x = float(rng.uniform(-30, 30) * s) if rng.uniform() < 0.5 else float(rng.uniform(-10, 10))
        forward = float(10 ** rng.uniform(-3, 6))
        years = float(10 ** rng.uniform(-3, 1.5))
        strike = float(forward * math.exp(-x))
        vol = float(s / math.sqrt(years))
        kind = "call" if rng.uniform() < 0.5 else "put"
        cases.append((forward, strike, years, vol, kind))

    out = []
    for forward, strike, years, vol, kind in cases:
        if abs(math.log(forward / strike)) / (vol * math.sqrt(years)) > 40.0:
            continue  # time value below 1e-300 of the forward: not invertible in f64
        with mp.workdps(CHECK_DPS):
            s_exact = mp.mpf(vol) * mp.sqrt(mp.mpf(years))
        p_exact = exact_price(forward, strike, s_exact, kind)
        price = float(p_exact)
        upper = forward if kind == "call" else strike
        intrinsic = max(forward - strike, 0.0) if kind == "call" else max(strike - forward, 0.0)
        # Only prices a caller can invert: strictly inside the f64 bounds and
        # normal (not subnormal) in their time value.
        if not (price > intrinsic and price < upper):
            continue
        if price - intrinsic < 1e-300 * math.sqrt(forward) * math.sqrt(strike):
            continue
        # Deep in the money the f64 price may keep no digit of the time value;
        # keep cases whose time value survives the rounding to 1e-3 relative.
        with mp.workdps(CHECK_DPS):
            f_mp, k_mp = mp.mpf(forward), mp.mpf(strike)
            exact_intrinsic = max(f_mp - k_mp, 0) if kind == "call" else max(k_mp - f_mp, 0)
            if abs(mp.mpf(price) - p_exact) > mp.mpf("1e-3") * (p_exact - exact_intrinsic):
                continue
        s_of_price = implied_std_dev(price, forward, strike, kind, s_exact)
        with mp.workdps(CHECK_DPS):
            vol_of_price = s_of_price / mp.sqrt(mp.mpf(years))
            # Conditioning of vol on the price: price / (s dprice/ds).
            inverse_elasticity = mp.mpf(price) / (s_of_price * vega(forward, strike, s_of_price))
        out.append(
            {
                "forward": fstr(forward),
                "strike": fstr(strike),
                "years": fstr(years),
                "kind": kind,
                "vol": fstr(vol),
                "price": fstr(price),
                "vol_of_price": fstr(vol_of_price),
                "inverse_elasticity": "%.6e" % float(inverse_elasticity),
            }
        )
    return out


def black_price_cases():
    out = []
    forwards = [100.0, 1.0, 65_000.0]
    i = 0
    for s in [1e-6, 1e-4, 1e-2, 0.1, 0.5, 1.0, 3.0, 10.0]:
        for k in [-38.0, -30.0, -20.0, -12.0, -10.0, -8.0, -5.0, -2.0, -1.0, -0.2, 0.0, 0.2, 1.0, 5.0, 12.0, 30.0]:
            forward = forwards[i % len(forwards)]
            i += 1
            strike = float(forward * math.exp(-k * s))
            for kind in ("call", "put"):
                price = exact_price(forward, strike, s, kind)
                if float(price) < 1e-300:
                    continue
                out.append(
                    {
                        "forward": fstr(forward),
                        "strike": fstr(strike),
                        "total_std_dev": fstr(s),
                        "kind": kind,
                        "price": fstr(price),
                    }
                )
    return out


def quantlib_cases():
    if ql is None:
        print("QuantLib not installed: quantlib_cases left empty")
        return []
    out = []
    rng = np.random.default_rng(7)
    for _ in range(200):
        s = float(rng.uniform(0.05, 2.0))
        h = float(rng.uniform(-4.0, 4.0))
        forward = float(10 ** rng.uniform(-2, 5))
        strike = float(forward * math.exp(-h * s))
        kind = "call" if rng.uniform() < 0.5 else "put"
        option_type = ql.Option.Call if kind == "call" else ql.Option.Put
        price = ql.blackFormula(option_type, strike, forward, s, 1.0)
        implied = ql.blackFormulaImpliedStdDev(option_type, strike, forward, price, 1.0, 0.0, 0.5, 1e-14, 200)
        out.append(
            {
                "forward": fstr(forward),
                "strike": fstr(strike),
                "total_std_dev": fstr(s),
                "kind": kind,
                "price": fstr(price),
                "implied_std_dev": fstr(implied),
            }
        )
    return out


def main():
    data = {
        "generator": "scripts/gen_ivol_vectors.py",
        "mpmath_version": mp.__version__,
        "quantlib_version": ql.__version__ if ql is not None else None,
        "implied_vol_cases": implied_vol_cases(),
        "black_price_cases": black_price_cases(),
        "quantlib_cases": quantlib_cases(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(data, f, indent=0)
        f.write("\n")
    print(
        "wrote %d implied-vol, %d black-price, %d QuantLib cases to %s"
        % (
            len(data["implied_vol_cases"]),
            len(data["black_price_cases"]),
            len(data["quantlib_cases"]),
            os.path.normpath(OUT),
        )
    )


if __name__ == "__main__":
    main()
