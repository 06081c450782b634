//! Monte Carlo scenarios: correlated normal or Student-t shocks, generated in
//! fixed-size chunks so the output does not depend on the thread count and
//! ten million paths can be streamed in bounded memory.
//!
//! See [`MonteCarloGenerator`] for the algorithm and the seeding.

use super::{ScenarioSet, ShockKind, group_columns};
use crate::error::{Error, Result};
use crate::market::RiskFactor;
use crate::scenario::CorrelationMatrix;
use crate::units::YearFraction;
use rand::SeedableRng;
use rand_distr::{ChiSquared, Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
#[cfg(feature = "rayon")]
use rayon::prelude::*;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Default number of paths per chunk.
pub const DEFAULT_CHUNK_SIZE: usize = 4096;

/// The distribution of the uncorrelated draws.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ShockDistribution {
    /// Standard normal.
    Normal,
    /// Multivariate Student-t with `degrees_of_freedom > 2`, scaled to unit
    /// variance (one chi-square draw per path, shared across factors).
    StudentT {
        /// Degrees of freedom `ν` (> 2 so the variance exists).
        degrees_of_freedom: f64,
    },
}

impl ShockDistribution {
    fn validate(self) -> Result<Self> {
        if let ShockDistribution::StudentT { degrees_of_freedom } = self
            && !(degrees_of_freedom.is_finite() && degrees_of_freedom > 2.0)
        {
            return Err(Error::InvalidInput {
                what: "Student-t degrees of freedom",
                rule: "finite and > 2",
                value: degrees_of_freedom,
            });
        }
        Ok(self)
    }
}

/// Settings of a Monte Carlo scenario generation.
///
/// ```
/// use portfolio_margin::{MonteCarloConfig, ShockDistribution, YearFraction, DayBasis};
/// let config = MonteCarloConfig::new(42, 100_000, YearFraction::from_days(10.0, DayBasis::Calendar365)?)?
///     .with_distribution(ShockDistribution::StudentT { degrees_of_freedom: 5.0 })?;
/// assert_eq!(config.chunk_size(), 4096);
/// assert!(config.clone().with_distribution(ShockDistribution::StudentT { degrees_of_freedom: 2.0 }).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::MonteCarloConfig", into = "raw::MonteCarloConfig")
)]
pub struct MonteCarloConfig {
    seed: u64,
    paths: usize,
    horizon: YearFraction,
    distribution: ShockDistribution,
    chunk_size: usize,
}

impl MonteCarloConfig {
    /// `paths` normal scenarios over `horizon`, from `seed`, in chunks of
    /// [`DEFAULT_CHUNK_SIZE`].
    ///
    /// # Errors
    /// [`Error::TooFew`] if `paths == 0`.
    pub fn new(seed: u64, paths: usize, horizon: YearFraction) -> Result<Self> {
        if paths == 0 {
            return Err(Error::TooFew {
                what: "Monte Carlo paths",
                min: 1,
                got: 0,
            });
        }
        Ok(MonteCarloConfig {
            seed,
            paths,
            horizon,
            distribution: ShockDistribution::Normal,
            chunk_size: DEFAULT_CHUNK_SIZE,
        })
    }

    /// Sets the distribution of the draws.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for Student-t degrees of freedom not finite
    /// and `> 2`.
    pub fn with_distribution(mut self, distribution: ShockDistribution) -> Result<Self> {
        self.distribution = distribution.validate()?;
        Ok(self)
    }

    /// Sets the number of paths per chunk (part of the random stream's
    /// definition: a different size gives different draws).
    ///
    /// # Errors
    /// [`Error::TooFew`] if `chunk_size == 0`.
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Result<Self> {
        if chunk_size == 0 {
            return Err(Error::TooFew {
                what: "Monte Carlo chunk size",
                min: 1,
                got: 0,
            });
        }
        self.chunk_size = chunk_size;
        Ok(self)
    }

    /// Random seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Number of paths (scenarios).
    pub fn paths(&self) -> usize {
        self.paths
    }
    /// Horizon of every scenario, in years.
    pub fn horizon(&self) -> YearFraction {
        self.horizon
    }
    /// Distribution of the draws.
    pub fn distribution(&self) -> ShockDistribution {
        self.distribution
    }
    /// Paths per chunk.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }
}

/// One simulated risk factor: what it shocks, how, and its volatility.
///
/// ```
/// use portfolio_margin::{RiskFactor, ShockKind, SimulatedFactor, UnderlyingId};
/// let btc = UnderlyingId::new("BTC")?;
/// let spot = SimulatedFactor::new(RiskFactor::Spot(btc.clone()), ShockKind::Log, 0.60)?;
/// let vol = SimulatedFactor::new(RiskFactor::Vol(btc), ShockKind::Log, 1.20)?;
/// assert_eq!(spot.annual_vol(), 0.60);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::SimulatedFactor", into = "raw::SimulatedFactor")
)]
pub struct SimulatedFactor {
    factor: RiskFactor,
    kind: ShockKind,
    annual_vol: f64,
}

impl SimulatedFactor {
    /// A factor shocked by `kind` with annualised volatility `annual_vol`.
    ///
    /// Use [`ShockKind::Log`] for spots and volatilities (log-normal: the
    /// value stays positive) and [`ShockKind::Absolute`] for rates.
    ///
    /// # Units
    /// `annual_vol` is the annualised standard deviation of the shock size:
    /// of log returns for `Log` (`0.60` = 60%), in the value's own unit for
    /// `Absolute` (`0.01` = 100 bp a year for a rate).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `annual_vol` is finite and `>= 0`, or
    /// if `kind` is [`ShockKind::Relative`] (a normal relative shock can fall
    /// below -100%; use `Log`).
    pub fn new(factor: RiskFactor, kind: ShockKind, annual_vol: f64) -> Result<Self> {
        crate::error::non_negative("simulated factor annual volatility", annual_vol)?;
        if kind == ShockKind::Relative {
            return Err(Error::InvalidInput {
                what: "Monte Carlo shock kind",
                rule: "Absolute or Log (a normal relative shock can fall below -100%)",
                value: f64::NAN,
            });
        }
        Ok(SimulatedFactor {
            factor,
            kind,
            annual_vol,
        })
    }

    /// The risk factor.
    pub fn factor(&self) -> &RiskFactor {
        &self.factor
    }
    /// The shock kind (`Log` or `Absolute`).
    pub fn kind(&self) -> ShockKind {
        self.kind
    }
    /// Annualised volatility of the shock size.
    pub fn annual_vol(&self) -> f64 {
        self.annual_vol
    }
}

/// Generates correlated Monte Carlo scenarios.
///
/// # Algorithm
/// For each path, in this order on the chunk's generator:
/// 1. `n` independent standard normals `z` (ziggurat, [`rand_distr::StandardNormal`]);
/// 2. for [`ShockDistribution::StudentT`] only, one chi-square draw `w` with
///    `ν` degrees of freedom (shared by all factors of the path);
/// 3. `y = L z` with `L Lᵀ = C` ([`CorrelationMatrix::factor`]);
/// 4. for Student-t, `y *= sqrt((ν - 2) / w)`: a multivariate t with
///    correlation `C`, scaled to unit variance (a plain t has variance
///    `ν / (ν - 2)`); all factors of a path share `w`, so they are jointly
///    heavy-tailed and tail-dependent (not independent t marginals);
/// 5. shock size `x_j = σ_j √h y_j + d_j`, where `σ_j` is the factor's annual
///    volatility, `h` the horizon in years, and the drift `d_j = -σ_j² h / 2`
///    for [`ShockKind::Log`] shocks (so that `E[S_h] = S_0` under the normal
///    distribution: a martingale, zero-drift shock) and `0` for `Absolute`
///    shocks. Under Student-t the same drift keeps the scale consistent but
///    `E[exp(x)]` does not exist (the t distribution has no exponential
///    moments).
///
/// # Seeding and determinism
/// Paths are grouped into chunks of `chunk_size` (the last one may be
/// shorter). Chunk `c` uses its own [`Xoshiro256PlusPlus`] seeded with
/// `seed_from_u64(splitmix64(seed ^ splitmix64(c)))` (SplitMix64 of
/// Steele, Lea & Flood 2014; `seed_from_u64` expands 64 bits to the 256-bit
/// state with PCG32 as `rand_core` 0.10 documents). A chunk's numbers depend
/// only on the seed, its index and the chunk size, so any thread count, and
/// [`MonteCarloGenerator::chunk`] called alone, give the same bits. Changing
/// `chunk_size` changes the draws.
///
/// # Output
/// Output columns are the factors in the order given. The per-chunk stream
/// makes the output bit-identical for any thread count and between
/// [`MonteCarloGenerator::generate`], [`MonteCarloGenerator::chunk`] and
/// [`MonteCarloGenerator::for_each_chunk`].
///
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let eth = UnderlyingId::new("ETH")?;
/// let config = MonteCarloConfig::new(7, 10_000, YearFraction::from_days(1.0, DayBasis::Calendar365)?)?;
/// let generator = MonteCarloGenerator::new(
///     config,
///     vec![
///         SimulatedFactor::new(RiskFactor::Spot(btc), ShockKind::Log, 0.6)?,
///         SimulatedFactor::new(RiskFactor::Spot(eth), ShockKind::Log, 0.8)?,
///     ],
///     &CorrelationMatrix::new(2, vec![1.0, 0.8, 0.8, 1.0])?,
/// )?;
/// let set = generator.generate()?;
/// assert_eq!((set.len(), set.n_factors()), (10_000, 2));
/// // Stream instead of materialising: worst BTC log return per chunk.
/// let worst = generator.for_each_chunk(|_, chunk| {
///     Ok(chunk.column(0).fold(f64::INFINITY, f64::min))
/// })?;
/// assert_eq!(worst.len(), generator.n_chunks());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MonteCarloGenerator {
    config: MonteCarloConfig,
    factors: Vec<SimulatedFactor>,
    columns: Vec<(RiskFactor, ShockKind)>,
    /// Row-major factor `L` with `L Lᵀ = C`.
    loading: Vec<f64>,
    /// Whether `loading` is lower triangular.
    lower: bool,
    /// `σ_j √h` per factor.
    scale: Vec<f64>,
    /// Drift per factor (`-σ_j² h / 2` for log shocks).
    drift: Vec<f64>,
    /// `(χ²(ν), ν - 2)` for Student-t.
    student: Option<(ChiSquared<f64>, f64)>,
}

impl MonteCarloGenerator {
    /// A generator for `factors` with correlation `correlation` (indexed like
    /// `factors`).
    ///
    /// # Errors
    /// - [`Error::TooFew`] if `factors` is empty;
    /// - [`Error::LengthMismatch`] if the correlation dimension differs from
    ///   the number of factors;
    /// - [`Error::DuplicateId`] if a risk factor appears twice;
    /// - [`Error::InvalidInput`] if a scale `σ √h` or drift overflows;
    /// - [`Error::NoConvergence`] if factoring the correlation fails.
    pub fn new(
        config: MonteCarloConfig,
        factors: Vec<SimulatedFactor>,
        correlation: &CorrelationMatrix,
    ) -> Result<Self> {
        if factors.is_empty() {
            return Err(Error::TooFew {
                what: "simulated factors",
                min: 1,
                got: 0,
            });
        }
        if correlation.dimension() != factors.len() {
            return Err(Error::LengthMismatch {
                what: "correlation matrix dimension (one per simulated factor)",
                expected: factors.len(),
                got: correlation.dimension(),
            });
        }
        let columns: Vec<(RiskFactor, ShockKind)> =
            factors.iter().map(|f| (f.factor.clone(), f.kind)).collect();
        group_columns(&columns)?;
        let h = config.horizon.years();
        let mut scale = Vec::with_capacity(factors.len());
        let mut drift = Vec::with_capacity(factors.len());
        for f in &factors {
            let s = crate::error::finite("Monte Carlo shock scale (vol * sqrt(horizon))", {
                f.annual_vol * h.sqrt()
            })?;
            let d = match f.kind {
                ShockKind::Log => -0.5 * s * s,
                ShockKind::Absolute | ShockKind::Relative => 0.0,
            };
            drift.push(crate::error::finite("Monte Carlo log drift", d)?);
            scale.push(s);
        }
        let student = match config.distribution {
            ShockDistribution::Normal => None,
            ShockDistribution::StudentT { degrees_of_freedom } => {
                let chi = ChiSquared::new(degrees_of_freedom).map_err(|_| Error::InvalidInput {
                    what: "Student-t degrees of freedom",
                    rule: "finite and > 2",
                    value: degrees_of_freedom,
                })?;
                Some((chi, degrees_of_freedom - 2.0))
            }
        };
        let (loading, lower) = correlation.factor_with_shape()?;
        Ok(MonteCarloGenerator {
            config,
            factors,
            columns,
            loading,
            lower,
            scale,
            drift,
            student,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MonteCarloConfig {
        &self.config
    }

    /// The simulated factors, in column order.
    pub fn factors(&self) -> &[SimulatedFactor] {
        &self.factors
    }

    /// Number of chunks: `ceil(paths / chunk_size)`.
    pub fn n_chunks(&self) -> usize {
        self.config.paths.div_ceil(self.config.chunk_size)
    }

    /// Path (scenario) indices of chunk `chunk_index`, or `None` past the end.
    pub fn chunk_paths(&self, chunk_index: usize) -> Option<Range<usize>> {
        let start = chunk_index.checked_mul(self.config.chunk_size)?;
        if start >= self.config.paths {
            return None;
        }
        let end = start
            .saturating_add(self.config.chunk_size)
            .min(self.config.paths);
        Some(start..end)
    }

    /// The scenarios of one chunk (paths `chunk_paths(chunk_index)`), equal
    /// bit for bit to those rows of [`MonteCarloGenerator::generate`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `chunk_index >= n_chunks()` or the chunk
    /// cannot be allocated; [`Error::InvalidShock`] if a draw is not finite
    /// (not expected).
    pub fn chunk(&self, chunk_index: usize) -> Result<ScenarioSet> {
        let paths = self.chunk_paths(chunk_index).ok_or(Error::InvalidInput {
            what: "Monte Carlo chunk index",
            rule: "< number of chunks",
            value: chunk_index as f64,
        })?;
        let mut sizes = super::zeroed(
            paths.len().saturating_mul(self.factors.len()),
            "Monte Carlo chunk paths x factors",
        )?;
        self.fill_chunk(chunk_index, &mut sizes);
        ScenarioSet::new(self.columns.clone(), sizes, self.config.horizon)
    }

    /// All `paths` scenarios in one set.
    ///
    /// Memory is `8 * paths * n_factors` bytes; for millions of paths use
    /// [`MonteCarloGenerator::for_each_chunk`]. Chunks are filled in parallel
    /// with the `rayon` feature (same bits either way).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `paths * n_factors` numbers cannot be
    /// allocated;
    /// [`Error::InvalidShock`] if a draw is not finite (not expected).
    pub fn generate(&self) -> Result<ScenarioSet> {
        let n = self.factors.len();
        let total = self
            .config
            .paths
            .checked_mul(n)
            .ok_or(Error::InvalidInput {
                what: "Monte Carlo paths x factors",
                rule: "small enough to allocate",
                value: self.config.paths as f64,
            })?;
        let mut sizes = super::zeroed(total, "Monte Carlo paths x factors")?;
        let stride = self.config.chunk_size.saturating_mul(n);
        #[cfg(feature = "rayon")]
        sizes
            .par_chunks_mut(stride)
            .enumerate()
            .for_each(|(c, out)| self.fill_chunk(c, out));
        #[cfg(not(feature = "rayon"))]
        sizes
            .chunks_mut(stride)
            .enumerate()
            .for_each(|(c, out)| self.fill_chunk(c, out));
        ScenarioSet::new(self.columns.clone(), sizes, self.config.horizon)
    }

    /// Streams the scenarios chunk by chunk: calls `consume(chunk_index,
    /// chunk)` for every chunk and returns the results in chunk order.
    ///
    /// Only the chunks being consumed are in memory (one per worker thread
    /// with the `rayon` feature, which runs chunks in parallel), so ten
    /// million paths need a few megabytes plus the results. Combine the
    /// results in the returned (chunk) order for thread-count-independent
    /// totals.
    ///
    /// # Errors
    /// The first error in chunk order, from generation or from `consume`.
    pub fn for_each_chunk<T, F>(&self, consume: F) -> Result<Vec<T>>
    where
        T: Send,
        F: Fn(usize, ScenarioSet) -> Result<T> + Sync + Send,
    {
        let run = |c: usize| self.chunk(c).and_then(|set| consume(c, set));
        #[cfg(feature = "rayon")]
        let results: Vec<Result<T>> = (0..self.n_chunks()).into_par_iter().map(run).collect();
        #[cfg(not(feature = "rayon"))]
        let results: Vec<Result<T>> = (0..self.n_chunks()).map(run).collect();
        results.into_iter().collect()
    }

    /// Fills `out` (the chunk's `paths * n` sizes, scenario-major).
    fn fill_chunk(&self, chunk_index: usize, out: &mut [f64]) {
        let n = self.factors.len();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(chunk_seed(self.config.seed, chunk_index));
        let mut z = vec![0.0; n];
        for row in out.chunks_exact_mut(n) {
            for zk in z.iter_mut() {
                *zk = StandardNormal.sample(&mut rng);
            }
            let t = match &self.student {
                None => 1.0,
                Some((chi, nu_minus_two)) => {
                    let w: f64 = chi.sample(&mut rng);
                    (nu_minus_two / w).sqrt()
                }
            };
            for (i, ((x, loads), (s, d))) in row
                .iter_mut()
                .zip(self.loading.chunks_exact(n))
                .zip(self.scale.iter().zip(&self.drift))
                .enumerate()
            {
                let width = if self.lower { i + 1 } else { n };
                let y: f64 = loads.iter().zip(&z).take(width).map(|(l, zk)| l * zk).sum();
                *x = s * (y * t) + d;
            }
        }
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of chunk `chunk_index`: `splitmix64(seed ^ splitmix64(chunk_index))`.
fn chunk_seed(seed: u64, chunk_index: usize) -> u64 {
    splitmix64(seed ^ splitmix64(chunk_index as u64))
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    fn default_chunk_size() -> usize {
        DEFAULT_CHUNK_SIZE
    }

    fn normal() -> ShockDistribution {
        ShockDistribution::Normal
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MonteCarloConfig {
        seed: u64,
        paths: usize,
        horizon: YearFraction,
        #[serde(default = "normal")]
        distribution: ShockDistribution,
        #[serde(default = "default_chunk_size")]
        chunk_size: usize,
    }

    impl TryFrom<MonteCarloConfig> for super::MonteCarloConfig {
        type Error = Error;
        fn try_from(r: MonteCarloConfig) -> Result<Self> {
            super::MonteCarloConfig::new(r.seed, r.paths, r.horizon)?
                .with_distribution(r.distribution)?
                .with_chunk_size(r.chunk_size)
        }
    }

    impl From<super::MonteCarloConfig> for MonteCarloConfig {
        fn from(c: super::MonteCarloConfig) -> Self {
            MonteCarloConfig {
                seed: c.seed,
                paths: c.paths,
                horizon: c.horizon,
                distribution: c.distribution,
                chunk_size: c.chunk_size,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimulatedFactor {
        factor: RiskFactor,
        kind: ShockKind,
        annual_vol: f64,
    }

    impl TryFrom<SimulatedFactor> for super::SimulatedFactor {
        type Error = Error;
        fn try_from(r: SimulatedFactor) -> Result<Self> {
            super::SimulatedFactor::new(r.factor, r.kind, r.annual_vol)
        }
    }

    impl From<super::SimulatedFactor> for SimulatedFactor {
        fn from(f: super::SimulatedFactor) -> Self {
            SimulatedFactor {
                factor: f.factor,
                kind: f.kind,
                annual_vol: f.annual_vol,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::UnderlyingId;

    fn spot(name: &str, vol: f64) -> SimulatedFactor {
        SimulatedFactor::new(
            RiskFactor::Spot(UnderlyingId::new(name).unwrap()),
            ShockKind::Log,
            vol,
        )
        .unwrap()
    }

    fn generator(paths: usize, chunk: usize, dist: ShockDistribution) -> MonteCarloGenerator {
        let config = MonteCarloConfig::new(11, paths, YearFraction::new(0.25).unwrap())
            .unwrap()
            .with_chunk_size(chunk)
            .unwrap()
            .with_distribution(dist)
            .unwrap();
        MonteCarloGenerator::new(
            config,
            vec![spot("A", 0.2), spot("B", 0.4), spot("C", 0.1)],
            &CorrelationMatrix::new(3, vec![1.0, 0.5, -0.3, 0.5, 1.0, 0.2, -0.3, 0.2, 1.0])
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn config_validates() {
        let h = YearFraction::ZERO;
        assert!(MonteCarloConfig::new(0, 0, h).is_err());
        let c = MonteCarloConfig::new(0, 1, h).unwrap();
        assert!(c.clone().with_chunk_size(0).is_err());
        for bad in [2.0, 1.5, f64::NAN, f64::INFINITY] {
            assert!(
                c.clone()
                    .with_distribution(ShockDistribution::StudentT {
                        degrees_of_freedom: bad
                    })
                    .is_err()
            );
        }
        let u = RiskFactor::Spot(UnderlyingId::new("A").unwrap());
        assert!(SimulatedFactor::new(u.clone(), ShockKind::Relative, 0.2).is_err());
        assert!(SimulatedFactor::new(u.clone(), ShockKind::Log, -0.2).is_err());
        assert!(SimulatedFactor::new(u, ShockKind::Absolute, 0.0).is_ok());
    }

    #[test]
    fn generator_validates() {
        let config = MonteCarloConfig::new(1, 10, YearFraction::ZERO).unwrap();
        let c2 = CorrelationMatrix::identity(2).unwrap();
        assert!(matches!(
            MonteCarloGenerator::new(config.clone(), vec![spot("A", 0.1)], &c2),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            MonteCarloGenerator::new(config.clone(), vec![spot("A", 0.1), spot("A", 0.2)], &c2),
            Err(Error::DuplicateId { .. })
        ));
        assert!(matches!(
            MonteCarloGenerator::new(config, vec![], &c2),
            Err(Error::TooFew { .. })
        ));
    }

    #[test]
    fn chunks_match_generate_bit_for_bit() {
        for dist in [
            ShockDistribution::Normal,
            ShockDistribution::StudentT {
                degrees_of_freedom: 4.0,
            },
        ] {
            let g = generator(1000, 64, dist);
            assert_eq!(g.n_chunks(), 16);
            assert_eq!(g.chunk_paths(15), Some(960..1000));
            assert_eq!(g.chunk_paths(16), None);
            let all = g.generate().unwrap();
            let mut streamed = Vec::new();
            for c in 0..g.n_chunks() {
                streamed.extend_from_slice(g.chunk(c).unwrap().sizes());
            }
            assert_eq!(streamed, all.sizes());
            let per_chunk = g.for_each_chunk(|_, s| Ok(s.sizes().to_vec())).unwrap();
            assert_eq!(per_chunk.concat(), all.sizes());
            assert!(g.chunk(16).is_err());
            // Same seed, same bits; another seed differs.
            assert_eq!(generator(1000, 64, dist).generate().unwrap(), all);
        }
    }

    #[test]
    fn consumer_errors_come_back_in_chunk_order() {
        let g = generator(1000, 100, ShockDistribution::Normal);
        let r = g.for_each_chunk(|c, _| {
            if c >= 3 {
                Err(Error::TooFew {
                    what: "test",
                    min: c,
                    got: 0,
                })
            } else {
                Ok(c)
            }
        });
        assert_eq!(
            r,
            Err(Error::TooFew {
                what: "test",
                min: 3,
                got: 0
            })
        );
    }

    #[test]
    fn log_drift_and_zero_horizon() {
        let config = MonteCarloConfig::new(3, 100, YearFraction::ZERO).unwrap();
        let g = MonteCarloGenerator::new(
            config,
            vec![spot("A", 0.5)],
            &CorrelationMatrix::identity(1).unwrap(),
        )
        .unwrap();
        assert!(g.generate().unwrap().sizes().iter().all(|&x| x == 0.0));
        // A zero-vol log factor gets exactly the zero drift.
        let config = MonteCarloConfig::new(3, 10, YearFraction::new(1.0).unwrap()).unwrap();
        let g = MonteCarloGenerator::new(
            config,
            vec![spot("A", 0.0)],
            &CorrelationMatrix::identity(1).unwrap(),
        )
        .unwrap();
        assert!(g.generate().unwrap().sizes().iter().all(|&x| x == 0.0));
    }

    #[test]
    fn oversized_requests_fail_without_panicking() {
        let huge = |paths: usize| {
            let config = MonteCarloConfig::new(1, paths, YearFraction::ZERO)
                .unwrap()
                .with_chunk_size(usize::MAX)
                .unwrap();
            MonteCarloGenerator::new(
                config,
                vec![spot("A", 0.1), spot("B", 0.1)],
                &CorrelationMatrix::identity(2).unwrap(),
            )
            .unwrap()
        };
        assert!(huge(usize::MAX).generate().is_err());
        assert!(huge(1 << 52).generate().is_err());
        assert!(huge(1 << 52).chunk(0).is_err());
        assert_eq!(huge(usize::MAX).n_chunks(), 1);
        assert!(CorrelationMatrix::identity(1 << 31).is_err());
    }

    #[test]
    fn splitmix_matches_reference() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference code:
        // next() adds the golden gamma to the state, then mixes).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
        assert_ne!(chunk_seed(1, 0), chunk_seed(1, 1));
        assert_ne!(chunk_seed(1, 0), chunk_seed(0, 1));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn config_serde_round_trip() {
        let c = MonteCarloConfig::new(5, 10, YearFraction::new(0.1).unwrap())
            .unwrap()
            .with_distribution(ShockDistribution::StudentT {
                degrees_of_freedom: 5.0,
            })
            .unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<MonteCarloConfig>(&json).unwrap(), c);
        let bad = json.replace("5.0", "1.0");
        assert!(serde_json::from_str::<MonteCarloConfig>(&bad).is_err());
        let minimal: MonteCarloConfig =
            serde_json::from_str(r#"{"seed":1,"paths":2,"horizon":0.5}"#).unwrap();
        assert_eq!(minimal.chunk_size(), DEFAULT_CHUNK_SIZE);
    }
}
