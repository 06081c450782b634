//! Monte Carlo VaR and ES of a portfolio with streamed revaluation.
//!
//! The scenarios are generated chunk by chunk ([`MonteCarloGenerator::chunk`]);
//! each chunk is revalued ([`RiskArrays::compute`] on the instruments the
//! portfolio holds), reduced to the book's P&L ([`portfolio_pnl`]) and written
//! into one P&L vector at the chunk's offset. Only that vector (`8 * paths`
//! bytes) outlives a chunk; VaR and ES are then read off it with the
//! [`QuantileRule::Empirical`] rule.

use crate::error::{Error, Result};
use crate::market::MarketSnapshot;
use crate::measure::{LossDistribution, QuantileRule};
use crate::pnl::{Revaluation, RiskArrays, portfolio_pnl};
use crate::portfolio::{InstrumentSet, Portfolio};
use crate::progress::{Flow, ProgressUpdate, Tracker};
use crate::scenario::MonteCarloGenerator;
use crate::units::Confidence;
#[cfg(feature = "rayon")]
use rayon::prelude::*;
#[cfg(feature = "serde")]
use serde::Serialize;

/// Monte Carlo value at risk and expected shortfall of one portfolio, with
/// their estimated standard errors.
///
/// # Units
/// `value_at_risk`, `expected_shortfall` and their standard errors are in the
/// quote currency of the P&L ([`portfolio_pnl`]); positive = loss.
///
/// # Estimators
/// With `n = paths`, tail probability `α = 1 - confidence` and losses
/// `L(1) >= ... >= L(n)` (`L = -P&L`):
///
/// - **VaR** `= L(k)`, `k = ceil(n α)` and **ES** `= (L(1) + ... + L(k)) / k`
///   ([`QuantileRule::Empirical`]).
/// - **VaR standard error**: the asymptotic order-statistic formula
///   `sqrt(α (1 - α) / n) / f(VaR)`, with the sparsity `1 / f(VaR)` (the
///   slope of the quantile function) estimated by the Siddiqui-Bloch-Gastwirth
///   central difference of the empirical quantile function,
///   `1 / f ≈ (L(k - d) - L(k + d)) / (2 d / n)`, with half-width
///   `d = max(1, floor((n α)^(4/5) / 2))` order statistics (clamped to the
///   sample, one-sided at its ends). The bandwidth is the classic
///   `h ∝ n^(-1/5)` rate applied to the tail count, so that the difference
///   stays inside the tail.
/// - **ES standard error**: the asymptotic variance of the
///   Rockafellar-Uryasev form `ES = VaR + E[(L - VaR)⁺] / α` (the VaR
///   estimation error does not enter at first order),
///   `sqrt(Var((L - VaR)⁺) / n) / α`, with the variance estimated from the
///   sample (Manistre & Hancock 2005, "Variance of the CTE estimator").
///
/// All four numbers are computed from the sorted losses with sums in a fixed
/// order, so they are deterministic (the same bits on any thread count).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct MonteCarloRisk {
    /// Value at risk (loss, quote currency).
    pub value_at_risk: f64,
    /// Expected shortfall (loss, quote currency; `>= value_at_risk`).
    pub expected_shortfall: f64,
    /// Estimated standard error of `value_at_risk` (quote currency).
    pub var_standard_error: f64,
    /// Estimated standard error of `expected_shortfall` (quote currency).
    pub es_standard_error: f64,
    /// Number of simulated paths.
    pub paths: usize,
    /// Confidence level, e.g. `0.99`.
    pub confidence: f64,
}

/// Monte Carlo VaR and ES of `portfolio` over the scenarios of `generator`,
/// revalued with `method`.
///
/// # Algorithm and memory
/// The instruments the portfolio holds are taken out of `instruments` once.
/// For each chunk `c` of the generator the scenarios are generated, revalued
/// and summed into the book's P&L, which is written at paths
/// `generator.chunk_paths(c)` of one vector; chunk scenarios and risk arrays
/// are dropped as soon as the chunk is done. Peak memory is the P&L vector
/// (`8 * paths` bytes), a sorted copy of it for the measures (another
/// `8 * paths`), and one chunk's scenarios and arrays per worker thread.
///
/// With the `rayon` feature chunks run in parallel on the current pool
/// (choose it with `ThreadPool::install`); every chunk writes only its own
/// slice, so the result is the same bits on any number of threads and
/// without the feature. See [`MonteCarloRisk`] for the estimators.
///
/// # Errors
/// - [`Error::TooFew`] if the portfolio has no position, or the generator
///   fewer than 2 paths (no standard error can be estimated);
/// - [`Error::UnknownInstrument`] if a position's instrument is not in
///   `instruments`;
/// - from revaluation ([`RiskArrays::compute`]), wrapped in
///   [`Error::InInstrument`]: [`Error::MissingUnderlying`] if the market has
///   no data for a held underlying, [`Error::InvalidShock`],
///   [`Error::InvalidInput`], ...; the error of the first failing chunk;
/// - [`Error::NonFiniteResult`] if a P&L or a measure overflows.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let mut set = InstrumentSet::new();
/// set.insert(InstrumentId::new("PERP")?, Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
/// let book = Portfolio::new(AccountId::new("a"), vec![Position::new(InstrumentId::new("PERP")?, 1.0)], &set)?;
/// let config = MonteCarloConfig::new(1, 20_000, YearFraction::from_days(1.0, DayBasis::Calendar365)?)?;
/// let generator = MonteCarloGenerator::new(
///     config,
///     vec![SimulatedFactor::new(RiskFactor::Spot(btc), ShockKind::Log, 0.5)?],
///     &CorrelationMatrix::new(1, vec![1.0])?,
/// )?;
/// let risk = monte_carlo_risk(&book, &set, &market, &generator, Confidence::new(0.99)?, Revaluation::Full)?;
/// // Exact: the spot's 1% log-return quantile is -σ²h/2 - 2.3263 σ √h.
/// let (sigma, h) = (0.5_f64, 1.0 / 365.0);
/// let exact = 100_000.0 * (1.0 - (-sigma * sigma * h / 2.0 - 2.326348 * sigma * h.sqrt()).exp());
/// assert!((exact - 5_939.0).abs() < 1.0);
/// assert!((risk.value_at_risk - exact).abs() < 4.0 * risk.var_standard_error);
/// assert!(risk.expected_shortfall >= risk.value_at_risk);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn monte_carlo_risk(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    generator: &MonteCarloGenerator,
    confidence: Confidence,
    method: Revaluation,
) -> Result<MonteCarloRisk> {
    risk_observed(
        portfolio,
        instruments,
        market,
        generator,
        confidence,
        method,
        None,
    )
}

/// [`monte_carlo_risk`] reporting its progress to `progress` after every
/// chunk, which may cancel it.
///
/// `progress` is called as described in [`Flow`]: once with `done = 0`,
/// then once per finished chunk (`total = generator.n_chunks()`, stage
/// [`MONTE_CARLO_STAGE`]), possibly from rayon worker threads but never two
/// calls at once. The result is the same bits as [`monte_carlo_risk`]'s, on
/// any number of threads.
///
/// # Errors
/// As [`monte_carlo_risk`], and [`Error::Cancelled`] if `progress` answered
/// [`Flow::Cancel`] (whatever else failed).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// # let btc = UnderlyingId::new("BTC")?;
/// # let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
/// #     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.5)?)?)
/// #     .build()?;
/// # let mut set = InstrumentSet::new();
/// # set.insert(InstrumentId::new("PERP")?, Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
/// # let book = Portfolio::new(AccountId::new("a"), vec![Position::new(InstrumentId::new("PERP")?, 1.0)], &set)?;
/// let config = MonteCarloConfig::new(1, 20_000, YearFraction::from_days(1.0, DayBasis::Calendar365)?)?;
/// let generator = MonteCarloGenerator::new(
///     config,
///     vec![SimulatedFactor::new(RiskFactor::Spot(btc), ShockKind::Log, 0.5)?],
///     &CorrelationMatrix::new(1, vec![1.0])?,
/// )?;
/// let confidence = Confidence::new(0.99)?;
/// // Print a percentage; the numbers equal the unobserved call's.
/// let show = |u: ProgressUpdate| {
///     println!("{}: {:.0}%", u.stage, 100.0 * u.done as f64 / u.total as f64);
///     Flow::Continue
/// };
/// let risk = monte_carlo_risk_with_progress(&book, &set, &market, &generator, confidence, Revaluation::Full, &show)?;
/// assert_eq!(risk, monte_carlo_risk(&book, &set, &market, &generator, confidence, Revaluation::Full)?);
/// // Stop after the first chunk.
/// let stop = |u: ProgressUpdate| if u.done >= 1 { Flow::Cancel } else { Flow::Continue };
/// let err = monte_carlo_risk_with_progress(&book, &set, &market, &generator, confidence, Revaluation::Full, &stop);
/// assert!(matches!(err, Err(Error::Cancelled { done: 1, total: 5, .. })));
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn monte_carlo_risk_with_progress(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    generator: &MonteCarloGenerator,
    confidence: Confidence,
    method: Revaluation,
    progress: &(dyn Fn(ProgressUpdate) -> Flow + Sync),
) -> Result<MonteCarloRisk> {
    risk_observed(
        portfolio,
        instruments,
        market,
        generator,
        confidence,
        method,
        Some(progress),
    )
}

/// The [`ProgressUpdate::stage`] of the Monte Carlo functions
/// ([`monte_carlo_risk_with_progress`], [`monte_carlo_pnl`]); units are
/// chunks of [`MonteCarloGenerator`].
pub const MONTE_CARLO_STAGE: &str = "Monte Carlo revaluation";

/// The book's P&L on every Monte Carlo path (the vector
/// [`monte_carlo_risk`] reads VaR and ES off), reporting progress to
/// `progress` after every chunk.
///
/// Use it to look at the whole distribution (a histogram, other
/// quantiles); [`MonteCarloRisk::from_pnl`] on the result equals
/// [`monte_carlo_risk`] bit for bit. Pass `&|_| Flow::Continue` to observe
/// nothing. See [`monte_carlo_risk_with_progress`] for how `progress` is
/// called.
///
/// # Units
/// Quote currency per path, positive = gain; entry `i` is path `i` of
/// `generator` (the same bits on any number of threads).
///
/// # Errors
/// As [`monte_carlo_risk`] (except that one path is enough), and
/// [`Error::Cancelled`] if `progress` answered [`Flow::Cancel`].
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// # let btc = UnderlyingId::new("BTC")?;
/// # let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
/// #     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.5)?)?)
/// #     .build()?;
/// # let mut set = InstrumentSet::new();
/// # set.insert(InstrumentId::new("PERP")?, Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
/// # let book = Portfolio::new(AccountId::new("a"), vec![Position::new(InstrumentId::new("PERP")?, 1.0)], &set)?;
/// let config = MonteCarloConfig::new(7, 10_000, YearFraction::from_days(1.0, DayBasis::Calendar365)?)?;
/// let generator = MonteCarloGenerator::new(
///     config,
///     vec![SimulatedFactor::new(RiskFactor::Spot(btc), ShockKind::Log, 0.5)?],
///     &CorrelationMatrix::new(1, vec![1.0])?,
/// )?;
/// let pnl = monte_carlo_pnl(&book, &set, &market, &generator, Revaluation::Full, &|_| Flow::Continue)?;
/// assert_eq!(pnl.len(), 10_000);
/// let confidence = Confidence::new(0.99)?;
/// assert_eq!(
///     MonteCarloRisk::from_pnl(&pnl, confidence)?,
///     monte_carlo_risk(&book, &set, &market, &generator, confidence, Revaluation::Full)?,
/// );
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn monte_carlo_pnl(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    generator: &MonteCarloGenerator,
    method: Revaluation,
    progress: &(dyn Fn(ProgressUpdate) -> Flow + Sync),
) -> Result<Vec<f64>> {
    pnl_observed(
        portfolio,
        instruments,
        market,
        generator,
        method,
        Some(progress),
    )
}

impl MonteCarloRisk {
    /// VaR, ES and their standard errors from the P&L of `pnl.len()`
    /// Monte Carlo paths (see [`MonteCarloRisk`] for the estimators).
    ///
    /// # Units
    /// `pnl` in the quote currency, positive = gain; the result as
    /// [`MonteCarloRisk`].
    ///
    /// # Errors
    /// [`Error::TooFew`] for fewer than 2 paths; [`Error::InvalidElement`]
    /// for a non-finite P&L; [`Error::NonFiniteResult`] if a measure
    /// overflows.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let pnl: Vec<f64> = (0..1_000).map(|i| f64::from(i) - 500.0).collect();
    /// let risk = MonteCarloRisk::from_pnl(&pnl, Confidence::new(0.99)?)?;
    /// assert_eq!(risk.value_at_risk, 491.0); // the 10th largest loss
    /// assert_eq!(risk.expected_shortfall, 495.5); // mean of the 10 largest
    /// assert_eq!(risk.paths, 1_000);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn from_pnl(pnl: &[f64], confidence: Confidence) -> Result<MonteCarloRisk> {
        at_least_two_paths(pnl.len())?;
        let distribution = LossDistribution::from_pnl(pnl)?;
        let rule = QuantileRule::Empirical;
        let value_at_risk = distribution.value_at_risk(confidence, rule);
        let expected_shortfall = distribution.expected_shortfall(confidence, rule)?;
        let losses = distribution.losses_descending();
        let var_standard_error = var_standard_error(losses, confidence)?;
        let es_standard_error = es_standard_error(losses, value_at_risk, confidence)?;
        Ok(MonteCarloRisk {
            value_at_risk,
            expected_shortfall,
            var_standard_error,
            es_standard_error,
            paths: pnl.len(),
            confidence: confidence.level(),
        })
    }
}

fn at_least_two_paths(n: usize) -> Result<()> {
    if n < 2 {
        return Err(Error::TooFew {
            what: "Monte Carlo paths for VaR/ES standard errors",
            min: 2,
            got: n,
        });
    }
    Ok(())
}

fn risk_observed(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    generator: &MonteCarloGenerator,
    confidence: Confidence,
    method: Revaluation,
    progress: Option<&(dyn Fn(ProgressUpdate) -> Flow + Sync)>,
) -> Result<MonteCarloRisk> {
    has_positions(portfolio)?;
    at_least_two_paths(generator.config().paths())?;
    let pnl = pnl_observed(portfolio, instruments, market, generator, method, progress)?;
    MonteCarloRisk::from_pnl(&pnl, confidence)
}

fn has_positions(portfolio: &Portfolio) -> Result<()> {
    if portfolio.positions().is_empty() {
        return Err(Error::TooFew {
            what: "portfolio positions",
            min: 1,
            got: 0,
        });
    }
    Ok(())
}

/// The streamed P&L vector; `progress` observes chunks.
fn pnl_observed(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    generator: &MonteCarloGenerator,
    method: Revaluation,
    progress: Option<&(dyn Fn(ProgressUpdate) -> Flow + Sync)>,
) -> Result<Vec<f64>> {
    has_positions(portfolio)?;
    let n = generator.config().paths();
    let mut held = InstrumentSet::new();
    for p in portfolio.positions() {
        let instrument = instruments.get(&p.instrument)?;
        held.insert(p.instrument.clone(), instrument.clone())?;
    }

    let mut pnl: Vec<f64> = Vec::new();
    pnl.try_reserve_exact(n).map_err(|_| Error::InvalidInput {
        what: "Monte Carlo paths (portfolio P&L vector)",
        rule: "small enough to allocate",
        value: n as f64,
    })?;
    pnl.resize(n, 0.0);

    let tracker = progress.map(|p| Tracker::start(p, MONTE_CARLO_STAGE, generator.n_chunks()));
    let revalue_chunk = |c: usize, out: &mut [f64]| -> Result<()> {
        let scenarios = generator.chunk(c)?;
        let arrays = RiskArrays::compute(&held, market, &scenarios, method)?;
        drop(scenarios);
        let chunk_pnl = portfolio_pnl(portfolio, &arrays)?;
        if chunk_pnl.len() != out.len() {
            return Err(Error::LengthMismatch {
                what: "Monte Carlo chunk P&L",
                expected: out.len(),
                got: chunk_pnl.len(),
            });
        }
        out.copy_from_slice(&chunk_pnl);
        Ok(())
    };
    let fill = |c: usize, out: &mut [f64]| -> Result<()> {
        match &tracker {
            None => revalue_chunk(c, out),
            Some(t) => {
                t.check()?;
                let done = revalue_chunk(c, out);
                t.finish_one();
                done
            }
        }
    };
    let stride = generator.config().chunk_size();
    #[cfg(feature = "rayon")]
    let results: Vec<Result<()>> = pnl
        .par_chunks_mut(stride)
        .enumerate()
        .map(|(c, out)| fill(c, out))
        .collect();
    #[cfg(not(feature = "rayon"))]
    let results: Vec<Result<()>> = pnl
        .chunks_mut(stride)
        .enumerate()
        .map(|(c, out)| fill(c, out))
        .collect();
    if let Some(t) = &tracker {
        t.outcome()?;
    }
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(pnl)
}

/// `sqrt(α (1 - α) / n) / f(VaR)` with the sparsity from a central difference
/// of the empirical quantile function (see [`MonteCarloRisk`]).
/// `losses` is descending and has at least 2 elements.
fn var_standard_error(losses: &[f64], confidence: Confidence) -> Result<f64> {
    let n = losses.len();
    let alpha = confidence.tail();
    let k = crate::measure::tail_scenario_count(n, confidence);
    let tail = n as f64 * alpha;
    // d = max(1, floor(tail^(4/5) / 2)); the cast saturates for huge values.
    let d = ((tail.powf(0.8) / 2.0).floor() as usize).max(1);
    // 1-based order statistics k - d .. k + d, clamped to 1..=n.
    let lo = k.saturating_sub(d).max(1);
    let hi = k.saturating_add(d).min(n);
    let (upper, lower) = match (losses.get(lo - 1), losses.get(hi - 1)) {
        (Some(&u), Some(&l)) if hi > lo => (u, l),
        _ => {
            return Err(Error::TooFew {
                what: "Monte Carlo paths for the VaR standard error",
                min: 2,
                got: n,
            });
        }
    };
    let sparsity = (upper - lower) / ((hi - lo) as f64 / n as f64);
    let se = (alpha * (1.0 - alpha) / n as f64).sqrt() * sparsity;
    finite_result("Monte Carlo VaR standard error", se)
}

/// `sqrt(Var((L - VaR)⁺) / n) / α` (see [`MonteCarloRisk`]); `losses` descending.
fn es_standard_error(losses: &[f64], value_at_risk: f64, confidence: Confidence) -> Result<f64> {
    let n = losses.len() as f64;
    let alpha = confidence.tail();
    let (mut s1, mut s2) = (0.0_f64, 0.0_f64);
    for &l in losses.iter().take_while(|&&l| l > value_at_risk) {
        let e = l - value_at_risk;
        s1 += e;
        s2 += e * e;
    }
    let mean = s1 / n;
    let variance = (s2 / n - mean * mean).max(0.0);
    let se = (variance / n).sqrt() / alpha;
    finite_result("Monte Carlo ES standard error", se)
}

fn finite_result(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteResult { what, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_errors_of_uniform_losses() {
        // Losses n, n-1, ..., 1 (uniform on (0, n)): f = 1/n at every
        // quantile, so the VaR standard error is sqrt(α(1-α)/n) * n.
        let n = 100_000;
        let losses: Vec<f64> = (0..n).map(|i| (n - i) as f64).collect();
        let c = Confidence::new(0.99).unwrap();
        let se = var_standard_error(&losses, c).unwrap();
        let exact = (0.01 * 0.99 / n as f64).sqrt() * n as f64;
        assert!((se / exact - 1.0).abs() < 1e-3, "{se} vs {exact}");
        // (L - v)+ uniform on (0, αn) with mass α: Var = α (αn)^2/3 - (α αn/2)^2.
        let v = 99_000.0;
        let es = es_standard_error(&losses, v, c).unwrap();
        let a = 0.01;
        let w = a * n as f64;
        let var = a * w * w / 3.0 - (a * w / 2.0).powi(2);
        let exact_es = (var / n as f64).sqrt() / a;
        assert!((es / exact_es - 1.0).abs() < 1e-3, "{es} vs {exact_es}");
    }

    #[test]
    fn two_losses_have_a_finite_standard_error() {
        let c = Confidence::new(0.99).unwrap();
        let se = var_standard_error(&[2.0, 1.0], c).unwrap();
        assert!(se.is_finite() && se > 0.0);
        assert!(var_standard_error(&[2.0], c).is_err());
    }
}
