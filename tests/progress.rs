//! Progress observers and cancellation: `monte_carlo_risk_with_progress`,
//! `monte_carlo_pnl` and `RiskArrays::compute_with_progress` report every
//! unit of work, stop on `Flow::Cancel` with `Error::Cancelled`, and give the
//! same bits as the unobserved calls whatever the thread count.

use portfolio_margin::*;
use std::sync::Mutex;

/// Paths and chunk size of the test generator: 12 chunks, the last short.
const PATHS: usize = 11_500;
const CHUNK: usize = 1_000;
const CHUNKS: u64 = 12;

struct Setup {
    instruments: InstrumentSet,
    market: MarketSnapshot,
    book: Portfolio,
    generator: MonteCarloGenerator,
}

/// Calls and puts on BTC and ETH (coin-settled and linear) and a perpetual;
/// correlated log spot shocks over one day.
fn setup() -> Setup {
    let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).unwrap();
    let expiry = Timestamp::from_ymd_hms(2026, 12, 26, 8, 0, 0).unwrap();
    let mut builder = MarketSnapshot::builder(as_of);
    let mut instruments = InstrumentSet::new();
    let mut positions = Vec::new();
    let mut factors = Vec::new();
    for (name, spot, vol, settlement) in [
        ("BTC", 95_000.0, 0.55, Settlement::Inverse),
        ("ETH", 3_400.0, 0.70, Settlement::Linear),
    ] {
        let u = UnderlyingId::new(name).unwrap();
        builder = builder.underlying(
            u.clone(),
            UnderlyingMarket::new(spot, 0.04, 0.01, VolSurface::flat(vol).unwrap()).unwrap(),
        );
        factors
            .push(SimulatedFactor::new(RiskFactor::Spot(u.clone()), ShockKind::Log, vol).unwrap());
        for (k, (kind, moneyness, quantity)) in [
            (OptionKind::Call, 1.1, -20.0),
            (OptionKind::Put, 0.9, -15.0),
            (OptionKind::Call, 1.3, 10.0),
        ]
        .into_iter()
        .enumerate()
        {
            let id = InstrumentId::new(format!("{name}-{k}")).unwrap();
            let option = OptionContract::new(u.clone(), kind, spot * moneyness, expiry)
                .unwrap()
                .with_settlement(settlement);
            instruments
                .insert(id.clone(), Instrument::Option(option))
                .unwrap();
            positions.push(Position::new(id, quantity));
        }
        let perp = InstrumentId::new(format!("{name}-PERP")).unwrap();
        instruments
            .insert(
                perp.clone(),
                Instrument::Perpetual(PerpetualContract::new(u)),
            )
            .unwrap();
        positions.push(Position::new(perp, 5.0));
    }
    let config = MonteCarloConfig::new(
        2026,
        PATHS,
        YearFraction::from_days(1.0, DayBasis::Calendar365).unwrap(),
    )
    .unwrap()
    .with_chunk_size(CHUNK)
    .unwrap();
    let generator = MonteCarloGenerator::new(
        config,
        factors,
        &CorrelationMatrix::new(2, vec![1.0, 0.7, 0.7, 1.0]).unwrap(),
    )
    .unwrap();
    Setup {
        market: builder.build().unwrap(),
        book: Portfolio::new(AccountId::new("desk"), positions, &instruments).unwrap(),
        instruments,
        generator,
    }
}

impl Setup {
    /// `monte_carlo_risk_with_progress` of the book at 99%, full revaluation.
    fn risk(
        &self,
        progress: &(dyn Fn(ProgressUpdate) -> Flow + Sync),
    ) -> portfolio_margin::Result<MonteCarloRisk> {
        monte_carlo_risk_with_progress(
            &self.book,
            &self.instruments,
            &self.market,
            &self.generator,
            c99(),
            Revaluation::Full,
            progress,
        )
    }

    /// `monte_carlo_pnl` of the book, full revaluation.
    fn pnl(
        &self,
        progress: &(dyn Fn(ProgressUpdate) -> Flow + Sync),
    ) -> portfolio_margin::Result<Vec<f64>> {
        monte_carlo_pnl(
            &self.book,
            &self.instruments,
            &self.market,
            &self.generator,
            Revaluation::Full,
            progress,
        )
    }
}

fn c99() -> Confidence {
    Confidence::new(0.99).unwrap()
}

fn bits(r: &MonteCarloRisk) -> [u64; 4] {
    [
        r.value_at_risk.to_bits(),
        r.expected_shortfall.to_bits(),
        r.var_standard_error.to_bits(),
        r.es_standard_error.to_bits(),
    ]
}

/// Records every update it sees; never cancels.
fn recorder(log: &Mutex<Vec<ProgressUpdate>>) -> impl Fn(ProgressUpdate) -> Flow + Sync + '_ {
    move |u| {
        log.lock().unwrap().push(u);
        Flow::Continue
    }
}

/// The updates are `0, 1, ..., total` in order (calls are serialised).
fn assert_complete(log: &[ProgressUpdate], stage: &str, total: u64) {
    let done: Vec<u64> = log.iter().map(|u| u.done).collect();
    assert_eq!(done, (0..=total).collect::<Vec<u64>>());
    assert!(log.iter().all(|u| u.total == total && u.stage == stage));
    assert_eq!(log.last().map(|u| u.done), Some(total));
}

fn observed_run(s: &Setup) -> (MonteCarloRisk, Vec<ProgressUpdate>) {
    let log = Mutex::new(Vec::new());
    let risk = s.risk(&recorder(&log)).unwrap();
    (risk, log.into_inner().unwrap())
}

#[test]
fn observer_sees_every_chunk_and_the_total_last() {
    let s = setup();
    assert_eq!(s.generator.n_chunks() as u64, CHUNKS);
    let (_, log) = observed_run(&s);
    assert_complete(&log, MONTE_CARLO_STAGE, CHUNKS);
}

#[test]
fn observed_result_equals_the_plain_call_bit_for_bit() {
    let s = setup();
    let plain = monte_carlo_risk(
        &s.book,
        &s.instruments,
        &s.market,
        &s.generator,
        c99(),
        Revaluation::Full,
    )
    .unwrap();
    let (observed, _) = observed_run(&s);
    assert_eq!(bits(&observed), bits(&plain));
    assert_eq!(observed, plain);
    // The P&L vector behind it: `from_pnl` gives the same bits again.
    let pnl = s.pnl(&|_| Flow::Continue).unwrap();
    assert_eq!(pnl.len(), PATHS);
    assert_eq!(
        bits(&MonteCarloRisk::from_pnl(&pnl, c99()).unwrap()),
        bits(&plain)
    );
}

#[cfg(feature = "rayon")]
#[test]
fn observed_result_is_the_same_on_any_thread_count() {
    let s = setup();
    let (reference, _) = observed_run(&s);
    for threads in [1, 2, 3, 5] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (risk, log) = pool.install(|| observed_run(&s));
        assert_eq!(bits(&risk), bits(&reference), "{threads} threads");
        assert_complete(&log, MONTE_CARLO_STAGE, CHUNKS);
    }
}

#[test]
fn cancelling_after_the_first_chunk_returns_cancelled() {
    let s = setup();
    let calls = Mutex::new(0_u32);
    let stop_after_first = |u: ProgressUpdate| {
        *calls.lock().unwrap() += 1;
        if u.done >= 1 {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    };
    let expected = Error::Cancelled {
        stage: MONTE_CARLO_STAGE,
        done: 1,
        total: CHUNKS,
    };
    let risk = s.risk(&stop_after_first);
    assert_eq!(risk, Err(expected.clone()));
    // Called for done = 0 and done = 1, never after the cancel.
    assert_eq!(*calls.lock().unwrap(), 2);
    let pnl = s.pnl(&stop_after_first);
    assert_eq!(pnl, Err(expected));
    assert_eq!(
        risk.unwrap_err().to_string(),
        "Monte Carlo revaluation cancelled after 1 of 12 units of work"
    );
}

#[test]
fn cancelling_before_the_first_chunk_runs_nothing() {
    let s = setup();
    let risk = s.risk(&|_| Flow::Cancel);
    assert_eq!(
        risk,
        Err(Error::Cancelled {
            stage: MONTE_CARLO_STAGE,
            done: 0,
            total: CHUNKS,
        })
    );
}

#[test]
fn input_errors_come_before_the_observer() {
    let s = setup();
    let empty = Portfolio::new(AccountId::new("none"), vec![], &s.instruments).unwrap();
    let risk = monte_carlo_risk_with_progress(
        &empty,
        &s.instruments,
        &s.market,
        &s.generator,
        c99(),
        Revaluation::Full,
        &|_| panic!("not called on invalid input"),
    );
    assert!(matches!(risk, Err(Error::TooFew { .. })), "{risk:?}");
}

#[test]
fn risk_arrays_report_every_instrument_and_can_be_cancelled() {
    let s = setup();
    let scenarios = s.generator.generate().unwrap();
    let plain =
        RiskArrays::compute(&s.instruments, &s.market, &scenarios, Revaluation::Full).unwrap();
    let log = Mutex::new(Vec::new());
    let observed = RiskArrays::compute_with_progress(
        &s.instruments,
        &s.market,
        &scenarios,
        Revaluation::Full,
        &recorder(&log),
    )
    .unwrap();
    assert_eq!(observed, plain);
    let total = s.instruments.len() as u64;
    assert_eq!(total, 8);
    assert_complete(&log.into_inner().unwrap(), RISK_ARRAYS_STAGE, total);

    let cancelled = RiskArrays::compute_with_progress(
        &s.instruments,
        &s.market,
        &scenarios,
        Revaluation::Sensitivity,
        &|u| {
            if u.done >= 1 {
                Flow::Cancel
            } else {
                Flow::Continue
            }
        },
    );
    assert_eq!(
        cancelled,
        Err(Error::Cancelled {
            stage: RISK_ARRAYS_STAGE,
            done: 1,
            total,
        })
    );
}

#[test]
fn progress_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ProgressUpdate>();
    assert_send_sync::<Flow>();
}
