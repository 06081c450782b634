//! Conditional variance of a return series: EWMA (RiskMetrics) and GARCH(1,1)
//! fitted by Gaussian maximum likelihood, with variance forecasts.
//!
//! Conventions:
//! - Returns are one per period (e.g. daily), in any consistent scale (decimal
//!   or percent); variances are in squared return units per period (daily
//!   variance for daily returns; annualise by the caller's day basis). The mean
//!   return is taken as zero.
//! - `sigma2[t]` is the variance of return `t` given returns `0..t`; the
//!   forecast for the next, unseen period is `next_variance`.
//! - Initialisation ("backcast", as the `arch` package does): the variance before
//!   the first return is `b = sum_i w_i r_i^2` over the first `tau = min(75, n)`
//!   returns with weights `w_i = 0.94^i / sum_j 0.94^j`. Both EWMA and GARCH
//!   start from it: `sigma2[0] = b` for EWMA and `sigma2[0] = omega + (alpha +
//!   beta) b` for GARCH. Using the same start as `arch` 8.0 makes our
//!   likelihood reproduce `arch`'s to rounding.

use crate::error::{Error, Result};
#[cfg(feature = "serde")]
use serde::Serialize;

/// RiskMetrics decay factor for daily data (J.P. Morgan/Reuters 1996,
/// *RiskMetrics Technical Document*, 4th ed., table 5.9).
pub const RISKMETRICS_DAILY_LAMBDA: f64 = 0.94;
/// Number of leading returns in the backcast that starts both recursions.
pub const BACKCAST_WINDOW: usize = 75;
/// Decay of the backcast weights.
const BACKCAST_DECAY: f64 = 0.94;
/// Fewest returns [`fit_garch`] accepts.
pub const GARCH_MIN_OBSERVATIONS: usize = 30;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn check_returns(returns: &[f64], min: usize) -> Result<()> {
    if returns.len() < min {
        return Err(Error::TooFew {
            what: "returns",
            min,
            got: returns.len(),
        });
    }
    match returns.iter().position(|r| !r.is_finite()) {
        Some(index) => Err(Error::InvalidElement {
            what: "returns",
            index,
            rule: "finite",
            value: returns[index],
        }),
        None => Ok(()),
    }
}

fn finite_result(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteResult { what, value })
    }
}

/// Squared returns, checked for overflow.
fn squares(returns: &[f64]) -> Result<Vec<f64>> {
    let r2: Vec<f64> = returns.iter().map(|r| r * r).collect();
    match r2.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NonFiniteResult {
            what: "squared return",
            value: r2[i],
        }),
        None => Ok(r2),
    }
}

/// `sum_i w_i r_i^2`, `w_i = 0.94^i / sum_j 0.94^j`, over the first
/// `min(75, n)` squared returns.
fn backcast(r2: &[f64]) -> f64 {
    let tau = r2.len().min(BACKCAST_WINDOW);
    let mut weight = 1.0;
    let mut total_weight = 0.0;
    let mut acc = 0.0;
    for &x in &r2[..tau] {
        acc += weight * x;
        total_weight += weight;
        weight *= BACKCAST_DECAY;
    }
    if total_weight > 0.0 {
        acc / total_weight
    } else {
        0.0
    }
}

/// EWMA conditional variances of a return series.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct EwmaEstimate {
    /// Decay factor used.
    pub lambda: f64,
    /// `sigma2[t]`, the variance of return `t` given the returns before it.
    pub conditional_variances: Vec<f64>,
    /// Variance forecast for the period after the last return (flat for every
    /// horizon under EWMA: the h-period variance is `h * next_variance`).
    pub next_variance: f64,
}

impl EwmaEstimate {
    /// `sqrt(next_variance)`: volatility forecast per period.
    pub fn next_volatility(&self) -> f64 {
        self.next_variance.sqrt()
    }
}

/// EWMA (RiskMetrics) variance: `sigma2[t] = lambda sigma2[t-1] + (1 - lambda)
/// r[t-1]^2`, started from the backcast (module docs).
///
/// # Units
/// Squared return units per period.
///
/// # Errors
/// [`Error::TooFew`] for an empty series; [`Error::InvalidElement`] for a
/// non-finite return; [`Error::InvalidInput`] unless `0 < lambda < 1`;
/// [`Error::NonFiniteResult`] if a squared return overflows.
///
/// # Examples
/// ```
/// use portfolio_margin::{RISKMETRICS_DAILY_LAMBDA, ewma_variance};
/// let returns = [0.01, -0.02, 0.015, -0.005];
/// let e = ewma_variance(&returns, RISKMETRICS_DAILY_LAMBDA)?;
/// assert_eq!(e.conditional_variances.len(), 4);
/// let last = e.conditional_variances[3];
/// assert!((e.next_variance - (0.94 * last + 0.06 * 0.005 * 0.005)).abs() < 1e-18);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn ewma_variance(returns: &[f64], lambda: f64) -> Result<EwmaEstimate> {
    check_returns(returns, 1)?;
    if !(lambda.is_finite() && lambda > 0.0 && lambda < 1.0) {
        return Err(Error::InvalidInput {
            what: "EWMA lambda",
            rule: "in the open interval (0, 1)",
            value: lambda,
        });
    }
    let r2 = squares(returns)?;
    let mut variances = Vec::with_capacity(r2.len());
    let mut s2 = backcast(&r2);
    for &x in &r2 {
        variances.push(s2);
        s2 = (1.0 - lambda) * x + lambda * s2;
    }
    Ok(EwmaEstimate {
        lambda,
        conditional_variances: variances,
        next_variance: s2,
    })
}

/// GARCH(1,1) parameters: `sigma2[t] = omega + alpha r[t-1]^2 + beta
/// sigma2[t-1]` with `omega > 0`, `alpha >= 0`, `beta >= 0`, `alpha + beta < 1`
/// (Bollerslev 1986, "Generalized autoregressive conditional
/// heteroskedasticity", *Journal of Econometrics* 31).
///
/// ```
/// use portfolio_margin::GarchParams;
/// let p = GarchParams::new(0.017, 0.098, 0.889)?;
/// assert!((p.unconditional_variance() - 0.017 / 0.013).abs() < 1e-12);
/// assert!(GarchParams::new(0.01, 0.2, 0.8).is_err()); // alpha + beta = 1
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct GarchParams {
    omega: f64,
    alpha: f64,
    beta: f64,
}

impl GarchParams {
    /// Validated parameters.
    ///
    /// # Units
    /// `omega` in squared return units per period; `alpha`, `beta` pure.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `omega > 0`, `alpha >= 0`, `beta >= 0`
    /// (all finite) and `alpha + beta < 1`.
    pub fn new(omega: f64, alpha: f64, beta: f64) -> Result<Self> {
        crate::error::positive("GARCH omega", omega)?;
        crate::error::non_negative("GARCH alpha", alpha)?;
        crate::error::non_negative("GARCH beta", beta)?;
        if alpha + beta >= 1.0 {
            return Err(Error::InvalidInput {
                what: "GARCH persistence alpha + beta",
                rule: "< 1",
                value: alpha + beta,
            });
        }
        Ok(GarchParams { omega, alpha, beta })
    }

    /// Constant term.
    pub fn omega(&self) -> f64 {
        self.omega
    }
    /// Weight of the last squared return.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
    /// Weight of the last variance.
    pub fn beta(&self) -> f64 {
        self.beta
    }
    /// `alpha + beta`, in `[0, 1)`.
    pub fn persistence(&self) -> f64 {
        self.alpha + self.beta
    }
    /// Long-run variance `omega / (1 - alpha - beta)`.
    pub fn unconditional_variance(&self) -> f64 {
        self.omega / (1.0 - self.persistence())
    }
}

/// A GARCH(1,1) filtered over a return series: variances, Gaussian
/// log-likelihood and forecasts.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct GarchEstimate {
    /// The parameters (fitted by [`fit_garch`] or given to [`evaluate_garch`]).
    pub params: GarchParams,
    /// `sum_t -1/2 (ln 2 pi + ln sigma2[t] + r[t]^2 / sigma2[t])`.
    pub log_likelihood: f64,
    /// `sigma2[t]` for every return.
    pub conditional_variances: Vec<f64>,
    /// One-period-ahead forecast `omega + alpha r[n-1]^2 + beta sigma2[n-1]`.
    pub next_variance: f64,
    /// Log-likelihood evaluations spent by the optimiser (0 from
    /// [`evaluate_garch`]).
    pub evaluations: usize,
}

impl GarchEstimate {
    /// Variance forecast for period `n - 1 + h` (h = 1 is
    /// [`Self::next_variance`]): `v + (alpha + beta)^(h-1) (next_variance - v)`
    /// with `v` the unconditional variance.
    ///
    /// # Units
    /// Squared return units per period.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `h` is 0.
    pub fn forecast_variance(&self, h: usize) -> Result<f64> {
        check_horizon(h)?;
        let v = self.params.unconditional_variance();
        let rho = self.params.persistence();
        Ok(v + rho.powf((h - 1) as f64) * (self.next_variance - v))
    }

    /// Mean of the variance forecasts for periods `1..=h` ahead, i.e. the
    /// `h`-period variance divided by `h`:
    /// `v + (next_variance - v) (1 - rho^h) / (h (1 - rho))`.
    ///
    /// # Units
    /// Squared return units per period (multiply by `h` for the variance of
    /// the `h`-period return).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `h` is 0.
    pub fn average_forecast_variance(&self, h: usize) -> Result<f64> {
        check_horizon(h)?;
        let v = self.params.unconditional_variance();
        let rho = self.params.persistence();
        let hf = h as f64;
        let factor = if rho == 0.0 {
            1.0 / hf
        } else {
            (1.0 - rho.powf(hf)) / (hf * (1.0 - rho))
        };
        Ok(v + (self.next_variance - v) * factor)
    }
}

fn check_horizon(h: usize) -> Result<()> {
    if h == 0 {
        return Err(Error::InvalidInput {
            what: "forecast horizon (periods)",
            rule: ">= 1",
            value: 0.0,
        });
    }
    Ok(())
}

/// GARCH recursion over squared returns; returns the log-likelihood and the
/// one-step-ahead variance, and fills `variances` if given.
fn garch_filter(
    r2: &[f64],
    omega: f64,
    alpha: f64,
    beta: f64,
    start: f64,
    mut variances: Option<&mut Vec<f64>>,
) -> (f64, f64) {
    let mut prev_r2 = start;
    let mut prev_s2 = start;
    let mut acc = 0.0;
    for &x in r2 {
        let s2 = omega + alpha * prev_r2 + beta * prev_s2;
        acc += s2.ln() + x / s2;
        if let Some(v) = variances.as_deref_mut() {
            v.push(s2);
        }
        prev_r2 = x;
        prev_s2 = s2;
    }
    let next = omega + alpha * prev_r2 + beta * prev_s2;
    (-0.5 * (r2.len() as f64 * LN_2PI + acc), next)
}

/// Filters a GARCH(1,1) with given parameters over `returns`.
///
/// # Errors
/// [`Error::TooFew`] for an empty series; [`Error::InvalidElement`] for a
/// non-finite return; [`Error::NonFiniteResult`] on overflow.
///
/// # Examples
/// ```
/// use portfolio_margin::{GarchParams, evaluate_garch};
/// let returns = [0.5, -1.2, 0.3, 2.0, -0.7];
/// let g = evaluate_garch(&returns, GarchParams::new(0.05, 0.1, 0.85)?)?;
/// assert_eq!(g.conditional_variances.len(), 5);
/// assert!(g.log_likelihood.is_finite());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn evaluate_garch(returns: &[f64], params: GarchParams) -> Result<GarchEstimate> {
    check_returns(returns, 1)?;
    let r2 = squares(returns)?;
    let start = backcast(&r2);
    let mut variances = Vec::with_capacity(r2.len());
    let (log_likelihood, next_variance) = garch_filter(
        &r2,
        params.omega,
        params.alpha,
        params.beta,
        start,
        Some(&mut variances),
    );
    let log_likelihood = finite_result("GARCH log-likelihood", log_likelihood)?;
    let next_variance = finite_result("GARCH variance forecast", next_variance)?;
    Ok(GarchEstimate {
        params,
        log_likelihood,
        conditional_variances: variances,
        next_variance,
        evaluations: 0,
    })
}

/// Largest `alpha + beta` the fit reports: the logistic map rounds to 1 in
/// floating point, and a fit that runs into the integrated-GARCH boundary is
/// reported at `1 - 1e-9` (up to one rounding in `alpha + beta`).
pub const MAX_FITTED_PERSISTENCE: f64 = 1.0 - 1e-9;

/// Unconstrained coordinates -> (omega, alpha, beta) with omega > 0,
/// alpha, beta >= 0, alpha + beta < 1:
/// `omega = exp(t0)`, `alpha + beta = min(logistic(t1), MAX_FITTED_PERSISTENCE)`,
/// `alpha = (alpha + beta) logistic(t2)`.
fn unpack(theta: &[f64; 3]) -> (f64, f64, f64) {
    let t0 = theta[0].clamp(-700.0, 700.0);
    let persistence = logistic(theta[1]).min(MAX_FITTED_PERSISTENCE);
    let alpha = persistence * logistic(theta[2]);
    let beta = persistence * logistic(-theta[2]);
    (t0.exp(), alpha, beta)
}

fn pack(omega: f64, alpha: f64, beta: f64) -> [f64; 3] {
    let persistence = alpha + beta;
    [omega.ln(), logit(persistence), logit(alpha / persistence)]
}

fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Nelder-Mead settings.
const NM_STEP: f64 = 0.5;
const NM_MAX_ITERATIONS: usize = 5_000;
const NM_FTOL: f64 = 1e-13; // relative spread of the simplex values
const NM_XTOL: f64 = 1e-9; // spread of (omega, alpha, beta) on standardised data
const NM_MAX_RESTARTS: usize = 25;

struct Minimum {
    x: [f64; 3],
    f: f64,
    converged: bool,
    evaluations: usize,
}

/// Nelder-Mead (Lagarias et al. 1998 coefficients 1, 2, 1/2, 1/2) on three
/// coordinates; non-finite objective values count as `+inf`. Converged when
/// the simplex values agree to `NM_FTOL` (relative) and its vertices agree
/// to `NM_XTOL` in the model parameters.
fn nelder_mead(objective: &dyn Fn(&[f64; 3]) -> f64, start: [f64; 3], step: f64) -> Minimum {
    let eval = |x: &[f64; 3]| {
        let v = objective(x);
        if v.is_nan() { f64::INFINITY } else { v }
    };
    let mut simplex: Vec<([f64; 3], f64)> = Vec::with_capacity(4);
    simplex.push((start, eval(&start)));
    for i in 0..3 {
        let mut x = start;
        x[i] += step;
        simplex.push((x, eval(&x)));
    }
    let mut evaluations = 4;
    let mut converged = false;
    let lin = |a: &[f64; 3], b: &[f64; 3], t: f64| -> [f64; 3] {
        [
            a[0] + t * (b[0] - a[0]),
            a[1] + t * (b[1] - a[1]),
            a[2] + t * (b[2] - a[2]),
        ]
    };
    for _ in 0..NM_MAX_ITERATIONS {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, fbest) = simplex[0];
        let fworst = simplex[3].1;
        let pb = unpack(&best);
        let x_spread = simplex[1..]
            .iter()
            .map(|(x, _)| {
                let p = unpack(x);
                (p.0 - pb.0)
                    .abs()
                    .max((p.1 - pb.1).abs())
                    .max((p.2 - pb.2).abs())
            })
            .fold(0.0_f64, f64::max);
        if fworst - fbest <= NM_FTOL * (fbest.abs() + 1e-30) && x_spread <= NM_XTOL {
            converged = true;
            break;
        }
        let mut centroid = [0.0; 3];
        for (x, _) in &simplex[..3] {
            for d in 0..3 {
                centroid[d] += x[d] / 3.0;
            }
        }
        let worst = simplex[3].0;
        let reflected = lin(&centroid, &worst, -1.0);
        let fr = eval(&reflected);
        evaluations += 1;
        if fr < fbest {
            let expanded = lin(&centroid, &worst, -2.0);
            let fe = eval(&expanded);
            evaluations += 1;
            simplex[3] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
            continue;
        }
        if fr < simplex[2].1 {
            simplex[3] = (reflected, fr);
            continue;
        }
        let (contracted, fc, accept) = if fr < fworst {
            let xc = lin(&centroid, &reflected, 0.5);
            let fc = eval(&xc);
            (xc, fc, fc <= fr)
        } else {
            let xc = lin(&centroid, &worst, 0.5);
            let fc = eval(&xc);
            (xc, fc, fc < fworst)
        };
        evaluations += 1;
        if accept {
            simplex[3] = (contracted, fc);
            continue;
        }
        for vertex in simplex.iter_mut().skip(1) {
            let x = lin(&best, &vertex.0, 0.5);
            *vertex = (x, eval(&x));
            evaluations += 1;
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    Minimum {
        x: simplex[0].0,
        f: simplex[0].1,
        converged,
        evaluations,
    }
}

/// Fits a zero-mean GARCH(1,1) with Gaussian innovations by maximum likelihood.
///
/// The likelihood is that of [`evaluate_garch`] (backcast start, module docs),
/// the one `arch`'s `arch_model(r, mean="Zero", vol="GARCH", p=1, q=1,
/// dist="normal")` maximises. The returns are first divided by their root mean
/// square (GARCH is scale-equivariant: `omega` scales with the variance, `alpha`,
/// `beta` do not), so percent and decimal returns fit identically. The
/// constraints are built in by the reparameterisation `omega = exp(t0)`,
/// `alpha + beta = logistic(t1)`, `alpha = (alpha + beta) logistic(t2)`. The
/// search starts from the best point of a grid (`alpha` in {0.01, 0.05, 0.1,
/// 0.2}, `alpha + beta` in {0.5, 0.7, 0.9, 0.98}, `omega` by variance
/// targeting), then runs Nelder-Mead, restarting from the best vertex until a
/// restart no longer improves the log-likelihood. Deterministic: no randomness,
/// no threads. A likelihood that keeps rising towards `alpha + beta = 1`
/// (integrated GARCH) is reported on the boundary, at
/// [`MAX_FITTED_PERSISTENCE`].
///
/// # Errors
/// [`Error::TooFew`] for fewer than [`GARCH_MIN_OBSERVATIONS`] returns;
/// [`Error::InvalidElement`] for a non-finite return; [`Error::InvalidInput`]
/// if every return is 0; [`Error::NoConvergence`] if the optimiser does not
/// settle; [`Error::NonFiniteResult`] on overflow.
///
/// # Examples
/// ```
/// use portfolio_margin::fit_garch;
/// // A deterministic, mildly clustered series.
/// let returns: Vec<f64> = (0..500)
///     .map(|t| ((t as f64 * 1.7).sin() + 0.3 * (t as f64 * 0.05).cos()) * 0.01)
///     .collect();
/// let g = fit_garch(&returns)?;
/// assert!(g.params.persistence() < 1.0);
/// assert!(g.forecast_variance(10)? > 0.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn fit_garch(returns: &[f64]) -> Result<GarchEstimate> {
    check_returns(returns, GARCH_MIN_OBSERVATIONS)?;
    let r2 = squares(returns)?;
    let mut sum = 0.0;
    for &x in &r2 {
        sum += x;
    }
    let second_moment = finite_result("mean squared return", sum / r2.len() as f64)?;
    if second_moment <= 0.0 {
        return Err(Error::InvalidInput {
            what: "mean squared return",
            rule: "> 0 (not every return may be 0)",
            value: second_moment,
        });
    }
    let y2: Vec<f64> = r2.iter().map(|x| x / second_moment).collect();
    let start = backcast(&y2);
    let objective = |theta: &[f64; 3]| -> f64 {
        let (omega, alpha, beta) = unpack(theta);
        -garch_filter(&y2, omega, alpha, beta, start, None).0
    };

    let mut best: Option<([f64; 3], f64)> = None;
    let mut evaluations = 0;
    for alpha in [0.01, 0.05, 0.1, 0.2] {
        for persistence in [0.5, 0.7, 0.9, 0.98] {
            if alpha >= persistence {
                continue;
            }
            let theta = pack(1.0 - persistence, alpha, persistence - alpha);
            let f = objective(&theta);
            evaluations += 1;
            if f.is_finite() && best.is_none_or(|(_, fb)| f < fb) {
                best = Some((theta, f));
            }
        }
    }
    let (mut x, mut f) = best.ok_or(Error::NoConvergence {
        what: "GARCH(1,1) starting values",
        iterations: evaluations,
    })?;
    let mut converged = false;
    for _ in 0..NM_MAX_RESTARTS {
        let m = nelder_mead(&objective, x, NM_STEP);
        evaluations += m.evaluations;
        let improvement = f - m.f;
        if m.f < f {
            x = m.x;
            f = m.f;
        }
        if m.converged && improvement <= NM_FTOL * f.abs() {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(Error::NoConvergence {
            what: "GARCH(1,1) maximum likelihood (Nelder-Mead)",
            iterations: evaluations,
        });
    }
    let (omega_std, alpha, beta) = unpack(&x);
    let params = GarchParams::new(omega_std * second_moment, alpha, beta)?;
    let mut estimate = evaluate_garch(returns, params)?;
    estimate.evaluations = evaluations;
    Ok(estimate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn simulate(params: GarchParams, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut s2 = params.unconditional_variance();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let z: f64 = StandardNormal.sample(&mut rng);
            let r = s2.sqrt() * z;
            out.push(r);
            s2 = params.omega() + params.alpha() * r * r + params.beta() * s2;
        }
        out
    }

    #[test]
    fn recovers_simulated_parameters() {
        let truth = GarchParams::new(0.02, 0.08, 0.9).unwrap();
        let r = simulate(truth, 8000, 7);
        let fit = fit_garch(&r).unwrap();
        let p = fit.params;
        // Sampling error at n = 8000 is about 0.01 on alpha and beta.
        assert!((p.alpha() - 0.08).abs() < 0.03, "{p:?}");
        assert!((p.beta() - 0.9).abs() < 0.04, "{p:?}");
        // The optimum beats the truth and every grid point.
        let at_truth = evaluate_garch(&r, truth).unwrap().log_likelihood;
        assert!(fit.log_likelihood >= at_truth);
    }

    #[test]
    fn scale_equivariant() {
        let truth = GarchParams::new(0.05, 0.1, 0.85).unwrap();
        let r = simulate(truth, 2000, 11);
        let r100: Vec<f64> = r.iter().map(|x| x * 100.0).collect();
        let a = fit_garch(&r).unwrap();
        let b = fit_garch(&r100).unwrap();
        assert!((a.params.alpha() - b.params.alpha()).abs() < 1e-6);
        assert!((a.params.beta() - b.params.beta()).abs() < 1e-6);
        assert!((b.params.omega() / a.params.omega() / 1e4 - 1.0).abs() < 1e-5);
        // ln L shifts by -n ln(100).
        let shift = a.log_likelihood - b.log_likelihood;
        assert!((shift - 2000.0 * 100f64.ln()).abs() < 1e-6 * shift.abs());
    }

    #[test]
    fn white_noise_converges_near_the_boundary() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let r: Vec<f64> = (0..1500).map(|_| StandardNormal.sample(&mut rng)).collect();
        let fit = fit_garch(&r).unwrap();
        assert!(fit.params.alpha() < 0.05, "{:?}", fit.params);
        let v = fit.params.unconditional_variance();
        assert!((v - 1.0).abs() < 0.15, "{v}");
    }

    #[test]
    fn forecasts_iterate_the_recursion() {
        let r = simulate(GarchParams::new(0.02, 0.08, 0.9).unwrap(), 300, 5);
        let g = evaluate_garch(&r, GarchParams::new(0.02, 0.08, 0.9).unwrap()).unwrap();
        let mut s2 = g.next_variance;
        let mut total = 0.0;
        for h in 1..=30 {
            if h > 1 {
                s2 = 0.02 + 0.98 * s2;
            }
            total += s2;
            let f = g.forecast_variance(h).unwrap();
            assert!((f - s2).abs() < 1e-13 * s2, "{h}");
            let avg = g.average_forecast_variance(h).unwrap();
            assert!((avg - total / h as f64).abs() < 1e-13 * avg, "{h}");
        }
        assert!(g.forecast_variance(0).is_err());
        // Far horizons tend to the long-run variance.
        let far = g.forecast_variance(100_000).unwrap();
        assert!((far - 1.0).abs() < 1e-12);
    }

    #[test]
    fn degenerate_series_give_valid_boundary_fits() {
        // A single shock at the start: the likelihood rises towards IGARCH.
        let mut first = vec![0.0; 200];
        first[0] = 1.0;
        // A linear trend, a regime switch over 16 orders of magnitude, tiny values.
        let trend: Vec<f64> = (0..200).map(|i| i as f64 * 1e-3).collect();
        let regime: Vec<f64> = (0..200).map(|i| if i < 100 { 1e-8 } else { 1e8 }).collect();
        let tiny: Vec<f64> = (0..50)
            .map(|i| ((i * 7919 % 13) as f64 - 6.0) * 1e-150)
            .collect();
        for r in [first, trend, regime, tiny] {
            let g = fit_garch(&r).unwrap();
            let p = g.params;
            assert!(p.omega() > 0.0 && p.alpha() >= 0.0 && p.beta() >= 0.0);
            assert!(p.persistence() <= MAX_FITTED_PERSISTENCE + 1e-15);
            assert!(g.log_likelihood.is_finite() && g.next_variance.is_finite());
            assert!(g.forecast_variance(250).unwrap().is_finite());
        }
    }

    #[test]
    fn input_errors() {
        assert!(matches!(fit_garch(&[0.1; 10]), Err(Error::TooFew { .. })));
        assert!(matches!(
            fit_garch(&[0.0; 40]),
            Err(Error::InvalidInput { .. })
        ));
        let mut r = vec![0.01; 40];
        r[7] = f64::NAN;
        assert!(matches!(
            fit_garch(&r),
            Err(Error::InvalidElement { index: 7, .. })
        ));
        assert!(ewma_variance(&[], 0.94).is_err());
        assert!(ewma_variance(&[0.1], 1.0).is_err());
        assert!(matches!(
            ewma_variance(&[1e200], 0.94),
            Err(Error::NonFiniteResult { .. })
        ));
        assert!(GarchParams::new(0.0, 0.1, 0.1).is_err());
        assert!(GarchParams::new(0.1, -0.1, 0.1).is_err());
    }
}
