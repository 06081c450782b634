//! Properties of the isolated and cross margin methodologies and of the
//! inter-underlying spread credits.
//!
//! Books are drawn at random over two underlyings (BTC, ETH) from spot,
//! linear and coin-settled perpetuals and futures, and calls and puts
//! (linear and coin-settled, Black-Scholes-Merton and Black-76) at five
//! strikes and three expiries; markets draw spot, rate, carry and a flat vol.
//! The runners use a fixed seed (set `PROPTEST_RNG_SEED` to explore).

use portfolio_margin::{
    AccountId, CrossMargin, CrossPolicy, FutureContract, Instrument, InstrumentId, InstrumentSet,
    IsolatedPolicy, MarketSnapshot, OffsetPolicy, OptionContract, OptionKind, OptionModel,
    PerpetualContract, Portfolio, Position, PutMinimumBasis, Settlement, SpreadCredit, Timestamp,
    UnderlyingExposure, UnderlyingId, UnderlyingMarket, VolSurface, cross_margin, isolated_margin,
};
use proptest::prelude::*;

/// Scaling every quantity by `k` scales margin by `k` up to rounding:
/// tolerance relative to the book's isolated (gross) margin, since netting
/// cancels large numbers.
const SCALING_REL_TOL: f64 = 1e-10;

/// Instruments listed by [`instruments`]: per underlying spot, two
/// perpetuals, and per expiry two futures and 20 options.
const N_INSTRUMENTS: usize = 2 * (3 + 3 * (2 + 20));

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x00C0_FFEE);
    }
    config.failure_persistence = None;
    config
}

fn as_of() -> Timestamp {
    Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn btc() -> UnderlyingId {
    UnderlyingId::new("BTC").unwrap()
}

fn eth() -> UnderlyingId {
    UnderlyingId::new("ETH").unwrap()
}

#[derive(Debug, Clone)]
struct Market {
    spots: [f64; 2],
    rate: f64,
    carry: f64,
    vol: f64,
}

fn market_strategy() -> impl Strategy<Value = Market> {
    (
        1_000.0..200_000.0f64,
        100.0..10_000.0f64,
        -0.01..0.08f64,
        0.0..0.05f64,
        0.2..1.2f64,
    )
        .prop_map(|(b, e, rate, carry, vol)| Market {
            spots: [b, e],
            rate,
            carry,
            vol,
        })
}

fn snapshot(m: &Market) -> MarketSnapshot {
    let mut builder = MarketSnapshot::builder(as_of());
    for (u, spot) in [btc(), eth()].into_iter().zip(m.spots) {
        builder = builder.underlying(
            u,
            UnderlyingMarket::new(spot, m.rate, m.carry, VolSurface::flat(m.vol).unwrap()).unwrap(),
        );
    }
    builder.build().unwrap()
}

/// Every instrument of both underlyings; strikes relative to each spot.
fn instruments(m: &Market) -> InstrumentSet {
    let mut set = InstrumentSet::new();
    let expiries =
        [30, 90, 365].map(|days| Timestamp::from_millis(as_of().millis() + days * 86_400_000));
    for (u, spot) in [btc(), eth()].into_iter().zip(m.spots) {
        let mut add =
            |name: String, i: Instrument| set.insert(InstrumentId::new(name).unwrap(), i).unwrap();
        add(format!("{u}-SPOT"), Instrument::Spot(u.clone()));
        add(
            format!("{u}-PERP"),
            Instrument::Perpetual(PerpetualContract::new(u.clone())),
        );
        add(
            format!("{u}-INV-PERP"),
            Instrument::Perpetual(
                PerpetualContract::new(u.clone())
                    .with_multiplier(100.0)
                    .unwrap()
                    .with_settlement(Settlement::Inverse),
            ),
        );
        for (e, expiry) in expiries.iter().enumerate() {
            add(
                format!("{u}-FUT-{e}"),
                Instrument::Future(
                    FutureContract::new(u.clone(), *expiry)
                        .with_multiplier(0.5)
                        .unwrap(),
                ),
            );
            add(
                format!("{u}-INV-FUT-{e}"),
                Instrument::Future(
                    FutureContract::new(u.clone(), *expiry)
                        .with_multiplier(10.0)
                        .unwrap()
                        .with_settlement(Settlement::Inverse),
                ),
            );
            for (s, moneyness) in [0.7, 0.9, 1.0, 1.1, 1.3].into_iter().enumerate() {
                for kind in [OptionKind::Call, OptionKind::Put] {
                    for (settlement, model) in [
                        (Settlement::Linear, OptionModel::BlackScholesMerton),
                        (Settlement::Inverse, OptionModel::Black76),
                    ] {
                        let option =
                            OptionContract::new(u.clone(), kind, spot * moneyness, *expiry)
                                .unwrap()
                                .with_settlement(settlement)
                                .with_model(model);
                        add(
                            format!("{u}-{e}-{s}-{kind:?}-{settlement:?}"),
                            Instrument::Option(option),
                        );
                    }
                }
            }
        }
    }
    set
}

/// A book: distinct instrument indices (0..n) with non-zero quantities.
fn book_strategy(n: usize) -> impl Strategy<Value = Vec<(usize, f64)>> {
    proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 1..12).prop_flat_map(|picked| {
        let len = picked.len();
        (
            Just(picked),
            proptest::collection::vec((0.01..50.0f64, any::<bool>()), len),
        )
            .prop_map(|(picked, sizes)| {
                picked
                    .into_iter()
                    .zip(sizes)
                    .map(|(i, (size, short))| (i, if short { -size } else { size }))
                    .collect()
            })
    })
}

fn portfolio(set: &InstrumentSet, book: &[(usize, f64)], scale: f64) -> Portfolio {
    let ids: Vec<InstrumentId> = set.iter().map(|l| l.id.clone()).collect();
    let positions = book
        .iter()
        .map(|(i, q)| Position::new(ids[*i].clone(), q * scale))
        .collect();
    Portfolio::new(AccountId::new("p"), positions, set).unwrap()
}

fn offsets() -> OffsetPolicy {
    OffsetPolicy::new(vec![
        SpreadCredit::from_correlation(btc(), eth(), 0.8, 0.8).unwrap(),
    ])
    .unwrap()
}

fn policies() -> [CrossPolicy; 2] {
    let deribit = IsolatedPolicy::default()
        .with_futures_fraction(0.02)
        .unwrap()
        .with_put_minimum_basis(PutMinimumBasis::UnderlyingValue)
        .with_long_spot_fraction(0.1)
        .unwrap();
    [
        CrossPolicy::new(IsolatedPolicy::default(), offsets(), 0.5).unwrap(),
        CrossPolicy::new(deribit, OffsetPolicy::default(), 0.8).unwrap(),
    ]
}

fn check_sane(m: &CrossMargin) {
    let r = m.requirement;
    assert!(r.initial().is_finite() && r.initial() >= 0.0);
    assert!(r.maintenance() >= 0.0 && r.maintenance() <= r.initial());
    let sum: f64 = m.underlyings.iter().map(|u| u.requirement.initial()).sum();
    assert_eq!(sum, r.initial());
    for u in &m.underlyings {
        for x in [
            u.gross_delta_notional,
            u.isolated_initial,
            u.option_premium,
            u.short_option_charge,
            u.delta_charge,
            u.spread_credit,
        ] {
            assert!(x.is_finite() && x >= 0.0, "{u:?}");
        }
        assert!(u.net_delta_notional.abs() <= u.gross_delta_notional * (1.0 + 1e-12));
        assert!(u.spread_credit <= u.delta_charge, "{u:?}");
        assert!(u.requirement.initial() <= u.isolated_initial, "{u:?}");
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn cross_is_sane_and_never_above_isolated(m in market_strategy(), book in book_strategy(N_INSTRUMENTS)) {
        let market = snapshot(&m);
        let set = instruments(&m);
        let p = portfolio(&set, &book, 1.0);
        for policy in policies() {
            let iso = isolated_margin(&p, &set, &market, policy.isolated()).unwrap();
            let cross = cross_margin(&p, &set, &market, &policy).unwrap();
            check_sane(&cross);
            // Exactly, not up to rounding.
            prop_assert!(cross.requirement.initial() <= iso.requirement.initial(),
                "cross {} > isolated {}", cross.requirement.initial(), iso.requirement.initial());
            let sum: f64 = iso.positions.iter().map(|x| x.requirement.initial()).sum();
            prop_assert!((sum - iso.requirement.initial()).abs() <= 1e-12 * sum.max(1.0));
            for x in &iso.positions {
                prop_assert!(x.requirement.initial().is_finite() && x.requirement.initial() >= x.premium);
            }
            // Spread credits never raise a requirement.
            let no_offsets = CrossPolicy::new(policy.isolated().clone(), OffsetPolicy::default(), 0.5).unwrap();
            let plain = cross_margin(&p, &set, &market, &no_offsets).unwrap();
            prop_assert!(plain.credits.is_empty());
            for (a, b) in cross.underlyings.iter().zip(&plain.underlyings) {
                prop_assert!(a.requirement.initial() <= b.requirement.initial());
            }
        }
    }

    #[test]
    fn position_order_does_not_matter(m in market_strategy(), book in book_strategy(N_INSTRUMENTS), rotate in 0usize..12) {
        let market = snapshot(&m);
        let set = instruments(&m);
        let p = portfolio(&set, &book, 1.0);
        let mut shuffled = book.clone();
        shuffled.reverse();
        let r = rotate % shuffled.len();
        shuffled.rotate_left(r);
        let q = portfolio(&set, &shuffled, 1.0);
        for policy in policies() {
            // Bit-identical: sums run in id order.
            prop_assert_eq!(
                cross_margin(&p, &set, &market, &policy).unwrap(),
                cross_margin(&q, &set, &market, &policy).unwrap()
            );
            prop_assert_eq!(
                isolated_margin(&p, &set, &market, policy.isolated()).unwrap().requirement,
                isolated_margin(&q, &set, &market, policy.isolated()).unwrap().requirement
            );
        }
    }

    #[test]
    fn margin_scales_with_quantity(m in market_strategy(), book in book_strategy(N_INSTRUMENTS), k in 0.05..20.0f64) {
        let market = snapshot(&m);
        let set = instruments(&m);
        let p = portfolio(&set, &book, 1.0);
        let pk = portfolio(&set, &book, k);
        for policy in policies() {
            let iso = isolated_margin(&p, &set, &market, policy.isolated()).unwrap().requirement.initial();
            let iso_k = isolated_margin(&pk, &set, &market, policy.isolated()).unwrap().requirement.initial();
            let tol = SCALING_REL_TOL * k * iso.max(1.0);
            prop_assert!((iso_k - k * iso).abs() <= tol, "isolated {iso_k} vs {k} x {iso}");
            let c = cross_margin(&p, &set, &market, &policy).unwrap().requirement.initial();
            let c_k = cross_margin(&pk, &set, &market, &policy).unwrap().requirement.initial();
            prop_assert!((c_k - k * c).abs() <= tol, "cross {c_k} vs {k} x {c}");
        }
    }
}

#[derive(Debug, Clone)]
struct Exposures {
    requirement: [f64; 4],
    delta: [f64; 4],
    credits: Vec<(usize, usize, f64, f64)>,
}

fn names() -> [UnderlyingId; 4] {
    ["A", "B", "C", "D"].map(|s| UnderlyingId::new(s).unwrap())
}

fn exposures_strategy() -> impl Strategy<Value = Exposures> {
    let pairs: Vec<(usize, usize)> = (0..4)
        .flat_map(|a| (0..4).map(move |b| (a, b)))
        .filter(|(a, b)| a < b)
        .collect();
    (
        proptest::array::uniform4(0.0..1e6f64),
        proptest::array::uniform4(prop_oneof![1 => Just(0.0), 6 => -1e7..1e7f64]),
        proptest::sample::subsequence(pairs, 0..6),
        proptest::collection::vec((0.01..=1.0f64, 0.1..10.0f64, any::<bool>()), 6),
        any::<proptest::sample::Index>(),
    )
        .prop_map(|(requirement, delta, pairs, params, shuffle)| {
            let mut credits: Vec<(usize, usize, f64, f64)> = pairs
                .into_iter()
                .zip(params)
                .map(|((a, b), (rate, ratio, flip))| {
                    if flip {
                        (b, a, rate, ratio)
                    } else {
                        (a, b, rate, ratio)
                    }
                })
                .collect();
            if !credits.is_empty() {
                let r = shuffle.index(credits.len());
                credits.rotate_left(r);
            }
            Exposures {
                requirement,
                delta,
                credits,
            }
        })
}

fn policy_of(e: &Exposures) -> OffsetPolicy {
    let n = names();
    OffsetPolicy::new(
        e.credits
            .iter()
            .map(|&(a, b, rate, ratio)| {
                SpreadCredit::new(n[a].clone(), n[b].clone(), rate, ratio).unwrap()
            })
            .collect(),
    )
    .unwrap()
}

fn exposure_list(e: &Exposures, scale: f64) -> Vec<UnderlyingExposure> {
    names()
        .into_iter()
        .enumerate()
        .map(|(i, underlying)| UnderlyingExposure {
            underlying,
            requirement: e.requirement[i] * scale,
            delta_notional: e.delta[i] * scale,
        })
        .collect()
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn credits_never_make_a_requirement_negative(e in exposures_strategy(), k in 0.01..100.0f64) {
        let policy = policy_of(&e);
        let exposures = exposure_list(&e, 1.0);
        let applied = policy.apply(&exposures).unwrap();
        let mut received = [0.0f64; 4];
        let n = names();
        for c in &applied {
            prop_assert!(c.credit_a >= 0.0 && c.credit_b >= 0.0 && c.spread_notional > 0.0);
            received[n.iter().position(|u| *u == c.a).unwrap()] += c.credit_a;
            received[n.iter().position(|u| *u == c.b).unwrap()] += c.credit_b;
        }
        for (i, (requirement, credit)) in e.requirement.iter().zip(received).enumerate() {
            prop_assert!(requirement - credit >= 0.0,
                "underlying {i}: requirement {requirement} credit {credit}");
        }
        // The allocation-free path gives the same total, bit for bit.
        let resolved = policy.resolve(|u| n.iter().position(|x| x == u));
        let mut scratch = [f64::NAN; 8];
        let total = resolved.total_credit(&e.requirement, &e.delta, &mut scratch).unwrap();
        let sum: f64 = applied.iter().map(|c| c.credit_a + c.credit_b).sum();
        prop_assert_eq!(total, sum);
        // Homogeneous of degree 1.
        let scaled: f64 = policy.apply(&exposure_list(&e, k)).unwrap().iter().map(|c| c.credit_a + c.credit_b).sum();
        prop_assert!((scaled - k * sum).abs() <= 1e-9 * k * (sum + 1.0));
    }
}

/// A basis trade (long perpetual, short dated future, same underlying)
/// needs far less than its naked legs: only the carry between the
/// perpetual (spot) and the future (forward) is left.
#[test]
fn hedged_basis_trade_needs_far_less_than_its_legs() {
    let m = Market {
        spots: [100_000.0, 4_000.0],
        rate: 0.05,
        carry: 0.0,
        vol: 0.5,
    };
    let market = snapshot(&m);
    let set = instruments(&m);
    let perp = InstrumentId::new("BTC-PERP").unwrap();
    let future = InstrumentId::new("BTC-FUT-1").unwrap(); // 90 days, multiplier 0.5
    let book = Portfolio::new(
        AccountId::new("basis"),
        vec![Position::new(perp, 10.0), Position::new(future, -20.0)],
        &set,
    )
    .unwrap();
    let policy = CrossPolicy::default();
    let iso = isolated_margin(&book, &set, &market, policy.isolated()).unwrap();
    let cross = cross_margin(&book, &set, &market, &policy).unwrap();
    let forward = 100_000.0 * (0.05 * 90.0 / 365.0f64).exp();
    // Isolated: 15% of each leg, 1 000 000 + 10 x forward.
    let legs = 0.15 * (1_000_000.0 + 10.0 * forward);
    assert!((iso.requirement.initial() - legs).abs() < 1e-6);
    // Cross: 15% of the net, 10 x (forward - spot) short.
    let net = 0.15 * 10.0 * (forward - 100_000.0);
    assert!(
        (cross.requirement.initial() - net).abs() < 1e-6,
        "{}",
        cross.requirement.initial()
    );
    assert!(cross.requirement.initial() < 0.01 * iso.requirement.initial());
    // Coin-settled legs hedge the same way: short 10 000 inverse perpetual
    // contracts of 100 USD face (1 000 000 USD) against long 1 000 000 USD
    // of linear perpetual (10 BTC).
    let inverse = Portfolio::new(
        AccountId::new("inverse"),
        vec![
            Position::new(InstrumentId::new("BTC-PERP").unwrap(), 10.0),
            Position::new(InstrumentId::new("BTC-INV-PERP").unwrap(), -10_000.0),
        ],
        &set,
    )
    .unwrap();
    let iso = isolated_margin(&inverse, &set, &market, policy.isolated()).unwrap();
    let cross = cross_margin(&inverse, &set, &market, &policy).unwrap();
    assert!((iso.requirement.initial() - 300_000.0).abs() < 1e-6);
    assert!(
        cross.requirement.initial() < 1e-6,
        "{}",
        cross.requirement.initial()
    );
}

/// Credits between correlated underlyings reduce the cross requirement of a
/// long-BTC / short-ETH book by the hand-computed amount.
#[test]
fn inter_underlying_credit_on_a_pair_trade() {
    let m = Market {
        spots: [100_000.0, 4_000.0],
        rate: 0.0,
        carry: 0.0,
        vol: 0.5,
    };
    let market = snapshot(&m);
    let set = instruments(&m);
    let book = Portfolio::new(
        AccountId::new("pair"),
        vec![
            Position::new(InstrumentId::new("BTC-PERP").unwrap(), 2.0),
            Position::new(InstrumentId::new("ETH-PERP").unwrap(), -25.0),
        ],
        &set,
    )
    .unwrap();
    // rho = 0.8, 80% granted: rate = 0.8 x (1 - sqrt(0.1)).
    let rate = 0.8 * (1.0 - 0.1f64.sqrt());
    let cross = cross_margin(&book, &set, &market, &policies()[0]).unwrap();
    // BTC: 200 000 long, charge 30 000; ETH: 100 000 short, charge 15 000.
    // Spreads 100 000: BTC gets rate x 30 000 x 0.5, ETH rate x 15 000.
    let expected = 45_000.0 - rate * (15_000.0 + 15_000.0);
    assert!((cross.requirement.initial() - expected).abs() < 1e-9);
    assert_eq!(cross.credits.len(), 1);
    assert_eq!(cross.credits[0].spread_notional, 100_000.0);
}

#[test]
fn instrument_count() {
    let m = Market {
        spots: [1.0, 1.0],
        rate: 0.0,
        carry: 0.0,
        vol: 0.5,
    };
    assert_eq!(instruments(&m).len(), N_INSTRUMENTS);
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CrossPolicy>();
    check::<CrossMargin>();
    check::<OffsetPolicy>();
    check::<portfolio_margin::ResolvedOffsets>();
    check::<portfolio_margin::IsolatedMargin>();
}
