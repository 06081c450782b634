//! Progress reports and cancellation for long computations.
//!
//! A long computation (for example [`crate::monte_carlo_risk_with_progress`]
//! or [`crate::RiskArrays::compute_with_progress`]) takes an observer
//! `&(dyn Fn(ProgressUpdate) -> Flow + Sync)`: it is called once before any
//! work with `done = 0`, then once after every finished unit of work (a
//! Monte Carlo chunk, an instrument), and answers [`Flow::Continue`] or
//! [`Flow::Cancel`]. The observer only observes: results are the same bits
//! with or without one, on any number of threads.
//!
//! With the `rayon` feature units finish on worker threads, so the observer
//! must be `Sync`; the calls are serialised (never two at once), so `done`
//! rises by one per call and the last call of a run that was not cancelled
//! reports `done == total`. Workers wait while the observer runs: keep it
//! short (update a progress bar, read a flag).

use crate::error::{Error, Result};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// One progress report: `done` of `total` units of work of `stage` are
/// finished.
///
/// ```
/// use portfolio_margin::{Flow, ProgressUpdate};
/// let update = ProgressUpdate { done: 3, total: 49, stage: "Monte Carlo revaluation" };
/// let stop_early = |u: ProgressUpdate| if u.done >= 3 { Flow::Cancel } else { Flow::Continue };
/// assert_eq!(stop_early(update), Flow::Cancel);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProgressUpdate {
    /// Units of work finished (chunks, instruments), `0..=total`.
    pub done: u64,
    /// Units of work in the whole computation.
    pub total: u64,
    /// What is being computed, e.g. `"Monte Carlo revaluation"`.
    pub stage: &'static str,
}

/// The observer's answer to a [`ProgressUpdate`]: go on, or stop.
///
/// After [`Flow::Cancel`] no new unit of work starts, units already running
/// finish, the observer is not called again, and the computation returns
/// [`Error::Cancelled`].
///
/// ```
/// use portfolio_margin::Flow;
/// assert_ne!(Flow::Continue, Flow::Cancel);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// Keep computing.
    Continue,
    /// Stop as soon as possible and return [`Error::Cancelled`].
    Cancel,
}

/// Serialises calls to an observer, counts finished units and remembers a
/// cancellation.
pub(crate) struct Tracker<'a> {
    observer: &'a (dyn Fn(ProgressUpdate) -> Flow + Sync),
    stage: &'static str,
    total: u64,
    /// Units finished, and the update the observer cancelled at (if any).
    state: Mutex<(u64, Option<ProgressUpdate>)>,
    /// Set once the observer has cancelled (read without the lock).
    cancelled: AtomicBool,
}

impl<'a> Tracker<'a> {
    /// A tracker of `total` units of `stage`; reports `done = 0` at once.
    pub(crate) fn start(
        observer: &'a (dyn Fn(ProgressUpdate) -> Flow + Sync),
        stage: &'static str,
        total: usize,
    ) -> Self {
        let tracker = Tracker {
            observer,
            stage,
            total: total as u64,
            state: Mutex::new((0, None)),
            cancelled: AtomicBool::new(false),
        };
        tracker.report(0);
        tracker
    }

    /// `Err(Cancelled)` if the observer has asked to stop: call before
    /// starting a unit of work.
    pub(crate) fn check(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            self.outcome()
        } else {
            Ok(())
        }
    }

    /// Records one finished unit and reports it.
    pub(crate) fn finish_one(&self) {
        self.report(1);
    }

    /// `Err(Cancelled)` if the observer cancelled at any point: call after
    /// all units, before looking at their results.
    pub(crate) fn outcome(&self) -> Result<()> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.1 {
            Some(at) => Err(Error::Cancelled {
                stage: at.stage,
                done: at.done,
                total: at.total,
            }),
            None => Ok(()),
        }
    }

    fn report(&self, finished: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_add(finished);
        if state.1.is_some() {
            return;
        }
        let update = ProgressUpdate {
            done: state.0,
            total: self.total,
            stage: self.stage,
        };
        if (self.observer)(update) == Flow::Cancel {
            state.1 = Some(update);
            self.cancelled.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn reports_zero_then_each_unit_and_remembers_the_cancel() {
        let calls = AtomicU64::new(0);
        let observer = |u: ProgressUpdate| {
            calls.fetch_add(1, Ordering::Relaxed);
            assert_eq!((u.total, u.stage), (5, "test"));
            if u.done == 2 {
                Flow::Cancel
            } else {
                Flow::Continue
            }
        };
        let t = Tracker::start(&observer, "test", 5);
        assert!(t.check().is_ok());
        t.finish_one();
        assert!(t.check().is_ok());
        t.finish_one();
        let cancelled = Err(Error::Cancelled {
            stage: "test",
            done: 2,
            total: 5,
        });
        assert_eq!(t.check(), cancelled);
        t.finish_one(); // a unit already running when the cancel came
        assert_eq!(t.outcome(), cancelled);
        // 0, 1, 2 reported; nothing after the cancel.
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }
}
