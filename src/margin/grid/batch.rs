//! Batch margin: many accounts against one engine, in chunks margined by
//! one call of the kernel each, into a dense array of requirements.
//!
//! The dense array is the point. A `Result<MarginRequirement>` is 88 bytes
//! (the error's size), a `MarginRequirement` 16: at 100,000 accounts the
//! results alone were 8.8 MB written per call, and writing them cost 20-40
//! ns of a ~150 ns account. Failures (an account of another listing, an
//! overflowed sum) are rare and kept aside, by index.
//!
//! The accounts may be a slice or anything that lends one
//! ([`GridMarginEngine::margin_batch_of`]): each account's fields and
//! positions are prefetched a few accounts ahead, since neither need be
//! next to the last one in memory.

use std::borrow::Borrow;

use super::kernel::{Isa, Kernel, dispatch, prefetch};
use super::{GridAccount, GridMarginEngine};
use crate::error::{Error, Result};
use crate::margin::MarginRequirement;

/// Accounts margined by one kernel call: enough to amortise the dispatch,
/// few enough that two threads share the work evenly.
const CHUNK: usize = 256;
/// Accounts ahead whose positions are prefetched. An account's positions
/// are one heap allocation wherever the caller's allocator put it: once
/// accounts have been rebuilt at different times they are scattered, and
/// each account's first load missed to memory. In the margin benchmark,
/// 100,000 accounts spread through the heap took 18.1 ms against 10.4 in
/// order; four accounts ahead (about 400 ns) brings them to 11.1-11.3 ms,
/// with accounts in order unchanged (see DESIGN.md).
const PREFETCH_AHEAD: usize = 4;

/// The margins of a batch of accounts ([`GridMarginEngine::margin_batch`]):
/// account `i`'s requirement, or the error that stopped it.
///
/// Stored densely (16 bytes per account) with the failures aside; read it
/// by [`BatchMargins::get`], [`BatchMargins::iter`], or
/// [`BatchMargins::requirements`] when nothing failed.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchMargins {
    /// Per account; [`MarginRequirement::ZERO`] where the account failed
    /// (never handed out: every read checks `failures`).
    requirements: Vec<MarginRequirement>,
    /// `(account index, error)`, in increasing index order.
    failures: Vec<(usize, Error)>,
}

impl BatchMargins {
    /// Number of accounts margined.
    pub fn len(&self) -> usize {
        self.requirements.len()
    }

    /// `true` for a batch of no accounts.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Account `i`'s requirement or error; `None` beyond the batch.
    pub fn get(&self, i: usize) -> Option<std::result::Result<MarginRequirement, &Error>> {
        let r = *self.requirements.get(i)?;
        Some(match self.failure(i) {
            Some(e) => Err(e),
            None => Ok(r),
        })
    }

    /// Every account's requirement or error, in order.
    pub fn iter(
        &self,
    ) -> impl ExactSizeIterator<Item = std::result::Result<MarginRequirement, &Error>> + '_ {
        let mut failures = self.failures.iter().peekable();
        self.requirements.iter().enumerate().map(move |(i, r)| {
            match failures.next_if(|(k, _)| *k == i) {
                Some((_, e)) => Err(e),
                None => Ok(*r),
            }
        })
    }

    /// Every requirement, in account order, if no account failed.
    pub fn requirements(&self) -> Option<&[MarginRequirement]> {
        self.failures.is_empty().then_some(&self.requirements[..])
    }

    /// The accounts that failed: `(index, error)` in increasing index
    /// order.
    pub fn failures(&self) -> &[(usize, Error)] {
        &self.failures
    }

    /// One `Result` per account, in order.
    pub fn into_results(self) -> Vec<Result<MarginRequirement>> {
        // Through `iter`: the failures are few, so cloning them is cheap.
        self.iter().map(|r| r.map_err(Clone::clone)).collect()
    }

    fn failure(&self, i: usize) -> Option<&Error> {
        self.failures
            .binary_search_by_key(&i, |(k, _)| *k)
            .ok()
            .and_then(|at| self.failures.get(at))
            .map(|(_, e)| e)
    }
}

impl IntoIterator for BatchMargins {
    type Item = Result<MarginRequirement>;
    type IntoIter = std::vec::IntoIter<Result<MarginRequirement>>;

    /// [`BatchMargins::into_results`], as an iterator.
    fn into_iter(self) -> Self::IntoIter {
        self.into_results().into_iter()
    }
}

/// Margins `accounts` against `engine` (see
/// [`GridMarginEngine::margin_batch_of`]).
pub(super) fn margin_batch<A: Borrow<GridAccount> + Sync>(
    engine: &GridMarginEngine,
    accounts: &[A],
) -> BatchMargins {
    let mut requirements = vec![MarginRequirement::ZERO; accounts.len()];
    // Each chunk sees the accounts from its first to the end of the batch
    // (it margins as many as `out` holds), so that it prefetches across its
    // end too.
    let chunk = |(c, out): (usize, &mut [MarginRequirement])| {
        let first = c * CHUNK;
        dispatch(
            Isa::detect(),
            Chunk {
                engine,
                accounts: accounts.get(first..).unwrap_or(&[]),
                out,
                first,
            },
        )
    };
    #[cfg(feature = "rayon")]
    let failures = {
        use rayon::prelude::*;
        requirements
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(chunk)
            .flatten_iter()
            .collect()
    };
    #[cfg(not(feature = "rayon"))]
    let failures = requirements
        .chunks_mut(CHUNK)
        .enumerate()
        .flat_map(chunk)
        .collect();
    BatchMargins {
        requirements,
        failures,
    }
}

/// One chunk of accounts, margined in one kernel call: requirements into
/// `out`, failures returned with their batch index.
struct Chunk<'a, 'b, A> {
    engine: &'a GridMarginEngine,
    /// The chunk's accounts first (as many as `out` holds), then the rest
    /// of the batch, read only to prefetch.
    accounts: &'b [A],
    out: &'b mut [MarginRequirement],
    first: usize,
}

impl<A: Borrow<GridAccount>> Kernel for Chunk<'_, '_, A> {
    type Out = Vec<(usize, Error)>;
    #[inline(always)]
    fn run<const FMA: bool, const N: usize>(self) -> Self::Out {
        let mut failures = Vec::new();
        let table = self.engine.table();
        for (i, (account, out)) in self.accounts.iter().zip(self.out.iter_mut()).enumerate() {
            let account: &GridAccount = account.borrow();
            if let Some(far) = self.accounts.get(i + 2 * PREFETCH_AHEAD) {
                // The account itself, for accounts held by reference or
                // inside the caller's own records (a no-op's worth for a
                // slice of accounts, which streams).
                let at: *const GridAccount = far.borrow();
                prefetch(at);
                prefetch(at.cast::<u8>().wrapping_add(size_of::<GridAccount>() - 1));
            }
            if let Some(ahead) = self.accounts.get(i + PREFETCH_AHEAD) {
                // Every cache line of the positions, the last byte's too.
                let slots = &ahead.borrow().slots;
                let bytes = std::mem::size_of_val(slots.as_slice());
                let start = slots.as_ptr().cast::<u8>();
                for at in (0..bytes).step_by(64).chain(bytes.checked_sub(1)) {
                    prefetch(start.wrapping_add(at));
                }
            }
            // A `match`, not `and_then`: a closure would be compiled apart,
            // without the kernel's instruction set.
            let r = if account.listing == self.engine.listing {
                self.engine.requirement_body::<FMA, N>(&table, account)
            } else {
                Err(Error::ListingMismatch)
            };
            match r {
                Ok(r) => *out = r,
                Err(e) => failures.push((self.first + i, e)),
            }
        }
        failures
    }
}
