//! Branch-free `exp` and `ln` for the batch kernels.
//!
//! `std`'s `exp`/`ln` are calls into the platform's libm, which stop the
//! compiler from vectorising a loop. These versions are straight-line
//! arithmetic and bit manipulation (selects, no branches, no calls), so a
//! loop over a slice compiles to SIMD code. Accuracy: within 2 ulp of the
//! correctly rounded result over the domain documented on each function
//! (tested against `std` in this module's tests).
//!
//! Each comes in two instantiations: `FMA = false` uses only `+ - * /` and
//! bit operations; `FMA = true` evaluates the polynomial steps with fused
//! multiply-add, for code compiled with the `fma` target feature (it would
//! call a slow software `fma` elsewhere). Within one instantiation results
//! are bit-identical whatever SIMD width the loop is compiled for.

/// `a * b + c`, fused (one rounding) when `FMA`.
#[inline(always)]
pub fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `1.5 * 2^52`: adding it rounds a float of magnitude < 2^51 to an integer
/// held in the low mantissa bits.
const ROUNDING_MAGIC: f64 = 6_755_399_441_055_744.0;
/// `2^52`, whose bit pattern plus a small integer `i` is `2^52 + i`.
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// Coefficients of `P` in `e^r = 1 + r + r^2 P(r)`, low to high
/// (`scripts/fit_fast_exp.py`).
const EXP_P: [f64; 10] = [
    0.500_000_000_000_001_2,
    0.166_666_666_666_664_83,
    0.041_666_666_666_516_32,
    0.008_333_333_333_451_433,
    0.001_388_888_894_667_882_8,
    0.000_198_412_695_971_189_04,
    2.480_149_034_623_507e-5,
    2.755_750_728_541_229e-6,
    2.763_112_544_622_620_5e-7,
    2.502_464_520_964_93e-8,
];
/// Coefficients of `Q` in `ln`'s `R(z) = z Q(z)`, low to high
/// (`scripts/fit_fast_ln.py`).
const LN_Q: [f64; 7] = [
    0.666666666666667,
    0.39999999999899005,
    0.28571428626173057,
    0.2222221110612709,
    0.1818289100504977,
    0.15331664799306263,
    0.14617093237558204,
];
/// Below this, `exp` is flushed to zero (subnormal results are not produced).
pub const EXP_UNDERFLOW: f64 = -708.3;
/// Above this, `exp` saturates at `exp(EXP_OVERFLOW)`.
pub const EXP_OVERFLOW: f64 = 709.0;

/// `e^x`. Domain: any `x`; results below `e^-708.3` flush to `0`, inputs
/// above 709 saturate (`~8.2e307`). NaN propagates.
#[inline(always)]
#[cfg_attr(not(test), allow(dead_code))]
pub fn exp(x: f64) -> f64 {
    exp_with::<false>(x)
}

/// [`exp`], with fused multiply-add when `FMA`.
#[inline(always)]
pub fn exp_with<const FMA: bool>(x: f64) -> f64 {
    let xc = x.clamp(EXP_UNDERFLOW, EXP_OVERFLOW);
    // k = round(x / ln 2), as a float and in the low bits of `shifted`.
    let shifted = xc * INV_LN2 + ROUNDING_MAGIC;
    let k = shifted - ROUNDING_MAGIC;
    // Cody-Waite reduction: r = x - k ln2 exactly enough, |r| <= ln2 / 2.
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    // e^r = 1 + r + r^2 P(r), P of degree 9 fitted for relative error on
    // |r| <= ln2/2 (scripts/fit_fast_exp.py: 1.3e-16 in double).
    let p = EXP_P[9];
    let p = madd::<FMA>(p, r, EXP_P[8]);
    let p = madd::<FMA>(p, r, EXP_P[7]);
    let p = madd::<FMA>(p, r, EXP_P[6]);
    let p = madd::<FMA>(p, r, EXP_P[5]);
    let p = madd::<FMA>(p, r, EXP_P[4]);
    let p = madd::<FMA>(p, r, EXP_P[3]);
    let p = madd::<FMA>(p, r, EXP_P[2]);
    let p = madd::<FMA>(p, r, EXP_P[1]);
    let p = madd::<FMA>(p, r, EXP_P[0]);
    // e^r = 1 + r + r^2 p, summed small-to-large.
    let er = 1.0 + (r + r * r * p);
    // 2^k from the integer in `shifted`'s low bits.
    let k_int = shifted.to_bits().wrapping_sub(ROUNDING_MAGIC.to_bits());
    let scale = f64::from_bits(k_int.wrapping_add(1023) << 52);
    let y = er * scale;
    if x < EXP_UNDERFLOW { 0.0 } else { y }
}

/// Natural logarithm. Domain: positive, normal (not subnormal), finite `x`;
/// other inputs give unspecified finite or non-finite values, so callers
/// validate first.
#[inline(always)]
#[cfg_attr(not(test), allow(dead_code))]
pub fn ln(x: f64) -> f64 {
    ln_with::<false>(x)
}

/// [`ln`], with fused multiply-add when `FMA`.
#[inline(always)]
pub fn ln_with<const FMA: bool>(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent_field = (bits >> 52) & 0x7ff;
    // Mantissa scaled into [1, 2).
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    // Exponent as a float without an int-to-float conversion instruction.
    let e = f64::from_bits(TWO_POW_52.to_bits() | exponent_field) - TWO_POW_52 - 1023.0;
    let e = if big { e + 1.0 } else { e };
    // ln(1 + f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.1716.
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // R(z) = 2 (atanh(s)/s - 1) = z Q(z), Q of degree 6 fitted on the
    // range of z (scripts/fit_fast_ln.py: 1.9e-16 relative for ln in double).
    let q = LN_Q[6];
    let q = madd::<FMA>(q, z, LN_Q[5]);
    let q = madd::<FMA>(q, z, LN_Q[4]);
    let q = madd::<FMA>(q, z, LN_Q[3]);
    let q = madd::<FMA>(q, z, LN_Q[2]);
    let q = madd::<FMA>(q, z, LN_Q[1]);
    let q = madd::<FMA>(q, z, LN_Q[0]);
    let r = z * q;
    let hfsq = 0.5 * f * f;
    // ln(1 + f) = f - (hfsq - s (hfsq + R)) (fdlibm's arrangement).
    e * LN2_HI + (f - (hfsq - (s * (hfsq + r) + e * LN2_LO)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        if a == b {
            return 0.0;
        }
        let spacing = f64::from_bits(b.abs().to_bits() + 1) - b.abs();
        (a - b).abs() / spacing
    }

    #[test]
    fn exp_within_two_ulp_of_std() {
        let mut worst: f64 = 0.0;
        let n = 200_000;
        for i in 0..=n {
            let x = -708.0 + 1417.0 * f64::from(i) / f64::from(n);
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        for i in 0..=n {
            let x = -2.0 + 4.0 * f64::from(i) / f64::from(n);
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        assert!(worst <= 2.0, "worst exp error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-800.0), 0.0);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn ln_within_two_ulp_of_std() {
        let mut worst: f64 = 0.0;
        let n = 200_000;
        for i in 0..=n {
            let x = (-700.0 + 1400.0 * f64::from(i) / f64::from(n)).exp();
            worst = worst.max(ulps(ln(x), x.ln()));
            let y = 0.5 + 1.5 * f64::from(i) / f64::from(n);
            worst = worst.max(ulps(ln(y), y.ln()));
        }
        assert!(worst <= 2.0, "worst ln error {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(f64::MAX), f64::MAX.ln());
    }
}
