//! Streamed Monte Carlo VaR/ES (`monte_carlo_risk`): convergence to the
//! delta-normal answer for linear books, determinism, options books, errors.
//!
//! Run with `--release -- --nocapture` to see the measured figures.

mod common;

use common::{as_of, id};
use portfolio_margin::*;

/// MC estimates must lie within this many of their reported standard errors
/// of the analytic answer.
const STANDARD_ERRORS: f64 = 4.0;
/// Paths of the convergence tests.
const CONVERGENCE_PATHS: usize = 200_000;

fn iid(s: &str) -> InstrumentId {
    InstrumentId::new(s).unwrap()
}

const NAMES: [&str; 3] = ["BTC", "ETH", "SOL"];
const SPOTS: [f64; 3] = [100_000.0, 4_000.0, 150.0];
const VOLS: [f64; 3] = [0.6, 0.75, 0.9];
const CORRELATION: [f64; 9] = [1.0, 0.7, 0.5, 0.7, 1.0, 0.6, 0.5, 0.6, 1.0];

fn market() -> MarketSnapshot {
    let mut b = MarketSnapshot::builder(as_of());
    for ((name, spot), vol) in NAMES.iter().zip(SPOTS).zip(VOLS) {
        b = b.underlying(
            id(name),
            UnderlyingMarket::new(spot, 0.04, 0.0, VolSurface::flat(vol).unwrap()).unwrap(),
        );
    }
    b.build().unwrap()
}

/// Perpetuals on the three underlyings (multipliers 0.01, 0.1, 1), and a
/// book long BTC, short ETH, long SOL.
fn linear_book() -> (InstrumentSet, Portfolio, [f64; 3]) {
    let multipliers = [0.01, 0.1, 1.0];
    let quantities = [20.0, -300.0, 2_000.0];
    let mut set = InstrumentSet::new();
    let mut positions = Vec::new();
    for ((name, m), q) in NAMES.iter().zip(multipliers).zip(quantities) {
        let perp = PerpetualContract::new(id(name)).with_multiplier(m).unwrap();
        set.insert(iid(&format!("{name}-PERP")), Instrument::Perpetual(perp))
            .unwrap();
        positions.push(Position::new(iid(&format!("{name}-PERP")), q));
    }
    // A listed instrument the book does not hold (must not be revalued).
    set.insert(iid("UNHELD"), Instrument::Spot(id("DOGE")))
        .unwrap();
    let book = Portfolio::new(AccountId::new("linear"), positions, &set).unwrap();
    let units = [
        quantities[0] * multipliers[0],
        quantities[1] * multipliers[1],
        quantities[2] * multipliers[2],
    ];
    (set, book, units)
}

fn generator(
    seed: u64,
    paths: usize,
    horizon: YearFraction,
    kind: ShockKind,
    vols: [f64; 3],
) -> MonteCarloGenerator {
    let config = MonteCarloConfig::new(seed, paths, horizon).unwrap();
    let factors = NAMES
        .iter()
        .zip(vols)
        .map(|(name, v)| SimulatedFactor::new(RiskFactor::Spot(id(name)), kind, v).unwrap())
        .collect();
    MonteCarloGenerator::new(
        config,
        factors,
        &CorrelationMatrix::new(3, CORRELATION.to_vec()).unwrap(),
    )
    .unwrap()
}

fn covariance(vols: [f64; 3], horizon: f64) -> CovarianceMatrix {
    let mut c = [0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            c[i * 3 + j] = vols[i] * vols[j] * CORRELATION[i * 3 + j] * horizon;
        }
    }
    CovarianceMatrix::new(3, &c).unwrap()
}

fn c99() -> Confidence {
    Confidence::new(0.99).unwrap()
}

fn check_against(label: &str, mc: &MonteCarloRisk, exact: &RiskMeasures) {
    let var_z = (mc.value_at_risk - exact.value_at_risk) / mc.var_standard_error;
    let es_z = (mc.expected_shortfall - exact.expected_shortfall) / mc.es_standard_error;
    println!(
        "{label}: VaR MC {:.4} ± {:.4} vs analytic {:.4} ({var_z:+.2} se); \
         ES MC {:.4} ± {:.4} vs analytic {:.4} ({es_z:+.2} se)",
        mc.value_at_risk,
        mc.var_standard_error,
        exact.value_at_risk,
        mc.expected_shortfall,
        mc.es_standard_error,
        exact.expected_shortfall,
    );
    assert!(
        var_z.abs() < STANDARD_ERRORS,
        "{label} VaR off by {var_z} se"
    );
    assert!(es_z.abs() < STANDARD_ERRORS, "{label} ES off by {es_z} se");
    // The standard errors are of the size the asymptotics predict (not
    // inflated to pass): below 1% of the measure at 200,000 paths.
    assert!(mc.var_standard_error < 0.01 * exact.value_at_risk);
    assert!(mc.es_standard_error < 0.01 * exact.expected_shortfall);
}

/// Absolute spot shocks: a perpetual's P&L is exactly `q m x`, so the book's
/// P&L is exactly normal and delta-normal VaR/ES are the exact answer.
#[test]
fn linear_book_with_absolute_shocks_matches_exact_normal() {
    let (set, book, units) = linear_book();
    let horizon = YearFraction::from_days(1.0, DayBasis::Calendar365).unwrap();
    // Price-unit vols: the same percentage vols as the log test.
    let vols = [VOLS[0] * SPOTS[0], VOLS[1] * SPOTS[1], VOLS[2] * SPOTS[2]];
    let g = generator(11, CONVERGENCE_PATHS, horizon, ShockKind::Absolute, vols);
    let mc = monte_carlo_risk(&book, &set, &market(), &g, c99(), Revaluation::Full).unwrap();
    let exact = delta_normal_risk(&units, &covariance(vols, horizon.years()), c99()).unwrap();
    assert_eq!(mc.paths, CONVERGENCE_PATHS);
    assert_eq!(mc.confidence, 0.99);
    check_against("absolute shocks, exact normal", &mc, &exact);
}

/// Log spot shocks over a tiny horizon (1e-6 years, 32 seconds): the P&L
/// `q m S (exp(x) - 1)` is linear in the log return `x` up to a relative
/// error of about `σ √h z / 2 <= 0.9 * 0.001 * 2.67 / 2 ≈ 0.12%`, against a
/// VaR standard error of about 0.4% at 200,000 paths. The generator's drift
/// `-σ² h / 2` makes `E[exp(x) - 1] = 0`, the zero mean of delta-normal.
#[test]
fn linear_book_with_log_shocks_converges_to_delta_normal() {
    let (set, book, units) = linear_book();
    let horizon = YearFraction::new(1e-6).unwrap();
    let g = generator(12, CONVERGENCE_PATHS, horizon, ShockKind::Log, VOLS);
    let mc = monte_carlo_risk(&book, &set, &market(), &g, c99(), Revaluation::Full).unwrap();
    // Delta in units of the log return: q m S.
    let deltas = [
        units[0] * SPOTS[0],
        units[1] * SPOTS[1],
        units[2] * SPOTS[2],
    ];
    let exact = delta_normal_risk(&deltas, &covariance(VOLS, horizon.years()), c99()).unwrap();
    check_against("log shocks, h = 1e-6", &mc, &exact);
}

/// Independent seeds: the spread of the estimates matches the reported
/// standard errors (their root-mean-square over the seeds). With 64 seeds the
/// sample standard deviation has a relative error of about
/// `1 / sqrt(2 * 63) ≈ 9%`, so the ratio must lie in [`SPREAD_RATIO`].
const SPREAD_RATIO: (f64, f64) = (0.7, 1.3);

#[test]
fn reported_standard_errors_match_the_spread_over_seeds() {
    let (set, book, _) = linear_book();
    let horizon = YearFraction::from_days(1.0, DayBasis::Calendar365).unwrap();
    let vols = [VOLS[0] * SPOTS[0], VOLS[1] * SPOTS[1], VOLS[2] * SPOTS[2]];
    let market = market();
    let seeds = 64;
    let runs: Vec<MonteCarloRisk> = (0..seeds)
        .map(|s| {
            let g = generator(1_000 + s, 20_000, horizon, ShockKind::Absolute, vols);
            monte_carlo_risk(&book, &set, &market, &g, c99(), Revaluation::Full).unwrap()
        })
        .collect();
    let spread = |f: &dyn Fn(&MonteCarloRisk) -> f64| {
        let mean = runs.iter().map(f).sum::<f64>() / seeds as f64;
        (runs.iter().map(|r| (f(r) - mean).powi(2)).sum::<f64>() / (seeds - 1) as f64).sqrt()
    };
    let rms = |f: &dyn Fn(&MonteCarloRisk) -> f64| {
        (runs.iter().map(|r| f(r).powi(2)).sum::<f64>() / seeds as f64).sqrt()
    };
    let var_ratio = spread(&|r| r.value_at_risk) / rms(&|r| r.var_standard_error);
    let es_ratio = spread(&|r| r.expected_shortfall) / rms(&|r| r.es_standard_error);
    println!("observed spread / reported standard error: VaR {var_ratio:.3}, ES {es_ratio:.3}");
    for ratio in [var_ratio, es_ratio] {
        assert!(ratio > SPREAD_RATIO.0 && ratio < SPREAD_RATIO.1, "{ratio}");
    }
}

/// An options book: calls and puts on all three underlyings, and a perp.
fn options_book() -> (InstrumentSet, Portfolio) {
    let mut set = InstrumentSet::new();
    let mut positions = Vec::new();
    let expiry = as_of().plus_years(YearFraction::from_days(30.0, DayBasis::Calendar365).unwrap());
    for (name, spot) in NAMES.iter().zip(SPOTS) {
        for (k, (kind, strike, q)) in [
            (OptionKind::Call, 1.1 * spot, -5.0),
            (OptionKind::Put, 0.9 * spot, -8.0),
            (OptionKind::Call, spot, 3.0),
        ]
        .into_iter()
        .enumerate()
        {
            let key = iid(&format!("{name}-{k}"));
            let option = OptionContract::new(id(name), kind, strike, expiry).unwrap();
            set.insert(key.clone(), Instrument::Option(option)).unwrap();
            positions.push(Position::new(key, q * 100_000.0 / spot));
        }
    }
    set.insert(
        iid("BTC-PERP"),
        Instrument::Perpetual(PerpetualContract::new(id("BTC"))),
    )
    .unwrap();
    positions.push(Position::new(iid("BTC-PERP"), 0.5));
    let book = Portfolio::new(AccountId::new("options"), positions, &set).unwrap();
    (set, book)
}

fn bits(r: &MonteCarloRisk) -> [u64; 4] {
    [
        r.value_at_risk.to_bits(),
        r.expected_shortfall.to_bits(),
        r.var_standard_error.to_bits(),
        r.es_standard_error.to_bits(),
    ]
}

#[cfg(feature = "rayon")]
#[test]
fn same_seed_gives_the_same_bits_on_one_and_two_threads() {
    let (set, book) = options_book();
    let horizon = YearFraction::from_days(1.0, DayBasis::Calendar365).unwrap();
    let config = MonteCarloConfig::new(5, 20_000, horizon)
        .unwrap()
        .with_chunk_size(1_000)
        .unwrap();
    let factors = NAMES
        .iter()
        .zip(VOLS)
        .map(|(name, v)| {
            SimulatedFactor::new(RiskFactor::Spot(id(name)), ShockKind::Log, v).unwrap()
        })
        .collect();
    let corr = CorrelationMatrix::new(3, CORRELATION.to_vec()).unwrap();
    let g = MonteCarloGenerator::new(config, factors, &corr).unwrap();
    let market = market();
    for method in [Revaluation::Full, Revaluation::Sensitivity] {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| monte_carlo_risk(&book, &set, &market, &g, c99(), method).unwrap())
        };
        let one = run(1);
        assert_eq!(bits(&one), bits(&run(2)), "{method:?}");
        // And equal to materialising every scenario at once.
        let all = g.generate().unwrap();
        let arrays = RiskArrays::compute(&set, &market, &all, method).unwrap();
        let pnl = portfolio_pnl(&book, &arrays).unwrap();
        let rule = QuantileRule::Empirical;
        assert_eq!(
            one.value_at_risk.to_bits(),
            value_at_risk(&pnl, c99(), rule).unwrap().to_bits()
        );
        assert_eq!(
            one.expected_shortfall.to_bits(),
            expected_shortfall(&pnl, c99(), rule).unwrap().to_bits()
        );
    }
}

#[test]
fn options_book_has_finite_es_at_least_var() {
    let (set, book) = options_book();
    let horizon = YearFraction::from_days(2.0, DayBasis::Calendar365).unwrap();
    let g = generator(9, 30_000, horizon, ShockKind::Log, VOLS);
    for method in [Revaluation::Full, Revaluation::Sensitivity] {
        for level in [0.95, 0.99, 0.999] {
            let c = Confidence::new(level).unwrap();
            let r = monte_carlo_risk(&book, &set, &market(), &g, c, method).unwrap();
            println!("options book {method:?} {level}: {r:?}");
            assert!(r.value_at_risk.is_finite() && r.expected_shortfall.is_finite());
            assert!(r.expected_shortfall >= r.value_at_risk);
            assert!(
                r.value_at_risk > 0.0,
                "a short-option book loses in its tail"
            );
            assert!(r.var_standard_error.is_finite() && r.var_standard_error > 0.0);
            assert!(r.es_standard_error.is_finite() && r.es_standard_error > 0.0);
        }
    }
}

#[test]
fn empty_book_and_missing_market_data_are_typed_errors() {
    let (set, _) = options_book();
    let horizon = YearFraction::from_days(1.0, DayBasis::Calendar365).unwrap();
    let g = generator(1, 100, horizon, ShockKind::Log, VOLS);
    let empty = Portfolio::new(AccountId::new("empty"), vec![], &set).unwrap();
    let err = monte_carlo_risk(&empty, &set, &market(), &g, c99(), Revaluation::Full).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooFew {
                what: "portfolio positions",
                min: 1,
                got: 0
            }
        ),
        "{err:?}"
    );

    // A book on an underlying the market does not quote.
    let mut with_doge = set.clone();
    with_doge
        .insert(
            iid("DOGE-PERP"),
            Instrument::Perpetual(PerpetualContract::new(id("DOGE"))),
        )
        .unwrap();
    let book = Portfolio::new(
        AccountId::new("doge"),
        vec![
            Position::new(iid("BTC-PERP"), 1.0),
            Position::new(iid("DOGE-PERP"), 1.0),
        ],
        &with_doge,
    )
    .unwrap();
    let err =
        monte_carlo_risk(&book, &with_doge, &market(), &g, c99(), Revaluation::Full).unwrap_err();
    match &err {
        Error::InInstrument { id, source } => {
            assert_eq!(id, &iid("DOGE-PERP"));
            assert!(matches!(**source, Error::MissingUnderlying(ref u) if u == &id_doge()));
        }
        other => panic!("unexpected {other:?}"),
    }

    // A position whose instrument is not in the set passed.
    let err = monte_carlo_risk(&book, &set, &market(), &g, c99(), Revaluation::Full).unwrap_err();
    assert!(matches!(err, Error::UnknownInstrument(ref i) if i == &iid("DOGE-PERP")));

    // One path: no standard error.
    let one = generator(1, 1, horizon, ShockKind::Log, VOLS);
    let (set, book) = options_book();
    let err = monte_carlo_risk(&book, &set, &market(), &one, c99(), Revaluation::Full).unwrap_err();
    assert!(
        matches!(err, Error::TooFew { min: 2, got: 1, .. }),
        "{err:?}"
    );
}

fn id_doge() -> UnderlyingId {
    id("DOGE")
}
