//! Scenarios: dense sets of risk-factor shocks, and the ways to build them.
//!
//! A [`ScenarioSet`] is a matrix: an ordered list of factor columns, each a
//! [`RiskFactor`] with the [`ShockKind`] that applies to it, and one row of
//! shock sizes per scenario, stored scenario-major in one `Vec<f64>`. Every
//! scenario also moves time forward by the set's `horizon`.
//!
//! Sets come from
//! - [`historical_scenarios`]: returns over overlapping windows of a price
//!   history, optionally volatility-filtered;
//! - [`MonteCarloGenerator`]: correlated normal or Student-t draws, streamed
//!   in fixed-size chunks with results independent of the thread count;
//! - [`stress_scenarios`] and [`StressGrid`]: named user scenarios and
//!   regular spot x vol grids.
//!
//! [`ScenarioSet::apply`] turns one scenario and a [`MarketSnapshot`] into the
//! shocked snapshot; [`ScenarioSet::apply_to_underlying`] shocks one
//! underlying's market only (the fast path for revaluation).

mod correlation;
mod historical;
mod monte_carlo;
mod stress;
mod vol_term;

pub use correlation::{
    CORRELATION_PSD_TOLERANCE, CORRELATION_SYMMETRY_TOLERANCE, CorrelationMatrix,
    NearestCorrelation, NearestCorrelationOptions, nearest_correlation,
};
pub use historical::{
    EWMA_DEFAULT_LAMBDA, HistoricalConfig, PriceHistory, ReturnKind, VolatilityFilter,
    historical_scenarios,
};
pub use monte_carlo::{
    DEFAULT_CHUNK_SIZE, MonteCarloConfig, MonteCarloGenerator, ShockDistribution, SimulatedFactor,
};
pub use stress::{GridAxis, GridScope, StressGrid, StressScenario, stress_scenarios};
pub use vol_term::VolTermScaling;

use crate::error::{Error, Result};
use crate::instrument::UnderlyingId;
use crate::market::{MarketSnapshot, RiskFactor, UnderlyingMarket, VolSurface};
use crate::units::YearFraction;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// How a shock of size `size` moves a market number `old`.
///
/// | kind | new value |
/// |---|---|
/// | `Absolute` | `old + size` |
/// | `Relative` | `old * (1 + size)` |
/// | `Log` | `old * exp(size)` |
///
/// A size of zero leaves the value unchanged (bit for bit) for every kind.
///
/// ```
/// use portfolio_margin::ShockKind;
/// assert_eq!(ShockKind::Absolute.apply(0.5, 0.1), 0.6);
/// assert_eq!(ShockKind::Relative.apply(100.0, -0.25), 75.0);
/// assert_eq!(ShockKind::Log.apply(100.0, 0.0), 100.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ShockKind {
    /// `new = old + size`, in the value's own unit (price, vol, rate).
    Absolute,
    /// `new = old * (1 + size)`; `size` is a decimal fraction (`-0.1` is -10%).
    Relative,
    /// `new = old * exp(size)`; `size` is a log return.
    Log,
}

impl ShockKind {
    /// The shocked value.
    ///
    /// May return a non-finite or non-positive number for extreme inputs;
    /// [`ScenarioSet::apply`] checks the result.
    pub fn apply(self, old: f64, size: f64) -> f64 {
        match self {
            ShockKind::Absolute => old + size,
            ShockKind::Relative => old * (1.0 + size),
            ShockKind::Log => old * size.exp(),
        }
    }

    /// Checks a shock size: finite, and `> -1` for a relative shock (a
    /// relative shock of `-1` or less would send a price to zero or below).
    fn check(self, size: f64) -> std::result::Result<(), &'static str> {
        if !size.is_finite() {
            return Err("finite");
        }
        if self == ShockKind::Relative && size <= -1.0 {
            return Err("> -1 for a relative shock");
        }
        Ok(())
    }
}

/// One shock: a kind and a size.
///
/// ```
/// use portfolio_margin::{Shock, ShockKind};
/// let down = Shock::new(ShockKind::Relative, -0.15)?;
/// assert_eq!(down.size(), -0.15);
/// assert!(Shock::new(ShockKind::Relative, -1.0).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::Shock", into = "raw::Shock")
)]
pub struct Shock {
    kind: ShockKind,
    size: f64,
}

impl Shock {
    /// A shock of `size` applied as `kind`.
    ///
    /// # Units
    /// `size` is in the unit the kind implies: the value's unit for
    /// `Absolute`, a decimal fraction for `Relative`, a log return for `Log`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `size` is finite (and `> -1` for a
    /// relative shock).
    pub fn new(kind: ShockKind, size: f64) -> Result<Self> {
        kind.check(size).map_err(|rule| Error::InvalidInput {
            what: "shock size",
            rule,
            value: size,
        })?;
        Ok(Shock { kind, size })
    }

    /// How the shock applies.
    pub fn kind(&self) -> ShockKind {
        self.kind
    }

    /// The shock size (unit depends on [`Shock::kind`]).
    pub fn size(&self) -> f64 {
        self.size
    }
}

/// Which columns of a [`ScenarioSet`] shock one underlying.
///
/// Returned by [`ScenarioSet::columns_for`]; each field is the column index
/// of that factor, or `None` if the set does not shock it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnderlyingColumns {
    /// Column of [`RiskFactor::Spot`].
    pub spot: Option<usize>,
    /// Column of [`RiskFactor::Vol`].
    pub vol: Option<usize>,
    /// Column of [`RiskFactor::Rate`].
    pub rate: Option<usize>,
    /// Column of [`RiskFactor::CarryYield`].
    pub carry_yield: Option<usize>,
}

impl UnderlyingColumns {
    /// `true` if no column shocks the underlying.
    pub fn is_empty(&self) -> bool {
        self.spot.is_none()
            && self.vol.is_none()
            && self.rate.is_none()
            && self.carry_yield.is_none()
    }
}

/// A dense set of scenarios: `len()` rows by `factors().len()` columns of
/// shock sizes, stored scenario-major.
///
/// Column `j` shocks `factors()[j].0` with kind `factors()[j].1`; the size of
/// scenario `i` for column `j` is `sizes()[i * n_factors() + j]`, and
/// [`ScenarioSet::scenario`]`(i)` is row `i`. Every scenario also moves the
/// valuation time forward by [`ScenarioSet::horizon`].
///
/// Validated on construction: at least one factor and one scenario, no factor
/// twice, every size finite, relative sizes `> -1`.
///
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let set = ScenarioSet::new(
///     vec![(RiskFactor::Spot(btc.clone()), ShockKind::Relative), (RiskFactor::Vol(btc.clone()), ShockKind::Absolute)],
///     vec![-0.10, 0.10, /* scenario 1: */ 0.10, -0.10],
///     YearFraction::ZERO,
/// )?;
/// assert_eq!(set.len(), 2);
/// assert_eq!(set.scenario(1), &[0.10, -0.10]);
///
/// let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.50)?)?)
///     .build()?;
/// let shocked = set.apply(0, &market)?;
/// assert_eq!(shocked.underlying(&btc)?.spot(), 90_000.0);
/// assert_eq!(shocked.underlying(&btc)?.vol(), &VolSurface::flat(0.60)?);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::ScenarioSet", into = "raw::ScenarioSet")
)]
pub struct ScenarioSet {
    factors: Vec<(RiskFactor, ShockKind)>,
    sizes: Vec<f64>,
    len: usize,
    names: Option<Vec<String>>,
    horizon: YearFraction,
    vol_term_scaling: Option<VolTermScaling>,
    /// Columns per underlying, sorted by id (derived, for lookups).
    groups: Vec<(UnderlyingId, UnderlyingColumns)>,
}

impl ScenarioSet {
    /// A set from its factor columns and scenario-major shock sizes
    /// (`sizes.len() == n_scenarios * factors.len()`).
    ///
    /// # Units
    /// Sizes as [`ShockKind`] implies; `horizon` in years.
    ///
    /// # Errors
    /// - [`Error::TooFew`] if there are no factors or no sizes;
    /// - [`Error::LengthMismatch`] if `sizes.len()` is not a multiple of the
    ///   number of factors (`expected` is the next multiple);
    /// - [`Error::DuplicateId`] if a risk factor appears twice;
    /// - [`Error::InvalidShock`] naming the scenario and factor of the first
    ///   non-finite size, or relative size `<= -1`.
    pub fn new(
        factors: Vec<(RiskFactor, ShockKind)>,
        sizes: Vec<f64>,
        horizon: YearFraction,
    ) -> Result<Self> {
        let n = factors.len();
        if n == 0 {
            return Err(Error::TooFew {
                what: "scenario factors",
                min: 1,
                got: 0,
            });
        }
        if sizes.is_empty() {
            return Err(Error::TooFew {
                what: "scenarios",
                min: 1,
                got: 0,
            });
        }
        if !sizes.len().is_multiple_of(n) {
            return Err(Error::LengthMismatch {
                what: "scenario shock sizes (scenarios x factors)",
                expected: sizes.len().div_ceil(n) * n,
                got: sizes.len(),
            });
        }
        let groups = group_columns(&factors)?;
        for (index, &size) in sizes.iter().enumerate() {
            let (factor, kind) = &factors[index % n];
            if let Err(rule) = kind.check(size) {
                return Err(Error::InvalidShock {
                    scenario: index / n,
                    factor: factor.clone(),
                    what: "shock size",
                    rule,
                    value: size,
                });
            }
        }
        Ok(ScenarioSet {
            len: sizes.len() / n,
            factors,
            sizes,
            names: None,
            horizon,
            vol_term_scaling: None,
            groups,
        })
    }

    /// Attaches one name per scenario (e.g. a date window or "spot -15%").
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless there is exactly one name per scenario.
    pub fn with_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.len {
            return Err(Error::LengthMismatch {
                what: "scenario names",
                expected: self.len,
                got: names.len(),
            });
        }
        self.names = Some(names);
        Ok(self)
    }

    /// Number of scenarios (rows).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a set holds at least one scenario.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of factor columns.
    pub fn n_factors(&self) -> usize {
        self.factors.len()
    }

    /// The factor columns, in order: each risk factor with its shock kind.
    pub fn factors(&self) -> &[(RiskFactor, ShockKind)] {
        &self.factors
    }

    /// Column index of `factor`, if the set shocks it.
    pub fn factor_index(&self, factor: &RiskFactor) -> Option<usize> {
        self.factors.iter().position(|(f, _)| f == factor)
    }

    /// Columns that shock `underlying` (look them up once, then use
    /// [`ScenarioSet::scenario`] per scenario).
    pub fn columns_for(&self, underlying: &UnderlyingId) -> UnderlyingColumns {
        self.groups
            .binary_search_by(|(id, _)| id.cmp(underlying))
            .ok()
            .and_then(|k| self.groups.get(k))
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }

    /// All shock sizes, scenario-major (`len() * n_factors()` numbers).
    pub fn sizes(&self) -> &[f64] {
        &self.sizes
    }

    /// The shock sizes of scenario `i`, one per factor column.
    ///
    /// # Panics
    /// If `i >= len()`, like slice indexing; [`ScenarioSet::get`] does not panic.
    pub fn scenario(&self, i: usize) -> &[f64] {
        let n = self.factors.len();
        &self.sizes[i * n..(i + 1) * n]
    }

    /// The shock sizes of scenario `i`, or `None` if `i >= len()`.
    pub fn get(&self, i: usize) -> Option<&[f64]> {
        let n = self.factors.len();
        let start = i.checked_mul(n)?;
        self.sizes.get(start..start.checked_add(n)?)
    }

    /// Iterator over scenarios (rows of shock sizes) in order.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, f64> {
        self.sizes.chunks_exact(self.factors.len())
    }

    /// The shock sizes of column `j` across all scenarios (strided); empty if
    /// `j >= n_factors()`.
    pub fn column(&self, j: usize) -> impl Iterator<Item = f64> + '_ {
        let n = self.factors.len();
        let len = if j < n { self.len } else { 0 };
        self.sizes.iter().skip(j).step_by(n).take(len).copied()
    }

    /// Scenario names, if attached.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// Name of scenario `i`, if names are attached and `i < len()`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.as_ref()?.get(i).map(String::as_str)
    }

    /// Time every scenario moves forward, in years.
    pub fn horizon(&self) -> YearFraction {
        self.horizon
    }

    /// Scales every vol shock of the set by each option's time to expiry
    /// during revaluation (see [`VolTermScaling`]).
    ///
    /// ```
    /// use portfolio_margin::*;
    /// let btc = UnderlyingId::new("BTC")?;
    /// let set = ScenarioSet::new(vec![(RiskFactor::Vol(btc), ShockKind::Relative)], vec![0.5], YearFraction::ZERO)?
    ///     .with_vol_term_scaling(VolTermScaling::new(30.0, 0.3, 0.13, 1.0, 0.5)?);
    /// assert!(set.vol_term_scaling().is_some());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn with_vol_term_scaling(mut self, scaling: VolTermScaling) -> Self {
        self.vol_term_scaling = Some(scaling);
        self
    }

    /// The vol-shock term scaling, if any.
    pub fn vol_term_scaling(&self) -> Option<&VolTermScaling> {
        self.vol_term_scaling.as_ref()
    }

    /// The snapshot after scenario `i`: every shocked factor moved by its
    /// shock, `as_of` moved forward by the horizon
    /// ([`crate::Timestamp::plus_years`]); underlyings the set does not shock
    /// are copied unchanged.
    ///
    /// Spot shocks move the spot; vol shocks move the whole surface
    /// (`Absolute`: [`VolSurface::shifted`] by `size`; `Relative`:
    /// [`VolSurface::scaled`] by `1 + size`; `Log`: scaled by `exp(size)`);
    /// rate and carry-yield shocks move the rate (usually `Absolute`, in
    /// decimal rate units).
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] if `i >= len()`;
    /// - [`Error::MissingUnderlying`] if a shocked underlying is not in
    ///   `snapshot`;
    /// - [`Error::InvalidShock`] naming the scenario and factor if a shocked
    ///   spot or volatility is not finite and positive, or a shocked rate or
    ///   carry yield is not finite.
    pub fn apply(&self, i: usize, snapshot: &MarketSnapshot) -> Result<MarketSnapshot> {
        let row = self.row(i)?;
        let mut builder = MarketSnapshot::builder(snapshot.as_of().plus_years(self.horizon));
        for (id, _) in &self.groups {
            // Every shocked underlying must exist in the snapshot.
            snapshot.underlying(id)?;
        }
        for (id, market) in snapshot.underlyings() {
            let columns = self.columns_for(id);
            let next = if columns.is_empty() {
                market.clone()
            } else {
                self.shock_market(i, row, columns, market)?
            };
            builder = builder.underlying(id.clone(), next);
        }
        builder.build()
    }

    /// One underlying's market after scenario `i` (the time shift is not
    /// applied: the caller ages its instruments by [`ScenarioSet::horizon`]).
    ///
    /// Cheaper than [`ScenarioSet::apply`] when an instrument depends on one
    /// underlying. Returns a copy of `market` if the set does not shock
    /// `underlying`.
    ///
    /// # Errors
    /// As [`ScenarioSet::apply`].
    pub fn apply_to_underlying(
        &self,
        i: usize,
        underlying: &UnderlyingId,
        market: &UnderlyingMarket,
    ) -> Result<UnderlyingMarket> {
        let row = self.row(i)?;
        let columns = self.columns_for(underlying);
        if columns.is_empty() {
            return Ok(market.clone());
        }
        self.shock_market(i, row, columns, market)
    }

    fn row(&self, i: usize) -> Result<&[f64]> {
        self.get(i).ok_or(Error::InvalidInput {
            what: "scenario index",
            rule: "< number of scenarios",
            value: i as f64,
        })
    }

    fn shock_market(
        &self,
        i: usize,
        row: &[f64],
        columns: UnderlyingColumns,
        market: &UnderlyingMarket,
    ) -> Result<UnderlyingMarket> {
        let column = |j: Option<usize>| -> Option<(&RiskFactor, ShockKind, f64)> {
            let j = j?;
            let (factor, kind) = self.factors.get(j)?;
            Some((factor, *kind, *row.get(j)?))
        };
        let bad = |factor: &RiskFactor, what, rule, value| Error::InvalidShock {
            scenario: i,
            factor: factor.clone(),
            what,
            rule,
            value,
        };
        let mut spot = market.spot();
        if let Some((factor, kind, size)) = column(columns.spot) {
            spot = kind.apply(spot, size);
            if !(spot.is_finite() && spot > 0.0) {
                return Err(bad(factor, "shocked spot", "finite and > 0", spot));
            }
        }
        let mut rate = market.rate();
        if let Some((factor, kind, size)) = column(columns.rate) {
            rate = kind.apply(rate, size);
            if !rate.is_finite() {
                return Err(bad(factor, "shocked rate", "finite", rate));
            }
        }
        let mut carry = market.carry_yield();
        if let Some((factor, kind, size)) = column(columns.carry_yield) {
            carry = kind.apply(carry, size);
            if !carry.is_finite() {
                return Err(bad(factor, "shocked carry yield", "finite", carry));
            }
        }
        let vol = match column(columns.vol) {
            None => market.vol().clone(),
            Some((factor, kind, size)) => shock_surface(market.vol(), kind, size)
                .map_err(|value| bad(factor, "shocked volatility", "finite and > 0", value))?,
        };
        UnderlyingMarket::new(spot, rate, carry, vol)
    }
}

/// Moves a whole surface; on failure returns the offending value.
fn shock_surface(
    surface: &VolSurface,
    kind: ShockKind,
    size: f64,
) -> std::result::Result<VolSurface, f64> {
    let result = match kind {
        ShockKind::Absolute => surface.shifted(size),
        ShockKind::Relative => surface.scaled(1.0 + size),
        ShockKind::Log => surface.scaled(size.exp()),
    };
    result.map_err(|e| match e {
        Error::InvalidInput { value, .. } | Error::InvalidElement { value, .. } => value,
        _ => f64::NAN,
    })
}

/// A zero-filled vector of `len` numbers, or an error instead of an
/// allocation panic or abort when `len` is too large.
fn zeroed(len: usize, what: &'static str) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::InvalidInput {
        what,
        rule: "small enough to allocate",
        value: len as f64,
    })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// Groups columns by underlying; rejects a factor that appears twice.
fn group_columns(
    factors: &[(RiskFactor, ShockKind)],
) -> Result<Vec<(UnderlyingId, UnderlyingColumns)>> {
    let mut groups: Vec<(UnderlyingId, UnderlyingColumns)> = Vec::new();
    for (j, (factor, _)) in factors.iter().enumerate() {
        let id = factor.underlying();
        let k = match groups.binary_search_by(|(g, _)| g.cmp(id)) {
            Ok(k) => k,
            Err(k) => {
                groups.insert(k, (id.clone(), UnderlyingColumns::default()));
                k
            }
        };
        let Some((_, columns)) = groups.get_mut(k) else {
            continue;
        };
        let slot = match factor {
            RiskFactor::Spot(_) => &mut columns.spot,
            RiskFactor::Vol(_) => &mut columns.vol,
            RiskFactor::Rate(_) => &mut columns.rate,
            RiskFactor::CarryYield(_) => &mut columns.carry_yield,
        };
        if slot.is_some() {
            return Err(Error::DuplicateId {
                what: "scenario risk factor",
                id: factor.to_string(),
            });
        }
        *slot = Some(j);
    }
    Ok(groups)
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Shock {
        kind: ShockKind,
        size: f64,
    }

    impl TryFrom<Shock> for super::Shock {
        type Error = Error;
        fn try_from(r: Shock) -> Result<Self> {
            super::Shock::new(r.kind, r.size)
        }
    }

    impl From<super::Shock> for Shock {
        fn from(s: super::Shock) -> Self {
            Shock {
                kind: s.kind,
                size: s.size,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ScenarioSet {
        factors: Vec<(RiskFactor, ShockKind)>,
        sizes: Vec<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        names: Option<Vec<String>>,
        horizon: YearFraction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vol_term_scaling: Option<VolTermScaling>,
    }

    impl TryFrom<ScenarioSet> for super::ScenarioSet {
        type Error = Error;
        fn try_from(r: ScenarioSet) -> Result<Self> {
            let mut set = super::ScenarioSet::new(r.factors, r.sizes, r.horizon)?;
            set.vol_term_scaling = r.vol_term_scaling;
            match r.names {
                Some(names) => set.with_names(names),
                None => Ok(set),
            }
        }
    }

    impl From<super::ScenarioSet> for ScenarioSet {
        fn from(s: super::ScenarioSet) -> Self {
            ScenarioSet {
                factors: s.factors,
                sizes: s.sizes,
                names: s.names,
                horizon: s.horizon,
                vol_term_scaling: s.vol_term_scaling,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Timestamp;

    fn id(s: &str) -> UnderlyingId {
        UnderlyingId::new(s).unwrap()
    }

    fn market() -> MarketSnapshot {
        MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0).unwrap())
            .underlying(
                id("BTC"),
                UnderlyingMarket::new(100_000.0, 0.04, 0.01, VolSurface::flat(0.5).unwrap())
                    .unwrap(),
            )
            .underlying(
                id("ETH"),
                UnderlyingMarket::new(4_000.0, 0.03, 0.0, VolSurface::flat(0.7).unwrap()).unwrap(),
            )
            .build()
            .unwrap()
    }

    fn btc_set(sizes: Vec<f64>, kinds: [ShockKind; 4]) -> Result<ScenarioSet> {
        ScenarioSet::new(
            vec![
                (RiskFactor::Spot(id("BTC")), kinds[0]),
                (RiskFactor::Vol(id("BTC")), kinds[1]),
                (RiskFactor::Rate(id("BTC")), kinds[2]),
                (RiskFactor::CarryYield(id("BTC")), kinds[3]),
            ],
            sizes,
            YearFraction::new(0.5).unwrap(),
        )
    }

    const ALL_ABSOLUTE: [ShockKind; 4] = [ShockKind::Absolute; 4];

    #[test]
    fn shock_kinds_follow_their_formulas() {
        assert_eq!(ShockKind::Absolute.apply(2.0, 0.5), 2.5);
        assert_eq!(ShockKind::Relative.apply(2.0, 0.5), 3.0);
        assert_eq!(ShockKind::Log.apply(2.0, 0.5), 2.0 * 0.5f64.exp());
        for kind in [ShockKind::Absolute, ShockKind::Relative, ShockKind::Log] {
            assert_eq!(kind.apply(1234.5678, 0.0), 1234.5678);
        }
    }

    #[test]
    fn construction_validates() {
        let ok = btc_set(vec![0.0; 8], ALL_ABSOLUTE).unwrap();
        assert_eq!((ok.len(), ok.n_factors()), (2, 4));
        assert!(matches!(
            btc_set(vec![0.0; 7], ALL_ABSOLUTE),
            Err(Error::LengthMismatch {
                expected: 8,
                got: 7,
                ..
            })
        ));
        assert!(matches!(
            btc_set(vec![], ALL_ABSOLUTE),
            Err(Error::TooFew { .. })
        ));
        assert!(matches!(
            ScenarioSet::new(vec![], vec![], YearFraction::ZERO),
            Err(Error::TooFew { .. })
        ));
        let mut sizes = vec![0.0; 8];
        sizes[6] = f64::NAN;
        match btc_set(sizes, ALL_ABSOLUTE) {
            Err(Error::InvalidShock {
                scenario, factor, ..
            }) => {
                assert_eq!(scenario, 1);
                assert_eq!(factor, RiskFactor::Rate(id("BTC")));
            }
            other => panic!("{other:?}"),
        }
        let kinds = [
            ShockKind::Relative,
            ShockKind::Absolute,
            ShockKind::Absolute,
            ShockKind::Absolute,
        ];
        assert!(btc_set(vec![-0.999, 0.0, 0.0, 0.0], kinds).is_ok());
        assert!(matches!(
            btc_set(vec![-1.0, 0.0, 0.0, 0.0], kinds),
            Err(Error::InvalidShock { scenario: 0, .. })
        ));
        let dup = ScenarioSet::new(
            vec![
                (RiskFactor::Spot(id("BTC")), ShockKind::Log),
                (RiskFactor::Spot(id("BTC")), ShockKind::Relative),
            ],
            vec![0.0, 0.0],
            YearFraction::ZERO,
        );
        assert!(matches!(dup, Err(Error::DuplicateId { .. })));
        assert!(ok.clone().with_names(vec!["a".into()]).is_err());
        let named = ok.with_names(vec!["a".into(), "b".into()]).unwrap();
        assert_eq!(named.name(1), Some("b"));
        assert_eq!(named.name(2), None);
    }

    #[test]
    fn accessors_are_consistent() {
        let sizes: Vec<f64> = (0..12).map(f64::from).collect();
        let set = btc_set(sizes.clone(), ALL_ABSOLUTE).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.scenario(2), &sizes[8..12]);
        assert_eq!(set.get(3), None);
        assert_eq!(set.get(usize::MAX), None);
        assert_eq!(set.iter().count(), 3);
        assert_eq!(set.column(1).collect::<Vec<_>>(), vec![1.0, 5.0, 9.0]);
        assert_eq!(set.column(4).count(), 0);
        assert_eq!(set.factor_index(&RiskFactor::Vol(id("BTC"))), Some(1));
        assert_eq!(set.factor_index(&RiskFactor::Vol(id("ETH"))), None);
        let c = set.columns_for(&id("BTC"));
        assert_eq!(
            (c.spot, c.vol, c.rate, c.carry_yield),
            (Some(0), Some(1), Some(2), Some(3))
        );
        assert!(set.columns_for(&id("ETH")).is_empty());
    }

    #[test]
    fn apply_moves_every_factor_and_time() {
        let kinds = [
            ShockKind::Log,
            ShockKind::Relative,
            ShockKind::Absolute,
            ShockKind::Absolute,
        ];
        let set = btc_set(vec![0.1, -0.2, 0.01, -0.005], kinds).unwrap();
        let base = market();
        let shocked = set.apply(0, &base).unwrap();
        let btc = shocked.underlying(&id("BTC")).unwrap();
        assert_eq!(btc.spot(), 100_000.0 * 0.1f64.exp());
        assert_eq!(btc.vol(), &VolSurface::flat(0.5 * 0.8).unwrap());
        assert_eq!(btc.rate(), 0.04 + 0.01);
        assert_eq!(btc.carry_yield(), 0.01 - 0.005);
        assert_eq!(
            shocked.underlying(&id("ETH")).unwrap(),
            base.underlying(&id("ETH")).unwrap()
        );
        assert_eq!(
            shocked.as_of(),
            base.as_of().plus_years(YearFraction::new(0.5).unwrap())
        );
        let one = set
            .apply_to_underlying(0, &id("BTC"), base.underlying(&id("BTC")).unwrap())
            .unwrap();
        assert_eq!(&one, btc);
        assert!(set.apply(1, &base).is_err());
    }

    #[test]
    fn apply_names_scenario_and_factor_on_bad_results() {
        let base = market();
        // Absolute spot shock through zero.
        let set = btc_set(
            vec![0.0, 0.0, 0.0, 0.0, -100_000.0, 0.0, 0.0, 0.0],
            ALL_ABSOLUTE,
        )
        .unwrap();
        assert!(set.apply(0, &base).is_ok());
        match set.apply(1, &base) {
            Err(Error::InvalidShock {
                scenario: 1,
                factor: RiskFactor::Spot(u),
                value,
                ..
            }) => {
                assert_eq!(u, id("BTC"));
                assert_eq!(value, 0.0);
            }
            other => panic!("{other:?}"),
        }
        // Vol shifted below zero.
        let set = btc_set(vec![0.0, -0.6, 0.0, 0.0], ALL_ABSOLUTE).unwrap();
        match set.apply(0, &base) {
            Err(Error::InvalidShock {
                factor: RiskFactor::Vol(_),
                value,
                ..
            }) => assert!((value + 0.1).abs() < 1e-15),
            other => panic!("{other:?}"),
        }
        // Log vol shock that underflows the vol to zero.
        let kinds = [
            ShockKind::Absolute,
            ShockKind::Log,
            ShockKind::Absolute,
            ShockKind::Absolute,
        ];
        let set = btc_set(vec![0.0, -1000.0, 0.0, 0.0], kinds).unwrap();
        assert!(matches!(
            set.apply(0, &base),
            Err(Error::InvalidShock {
                factor: RiskFactor::Vol(_),
                ..
            })
        ));
        // Relative spot shock overflowing to infinity.
        let kinds = [
            ShockKind::Relative,
            ShockKind::Absolute,
            ShockKind::Absolute,
            ShockKind::Absolute,
        ];
        let set = btc_set(vec![1e305, 0.0, 0.0, 0.0], kinds).unwrap();
        assert!(matches!(
            set.apply(0, &base),
            Err(Error::InvalidShock {
                factor: RiskFactor::Spot(_),
                ..
            })
        ));
    }

    #[test]
    fn apply_requires_shocked_underlyings() {
        let set = ScenarioSet::new(
            vec![(RiskFactor::Spot(id("SOL")), ShockKind::Relative)],
            vec![0.1],
            YearFraction::ZERO,
        )
        .unwrap();
        assert_eq!(
            set.apply(0, &market()),
            Err(Error::MissingUnderlying(id("SOL")))
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_validates() {
        let set = btc_set(vec![0.1, 0.2, 0.3, 0.4], ALL_ABSOLUTE)
            .unwrap()
            .with_names(vec!["x".into()])
            .unwrap();
        let json = serde_json::to_string(&set).unwrap();
        let back: ScenarioSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        let bad = json.replace("0.1", "-1e400");
        assert!(serde_json::from_str::<ScenarioSet>(&bad).is_err());
        let shock: Shock = serde_json::from_str(r#"{"kind":"relative","size":-0.5}"#).unwrap();
        assert_eq!(shock, Shock::new(ShockKind::Relative, -0.5).unwrap());
        assert!(serde_json::from_str::<Shock>(r#"{"kind":"relative","size":-1.5}"#).is_err());
    }

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ScenarioSet>();
        check::<Shock>();
        check::<CorrelationMatrix>();
        check::<MonteCarloGenerator>();
        check::<StressGrid>();
        check::<PriceHistory>();
    }
}
