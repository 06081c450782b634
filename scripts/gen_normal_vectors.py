#!/usr/bin/env python3
"""Reference vectors for src/math/normal.rs (erf, erfc, erfcx, norm_pdf,
norm_cdf, inverse_norm_cdf), computed with mpmath at 50 significant digits.

Run from the repository root:

    pip install mpmath          # 1.3 used
    python3 scripts/gen_normal_vectors.py

It writes tests/data/normal_reference.json, read by tests/normal_reference.rs.
Every input is an exact f64, and the reference is the exact function value
at that f64. All numbers are JSON strings, so that the test parses them with
Rust's correctly rounded `str::parse::<f64>` (serde_json's default float
parser is not guaranteed to round correctly). Per row:

    "x" or "p": the input, repr of the f64 (round-trips exactly),
    "value":    the reference to 25 significant digits (for humans),
    "hi":       repr of the f64 nearest the reference,
    "lo":       repr of the f64 nearest (reference - hi),

so the test can measure errors to a small fraction of an ulp
(error = (got - hi) - lo, exact for got within a few ulp of hi).
The output is deterministic (fixed seed, no timestamps).
"""

import json
import math
import os
import random

import mpmath as mp

mp.mp.dps = 50

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                   "normal_reference.json")

TINY = mp.mpf(2) ** -1075  # half the smallest subnormal: below it f64 rounds to 0


def split(v):
    """(value string, hi, lo) for an mpf reference value."""
    v = mp.mpf(v)
    if abs(v) < TINY:
        return mp.nstr(v, 25), 0.0, 0.0
    hi = float(v)  # mpmath rounds to nearest
    lo = float(v - mp.mpf(hi))
    return mp.nstr(v, 25, min_fixed=-5, max_fixed=5), hi, lo


def ncdf(x):
    return mp.ncdf(mp.mpf(x))


def npdf(x):
    return mp.npdf(mp.mpf(x))


def erfc(x):
    return mp.erfc(mp.mpf(x))


def erf(x):
    return mp.erf(mp.mpf(x))


def erfcx_asymptotic(x):
    """1/(x sqrt(pi)) * sum_n (-1)^n (2n-1)!! / (2x^2)^n, to 50 digits (x >= 1e3)."""
    x = mp.mpf(x)
    term = mp.mpf(1)
    total = mp.mpf(1)
    n = 0
    while abs(term) > mp.mpf(10) ** -55:
        n += 1
        term *= -(2 * n - 1) / (2 * x * x)
        total += term
    return total / (x * mp.sqrt(mp.pi))


def erfcx(x):
    x = mp.mpf(x)
    if x >= 1000:
        return erfcx_asymptotic(x)
    return mp.exp(x * x) * mp.erfc(x)


def quantile(p):
    """Phi^{-1}(p) for an exact f64 p, by Newton's method at 50 digits."""
    p = mp.mpf(p)
    if p == mp.mpf("0.5"):
        return mp.mpf(0)
    # Start from an asymptotic/series guess good enough for Newton.
    if p < mp.mpf("0.5"):
        t = mp.sqrt(-2 * mp.log(p))
        x = -(t - (mp.mpf("2.515517") + mp.mpf("0.802853") * t + mp.mpf("0.010328") * t * t)
              / (1 + mp.mpf("1.432788") * t + mp.mpf("0.189269") * t * t
                 + mp.mpf("0.001308") * t ** 3))
        f = lambda z: mp.ncdf(z) - p  # noqa: E731
    else:
        q = 1 - p
        t = mp.sqrt(-2 * mp.log(q))
        x = (t - (mp.mpf("2.515517") + mp.mpf("0.802853") * t + mp.mpf("0.010328") * t * t)
             / (1 + mp.mpf("1.432788") * t + mp.mpf("0.189269") * t * t
                + mp.mpf("0.001308") * t ** 3))
        f = lambda z: q - mp.ncdf(-z)  # noqa: E731
    for _ in range(200):
        step = f(x) / mp.npdf(x)
        x -= step
        if abs(step) <= abs(x) * mp.mpf(10) ** -45:
            break
    else:
        raise RuntimeError(f"Newton did not converge for p={p}")
    return x


def neighbours(x, k=2):
    """x and its k nearest f64 neighbours on each side."""
    out = [x]
    lo = hi = x
    for _ in range(k):
        lo = math.nextafter(lo, -math.inf)
        hi = math.nextafter(hi, math.inf)
        out += [lo, hi]
    return out


def grid(a, b, step):
    n = int(round((b - a) / step))
    return [round(a + i * step, 10) for i in range(n + 1)]


def cases(xs, fn):
    rows = []
    for x in sorted(set(float(v) for v in xs)):
        value, hi, lo = split(fn(x))
        rows.append({"x": repr(x), "value": value, "hi": repr(hi), "lo": repr(lo)})
    return rows


def main():
    rng = random.Random(20261125)
    sqrt2 = math.sqrt(2.0)

    # --- norm_cdf on [-38.5, 9]: dense in the lower tail -------------------
    cdf_x = grid(-38.5, -30.0, 0.125) + grid(-30.0, -6.0, 0.25) + grid(-6.0, 9.0, 0.125)
    cdf_x += [-37.0, -37.5, -37.519, -37.52, -38.0, -38.4, -38.48, 0.0, 1e-300, -1e-300,
              1e-17, -1e-17, 1e-8, -1e-8, 0.67448975, -0.67448975, 0.6744897501960817,
              -0.6744897501960817, 8.2923610751, 8.572, 9.0]
    for b in [0.46875, 0.46875 * sqrt2, 0.66291, 4.0, 4.0 * sqrt2, 5.656854, 5.656854248,
              math.sqrt(32.0), 1.0, 2.0]:
        cdf_x += neighbours(b) + [-v for v in neighbours(b)]
    cdf_x += [rng.uniform(-38.5, 9.0) for _ in range(120)]
    cdf_x += [rng.uniform(-1.0, 1.0) for _ in range(30)]
    norm_cdf = cases(cdf_x, ncdf)

    # --- norm_pdf -----------------------------------------------------------
    pdf_x = grid(-38.5, 38.5, 0.5) + [0.0, 1e-300, 1e-8, 0.66291, 5.656854248, 37.5, 38.0,
                                      38.5, 38.58]
    pdf_x += [rng.uniform(-38.5, 38.5) for _ in range(80)]
    norm_pdf = cases(pdf_x, npdf)

    # --- erfc / erfcx on [-6, 27] and large x -------------------------------
    e_x = grid(-6.0, 27.0, 0.125) + [26.543, 26.5, 27.0, 27.2, 1e-300, 1e-17, -1e-17]
    for b in [0.46875, 4.0, 0.5, 2.0]:
        e_x += neighbours(b) + [-v for v in neighbours(b)]
    e_x += [rng.uniform(-6.0, 27.0) for _ in range(80)]
    erfc_rows = cases(e_x, erfc)
    ex_x = e_x + [-26.0, -26.5, -26.62, 30.0, 50.0, 100.0, 1e3, 1e4, 1e5, 1e6, 6.71e7,
                  1e8, 1e10, 1e100, 1e300]
    erfcx_rows = cases(ex_x, erfcx)

    # --- erf on [-6, 6] -----------------------------------------------------
    erf_x = grid(-6.0, 6.0, 0.125) + [1e-300, -1e-300, 1e-17, 1e-9, 0.1]
    for b in [0.46875, 4.0]:
        erf_x += neighbours(b) + [-v for v in neighbours(b)]
    erf_x += [rng.uniform(-6.0, 6.0) for _ in range(40)]
    erf_rows = cases(erf_x, erf)

    # --- inverse_norm_cdf on p in [1e-300, 1 - 1e-16] -----------------------
    ps = [10.0 ** -k for k in range(1, 301)]
    ps += [2.0 ** -k for k in range(1, 60)]
    ps += [1.0 - 10.0 ** -k for k in range(1, 17)]
    ps += [0.5, 0.025, 0.975, 0.075, 0.925, 0.05, 0.95, 0.01, 0.99, 0.001, 0.999,
           0.3, 0.7, 0.25, 0.75, 0.4999, 0.5001, 0.1, 0.9, 1e-10, 1.0 - 1e-10,
           1.0 - 2.0 ** -53, 2.2250738585072014e-308]
    for b in [0.075, 0.925, math.exp(-25.0)]:  # AS241 split points: |q| = 0.425, r = 5
        ps += neighbours(b)
    ps += [rng.uniform(0.0, 1.0) for _ in range(60)]
    ps += [10.0 ** rng.uniform(-300.0, -1.0) for _ in range(60)]
    ps = [p for p in ps if 0.0 < p < 1.0]
    inverse = []
    for p in sorted(set(ps)):
        value, hi, lo = split(quantile(p))
        inverse.append({"p": repr(p), "value": value, "hi": repr(hi), "lo": repr(lo)})

    data = {
        "source": "mpmath " + mp.__version__ + " at 50 digits; scripts/gen_normal_vectors.py",
        "norm_cdf": norm_cdf,
        "norm_pdf": norm_pdf,
        "erf": erf_rows,
        "erfc": erfc_rows,
        "erfcx": erfcx_rows,
        "inverse_norm_cdf": inverse,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # One row per line: small diffs when the vectors are regenerated.
    with open(OUT, "w") as fh:
        fh.write("{\n")
        fh.write(f'"source": {json.dumps(data.pop("source"))},\n')
        blocks = []
        for name, rows in data.items():
            lines = ",\n".join(json.dumps(r) for r in rows)
            blocks.append(f'"{name}": [\n{lines}\n]')
        fh.write(",\n".join(blocks))
        fh.write("\n}\n")
    counts = {k: len(v) for k, v in data.items()}
    print(f"wrote {os.path.normpath(OUT)}: {counts}")


if __name__ == "__main__":
    main()
