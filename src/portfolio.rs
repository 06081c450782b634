//! Instrument sets, positions and portfolios.

use crate::error::{Error, Result};
use crate::instrument::{Instrument, InstrumentId};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Identifier of an account (a portfolio's owner).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(transparent))]
pub struct AccountId(String);

impl AccountId {
    /// From any string.
    pub fn new(id: impl Into<String>) -> Self {
        AccountId(id.into())
    }
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The listed instruments, keyed by id, in insertion order.
///
/// ```
/// use portfolio_margin::{Instrument, InstrumentId, InstrumentSet, UnderlyingId};
/// let mut set = InstrumentSet::new();
/// set.insert(InstrumentId::new("BTC-SPOT")?, Instrument::Spot(UnderlyingId::new("BTC")?))?;
/// assert!(set.get(&InstrumentId::new("BTC-SPOT")?).is_ok());
/// assert!(set.insert(InstrumentId::new("BTC-SPOT")?, Instrument::Spot(UnderlyingId::new("BTC")?)).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "Vec<ListedInstrument>", into = "Vec<ListedInstrument>")
)]
pub struct InstrumentSet {
    items: Vec<ListedInstrument>,
    index: HashMap<InstrumentId, usize>,
}

/// An instrument with its id, as listed.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(deny_unknown_fields)
)]
pub struct ListedInstrument {
    /// The id.
    pub id: InstrumentId,
    /// The terms.
    pub instrument: Instrument,
}

impl InstrumentSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instrument.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] if `id` is already listed.
    pub fn insert(&mut self, id: InstrumentId, instrument: Instrument) -> Result<()> {
        if self.index.contains_key(&id) {
            return Err(Error::DuplicateId {
                what: "instrument",
                id: id.to_string(),
            });
        }
        self.index.insert(id.clone(), self.items.len());
        self.items.push(ListedInstrument { id, instrument });
        Ok(())
    }

    /// Looks an instrument up.
    ///
    /// # Errors
    /// [`Error::UnknownInstrument`] if `id` is not listed.
    pub fn get(&self, id: &InstrumentId) -> Result<&Instrument> {
        self.position_of(id).map(|i| &self.items[i].instrument)
    }

    /// The dense index of `id` (its insertion order).
    ///
    /// # Errors
    /// [`Error::UnknownInstrument`] if `id` is not listed.
    pub fn position_of(&self, id: &InstrumentId) -> Result<usize> {
        self.index
            .get(id)
            .copied()
            .ok_or_else(|| Error::UnknownInstrument(id.clone()))
    }

    /// All instruments in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &ListedInstrument> {
        self.items.iter()
    }

    /// Number of instruments.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no instrument is listed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl TryFrom<Vec<ListedInstrument>> for InstrumentSet {
    type Error = Error;
    fn try_from(items: Vec<ListedInstrument>) -> Result<Self> {
        let mut set = InstrumentSet::new();
        for item in items {
            set.insert(item.id, item.instrument)?;
        }
        Ok(set)
    }
}

impl From<InstrumentSet> for Vec<ListedInstrument> {
    fn from(set: InstrumentSet) -> Self {
        set.items
    }
}

/// A holding: an instrument and a signed quantity of contracts
/// (positive long, negative short).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Position {
    /// The instrument held.
    pub instrument: InstrumentId,
    /// Contracts held; negative for short.
    pub quantity: f64,
}

impl Position {
    /// A position of `quantity` contracts.
    pub fn new(instrument: InstrumentId, quantity: f64) -> Self {
        Position {
            instrument,
            quantity,
        }
    }
}

/// Largest absolute quantity accepted for one position; beyond it products
/// with prices and multipliers risk overflowing `f64` aggregates.
pub const MAX_ABS_QUANTITY: f64 = 1e15;

/// An account's positions, validated against an [`InstrumentSet`]: every id
/// is listed, no id appears twice, every quantity is finite, non-zero and at
/// most [`MAX_ABS_QUANTITY`] in size.
///
/// ```
/// use portfolio_margin::{AccountId, Instrument, InstrumentId, InstrumentSet, Portfolio, Position, UnderlyingId};
/// let mut set = InstrumentSet::new();
/// set.insert(InstrumentId::new("BTC")?, Instrument::Spot(UnderlyingId::new("BTC")?))?;
/// let book = Portfolio::new(AccountId::new("alice"), vec![Position::new(InstrumentId::new("BTC")?, 2.0)], &set)?;
/// assert_eq!(book.positions().len(), 1);
/// let bad = Portfolio::new(AccountId::new("bob"), vec![Position::new(InstrumentId::new("ETH")?, 1.0)], &set);
/// assert!(bad.is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Portfolio {
    account: AccountId,
    positions: Vec<Position>,
}

impl Portfolio {
    /// Validates `positions` against `instruments`.
    ///
    /// # Errors
    /// [`Error::UnknownInstrument`], [`Error::DuplicateId`], or
    /// [`Error::InvalidElement`] naming the position index of a bad quantity.
    pub fn new(
        account: AccountId,
        positions: Vec<Position>,
        instruments: &InstrumentSet,
    ) -> Result<Self> {
        let mut seen = HashMap::with_capacity(positions.len());
        for (index, p) in positions.iter().enumerate() {
            instruments.get(&p.instrument)?;
            let q = p.quantity;
            if !q.is_finite() || q == 0.0 || q.abs() > MAX_ABS_QUANTITY {
                return Err(Error::InvalidElement {
                    what: "position quantity",
                    index,
                    rule: "finite, non-zero and at most 1e15 in size",
                    value: q,
                });
            }
            if seen.insert(&p.instrument, index).is_some() {
                return Err(Error::DuplicateId {
                    what: "position",
                    id: p.instrument.to_string(),
                });
            }
        }
        Ok(Portfolio { account, positions })
    }

    /// The owner.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The positions, in the order given.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }
}
