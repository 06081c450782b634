//! The grid engine's accumulation kernel, compiled three times (baseline,
//! AVX2 + FMA, AVX-512 + FMA) and picked at run time.
//!
//! Every copy forms each scenario's loss the same way, lane by lane: the
//! slots in account order, `acc = quantity x row + acc` from `0.0`, fused
//! in the AVX2 and AVX-512 copies (so those two give the same bits; they
//! differ only in how many scenarios sit in registers at once) and unfused
//! in the baseline copy.

use super::Slot;
#[cfg(test)]
use super::{RowMeta, slot_minimum};

/// An instruction set the processor was found to have; only
/// [`Isa::detect`] makes one, so holding an `Isa` proves the detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Isa(Level);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The baseline target (SSE2 on x86-64), no fused multiply-add.
    Baseline,
    /// AVX2 and FMA: 32 scenarios in registers (8 ymm).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// AVX-512F, AVX2 and FMA: 64 scenarios in registers (8 zmm).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

impl Isa {
    /// The widest copy the processor can run.
    pub(super) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("avx2")
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return Isa(Level::Avx512);
                }
                return Isa(Level::Avx2);
            }
        }
        Isa(Level::Baseline)
    }
}

/// Work compiled once per instruction set: `FMA` selects fused
/// multiply-add, `N` the scenarios kept in registers per pass.
pub(super) trait Kernel {
    /// What the work returns.
    type Out;
    /// The work (`#[inline(always)]` so that it is compiled for the
    /// caller's instruction set).
    fn run<const FMA: bool, const N: usize>(self) -> Self::Out;
}

/// Runs `kernel` compiled for `isa`.
#[allow(unsafe_code)]
#[inline(always)]
pub(super) fn dispatch<K: Kernel>(isa: Isa, kernel: K) -> K::Out {
    match isa.0 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Isa` of this level is only made by `Isa::detect`
        // after checking at run time that the processor has AVX-512F, AVX2
        // and FMA, all that `run_avx512` requires.
        Level::Avx512 => unsafe { run_avx512(kernel) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Isa` of this level is only made by `Isa::detect`
        // after checking at run time that the processor has AVX2 and FMA,
        // all that `run_avx2` requires.
        Level::Avx2 => unsafe { run_avx2(kernel) },
        _ => kernel.run::<false, 32>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn run_avx512<K: Kernel>(kernel: K) -> K::Out {
    kernel.run::<true, 64>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<K: Kernel>(kernel: K) -> K::Out {
    kernel.run::<true, 32>()
}

/// Asks the processor to bring the cache line holding `p` towards the
/// core (a hint: nothing is read, and no address faults).
#[allow(unsafe_code)]
#[inline(always)]
pub(super) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: the intrinsic's one requirement is SSE, part of every
        // x86-64 processor; PREFETCHT0 reads nothing architecturally and
        // does not fault, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The engine's per-contract data the kernel reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Table<'a> {
    /// `stride` weighted losses per contract, padded with zeros.
    pub rows: &'a [f64],
    /// Entries per row: a multiple of 8, and of 32 above 16.
    pub stride: usize,
    /// Per contract, two entries: `[delta_notional, long_minimum]` and
    /// `[delta_notional, -short_minimum]` (quote currency per contract).
    pub meta: &'a [[f64; 2]],
}

/// A group's net delta notional and option minimum, summed in slot order
/// (`delta += q x delta_notional`, `minimum += q x (q < 0 ? -short :
/// long)`, unfused: the same bits as `slot_minimum`, `(-q) x short`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct MetaSums {
    pub delta: f64,
    pub minimum: f64,
}

/// Eight scenarios' lanes: one zmm register, or two ymm.
type Lane8 = [f64; 8];

/// The lanes of one pass: up to 64 scenarios, `N / 8` of these in use.
type Lanes = [Lane8; 8];

/// One pass over the leading slots on `slots[0]`'s underlying (the
/// group) for the `N` scenarios from `off` (`N` a multiple of 8, at most
/// 64): lane `i` is `sum over the group of quantity x row[off + i]` in
/// slot order; with `META` the slots' aggregates are summed into `sums`
/// in the same loop. Also returns the group's length.
#[inline(always)]
fn pass<const FMA: bool, const META: bool, const N: usize>(
    table: &Table<'_>,
    off: usize,
    slots: &[Slot],
    sums: &mut MetaSums,
) -> (Lanes, usize) {
    let underlying = slots.first().map_or(0, |s| s.underlying);
    let same = |s: &Slot| s.underlying == underlying;
    if N > 0 && table.stride.is_multiple_of(N) && off.is_multiple_of(N) {
        // Whole blocks: one bounds check per slot.
        let (blocks, _) = table.rows.as_chunks::<N>();
        let per_row = table.stride / N;
        let at = off / N;
        pass_while::<FMA, META, N>(table.meta, slots, same, sums, |k| {
            blocks.get(k * per_row + at)
        })
    } else {
        pass_while::<FMA, META, N>(table.meta, slots, same, sums, |k| {
            table
                .rows
                .get(k * table.stride + off..)
                .and_then(<[f64]>::first_chunk::<N>)
        })
    }
}

/// `a = q x r + a`, lane by lane (fused with `FMA`).
#[inline(always)]
fn fma8<const FMA: bool>(a: &mut Lane8, r: &Lane8, q: f64) {
    for (a, r) in a.iter_mut().zip(r) {
        *a = if FMA { q.mul_add(*r, *a) } else { *a + q * r };
    }
}

/// One pass over the leading slots that satisfy `take`; also returns how
/// many those were.
#[inline(always)]
fn pass_while<'a, const FMA: bool, const META: bool, const N: usize>(
    meta: &[[f64; 2]],
    slots: &[Slot],
    take: impl Fn(&Slot) -> bool,
    sums: &mut MetaSums,
    row: impl Fn(usize) -> Option<&'a [f64; N]>,
) -> (Lanes, usize) {
    const { assert!(N.is_multiple_of(8) && N <= 64) };
    // Eight groups of eight lanes, written out (not a loop) so that they
    // stay in registers across the slots.
    let mut acc: Lanes = [[0.0; 8]; 8];
    let mut taken = 0;
    for s in slots {
        if !take(s) {
            break;
        }
        taken += 1;
        let k = s.row as usize;
        let q = s.quantity;
        if META && let Some(m) = meta.get(2 * k + usize::from(q < 0.0)) {
            sums.delta += q * m[0];
            sums.minimum += q * m[1];
        }
        let Some(row) = row(k) else {
            continue;
        };
        let (r, _) = row.as_chunks::<8>();
        macro_rules! lanes {
            ($($i:literal)*) => {$(
                if $i < N / 8 && let (Some(a), Some(r)) = (acc.get_mut($i), r.get($i)) {
                    fma8::<FMA>(a, r, q);
                }
            )*};
        }
        lanes!(0 1 2 3 4 5 6 7);
    }
    (acc, taken)
}

/// Where the passes' lanes go. (A trait, not a closure: a closure is a
/// function of its own, compiled without the caller's target features
/// unless inlined.)
trait Sink {
    /// Receives the first `N / 8` groups of `lanes`, the scenarios from
    /// `off`.
    fn take<const N: usize>(&mut self, off: usize, lanes: &Lanes);
}

/// Keeps the largest lane (see [`max_into`]).
struct MaxSink(f64);

impl Sink for MaxSink {
    #[inline(always)]
    fn take<const N: usize>(&mut self, _: usize, lanes: &Lanes) {
        self.0 = max_into::<N>(self.0, lanes);
    }
}

/// Stores the lanes.
struct StoreSink<'a>(&'a mut [f64]);

impl Sink for StoreSink<'_> {
    #[inline(always)]
    fn take<const N: usize>(&mut self, off: usize, lanes: &Lanes) {
        if let Some(dst) = self.0.get_mut(off..off + N) {
            for (d, l) in dst.as_chunks_mut::<8>().0.iter_mut().zip(lanes) {
                *d = *l;
            }
        }
    }
}

/// Every pass over a row for the leading group of `slots` (the slots on
/// `slots[0]`'s underlying), widest first (`N`, then 32, 16, 8 for the
/// rest); `out` receives each. The aggregates are summed, and the group's
/// length found, in the first pass; the others run over the group only.
#[inline(always)]
fn passes<const FMA: bool, const N: usize>(
    table: &Table<'_>,
    slots: &[Slot],
    out: &mut impl Sink,
) -> (MetaSums, usize) {
    let mut sums = MetaSums {
        delta: 0.0,
        minimum: 0.0,
    };
    let mut group = slots;
    let mut off = 0;
    macro_rules! go {
        ($w:expr) => {{
            if off == 0 {
                let (lanes, len) = pass::<FMA, true, { $w }>(table, off, group, &mut sums);
                group = group.get(..len).unwrap_or(group);
                out.take::<{ $w }>(off, &lanes);
            } else {
                let (lanes, _) = pass::<FMA, false, { $w }>(table, off, group, &mut sums);
                out.take::<{ $w }>(off, &lanes);
            }
            off += $w;
        }};
    }
    while off < table.stride {
        let rest = table.stride - off;
        if rest >= N {
            go!(N);
        } else if rest >= 32 {
            go!(32);
        } else if rest >= 16 {
            go!(16);
        } else if rest >= 8 {
            go!(8);
        } else {
            break;
        }
    }
    if off == 0 {
        // No row entries at all: the aggregates still count.
        let (_, len) = pass::<FMA, true, 0>(table, 0, group, &mut sums);
        group = group.get(..len).unwrap_or(group);
    }
    (sums, group.len())
}

/// The largest of `scan` (at least 0) and the first `N` lanes: lane-wise
/// maxima of the groups of eight (vector maxima), then folded.
///
/// `f64::max`, not `if x > m`: LLVM vectorises the former across the
/// groups (8 `vmaxpd` for 64 lanes) but turned the latter into 64 scalar
/// extracts and compares, a quarter of an account's instructions.
///
/// `f64::max` skips a NaN lane (an overflowed loss, `inf - inf`), so the
/// lanes are also summed times zero: `+0.0` or `-0.0` for finite lanes,
/// NaN as soon as one is NaN or infinite. Any such lane sends the group to
/// [`exact_max`], which takes the lanes again one by one, so that the scan
/// an overflowed account reports is the breakdown's (`+inf`, or NaN, as
/// [`super::worst_of`] finds them). The lanes go to it by value: by
/// reference, LLVM stored all eight registers to the stack after every
/// group, ahead of the (cold) branch.
///
/// Both folds across the eight lanes are done on the bits, as integers,
/// which LLVM may reassociate into a tree (floating-point folds stay a
/// chain of eight dependent steps: 17% of the kernel's profile samples,
/// and the group's whole epilogue 27.5% before, 20% after): the
/// poison test is an OR of the bits without the sign, and the maximum of
/// numbers that are all at least `scan >= 0` is the largest bit pattern
/// read as a signed integer (a `-0.0` lane reads as negative, so a maximum
/// of zeros comes out `+0.0`).
#[inline(always)]
fn max_into<const N: usize>(scan: f64, lanes: &Lanes) -> f64 {
    let mut m: Lane8 = [scan; 8];
    // `scan` may carry an earlier pass's NaN: poisoned too.
    let mut poison: Lane8 = [scan * 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    for l in lanes.iter().take(N / 8) {
        m = std::array::from_fn(|i| l[i].max(m[i]));
        poison = std::array::from_fn(|i| poison[i] + l[i] * 0.0);
    }
    if poison.iter().fold(0u64, |a, p| a | (p.to_bits() << 1)) != 0 {
        return exact_max::<N>(scan, *lanes);
    }
    let max = m.iter().fold(0i64, |a, x| a.max(x.to_bits() as i64));
    f64::from_bits(max as u64)
}

/// `scan` then the first `N` lanes in scenario order, as
/// [`super::worst_of`] reads a row: the first NaN, or else the largest
/// (`-inf` lanes lose every comparison). Only for accounts whose losses
/// overflowed.
#[cold]
#[inline(never)]
fn exact_max<const N: usize>(scan: f64, lanes: Lanes) -> f64 {
    let mut best = scan;
    if best.is_nan() {
        return best;
    }
    for &x in lanes.iter().take(N / 8).flatten() {
        if x > best {
            best = x;
        } else if x.is_nan() {
            return x;
        }
    }
    best
}

/// Every group's scan risk (the largest accumulated loss, floored at 0)
/// and aggregates, in one sweep over an account's slots without storing
/// the losses: `group(underlying, scan, sums)` for each run of slots on
/// one underlying, in order (group boundaries found by the first pass).
#[inline(always)]
pub(super) fn scan_groups<const FMA: bool, const N: usize>(
    table: &Table<'_>,
    slots: &[Slot],
    mut group: impl FnMut(u32, f64, MetaSums),
) {
    let mut rest = slots;
    if table.stride == N {
        // One pass per group (the common case, written out: the general
        // loop below compiles to slower code for it).
        let (blocks, _) = table.rows.as_chunks::<N>();
        while let Some(first) = rest.first() {
            let underlying = first.underlying;
            let mut sums = MetaSums {
                delta: 0.0,
                minimum: 0.0,
            };
            let (acc, len) = pass_while::<FMA, true, N>(
                table.meta,
                rest,
                |s| s.underlying == underlying,
                &mut sums,
                |k| blocks.get(k),
            );
            group(underlying, max_into::<N>(0.0, &acc), sums);
            rest = rest.get(len.max(1)..).unwrap_or(&[]);
        }
        return;
    }
    while let Some(first) = rest.first() {
        let underlying = first.underlying;
        let mut scan = MaxSink(0.0);
        let (sums, len) = passes::<FMA, N>(table, rest, &mut scan);
        group(underlying, scan.0, sums);
        rest = rest.get(len.max(1)..).unwrap_or(&[]);
    }
}

/// The accumulated losses into `acc` (`stride` entries) and aggregates of
/// the leading group of `slots` (all of them when they are one group).
#[inline(always)]
pub(super) fn losses<const FMA: bool, const N: usize>(
    table: &Table<'_>,
    slots: &[Slot],
    acc: &mut [f64],
) -> MetaSums {
    passes::<FMA, N>(table, slots, &mut StoreSink(acc)).0
}

/// [`losses`] as a [`Kernel`].
pub(super) struct Losses<'a, 'b> {
    pub table: Table<'a>,
    pub slots: &'b [Slot],
    pub acc: &'b mut [f64],
}

impl Kernel for Losses<'_, '_> {
    type Out = MetaSums;
    #[inline(always)]
    fn run<const FMA: bool, const N: usize>(self) -> MetaSums {
        losses::<FMA, N>(&self.table, self.slots, self.acc)
    }
}

#[cfg(test)]
impl Isa {
    /// The detected level and every narrower one (each runs wherever the
    /// detected one does).
    fn all() -> Vec<Isa> {
        let widest = Isa::detect();
        [Level::Baseline, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|&l| l as u8 <= widest.0 as u8)
            .map(Isa)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_loss_is_the_maximum_not_skipped() {
        let mut lanes: Lanes = [[0.0; 8]; 8];
        lanes[0][3] = 5.0;
        assert_eq!(max_into::<64>(0.0, &lanes), 5.0);
        lanes[7][1] = f64::NAN;
        assert!(max_into::<64>(0.0, &lanes).is_nan());
        assert!(max_into::<64>(f64::NAN, &[[1.0; 8]; 8]).is_nan());
        // An infinite loss is the maximum, as the breakdown reports it; a
        // -inf lane (an overflowed gain) loses every comparison.
        lanes = [[1.0; 8]; 8];
        lanes[4][2] = f64::INFINITY;
        lanes[6][0] = f64::NEG_INFINITY;
        assert_eq!(max_into::<64>(0.0, &lanes), f64::INFINITY);
        lanes[4][2] = 2.0;
        assert_eq!(max_into::<64>(0.0, &lanes), 2.0);
        // A maximum of negative zeros is +0.0, whatever the comparisons.
        let zero = max_into::<64>(-0.0, &[[-0.0; 8]; 8]);
        assert_eq!(zero.to_bits(), 0.0f64.to_bits());
        lanes = [[-1.0; 8]; 8];
        lanes[2][5] = f64::NAN;
        lanes[3][0] = f64::INFINITY;
        assert!(max_into::<64>(0.0, &lanes).is_nan());
    }

    #[test]
    fn the_maximum_of_finite_lanes_is_the_plain_maximum() {
        // Lanes of both signs, zeros of both signs, and an earlier pass's
        // scan of 0 or more: the bitwise fold gives the plain maximum
        // (with a maximum of zeros as +0.0).
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..2_000 {
            let mut lanes: Lanes = [[0.0; 8]; 8];
            for x in lanes.iter_mut().flatten() {
                let r = next();
                *x = match r % 5 {
                    0 => -0.0,
                    1 => 0.0,
                    2 => -((r >> 11) as f64) * 1e-3,
                    _ => ((r >> 11) as f64 - (1u64 << 52) as f64) * 1e-9,
                };
            }
            let scan = if case % 3 == 0 {
                0.0
            } else {
                (next() >> 40) as f64
            };
            for (n, got) in [
                (64, max_into::<64>(scan, &lanes)),
                (32, max_into::<32>(scan, &lanes)),
                (8, max_into::<8>(scan, &lanes)),
            ] {
                let want = lanes
                    .iter()
                    .flatten()
                    .take(n)
                    .fold(scan, |a, &x| if x > a { x } else { a });
                let want = if want == 0.0 { 0.0 } else { want };
                assert_eq!(got.to_bits(), want.to_bits(), "case {case}, {n} lanes");
            }
        }
    }

    struct Scan<'a> {
        table: Table<'a>,
        slots: &'a [Slot],
    }

    impl Kernel for Scan<'_> {
        type Out = Vec<(u32, f64, MetaSums)>;
        fn run<const FMA: bool, const N: usize>(self) -> Self::Out {
            let mut out = Vec::new();
            scan_groups::<FMA, N>(&self.table, self.slots, |u, scan, sums| {
                out.push((u, scan, sums));
            });
            out
        }
    }

    #[test]
    fn every_copy_sums_lane_by_lane_in_slot_order() {
        let rows_n = 5;
        for stride in [8, 16, 32, 64, 96, 128, 160] {
            let rows: Vec<f64> = (0..rows_n * stride)
                .map(|i| (i as f64 * 0.37).sin() * 1e3)
                .collect();
            let meta: Vec<RowMeta> = (0..rows_n)
                .map(|k| RowMeta {
                    delta_notional: 0.3 + k as f64 * 1.7,
                    short_minimum: 10.0 + k as f64,
                    long_minimum: 0.5 * k as f64,
                })
                .collect();
            let signed: Vec<[f64; 2]> = meta
                .iter()
                .flat_map(|m| {
                    [
                        [m.delta_notional, m.long_minimum],
                        [m.delta_notional, -m.short_minimum],
                    ]
                })
                .collect();
            let table = Table {
                rows: &rows,
                stride,
                meta: &signed,
            };
            let slots: Vec<Slot> = [(0, 1.5), (2, -3.25), (3, 0.1), (4, -7.0), (1, 2.0)]
                .iter()
                .map(|&(row, quantity)| Slot {
                    row,
                    underlying: 0,
                    quantity,
                })
                .collect();
            let mut delta = 0.0;
            let mut minimum = 0.0;
            for s in &slots {
                let m = &meta[s.row as usize];
                delta += s.quantity * m.delta_notional;
                minimum += slot_minimum(m, s.quantity);
            }
            for isa in Isa::all() {
                let fma = isa.0 != Level::Baseline;
                let mut acc = vec![f64::NAN; stride];
                let sums = dispatch(
                    isa,
                    Losses {
                        table,
                        slots: &slots,
                        acc: &mut acc,
                    },
                );
                assert_eq!(sums, MetaSums { delta, minimum });
                for (i, &got) in acc.iter().enumerate() {
                    let want = slots.iter().fold(0.0f64, |a, s| {
                        let r = rows[s.row as usize * stride + i];
                        if fma {
                            s.quantity.mul_add(r, a)
                        } else {
                            a + s.quantity * r
                        }
                    });
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{isa:?} stride {stride} lane {i}"
                    );
                }
                let max = acc.iter().fold(0.0f64, |m, &x| if x > m { x } else { m });
                let groups = dispatch(
                    isa,
                    Scan {
                        table,
                        slots: &slots,
                    },
                );
                assert_eq!(groups.len(), 1);
                let (_, scan, sums) = groups[0];
                assert_eq!(scan.to_bits(), max.to_bits(), "{isa:?} stride {stride}");
                assert!(max > 0.0);
                assert_eq!(sums, MetaSums { delta, minimum });
                // Split into two groups: each as if alone.
                let mut split = slots.clone();
                for s in &mut split[2..] {
                    s.underlying = 1;
                }
                let groups = dispatch(
                    isa,
                    Scan {
                        table,
                        slots: &split,
                    },
                );
                assert_eq!(groups.len(), 2);
                for (g, part) in groups.iter().zip([&split[..2], &split[2..]]) {
                    let mut acc = vec![0.0; stride];
                    let sums = dispatch(
                        isa,
                        Losses {
                            table,
                            slots: part,
                            acc: &mut acc,
                        },
                    );
                    let max = acc.iter().fold(0.0f64, |m, &x| if x > m { x } else { m });
                    assert_eq!(g.0, part[0].underlying);
                    assert_eq!(g.1.to_bits(), max.to_bits());
                    assert_eq!(g.2, sums);
                }
            }
        }
    }

    #[test]
    fn a_row_beyond_the_table_adds_nothing() {
        let rows = vec![1.0; 16];
        let table = Table {
            rows: &rows,
            stride: 16,
            meta: &[],
        };
        let slots = [Slot {
            row: 7,
            underlying: 0,
            quantity: 2.0,
        }];
        for isa in Isa::all() {
            let mut acc = vec![f64::NAN; 16];
            let sums = dispatch(
                isa,
                Losses {
                    table,
                    slots: &slots,
                    acc: &mut acc,
                },
            );
            assert!(acc.iter().all(|&x| x == 0.0));
            assert_eq!(sums.delta, 0.0);
        }
    }
}
