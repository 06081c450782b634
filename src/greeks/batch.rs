//! Batch pricing and Greeks: many options in one call, the hot path of every
//! later stage.
//!
//! Inputs are a structure of arrays ([`OptionBatch`]), validated once when
//! each option is pushed. The kernel is straight-line arithmetic with no
//! allocation, no calls and no branches per option, so the compiler
//! vectorises it; on x86-64 copies compiled for AVX2 with FMA and for
//! AVX-512 with FMA are chosen at run time when the processor has them.
//! Those two copies do the same operations per lane (bit-identical
//! results); the baseline copy, without fused multiply-add, differs in the
//! last bits. On one machine the same copy always runs, so results are
//! bit-identical, with the `rayon` feature, whatever the number of threads.
//!
//! The normal CDF is one rational in `|d|` on the whole line
//! ([`crate::math::normal`]'s `norm_tail_scaled_parts`), evaluated at `d1`
//! and `d2` together with one division. Full revaluation has its own value
//! kernel for one option under many scenarios (`scenario_values`), which
//! takes everything that does not depend on the scenario out of the loop.
//!
//! Out-of-the-money prices that would lose more than six bits to
//! cancellation are recomputed through the normalised Black function (and
//! an option with a non-finite output by the scalar kernel
//! [`crate::black_scholes`]) in a second pass, so every value keeps a
//! relative error below 1e-13 (Greeks: a few ulp of the scalar kernel's).
//! The second pass runs block by block, right after the vector pass over
//! the block, while its inputs and outputs are still in cache.
//!
//! A batch larger than the cache streams from main memory: the kernel
//! reads its seven input columns in one loop and writes its six output
//! columns in one loop, cache line by cache line, so that every stream
//! advances together and the hardware prefetchers keep up (see
//! `staged_kernel`).

use crate::error::{Error, Result};
use crate::greeks::Greeks;
use crate::instrument::{OptionKind, OptionModel};
use crate::math::fast;
use crate::pricing::{BsInputs, black_scholes};
#[cfg(feature = "rayon")]
use rayon::prelude::*;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Options per parallel work item; also the unit of the run-time SIMD
/// dispatch and of the second pass (4096 options: 416 KiB of inputs and
/// outputs, within a core's L2 cache when the pass over them starts).
const BLOCK: usize = 4096;
/// Below this many options the batch runs on the calling thread.
#[cfg(feature = "rayon")]
const PARALLEL_THRESHOLD: usize = 4 * BLOCK;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Many options' validated inputs, stored column by column.
///
/// ```
/// use portfolio_margin::{BsInputs, GreeksBatch, OptionBatch, OptionKind, OptionModel, black_scholes};
/// let one = BsInputs::new(OptionKind::Put, OptionModel::BlackScholesMerton, 100.0, 95.0, 0.5, 0.2, 0.1, 0.05)?;
/// let mut batch = OptionBatch::new();
/// batch.push(&one);
/// let mut out = GreeksBatch::default();
/// batch.greeks(&mut out)?;
/// assert!((out.value[0] - black_scholes(&one).value).abs() < 1e-14);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptionBatch {
    /// `+-1` for call/put, `+-2` for a Black-76 call/put.
    code: Vec<f64>,
    underlying: Vec<f64>,
    strike: Vec<f64>,
    years: Vec<f64>,
    vol: Vec<f64>,
    rate: Vec<f64>,
    /// Cost of carry `b` (0 for Black-76).
    carry: Vec<f64>,
}

/// Value and first-order Greeks (plus gamma) of every option in a batch, in
/// the units of [`crate::Greeks`]: `vega` per 1.00 vol, `theta` per year,
/// `rho` per 1.00 rate.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct GreeksBatch {
    /// Values.
    pub value: Vec<f64>,
    /// Deltas.
    pub delta: Vec<f64>,
    /// Gammas.
    pub gamma: Vec<f64>,
    /// Vegas (per 1.00 vol).
    pub vega: Vec<f64>,
    /// Thetas (per year).
    pub theta: Vec<f64>,
    /// Rhos (per 1.00 rate).
    pub rho: Vec<f64>,
}

impl GreeksBatch {
    /// Sizes every column to `n`; the kernel overwrites every entry, so
    /// columns already of that length are left as they are.
    fn resize(&mut self, n: usize) {
        for v in [
            &mut self.value,
            &mut self.delta,
            &mut self.gamma,
            &mut self.vega,
            &mut self.theta,
            &mut self.rho,
        ] {
            if v.len() != n {
                v.clear();
                v.resize(n, 0.0);
            }
        }
    }
}

impl OptionBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `n` options.
    pub fn with_capacity(n: usize) -> Self {
        OptionBatch {
            code: Vec::with_capacity(n),
            underlying: Vec::with_capacity(n),
            strike: Vec::with_capacity(n),
            years: Vec::with_capacity(n),
            vol: Vec::with_capacity(n),
            rate: Vec::with_capacity(n),
            carry: Vec::with_capacity(n),
        }
    }

    /// Appends one option (already validated by [`BsInputs::new`]).
    pub fn push(&mut self, inputs: &BsInputs) {
        let model = match inputs.model() {
            OptionModel::BlackScholesMerton => 1.0,
            OptionModel::Black76 => 2.0,
        };
        self.code.push(inputs.kind().sign() * model);
        self.underlying.push(inputs.underlying());
        self.strike.push(inputs.strike());
        self.years.push(inputs.years());
        self.vol.push(inputs.vol());
        self.rate.push(inputs.rate());
        self.carry.push(inputs.cost_of_carry());
    }

    /// Appends an option with the contract terms (kind, model, strike, time
    /// to expiry) of `terms` and the given market numbers, without
    /// re-validating them: the caller guarantees they pass [`BsInputs::new`]
    /// (revaluation checks shocked inputs with cheaper tests).
    pub(crate) fn push_shocked(
        &mut self,
        terms: &BsInputs,
        underlying: f64,
        vol: f64,
        rate: f64,
        carry_yield: f64,
    ) {
        let (model, carry) = match terms.model() {
            OptionModel::BlackScholesMerton => (1.0, rate - carry_yield),
            OptionModel::Black76 => (2.0, 0.0),
        };
        self.code.push(terms.kind().sign() * model);
        self.underlying.push(underlying);
        self.strike.push(terms.strike());
        self.years.push(terms.years());
        self.vol.push(vol);
        self.rate.push(rate);
        self.carry.push(carry);
    }

    /// Appends one option per element of the slices (up to the shortest),
    /// all with the contract terms of `terms`: the column-wise form of
    /// [`OptionBatch::push_shocked`], under the same guarantee.
    pub(crate) fn extend_shocked(
        &mut self,
        terms: &BsInputs,
        underlying: &[f64],
        vol: &[f64],
        rate: &[f64],
        carry_yield: &[f64],
    ) {
        let n = underlying
            .len()
            .min(vol.len())
            .min(rate.len())
            .min(carry_yield.len());
        let (underlying, vol, rate, carry_yield) =
            (&underlying[..n], &vol[..n], &rate[..n], &carry_yield[..n]);
        let model = match terms.model() {
            OptionModel::BlackScholesMerton => 1.0,
            OptionModel::Black76 => 2.0,
        };
        self.code
            .extend(std::iter::repeat_n(terms.kind().sign() * model, n));
        self.underlying.extend_from_slice(underlying);
        self.strike.extend(std::iter::repeat_n(terms.strike(), n));
        self.years.extend(std::iter::repeat_n(terms.years(), n));
        self.vol.extend_from_slice(vol);
        self.rate.extend_from_slice(rate);
        match terms.model() {
            OptionModel::BlackScholesMerton => self
                .carry
                .extend(rate.iter().zip(carry_yield).map(|(r, q)| r - q)),
            OptionModel::Black76 => self.carry.extend(std::iter::repeat_n(0.0, n)),
        }
    }

    /// Number of options.
    pub fn len(&self) -> usize {
        self.code.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }

    /// The inputs of option `i`, if it exists.
    pub fn get(&self, i: usize) -> Option<BsInputs> {
        let code = *self.code.get(i)?;
        let kind = if code > 0.0 {
            OptionKind::Call
        } else {
            OptionKind::Put
        };
        let model = if code.abs() > 1.5 {
            OptionModel::Black76
        } else {
            OptionModel::BlackScholesMerton
        };
        // The carry yield is recovered from b = r - q for BSM; Black-76 ignores it.
        let carry_yield = match model {
            OptionModel::BlackScholesMerton => self.rate[i] - self.carry[i],
            OptionModel::Black76 => 0.0,
        };
        BsInputs::new(
            kind,
            model,
            self.underlying[i],
            self.strike[i],
            self.years[i],
            self.vol[i],
            self.rate[i],
            carry_yield,
        )
        .ok()
    }

    /// Value and Greeks of every option into `out` (resized to fit; reuse it
    /// across calls to avoid allocation).
    ///
    /// # Errors
    /// [`Error::NonFiniteResult`] if any output is not finite (not expected
    /// for inputs inside [`BsInputs`]' domain; checked all the same).
    pub fn greeks(&self, out: &mut GreeksBatch) -> Result<()> {
        out.resize(self.len());
        let GreeksBatch {
            value,
            delta,
            gamma,
            vega,
            theta,
            rho,
        } = out;
        let blocks = value
            .chunks_mut(BLOCK)
            .zip(delta.chunks_mut(BLOCK))
            .zip(gamma.chunks_mut(BLOCK))
            .zip(vega.chunks_mut(BLOCK))
            .zip(theta.chunks_mut(BLOCK))
            .zip(rho.chunks_mut(BLOCK))
            .map(|(((((value, delta), gamma), vega), theta), rho)| OutBlock {
                value,
                delta,
                gamma,
                vega,
                theta,
                rho,
            });
        #[cfg(feature = "rayon")]
        if self.parallel() {
            // Split the output columns into per-block views first, then
            // hand whole blocks to the pool.
            let mut blocks: Vec<OutBlock<'_>> = blocks.collect();
            let per_task = blocks_per_task(blocks.len());
            return blocks
                .par_chunks_mut(per_task)
                .enumerate()
                .map(|(task, blocks)| {
                    blocks.iter_mut().enumerate().try_for_each(|(j, block)| {
                        self.block_greeks((task * per_task + j) * BLOCK, block)
                    })
                })
                // `and` keeps the first error in option order, as the
                // serial loop does.
                .reduce(|| Ok(()), Result::and);
        }
        blocks
            .enumerate()
            .try_for_each(|(b, mut block)| self.block_greeks(b * BLOCK, &mut block))
    }

    /// Values only (no Greeks) of every option into `out`, resized to fit.
    /// The same kernel and accuracy as [`OptionBatch::greeks`], at a fraction
    /// of the cost: this is what full revaluation under scenarios calls.
    ///
    /// # Errors
    /// [`Error::NonFiniteResult`] as for [`OptionBatch::greeks`].
    pub fn values(&self, out: &mut Vec<f64>) -> Result<()> {
        let n = self.len();
        if out.len() != n {
            out.clear();
            out.resize(n, 0.0);
        }
        #[cfg(feature = "rayon")]
        if self.parallel() {
            let per_task = BLOCK * blocks_per_task(n.div_ceil(BLOCK));
            return out
                .par_chunks_mut(per_task)
                .enumerate()
                .map(|(task, values)| {
                    values
                        .chunks_mut(BLOCK)
                        .enumerate()
                        .try_for_each(|(j, v)| self.block_values(task * per_task + j * BLOCK, v))
                })
                .reduce(|| Ok(()), Result::and);
        }
        out.chunks_mut(BLOCK)
            .enumerate()
            .try_for_each(|(b, v)| self.block_values(b * BLOCK, v))
    }

    /// True if the batch is large enough to split over a pool of more than
    /// one thread (a pool of one runs the serial loop: same results, no
    /// task overhead).
    #[cfg(feature = "rayon")]
    fn parallel(&self) -> bool {
        self.len() >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1
    }

    /// The vector pass over the block of options `lo..lo + out.value.len()`,
    /// then its second pass, while the block's inputs and outputs are still
    /// in cache.
    fn block_greeks(&self, lo: usize, out: &mut OutBlock<'_>) -> Result<()> {
        let hi = lo + out.value.len();
        if dispatch::<true>(&self.columns(lo, hi), out) {
            self.fix_up(lo, out)
        } else {
            Ok(())
        }
    }

    /// [`OptionBatch::block_greeks`] for values only.
    fn block_values(&self, lo: usize, value: &mut [f64]) -> Result<()> {
        let hi = lo + value.len();
        let mut block = OutBlock {
            value,
            delta: &mut [],
            gamma: &mut [],
            vega: &mut [],
            theta: &mut [],
            rho: &mut [],
        };
        if !dispatch::<false>(&self.columns(lo, hi), &mut block) {
            return Ok(());
        }
        for j in marked(block.value) {
            let v = self.accurate_value(lo + j);
            if !v.is_finite() {
                return Err(Error::NonFiniteResult {
                    what: "batch value",
                    value: v,
                });
            }
            block.value[j] = v;
        }
        Ok(())
    }

    /// The second pass over the block of options starting at `lo`:
    /// recomputes, with the scalar kernel, the options the vector pass
    /// marked (NaN value): out-of-the-money prices whose direct formula
    /// cancels, or any non-finite output.
    fn fix_up(&self, lo: usize, out: &mut OutBlock<'_>) -> Result<()> {
        for j in marked(out.value) {
            let i = lo + j;
            let vector_greeks = [
                out.delta[j],
                out.gamma[j],
                out.vega[j],
                out.theta[j],
                out.rho[j],
            ];
            if vector_greeks.iter().all(|g| g.is_finite()) {
                // Only the price cancelled: the Greeks of the vector pass
                // are the scalar kernel's formulas, the price is redone.
                let value = self.accurate_value(i);
                if !value.is_finite() {
                    return Err(Error::NonFiniteResult {
                        what: "batch value",
                        value,
                    });
                }
                out.value[j] = value;
                if self.code[i].abs() > 1.5 {
                    // Black-76 rho is -T V.
                    out.rho[j] = -self.years[i] * value;
                }
                continue;
            }
            let g = self
                .get(i)
                .map(|inputs| black_scholes(&inputs))
                .unwrap_or(Greeks {
                    value: f64::NAN,
                    ..Greeks::default()
                });
            let fields = [g.value, g.delta, g.gamma, g.vega, g.theta, g.rho];
            if let Some(bad) = fields.iter().find(|x| !x.is_finite()) {
                return Err(Error::NonFiniteResult {
                    what: "batch greeks",
                    value: *bad,
                });
            }
            out.value[j] = g.value;
            out.delta[j] = g.delta;
            out.gamma[j] = g.gamma;
            out.vega[j] = g.vega;
            out.theta[j] = g.theta;
            out.rho[j] = g.rho;
        }
        Ok(())
    }

    /// The discounted price of option `i` through the normalised Black
    /// function, which keeps relative accuracy where `F N(d1) - K N(d2)`
    /// cancels (the same path the scalar kernel takes there).
    fn accurate_value(&self, i: usize) -> f64 {
        let kind = if self.code[i] > 0.0 {
            OptionKind::Call
        } else {
            OptionKind::Put
        };
        let t = self.years[i];
        let forward = self.underlying[i] * (self.carry[i] * t).exp();
        let sd = (self.vol[i] * t.sqrt()).max(f64::MIN_POSITIVE);
        crate::pricing::black_price(forward, self.strike[i], sd, kind) * (-self.rate[i] * t).exp()
    }

    /// Options `lo..hi`, column by column.
    fn columns(&self, lo: usize, hi: usize) -> Columns<'_> {
        Columns {
            code: &self.code,
            underlying: &self.underlying,
            strike: &self.strike,
            years: &self.years,
            vol: &self.vol,
            rate: &self.rate,
            carry: &self.carry,
        }
        .slice(lo, hi)
    }
}

/// Indices of the NaN entries of `values` (what the vector pass marked for
/// the second pass), in order. Blocks of 16 are tested without a branch
/// per entry; only marked blocks (about 1% of options) are searched.
fn marked(values: &[f64]) -> Vec<usize> {
    const CHUNK: usize = 16;
    let mut found = Vec::new();
    for (c, chunk) in values.chunks(CHUNK).enumerate() {
        if chunk.iter().fold(false, |any, v| any | v.is_nan()) {
            found.extend(
                chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_nan())
                    .map(|(j, _)| c * CHUNK + j),
            );
        }
    }
    found
}

/// Blocks per rayon task: a few large tasks per thread, since the pool's
/// per-task overhead is far above the cost of a block on small virtual
/// machines.
#[cfg(feature = "rayon")]
fn blocks_per_task(blocks: usize) -> usize {
    blocks.div_ceil(4 * rayon::current_num_threads()).max(1)
}

struct Columns<'a> {
    code: &'a [f64],
    underlying: &'a [f64],
    strike: &'a [f64],
    years: &'a [f64],
    vol: &'a [f64],
    rate: &'a [f64],
    carry: &'a [f64],
}

impl<'a> Columns<'a> {
    fn slice(&self, lo: usize, hi: usize) -> Columns<'a> {
        Columns {
            code: &self.code[lo..hi],
            underlying: &self.underlying[lo..hi],
            strike: &self.strike[lo..hi],
            years: &self.years[lo..hi],
            vol: &self.vol[lo..hi],
            rate: &self.rate[lo..hi],
            carry: &self.carry[lo..hi],
        }
    }
}

struct OutBlock<'a> {
    value: &'a mut [f64],
    delta: &'a mut [f64],
    gamma: &'a mut [f64],
    vega: &'a mut [f64],
    theta: &'a mut [f64],
    rho: &'a mut [f64],
}

/// A kernel that [`dispatch_kernel`] compiles twice: `run::<true>` with
/// fused multiply-add (inside the AVX2 + FMA copy), `run::<false>` for the
/// baseline target. Implementations mark `run` `#[inline(always)]` so that
/// its body is compiled into each copy.
trait Kernel {
    /// Runs the kernel; true if some output must be redone or checked.
    fn run<const FMA: bool>(&mut self) -> bool;
}

/// The compiled copies of a [`Kernel`], narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Simd {
    /// The baseline target (SSE2 on x86-64), no fused multiply-add.
    Baseline,
    /// AVX2 and FMA.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// AVX-512 (F, VL, DQ) and FMA: the AVX2 copy's arithmetic, lane for
    /// lane, on wider vectors with twice the registers.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

/// The widest copy the processor can run.
fn widest_simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            return Simd::Avx512;
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// Runs `kernel` compiled for the widest SIMD the processor has.
fn dispatch_kernel<K: Kernel>(kernel: &mut K) -> bool {
    run_kernel(kernel, widest_simd())
}

/// Runs the copy of `kernel` for `simd`, or the widest narrower one the
/// processor has. The AVX2 and AVX-512 copies give the same bits (the same
/// operations per lane); the baseline copy, without fused multiply-add,
/// differs in the last bits.
#[allow(unsafe_code)]
fn run_kernel<K: Kernel>(kernel: &mut K, simd: Simd) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let widest = widest_simd();
        if simd >= Simd::Avx512 && widest >= Simd::Avx512 {
            // SAFETY: `run_avx512` only requires the AVX-512 (F, VL, DQ),
            // AVX2 and FMA instruction sets, whose presence was just
            // checked at run time.
            return unsafe { run_avx512(kernel) };
        }
        if simd >= Simd::Avx2 && widest >= Simd::Avx2 {
            // SAFETY: `run_avx2` only requires the AVX2 and FMA instruction
            // sets, whose presence was just checked at run time.
            return unsafe { run_avx2(kernel) };
        }
    }
    let _ = simd;
    kernel.run::<false>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
fn run_avx512<K: Kernel>(kernel: &mut K) -> bool {
    kernel.run::<true>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<K: Kernel>(kernel: &mut K) -> bool {
    kernel.run::<true>()
}

/// The staged kernel on one block of options.
struct BlockKernel<'a, 'b, 'c, const GREEKS: bool> {
    input: &'a Columns<'a>,
    out: &'b mut OutBlock<'c>,
    scratch: &'b mut Scratch,
}

impl<const GREEKS: bool> Kernel for BlockKernel<'_, '_, '_, GREEKS> {
    #[inline(always)]
    fn run<const FMA: bool>(&mut self) -> bool {
        if GREEKS {
            block_body::<FMA>(self.input, self.out, self.scratch)
        } else {
            values_body::<FMA>(self.input, self.out.value, self.scratch)
        }
    }
}

/// Runs the block kernel compiled for the widest SIMD the processor has;
/// true if some output of the block must be redone or checked.
/// `GREEKS = false` computes values only (the Greek slices of `out` may
/// then be empty).
fn dispatch<const GREEKS: bool>(input: &Columns<'_>, out: &mut OutBlock<'_>) -> bool {
    with_scratch(|scratch| {
        dispatch_kernel(&mut BlockKernel::<GREEKS> {
            input,
            out,
            scratch,
        })
    })
}

#[cfg(test)]
fn block_generic<const GREEKS: bool>(input: &Columns<'_>, out: &mut OutBlock<'_>) -> bool {
    block_with::<GREEKS>(input, out, Simd::Baseline)
}

/// [`dispatch`] through the copy for `simd` (or the widest narrower one).
#[cfg(test)]
fn block_with<const GREEKS: bool>(input: &Columns<'_>, out: &mut OutBlock<'_>, simd: Simd) -> bool {
    with_scratch(|scratch| {
        run_kernel(
            &mut BlockKernel::<GREEKS> {
                input,
                out,
                scratch,
            },
            simd,
        )
    })
}

thread_local! {
    /// Each thread's [`Scratch`], created on first use: zeroing 18 KiB per
    /// call would cost more than the kernel on a small batch.
    static SCRATCH: std::cell::RefCell<Option<Box<Scratch>>> =
        const { std::cell::RefCell::new(None) };
}

/// Calls `f` with this thread's [`Scratch`] (a fresh one if it is in use).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => f(slot.get_or_insert_with(|| Box::new(Scratch::new()))),
        Err(_) => f(&mut Scratch::new()),
    })
}

#[inline(always)]
fn values_body<const FMA: bool>(
    input: &Columns<'_>,
    value: &mut [f64],
    scratch: &mut Scratch,
) -> bool {
    let mut flagged = false;
    for (lo, hi) in sub_blocks(value) {
        let mut none: [&mut [f64]; 5] = [&mut [], &mut [], &mut [], &mut [], &mut []];
        flagged |= staged_kernel::<false, FMA>(
            &input.slice(lo, hi),
            &mut value[lo..hi],
            &mut none,
            scratch,
        );
    }
    flagged
}

#[inline(always)]
fn block_body<const FMA: bool>(
    input: &Columns<'_>,
    out: &mut OutBlock<'_>,
    scratch: &mut Scratch,
) -> bool {
    let mut flagged = false;
    for (lo, hi) in sub_blocks(out.value) {
        let mut greeks = [
            &mut out.delta[lo..hi],
            &mut out.gamma[lo..hi],
            &mut out.vega[lo..hi],
            &mut out.theta[lo..hi],
            &mut out.rho[lo..hi],
        ];
        flagged |= staged_kernel::<true, FMA>(
            &input.slice(lo, hi),
            &mut out.value[lo..hi],
            &mut greeks,
            scratch,
        );
    }
    flagged
}

/// The sub-blocks `(lo, hi)` of at most [`LANES`] options that
/// [`staged_kernel`] takes a block in. The first is shortened so that the
/// others start on a 64-byte cache line of the value column (and of every
/// column aligned alike, as columns of one size from one allocator are): no
/// output cache line is then written half by one sub-block and half by the
/// next, which costs a second trip to memory when the batch does not fit in
/// the cache (measured: about 10% of the time per option on a batch of
/// 1,000,000). The kernel works option by option, so where a sub-block
/// starts has no effect on the results.
#[inline(always)]
fn sub_blocks(value: &[f64]) -> impl Iterator<Item = (usize, usize)> + use<> {
    let n = value.len();
    // `align_offset` may decline (usize::MAX); only speed depends on it.
    let head = value.as_ptr().align_offset(64);
    let first = if head == 0 || head >= LANES {
        LANES
    } else {
        head
    };
    let mut lo = 0;
    std::iter::from_fn(move || {
        if lo >= n {
            return None;
        }
        let hi = (lo + if lo == 0 { first } else { LANES }).min(n);
        let range = (lo, hi);
        lo = hi;
        Some(range)
    })
}

/// The columns [`staged_kernel`] works in: local copies of the inputs and
/// intermediate results of one sub-block (the outputs go straight to the
/// caller's columns). One per thread
/// ([`with_scratch`]), reused by every sub-block, which overwrites the lanes
/// it uses before reading them (so results never depend on what a previous
/// call left). Aligned to a cache line, like every column in it.
#[repr(align(64))]
struct Scratch {
    code: [f64; LANES],
    s: [f64; LANES],
    k: [f64; LANES],
    t: [f64; LANES],
    vol: [f64; LANES],
    r: [f64; LANES],
    b: [f64; LANES],
    sqrt_t: [f64; LANES],
    moneyness: [f64; LANES],
    sd: [f64; LANES],
    d1: [f64; LANES],
    d2: [f64; LANES],
    growth: [f64; LANES],
    df: [f64; LANES],
    e1: [f64; LANES],
    e2: [f64; LANES],
    cdf1: [f64; LANES],
    cdf2: [f64; LANES],
}

impl Scratch {
    #[inline(always)]
    fn new() -> Self {
        const Z: [f64; LANES] = [0.0; LANES];
        Scratch {
            code: Z,
            s: Z,
            k: Z,
            t: Z,
            vol: Z,
            r: Z,
            b: Z,
            sqrt_t: Z,
            moneyness: Z,
            sd: Z,
            d1: Z,
            d2: Z,
            growth: Z,
            df: Z,
            e1: Z,
            e2: Z,
            cdf1: Z,
            cdf2: Z,
        }
    }
}

/// Options handled by one pass of [`staged_kernel`]: its scratch columns
/// (18 of them, 8 bytes x `LANES` each, 18 KiB) stay in the L1 cache with
/// room for the input and output lines in flight. 64 and 256 measured no
/// faster on a batch from main memory, and 256 is slower on a batch in
/// cache.
const LANES: usize = 128;

/// The kernel on up to [`LANES`] options, as a sequence of short loops
/// (copy of the inputs, logarithm, discount factors, Gaussian exponential,
/// the normal CDF at `d1` and `d2`, then the value and Greeks). Each loop
/// body is short, so the processor overlaps many iterations; one long body
/// would be bound by the latency of its polynomial chains. Writes
/// `[delta, gamma, vega, theta, rho]` into `greeks` when `GREEKS`. The
/// value is NaN where the second pass must redo the option; returns true if
/// there is any such option.
#[inline(always)]
fn staged_kernel<const GREEKS: bool, const FMA: bool>(
    input: &Columns<'_>,
    value: &mut [f64],
    greeks: &mut [&mut [f64]; 5],
    w: &mut Scratch,
) -> bool {
    let n = value.len();
    // Copy the inputs into local columns first, all seven in one loop. The
    // loops below read each input several times: from the caller's
    // columns, separate allocations often page aligned alike, they would
    // map to the same L1 sets and thrash the cache. One loop over all seven
    // streams (not one stream after another) keeps every stream moving at
    // once, the pattern the hardware prefetchers follow when the batch
    // comes from main memory: copied stream by stream, a batch too large
    // for the cache ran about 1.5 times slower.
    let inputs = (
        &input.code[..n],
        &input.underlying[..n],
        &input.strike[..n],
        &input.years[..n],
        &input.vol[..n],
        &input.rate[..n],
        &input.carry[..n],
    );
    let copies = (
        &mut w.code[..n],
        &mut w.s[..n],
        &mut w.k[..n],
        &mut w.t[..n],
        &mut w.vol[..n],
        &mut w.r[..n],
        &mut w.b[..n],
    );
    for i in 0..n {
        copies.0[i] = inputs.0[i];
        copies.1[i] = inputs.1[i];
        copies.2[i] = inputs.2[i];
        copies.3[i] = inputs.3[i];
        copies.4[i] = inputs.4[i];
        copies.5[i] = inputs.5[i];
        copies.6[i] = inputs.6[i];
    }
    let Scratch {
        code,
        s,
        k,
        t,
        vol,
        r,
        b,
        sqrt_t,
        moneyness,
        sd,
        d1,
        d2,
        growth,
        df,
        e1,
        e2,
        cdf1,
        cdf2,
    } = w;
    for i in 0..n {
        sqrt_t[i] = t[i].sqrt();
        sd[i] = (vol[i] * sqrt_t[i]).max(f64::MIN_POSITIVE);
        moneyness[i] = s[i] / k[i];
        let x = fast::madd::<FMA>(b[i], t[i], fast::ln_with::<FMA>(moneyness[i]));
        d1[i] = x / sd[i] + 0.5 * sd[i];
        d2[i] = d1[i] - sd[i];
    }
    for i in 0..n {
        growth[i] = fast::exp_with::<FMA>(b[i] * t[i]);
        df[i] = fast::exp_with::<FMA>(-r[i] * t[i]);
    }
    for i in 0..n {
        // exp(-d2^2/2) = exp(-d1^2/2) F/K: one exponential serves both
        // densities. It is taken at the smaller |d|, so the other density is
        // a product that can only underflow, never overflow.
        let forward_over_strike = moneyness[i] * growth[i];
        let d1_nearer = d1[i].abs() <= d2[i].abs();
        let e_near = exp_neg_half_square::<FMA>(d1[i].abs().min(d2[i].abs()));
        let ratio = if d1_nearer {
            forward_over_strike
        } else {
            1.0 / forward_over_strike
        };
        let e_far = e_near * ratio;
        e1[i] = if d1_nearer { e_near } else { e_far };
        e2[i] = if d1_nearer { e_far } else { e_near };
    }
    for i in 0..n {
        let phi = if code[i] > 0.0 { 1.0 } else { -1.0 };
        (cdf1[i], cdf2[i]) = norm_cdf_pair_given_exp::<FMA>(phi * d1[i], e1[i], phi * d2[i], e2[i]);
    }
    // The last loop writes the caller's output columns directly, all six
    // streams at once, each cache line in one go.
    let value = &mut value[..n];
    let [delta_out, gamma_out, vega_out, theta_out, rho_out] = greeks;
    let (delta_out, gamma_out, vega_out, theta_out, rho_out) = if GREEKS {
        (
            &mut delta_out[..n],
            &mut gamma_out[..n],
            &mut vega_out[..n],
            &mut theta_out[..n],
            &mut rho_out[..n],
        )
    } else {
        (
            &mut [][..],
            &mut [][..],
            &mut [][..],
            &mut [][..],
            &mut [][..],
        )
    };
    let mut flagged = false;
    for i in 0..n {
        let phi = if code[i] > 0.0 { 1.0 } else { -1.0 };
        let carry_df = df[i] * growth[i];
        let s_carry = s[i] * carry_df;
        let k_df = k[i] * df[i];
        let a = s_carry * cdf1[i];
        let c = k_df * cdf2[i];
        let naive = phi * (a - c);
        // NaN-safe: a NaN difference counts as cancelled.
        let keeps_digits = naive > CANCELLATION_RATIO * a.max(c);
        let mut all_finite = naive.is_finite();
        if GREEKS {
            let black76 = code[i] * phi > 1.5;
            let pdf1 = e1[i] * FRAC_1_SQRT_2PI;
            let delta = phi * carry_df * cdf1[i];
            let gamma = carry_df * pdf1 / (s[i] * sd[i]);
            let vega = s_carry * pdf1 * sqrt_t[i];
            let theta = -s_carry * pdf1 * vol[i] / (2.0 * sqrt_t[i])
                - phi * (b[i] - r[i]) * s_carry * cdf1[i]
                - phi * r[i] * k_df * cdf2[i];
            let rho = if black76 {
                -t[i] * naive
            } else {
                phi * t[i] * k_df * cdf2[i]
            };
            // The sum is non-finite if any term is.
            all_finite = (naive + delta + gamma + vega + theta + rho).is_finite();
            delta_out[i] = delta;
            gamma_out[i] = gamma;
            vega_out[i] = vega;
            theta_out[i] = theta;
            rho_out[i] = rho;
        }
        // NaN marks the option for the scalar pass: cancellation, or a
        // non-finite output.
        let redo = !keeps_digits || !all_finite;
        value[i] = if redo { f64::NAN } else { naive };
        flagged |= redo;
    }
    flagged
}

/// One option's contract terms for [`scenario_values`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScenarioOption {
    /// Call or put.
    pub(crate) kind: OptionKind,
    /// Strike, in the underlying's price unit.
    pub(crate) strike: f64,
    /// Time to expiry in years.
    pub(crate) years: f64,
    /// The spot `S_ref` that [`ScenarioMarket::log_spot`] is relative to.
    pub(crate) reference_spot: f64,
}

/// Rate and carry yield of every scenario of [`ScenarioMarket`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScenarioRates<'a> {
    /// The same in every scenario.
    Fixed { rate: f64, carry_yield: f64 },
    /// One of each per scenario.
    PerScenario {
        rate: &'a [f64],
        carry_yield: &'a [f64],
    },
}

/// The market numbers of one option's scenarios, column by column (all of
/// the length of the output; shorter columns make [`scenario_values`] fail).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScenarioMarket<'a> {
    /// Spot price of the underlying.
    pub(crate) spot: &'a [f64],
    /// `1 / spot`.
    pub(crate) inverse_spot: &'a [f64],
    /// `ln(spot / S_ref)`, [`ScenarioOption::reference_spot`].
    pub(crate) log_spot: &'a [f64],
    /// Volatility.
    pub(crate) vol: &'a [f64],
    /// Rates and carry yields.
    pub(crate) rates: ScenarioRates<'a>,
}

/// Values of one option under many scenarios of its underlying's spot,
/// volatility and (optionally) rate and carry yield: the full-revaluation
/// kernel. With spot `S`, strike `K`, `b = r - q` and the time to expiry
/// `T` fixed,
///
/// ```text
/// V = phi (S e^{-qT} N(phi d1) - K e^{-rT} N(phi d2)),
/// d1 = (ln(S/S_ref) + ln(S_ref/K) + bT) / (sigma sqrt T) + sigma sqrt T / 2,
/// ```
///
/// which is both the Black-Scholes-Merton value on the spot and the
/// Black-76 value on the forward `S e^{bT}`. Everything that does not depend
/// on the scenario (`ln(S_ref/K) + bT`, the discount factors) is computed
/// once, and `ln(S/S_ref)` and `1/S` come in per scenario (shared by every
/// option on the underlying), so a scenario costs one division, one
/// exponential and two rationals. Options whose direct formula cancels are
/// recomputed as [`OptionBatch::values`] does.
///
/// Inputs must pass the domain checks of [`BsInputs::new`] (the caller
/// checks them); results are identical whatever thread runs them.
///
/// # Errors
/// [`Error::LengthMismatch`] if a column is shorter than `out`;
/// [`Error::NonFiniteResult`] if a value is not finite.
pub(crate) fn scenario_values(
    option: &ScenarioOption,
    market: &ScenarioMarket<'_>,
    out: &mut [f64],
) -> Result<()> {
    let n = out.len();
    let rate_lengths = match market.rates {
        ScenarioRates::PerScenario { rate, carry_yield } => [rate.len(), carry_yield.len()],
        ScenarioRates::Fixed { .. } => [n, n],
    };
    let lengths = [
        market.spot.len(),
        market.inverse_spot.len(),
        market.log_spot.len(),
        market.vol.len(),
    ];
    if let Some(&got) = lengths.iter().chain(&rate_lengths).find(|&&len| len < n) {
        return Err(Error::LengthMismatch {
            what: "scenario columns",
            expected: n,
            got,
        });
    }
    scenario_values_on(option, market, out, widest_simd())
}

/// [`scenario_values`] through the kernel copy for `simd` (or the widest
/// narrower one the processor has); lengths already checked.
fn scenario_values_on(
    option: &ScenarioOption,
    market: &ScenarioMarket<'_>,
    out: &mut [f64],
    simd: Simd,
) -> Result<()> {
    let n = out.len();
    let terms = ScenarioTerms::new(option, market.rates);
    let flagged = with_scenario_scratch(|scratch| {
        let mut flagged = false;
        let mut lo = 0;
        while lo < n {
            let hi = (lo + LANES).min(n);
            let mut kernel = ScenarioKernel {
                terms: &terms,
                market: market.slice(lo, hi),
                out: &mut out[lo..hi],
                scratch,
            };
            flagged |= run_kernel(&mut kernel, simd);
            lo = hi;
        }
        flagged
    });
    if !flagged {
        return Ok(());
    }
    for i in marked(out) {
        let (rate, carry_yield) = match market.rates {
            ScenarioRates::Fixed { rate, carry_yield } => (rate, carry_yield),
            ScenarioRates::PerScenario { rate, carry_yield } => (rate[i], carry_yield[i]),
        };
        let t = option.years;
        let forward = market.spot[i] * ((rate - carry_yield) * t).exp();
        let sd = (market.vol[i] * t.sqrt()).max(f64::MIN_POSITIVE);
        let v = crate::pricing::black_price(forward, option.strike, sd, option.kind)
            * (-rate * t).exp();
        if !v.is_finite() {
            return Err(Error::NonFiniteResult {
                what: "scenario value",
                value: v,
            });
        }
        out[i] = v;
    }
    Ok(())
}

impl<'a> ScenarioMarket<'a> {
    fn slice(&self, lo: usize, hi: usize) -> ScenarioMarket<'a> {
        ScenarioMarket {
            spot: &self.spot[lo..hi],
            inverse_spot: &self.inverse_spot[lo..hi],
            log_spot: &self.log_spot[lo..hi],
            vol: &self.vol[lo..hi],
            rates: match self.rates {
                ScenarioRates::Fixed { .. } => self.rates,
                ScenarioRates::PerScenario { rate, carry_yield } => ScenarioRates::PerScenario {
                    rate: &rate[lo..hi],
                    carry_yield: &carry_yield[lo..hi],
                },
            },
        }
    }
}

/// What [`scenario_values`] computes once per option.
#[derive(Clone, Copy)]
struct ScenarioTerms {
    phi: f64,
    strike: f64,
    years: f64,
    sqrt_t: f64,
    /// `ln(S_ref / K)`.
    log_moneyness: f64,
    /// `ln(S_ref / K) + bT` (fixed rates).
    x0: f64,
    /// `e^{-qT}` (fixed rates).
    carry_df: f64,
    /// `K e^{-rT}` (fixed rates).
    strike_df: f64,
    /// `e^{-qT} / (K e^{-rT})`: `F / K = S` times this (fixed rates).
    forward_over_strike_per_spot: f64,
    /// `K e^{-rT} / e^{-qT}`: `K / F = (1/S)` times this (fixed rates).
    strike_over_forward_per_inverse_spot: f64,
}

impl ScenarioTerms {
    fn new(option: &ScenarioOption, rates: ScenarioRates<'_>) -> Self {
        let t = option.years;
        let (rate, carry_yield) = match rates {
            ScenarioRates::Fixed { rate, carry_yield } => (rate, carry_yield),
            ScenarioRates::PerScenario { .. } => (0.0, 0.0),
        };
        let log_moneyness = (option.reference_spot / option.strike).ln();
        let carry_df = (-carry_yield * t).exp();
        let strike_df = option.strike * (-rate * t).exp();
        ScenarioTerms {
            phi: option.kind.sign(),
            strike: option.strike,
            years: t,
            sqrt_t: t.sqrt(),
            log_moneyness,
            x0: log_moneyness + (rate - carry_yield) * t,
            carry_df,
            strike_df,
            forward_over_strike_per_spot: carry_df / strike_df,
            strike_over_forward_per_inverse_spot: strike_df / carry_df,
        }
    }
}

/// Intermediate columns of [`ScenarioKernel`], one per thread.
struct ScenarioScratch {
    d1: [f64; LANES],
    d2: [f64; LANES],
    e1: [f64; LANES],
    e2: [f64; LANES],
    cdf1: [f64; LANES],
    cdf2: [f64; LANES],
    /// `S e^{-qT}` and `K e^{-rT}` (rates per scenario only).
    spot_df: [f64; LANES],
    strike_df: [f64; LANES],
}

impl ScenarioScratch {
    fn new() -> Self {
        const Z: [f64; LANES] = [0.0; LANES];
        ScenarioScratch {
            d1: Z,
            d2: Z,
            e1: Z,
            e2: Z,
            cdf1: Z,
            cdf2: Z,
            spot_df: Z,
            strike_df: Z,
        }
    }
}

thread_local! {
    static SCENARIO_SCRATCH: std::cell::RefCell<Option<Box<ScenarioScratch>>> =
        const { std::cell::RefCell::new(None) };
}

/// Calls `f` with this thread's [`ScenarioScratch`] (a fresh one if it is
/// in use).
fn with_scenario_scratch<R>(f: impl FnOnce(&mut ScenarioScratch) -> R) -> R {
    SCENARIO_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => f(slot.get_or_insert_with(|| Box::new(ScenarioScratch::new()))),
        Err(_) => f(&mut ScenarioScratch::new()),
    })
}

/// [`scenario_values`] on up to [`LANES`] scenarios, in short loops like
/// [`staged_kernel`]. Values that must be recomputed are NaN.
struct ScenarioKernel<'a, 'b> {
    terms: &'a ScenarioTerms,
    market: ScenarioMarket<'a>,
    out: &'b mut [f64],
    scratch: &'b mut ScenarioScratch,
}

impl Kernel for ScenarioKernel<'_, '_> {
    #[inline(always)]
    fn run<const FMA: bool>(&mut self) -> bool {
        match self.market.rates {
            ScenarioRates::Fixed { .. } => self.values::<FMA, false>(),
            ScenarioRates::PerScenario { .. } => self.values::<FMA, true>(),
        }
    }
}

impl ScenarioKernel<'_, '_> {
    #[inline(always)]
    fn values<const FMA: bool, const RATES: bool>(&mut self) -> bool {
        let n = self.out.len();
        // Constants in locals: read through `self` they could alias the
        // scratch columns, which stops the loops from vectorising.
        let ScenarioTerms {
            phi,
            strike,
            years: t,
            sqrt_t,
            log_moneyness,
            x0,
            carry_df,
            strike_df: fixed_strike_df,
            forward_over_strike_per_spot,
            strike_over_forward_per_inverse_spot,
        } = *self.terms;
        let m = &self.market;
        let (spot, inverse_spot, log_spot, vol) = (
            &m.spot[..n],
            &m.inverse_spot[..n],
            &m.log_spot[..n],
            &m.vol[..n],
        );
        let (rate, carry_yield): (&[f64], &[f64]) = match m.rates {
            ScenarioRates::PerScenario { rate, carry_yield } => (&rate[..n], &carry_yield[..n]),
            ScenarioRates::Fixed { .. } => (&[], &[]),
        };
        let w = &mut *self.scratch;
        let (d1, d2) = (&mut w.d1[..n], &mut w.d2[..n]);
        let (e1, e2) = (&mut w.e1[..n], &mut w.e2[..n]);
        let (cdf1, cdf2) = (&mut w.cdf1[..n], &mut w.cdf2[..n]);
        let (spot_df, strike_df) = (&mut w.spot_df[..n], &mut w.strike_df[..n]);
        for i in 0..n {
            let sd = (vol[i] * sqrt_t).max(f64::MIN_POSITIVE);
            let x = if RATES {
                fast::madd::<FMA>(rate[i] - carry_yield[i], t, log_moneyness) + log_spot[i]
            } else {
                log_spot[i] + x0
            };
            d1[i] = x / sd + 0.5 * sd;
            d2[i] = d1[i] - sd;
        }
        if RATES {
            for i in 0..n {
                spot_df[i] = spot[i] * fast::exp_with::<FMA>(-carry_yield[i] * t);
                strike_df[i] = strike * fast::exp_with::<FMA>(-rate[i] * t);
            }
        }
        for i in 0..n {
            // As in the staged kernel: one exponential at the smaller |d|,
            // the other density through F/K (or K/F).
            let d1_nearer = d1[i].abs() <= d2[i].abs();
            let e_near = exp_neg_half_square::<FMA>(d1[i].abs().min(d2[i].abs()));
            // Both candidates computed, then selected: a select vectorises,
            // a load under a condition does not.
            let ratio = if RATES {
                let (a, c) = (spot_df[i], strike_df[i]);
                let (num, den) = if d1_nearer { (a, c) } else { (c, a) };
                num / den
            } else {
                let forward_over_strike = spot[i] * forward_over_strike_per_spot;
                let strike_over_forward = inverse_spot[i] * strike_over_forward_per_inverse_spot;
                if d1_nearer {
                    forward_over_strike
                } else {
                    strike_over_forward
                }
            };
            let e_far = e_near * ratio;
            e1[i] = if d1_nearer { e_near } else { e_far };
            e2[i] = if d1_nearer { e_far } else { e_near };
        }
        for i in 0..n {
            (cdf1[i], cdf2[i]) =
                norm_cdf_pair_given_exp::<FMA>(phi * d1[i], e1[i], phi * d2[i], e2[i]);
        }
        let out = &mut self.out[..n];
        let mut flagged = false;
        for i in 0..n {
            let (a, c) = if RATES {
                (spot_df[i] * cdf1[i], strike_df[i] * cdf2[i])
            } else {
                (spot[i] * carry_df * cdf1[i], fixed_strike_df * cdf2[i])
            };
            let naive = phi * (a - c);
            // NaN-safe, as in the staged kernel.
            let keeps_digits = naive > CANCELLATION_RATIO * a.max(c);
            let redo = !keeps_digits || !naive.is_finite();
            out[i] = if redo { f64::NAN } else { naive };
            flagged |= redo;
        }
        flagged
    }
}

/// Below this ratio of the price to its larger term the direct difference
/// has lost more than six bits (relative error above ~3e-14) and the option
/// is recomputed by the scalar kernel. About 1% of a book of options with
/// strikes within +-50% of spot falls below it.
const CANCELLATION_RATIO: f64 = 1.0 / 64.0;

/// `exp(-x^2/2)` with `x^2` split exactly (`hi + lo`: by one fused
/// multiply-add, or by Dekker's product with Veltkamp's split), so the only
/// error is that of `exp`.
#[inline(always)]
fn exp_neg_half_square<const FMA: bool>(x: f64) -> f64 {
    // Beyond 40 the result is 0 anyway; the clamp keeps the split exact.
    let x = x.abs().min(40.0);
    let hi = x * x;
    let lo = if FMA {
        x.mul_add(x, -hi)
    } else {
        const SPLITTER: f64 = 134_217_729.0;
        let c = SPLITTER * x;
        let x_hi = c - (c - x);
        let x_lo = x - x_hi;
        ((x_hi * x_hi - hi) + 2.0 * x_hi * x_lo) + x_lo * x_lo
    };
    let e = fast::exp_with::<FMA>(-0.5 * hi);
    e - e * (0.5 * lo)
}

/// `Phi(x1)` and `Phi(x2)` given `e1 = exp(-x1^2/2)` and `e2 = exp(-x2^2/2)`,
/// without branches: `Phi(-|x|) = e P(|x|) / Q(|x|)` by one rational on the
/// whole line ([`crate::math::normal::norm_tail_scaled_parts`]), and
/// `Phi(|x|) = 1 - Phi(-|x|)`. One division, `1/(Q(|x1|) Q(|x2|))`, gives
/// both quotients (two roundings more than two divisions; the kernels need
/// the CDF at `d1` and `d2` together).
#[inline(always)]
fn norm_cdf_pair_given_exp<const FMA: bool>(x1: f64, e1: f64, x2: f64, e2: f64) -> (f64, f64) {
    use crate::math::normal::norm_tail_scaled_parts;
    let (p1, q1) = norm_tail_scaled_parts::<FMA>(x1.abs());
    let (p2, q2) = norm_tail_scaled_parts::<FMA>(x2.abs());
    let r = 1.0 / (q1 * q2);
    let lower1 = e1 * (p1 * q2 * r);
    let lower2 = e2 * (p2 * q1 * r);
    (
        if x1 > 0.0 { 1.0 - lower1 } else { lower1 },
        if x2 > 0.0 { 1.0 - lower2 } else { lower2 },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::norm_cdf;
    use rand::{RngExt, SeedableRng};

    /// Batch values agree with the scalar kernel to this relative error,
    /// per unit of the value's condition number `1 + d^2`.
    const VALUE_REL_TOL: f64 = 1e-13;
    /// Batch Greeks agree with the scalar kernel to this relative error,
    /// above an absolute floor of `GREEK_ABS_FLOOR` x the option's scale.
    const GREEK_REL_TOL: f64 = 1e-12;
    const GREEK_ABS_FLOOR: f64 = 1e-14;

    fn mixed(n: usize, seed: u64) -> (OptionBatch, Vec<BsInputs>) {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut batch = OptionBatch::with_capacity(n);
        let mut all = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = if rng.random::<bool>() {
                OptionKind::Call
            } else {
                OptionKind::Put
            };
            let model = if rng.random::<bool>() {
                OptionModel::BlackScholesMerton
            } else {
                OptionModel::Black76
            };
            let strike = 100.0 * rng.random_range(-1.5..1.5f64).exp();
            let years = rng.random_range(0.0001..3.0);
            let vol = rng.random_range(0.01..2.0);
            let rate = rng.random_range(-0.02..0.1);
            let carry = rng.random_range(-0.05..0.1);
            let inputs =
                BsInputs::new(kind, model, 100.0, strike, years, vol, rate, carry).unwrap();
            batch.push(&inputs);
            all.push(inputs);
        }
        (batch, all)
    }

    #[test]
    fn batch_agrees_with_scalar_kernel() {
        let (batch, all) = mixed(20_000, 7);
        let mut out = GreeksBatch::default();
        batch.greeks(&mut out).unwrap();
        let mut values = Vec::new();
        batch.values(&mut values).unwrap();
        let mut worst_value: f64 = 0.0;
        for (i, inputs) in all.iter().enumerate() {
            let g = black_scholes(inputs);
            assert_eq!(
                values[i].to_bits(),
                out.value[i].to_bits(),
                "values() and greeks() differ at {i}"
            );
            let scale = inputs.underlying().max(inputs.strike());
            // Relative error divided by the value's condition number in
            // its inputs, 1 + d^2 (a rounding of d moves e^{-d^2/2} by d^2 ulp).
            let sd = inputs.vol() * inputs.years().sqrt();
            let d = ((inputs.underlying() / inputs.strike()).ln()
                + inputs.cost_of_carry() * inputs.years())
                / sd;
            let rel = (out.value[i] - g.value).abs() / g.value.abs().max(1e-300);
            if g.value > 1e-250 {
                worst_value = worst_value.max(rel / (1.0 + d * d));
            }
            let pairs = [
                (out.delta[i], g.delta, 1.0),
                (out.gamma[i], g.gamma, 1.0 / scale),
                (out.vega[i], g.vega, scale),
                (out.theta[i], g.theta, scale),
                (out.rho[i], g.rho, scale),
            ];
            for (j, (got, want, unit)) in pairs.into_iter().enumerate() {
                let tol = GREEK_REL_TOL * want.abs() + GREEK_ABS_FLOOR * unit;
                assert!(
                    (got - want).abs() <= tol,
                    "option {i} greek {j}: batch {got:e} scalar {want:e} ({inputs:?})"
                );
            }
        }
        println!("batch kernel: worst relative value error per (1 + d^2) {worst_value:e}");
        assert!(
            worst_value <= VALUE_REL_TOL,
            "worst value error {worst_value:e}"
        );
    }

    #[cfg(feature = "rayon")]
    #[test]
    fn thread_count_does_not_change_a_bit() {
        let (batch, _) = mixed(3 * PARALLEL_THRESHOLD + 17, 11);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = GreeksBatch::default();
            pool.install(|| batch.greeks(&mut out)).unwrap();
            out
        };
        let (one, two) = (run(1), run(2));
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one.value), bits(&two.value));
        assert_eq!(bits(&one.theta), bits(&two.theta));
        assert_eq!(bits(&one.gamma), bits(&two.gamma));
    }

    #[test]
    fn generic_and_fused_paths_agree() {
        let (batch, _) = mixed(5_000, 3);
        let mut simd = GreeksBatch::default();
        simd.resize(batch.len());
        let mut generic = simd.clone();
        let cols = batch.columns(0, batch.len());
        let block = |out: &mut GreeksBatch, f: fn(&Columns<'_>, &mut OutBlock<'_>) -> bool| {
            let mut b = OutBlock {
                value: &mut out.value,
                delta: &mut out.delta,
                gamma: &mut out.gamma,
                vega: &mut out.vega,
                theta: &mut out.theta,
                rho: &mut out.rho,
            };
            f(&cols, &mut b);
        };
        block(&mut simd, dispatch::<true>);
        block(&mut generic, block_generic::<true>);
        // The paths differ only in fused multiply-add rounding. Options
        // marked for the scalar pass (NaN value) are redone there.
        for i in 0..batch.len() {
            if simd.value[i].is_nan() || generic.value[i].is_nan() {
                continue;
            }
            // Rounding differences in d move e^{-d^2/2} by about d^2 ulp:
            // the tolerance follows the problem's conditioning.
            let inputs = batch.get(i).unwrap();
            let sd = inputs.vol() * inputs.years().sqrt();
            let d = ((inputs.underlying() / inputs.strike()).ln()
                + inputs.cost_of_carry() * inputs.years())
                / sd;
            let tol = 1e-13 * (1.0 + d * d + sd * sd);
            for (a, b) in [
                (simd.value[i], generic.value[i]),
                (simd.vega[i], generic.vega[i]),
                (simd.delta[i], generic.delta[i]),
            ] {
                assert!(
                    (a - b).abs() <= tol * b.abs(),
                    "{i}: {a:e} vs {b:e}, tol {tol:e}"
                );
            }
        }
    }

    #[test]
    fn simd_copies_give_the_same_bits() {
        // The AVX2 and AVX-512 copies run the same operations per lane; on
        // a processor without AVX-512 both runs take the AVX2 copy.
        let (batch, _) = mixed(5_000, 5);
        let cols = batch.columns(0, batch.len());
        let run = |simd: Simd, greeks: bool| {
            let mut out = GreeksBatch::default();
            out.resize(batch.len());
            let mut b = OutBlock {
                value: &mut out.value,
                delta: &mut out.delta,
                gamma: &mut out.gamma,
                vega: &mut out.vega,
                theta: &mut out.theta,
                rho: &mut out.rho,
            };
            if greeks {
                block_with::<true>(&cols, &mut b, simd);
            } else {
                block_with::<false>(&cols, &mut b, simd);
            }
            out
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for greeks in [true, false] {
            let (a, b) = (run(Simd::Avx2, greeks), run(Simd::Avx512, greeks));
            assert_eq!(bits(&a.value), bits(&b.value));
            if greeks {
                for (x, y) in [
                    (&a.delta, &b.delta),
                    (&a.gamma, &b.gamma),
                    (&a.vega, &b.vega),
                    (&a.theta, &b.theta),
                    (&a.rho, &b.rho),
                ] {
                    assert_eq!(bits(x), bits(y));
                }
            }
        }
        let (option, market) = scenario_case(3_001, 9, Rates::PerScenario);
        let m = market.view();
        let run = |simd| {
            let mut out = vec![0.0; m.spot.len()];
            scenario_values_on(&option, &m, &mut out, simd).unwrap();
            out
        };
        assert_eq!(bits(&run(Simd::Avx2)), bits(&run(Simd::Avx512)));
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Rates {
        Fixed,
        PerScenario,
    }

    /// Owned columns of a [`ScenarioMarket`].
    struct Columns2 {
        spot: Vec<f64>,
        inverse_spot: Vec<f64>,
        log_spot: Vec<f64>,
        vol: Vec<f64>,
        rate: Vec<f64>,
        carry_yield: Vec<f64>,
        fixed: Option<(f64, f64)>,
    }

    impl Columns2 {
        fn view(&self) -> ScenarioMarket<'_> {
            ScenarioMarket {
                spot: &self.spot,
                inverse_spot: &self.inverse_spot,
                log_spot: &self.log_spot,
                vol: &self.vol,
                rates: match self.fixed {
                    Some((rate, carry_yield)) => ScenarioRates::Fixed { rate, carry_yield },
                    None => ScenarioRates::PerScenario {
                        rate: &self.rate,
                        carry_yield: &self.carry_yield,
                    },
                },
            }
        }
    }

    /// One random option (strike within +-150% log of the reference spot,
    /// 1 ms to 3 years) and `n` scenarios of spot (+-80% log), vol and,
    /// per scenario or fixed, rate and carry yield.
    fn scenario_case(n: usize, seed: u64, rates: Rates) -> (ScenarioOption, Columns2) {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let reference_spot = 100.0;
        let option = ScenarioOption {
            kind: if rng.random::<bool>() {
                OptionKind::Call
            } else {
                OptionKind::Put
            },
            strike: reference_spot * rng.random_range(-1.5..1.5f64).exp(),
            years: [0.0001, 0.01, 0.3, 3.0][rng.random_range(0..4)],
            reference_spot,
        };
        let spot: Vec<f64> = (0..n)
            .map(|_| reference_spot * rng.random_range(-0.8..0.8f64).exp())
            .collect();
        let fixed = (rates == Rates::Fixed)
            .then(|| (rng.random_range(-0.02..0.1), rng.random_range(-0.05..0.1)));
        let columns = Columns2 {
            inverse_spot: spot.iter().map(|s| 1.0 / s).collect(),
            log_spot: spot.iter().map(|s| (s / reference_spot).ln()).collect(),
            vol: (0..n).map(|_| rng.random_range(0.01..2.0)).collect(),
            rate: (0..n).map(|_| rng.random_range(-0.02..0.1)).collect(),
            carry_yield: (0..n).map(|_| rng.random_range(-0.05..0.1)).collect(),
            fixed,
            spot,
        };
        (option, columns)
    }

    #[test]
    fn scenario_values_agree_with_scalar_kernel() {
        let mut worst: f64 = 0.0;
        for seed in 0..40 {
            for rates in [Rates::Fixed, Rates::PerScenario] {
                let (option, columns) = scenario_case(300, seed, rates);
                let m = columns.view();
                let mut out = vec![0.0; columns.spot.len()];
                scenario_values(&option, &m, &mut out).unwrap();
                for (i, &got) in out.iter().enumerate() {
                    let (rate, carry_yield) = columns
                        .fixed
                        .unwrap_or((columns.rate[i], columns.carry_yield[i]));
                    let inputs = BsInputs::new(
                        option.kind,
                        OptionModel::BlackScholesMerton,
                        columns.spot[i],
                        option.strike,
                        option.years,
                        columns.vol[i],
                        rate,
                        carry_yield,
                    )
                    .unwrap();
                    let want = black_scholes(&inputs).value;
                    // As in `batch_agrees_with_scalar_kernel`.
                    let sd = inputs.vol() * inputs.years().sqrt();
                    let d = ((inputs.underlying() / inputs.strike()).ln()
                        + inputs.cost_of_carry() * inputs.years())
                        / sd;
                    if want > 1e-250 {
                        let rel = (got - want).abs() / want;
                        worst = worst.max(rel / (1.0 + d * d));
                    } else {
                        assert!(got.abs() <= 1e-250, "{i}: {got} vs {want}");
                    }
                }
            }
        }
        println!("scenario kernel: worst relative value error per (1 + d^2) {worst:e}");
        assert!(worst <= VALUE_REL_TOL, "worst value error {worst:e}");
    }

    #[test]
    fn scenario_values_unmoved_scenario_has_the_reference_bits() {
        for rates in [Rates::Fixed, Rates::PerScenario] {
            let (option, mut columns) = scenario_case(200, 21, rates);
            // Scenario 7 is the reference spot itself.
            columns.spot[7] = option.reference_spot;
            columns.inverse_spot[7] = 1.0 / option.reference_spot;
            columns.log_spot[7] = 0.0;
            let mut all = vec![0.0; 200];
            scenario_values(&option, &columns.view(), &mut all).unwrap();
            let one = Columns2 {
                spot: vec![columns.spot[7]],
                inverse_spot: vec![columns.inverse_spot[7]],
                log_spot: vec![0.0],
                vol: vec![columns.vol[7]],
                rate: vec![columns.rate[7]],
                carry_yield: vec![columns.carry_yield[7]],
                fixed: columns.fixed,
            };
            let mut v = [0.0];
            scenario_values(&option, &one.view(), &mut v).unwrap();
            assert_eq!(v[0].to_bits(), all[7].to_bits());
        }
    }

    #[test]
    fn scenario_values_reject_short_columns() {
        let (option, columns) = scenario_case(10, 1, Rates::PerScenario);
        let mut out = vec![0.0; 11];
        assert!(matches!(
            scenario_values(&option, &columns.view(), &mut out),
            Err(Error::LengthMismatch {
                expected: 11,
                got: 10,
                ..
            })
        ));
    }

    #[test]
    fn branch_free_cdf_matches_scalar() {
        let mut worst: f64 = 0.0;
        let n = 100_000;
        for i in 0..=n {
            let x = -38.0 + 47.0 * f64::from(i) / f64::from(n);
            // The kernels evaluate the CDF in pairs (d1 and d2) sharing one
            // division; pair each point with another part of the line.
            let y = 9.0 - 47.0 * f64::from(i) / f64::from(n);
            let pair = |fused: bool| {
                if fused {
                    let (ex, ey) = (
                        exp_neg_half_square::<true>(x),
                        exp_neg_half_square::<true>(y),
                    );
                    norm_cdf_pair_given_exp::<true>(x, ex, y, ey)
                } else {
                    let (ex, ey) = (
                        exp_neg_half_square::<false>(x),
                        exp_neg_half_square::<false>(y),
                    );
                    norm_cdf_pair_given_exp::<false>(x, ex, y, ey)
                }
            };
            let (got, got_y) = pair(false);
            let (fused, fused_y) = pair(true);
            for (p, a, b) in [(x, got, fused), (y, got_y, fused_y)] {
                if a > 1e-300 {
                    assert!((b / a - 1.0).abs() < 1e-14, "{p}");
                }
                let want = norm_cdf(p);
                if want > 1e-300 {
                    worst = worst.max((a / want - 1.0).abs());
                }
            }
        }
        assert!(worst < 1e-14, "worst relative error {worst:e}");
    }
}
