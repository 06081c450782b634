//! The crate's one error type.
//!
//! Every fallible public function returns [`Result<T>`]. Variants carry the
//! offending field, id or index and the rule it broke, so an exchange log line
//! says what was wrong and where without a debugger.

use crate::collateral::AssetId;
use crate::instrument::{InstrumentId, UnderlyingId};
use crate::market::RiskFactor;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, with the data needed to find the cause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A number broke a documented rule (range, sign, finiteness).
    #[error("{what} must be {rule}, got {value}")]
    InvalidInput {
        /// Which input, e.g. `"strike"` or `"vol surface expiry"`.
        what: &'static str,
        /// The rule it broke, e.g. `"finite and > 0"`.
        rule: &'static str,
        /// The value received.
        value: f64,
    },
    /// A number at a position in a sequence broke a rule.
    #[error("{what}[{index}] must be {rule}, got {value}")]
    InvalidElement {
        /// Which sequence.
        what: &'static str,
        /// Position of the offending element.
        index: usize,
        /// The rule it broke.
        rule: &'static str,
        /// The value received.
        value: f64,
    },
    /// Two inputs that must have the same length do not.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// An input that must not be empty is empty (or too short).
    #[error("{what} needs at least {min} element(s), got {got}")]
    TooFew {
        /// Which input.
        what: &'static str,
        /// Minimum length.
        min: usize,
        /// Length received.
        got: usize,
    },
    /// A dated contract whose expiry is at or before the valuation time.
    #[error(
        "contract expired: expiry {expiry_millis} ms is not after the valuation time {as_of_millis} ms"
    )]
    Expired {
        /// Expiry, milliseconds since the Unix epoch.
        expiry_millis: i64,
        /// Valuation time, milliseconds since the Unix epoch.
        as_of_millis: i64,
    },
    /// An error raised while handling one instrument, with its id.
    #[error("instrument {id}: {source}")]
    InInstrument {
        /// The instrument.
        id: InstrumentId,
        /// What went wrong.
        source: Box<Error>,
    },
    /// An error raised while handling one underlying's market data, with
    /// its id.
    #[error("underlying {id}: {source}")]
    InUnderlying {
        /// The underlying.
        id: UnderlyingId,
        /// What went wrong.
        source: Box<Error>,
    },
    /// An underlying referenced by an instrument has no market data.
    #[error("no market data for underlying {0}")]
    MissingUnderlying(UnderlyingId),
    /// An instrument id is not in the instrument set.
    #[error("unknown instrument {0}")]
    UnknownInstrument(InstrumentId),
    /// An id appears twice where ids must be unique.
    #[error("duplicate {what} id {id}")]
    DuplicateId {
        /// What kind of id (`"instrument"`, `"position"`, `"underlying"`).
        what: &'static str,
        /// The id.
        id: String,
    },
    /// An option price outside the no-arbitrage bounds has no implied volatility.
    #[error("option price {price} is outside the no-arbitrage bounds: {bound} is {limit}")]
    PriceOutsideBounds {
        /// The price received.
        price: f64,
        /// Which bound: `"lower (intrinsic)"` or `"upper"`.
        bound: &'static str,
        /// Value of the bound.
        limit: f64,
    },
    /// A matrix is not a valid correlation matrix.
    #[error("correlation matrix invalid at ({row}, {col}): {reason}")]
    InvalidCorrelation {
        /// Row of the first offending entry.
        row: usize,
        /// Column of the first offending entry.
        col: usize,
        /// What is wrong: asymmetric, non-unit diagonal, out of [-1, 1], not PSD.
        reason: &'static str,
    },
    /// A computation produced a non-finite number from finite inputs
    /// (for example, an overflow of an aggregate).
    #[error("{what} is not finite ({value}); inputs are too large or degenerate")]
    NonFiniteResult {
        /// Which quantity.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A volatility surface violates a no-arbitrage condition.
    #[error(
        "vol surface arbitrage: {reason} at expiry index {expiry_index}, strike index {strike_index}"
    )]
    SurfaceArbitrage {
        /// Which condition.
        reason: &'static str,
        /// Expiry row.
        expiry_index: usize,
        /// Strike column.
        strike_index: usize,
    },
    /// An iterative method did not converge.
    #[error("{what} did not converge after {iterations} iterations")]
    NoConvergence {
        /// Which method.
        what: &'static str,
        /// Iterations run.
        iterations: usize,
    },
    /// A matrix is not a valid covariance matrix.
    #[error("covariance matrix invalid at ({row}, {col}): {reason}")]
    InvalidCovariance {
        /// Row of the offending entry (for "not positive semi-definite": the
        /// largest component of the offending eigenvector).
        row: usize,
        /// Column of the offending entry.
        col: usize,
        /// What is wrong: negative variance, asymmetric, not PSD.
        reason: &'static str,
    },
    /// A scenario's shock is invalid, or moves a market number out of its
    /// valid range (a spot or volatility at or below zero, a non-finite rate).
    #[error("scenario {scenario}, {factor}: {what} must be {rule}, got {value}")]
    InvalidShock {
        /// Index of the scenario in its set.
        scenario: usize,
        /// The risk factor shocked.
        factor: RiskFactor,
        /// Which number, e.g. `"shock size"` or `"shocked spot"`.
        what: &'static str,
        /// The rule it broke.
        rule: &'static str,
        /// The value received or produced.
        value: f64,
    },
    /// A number in a risk factor's price history broke a rule.
    #[error("history of {factor}: {what}[{index}] must be {rule}, got {value}")]
    InvalidHistory {
        /// The risk factor whose history is bad.
        factor: RiskFactor,
        /// Which series, e.g. `"price"` or `"filtered return"`.
        what: &'static str,
        /// Position in the series.
        index: usize,
        /// The rule it broke.
        rule: &'static str,
        /// The value received or produced.
        value: f64,
    },
    /// A risk factor's price history is too short or not aligned with the
    /// others.
    #[error("history of {factor} has {got} prices, needs {rule} {expected}")]
    HistoryLength {
        /// The risk factor whose history is bad.
        factor: RiskFactor,
        /// `"at least"` or `"exactly"`.
        rule: &'static str,
        /// Required number of prices.
        expected: usize,
        /// Number of prices received.
        got: usize,
    },
    /// A progress observer answered [`crate::Flow::Cancel`]; the computation
    /// stopped without a result.
    #[error("{stage} cancelled after {done} of {total} units of work")]
    Cancelled {
        /// The computation stopped, e.g. `"Monte Carlo revaluation"`.
        stage: &'static str,
        /// Units of work finished when the observer cancelled.
        done: u64,
        /// Units of work in the whole computation.
        total: u64,
    },
    /// A collateral asset id is not in the collateral policy.
    #[error("unknown collateral asset {0}")]
    UnknownAsset(AssetId),
    /// A grid account (or cached account state) was resolved against an
    /// engine with another instrument listing: its instrument indices would
    /// point at other instruments. Resolve it again with
    /// [`crate::GridMarginEngine::account`].
    #[error("grid account was resolved against another instrument listing; resolve it again")]
    ListingMismatch,
}

/// Checks that `value` is finite; names `what` in the error.
pub(crate) fn finite(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::InvalidInput {
            what,
            rule: "finite",
            value,
        })
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidInput {
            what,
            rule: "finite and > 0",
            value,
        })
    }
}

/// Checks that `value` is finite and not negative.
pub(crate) fn non_negative(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidInput {
            what,
            rule: "finite and >= 0",
            value,
        })
    }
}
