//! Implied volatility surfaces: a flat volatility, or a validated grid over
//! expiries x strikes (absolute strikes or log-moneyness) interpolated in
//! total variance.
//!
//! See [`VolSurface`] for the interpolation rules and the no-arbitrage checks.

use crate::error::{Error, Result, finite, positive};
use crate::math::norm_cdf;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Relative tolerance of the construction-time calendar check: total variance
/// may fall from one expiry to the next by at most this fraction (rounding
/// noise of vols computed from variances), never more.
pub(crate) const CALENDAR_TOLERANCE: f64 = 1e-12;

/// Absolute tolerance, in undiscounted call price per unit of forward, below
/// which [`VolSurface::butterfly_violations`] ignores a non-convexity.
const BUTTERFLY_TOLERANCE: f64 = 1e-12;

/// Sub-intervals per node interval sampled by the butterfly diagnostic.
const BUTTERFLY_SUBDIVISIONS: usize = 4;

/// Rule text for a volatility (kept in step with [`VolSurface::MAX_VOLATILITY`]).
const VOL_RULE: &str = "finite, > 0 and <= 10 (1000%)";

/// What the strike coordinate of a [`VolSurface`] grid measures.
///
/// Serialised as `"strike"` or `"log_moneyness"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum StrikeAxis {
    /// Absolute strikes in the quote currency (each `> 0`). The grid is
    /// sticky-strike: time interpolation and the calendar check run at fixed
    /// strike.
    Strike,
    /// Log-moneyness `ln(K / F)`, with `F` the forward to the option's own
    /// expiry (`0` is at-the-money-forward, negative is below the forward).
    /// Time interpolation and the calendar check run at fixed moneyness, which
    /// is the exact no-calendar-arbitrage condition.
    LogMoneyness,
}

/// One place where a smile's undiscounted call prices are not convex in
/// strike (a butterfly with negative cost), found by
/// [`VolSurface::butterfly_violations`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ButterflyViolation {
    /// Row of the expiry in [`VolSurface::expiries`].
    pub expiry_index: usize,
    /// The expiry, in years.
    pub years: f64,
    /// Strike node at or below the butterfly's centre (`0` if the centre lies
    /// below the first node).
    pub strike_index: usize,
    /// Centre of the butterfly on the surface's strike axis (an absolute
    /// strike or a log-moneyness, as [`VolSurface::strike_axis`]).
    pub strike_coordinate: f64,
    /// How far the centre call price lies above the chord through its two
    /// neighbours, as an undiscounted price per unit of forward (`> 0`).
    pub excess: f64,
}

/// Implied volatility of one underlying as a function of expiry and strike.
///
/// Either flat, or a grid over expiries x strikes built with
/// [`VolSurface::grid`] and interpolated in total variance as described under
/// *Interpolation* below. Volatilities are annualised decimals (`0.20`
/// is 20%) in `(0, `[`VolSurface::MAX_VOLATILITY`]`]`. Every surface is
/// validated on construction (and on deserialisation), so lookups are
/// infallible.
///
/// ```
/// use portfolio_margin::VolSurface;
/// let flat = VolSurface::flat(0.55)?;
/// assert_eq!(flat.volatility(0.25, 90_000.0, 100_000.0), 0.55);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
///
/// # Interpolation
///
/// Write `x` for the strike coordinate of a query (the strike `K` itself on a
/// [`StrikeAxis::Strike`] surface, `ln(K/F)` on a [`StrikeAxis::LogMoneyness`]
/// surface, `F` the forward to the option's expiry), `T` for its expiry in
/// years, and `w(T, x) = sigma(T, x)^2 T` for total implied variance.
///
/// * **Strike** (at a node expiry): `w` is linear in `x` between adjacent strike
///   nodes; beyond the first and last node the wing node's volatility is held
///   flat.
/// * **Time** (at fixed `x`): `w` is linear in `T` between adjacent expiries.
///   Before the first expiry the first expiry's volatility is held flat
///   (equivalently `w` is linear from `w(0) = 0`); after the last expiry the last
///   expiry's volatility is held flat (`w` keeps growing at `sigma_last^2` per
///   year).
///
/// Both steps are linear in `w`, so the surface is bilinear in total variance
/// inside the grid and every interpolated volatility lies between the smallest
/// and largest node volatility. Because the construction check makes `w`
/// non-decreasing in expiry along each strike column, and the interpolated `w`
/// at fixed `x` is a convex combination of such columns, interpolation
/// introduces no calendar arbitrage (Gatheral, *The Volatility Surface*, 2006,
/// ch. 3: no calendar spread arbitrage iff `w` is non-decreasing in `T` at fixed
/// log-moneyness). The node check tolerates a relative fall of `1e-12` (rounding
/// in vols computed from variances), which interpolation then carries but never
/// enlarges. On a [`StrikeAxis::Strike`] surface the check and the time
/// interpolation run along fixed-strike columns, which equals fixed moneyness
/// only when the forward does not move with expiry (zero carry); otherwise it is
/// the usual sticky-strike approximation.
///
/// Butterfly (strike) arbitrage is not rejected at construction: quoted smiles
/// are often slightly non-convex and margining must go on. Note that a
/// piecewise-linear smile with flat wings bends downwards (a concave kink) at
/// some node unless it is flat, and a steep skew can make call prices
/// non-convex inside a segment too; use [`VolSurface::butterfly_violations`]
/// to list where this is large enough to matter.
///
/// # Serialisation
///
/// Externally tagged; a grid lists `vols` row-major (one row per expiry):
///
/// ```json
/// {"flat": 0.55}
/// {"grid": {
///     "expiries": [0.1, 0.5],
///     "strike_axis": "log_moneyness",
///     "strikes": [-0.2, 0.0, 0.2],
///     "vols": [0.62, 0.55, 0.60,
///              0.58, 0.52, 0.56]}}
/// ```
///
/// Unknown or missing fields are errors, and the numbers go through the same
/// validation as [`VolSurface::grid`]. (With `serde_json`, enable its
/// `float_roundtrip` feature for bit-exact round trips of arbitrary doubles.)
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use portfolio_margin::VolSurface;
/// let json = r#"{"grid": {"expiries": [0.1, 0.5], "strike_axis": "log_moneyness",
///     "strikes": [-0.2, 0.0, 0.2], "vols": [0.62, 0.55, 0.60, 0.58, 0.52, 0.56]}}"#;
/// let surface: VolSurface = serde_json::from_str(json)?;
/// assert_eq!(surface.atm_volatility(0.5, 100.0), 0.52);
/// let bad = json.replace("0.52", "-0.52");
/// let err = serde_json::from_str::<VolSurface>(&bad).unwrap_err();
/// assert!(err.to_string().contains("vol surface vols[4]"));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::VolSurface", into = "raw::VolSurface")
)]
pub struct VolSurface {
    repr: Repr,
}

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    Flat(f64),
    Grid(Grid),
}

/// A validated grid. Invariants (established by [`Grid::new`]):
/// `expiries` and `strikes` non-empty, finite, strictly increasing with finite
/// spacing; expiries `> 0`; strikes `> 0` on a `Strike` axis;
/// `vols.len() == variances.len() == expiries.len() * strikes.len()`;
/// every vol in `(0, MAX_VOLATILITY]`, `variances = vols^2`, each node's total
/// variance finite and normal; total variance non-decreasing down each column
/// (within [`CALENDAR_TOLERANCE`]); `min_vol`/`max_vol` the extreme vols.
#[derive(Debug, Clone, PartialEq)]
struct Grid {
    expiries: Vec<f64>,
    axis: StrikeAxis,
    strikes: Vec<f64>,
    vols: Vec<f64>,
    /// Annualised variances `vol^2`, row-major like `vols`.
    variances: Vec<f64>,
    min_vol: f64,
    max_vol: f64,
}

impl VolSurface {
    /// Largest volatility a surface may hold: `10.0` (1000% a year). Larger
    /// numbers are data errors, and the cap keeps total variances far from
    /// overflow.
    pub const MAX_VOLATILITY: f64 = 10.0;

    /// A flat surface: `vol` for every expiry and strike.
    ///
    /// # Units
    /// Annualised decimal volatility.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `vol` is finite, `> 0` and at most
    /// [`VolSurface::MAX_VOLATILITY`].
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::VolSurface;
    /// assert_eq!(VolSurface::flat(0.2)?.atm_volatility(1.0, 100.0), 0.2);
    /// assert!(VolSurface::flat(0.0).is_err());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn flat(vol: f64) -> Result<Self> {
        surface_vol("volatility", vol).map(|v| VolSurface {
            repr: Repr::Flat(v),
        })
    }

    /// A grid surface: `vols[i * strikes.len() + j]` is the implied volatility
    /// at `expiries[i]` and `strikes[j]` (row-major, one row per expiry).
    ///
    /// Interpolation and extrapolation are described on [`VolSurface`]: linear in total variance in both
    /// directions, flat volatility outside the grid.
    ///
    /// # Units
    /// `expiries` in years from the snapshot's `as_of`; `strikes` in the quote
    /// currency ([`StrikeAxis::Strike`]) or as `ln(K/F)`
    /// ([`StrikeAxis::LogMoneyness`]); `vols` annualised decimals.
    ///
    /// # Errors
    /// * [`Error::TooFew`] if `expiries` or `strikes` is empty.
    /// * [`Error::InvalidElement`] naming `vol surface expiries`,
    ///   `vol surface strikes` or `vol surface vols` and the index (row-major
    ///   for vols) of the first number that is not finite, an expiry `<= 0`, an
    ///   absolute strike `<= 0`, an axis value not strictly above its
    ///   predecessor (or so far above that the gap overflows), a vol outside
    ///   `(0, `[`VolSurface::MAX_VOLATILITY`]`]`, or a node whose total variance
    ///   `vol^2 * expiry` is not a finite normal number.
    /// * [`Error::LengthMismatch`] unless `vols.len() == expiries.len() *
    ///   strikes.len()`.
    /// * [`Error::SurfaceArbitrage`] with the offending expiry and strike
    ///   indices if total variance falls from one expiry to the next along a
    ///   strike column (calendar arbitrage), by more than a relative `1e-12`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{StrikeAxis, VolSurface};
    /// let surface = VolSurface::grid(
    ///     vec![0.25, 1.0],
    ///     StrikeAxis::LogMoneyness,
    ///     vec![-0.1, 0.0, 0.1],
    ///     vec![0.30, 0.25, 0.28, //
    ///          0.27, 0.24, 0.26],
    /// )?;
    /// let forward = 100.0;
    /// assert_eq!(surface.volatility(1.0, forward, forward), 0.24);
    /// // Halfway in time, total variance is halfway between the expiries' variances.
    /// let (w0, w1) = (0.25_f64.powi(2) * 0.25, 0.24_f64.powi(2) * 1.0);
    /// let vol = surface.volatility(0.625, forward, forward);
    /// assert!((vol * vol * 0.625 - 0.5 * (w0 + w1)).abs() < 1e-15);
    /// // Decreasing total variance along a column is calendar arbitrage.
    /// assert!(VolSurface::grid(vec![0.25, 1.0], StrikeAxis::LogMoneyness,
    ///     vec![0.0], vec![0.5, 0.2]).is_err());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn grid(
        expiries: Vec<f64>,
        axis: StrikeAxis,
        strikes: Vec<f64>,
        vols: Vec<f64>,
    ) -> Result<Self> {
        Grid::new(expiries, axis, strikes, vols).map(|g| VolSurface {
            repr: Repr::Grid(g),
        })
    }

    /// Implied volatility for an option expiring in `years` with `strike`,
    /// when the forward to that expiry is `forward`.
    ///
    /// Always finite, positive and between the smallest and largest node
    /// volatility for positive finite arguments (and never panics on any
    /// argument). No allocation; one binary search per axis.
    ///
    /// # Units
    /// `years` from the snapshot's `as_of`; `strike` and `forward` in the quote
    /// currency. Returns an annualised decimal volatility.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{StrikeAxis, VolSurface};
    /// let skew = VolSurface::grid(vec![0.5], StrikeAxis::Strike,
    ///     vec![90.0, 110.0], vec![0.30, 0.20])?;
    /// assert_eq!(skew.volatility(0.5, 90.0, 100.0), 0.30);
    /// assert_eq!(skew.volatility(0.5, 50.0, 100.0), 0.30); // flat wing
    /// // Linear in variance between strike nodes.
    /// let mid = skew.volatility(0.5, 100.0, 100.0);
    /// assert!((mid * mid - 0.5 * (0.09 + 0.04)).abs() < 1e-15);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    #[inline]
    pub fn volatility(&self, years: f64, strike: f64, forward: f64) -> f64 {
        match &self.repr {
            Repr::Flat(v) => *v,
            Repr::Grid(g) => {
                let x = match g.axis {
                    StrikeAxis::Strike => strike,
                    StrikeAxis::LogMoneyness => {
                        let ratio = strike / forward;
                        if ratio.is_normal() {
                            ratio.ln()
                        } else {
                            // The ratio over- or underflowed: a difference of
                            // logs is finite for any positive finite pair.
                            strike.ln() - forward.ln()
                        }
                    }
                };
                g.volatility_at(years, x)
            }
        }
    }

    /// At-the-money-forward volatility for expiry `years`: the volatility at
    /// `strike == forward` (log-moneyness 0).
    ///
    /// A flat or [`StrikeAxis::LogMoneyness`] surface ignores `forward`; a
    /// [`StrikeAxis::Strike`] surface needs it to know which strike is at the
    /// money.
    ///
    /// # Units
    /// `years` from the snapshot's `as_of`; `forward` in the quote currency.
    /// Returns an annualised decimal volatility.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{StrikeAxis, VolSurface};
    /// let smile = VolSurface::grid(vec![1.0], StrikeAxis::LogMoneyness,
    ///     vec![-0.2, 0.0, 0.2], vec![0.6, 0.5, 0.55])?;
    /// assert_eq!(smile.atm_volatility(1.0, 100_000.0), 0.5);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    #[inline]
    pub fn atm_volatility(&self, years: f64, forward: f64) -> f64 {
        match &self.repr {
            Repr::Flat(v) => *v,
            Repr::Grid(g) => match g.axis {
                StrikeAxis::Strike => g.volatility_at(years, forward),
                StrikeAxis::LogMoneyness => g.volatility_at(years, 0.0),
            },
        }
    }

    /// The surface with every volatility multiplied by `factor` (a relative
    /// shock: `1.1` is vols up 10%).
    ///
    /// Scaling multiplies every total variance by `factor^2`, so calendar
    /// monotonicity and the shape of the smile are preserved.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `factor` is not finite and `> 0`, or if a
    /// scaled volatility would exceed [`VolSurface::MAX_VOLATILITY`] (or
    /// underflow to zero).
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::VolSurface;
    /// let up = VolSurface::flat(0.5)?.scaled(1.2)?;
    /// assert_eq!(up.atm_volatility(1.0, 1.0), 0.6);
    /// assert!(VolSurface::flat(0.5)?.scaled(0.0).is_err());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn scaled(&self, factor: f64) -> Result<VolSurface> {
        positive("vol scale factor", factor)?;
        self.map_vols("scaled volatility", |v| v * factor)
    }

    /// The surface with `shift` added to every volatility (an absolute shock
    /// in decimal vol: `0.05` is +5 vol points).
    ///
    /// # Errors
    /// * [`Error::InvalidInput`] if `shift` is not finite, or if any shifted
    ///   volatility would be `<= 0` or above [`VolSurface::MAX_VOLATILITY`].
    /// * [`Error::SurfaceArbitrage`] if a downward shift makes total variance
    ///   fall with expiry somewhere (it shrinks short-dated variance less than
    ///   long-dated); use [`VolSurface::scaled`] for a shock that cannot.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{VolSurface, VOL_POINT};
    /// let down = VolSurface::flat(0.5)?.shifted(-5.0 * VOL_POINT)?;
    /// assert!((down.atm_volatility(1.0, 1.0) - 0.45).abs() < 1e-15);
    /// assert!(VolSurface::flat(0.5)?.shifted(-0.5).is_err());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn shifted(&self, shift: f64) -> Result<VolSurface> {
        finite("vol shift", shift)?;
        self.map_vols("shifted volatility", |v| v + shift)
    }

    fn map_vols(&self, what: &'static str, f: impl Fn(f64) -> f64) -> Result<VolSurface> {
        match &self.repr {
            Repr::Flat(v) => VolSurface::flat(surface_vol(what, f(*v))?),
            Repr::Grid(g) => {
                let vols = g
                    .vols
                    .iter()
                    .map(|&v| surface_vol(what, f(v)))
                    .collect::<Result<Vec<f64>>>()?;
                VolSurface::grid(g.expiries.clone(), g.axis, g.strikes.clone(), vols)
            }
        }
    }

    /// Lists the places where a grid's smiles admit butterfly arbitrage:
    /// undiscounted Black call prices not convex in strike.
    ///
    /// For each expiry row the interpolated smile is sampled at every strike
    /// node, at `3` evenly spaced points inside each node interval and at one
    /// point beyond each wing (one node interval out; halfway to zero below the
    /// first node of a [`StrikeAxis::Strike`] axis if that would be `<= 0`),
    /// and every three consecutive samples are checked for convexity of
    /// `C(K)/F` in `K/F`. Non-convexities below `1e-12` (per unit forward) are
    /// ignored as rounding. A flat surface has none. This is a diagnostic, not a
    /// validity condition: the surface stays usable.
    ///
    /// `forward(years)` gives the forward to a row's expiry; it is called only
    /// for [`StrikeAxis::Strike`] surfaces (Black prices per unit forward
    /// depend on strikes only through `K/F`, so a log-moneyness smile needs no
    /// forward).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `forward` returns a number that is not
    /// finite and `> 0` (on a [`StrikeAxis::Strike`] surface).
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{StrikeAxis, VolSurface};
    /// let smooth = VolSurface::grid(vec![0.5], StrikeAxis::LogMoneyness,
    ///     vec![-0.2, 0.0, 0.2], vec![0.55, 0.50, 0.53])?;
    /// assert!(smooth.butterfly_violations(|_| 1.0)?.is_empty());
    /// // A vol spike at one strike makes the call price there too expensive.
    /// let spike = VolSurface::grid(vec![0.5], StrikeAxis::LogMoneyness,
    ///     vec![-0.02, 0.0, 0.02], vec![0.20, 0.60, 0.20])?;
    /// let found = spike.butterfly_violations(|_| 1.0)?;
    /// assert!(found.iter().any(|v| v.strike_coordinate == 0.0));
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn butterfly_violations(
        &self,
        forward: impl Fn(f64) -> f64,
    ) -> Result<Vec<ButterflyViolation>> {
        match &self.repr {
            Repr::Flat(_) => Ok(Vec::new()),
            Repr::Grid(g) => g.butterfly_violations(forward),
        }
    }

    /// The grid's strike axis; `None` for a flat surface.
    pub fn strike_axis(&self) -> Option<StrikeAxis> {
        match &self.repr {
            Repr::Flat(_) => None,
            Repr::Grid(g) => Some(g.axis),
        }
    }

    /// The flat volatility; `None` for a grid.
    pub fn flat_volatility(&self) -> Option<f64> {
        match &self.repr {
            Repr::Flat(v) => Some(*v),
            Repr::Grid(_) => None,
        }
    }

    /// The grid's expiries in years, increasing; empty for a flat surface.
    pub fn expiries(&self) -> &[f64] {
        match &self.repr {
            Repr::Flat(_) => &[],
            Repr::Grid(g) => &g.expiries,
        }
    }

    /// The grid's strike nodes (see [`VolSurface::strike_axis`]), increasing;
    /// empty for a flat surface.
    pub fn strikes(&self) -> &[f64] {
        match &self.repr {
            Repr::Flat(_) => &[],
            Repr::Grid(g) => &g.strikes,
        }
    }

    /// The grid's node volatilities, row-major (one row per expiry), as given
    /// to [`VolSurface::grid`]; empty for a flat surface.
    pub fn vols(&self) -> &[f64] {
        match &self.repr {
            Repr::Flat(_) => &[],
            Repr::Grid(g) => &g.vols,
        }
    }
}

/// Checks one volatility against `(0, MAX_VOLATILITY]`.
fn surface_vol(what: &'static str, vol: f64) -> Result<f64> {
    if vol.is_finite() && vol > 0.0 && vol <= VolSurface::MAX_VOLATILITY {
        Ok(vol)
    } else {
        Err(Error::InvalidInput {
            what,
            rule: VOL_RULE,
            value: vol,
        })
    }
}

/// Element `i`, or NaN if out of range (impossible on a validated grid; NaN is
/// then mapped into range by the final clamp rather than panicking).
#[inline]
fn at(values: &[f64], i: usize) -> f64 {
    values.get(i).copied().unwrap_or(f64::NAN)
}

/// Checks an axis: every element passes `ok`, strictly increasing, with
/// finite gaps.
fn check_axis(
    what: &'static str,
    values: &[f64],
    ok: fn(f64) -> bool,
    rule: &'static str,
) -> Result<()> {
    let mut previous: Option<f64> = None;
    for (index, &value) in values.iter().enumerate() {
        if !ok(value) {
            return Err(Error::InvalidElement {
                what,
                index,
                rule,
                value,
            });
        }
        if let Some(p) = previous {
            let gap = value - p;
            if !(gap > 0.0 && gap.is_finite()) {
                return Err(Error::InvalidElement {
                    what,
                    index,
                    rule: "greater than the previous element, by a finite gap",
                    value,
                });
            }
        }
        previous = Some(value);
    }
    Ok(())
}

/// Position of `x` among increasing `nodes`: `(j, weight)` with the value at
/// `x` = `(1 - weight) * value[j] + weight * value[j + 1]`; `weight == 0`
/// (and `value[j + 1]` unused) at a node and on the flat wings. NaN `x` lands on
/// the lower wing.
#[inline]
fn bracket(nodes: &[f64], x: f64) -> (usize, f64) {
    let above = nodes.partition_point(|&node| node <= x);
    if above == 0 {
        (0, 0.0)
    } else if above >= nodes.len() {
        (nodes.len().saturating_sub(1), 0.0)
    } else {
        let lo = at(nodes, above - 1);
        let hi = at(nodes, above);
        (above - 1, (x - lo) / (hi - lo))
    }
}

impl Grid {
    fn new(
        expiries: Vec<f64>,
        axis: StrikeAxis,
        strikes: Vec<f64>,
        vols: Vec<f64>,
    ) -> Result<Grid> {
        if expiries.is_empty() {
            return Err(Error::TooFew {
                what: "vol surface expiries",
                min: 1,
                got: 0,
            });
        }
        if strikes.is_empty() {
            return Err(Error::TooFew {
                what: "vol surface strikes",
                min: 1,
                got: 0,
            });
        }
        check_axis(
            "vol surface expiries",
            &expiries,
            |t| t.is_finite() && t > 0.0,
            "finite and > 0",
        )?;
        match axis {
            StrikeAxis::Strike => check_axis(
                "vol surface strikes",
                &strikes,
                |k| k.is_finite() && k > 0.0,
                "finite and > 0",
            )?,
            StrikeAxis::LogMoneyness => {
                check_axis("vol surface strikes", &strikes, f64::is_finite, "finite")?
            }
        }
        let columns = strikes.len();
        let expected = expiries.len().saturating_mul(columns);
        if vols.len() != expected {
            return Err(Error::LengthMismatch {
                what: "vol surface vols (expiries x strikes, row-major)",
                expected,
                got: vols.len(),
            });
        }
        let mut variances = Vec::with_capacity(vols.len());
        let mut min_vol = f64::INFINITY;
        let mut max_vol = 0.0_f64;
        for (index, (&vol, &years)) in vols
            .iter()
            .zip(
                expiries
                    .iter()
                    .flat_map(|t| std::iter::repeat_n(t, columns)),
            )
            .enumerate()
        {
            if !(vol.is_finite() && vol > 0.0 && vol <= VolSurface::MAX_VOLATILITY) {
                return Err(Error::InvalidElement {
                    what: "vol surface vols",
                    index,
                    rule: VOL_RULE,
                    value: vol,
                });
            }
            let variance = vol * vol;
            let total = variance * years;
            if !(total.is_normal() && variance.is_normal()) {
                return Err(Error::InvalidElement {
                    what: "vol surface vols",
                    index,
                    rule: "such that vol^2 x expiry is a finite normal number",
                    value: vol,
                });
            }
            variances.push(variance);
            min_vol = min_vol.min(vol);
            max_vol = max_vol.max(vol);
        }
        // Calendar: total variance non-decreasing down every column.
        for (row, pair) in expiries.windows(2).enumerate() {
            let (t0, t1) = match *pair {
                [t0, t1] => (t0, t1),
                _ => continue,
            };
            let earlier = variances.iter().skip(row * columns).take(columns);
            let later = variances.iter().skip((row + 1) * columns).take(columns);
            for (column, (&v0, &v1)) in earlier.zip(later).enumerate() {
                let (w0, w1) = (v0 * t0, v1 * t1);
                if w1 < w0 * (1.0 - CALENDAR_TOLERANCE) {
                    return Err(Error::SurfaceArbitrage {
                        reason: "total implied variance decreases with expiry (calendar arbitrage)",
                        expiry_index: row + 1,
                        strike_index: column,
                    });
                }
            }
        }
        Ok(Grid {
            expiries,
            axis,
            strikes,
            vols,
            variances,
            min_vol,
            max_vol,
        })
    }

    /// Annualised variance of expiry row `row` at strike position
    /// `(column, weight)` from [`bracket`].
    #[inline]
    fn row_variance(&self, row: usize, (column, weight): (usize, f64)) -> f64 {
        let base = row * self.strikes.len() + column;
        let lo = at(&self.variances, base);
        if weight > 0.0 {
            (1.0 - weight) * lo + weight * at(&self.variances, base + 1)
        } else {
            lo
        }
    }

    /// Volatility at expiry `years` and strike-axis coordinate `x`.
    #[inline]
    fn volatility_at(&self, years: f64, x: f64) -> f64 {
        let position = bracket(&self.strikes, x);
        let expiries = &self.expiries;
        let after = expiries.partition_point(|&t| t <= years);
        let variance = if after == 0 {
            // Before the first expiry (or NaN): flat volatility.
            self.row_variance(0, position)
        } else if after >= expiries.len() {
            // At or after the last expiry: flat volatility.
            self.row_variance(expiries.len() - 1, position)
        } else {
            let (t0, t1) = (at(expiries, after - 1), at(expiries, after));
            let v0 = self.row_variance(after - 1, position);
            if years == t0 {
                v0
            } else {
                let v1 = self.row_variance(after, position);
                let b = (years - t0) / (t1 - t0);
                ((1.0 - b) * (v0 * t0) + b * (v1 * t1)) / years
            }
        };
        // Mathematically a no-op (interpolated vols lie between the node
        // extremes); guards rounding and maps NaN into range.
        variance.sqrt().max(self.min_vol).min(self.max_vol)
    }

    /// Strike-axis sample points for the butterfly diagnostic of one row.
    fn butterfly_points(&self) -> Vec<f64> {
        let strikes = &self.strikes;
        let (first, last) = (at(strikes, 0), at(strikes, strikes.len() - 1));
        let (low_gap, high_gap) = match strikes.len() {
            1 => match self.axis {
                StrikeAxis::Strike => (0.1 * first, 0.1 * first),
                StrikeAxis::LogMoneyness => (0.1, 0.1),
            },
            n => (at(strikes, 1) - first, last - at(strikes, n - 2)),
        };
        let below = match self.axis {
            StrikeAxis::Strike if first - low_gap <= 0.0 => 0.5 * first,
            _ => first - low_gap,
        };
        let mut points = Vec::with_capacity(strikes.len() * BUTTERFLY_SUBDIVISIONS + 3);
        points.push(below);
        for pair in strikes.windows(2) {
            if let [lo, hi] = *pair {
                for m in 0..BUTTERFLY_SUBDIVISIONS {
                    points.push(lo + (hi - lo) * (m as f64 / BUTTERFLY_SUBDIVISIONS as f64));
                }
            }
        }
        points.push(last);
        points.push(last + high_gap);
        points
    }

    fn butterfly_violations(
        &self,
        forward: impl Fn(f64) -> f64,
    ) -> Result<Vec<ButterflyViolation>> {
        let points = self.butterfly_points();
        let mut found = Vec::new();
        for (expiry_index, &years) in self.expiries.iter().enumerate() {
            let scale = match self.axis {
                StrikeAxis::Strike => {
                    1.0 / positive("forward for the butterfly check", forward(years))?
                }
                StrikeAxis::LogMoneyness => 1.0,
            };
            // (coordinate, K/F, C/F) at each usable sample.
            let samples: Vec<(f64, f64, f64)> = points
                .iter()
                .filter_map(|&x| {
                    let moneyness = match self.axis {
                        StrikeAxis::Strike => x * scale,
                        StrikeAxis::LogMoneyness => x.exp(),
                    };
                    let total = self.row_variance(expiry_index, bracket(&self.strikes, x)) * years;
                    let call = normalised_call(moneyness, total);
                    (moneyness.is_normal() && moneyness.is_finite() && call.is_finite())
                        .then_some((x, moneyness, call))
                })
                .collect();
            for triple in samples.windows(3) {
                if let [(_, k0, c0), (x, k1, c1), (_, k2, c2)] = *triple {
                    if !(k0 < k1 && k1 < k2) {
                        continue;
                    }
                    let lambda = (k2 - k1) / (k2 - k0);
                    let excess = c1 - (lambda * c0 + (1.0 - lambda) * c2);
                    if excess > BUTTERFLY_TOLERANCE {
                        found.push(ButterflyViolation {
                            expiry_index,
                            years,
                            strike_index: bracket(&self.strikes, x).0,
                            strike_coordinate: x,
                            excess,
                        });
                    }
                }
            }
        }
        Ok(found)
    }
}

/// Undiscounted Black call price per unit forward, `N(d1) - m N(d2)`, for
/// moneyness `m = K/F > 0` and total variance `w = sigma^2 T > 0`
/// (Black 1976; Hull, *Options, Futures and Other Derivatives*, eq. 18.9).
fn normalised_call(moneyness: f64, total_variance: f64) -> f64 {
    let deviation = total_variance.sqrt();
    let d1 = -moneyness.ln() / deviation + 0.5 * deviation;
    norm_cdf(d1) - moneyness * norm_cdf(d1 - deviation)
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    pub enum VolSurface {
        Flat(f64),
        Grid(Grid),
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Grid {
        expiries: Vec<f64>,
        strike_axis: StrikeAxis,
        strikes: Vec<f64>,
        vols: Vec<f64>,
    }

    impl TryFrom<VolSurface> for super::VolSurface {
        type Error = crate::Error;
        fn try_from(r: VolSurface) -> Result<Self> {
            match r {
                VolSurface::Flat(v) => super::VolSurface::flat(v),
                VolSurface::Grid(g) => {
                    super::VolSurface::grid(g.expiries, g.strike_axis, g.strikes, g.vols)
                }
            }
        }
    }

    impl From<super::VolSurface> for VolSurface {
        fn from(s: super::VolSurface) -> Self {
            match s.repr {
                Repr::Flat(v) => VolSurface::Flat(v),
                Repr::Grid(g) => VolSurface::Grid(Grid {
                    expiries: g.expiries,
                    strike_axis: g.axis,
                    strikes: g.strikes,
                    vols: g.vols,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Relative tolerance for comparisons against the independent reference
    /// interpolation and for linearity of total variance (a few ulps of
    /// rounding through squares, products and a square root).
    const REL_TOL: f64 = 1e-14;
    /// Relative slack allowed in the dense calendar monotonicity checks
    /// (rounding of sqrt then square on the way out of `volatility`).
    const MONOTONE_REL_TOL: f64 = 1e-14;
    /// Absolute tolerance of `normalised_call` against the mpmath values.
    /// Limited by the placeholder `math::norm_cdf` (statrs erfc, measured
    /// errors ~1.5e-11); tighten to ~1e-15 once the Cody implementation lands.
    const CALL_ABS_TOL: f64 = 1e-10;

    const EXPIRIES: [f64; 4] = [0.05, 0.25, 1.0, 2.0];
    const LOG_STRIKES: [f64; 5] = [-0.4, -0.1, 0.0, 0.15, 0.5];
    const STRIKES: [f64; 5] = [70.0, 90.0, 100.0, 115.0, 165.0];
    #[rustfmt::skip]
    const VOLS: [f64; 20] = [
        0.90, 0.70, 0.62, 0.66, 0.85,
        0.80, 0.66, 0.60, 0.63, 0.75,
        0.72, 0.62, 0.57, 0.60, 0.68,
        0.70, 0.61, 0.56, 0.59, 0.66,
    ];

    fn sample(axis: StrikeAxis) -> VolSurface {
        let strikes = match axis {
            StrikeAxis::LogMoneyness => LOG_STRIKES.to_vec(),
            StrikeAxis::Strike => STRIKES.to_vec(),
        };
        VolSurface::grid(EXPIRIES.to_vec(), axis, strikes, VOLS.to_vec()).unwrap()
    }

    fn grid_of(s: &VolSurface) -> &Grid {
        match &s.repr {
            Repr::Grid(g) => g,
            Repr::Flat(_) => panic!("not a grid"),
        }
    }

    fn rel_err(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
    }

    /// Independent reference: linear scans, interpolation written as
    /// `w_lo + fraction * (w_hi - w_lo)` on total variances, flat vol outside.
    fn reference(expiries: &[f64], strikes: &[f64], vols: &[f64], years: f64, x: f64) -> f64 {
        let n = strikes.len();
        let smile_total_variance = |row: usize, t: f64| -> f64 {
            let w = |j: usize| vols[row * n + j] * vols[row * n + j] * t;
            if x <= strikes[0] {
                return w(0);
            }
            if x >= strikes[n - 1] {
                return w(n - 1);
            }
            let mut j = 0;
            while !(strikes[j] <= x && x < strikes[j + 1]) {
                j += 1;
            }
            let f = (x - strikes[j]) / (strikes[j + 1] - strikes[j]);
            w(j) + f * (w(j + 1) - w(j))
        };
        let last = expiries.len() - 1;
        if years <= expiries[0] {
            return (smile_total_variance(0, expiries[0]) / expiries[0]).sqrt();
        }
        if years >= expiries[last] {
            return (smile_total_variance(last, expiries[last]) / expiries[last]).sqrt();
        }
        let mut i = 0;
        while !(expiries[i] <= years && years < expiries[i + 1]) {
            i += 1;
        }
        let (w0, w1) = (
            smile_total_variance(i, expiries[i]),
            smile_total_variance(i + 1, expiries[i + 1]),
        );
        let f = (years - expiries[i]) / (expiries[i + 1] - expiries[i]);
        ((w0 + f * (w1 - w0)) / years).sqrt()
    }

    #[test]
    fn flat_surface_is_unchanged() {
        let s = VolSurface::flat(0.55).unwrap();
        assert_eq!(s.volatility(0.25, 90_000.0, 100_000.0), 0.55);
        assert_eq!(s.volatility(1e-12, 1e-12, 1e12), 0.55);
        assert_eq!(s.atm_volatility(3.0, 1.0), 0.55);
        assert_eq!(s.flat_volatility(), Some(0.55));
        assert_eq!(s.strike_axis(), None);
        assert!(s.expiries().is_empty() && s.strikes().is_empty() && s.vols().is_empty());
        assert!(s.butterfly_violations(|_| f64::NAN).unwrap().is_empty());
        for bad in [0.0, -0.1, f64::NAN, f64::INFINITY, 10.000_001] {
            assert!(
                matches!(
                    VolSurface::flat(bad),
                    Err(Error::InvalidInput {
                        what: "volatility",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(VolSurface::flat(VolSurface::MAX_VOLATILITY).is_ok());
    }

    #[test]
    fn nodes_are_hit_exactly() {
        for axis in [StrikeAxis::LogMoneyness, StrikeAxis::Strike] {
            let s = sample(axis);
            let g = grid_of(&s);
            for (i, &t) in g.expiries.iter().enumerate() {
                for (j, &x) in g.strikes.iter().enumerate() {
                    assert_eq!(
                        g.volatility_at(t, x),
                        VOLS[i * 5 + j],
                        "{axis:?} ({i}, {j})"
                    );
                }
            }
        }
        // Through the public API: absolute strikes are exact; at the money
        // (log-moneyness 0) is exact for any forward.
        let s = sample(StrikeAxis::Strike);
        let strikes = s.strikes().to_vec();
        for (i, &t) in EXPIRIES.iter().enumerate() {
            for (j, &k) in strikes.iter().enumerate() {
                assert_eq!(s.volatility(t, k, 97.0), VOLS[i * 5 + j]);
            }
        }
        let s = sample(StrikeAxis::LogMoneyness);
        for (i, &t) in EXPIRIES.iter().enumerate() {
            assert_eq!(s.volatility(t, 123.4, 123.4), VOLS[i * 5 + 2]);
            assert_eq!(s.atm_volatility(t, 5e9), VOLS[i * 5 + 2]);
        }
    }

    #[test]
    fn matches_independent_reference_everywhere() {
        for axis in [StrikeAxis::LogMoneyness, StrikeAxis::Strike] {
            let s = sample(axis);
            let g = grid_of(&s);
            let (lo, hi) = (g.strikes[0], g.strikes[4]);
            let mut worst: f64 = 0.0;
            for a in 0..=60 {
                let years = 0.01 + 3.0 * a as f64 / 60.0;
                for b in 0..=80 {
                    let x = lo - 0.3 * (hi - lo) + 1.6 * (hi - lo) * b as f64 / 80.0;
                    let x = if axis == StrikeAxis::Strike {
                        x.max(1.0)
                    } else {
                        x
                    };
                    let got = g.volatility_at(years, x);
                    let want = reference(&g.expiries, &g.strikes, &VOLS, years, x);
                    worst = worst.max(rel_err(got, want));
                }
            }
            assert!(worst <= REL_TOL, "{axis:?}: worst relative error {worst:e}");
        }
    }

    #[test]
    fn public_lookup_uses_log_moneyness_of_strike_over_forward() {
        let s = sample(StrikeAxis::LogMoneyness);
        let g = grid_of(&s);
        for (strike, forward) in [(80.0, 100.0), (1.2e5, 1e5), (3.0, 2.0), (1e-3, 1e3)] {
            let x = f64::ln(strike / forward);
            let got = s.volatility(0.7, strike, forward);
            assert!(rel_err(got, g.volatility_at(0.7, x)) <= REL_TOL);
        }
        // Ratios that overflow or underflow still land on the right wing.
        assert_eq!(s.volatility(0.25, f64::MAX, 1e-300), VOLS[9]);
        assert_eq!(s.volatility(0.25, 5e-324, 1e300), VOLS[5]);
        assert_eq!(s.volatility(0.25, 1e-300, f64::MAX), VOLS[5]);
    }

    #[test]
    fn total_variance_is_linear_in_time_between_expiries() {
        let s = sample(StrikeAxis::LogMoneyness);
        let g = grid_of(&s);
        for x in [-0.7, -0.4, -0.25, 0.0, 0.07, 0.5, 0.9] {
            for pair in EXPIRIES.windows(2) {
                let (t0, t1) = (pair[0], pair[1]);
                let w0 = g.volatility_at(t0, x).powi(2) * t0;
                let w1 = g.volatility_at(t1, x).powi(2) * t1;
                for m in 1..20 {
                    let t = t0 + (t1 - t0) * m as f64 / 20.0;
                    let w = g.volatility_at(t, x).powi(2) * t;
                    let linear = w0 + (w1 - w0) * (t - t0) / (t1 - t0);
                    assert!(
                        rel_err(w, linear) <= REL_TOL,
                        "x={x} t={t}: {w} vs {linear}"
                    );
                }
            }
        }
    }

    #[test]
    fn flat_vol_before_first_and_after_last_expiry() {
        let s = sample(StrikeAxis::LogMoneyness);
        let g = grid_of(&s);
        for x in [-1.0, -0.3, 0.0, 0.2, 2.0] {
            let first = g.volatility_at(EXPIRIES[0], x);
            let last = g.volatility_at(EXPIRIES[3], x);
            for t in [1e-12, 1e-6, 0.01, 0.049_999] {
                assert_eq!(g.volatility_at(t, x), first);
            }
            for t in [2.000_001, 5.0, 30.0, 1e12] {
                assert_eq!(g.volatility_at(t, x), last);
            }
        }
    }

    #[test]
    fn variance_is_linear_in_strike_and_flat_in_the_wings() {
        let s = sample(StrikeAxis::LogMoneyness);
        let g = grid_of(&s);
        let t = EXPIRIES[1];
        for pair in LOG_STRIKES.windows(2) {
            let (x0, x1) = (pair[0], pair[1]);
            let (v0, v1) = (
                g.volatility_at(t, x0).powi(2),
                g.volatility_at(t, x1).powi(2),
            );
            for m in 1..10 {
                let x = x0 + (x1 - x0) * m as f64 / 10.0;
                let linear = v0 + (v1 - v0) * (x - x0) / (x1 - x0);
                assert!(rel_err(g.volatility_at(t, x).powi(2), linear) <= REL_TOL);
            }
        }
        for x in [-0.400_001, -1.0, -50.0, f64::MIN] {
            assert_eq!(g.volatility_at(t, x), VOLS[5]);
        }
        for x in [0.500_001, 3.0, f64::MAX] {
            assert_eq!(g.volatility_at(t, x), VOLS[9]);
        }
    }

    #[test]
    fn interpolation_introduces_no_calendar_arbitrage() {
        // Dense check of w(T) = sigma^2 T non-decreasing at fixed coordinate,
        // through every region (before, between, after expiries; inside and
        // beyond the strike wings).
        for axis in [StrikeAxis::LogMoneyness, StrikeAxis::Strike] {
            let s = sample(axis);
            let g = grid_of(&s);
            let (lo, hi) = (g.strikes[0], g.strikes[4]);
            for b in 0..=100 {
                let x = lo - 0.2 * (hi - lo) + 1.4 * (hi - lo) * b as f64 / 100.0;
                let mut previous = 0.0;
                for a in 1..=3000 {
                    let t = 3.0 * a as f64 / 3000.0;
                    let w = g.volatility_at(t, x).powi(2) * t;
                    assert!(
                        w >= previous * (1.0 - MONOTONE_REL_TOL),
                        "{axis:?} x={x} t={t}: {w} < {previous}"
                    );
                    previous = w;
                }
            }
        }
    }

    #[test]
    fn validation_errors_name_the_input_and_index() {
        let g = |e: Vec<f64>, a: StrikeAxis, k: Vec<f64>, v: Vec<f64>| VolSurface::grid(e, a, k, v);
        let lm = StrikeAxis::LogMoneyness;
        assert_eq!(
            g(vec![], lm, vec![0.0], vec![]),
            Err(Error::TooFew {
                what: "vol surface expiries",
                min: 1,
                got: 0
            })
        );
        assert_eq!(
            g(vec![1.0], lm, vec![], vec![]),
            Err(Error::TooFew {
                what: "vol surface strikes",
                min: 1,
                got: 0
            })
        );
        assert!(matches!(
            g(vec![0.5, 1.0], lm, vec![-0.1, 0.1], vec![0.2; 3]),
            Err(Error::LengthMismatch {
                expected: 4,
                got: 3,
                ..
            })
        ));
        let element = |r: Result<VolSurface>| match r {
            Err(Error::InvalidElement { what, index, .. }) => (what, index),
            other => panic!("expected InvalidElement, got {other:?}"),
        };
        let e = "vol surface expiries";
        for (expiries, index) in [
            (vec![0.5, f64::NAN], 1),
            (vec![0.0, 1.0], 0),
            (vec![-0.5, 1.0], 0),
            (vec![0.5, f64::INFINITY], 1),
            (vec![0.5, 0.5], 1),
            (vec![1.0, 0.5], 1),
        ] {
            assert_eq!(
                element(g(expiries, lm, vec![0.0], vec![0.2, 0.2])),
                (e, index)
            );
        }
        let k = "vol surface strikes";
        for (axis, strikes, index) in [
            (lm, vec![0.0, f64::NAN], 1),
            (lm, vec![f64::NEG_INFINITY, 0.0], 0),
            (lm, vec![0.1, 0.1], 1),
            (lm, vec![0.1, -0.1], 1),
            (lm, vec![-f64::MAX, f64::MAX], 1),
            (StrikeAxis::Strike, vec![0.0, 1.0], 0),
            (StrikeAxis::Strike, vec![-5.0, 1.0], 0),
            (StrikeAxis::Strike, vec![100.0, 90.0], 1),
        ] {
            assert_eq!(
                element(g(vec![1.0], axis, strikes, vec![0.2, 0.2])),
                (k, index)
            );
        }
        let v = "vol surface vols";
        for (vols, index) in [
            (vec![0.2, 0.2, 0.2, f64::NAN], 3),
            (vec![0.2, 0.0, 0.2, 0.2], 1),
            (vec![0.2, 0.2, -0.3, 0.2], 2),
            (vec![f64::INFINITY, 0.2, 0.2, 0.2], 0),
            (vec![0.2, 0.2, 0.2, 10.5], 3),
        ] {
            assert_eq!(
                element(g(vec![0.5, 1.0], lm, vec![-0.1, 0.1], vols)),
                (v, index)
            );
        }
        // Total variance underflows.
        assert_eq!(element(g(vec![1e-300], lm, vec![0.0], vec![1e-5])), (v, 0));
        assert_eq!(element(g(vec![1.0], lm, vec![0.0], vec![1e-160])), (v, 0));
        // Total variance overflows.
        assert_eq!(element(g(vec![1e307], lm, vec![0.0], vec![10.0])), (v, 0));
        // Calendar arbitrage names the later expiry and the column.
        assert_eq!(
            g(
                vec![0.5, 1.0],
                lm,
                vec![-0.1, 0.0, 0.1],
                vec![0.3, 0.3, 0.3, 0.3, 0.2, 0.3]
            ),
            Err(Error::SurfaceArbitrage {
                reason: "total implied variance decreases with expiry (calendar arbitrage)",
                expiry_index: 1,
                strike_index: 1,
            })
        );
        // Equal total variance (zero forward variance) is allowed, within
        // rounding of the vols.
        let t0: f64 = 0.5;
        let v0: f64 = 0.3;
        let v1 = (v0 * v0 * t0 / 1.0).sqrt();
        assert!(g(vec![t0, 1.0], lm, vec![0.0], vec![v0, v1]).is_ok());
        assert!(g(vec![t0, 1.0], lm, vec![0.0], vec![v0, v1 * (1.0 - 1e-9)]).is_err());
        // 1x1 is the smallest grid.
        let one = g(vec![0.5], StrikeAxis::Strike, vec![100.0], vec![0.4]).unwrap();
        assert_eq!(one.volatility(3.0, 1.0, 1.0), 0.4);
    }

    #[test]
    fn scaled_and_shifted_shocks() {
        let s = sample(StrikeAxis::LogMoneyness);
        let up = s.scaled(1.25).unwrap();
        for (a, b) in up.vols().iter().zip(VOLS) {
            assert_eq!(*a, b * 1.25);
        }
        assert_eq!(up.expiries(), s.expiries());
        assert_eq!(up.strikes(), s.strikes());
        assert_eq!(up.strike_axis(), Some(StrikeAxis::LogMoneyness));
        // Between nodes a relative shock scales the interpolated vol too.
        let (t, k) = (0.6, 1.07);
        assert!(rel_err(up.volatility(t, k, 1.0), 1.25 * s.volatility(t, k, 1.0)) <= REL_TOL);
        let shifted = s.shifted(0.05).unwrap();
        for (a, b) in shifted.vols().iter().zip(VOLS) {
            assert_eq!(*a, b + 0.05);
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                s.scaled(bad),
                Err(Error::InvalidInput {
                    what: "vol scale factor",
                    ..
                })
            ));
        }
        assert!(matches!(
            s.scaled(20.0),
            Err(Error::InvalidInput {
                what: "scaled volatility",
                ..
            })
        ));
        assert!(matches!(
            s.shifted(f64::NAN),
            Err(Error::InvalidInput {
                what: "vol shift",
                ..
            })
        ));
        assert!(matches!(
            s.shifted(-0.56),
            Err(Error::InvalidInput { what: "shifted volatility", value, .. }) if value <= 0.0
        ));
        assert!(matches!(
            s.shifted(9.5),
            Err(Error::InvalidInput {
                what: "shifted volatility",
                ..
            })
        ));
        // A downward shift that creates calendar arbitrage is refused.
        let term = VolSurface::grid(
            vec![1.0, 2.0],
            StrikeAxis::LogMoneyness,
            vec![0.0],
            vec![0.5, 0.36],
        )
        .unwrap();
        assert!(matches!(
            term.shifted(-0.3),
            Err(Error::SurfaceArbitrage { .. })
        ));
        assert!(term.scaled(0.1).is_ok());
        let flat = VolSurface::flat(0.4).unwrap();
        assert_eq!(flat.scaled(0.5).unwrap().flat_volatility(), Some(0.2));
        assert!(flat.shifted(-0.4).is_err());
    }

    #[test]
    fn atm_volatility_matches_lookup_at_the_forward() {
        for axis in [StrikeAxis::LogMoneyness, StrikeAxis::Strike] {
            let s = sample(axis);
            for t in [0.01, 0.05, 0.3, 1.5, 4.0] {
                for forward in [70.0, 100.0, 130.0] {
                    assert_eq!(
                        s.atm_volatility(t, forward),
                        s.volatility(t, forward, forward)
                    );
                }
            }
        }
    }

    #[test]
    fn normalised_call_matches_mpmath() {
        // mpmath (dps=40): ncdf(d1) - m*ncdf(d1 - sqrt(w)), d1 = -ln(m)/sqrt(w) + sqrt(w)/2.
        for (m, w, want) in [
            (1.0, 0.04, 0.079_655_674_554_057_96),
            (0.8, 0.09, 0.235_343_901_031_737_52),
            (1.25, 0.01, 0.000_498_929_292_773_026_9),
            (2.0, 0.5, 0.083_160_763_909_243_86),
        ] {
            let got = normalised_call(m, w);
            assert!(
                (got - want).abs() <= CALL_ABS_TOL,
                "m={m} w={w}: {got} vs {want}"
            );
        }
        // Hull, Options Futures and Other Derivatives, Example 15.6:
        // S=42, K=40, r=10%, sigma=20%, T=0.5 -> c = 4.76 (mpmath 4.75942239287153).
        let (spot, strike, rate, vol, years): (f64, f64, f64, f64, f64) =
            (42.0, 40.0, 0.1, 0.2, 0.5);
        let forward = spot * (rate * years).exp();
        let c =
            (-rate * years).exp() * forward * normalised_call(strike / forward, vol * vol * years);
        assert!((c - 4.759_422_392_871_533).abs() <= CALL_ABS_TOL * forward);
    }

    /// Nodes where the piecewise-linear smile (in variance, flat beyond the
    /// wings) bends downwards: the slope of variance falls. Such a concave kink
    /// puts a negative mass in the implied density (infinitesimal butterfly
    /// arbitrage); convex kinks do not.
    fn concave_kinks(strikes: &[f64], row: &[f64]) -> Vec<f64> {
        let n = strikes.len();
        let slope = |j: usize| {
            if j == 0 || j == n {
                0.0
            } else {
                (row[j].powi(2) - row[j - 1].powi(2)) / (strikes[j] - strikes[j - 1])
            }
        };
        (0..n)
            .filter(|&j| slope(j + 1) < slope(j))
            .map(|j| strikes[j])
            .collect()
    }

    #[test]
    fn butterfly_diagnostic() {
        // A flat grid has none.
        let flat = VolSurface::grid(
            EXPIRIES.to_vec(),
            StrikeAxis::Strike,
            STRIKES.to_vec(),
            vec![0.4; 20],
        )
        .unwrap();
        assert!(flat.butterfly_violations(|_| 100.0).unwrap().is_empty());
        // On the log-moneyness sample every concave kink of the longest
        // expiry's smile is flagged (on the strike sample, the kink at 115 is
        // too small for the sampling to resolve against the smooth convexity).
        {
            let axis = StrikeAxis::LogMoneyness;
            let s = sample(axis);
            let found = s.butterfly_violations(|_| 100.0).unwrap();
            for v in &found {
                assert!(v.excess > 0.0 && v.years == EXPIRIES[v.expiry_index]);
                assert!(s.strikes()[v.strike_index] <= v.strike_coordinate || v.strike_index == 0);
            }
            let at_nodes: Vec<f64> = found
                .iter()
                .filter(|v| v.expiry_index == 3 && s.strikes().contains(&v.strike_coordinate))
                .map(|v| v.strike_coordinate)
                .collect();
            assert_eq!(
                at_nodes,
                concave_kinks(s.strikes(), &VOLS[15..]),
                "{axis:?}"
            );
        }
        // Inside a steep fixed-strike segment (variance linear in K from 0.70^2
        // at 70 to 0.61^2 at 90, T = 2, F = 100) the butterfly 75/80/85 has
        // negative cost; mpmath (dps=30) gives C(80)/F minus the chord as
        // 9.24574225621021e-6.
        let found = sample(StrikeAxis::Strike)
            .butterfly_violations(|_| 100.0)
            .unwrap();
        let interior = found
            .iter()
            .find(|v| v.expiry_index == 3 && v.strike_coordinate == 80.0)
            .unwrap();
        assert_eq!(interior.strike_index, 0);
        assert!((interior.excess - 9.245_742_256_210_21e-6).abs() <= CALL_ABS_TOL);
        // A spike in the second row only.
        let spike = VolSurface::grid(
            vec![0.25, 0.5],
            StrikeAxis::Strike,
            vec![95.0, 100.0, 105.0],
            vec![0.30, 0.30, 0.30, 0.25, 0.70, 0.25],
        )
        .unwrap();
        let found = spike.butterfly_violations(|_| 100.0).unwrap();
        assert!(!found.is_empty());
        assert!(
            found
                .iter()
                .all(|v| v.expiry_index == 1 && v.years == 0.5 && v.excess > 0.0)
        );
        assert!(
            found
                .iter()
                .any(|v| v.strike_coordinate == 100.0 && v.strike_index == 1)
        );
        // The forward is validated for an absolute-strike surface only.
        assert!(matches!(
            spike.butterfly_violations(|_| 0.0),
            Err(Error::InvalidInput { .. })
        ));
        assert!(
            sample(StrikeAxis::LogMoneyness)
                .butterfly_violations(|_| f64::NAN)
                .is_ok()
        );
        // Single node: flat smile, no violation.
        let one = VolSurface::grid(vec![1.0], StrikeAxis::Strike, vec![10.0], vec![0.3]).unwrap();
        assert!(one.butterfly_violations(|_| 10.0).unwrap().is_empty());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_and_rejection() {
        for s in [
            VolSurface::flat(0.55).unwrap(),
            sample(StrikeAxis::LogMoneyness),
            sample(StrikeAxis::Strike),
        ] {
            let json = serde_json::to_string(&s).unwrap();
            let back: VolSurface = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(
            serde_json::to_string(&VolSurface::flat(0.5).unwrap()).unwrap(),
            r#"{"flat":0.5}"#
        );
        let good = r#"{"grid":{"expiries":[0.5,1.0],"strike_axis":"strike","strikes":[90.0,110.0],"vols":[0.3,0.2,0.3,0.2]}}"#;
        let s: VolSurface = serde_json::from_str(good).unwrap();
        assert_eq!(s.strike_axis(), Some(StrikeAxis::Strike));
        let reject = |json: &str, needle: &str| {
            let err = serde_json::from_str::<VolSurface>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{json}: {err}");
        };
        reject(&good.replace("\"vols\"", "\"vol\""), "vol");
        reject(&good.replace("]}}", "],\"extra\":1}}"), "extra");
        reject(&good.replace("\"strike\",", "\"moneyness\","), "moneyness");
        reject(&good.replace(",\"strikes\":[90.0,110.0]", ""), "strikes");
        reject(
            &good.replace("0.3,0.2,0.3,0.2", "0.3,0.2,0.3,-0.2"),
            "vol surface vols[3]",
        );
        reject(
            &good.replace("[0.5,1.0]", "[1.0,0.5]"),
            "vol surface expiries[1]",
        );
        reject(
            &good.replace("0.3,0.2,0.3,0.2", "0.3,0.2,0.1,0.2"),
            "calendar arbitrage",
        );
        reject(
            &good.replace("0.3,0.2,0.3,0.2", "0.3,0.2,0.3"),
            "expected length 4, got 3",
        );
        reject(r#"{"flat":-0.1}"#, "volatility");
        reject(r#"{"bumpy":0.1}"#, "bumpy");
    }

    #[test]
    fn surfaces_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<VolSurface>();
        check::<StrikeAxis>();
        check::<ButterflyViolation>();
    }

    /// A positive number spread log-uniformly over `[1e-12, 1e12]`, with the
    /// extremes and the double's own limits drawn often.
    fn positive_arg() -> impl Strategy<Value = f64> {
        prop_oneof![
            1 => Just(1e-12),
            1 => Just(1e12),
            1 => Just(f64::MIN_POSITIVE),
            1 => Just(f64::MAX),
            1 => Just(5e-324),
            6 => (-12.0_f64..12.0).prop_map(|e| 10f64.powf(e)),
        ]
    }

    /// A random valid grid: strictly increasing axes, vols in range, and
    /// total variance non-decreasing down each column.
    fn valid_grid() -> impl Strategy<Value = VolSurface> {
        (1usize..=4, 1usize..=5, any::<bool>()).prop_flat_map(|(rows, cols, log_axis)| {
            (
                prop::collection::vec(1e-3_f64..2.0, rows),
                -1.0_f64..1.0,
                prop::collection::vec(1e-3_f64..0.5, cols),
                prop::collection::vec(0.05_f64..2.0, cols),
                prop::collection::vec(0.0_f64..4.0, rows * cols),
            )
                .prop_map(
                    move |(gaps, start, strike_gaps, first_row, forward_variances)| {
                        let expiries: Vec<f64> = gaps
                            .iter()
                            .scan(0.0, |t, g| {
                                *t += g;
                                Some(*t)
                            })
                            .collect();
                        let log_strikes: Vec<f64> = strike_gaps
                            .iter()
                            .scan(start, |k, g| {
                                *k += g;
                                Some(*k)
                            })
                            .collect();
                        let (axis, strikes) = if log_axis {
                            (StrikeAxis::LogMoneyness, log_strikes)
                        } else {
                            (
                                StrikeAxis::Strike,
                                log_strikes.iter().map(|k| 100.0 * k.exp()).collect(),
                            )
                        };
                        let mut vols = Vec::with_capacity(rows * cols);
                        for (j, &v) in first_row.iter().enumerate() {
                            let mut total = v * v * expiries[0];
                            vols.push(v);
                            for i in 1..rows {
                                total += forward_variances[i * cols + j]
                                    * (expiries[i] - expiries[i - 1]);
                                vols.push((total / expiries[i]).sqrt());
                            }
                        }
                        // `vols` was filled column-major; transpose to row-major.
                        let row_major = (0..rows * cols)
                            .map(|n| vols[(n % cols) * rows + n / cols])
                            .collect();
                        VolSurface::grid(expiries, axis, strikes, row_major).unwrap()
                    },
                )
        })
    }

    proptest! {
        #[test]
        fn volatility_is_finite_positive_and_bounded(
            surface in valid_grid(),
            years in positive_arg(),
            strike in positive_arg(),
            forward in positive_arg(),
        ) {
            let vol = surface.volatility(years, strike, forward);
            let lo = surface.vols().iter().copied().fold(f64::INFINITY, f64::min);
            let hi = surface.vols().iter().copied().fold(0.0, f64::max);
            prop_assert!(vol.is_finite() && vol > 0.0, "{vol}");
            prop_assert!(lo <= vol && vol <= hi, "{vol} outside [{lo}, {hi}]");
            let atm = surface.atm_volatility(years, forward);
            prop_assert!(atm.is_finite() && lo <= atm && atm <= hi);
        }

        #[test]
        fn garbage_arguments_never_panic_or_escape_the_node_range(
            surface in valid_grid(),
            years in prop::num::f64::ANY,
            strike in prop::num::f64::ANY,
            forward in prop::num::f64::ANY,
        ) {
            let vol = surface.volatility(years, strike, forward);
            let hi = surface.vols().iter().copied().fold(0.0, f64::max);
            prop_assert!(vol.is_finite() && vol > 0.0 && vol <= hi);
        }

        #[test]
        fn random_valid_grids_have_no_calendar_arbitrage(
            surface in valid_grid(),
            strike in 50.0_f64..200.0,
            t1 in 1e-4_f64..10.0,
            dt in 0.0_f64..10.0,
        ) {
            let t2 = t1 + dt;
            let w1 = surface.volatility(t1, strike, 100.0).powi(2) * t1;
            let w2 = surface.volatility(t2, strike, 100.0).powi(2) * t2;
            prop_assert!(w2 >= w1 * (1.0 - MONOTONE_REL_TOL), "{w2} < {w1}");
        }

        #[test]
        fn scaled_surfaces_stay_valid(surface in valid_grid(), factor in 0.01_f64..4.0) {
            let scaled = surface.scaled(factor);
            let hi = surface.vols().iter().copied().fold(0.0, f64::max);
            prop_assert_eq!(scaled.is_ok(), hi * factor <= VolSurface::MAX_VOLATILITY);
        }
    }
}
