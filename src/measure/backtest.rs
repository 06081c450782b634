//! VaR backtests: Kupiec's proportion-of-failures test, Christoffersen's
//! independence and conditional-coverage tests, and the Basel traffic light.
//!
//! An *exception* (violation) on a day is a realised loss strictly greater than
//! that day's VaR: `-P&L > VaR`. Under a correct model at confidence `c`,
//! exceptions are independent Bernoulli(`p = 1 - c`) events.
//!
//! Log-likelihood terms use the convention `0 ln 0 = 0` (as `scipy.special.xlogy`),
//! so zero exceptions, all exceptions, or an empty transition row give finite
//! statistics. Statistics are clamped at 0 (they are likelihood ratios >= 0;
//! rounding can make them `-1e-16`).

use super::check_finite_elements;
use crate::error::{Error, Result};
use crate::units::Confidence;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF};

/// Cumulative binomial probability at which the Basel yellow zone begins.
pub const BASEL_YELLOW_PROBABILITY: f64 = 0.95;
/// Cumulative binomial probability at which the Basel red zone begins.
pub const BASEL_RED_PROBABILITY: f64 = 0.9999;

/// A likelihood-ratio test statistic with its chi-square p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct LikelihoodRatioTest {
    /// `-2 ln(L_0 / L_1)`, >= 0.
    pub statistic: f64,
    /// Degrees of freedom of the asymptotic chi-square distribution.
    pub degrees_of_freedom: u32,
    /// `P(chi2(df) > statistic)`; reject the model at level `a` if below `a`.
    pub p_value: f64,
}

fn xlogy(x: f64, y: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * y.ln() }
}

fn chi_square_test(statistic: f64, degrees_of_freedom: u32) -> Result<LikelihoodRatioTest> {
    let statistic = statistic.max(0.0);
    let chi2 = ChiSquared::new(f64::from(degrees_of_freedom)).map_err(|_| Error::InvalidInput {
        what: "chi-square degrees of freedom",
        rule: "> 0",
        value: f64::from(degrees_of_freedom),
    })?;
    let statistic = super::finite_result("likelihood-ratio statistic", statistic)?;
    Ok(LikelihoodRatioTest {
        statistic,
        degrees_of_freedom,
        p_value: chi2.sf(statistic).clamp(0.0, 1.0),
    })
}

/// Exceptions of a VaR series against realised P&L: `exception[t] = -pnl[t] >
/// value_at_risk[t]`.
///
/// # Units
/// Both series in the same P&L units; VaR positive = loss.
///
/// # Errors
/// [`Error::LengthMismatch`] if the lengths differ; [`Error::TooFew`] if empty;
/// [`Error::InvalidElement`] for a non-finite value.
///
/// # Examples
/// ```
/// use portfolio_margin::var_exceptions;
/// let var = [2.0, 2.0, 2.0];
/// let pnl = [-1.0, -2.5, -2.0]; // a loss equal to VaR is not an exception
/// assert_eq!(var_exceptions(&var, &pnl)?, vec![false, true, false]);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn var_exceptions(value_at_risk: &[f64], pnl: &[f64]) -> Result<Vec<bool>> {
    if value_at_risk.len() != pnl.len() {
        return Err(Error::LengthMismatch {
            what: "realised P&L (one per VaR)",
            expected: value_at_risk.len(),
            got: pnl.len(),
        });
    }
    if pnl.is_empty() {
        return Err(Error::TooFew {
            what: "backtest observations",
            min: 1,
            got: 0,
        });
    }
    check_finite_elements("VaR series", value_at_risk)?;
    check_finite_elements("realised P&L", pnl)?;
    Ok(value_at_risk
        .iter()
        .zip(pnl)
        .map(|(v, p)| -p > *v)
        .collect())
}

fn check_counts(exceptions: usize, observations: usize) -> Result<()> {
    if observations == 0 {
        return Err(Error::TooFew {
            what: "backtest observations",
            min: 1,
            got: 0,
        });
    }
    if exceptions > observations {
        return Err(Error::InvalidInput {
            what: "exception count",
            rule: "<= the number of observations",
            value: exceptions as f64,
        });
    }
    Ok(())
}

/// Kupiec (1995) proportion-of-failures test of unconditional coverage.
///
/// With `x` exceptions in `n` days, `p = 1 - c` and `p^ = x / n`:
/// `LR_uc = -2 [ (n - x) ln(1 - p) + x ln p - (n - x) ln(1 - p^) - x ln p^ ]`,
/// asymptotically chi-square(1). Kupiec, P. (1995), "Techniques for verifying
/// the accuracy of risk measurement models", *Journal of Derivatives* 3(2).
///
/// # Errors
/// [`Error::TooFew`] if `observations` is 0; [`Error::InvalidInput`] if
/// `exceptions > observations`.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, kupiec_test};
/// let t = kupiec_test(10, 250, Confidence::new(0.99)?)?;
/// assert!(t.p_value < 0.01); // 10 exceptions in 250 days at 99%: rejected
/// // No exception at all is finite too (0 ln 0 = 0), and itself unlikely:
/// // LR = -500 ln 0.99 = 5.03, p = 0.025.
/// let none = kupiec_test(0, 250, Confidence::new(0.99)?)?;
/// assert!((none.statistic + 500.0 * 0.99_f64.ln()).abs() < 1e-12);
/// assert!(none.p_value > 0.02 && none.p_value < 0.03);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn kupiec_test(
    exceptions: usize,
    observations: usize,
    confidence: Confidence,
) -> Result<LikelihoodRatioTest> {
    check_counts(exceptions, observations)?;
    chi_square_test(kupiec_statistic(exceptions, observations, confidence), 1)
}

fn kupiec_statistic(exceptions: usize, observations: usize, confidence: Confidence) -> f64 {
    let x = exceptions as f64;
    let n = observations as f64;
    let p = confidence.tail();
    let p_hat = x / n;
    let null = xlogy(n - x, 1.0 - p) + xlogy(x, p);
    let alternative = xlogy(n - x, 1.0 - p_hat) + xlogy(x, p_hat);
    -2.0 * (null - alternative)
}

/// Christoffersen (1998) tests on an exception sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ChristoffersenTest {
    /// Transition counts `[n00, n01, n10, n11]` (`nij`: day `t-1` in state `i`,
    /// day `t` in state `j`; 1 = exception), over `n - 1` consecutive pairs.
    pub transitions: [usize; 4],
    /// Kupiec's `LR_uc` on the whole sequence, chi-square(1).
    pub unconditional_coverage: LikelihoodRatioTest,
    /// `LR_ind`: first-order Markov vs independent exceptions, chi-square(1).
    pub independence: LikelihoodRatioTest,
    /// `LR_cc = LR_uc + LR_ind`, chi-square(2).
    pub conditional_coverage: LikelihoodRatioTest,
}

/// Christoffersen's independence and conditional-coverage tests.
///
/// With transition counts `nij`, `pi0 = n01 / (n00 + n01)`,
/// `pi1 = n11 / (n10 + n11)` (0 when the row is empty) and
/// `pi = (n01 + n11) / (n - 1)`:
///
/// ```text
/// LR_ind = -2 [ (n00 + n10) ln(1 - pi) + (n01 + n11) ln pi
///             - n00 ln(1 - pi0) - n01 ln pi0 - n10 ln(1 - pi1) - n11 ln pi1 ]
/// LR_cc  = LR_uc + LR_ind
/// ```
///
/// `LR_uc` is [`kupiec_test`] on all `n` days (the usual practice; Christoffersen
/// conditions on the first day, which changes `LR_uc` only through that day).
/// Christoffersen, P. (1998), "Evaluating interval forecasts", *International
/// Economic Review* 39(4); Jorion, *Value at Risk*, 3rd ed., ch. 6.
///
/// # Errors
/// [`Error::TooFew`] for fewer than 2 observations.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, christoffersen_test};
/// // Six exceptions in a row out of 250 days: clustered.
/// let seq: Vec<bool> = (0..250).map(|t| (100..106).contains(&t)).collect();
/// let t = christoffersen_test(&seq, Confidence::new(0.99)?)?;
/// assert_eq!(t.transitions, [242, 1, 1, 5]);
/// assert!(t.independence.p_value < 1e-6);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn christoffersen_test(
    exceptions: &[bool],
    confidence: Confidence,
) -> Result<ChristoffersenTest> {
    if exceptions.len() < 2 {
        return Err(Error::TooFew {
            what: "exception sequence",
            min: 2,
            got: exceptions.len(),
        });
    }
    let mut t = [0usize; 4];
    for pair in exceptions.windows(2) {
        let index = 2 * usize::from(pair[0]) + usize::from(pair[1]);
        t[index] += 1;
    }
    let [n00, n01, n10, n11] = t.map(|v| v as f64);
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    let pi0 = ratio(n01, n00 + n01);
    let pi1 = ratio(n11, n10 + n11);
    let pi = ratio(n01 + n11, n00 + n01 + n10 + n11);
    let restricted = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi);
    let markov = xlogy(n00, 1.0 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1.0 - pi1) + xlogy(n11, pi1);
    let lr_ind = (-2.0 * (restricted - markov)).max(0.0);
    let count = exceptions.iter().filter(|&&e| e).count();
    let lr_uc = kupiec_statistic(count, exceptions.len(), confidence).max(0.0);
    Ok(ChristoffersenTest {
        transitions: t,
        unconditional_coverage: chi_square_test(lr_uc, 1)?,
        independence: chi_square_test(lr_ind, 1)?,
        conditional_coverage: chi_square_test(lr_uc + lr_ind, 2)?,
    })
}

/// Basel traffic-light zone of a backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum TrafficLight {
    /// Exceptions consistent with an accurate model.
    Green,
    /// Inconclusive: the model may be inaccurate.
    Yellow,
    /// The model is almost surely inaccurate.
    Red,
}

/// Where the yellow and red zones begin, as exception counts.
///
/// A value greater than the number of observations means the zone cannot be
/// reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct TrafficLightZones {
    /// Smallest exception count in the yellow zone.
    pub yellow_from: usize,
    /// Smallest exception count in the red zone.
    pub red_from: usize,
}

/// Zone limits of the Basel traffic light for any sample size and confidence.
///
/// The Basel Committee (1996), "Supervisory framework for the use of
/// 'backtesting' in conjunction with the internal models approach to market
/// risk capital requirements", Table 2, sets the zones by the cumulative
/// binomial probability `P(X <= x)`, `X ~ Binomial(n, 1 - c)`: green while it is
/// below 95%, yellow from the count where it reaches 95%, red from the count
/// where it reaches 99.99%. For 250 days at 99% this is green 0-4, yellow 5-9,
/// red 10 or more.
///
/// # Errors
/// [`Error::TooFew`] if `observations` is 0.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, TrafficLightZones, traffic_light_zones};
/// let z = traffic_light_zones(250, Confidence::new(0.99)?)?;
/// assert_eq!(z, TrafficLightZones { yellow_from: 5, red_from: 10 });
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn traffic_light_zones(
    observations: usize,
    confidence: Confidence,
) -> Result<TrafficLightZones> {
    check_counts(0, observations)?;
    let n = observations as u64;
    let binomial = Binomial::new(confidence.tail(), n).map_err(|_| Error::InvalidInput {
        what: "exception probability 1 - confidence",
        rule: "in [0, 1]",
        value: confidence.tail(),
    })?;
    // P(X <= x) is non-decreasing in x: binary search for the first x with
    // P(X <= x) >= level (n + 1 if none).
    let first_at_least = |level: f64| -> usize {
        let (mut lo, mut hi) = (0u64, n + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if binomial.cdf(mid) >= level {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        usize::try_from(lo).unwrap_or(usize::MAX)
    };
    Ok(TrafficLightZones {
        yellow_from: first_at_least(BASEL_YELLOW_PROBABILITY),
        red_from: first_at_least(BASEL_RED_PROBABILITY),
    })
}

/// Basel traffic-light zone of `exceptions` in `observations` days at
/// `confidence` (limits from [`traffic_light_zones`]).
///
/// # Errors
/// [`Error::TooFew`] if `observations` is 0; [`Error::InvalidInput`] if
/// `exceptions > observations`.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, TrafficLight, traffic_light};
/// let c = Confidence::new(0.99)?;
/// assert_eq!(traffic_light(4, 250, c)?, TrafficLight::Green);
/// assert_eq!(traffic_light(5, 250, c)?, TrafficLight::Yellow);
/// assert_eq!(traffic_light(10, 250, c)?, TrafficLight::Red);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn traffic_light(
    exceptions: usize,
    observations: usize,
    confidence: Confidence,
) -> Result<TrafficLight> {
    check_counts(exceptions, observations)?;
    let zones = traffic_light_zones(observations, confidence)?;
    Ok(if exceptions >= zones.red_from {
        TrafficLight::Red
    } else if exceptions >= zones.yellow_from {
        TrafficLight::Yellow
    } else {
        TrafficLight::Green
    })
}

/// Everything a VaR backtest reports.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct BacktestSummary {
    /// Days tested.
    pub observations: usize,
    /// Days with a loss above VaR.
    pub exceptions: usize,
    /// Kupiec's unconditional-coverage test.
    pub kupiec: LikelihoodRatioTest,
    /// Christoffersen's tests (`None` with fewer than 2 days).
    pub christoffersen: Option<ChristoffersenTest>,
    /// Basel zone.
    pub traffic_light: TrafficLight,
}

/// Backtests a VaR series against realised P&L: exceptions, Kupiec,
/// Christoffersen and the traffic light.
///
/// # Errors
/// As [`var_exceptions`].
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, TrafficLight, backtest};
/// let var = vec![1.0; 250];
/// let mut pnl = vec![0.1; 250];
/// pnl[17] = -1.5;
/// pnl[200] = -3.0;
/// let s = backtest(&var, &pnl, Confidence::new(0.99)?)?;
/// assert_eq!(s.exceptions, 2);
/// assert_eq!(s.traffic_light, TrafficLight::Green);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn backtest(
    value_at_risk: &[f64],
    pnl: &[f64],
    confidence: Confidence,
) -> Result<BacktestSummary> {
    let seq = var_exceptions(value_at_risk, pnl)?;
    let exceptions = seq.iter().filter(|&&e| e).count();
    let observations = seq.len();
    let christoffersen = if observations >= 2 {
        Some(christoffersen_test(&seq, confidence)?)
    } else {
        None
    };
    Ok(BacktestSummary {
        observations,
        exceptions,
        kupiec: kupiec_test(exceptions, observations, confidence)?,
        christoffersen,
        traffic_light: traffic_light(exceptions, observations, confidence)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(level: f64) -> Confidence {
        Confidence::new(level).unwrap()
    }

    #[test]
    fn chi_square_p_values_match_scipy() {
        // scipy.stats.chi2.sf(x, 1); chi2(2) sf is exp(-x/2) in closed form.
        const REL: f64 = 1e-12;
        for (x, sf1) in [
            (0.0, 1.0),
            (0.1, 0.751_829_634_045_849_2),
            (1.0, 0.317_310_507_862_911_15),
            (3.841_458_820_694_124, 0.049_999_999_999_999_89),
            (10.0, 0.001_565_402_258_002_549),
            (50.0, 1.537_459_794_428_033e-12),
        ] {
            let one = chi_square_test(x, 1).unwrap().p_value;
            let two = chi_square_test(x, 2).unwrap().p_value;
            let e2 = (-x / 2.0_f64).exp();
            assert!((one - sf1).abs() <= REL * sf1, "{x}: {one} {sf1}");
            assert!((two - e2).abs() <= REL * e2, "{x}: {two} {e2}");
        }
    }

    #[test]
    fn edge_cases_are_finite() {
        for (x, n) in [(0, 1), (1, 1), (0, 250), (250, 250)] {
            let t = kupiec_test(x, n, c(0.99)).unwrap();
            assert!(t.statistic.is_finite() && t.statistic >= 0.0);
            assert!((0.0..=1.0).contains(&t.p_value));
        }
        for seq in [vec![false; 10], vec![true; 10], vec![false, true]] {
            let t = christoffersen_test(&seq, c(0.95)).unwrap();
            for lr in [
                t.independence,
                t.conditional_coverage,
                t.unconditional_coverage,
            ] {
                assert!(lr.statistic.is_finite() && lr.statistic >= 0.0, "{seq:?}");
                assert!((0.0..=1.0).contains(&lr.p_value));
            }
        }
        assert!(kupiec_test(3, 2, c(0.99)).is_err());
        assert!(kupiec_test(0, 0, c(0.99)).is_err());
        assert!(christoffersen_test(&[true], c(0.99)).is_err());
        assert!(var_exceptions(&[1.0], &[1.0, 2.0]).is_err());
        assert!(matches!(
            var_exceptions(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(Error::InvalidElement { index: 1, .. })
        ));
    }

    #[test]
    fn basel_table_250_days() {
        let c99 = c(0.99);
        let zones: Vec<TrafficLight> = (0..=12)
            .map(|x| traffic_light(x, 250, c99).unwrap())
            .collect();
        use TrafficLight::*;
        assert_eq!(
            zones,
            [
                Green, Green, Green, Green, Green, Yellow, Yellow, Yellow, Yellow, Yellow, Red,
                Red, Red
            ]
        );
    }
}
