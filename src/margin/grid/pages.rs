//! Backing store of the engine's risk-array table: on Linux, whole 2 MiB
//! pages when the kernel grants them.
//!
//! Every account reads 20 or so random rows of the table, each on its own
//! 4 KiB page: for a table of a megabyte (2,000 instruments x 64
//! scenarios) the 256 pages overflow the first-level TLB, and the page
//! walks cost as much as the arithmetic (100,000 accounts x 20 positions:
//! 142 ns per account on 4 KiB pages, 99 on one 2 MiB page, in a
//! stripped-down copy of the kernel). So a large table is mapped
//! anonymously, aligned to 2 MiB inside the mapping and advised as a
//! transparent-huge-page candidate (`MADV_HUGEPAGE`) before it is first
//! written, which is when the kernel chooses the page size. Where the
//! advice is refused (another system, transparent huge pages off) the
//! table is the same numbers on ordinary pages; where the mapping fails, a
//! `Vec`.
//!
//! A venue builds an engine per snapshot, and a fresh mapping costs a page
//! fault that zeroes (and may first assemble) a 2 MiB page: measured at
//! 0.15-0.3 ms of a ~2 ms engine build. So the mappings of dropped tables
//! are kept, a few of them, for the next table of the same size, which
//! only has to zero the part it uses.

use memmap2::MmapMut;
use std::sync::{Mutex, MutexGuard};

/// A 2 MiB huge page, in bytes.
const HUGE_PAGE: usize = 2 << 20;

/// Below this many bytes (a quarter of a huge page) a table spans few
/// enough ordinary pages for the TLB, and lives in a `Vec`.
const MAPPED_FROM: usize = HUGE_PAGE / 4;

/// Mappings kept for reuse: at most this many (each holds its huge page).
const SPARES: usize = 2;

/// Mappings of dropped tables, most recent last.
static SPARE: Mutex<Vec<MmapMut>> = Mutex::new(Vec::new());

/// The spare list (a poisoned lock still guards a valid list: it is only
/// pushed to and popped from).
fn spares() -> MutexGuard<'static, Vec<MmapMut>> {
    SPARE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A zero-initialised `f64` buffer, huge-page backed where possible.
pub(super) struct Pages {
    store: Store,
}

enum Store {
    /// `len` numbers from byte `start` of `map` (`start` a multiple of
    /// 2 MiB from the address of a 2 MiB page).
    Mapped {
        map: MmapMut,
        start: usize,
        len: usize,
    },
    Heap(Vec<f64>),
}

impl Pages {
    /// `len` zeros.
    pub(super) fn zeroed(len: usize) -> Pages {
        let bytes = len.saturating_mul(size_of::<f64>());
        if bytes >= MAPPED_FROM
            && let Some(store) = mapped(len, bytes)
        {
            return Pages { store };
        }
        Pages {
            store: Store::Heap(vec![0.0; len]),
        }
    }

    /// The numbers.
    pub(super) fn as_slice(&self) -> &[f64] {
        match &self.store {
            Store::Mapped { map, start, len } => map
                .get(*start..)
                .and_then(|b| bytemuck::try_cast_slice::<u8, f64>(b).ok())
                .and_then(|s| s.get(..*len))
                .unwrap_or(&[]),
            Store::Heap(v) => v,
        }
    }

    /// The numbers, to fill.
    pub(super) fn as_mut_slice(&mut self) -> &mut [f64] {
        match &mut self.store {
            Store::Mapped { map, start, len } => map
                .get_mut(*start..)
                .and_then(|b| bytemuck::try_cast_slice_mut::<u8, f64>(b).ok())
                .and_then(|s| s.get_mut(..*len))
                .unwrap_or(&mut []),
            Store::Heap(v) => v,
        }
    }

    /// Whether the buffer is a mapping advised for huge pages (whether the
    /// kernel granted them is its own affair).
    #[cfg(test)]
    fn is_mapped(&self) -> bool {
        matches!(self.store, Store::Mapped { .. })
    }
}

/// An anonymous mapping with `len` numbers from a 2 MiB boundary, the
/// pages that hold them advised as huge-page candidates (best effort);
/// `None` if the mapping fails or cannot hold them (the caller falls back
/// to the heap).
fn mapped(len: usize, bytes: usize) -> Option<Store> {
    // Whole huge pages, plus one of slack to reach the boundary.
    let span = bytes.checked_next_multiple_of(HUGE_PAGE)?;
    let size = span.checked_add(HUGE_PAGE)?;
    let spare = {
        let mut list = spares();
        let at = list.iter().rposition(|m| m.len() == size);
        at.map(|at| list.swap_remove(at))
    };
    let fresh = spare.is_none();
    let mut map = match spare {
        Some(map) => map,
        None => MmapMut::map_anon(size).ok()?,
    };
    let address = map.as_ptr() as usize;
    let start = address.checked_next_multiple_of(HUGE_PAGE)? - address;
    // The numbers are read through a cast that needs the 8-byte alignment
    // a page boundary has: checked once here rather than trusted.
    map.get(start..start.checked_add(bytes)?)
        .filter(|b| bytemuck::try_cast_slice::<u8, f64>(b).is_ok())?;
    #[cfg(target_os = "linux")]
    if fresh {
        // Refused advice (no transparent huge pages) leaves ordinary pages.
        let _ = map.advise_range(memmap2::Advice::HugePage, start, span);
    }
    if !fresh && let Some(used) = map.get_mut(start..start + bytes) {
        // A spare holds its last table's numbers.
        used.fill(0);
    }
    Some(Store::Mapped { map, start, len })
}

impl Drop for Pages {
    fn drop(&mut self) {
        let store = std::mem::replace(&mut self.store, Store::Heap(Vec::new()));
        if let Store::Mapped { map, .. } = store {
            let mut list = spares();
            if list.len() == SPARES {
                list.remove(0);
            }
            list.push(map);
        }
    }
}

impl Clone for Pages {
    fn clone(&self) -> Pages {
        let src = self.as_slice();
        let mut out = Pages::zeroed(src.len());
        out.as_mut_slice().copy_from_slice(src);
        out
    }
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.store {
            Store::Mapped { .. } => "huge-page candidate mapping",
            Store::Heap(_) => "heap",
        };
        f.debug_struct("Pages")
            .field("len", &self.as_slice().len())
            .field("store", &kind)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_hold_what_is_written() {
        for len in [0, 1, 1_000, MAPPED_FROM / 8, 3 * HUGE_PAGE / 8 + 5] {
            let mut p = Pages::zeroed(len);
            assert_eq!(p.as_slice().len(), len);
            assert!(p.as_slice().iter().all(|&x| x == 0.0));
            for (i, x) in p.as_mut_slice().iter_mut().enumerate() {
                *x = i as f64;
            }
            let q = p.clone();
            assert_eq!(q.as_slice(), p.as_slice());
            assert_eq!(
                q.as_slice().last().copied(),
                len.checked_sub(1).map(|l| l as f64)
            );
            if len * 8 >= MAPPED_FROM {
                assert!(p.is_mapped() && q.is_mapped(), "{len}");
                let at = p.as_slice().as_ptr() as usize;
                assert_eq!(at % HUGE_PAGE, 0);
            } else {
                assert!(!p.is_mapped());
            }
        }
    }

    #[test]
    fn a_reused_mapping_starts_at_zero() {
        // Dropped tables leave their numbers in the spare mappings; every
        // new buffer of their size must still read zeros.
        let len = MAPPED_FROM / 8 + 123;
        for round in 0..6 {
            let mut p = Pages::zeroed(len);
            assert!(p.as_slice().iter().all(|&x| x == 0.0), "round {round}");
            p.as_mut_slice().fill(f64::NAN);
            let q = p.clone();
            assert!(q.as_slice().iter().all(|x| x.is_nan()));
        }
    }
}
