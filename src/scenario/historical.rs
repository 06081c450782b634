//! Historical scenarios: returns of aligned price histories over overlapping
//! windows, optionally volatility-filtered.

use super::{ScenarioSet, ShockKind};
use crate::error::{Error, Result};
use crate::market::RiskFactor;
use crate::units::YearFraction;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// The RiskMetrics (1996) daily EWMA decay, `λ = 0.94`.
pub const EWMA_DEFAULT_LAMBDA: f64 = 0.94;

/// The price history of one risk factor: positive, finite prices, oldest
/// first, one per observation date (dates are shared by all histories of a
/// call, see [`historical_scenarios`]).
///
/// ```
/// use portfolio_margin::{PriceHistory, RiskFactor, UnderlyingId};
/// let h = PriceHistory::new(RiskFactor::Spot(UnderlyingId::new("SPX")?), vec![100.0, 101.0, 99.5])?;
/// assert_eq!(h.prices().len(), 3);
/// assert!(PriceHistory::new(RiskFactor::Spot(UnderlyingId::new("SPX")?), vec![100.0, -1.0]).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::PriceHistory", into = "raw::PriceHistory")
)]
pub struct PriceHistory {
    factor: RiskFactor,
    prices: Vec<f64>,
}

impl PriceHistory {
    /// A history of `factor` (a spot, a volatility level, ...).
    ///
    /// # Errors
    /// - [`Error::HistoryLength`] if there are fewer than 2 prices;
    /// - [`Error::InvalidHistory`] at the first price that is not finite
    ///   and `> 0`.
    pub fn new(factor: RiskFactor, prices: Vec<f64>) -> Result<Self> {
        if prices.len() < 2 {
            return Err(Error::HistoryLength {
                factor,
                rule: "at least",
                expected: 2,
                got: prices.len(),
            });
        }
        if let Some((index, &value)) = prices
            .iter()
            .enumerate()
            .find(|(_, p)| !(p.is_finite() && **p > 0.0))
        {
            return Err(Error::InvalidHistory {
                factor,
                what: "price",
                index,
                rule: "finite and > 0",
                value,
            });
        }
        Ok(PriceHistory { factor, prices })
    }

    /// The risk factor.
    pub fn factor(&self) -> &RiskFactor {
        &self.factor
    }

    /// The prices, oldest first.
    pub fn prices(&self) -> &[f64] {
        &self.prices
    }
}

/// How a price move becomes a shock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ReturnKind {
    /// `ln(P_end / P_start)`, applied as [`ShockKind::Log`].
    Log,
    /// `P_end / P_start - 1`, applied as [`ShockKind::Relative`].
    Simple,
}

impl ReturnKind {
    /// The shock kind the return is applied as.
    pub fn shock_kind(self) -> ShockKind {
        match self {
            ReturnKind::Log => ShockKind::Log,
            ReturnKind::Simple => ShockKind::Relative,
        }
    }

    fn of(self, start: f64, end: f64) -> f64 {
        match self {
            ReturnKind::Log => (end / start).ln(),
            ReturnKind::Simple => end / start - 1.0,
        }
    }
}

/// Volatility scaling of historical returns (filtered historical
/// simulation, as in Eurex Prisma and Barone-Adesi, Giannopoulos & Vosper
/// 1999).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum VolatilityFilter {
    /// Zero-mean EWMA of daily returns with decay `lambda` in `(0, 1)`.
    ///
    /// With daily returns `r_1 .. r_{T-1}` (of the configured
    /// [`ReturnKind`]), the variance before return `s` is
    /// `σ²_1 = mean(r_s²)` over the whole history (the seed), and
    /// `σ²_{s+1} = λ σ²_s + (1 - λ) r_s²`. Today's volatility is the
    /// forecast after the last return, `σ_T`. Each daily return is rescaled
    /// to `r_s σ_T / σ_s` before being compounded into the horizon return
    /// (summed for log returns, `Π(1 + r) - 1` for simple returns).
    Ewma {
        /// Decay factor, e.g. [`EWMA_DEFAULT_LAMBDA`].
        lambda: f64,
    },
}

impl VolatilityFilter {
    fn validate(self) -> Result<Self> {
        match self {
            VolatilityFilter::Ewma { lambda } => {
                if !(lambda.is_finite() && lambda > 0.0 && lambda < 1.0) {
                    return Err(Error::InvalidInput {
                        what: "EWMA lambda",
                        rule: "in the open interval (0, 1)",
                        value: lambda,
                    });
                }
            }
        }
        Ok(self)
    }
}

/// Settings of [`historical_scenarios`].
///
/// ```
/// use portfolio_margin::*;
/// let ten_days = YearFraction::from_days(10.0, DayBasis::Trading252)?;
/// let config = HistoricalConfig::new(10, ReturnKind::Log, ten_days)?
///     .with_lookback(500)?
///     .with_filter(VolatilityFilter::Ewma { lambda: EWMA_DEFAULT_LAMBDA })?;
/// assert_eq!(config.lookback(), Some(500));
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::HistoricalConfig", into = "raw::HistoricalConfig")
)]
pub struct HistoricalConfig {
    horizon_days: usize,
    return_kind: ReturnKind,
    horizon: YearFraction,
    lookback: Option<usize>,
    filter: Option<VolatilityFilter>,
}

impl HistoricalConfig {
    /// Scenarios of `horizon_days`-observation returns of `return_kind`,
    /// each moving time forward by `horizon` (e.g. `horizon_days` on a
    /// [`crate::DayBasis`], or [`YearFraction::ZERO`] for instantaneous
    /// shocks). All windows are used, no filter.
    ///
    /// # Errors
    /// [`Error::TooFew`] if `horizon_days == 0`.
    pub fn new(
        horizon_days: usize,
        return_kind: ReturnKind,
        horizon: YearFraction,
    ) -> Result<Self> {
        if horizon_days == 0 {
            return Err(Error::TooFew {
                what: "historical horizon days",
                min: 1,
                got: 0,
            });
        }
        Ok(HistoricalConfig {
            horizon_days,
            return_kind,
            horizon,
            lookback: None,
            filter: None,
        })
    }

    /// Keeps only the last `scenarios` windows (the most recent ones).
    ///
    /// # Errors
    /// [`Error::TooFew`] if `scenarios == 0`.
    pub fn with_lookback(mut self, scenarios: usize) -> Result<Self> {
        if scenarios == 0 {
            return Err(Error::TooFew {
                what: "historical lookback scenarios",
                min: 1,
                got: 0,
            });
        }
        self.lookback = Some(scenarios);
        Ok(self)
    }

    /// Rescales returns to today's volatility.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an EWMA `lambda` outside `(0, 1)`.
    pub fn with_filter(mut self, filter: VolatilityFilter) -> Result<Self> {
        self.filter = Some(filter.validate()?);
        Ok(self)
    }

    /// Observations per return window.
    pub fn horizon_days(&self) -> usize {
        self.horizon_days
    }
    /// Log or simple returns.
    pub fn return_kind(&self) -> ReturnKind {
        self.return_kind
    }
    /// Time each scenario moves forward, in years.
    pub fn horizon(&self) -> YearFraction {
        self.horizon
    }
    /// Number of most recent windows kept, if limited.
    pub fn lookback(&self) -> Option<usize> {
        self.lookback
    }
    /// The volatility filter, if any.
    pub fn filter(&self) -> Option<VolatilityFilter> {
        self.filter
    }
}

/// Historical scenarios from aligned price histories.
///
/// With `T` prices per history and horizon `h = config.horizon_days()`,
/// window `t` (for `t = 0 .. T - h - 1`) is the return from price `t` to
/// price `t + h`: windows overlap (consecutive windows share `h - 1` daily
/// moves), giving `T - h` scenarios, oldest first; a lookback of `N` keeps
/// the last `N`. Every factor moves by its own return over the same window,
/// preserving the cross-factor dependence of the data. Columns are the
/// histories in order, with [`ReturnKind::shock_kind`].
///
/// With `dates` (one per price, shared by all histories), scenario `t` is
/// named `"{dates[t]}..{dates[t + h]}"`.
///
/// # Errors
/// - [`Error::TooFew`] if `histories` is empty;
/// - [`Error::HistoryLength`] naming the factor if a history's length
///   differs from the first one's, or is shorter than `h + 1` (or
///   `h + lookback` with a lookback);
/// - [`Error::LengthMismatch`] if `dates` has a different length;
/// - [`Error::InvalidHistory`] if a filtered return cannot be formed (a zero
///   EWMA volatility before a non-zero return; a filtered simple return
///   `<= -1`);
/// - [`Error::DuplicateId`], [`Error::InvalidShock`] from
///   [`ScenarioSet::new`] (a repeated factor; a return that overflows).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let spx = PriceHistory::new(RiskFactor::Spot(UnderlyingId::new("SPX")?), vec![100.0, 110.0, 99.0, 108.9])?;
/// let config = HistoricalConfig::new(2, ReturnKind::Simple, YearFraction::ZERO)?;
/// let set = historical_scenarios(&[spx], None, &config)?;
/// assert_eq!(set.len(), 2);
/// assert!((set.scenario(0)[0] - (-0.01)).abs() < 1e-15); // 100 -> 99
/// assert!((set.scenario(1)[0] - (-0.01)).abs() < 1e-15); // 110 -> 108.9
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn historical_scenarios(
    histories: &[PriceHistory],
    dates: Option<&[String]>,
    config: &HistoricalConfig,
) -> Result<ScenarioSet> {
    let first = histories.first().ok_or(Error::TooFew {
        what: "price histories",
        min: 1,
        got: 0,
    })?;
    let len = first.prices.len();
    for h in histories {
        if h.prices.len() != len {
            return Err(Error::HistoryLength {
                factor: h.factor.clone(),
                rule: "exactly (the length of the first history)",
                expected: len,
                got: h.prices.len(),
            });
        }
    }
    if let Some(dates) = dates
        && dates.len() != len
    {
        return Err(Error::LengthMismatch {
            what: "history dates (one per price)",
            expected: len,
            got: dates.len(),
        });
    }
    let h = config.horizon_days;
    let needed = h.saturating_add(config.lookback.unwrap_or(1));
    if len < needed {
        return Err(Error::HistoryLength {
            factor: first.factor.clone(),
            rule: "at least (horizon days + lookback)",
            expected: needed,
            got: len,
        });
    }
    let windows = len - h;
    let first_window = windows - config.lookback.unwrap_or(windows).min(windows);
    let n_scenarios = windows - first_window;
    let n = histories.len();

    let kind = config.return_kind;
    let mut sizes = vec![0.0; n_scenarios * n];
    for (j, history) in histories.iter().enumerate() {
        let returns = match config.filter {
            None => history
                .prices
                .windows(h + 1)
                .skip(first_window)
                .map(|w| kind.of(w[0], w[h]))
                .collect::<Vec<f64>>(),
            Some(VolatilityFilter::Ewma { lambda }) => {
                filtered_returns(history, kind, lambda, h, first_window)?
            }
        };
        for (i, r) in returns.into_iter().enumerate() {
            if let Some(slot) = sizes.get_mut(i * n + j) {
                *slot = r;
            }
        }
    }
    let columns = histories
        .iter()
        .map(|h| (h.factor.clone(), kind.shock_kind()))
        .collect();
    let set = ScenarioSet::new(columns, sizes, config.horizon)?;
    match dates {
        None => Ok(set),
        Some(dates) => {
            let names = (first_window..windows)
                .map(|t| format!("{}..{}", dates[t], dates[t + h]))
                .collect();
            set.with_names(names)
        }
    }
}

/// Horizon returns built from EWMA-filtered daily returns, for windows
/// `first_window ..`.
fn filtered_returns(
    history: &PriceHistory,
    kind: ReturnKind,
    lambda: f64,
    h: usize,
    first_window: usize,
) -> Result<Vec<f64>> {
    let daily: Vec<f64> = history
        .prices
        .windows(2)
        .map(|w| kind.of(w[0], w[1]))
        .collect();
    let (sigmas, today) = ewma_volatility(&daily, lambda);
    let mut filtered = Vec::with_capacity(daily.len());
    for (s, (&r, &sigma)) in daily.iter().zip(&sigmas).enumerate() {
        let bad = |what, rule, value| Error::InvalidHistory {
            factor: history.factor.clone(),
            what,
            index: s,
            rule,
            value,
        };
        let x = if r == 0.0 {
            0.0
        } else if sigma > 0.0 {
            r * (today / sigma)
        } else {
            return Err(bad(
                "EWMA volatility before daily return",
                "> 0 when the return is not zero",
                sigma,
            ));
        };
        if !x.is_finite() {
            return Err(bad("filtered daily return", "finite", x));
        }
        if kind == ReturnKind::Simple && x <= -1.0 {
            return Err(bad("filtered daily simple return", "> -1", x));
        }
        filtered.push(x);
    }
    Ok(filtered
        .windows(h)
        .skip(first_window)
        .map(|w| match kind {
            ReturnKind::Log => w.iter().sum(),
            ReturnKind::Simple => w.iter().map(|x| 1.0 + x).product::<f64>() - 1.0,
        })
        .collect())
}

/// Minimal private EWMA (to be replaced by the public `volatility` module):
/// returns the volatility before each return, and the forecast after the
/// last one. Seed: mean square of all returns. Zero mean.
fn ewma_volatility(returns: &[f64], lambda: f64) -> (Vec<f64>, f64) {
    let seed = returns.iter().map(|r| r * r).sum::<f64>() / returns.len().max(1) as f64;
    let mut variance = seed;
    let mut sigmas = Vec::with_capacity(returns.len());
    for r in returns {
        sigmas.push(variance.sqrt());
        variance = lambda * variance + (1.0 - lambda) * r * r;
    }
    (sigmas, variance.sqrt())
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PriceHistory {
        factor: RiskFactor,
        prices: Vec<f64>,
    }

    impl TryFrom<PriceHistory> for super::PriceHistory {
        type Error = Error;
        fn try_from(r: PriceHistory) -> Result<Self> {
            super::PriceHistory::new(r.factor, r.prices)
        }
    }

    impl From<super::PriceHistory> for PriceHistory {
        fn from(h: super::PriceHistory) -> Self {
            PriceHistory {
                factor: h.factor,
                prices: h.prices,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct HistoricalConfig {
        horizon_days: usize,
        return_kind: ReturnKind,
        horizon: YearFraction,
        #[serde(default)]
        lookback: Option<usize>,
        #[serde(default)]
        filter: Option<VolatilityFilter>,
    }

    impl TryFrom<HistoricalConfig> for super::HistoricalConfig {
        type Error = Error;
        fn try_from(r: HistoricalConfig) -> Result<Self> {
            let mut c = super::HistoricalConfig::new(r.horizon_days, r.return_kind, r.horizon)?;
            if let Some(l) = r.lookback {
                c = c.with_lookback(l)?;
            }
            if let Some(f) = r.filter {
                c = c.with_filter(f)?;
            }
            Ok(c)
        }
    }

    impl From<super::HistoricalConfig> for HistoricalConfig {
        fn from(c: super::HistoricalConfig) -> Self {
            HistoricalConfig {
                horizon_days: c.horizon_days,
                return_kind: c.return_kind,
                horizon: c.horizon,
                lookback: c.lookback,
                filter: c.filter,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::UnderlyingId;

    fn factor(name: &str) -> RiskFactor {
        RiskFactor::Spot(UnderlyingId::new(name).unwrap())
    }

    fn history(name: &str, prices: &[f64]) -> PriceHistory {
        PriceHistory::new(factor(name), prices.to_vec()).unwrap()
    }

    /// Absolute tolerance on hand-computed returns.
    const RETURN_TOLERANCE: f64 = 1e-15;

    #[test]
    fn histories_validate_and_name_the_factor() {
        match PriceHistory::new(factor("X"), vec![1.0]) {
            Err(Error::HistoryLength {
                factor: f, got: 1, ..
            }) => assert_eq!(f, factor("X")),
            other => panic!("{other:?}"),
        }
        match PriceHistory::new(factor("X"), vec![1.0, 2.0, f64::NAN]) {
            Err(Error::InvalidHistory { index: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(PriceHistory::new(factor("X"), vec![1.0, 0.0]).is_err());
    }

    #[test]
    fn misaligned_and_short_histories_are_rejected() {
        let config = HistoricalConfig::new(2, ReturnKind::Log, YearFraction::ZERO).unwrap();
        let a = history("A", &[1.0, 2.0, 3.0, 4.0]);
        let b = history("B", &[1.0, 2.0, 3.0]);
        match historical_scenarios(&[a.clone(), b], None, &config) {
            Err(Error::HistoryLength {
                factor: f,
                expected: 4,
                got: 3,
                ..
            }) => assert_eq!(f, factor("B")),
            other => panic!("{other:?}"),
        }
        let short = history("C", &[1.0, 2.0]);
        assert!(matches!(
            historical_scenarios(&[short], None, &config),
            Err(Error::HistoryLength { expected: 3, .. })
        ));
        let long = config.with_lookback(3).unwrap();
        assert!(matches!(
            historical_scenarios(std::slice::from_ref(&a), None, &long),
            Err(Error::HistoryLength { expected: 5, .. })
        ));
        assert!(matches!(
            historical_scenarios(&[], None, &config),
            Err(Error::TooFew { .. })
        ));
        let dates = vec!["d".to_string(); 3];
        assert!(matches!(
            historical_scenarios(&[a], Some(&dates), &config),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn overlapping_windows_lookback_and_names() {
        let prices = [100.0, 110.0, 99.0, 108.9, 120.0];
        let a = history("A", &prices);
        let b = history("B", &[1.0, 2.0, 4.0, 8.0, 16.0]);
        let dates: Vec<String> = (1..=5).map(|d| format!("d{d}")).collect();
        let config = HistoricalConfig::new(2, ReturnKind::Log, YearFraction::ZERO)
            .unwrap()
            .with_lookback(2)
            .unwrap();
        let set = historical_scenarios(&[a, b], Some(&dates), &config).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.factors()[0], (factor("A"), ShockKind::Log));
        assert_eq!(set.names().unwrap(), ["d2..d4", "d3..d5"]);
        assert!((set.scenario(0)[0] - (108.9f64 / 110.0).ln()).abs() < RETURN_TOLERANCE);
        assert!((set.scenario(1)[0] - (120.0f64 / 99.0).ln()).abs() < RETURN_TOLERANCE);
        assert!((set.scenario(1)[1] - 4.0f64.ln()).abs() < RETURN_TOLERANCE);
    }

    #[test]
    fn filtered_returns_follow_the_ewma() {
        let prices = [100.0, 101.0, 99.0, 104.0, 103.0];
        let config = HistoricalConfig::new(1, ReturnKind::Log, YearFraction::ZERO)
            .unwrap()
            .with_filter(VolatilityFilter::Ewma { lambda: 0.9 })
            .unwrap();
        let set = historical_scenarios(&[history("A", &prices)], None, &config).unwrap();
        let r: Vec<f64> = prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let mut var = r.iter().map(|x| x * x).sum::<f64>() / 4.0;
        let mut sig = vec![];
        for x in &r {
            sig.push(var.sqrt());
            var = 0.9 * var + 0.1 * x * x;
        }
        for (s, got) in set.column(0).enumerate() {
            let want = r[s] * var.sqrt() / sig[s];
            assert!((got - want).abs() < RETURN_TOLERANCE, "{s}: {got} {want}");
        }
        // Constant prices: every return and filtered return is zero.
        let flat = historical_scenarios(&[history("F", &[5.0; 6])], None, &config).unwrap();
        assert!(flat.sizes().iter().all(|&x| x == 0.0));
    }

    #[test]
    fn filter_and_config_validate() {
        let c = HistoricalConfig::new(1, ReturnKind::Simple, YearFraction::ZERO).unwrap();
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(
                c.with_filter(VolatilityFilter::Ewma { lambda: bad })
                    .is_err()
            );
        }
        assert!(c.with_lookback(0).is_err());
        assert!(HistoricalConfig::new(0, ReturnKind::Log, YearFraction::ZERO).is_err());
    }

    #[test]
    fn zero_ewma_vol_before_a_move_is_reported() {
        // 30 flat days then a jump: the seed is tiny but positive, so this
        // works; a zero variance needs an underflow, which we force with a
        // tiny lambda and a long flat stretch.
        let mut prices = vec![1.0; 400];
        prices.push(2.0);
        let config = HistoricalConfig::new(1, ReturnKind::Log, YearFraction::ZERO)
            .unwrap()
            .with_filter(VolatilityFilter::Ewma { lambda: 0.01 })
            .unwrap();
        match historical_scenarios(&[history("Z", &prices)], None, &config) {
            Err(Error::InvalidHistory {
                factor: f,
                index: 399,
                ..
            }) => assert_eq!(f, factor("Z")),
            other => panic!("{other:?}"),
        }
    }
}
