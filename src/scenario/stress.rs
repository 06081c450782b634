//! Stress scenarios: named user scenarios and regular spot x vol grids.

use super::{ScenarioSet, Shock, ShockKind};
use crate::error::{Error, Result};
use crate::instrument::UnderlyingId;
use crate::market::RiskFactor;
use crate::units::YearFraction;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Most points on one grid axis.
const MAX_GRID_POINTS: usize = 100_000;

/// A named scenario: a list of factor shocks (factors not listed are not
/// moved).
///
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let crash = StressScenario::new("BTC -30%, vol +50%", vec![
///     (RiskFactor::Spot(btc.clone()), Shock::new(ShockKind::Relative, -0.30)?),
///     (RiskFactor::Vol(btc), Shock::new(ShockKind::Relative, 0.50)?),
/// ])?;
/// assert_eq!(crash.shocks().len(), 2);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::StressScenario", into = "raw::StressScenario")
)]
pub struct StressScenario {
    name: String,
    shocks: Vec<(RiskFactor, Shock)>,
}

impl StressScenario {
    /// A scenario named `name` applying `shocks`.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] if a factor is shocked twice.
    pub fn new(name: impl Into<String>, shocks: Vec<(RiskFactor, Shock)>) -> Result<Self> {
        for (k, (factor, _)) in shocks.iter().enumerate() {
            if shocks[..k].iter().any(|(f, _)| f == factor) {
                return Err(Error::DuplicateId {
                    what: "stress scenario risk factor",
                    id: factor.to_string(),
                });
            }
        }
        Ok(StressScenario {
            name: name.into(),
            shocks,
        })
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shocks, in the order given.
    pub fn shocks(&self) -> &[(RiskFactor, Shock)] {
        &self.shocks
    }
}

/// Named scenarios as one dense set.
///
/// Columns are every factor any scenario shocks, in order of first
/// appearance; a scenario that does not shock a column gets size 0 there
/// (no move, for every kind). Names are the scenarios' names.
///
/// # Errors
/// - [`Error::TooFew`] if `scenarios` is empty or no scenario shocks any
///   factor;
/// - [`Error::DuplicateId`] if two scenarios shock the same factor with
///   different [`ShockKind`]s (one column has one kind; express both in the
///   same kind).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let eth = UnderlyingId::new("ETH")?;
/// let set = stress_scenarios(&[
///     StressScenario::new("BTC down", vec![(RiskFactor::Spot(btc), Shock::new(ShockKind::Relative, -0.2)?)])?,
///     StressScenario::new("ETH down", vec![(RiskFactor::Spot(eth), Shock::new(ShockKind::Relative, -0.3)?)])?,
/// ], YearFraction::ZERO)?;
/// assert_eq!(set.sizes(), &[-0.2, 0.0, 0.0, -0.3]);
/// assert_eq!(set.name(1), Some("ETH down"));
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn stress_scenarios(
    scenarios: &[StressScenario],
    horizon: YearFraction,
) -> Result<ScenarioSet> {
    if scenarios.is_empty() {
        return Err(Error::TooFew {
            what: "stress scenarios",
            min: 1,
            got: 0,
        });
    }
    let mut columns: Vec<(RiskFactor, ShockKind)> = Vec::new();
    for s in scenarios {
        for (factor, shock) in &s.shocks {
            match columns.iter().find(|(f, _)| f == factor) {
                None => columns.push((factor.clone(), shock.kind())),
                Some((_, kind)) if *kind == shock.kind() => {}
                Some(_) => {
                    return Err(Error::DuplicateId {
                        what: "stress risk factor (shocked with two different kinds)",
                        id: factor.to_string(),
                    });
                }
            }
        }
    }
    let n = columns.len();
    let mut sizes = vec![0.0; n * scenarios.len()];
    for (i, s) in scenarios.iter().enumerate() {
        for (factor, shock) in &s.shocks {
            if let Some(j) = columns.iter().position(|(f, _)| f == factor)
                && let Some(slot) = sizes.get_mut(i * n + j)
            {
                *slot = shock.size();
            }
        }
    }
    let names = scenarios.iter().map(|s| s.name.clone()).collect();
    ScenarioSet::new(columns, sizes, horizon)?.with_names(names)
}

/// One axis of a [`StressGrid`]: `points` evenly spaced moves from
/// `-max_move` to `+max_move` (inclusive), applied as `kind`.
///
/// Point `k` of `n` is `max_move * (2k - (n - 1)) / (n - 1)`, so the grid is
/// exactly symmetric and an odd `n` contains exactly 0; `n = 1` is the single
/// move 0.
///
/// ```
/// use portfolio_margin::{GridAxis, ShockKind};
/// let spot = GridAxis::new(ShockKind::Relative, 0.2, 5)?;
/// assert_eq!(spot.moves(), vec![-0.2, -0.1, 0.0, 0.1, 0.2]);
/// let vol = GridAxis::new(ShockKind::Absolute, 0.05, 2)?;
/// assert_eq!(vol.moves(), vec![-0.05, 0.05]);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::GridAxis", into = "raw::GridAxis")
)]
pub struct GridAxis {
    kind: ShockKind,
    max_move: f64,
    points: usize,
}

impl GridAxis {
    /// An axis of `points` moves in `[-max_move, max_move]`.
    ///
    /// # Units
    /// `max_move` in the unit of `kind` (a fraction for `Relative`, a vol or
    /// price for `Absolute`, a log return for `Log`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `max_move` is finite and `>= 0` (and
    /// `< 1` for a relative axis, whose lowest move would be -100% or
    /// worse) and `points <= 100 000`; [`Error::TooFew`] if `points == 0`.
    pub fn new(kind: ShockKind, max_move: f64, points: usize) -> Result<Self> {
        crate::error::non_negative("stress grid max move", max_move)?;
        if kind == ShockKind::Relative && max_move >= 1.0 {
            return Err(Error::InvalidInput {
                what: "stress grid max move",
                rule: "< 1 for a relative axis",
                value: max_move,
            });
        }
        if points == 0 {
            return Err(Error::TooFew {
                what: "stress grid points",
                min: 1,
                got: 0,
            });
        }
        if points > MAX_GRID_POINTS {
            return Err(Error::InvalidInput {
                what: "stress grid points",
                rule: "<= 100 000",
                value: points as f64,
            });
        }
        Ok(GridAxis {
            kind,
            max_move,
            points,
        })
    }

    /// How the moves apply.
    pub fn kind(&self) -> ShockKind {
        self.kind
    }
    /// The largest move in absolute value.
    pub fn max_move(&self) -> f64 {
        self.max_move
    }
    /// Number of points.
    pub fn points(&self) -> usize {
        self.points
    }

    /// The moves, ascending.
    pub fn moves(&self) -> Vec<f64> {
        if self.points == 1 {
            return vec![0.0];
        }
        let last = (self.points - 1) as f64;
        (0..self.points)
            .map(|k| self.max_move * (2.0 * k as f64 - last) / last)
            .collect()
    }
}

/// Which underlyings a grid scenario moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum GridScope {
    /// One full grid per underlying, the others unmoved (risk per
    /// underlying, as SPAN scans each combined commodity).
    PerUnderlying,
    /// One grid moving every underlying by the same move together.
    AllTogether,
}

/// A regular stress grid: spot moves x vol moves, per underlying or all
/// together.
///
/// The margin stage builds exchange grids (SPAN's 7 price x 2 vol points,
/// Deribit's spot x vol scenarios) on top of this.
///
/// ```
/// use portfolio_margin::*;
/// let grid = StressGrid::new(
///     GridAxis::new(ShockKind::Relative, 0.15, 7)?,
///     GridAxis::new(ShockKind::Relative, 0.30, 3)?,
///     GridScope::PerUnderlying,
///     YearFraction::ZERO,
/// );
/// let set = grid.scenarios(&[UnderlyingId::new("BTC")?, UnderlyingId::new("ETH")?])?;
/// assert_eq!(set.len(), 2 * 7 * 3);
/// assert_eq!(set.n_factors(), 4); // spot and vol of each
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(deny_unknown_fields)
)]
pub struct StressGrid {
    spot: GridAxis,
    vol: GridAxis,
    scope: GridScope,
    horizon: YearFraction,
}

impl StressGrid {
    /// A grid of `spot` x `vol` moves over `scope`, moving time forward by
    /// `horizon`.
    pub fn new(spot: GridAxis, vol: GridAxis, scope: GridScope, horizon: YearFraction) -> Self {
        StressGrid {
            spot,
            vol,
            scope,
            horizon,
        }
    }

    /// The spot axis.
    pub fn spot(&self) -> &GridAxis {
        &self.spot
    }
    /// The vol axis.
    pub fn vol(&self) -> &GridAxis {
        &self.vol
    }
    /// Which underlyings move together.
    pub fn scope(&self) -> GridScope {
        self.scope
    }
    /// Time each scenario moves forward, in years.
    pub fn horizon(&self) -> YearFraction {
        self.horizon
    }

    /// The grid's scenarios for `underlyings`.
    ///
    /// Columns: `Spot(u)`, `Vol(u)` for each underlying in order. Scenario
    /// order: spot move outer (ascending), vol move inner (ascending); for
    /// [`GridScope::PerUnderlying`], underlyings outermost. Names look like
    /// `"BTC: spot -0.15, vol +0.3"` (`"all: ..."` for
    /// [`GridScope::AllTogether`]).
    ///
    /// # Errors
    /// [`Error::TooFew`] if `underlyings` is empty; [`Error::DuplicateId`]
    /// if one is listed twice; [`Error::InvalidInput`] if the grid is too
    /// large to allocate.
    pub fn scenarios(&self, underlyings: &[UnderlyingId]) -> Result<ScenarioSet> {
        if underlyings.is_empty() {
            return Err(Error::TooFew {
                what: "stress grid underlyings",
                min: 1,
                got: 0,
            });
        }
        let columns: Vec<(RiskFactor, ShockKind)> = underlyings
            .iter()
            .flat_map(|u| {
                [
                    (RiskFactor::Spot(u.clone()), self.spot.kind),
                    (RiskFactor::Vol(u.clone()), self.vol.kind),
                ]
            })
            .collect();
        let n = columns.len();
        let spot_moves = self.spot.moves();
        let vol_moves = self.vol.moves();
        let groups: Vec<Option<usize>> = match self.scope {
            GridScope::PerUnderlying => (0..underlyings.len()).map(Some).collect(),
            GridScope::AllTogether => vec![None],
        };
        let n_scenarios = groups
            .len()
            .checked_mul(spot_moves.len() * vol_moves.len())
            .filter(|s| s.checked_mul(n).is_some())
            .ok_or(Error::InvalidInput {
                what: "stress grid scenarios",
                rule: "few enough to allocate",
                value: f64::INFINITY,
            })?;
        let mut sizes = Vec::new();
        sizes
            .try_reserve_exact(n_scenarios * n)
            .map_err(|_| Error::InvalidInput {
                what: "stress grid scenarios",
                rule: "few enough to allocate",
                value: n_scenarios as f64,
            })?;
        let mut names = Vec::with_capacity(n_scenarios);
        for group in &groups {
            let label = match group.and_then(|u| underlyings.get(u)) {
                Some(u) => u.as_str(),
                None => "all",
            };
            for &s in &spot_moves {
                for &v in &vol_moves {
                    for u in 0..underlyings.len() {
                        let moved = group.is_none_or(|g| g == u);
                        sizes.push(if moved { s } else { 0.0 });
                        sizes.push(if moved { v } else { 0.0 });
                    }
                    names.push(format!("{label}: spot {s:+}, vol {v:+}"));
                }
            }
        }
        ScenarioSet::new(columns, sizes, self.horizon)?.with_names(names)
    }
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct StressScenario {
        name: String,
        shocks: Vec<(RiskFactor, Shock)>,
    }

    impl TryFrom<StressScenario> for super::StressScenario {
        type Error = Error;
        fn try_from(r: StressScenario) -> Result<Self> {
            super::StressScenario::new(r.name, r.shocks)
        }
    }

    impl From<super::StressScenario> for StressScenario {
        fn from(s: super::StressScenario) -> Self {
            StressScenario {
                name: s.name,
                shocks: s.shocks,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GridAxis {
        kind: ShockKind,
        max_move: f64,
        points: usize,
    }

    impl TryFrom<GridAxis> for super::GridAxis {
        type Error = Error;
        fn try_from(r: GridAxis) -> Result<Self> {
            super::GridAxis::new(r.kind, r.max_move, r.points)
        }
    }

    impl From<super::GridAxis> for GridAxis {
        fn from(a: super::GridAxis) -> Self {
            GridAxis {
                kind: a.kind,
                max_move: a.max_move,
                points: a.points,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{MarketSnapshot, UnderlyingMarket, VolSurface};
    use crate::units::Timestamp;

    fn id(s: &str) -> UnderlyingId {
        UnderlyingId::new(s).unwrap()
    }

    fn shock(kind: ShockKind, size: f64) -> Shock {
        Shock::new(kind, size).unwrap()
    }

    #[test]
    fn axis_points_are_symmetric() {
        let a = GridAxis::new(ShockKind::Relative, 0.3, 5).unwrap();
        let m = a.moves();
        assert_eq!(m.len(), 5);
        assert_eq!(m[2], 0.0);
        for k in 0..5 {
            assert_eq!(m[k], -m[4 - k]);
        }
        assert_eq!(m[0], -0.3);
        assert_eq!(
            GridAxis::new(ShockKind::Log, 0.3, 1).unwrap().moves(),
            [0.0]
        );
        assert!(GridAxis::new(ShockKind::Relative, 1.0, 3).is_err());
        assert!(GridAxis::new(ShockKind::Absolute, 1.0, 0).is_err());
        assert!(GridAxis::new(ShockKind::Absolute, -0.1, 3).is_err());
        assert!(GridAxis::new(ShockKind::Absolute, f64::NAN, 3).is_err());
        assert!(GridAxis::new(ShockKind::Absolute, 1.0, MAX_GRID_POINTS + 1).is_err());
        assert!(GridAxis::new(ShockKind::Absolute, 1.0, MAX_GRID_POINTS).is_ok());
    }

    #[test]
    fn per_underlying_grid_moves_one_at_a_time() {
        let grid = StressGrid::new(
            GridAxis::new(ShockKind::Relative, 0.1, 3).unwrap(),
            GridAxis::new(ShockKind::Absolute, 0.05, 2).unwrap(),
            GridScope::PerUnderlying,
            YearFraction::ZERO,
        );
        let set = grid.scenarios(&[id("A"), id("B")]).unwrap();
        assert_eq!(set.len(), 12);
        assert_eq!(set.scenario(0), &[-0.1, -0.05, 0.0, 0.0]);
        assert_eq!(set.scenario(1), &[-0.1, 0.05, 0.0, 0.0]);
        assert_eq!(set.scenario(6), &[0.0, 0.0, -0.1, -0.05]);
        assert_eq!(set.scenario(11), &[0.0, 0.0, 0.1, 0.05]);
        assert_eq!(set.name(0), Some("A: spot -0.1, vol -0.05"));
        assert_eq!(
            set.factors()[3],
            (RiskFactor::Vol(id("B")), ShockKind::Absolute)
        );
        assert!(matches!(
            grid.scenarios(&[id("A"), id("A")]),
            Err(Error::DuplicateId { .. })
        ));
        assert!(grid.scenarios(&[]).is_err());
    }

    #[test]
    fn together_grid_moves_all() {
        let grid = StressGrid::new(
            GridAxis::new(ShockKind::Relative, 0.2, 3).unwrap(),
            GridAxis::new(ShockKind::Relative, 0.0, 1).unwrap(),
            GridScope::AllTogether,
            YearFraction::new(1.0 / 365.0).unwrap(),
        );
        let set = grid.scenarios(&[id("A"), id("B")]).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.scenario(2), &[0.2, 0.0, 0.2, 0.0]);
        assert_eq!(set.name(1), Some("all: spot +0, vol +0"));
        let market = MarketSnapshot::builder(Timestamp::from_millis(0))
            .underlying(
                id("A"),
                UnderlyingMarket::new(10.0, 0.0, 0.0, VolSurface::flat(0.2).unwrap()).unwrap(),
            )
            .underlying(
                id("B"),
                UnderlyingMarket::new(20.0, 0.0, 0.0, VolSurface::flat(0.3).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let s = set.apply(0, &market).unwrap();
        assert_eq!(s.underlying(&id("A")).unwrap().spot(), 8.0);
        assert_eq!(s.underlying(&id("B")).unwrap().spot(), 16.0);
        assert_eq!(s.as_of().millis(), 86_400_000);
    }

    #[test]
    fn named_scenarios_fill_unshocked_columns_with_zero() {
        let a = StressScenario::new(
            "a",
            vec![
                (RiskFactor::Spot(id("X")), shock(ShockKind::Log, -0.1)),
                (RiskFactor::Rate(id("X")), shock(ShockKind::Absolute, 0.01)),
            ],
        )
        .unwrap();
        let b = StressScenario::new(
            "b",
            vec![(RiskFactor::Spot(id("X")), shock(ShockKind::Log, 0.2))],
        )
        .unwrap();
        let set = stress_scenarios(&[a.clone(), b], YearFraction::ZERO).unwrap();
        assert_eq!(set.sizes(), &[-0.1, 0.01, 0.2, 0.0]);
        assert_eq!(set.names().unwrap(), ["a", "b"]);
        let clash = StressScenario::new(
            "c",
            vec![(RiskFactor::Spot(id("X")), shock(ShockKind::Relative, 0.2))],
        )
        .unwrap();
        assert!(matches!(
            stress_scenarios(&[a, clash], YearFraction::ZERO),
            Err(Error::DuplicateId { .. })
        ));
        assert!(
            StressScenario::new(
                "dup",
                vec![
                    (RiskFactor::Spot(id("X")), shock(ShockKind::Log, 0.1)),
                    (RiskFactor::Spot(id("X")), shock(ShockKind::Log, 0.2)),
                ]
            )
            .is_err()
        );
        assert!(stress_scenarios(&[], YearFraction::ZERO).is_err());
        let empty = StressScenario::new("base", vec![]).unwrap();
        assert!(matches!(
            stress_scenarios(&[empty], YearFraction::ZERO),
            Err(Error::TooFew { .. })
        ));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn grid_serde_round_trip() {
        let grid = StressGrid::new(
            GridAxis::new(ShockKind::Relative, 0.15, 7).unwrap(),
            GridAxis::new(ShockKind::Absolute, 0.05, 2).unwrap(),
            GridScope::AllTogether,
            YearFraction::ZERO,
        );
        let json = serde_json::to_string(&grid).unwrap();
        assert_eq!(serde_json::from_str::<StressGrid>(&json).unwrap(), grid);
        let bad = json.replace("0.15", "1.5");
        assert!(serde_json::from_str::<StressGrid>(&bad).is_err());
    }
}
