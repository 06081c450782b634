//! The Black-Scholes-Merton / Black-76 kernel: price and every Greek of one
//! European option from validated inputs, with no lookups and no allocation.
//!
//! Formulas: the generalised Black-Scholes-Merton model with cost of carry
//! `b` (Haug, *The Complete Guide to Option Pricing Formulas*, 2nd ed., 2007,
//! ch. 1 and 2; Merton 1973). `b = r - q` prices off spot; Black-76 is the
//! same formula on the forward with `b = 0` (Black 1976).

use crate::error::{Error, Result};
use crate::greeks::Greeks;
use crate::instrument::{OptionKind, OptionModel};
use crate::math::{norm_cdf, norm_pdf};

/// Largest accepted volatility (1000% a year).
pub const MAX_VOLATILITY: f64 = 10.0;
/// Largest accepted time to expiry (100 years).
pub const MAX_YEARS: f64 = 100.0;
/// Smallest accepted volatility (0.01% a year): below it the Greeks of an
/// at-the-money option near expiry are no longer representable.
pub const MIN_VOLATILITY: f64 = 1e-4;
/// Smallest accepted time to expiry: one millisecond, in years.
pub const MIN_YEARS: f64 = 1.0 / crate::units::MILLIS_PER_YEAR;
/// Smallest accepted underlying price or strike.
pub const MIN_PRICE: f64 = 1e-12;
/// Largest accepted underlying price or strike.
pub const MAX_PRICE: f64 = 1e15;
/// Largest accepted size of a rate or carry yield (100% a year).
pub const MAX_ABS_RATE: f64 = 1.0;

/// Validated inputs of one option valuation.
///
/// `underlying` is the spot for [`OptionModel::BlackScholesMerton`] and the
/// forward for [`OptionModel::Black76`].
///
/// ```
/// use portfolio_margin::{BsInputs, OptionKind, OptionModel, black_scholes};
/// // Haug (2007) p. 2: call, S = 60, K = 65, T = 0.25, r = 8%, q = 0, vol 30%: 2.1334.
/// let inputs = BsInputs::new(OptionKind::Call, OptionModel::BlackScholesMerton, 60.0, 65.0, 0.25, 0.30, 0.08, 0.0)?;
/// let g = black_scholes(&inputs);
/// assert!((g.value - 2.1334).abs() < 1e-4);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BsInputs {
    kind: OptionKind,
    model: OptionModel,
    underlying: f64,
    strike: f64,
    years: f64,
    vol: f64,
    rate: f64,
    carry_yield: f64,
}

impl BsInputs {
    /// Validates one option's inputs.
    ///
    /// # Units
    /// `underlying` and `strike` in the quote currency; `years` a year
    /// fraction; `vol`, `rate`, `carry_yield` annual decimals, continuously
    /// compounded. `carry_yield` is ignored by Black-76 (the forward carries it).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the input unless `underlying` and
    /// `strike` are within [`MIN_PRICE`]..[`MAX_PRICE`], `years` within
    /// [`MIN_YEARS`] (1 ms)..[`MAX_YEARS`], `vol` within
    /// [`MIN_VOLATILITY`]..[`MAX_VOLATILITY`], and both rates within
    /// `[-1, 1]`. Inside this domain every output of [`black_scholes`] is
    /// finite (the at-the-money gamma at the shortest expiry and lowest vol
    /// is about 1e9 / underlying).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: OptionKind,
        model: OptionModel,
        underlying: f64,
        strike: f64,
        years: f64,
        vol: f64,
        rate: f64,
        carry_yield: f64,
    ) -> Result<Self> {
        let check = |what: &'static str, value: f64, low: f64, high: f64, rule: &'static str| {
            if value.is_finite() && value >= low && value <= high {
                Ok(())
            } else {
                Err(Error::InvalidInput { what, rule, value })
            }
        };
        check(
            "underlying price",
            underlying,
            MIN_PRICE,
            MAX_PRICE,
            "within [1e-12, 1e15]",
        )?;
        check(
            "strike",
            strike,
            MIN_PRICE,
            MAX_PRICE,
            "within [1e-12, 1e15]",
        )?;
        check(
            "time to expiry (years)",
            years,
            MIN_YEARS,
            MAX_YEARS,
            "within [1 ms, 100 years]",
        )?;
        check(
            "volatility",
            vol,
            MIN_VOLATILITY,
            MAX_VOLATILITY,
            "within [1e-4, 10]",
        )?;
        check("rate", rate, -MAX_ABS_RATE, MAX_ABS_RATE, "within [-1, 1]")?;
        check(
            "carry yield",
            carry_yield,
            -MAX_ABS_RATE,
            MAX_ABS_RATE,
            "within [-1, 1]",
        )?;
        Ok(BsInputs {
            kind,
            model,
            underlying,
            strike,
            years,
            vol,
            rate,
            carry_yield,
        })
    }

    /// Call or put.
    pub fn kind(&self) -> OptionKind {
        self.kind
    }
    /// Model.
    pub fn model(&self) -> OptionModel {
        self.model
    }
    /// Spot (BSM) or forward (Black-76).
    pub fn underlying(&self) -> f64 {
        self.underlying
    }
    /// Strike.
    pub fn strike(&self) -> f64 {
        self.strike
    }
    /// Years to expiry.
    pub fn years(&self) -> f64 {
        self.years
    }
    /// Volatility.
    pub fn vol(&self) -> f64 {
        self.vol
    }
    /// Discount rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }
    /// Carry yield.
    pub fn carry_yield(&self) -> f64 {
        self.carry_yield
    }

    /// Cost of carry `b`: `r - q` for BSM, `0` for Black-76.
    pub fn cost_of_carry(&self) -> f64 {
        match self.model {
            OptionModel::BlackScholesMerton => self.rate - self.carry_yield,
            OptionModel::Black76 => 0.0,
        }
    }
}

/// Price and all Greeks of one option, with respect to the model's
/// underlying (spot for BSM, forward for Black-76).
///
/// Rho is `dV/dr` holding the spot and carry yield fixed (BSM), or holding
/// the forward fixed (Black-76, `rho = -T V`).
///
/// Deep out-of-the-money prices are computed so that they keep relative
/// accuracy (no cancellation between the two terms of Black's formula).
///
/// # Examples
/// See [`BsInputs`].
pub fn black_scholes(inputs: &BsInputs) -> Greeks {
    let &BsInputs {
        kind,
        model,
        underlying: s,
        strike: k,
        years: t,
        vol,
        rate: r,
        ..
    } = inputs;
    let b = inputs.cost_of_carry();
    let phi = kind.sign();
    let sqrt_t = t.sqrt();
    // Total standard deviation; validated inputs keep it > 0, the floor only
    // guards against underflow of vol * sqrt(t) for absurdly small products.
    let sd = (vol * sqrt_t).max(f64::MIN_POSITIVE);
    let log_moneyness = (s / k).ln() + b * t;
    let d1 = log_moneyness / sd + 0.5 * sd;
    let d2 = d1 - sd;
    let carry_df = ((b - r) * t).exp();
    let df = (-r * t).exp();
    let pdf1 = norm_pdf(d1);
    let cdf1 = norm_cdf(phi * d1);
    let cdf2 = norm_cdf(phi * d2);
    let s_carry = s * carry_df;
    let k_df = k * df;

    let value = price_from_parts(phi, s_carry, k_df, cdf1, cdf2, df, sd, kind);
    let delta = phi * carry_df * cdf1;
    let gamma = carry_df * pdf1 / (s * sd);
    let vega = s_carry * pdf1 * sqrt_t;
    let theta = -s_carry * pdf1 * vol / (2.0 * sqrt_t)
        - phi * (b - r) * s_carry * cdf1
        - phi * r * k_df * cdf2;
    let rho = match model {
        OptionModel::BlackScholesMerton => phi * t * k_df * cdf2,
        OptionModel::Black76 => -t * value,
    };
    let vanna = -carry_df * pdf1 * d2 / vol;
    let volga = vega * d1 * d2 / vol;
    let charm = -carry_df * (phi * (b - r) * cdf1 + pdf1 * (b / sd - d2 / (2.0 * t)));
    Greeks {
        value,
        delta,
        gamma,
        vega,
        theta,
        rho,
        vanna,
        volga,
        charm,
    }
}

/// `phi (S' N(phi d1) - K' N(phi d2))`, the discounted Black price.
///
/// Out of the money the two terms nearly cancel and the difference loses
/// digits; there the price is taken from the normalised Black function
/// instead, which keeps relative accuracy.
#[allow(clippy::too_many_arguments)]
#[inline]
fn price_from_parts(
    phi: f64,
    s_carry: f64,
    k_df: f64,
    cdf1: f64,
    cdf2: f64,
    df: f64,
    sd: f64,
    kind: OptionKind,
) -> f64 {
    let a = s_carry * cdf1;
    let c = k_df * cdf2;
    let naive = phi * (a - c);
    if naive > CANCELLATION_RATIO * a.max(c) {
        return naive;
    }
    // Undiscounted forward and strike: F = S' / df, K = K' / df.
    // Jaeckel's normalised Black function keeps relative accuracy here.
    super::implied_vol::black_price(s_carry / df, k_df / df, sd, kind) * df
}

/// Below this ratio of the price to its larger term, the direct difference
/// has lost more than two bits and the accurate path is taken.
const CANCELLATION_RATIO: f64 = 0.25;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output is finite at every corner of the validated domain, and
    /// the value stays within its no-arbitrage bounds.
    #[test]
    fn corners_of_the_domain_give_finite_greeks() {
        let prices = [MIN_PRICE, 1.0, MAX_PRICE];
        let years = [MIN_YEARS, 1.0, MAX_YEARS];
        let vols = [MIN_VOLATILITY, 0.5, MAX_VOLATILITY];
        let rates = [-MAX_ABS_RATE, 0.0, MAX_ABS_RATE];
        let mut checked = 0;
        for kind in [OptionKind::Call, OptionKind::Put] {
            for model in [OptionModel::BlackScholesMerton, OptionModel::Black76] {
                for &s in &prices {
                    for &k in &prices {
                        for &t in &years {
                            for &v in &vols {
                                for &r in &rates {
                                    for &q in &rates {
                                        let inputs =
                                            BsInputs::new(kind, model, s, k, t, v, r, q).unwrap();
                                        let g = black_scholes(&inputs);
                                        assert!(g.is_finite(), "{inputs:?} -> {g:?}");
                                        assert!(g.value >= 0.0, "{inputs:?} -> {g:?}");
                                        checked += 1;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 3usize.pow(6));
    }

    #[test]
    fn rejects_inputs_outside_the_domain() {
        let ok = |s, k, t, v| {
            BsInputs::new(
                OptionKind::Call,
                OptionModel::BlackScholesMerton,
                s,
                k,
                t,
                v,
                0.0,
                0.0,
            )
        };
        assert!(ok(100.0, 100.0, 1.0, 0.2).is_ok());
        for (s, k, t, v) in [
            (0.0, 100.0, 1.0, 0.2),
            (100.0, -1.0, 1.0, 0.2),
            (100.0, 100.0, 0.0, 0.2),
            (100.0, 100.0, 1.0, 0.0),
            (100.0, 100.0, 1.0, 1e-5),
            (f64::NAN, 100.0, 1.0, 0.2),
            (100.0, f64::INFINITY, 1.0, 0.2),
            (100.0, 100.0, 101.0, 0.2),
            (1e16, 100.0, 1.0, 0.2),
        ] {
            let err = ok(s, k, t, v).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        }
    }

    /// Near expiry the value tends to the discounted intrinsic value.
    #[test]
    fn short_expiry_limit_is_intrinsic() {
        let g = black_scholes(
            &BsInputs::new(
                OptionKind::Put,
                OptionModel::BlackScholesMerton,
                90.0,
                100.0,
                MIN_YEARS,
                0.5,
                0.05,
                0.0,
            )
            .unwrap(),
        );
        assert!((g.value - 10.0).abs() < 1e-6, "{}", g.value);
        assert!((g.delta + 1.0).abs() < 1e-9);
        assert_eq!(g.gamma, 0.0);
    }
}
