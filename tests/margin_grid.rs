//! Scenario-grid portfolio margin: risk arrays against direct pricing,
//! hand-computed presets, and the properties the margin issue asks for
//! (non-negative and finite, hedges reduce margin, sub-additivity,
//! homogeneity, order independence, batch = single, what-if = margin with
//! the order).

mod common;

use common::{as_of, days, flat_market, id};
use portfolio_margin::*;
use proptest::prelude::*;

/// Risk arrays vs a direct Black-Scholes repricing (batch kernel 1e-13).
const ARRAY_VS_PRICE_RELATIVE: f64 = 1e-11;
/// What-if vs margining with the order: sums formed in another order.
const WHAT_IF_RELATIVE: f64 = 1e-12;

fn market() -> MarketSnapshot {
    flat_market(&[
        ("BTC", 100_000.0, 0.0, 0.0, 0.55),
        ("ETH", 4_000.0, 0.0, 0.0, 0.70),
    ])
}

/// A small crypto listing: BTC coin-settled options, future and perpetual;
/// ETH linear options and perpetual.
fn instruments() -> InstrumentSet {
    let mut set = InstrumentSet::new();
    let mut add = |name: &str, i: Instrument| {
        set.insert(InstrumentId::new(name).unwrap(), i).unwrap();
    };
    for (name, kind, strike, d) in [
        ("BTC-C110-30", OptionKind::Call, 110_000.0, 30.0),
        ("BTC-P90-30", OptionKind::Put, 90_000.0, 30.0),
        ("BTC-C100-7", OptionKind::Call, 100_000.0, 7.0),
        ("BTC-P60-90", OptionKind::Put, 60_000.0, 90.0),
    ] {
        add(
            name,
            Instrument::Option(
                OptionContract::new(id("BTC"), kind, strike, days(d))
                    .unwrap()
                    .with_settlement(Settlement::Inverse)
                    .with_model(OptionModel::Black76),
            ),
        );
    }
    add(
        "BTC-FUT-30",
        Instrument::Future(
            FutureContract::new(id("BTC"), days(30.0))
                .with_multiplier(10.0)
                .unwrap()
                .with_settlement(Settlement::Inverse),
        ),
    );
    add(
        "BTC-PERP",
        Instrument::Perpetual(PerpetualContract::new(id("BTC"))),
    );
    for (name, kind, strike, d) in [
        ("ETH-C4400-30", OptionKind::Call, 4_400.0, 30.0),
        ("ETH-P3600-30", OptionKind::Put, 3_600.0, 30.0),
    ] {
        add(
            name,
            Instrument::Option(OptionContract::new(id("ETH"), kind, strike, days(d)).unwrap()),
        );
    }
    add(
        "ETH-PERP",
        Instrument::Perpetual(PerpetualContract::new(id("ETH"))),
    );
    set
}

fn names() -> Vec<&'static str> {
    vec![
        "BTC-C110-30",
        "BTC-P90-30",
        "BTC-C100-7",
        "BTC-P60-90",
        "BTC-FUT-30",
        "BTC-PERP",
        "ETH-C4400-30",
        "ETH-P3600-30",
        "ETH-PERP",
    ]
}

fn book(positions: &[(&str, f64)]) -> Vec<Position> {
    positions
        .iter()
        .map(|(n, q)| Position::new(InstrumentId::new(*n).unwrap(), *q))
        .collect()
}

fn initial(engine: &GridMarginEngine, positions: &[Position]) -> f64 {
    let account = engine.account_from_positions(positions).unwrap();
    engine.requirement(&account).unwrap().initial()
}

#[test]
fn deribit_risk_array_matches_direct_pricing_with_term_scaled_vols() {
    let set = instruments();
    let m = market();
    let policy = GridPolicy::deribit_style();
    let engine = GridMarginEngine::new(&set, &m, policy.clone()).unwrap();
    let scaling = policy.vol.term_scaling.unwrap();
    let points = engine.scenario_points(&id("BTC")).unwrap().to_vec();
    for name in ["BTC-C100-7", "BTC-P60-90"] {
        let iid = InstrumentId::new(name).unwrap();
        let Instrument::Option(o) = set.get(&iid).unwrap().clone() else {
            panic!()
        };
        let years = m.years_to(o.expiry());
        let base = black_scholes(
            &BsInputs::new(
                o.kind(),
                o.model(),
                100_000.0,
                o.strike(),
                years,
                0.55,
                0.0,
                0.0,
            )
            .unwrap(),
        )
        .value
            / 100_000.0;
        let losses = engine.loss_array(engine.instrument_index(&iid).unwrap());
        for (s, p) in points.iter().enumerate() {
            let spot = 100_000.0 * (1.0 + p.price_move);
            let size = match p.vol {
                VolPoint::Down => -0.25,
                VolPoint::Same => 0.0,
                VolPoint::Up => 0.5,
            };
            let vol = scaling.shocked_vol(ShockKind::Relative, 0.55, size, years * 365.0);
            let v = black_scholes(
                &BsInputs::new(o.kind(), o.model(), spot, o.strike(), years, vol, 0.0, 0.0)
                    .unwrap(),
            )
            .value
                / spot;
            // Coin P&L valued in USD at the shocked spot, weighted, as a loss.
            let expected = -(v - base) * spot * p.weight;
            let got = losses[s];
            assert!(
                (got - expected).abs() <= ARRAY_VS_PRICE_RELATIVE * expected.abs().max(1.0),
                "{name} scenario {s} ({}): got {got}, expected {expected}",
                p.name()
            );
        }
    }
}

#[test]
fn span_futures_position_takes_the_larger_of_the_range_and_the_covered_extreme() {
    let set = instruments();
    let engine = GridMarginEngine::new(
        &set,
        &market(),
        GridPolicy::cme_span_16(0.08, 0.04).unwrap(),
    )
    .unwrap();
    // 1 ETH perp long: range loss 8% of 4,000 = 320; extreme 3 x 8% x 35% = 8.4% = 336.
    let m = engine
        .margin(
            &engine
                .account_from_positions(&book(&[("ETH-PERP", 1.0)]))
                .unwrap(),
        )
        .unwrap();
    assert!((m.requirement.initial() - 336.0).abs() < 1e-9, "{m:?}");
    assert!((m.requirement.maintenance() - 336.0 / 1.1).abs() < 1e-9);
    let u = &m.underlyings[0];
    assert_eq!(
        u.worst_scenario_name,
        "extreme price -24.00% (35% counted), vol unchanged"
    );
    assert_eq!(u.binding, GridCharge::ScanRisk);
    assert_eq!(m.worst.as_ref().unwrap().0, id("ETH"));
    // Contributions sum to the scan risk.
    let total: f64 = u.positions.iter().map(|p| p.loss_at_worst).sum();
    assert!((total - u.scan_risk).abs() < 1e-9);
}

#[test]
fn finra_minimum_binds_for_far_out_of_the_money_options() {
    let mut set = InstrumentSet::new();
    let spx = id("SPX");
    let far = OptionContract::new(spx.clone(), OptionKind::Put, 3_000.0, days(30.0))
        .unwrap()
        .with_multiplier(100.0)
        .unwrap();
    set.insert(
        InstrumentId::new("SPX-P3000").unwrap(),
        Instrument::Option(far),
    )
    .unwrap();
    let m = MarketSnapshot::builder(as_of())
        .underlying(
            spx,
            UnderlyingMarket::new(6_000.0, 0.04, 0.0, VolSurface::flat(0.15).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let engine = GridMarginEngine::new(
        &set,
        &m,
        GridPolicy::finra_4210(FinraPortfolioType::HighCapBroadIndex),
    )
    .unwrap();
    // A -8% move does not bring a 50% OTM put into play: the minimum of
    // $0.375 x 100 per contract binds for 10 short contracts.
    let r = engine
        .margin(
            &engine
                .account_from_positions(&book(&[("SPX-P3000", -10.0)]))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(r.underlyings[0].binding, GridCharge::OptionMinimum);
    assert!((r.requirement.initial() - 375.0).abs() < 1e-9);
    // Long: capped at the (tiny) premium.
    let long = engine
        .margin(
            &engine
                .account_from_positions(&book(&[("SPX-P3000", 10.0)]))
                .unwrap(),
        )
        .unwrap();
    assert!(long.requirement.initial() < 375.0);
}

#[test]
fn concentration_add_on_is_itemised_and_tiered() {
    let set = instruments();
    let mut policy = GridPolicy::cme_span_16(0.08, 0.04).unwrap();
    policy.concentration = Concentration {
        default_depth: None,
        depths: vec![MarketDepth {
            underlying: id("ETH"),
            notional: 1_000_000.0,
        }],
        tiers: vec![
            ConcentrationTier {
                above: 1.0,
                rate: 0.01,
            },
            ConcentrationTier {
                above: 2.0,
                rate: 0.03,
            },
        ],
    };
    let engine = GridMarginEngine::new(&set, &market(), policy).unwrap();
    // 1,000 ETH perps = 4M notional: 1% of 1M + 3% of 2M = 70,000.
    let m = engine
        .margin(
            &engine
                .account_from_positions(&book(&[("ETH-PERP", 1_000.0)]))
                .unwrap(),
        )
        .unwrap();
    assert!((m.concentration_add_on - 70_000.0).abs() < 1e-6);
    assert!((m.requirement.initial() - (336_000.0 + 70_000.0)).abs() < 1e-6);
}

#[test]
fn minimum_delta_charge_floors_a_small_scan() {
    let set = instruments();
    let mut policy = GridPolicy::cme_span_16(0.01, 0.01).unwrap();
    policy.min_delta_charge = 0.05;
    let engine = GridMarginEngine::new(&set, &market(), policy).unwrap();
    let m = engine
        .margin(
            &engine
                .account_from_positions(&book(&[("ETH-PERP", -2.0)]))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(m.underlyings[0].binding, GridCharge::DeltaCharge);
    assert!((m.requirement.initial() - 0.05 * 8_000.0).abs() < 1e-9);
}

#[test]
fn empty_account_needs_nothing_and_errors_name_the_input() {
    let set = instruments();
    let engine = GridMarginEngine::new(&set, &market(), GridPolicy::deribit_style()).unwrap();
    let empty = engine.account_from_positions(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(engine.requirement(&empty).unwrap(), MarginRequirement::ZERO);
    assert!(matches!(
        engine.account_from_positions(&book(&[("NOPE", 1.0)])),
        Err(Error::UnknownInstrument(_))
    ));
    assert!(matches!(
        engine.account_from_positions(&[Position::new(
            InstrumentId::new("BTC-PERP").unwrap(),
            f64::NAN
        )]),
        Err(Error::InvalidElement { .. })
    ));
    let state = engine.state(&empty).unwrap();
    let perp = engine
        .instrument_index(&InstrumentId::new("BTC-PERP").unwrap())
        .unwrap();
    assert!(
        engine
            .what_if(
                &state,
                Order {
                    instrument: perp,
                    quantity: 1e300
                }
            )
            .is_err()
    );
    // A market without ETH: the engine names what is missing.
    let btc_only = MarketSnapshot::builder(as_of())
        .underlying(
            id("BTC"),
            UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.55).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    assert!(matches!(
        GridMarginEngine::new(&set, &btc_only, GridPolicy::deribit_style()),
        Err(Error::MissingUnderlying(_))
    ));
    let mut bad = GridPolicy::deribit_style();
    bad.horizon_days = -1.0;
    assert!(matches!(
        GridMarginEngine::new(&set, &market(), bad),
        Err(Error::InvalidInput {
            what: "grid horizon days",
            ..
        })
    ));
}

#[cfg(feature = "serde")]
#[test]
fn policies_round_trip_through_json_and_reject_bad_fields() {
    for p in [
        GridPolicy::deribit_style(),
        GridPolicy::cme_span_16(0.1, 0.05).unwrap(),
        GridPolicy::finra_4210(FinraPortfolioType::MarginEquity),
    ] {
        let json = serde_json::to_string(&p).unwrap();
        let back: GridPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
    let json = serde_json::to_string(&GridPolicy::deribit_style()).unwrap();
    let bad = json.replace(
        "\"maintenance_fraction\":0.8",
        "\"maintenance_fraction\":1.5",
    );
    let err = serde_json::from_str::<GridPolicy>(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("grid maintenance fraction"), "{err}");
    let unknown = json.replacen('{', "{\"surprise\":1,", 1);
    let err = serde_json::from_str::<GridPolicy>(&unknown)
        .unwrap_err()
        .to_string();
    assert!(err.contains("surprise"), "{err}");
}

fn positions_strategy() -> impl Strategy<Value = Vec<(usize, f64)>> {
    prop::collection::vec((0..9usize, -50.0..50.0f64), 0..12)
}

fn to_positions(raw: &[(usize, f64)]) -> Vec<Position> {
    let names = names();
    raw.iter()
        .filter(|(_, q)| q.abs() > 1e-9)
        .map(|(k, q)| {
            Position::new(
                InstrumentId::new(names[*k]).unwrap(),
                (q * 4.0).round() / 4.0,
            )
        })
        .filter(|p| p.quantity != 0.0)
        .collect()
}

fn engines() -> Vec<GridMarginEngine> {
    let set = instruments();
    let m = market();
    vec![
        GridMarginEngine::new(&set, &m, GridPolicy::deribit_style()).unwrap(),
        GridMarginEngine::new(&set, &m, GridPolicy::cme_span_16(0.1, 0.05).unwrap()).unwrap(),
        GridMarginEngine::new(
            &set,
            &m,
            GridPolicy::finra_4210(FinraPortfolioType::MarginEquity),
        )
        .unwrap(),
        GridMarginEngine::new(&set, &m, span_with_credits()).unwrap(),
    ]
}

/// SPAN-style grid with a BTC/ETH inter-commodity credit from a 0.8
/// correlation, 30% of it withdrawn as a correlation-break add-on.
fn span_with_credits() -> GridPolicy {
    let mut p = GridPolicy::cme_span_16(0.1, 0.05).unwrap();
    p.offsets = OffsetPolicy::new(vec![
        SpreadCredit::from_correlation(id("BTC"), id("ETH"), 0.8, 1.0).unwrap(),
    ])
    .unwrap();
    p.correlation_break = 0.3;
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e1d), ..ProptestConfig::default() })]

    #[test]
    fn grid_margin_properties(a in positions_strategy(), b in positions_strategy(), k in 1u32..5) {
        for engine in engines() {
            let pa = to_positions(&a);
            let pb = to_positions(&b);
            let ma = initial(&engine, &pa);
            let mb = initial(&engine, &pb);
            // Non-negative and finite; maintenance below initial.
            let ra = engine.requirement(&engine.account_from_positions(&pa).unwrap()).unwrap();
            prop_assert!(ma.is_finite() && ma >= 0.0);
            prop_assert!(ra.maintenance() <= ra.initial());
            // Sub-additive: two books together never need more than apart.
            // SPAN-style spread credits depend on the direction of each
            // underlying's delta and are not sub-additive (see
            // `spread_credits_are_not_sub_additive`): with credits, the
            // combined book stays below the two books' margins before credits.
            let both: Vec<Position> = pa.iter().chain(&pb).cloned().collect();
            let mab = initial(&engine, &both);
            let (ca, cb) = if engine.policy().offsets.credits().is_empty() {
                (ma, mb)
            } else {
                let gross = |p: &[Position]| {
                    let m = engine.margin(&engine.account_from_positions(p).unwrap()).unwrap();
                    m.sum_of_underlyings + m.concentration_add_on
                };
                (gross(&pa), gross(&pb))
            };
            prop_assert!(mab <= (ca + cb) * (1.0 + 1e-12) + 1e-9, "{} > {} + {}", mab, ca, cb);
            // Positive homogeneity (no concentration add-on in these presets).
            let scaled: Vec<Position> = pa.iter().map(|p| Position::new(p.instrument.clone(), p.quantity * f64::from(k))).collect();
            let mk = initial(&engine, &scaled);
            prop_assert!((mk - f64::from(k) * ma).abs() <= 1e-12 * mk.max(1.0), "{} vs {} x {}", mk, k, ma);
            // Order does not matter: bit for bit.
            let mut reversed = pa.clone();
            reversed.reverse();
            prop_assert_eq!(initial(&engine, &reversed).to_bits(), ma.to_bits());
            // Batch = one by one, bit for bit.
            let accounts = vec![
                engine.account_from_positions(&pa).unwrap(),
                engine.account_from_positions(&pb).unwrap(),
                engine.account_from_positions(&both).unwrap(),
            ];
            let batch = engine.margin_batch(&accounts);
            for (acct, r) in accounts.iter().zip(batch) {
                prop_assert_eq!(r.unwrap(), engine.requirement(acct).unwrap());
            }
            // The breakdown reports the same requirement.
            prop_assert_eq!(engine.margin(&accounts[0]).unwrap().requirement, ra);
            // What-if = margin with the order included.
            let state = engine.state(&accounts[0]).unwrap();
            prop_assert_eq!(state.requirement(), ra);
            for (n, q) in [(5usize, 3.0), (0, -2.5), (8, 7.0), (3, 1.0)] {
                let iid = InstrumentId::new(names()[n]).unwrap();
                let order = Order { instrument: engine.instrument_index(&iid).unwrap(), quantity: q };
                let got = engine.what_if(&state, order).unwrap();
                let mut with = pa.clone();
                with.push(Position::new(iid, q));
                let expected = engine.requirement(&engine.account_from_positions(&with).unwrap()).unwrap();
                prop_assert!((got.initial() - expected.initial()).abs() <= WHAT_IF_RELATIVE * expected.initial().max(1.0),
                    "what-if {} vs {}", got.initial(), expected.initial());
                let mut applied = state.clone();
                engine.apply_order(&mut applied, order).unwrap();
                prop_assert_eq!(applied.requirement(), expected);
            }
        }
    }
}

type Legs = &'static [(&'static str, f64)];

#[test]
fn hedges_need_less_than_their_naked_legs() {
    for engine in engines() {
        let cases: [(Legs, Legs); 4] = [
            // Long perp hedged by a short future.
            (&[("BTC-PERP", 10.0)], &[("BTC-FUT-30", -1000.0)]),
            // Covered call.
            (&[("ETH-PERP", 10.0)], &[("ETH-C4400-30", -10.0)]),
            // Protective put.
            (&[("ETH-PERP", 10.0)], &[("ETH-P3600-30", 10.0)]),
            // Short call hedged by a long perp (delta hedge).
            (&[("BTC-C110-30", -1.0)], &[("BTC-PERP", 0.3)]),
        ];
        for (leg_a, leg_b) in cases {
            let a = initial(&engine, &book(leg_a));
            let b = initial(&engine, &book(leg_b));
            let both: Vec<(&str, f64)> = leg_a.iter().chain(leg_b).cloned().collect();
            let ab = initial(&engine, &book(&both));
            assert!(
                ab < a + b,
                "{}: {leg_a:?} + {leg_b:?}: {ab} >= {a} + {b}",
                engine.policy().name
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(0x4ed9e), ..ProptestConfig::default() })]

    /// Hedges as a property: a directional leg of random size and sign
    /// against a hedge of a random fraction of it (the hedge's direction
    /// follows the leg's) needs strictly less than the two legs margined
    /// apart, under every grid policy.
    #[test]
    fn hedges_of_any_size_need_less_than_their_legs(
        template in 0usize..4,
        q in 1.0..50.0f64,
        fraction in 0.1..1.0f64,
        short in any::<bool>(),
    ) {
        let sign = if short { -1.0 } else { 1.0 };
        let q = sign * (q * 4.0).round() / 4.0;
        let h = |x: f64| (x * 100.0).round() / 100.0;
        let (leg, hedge): ((&str, f64), (&str, f64)) = match template {
            // Perpetual against a future (100 futures of $10 hedge about a
            // 1,000-dollar slice; sized to the same USD notional).
            0 => (("BTC-PERP", q), ("BTC-FUT-30", -h(q * fraction * 10_000.0))),
            // Covered call (or a short perp with a long call).
            1 => (("ETH-PERP", q), ("ETH-C4400-30", -h(q * fraction))),
            // Protective put (or a short perp with a short put).
            2 => (("ETH-PERP", q), ("ETH-P3600-30", h(q * fraction))),
            // A short (or long) call against a fraction of its delta.
            _ => (("BTC-C110-30", -q), ("BTC-PERP", h(q * fraction * 0.3))),
        };
        prop_assume!(hedge.1 != 0.0);
        for engine in engines() {
            let a = initial(&engine, &book(&[leg]));
            let b = initial(&engine, &book(&[hedge]));
            let ab = initial(&engine, &book(&[leg, hedge]));
            prop_assert!(
                ab < a + b,
                "{}: {leg:?} + {hedge:?}: {ab} >= {a} + {b}",
                engine.policy().name
            );
        }
    }
}

#[test]
fn batch_is_thread_count_independent() {
    let engine = &engines()[0];
    let names = names();
    let accounts: Vec<GridAccount> = (0..2000)
        .map(|i| {
            let positions: Vec<Position> = (0..5)
                .map(|j| {
                    let n = (i * 7 + j * 3) % names.len();
                    Position::new(
                        InstrumentId::new(names[n]).unwrap(),
                        ((i + j) % 11) as f64 - 5.0,
                    )
                })
                .collect();
            engine.account_from_positions(&positions).unwrap()
        })
        .collect();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| engine.margin_batch(&accounts))
    };
    let one: Vec<u64> = run(1)
        .into_iter()
        .map(|r| r.unwrap().initial().to_bits())
        .collect();
    let four: Vec<u64> = run(4)
        .into_iter()
        .map(|r| r.unwrap().initial().to_bits())
        .collect();
    assert_eq!(one, four);
}

#[test]
fn margin_change_splits_into_positions_market_and_parameters() {
    let set = instruments();
    let m0 = market();
    let m1 = MarketSnapshot::builder(as_of())
        .underlying(
            id("BTC"),
            UnderlyingMarket::new(90_000.0, 0.0, 0.0, VolSurface::flat(0.65).unwrap()).unwrap(),
        )
        .underlying(
            id("ETH"),
            UnderlyingMarket::new(4_000.0, 0.0, 0.0, VolSurface::flat(0.70).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let p0 = GridPolicy::cme_span_16(0.08, 0.04).unwrap();
    let p1 = GridPolicy::cme_span_16(0.10, 0.04).unwrap();
    let b0 = book(&[("BTC-C110-30", -5.0), ("ETH-PERP", 3.0)]);
    let b1 = book(&[("BTC-C110-30", -5.0), ("ETH-PERP", 3.0), ("BTC-PERP", 2.0)]);
    let state = |positions: &'static [Position], market, policy| MarginState {
        positions,
        market,
        policy,
    };
    let (b0, b1): (&'static [Position], &'static [Position]) = (
        Box::leak(b0.into_boxed_slice()),
        Box::leak(b1.into_boxed_slice()),
    );
    // Only the parameters change: all of it is parameters.
    let c = explain_margin_change(&set, state(b0, &m0, &p0), state(b0, &m0, &p1)).unwrap();
    assert!(c.change > 0.0);
    assert_eq!((c.positions, c.market), (0.0, 0.0));
    assert!((c.parameters - c.change).abs() < 1e-9);
    // Everything changes: the three parts sum to the change, and the
    // endpoints are the engines' own margins.
    let c = explain_margin_change(&set, state(b0, &m0, &p0), state(b1, &m1, &p1)).unwrap();
    assert!(
        (c.positions + c.market + c.parameters - c.change).abs() <= 1e-9 * c.change.abs().max(1.0)
    );
    let engine = GridMarginEngine::new(&set, &m1, p1.clone()).unwrap();
    let direct = engine
        .requirement(&engine.account_from_positions(b1).unwrap())
        .unwrap();
    assert_eq!(c.after, direct);
    assert!(c.positions != 0.0 && c.market != 0.0 && c.parameters != 0.0);
    assert_eq!(c.per_underlying.len(), 2);
}

#[test]
fn spread_credits_between_underlyings_are_itemised_and_partly_withdrawn() {
    let set = instruments();
    let engine = GridMarginEngine::new(&set, &market(), span_with_credits()).unwrap();
    // Long 1 BTC perp (100,000) against short 25 ETH perps (100,000): a full spread.
    let m = engine
        .margin(
            &engine
                .account_from_positions(&book(&[("BTC-PERP", 1.0), ("ETH-PERP", -25.0)]))
                .unwrap(),
        )
        .unwrap();
    let rate = 1.0 - (0.1f64).sqrt(); // 1 - sqrt((1 - 0.8) / 2)
    // Each leg: 10.5% of 100,000 (the covered extreme move binds).
    let leg = 10_500.0;
    assert!((m.sum_of_underlyings - 2.0 * leg).abs() < 1e-6);
    assert_eq!(m.credits.len(), 1);
    assert!((m.spread_credit - 2.0 * rate * leg).abs() < 1e-6, "{m:?}");
    assert!((m.correlation_break_add_on - 0.3 * m.spread_credit).abs() < 1e-9);
    let expected = 2.0 * leg - 0.7 * m.spread_credit;
    assert!((m.requirement.initial() - expected).abs() < 1e-6);
    // Same direction: no credit.
    let same = engine
        .margin(
            &engine
                .account_from_positions(&book(&[("BTC-PERP", 1.0), ("ETH-PERP", 25.0)]))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(same.spread_credit, 0.0);
    assert!((same.requirement.initial() - 2.0 * leg).abs() < 1e-6);
}

/// Found by the sub-additivity property: SPAN-style inter-commodity credits
/// need opposite deltas, so a book that earns a credit alone can lose it
/// when combined with a book that flips one underlying's delta.
#[test]
fn spread_credits_are_not_sub_additive() {
    let set = instruments();
    let engine = GridMarginEngine::new(&set, &market(), span_with_credits()).unwrap();
    let a = book(&[("BTC-C100-7", 7.5), ("BTC-PERP", -7.25)]);
    let b = book(&[("BTC-P90-30", 45.0), ("ETH-C4400-30", 28.75)]);
    let both: Vec<Position> = a.iter().chain(&b).cloned().collect();
    let (ma, mb, mab) = (
        initial(&engine, &a),
        initial(&engine, &b),
        initial(&engine, &both),
    );
    assert!(
        engine
            .margin(&engine.account_from_positions(&b).unwrap())
            .unwrap()
            .spread_credit
            > 0.0
    );
    assert!(mab > ma + mb, "{mab} <= {ma} + {mb}");
    // Without credits the same books are sub-additive.
    let plain = GridMarginEngine::new(&set, &market(), GridPolicy::cme_span_16(0.1, 0.05).unwrap())
        .unwrap();
    assert!(initial(&plain, &both) <= initial(&plain, &a) + initial(&plain, &b));
}

#[test]
fn engine_types_are_send_and_sync_and_threads_share_one_engine() {
    fn check<T: Send + Sync>() {}
    check::<GridMarginEngine>();
    check::<GridAccount>();
    check::<AccountState>();
    check::<GridMargin>();
    check::<GridPolicy>();
    let engine = &engines()[0];
    let names = names();
    let books: Vec<Vec<Position>> = (0..400)
        .map(|i| {
            (0..4)
                .map(|j| {
                    Position::new(
                        InstrumentId::new(names[(i * 5 + j * 2) % names.len()]).unwrap(),
                        ((i * 3 + j) % 9) as f64 - 4.0,
                    )
                })
                .collect()
        })
        .collect();
    let alone: Vec<u64> = books.iter().map(|b| initial(engine, b).to_bits()).collect();
    let shared: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = books
            .chunks(100)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|b| {
                            let a = engine.account_from_positions(b).unwrap();
                            let state = engine.state(&a).unwrap();
                            assert_eq!(state.requirement(), engine.requirement(&a).unwrap());
                            engine.margin(&a).unwrap().requirement.initial().to_bits()
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(alone, shared);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(0xa11), ..ProptestConfig::default() })]

    /// Extreme markets and quantities: every margin entry point returns a
    /// typed error or finite numbers.
    #[test]
    fn margin_entry_points_never_return_non_finite_numbers(
        btc in prop_oneof![Just(1e-9), Just(1e12), 1e-3..1e7f64],
        vol in prop_oneof![Just(1e-3), Just(9.0), 0.01..3.0f64],
        q in prop_oneof![Just(1e15), Just(-1e15), Just(1e-12), -1e6..1e6f64],
        k in 0..9usize,
    ) {
        let m = MarketSnapshot::builder(as_of())
            .underlying(id("BTC"), UnderlyingMarket::new(btc, 0.0, 0.0, VolSurface::flat(vol).unwrap()).unwrap())
            .underlying(id("ETH"), UnderlyingMarket::new(btc / 25.0, 0.0, 0.0, VolSurface::flat(vol).unwrap()).unwrap())
            .build()
            .unwrap();
        let set = instruments();
        let positions = vec![Position::new(InstrumentId::new(names()[k]).unwrap(), q)];
        for policy in [GridPolicy::deribit_style(), span_with_credits(), GridPolicy::finra_4210(FinraPortfolioType::MarginEquity)] {
            if let Ok(engine) = GridMarginEngine::new(&set, &m, policy) {
                let account = engine.account_from_positions(&positions).unwrap();
                if let Ok(r) = engine.requirement(&account) {
                    prop_assert!(r.initial().is_finite() && r.initial() >= 0.0);
                    let full = engine.margin(&account).unwrap();
                    prop_assert!(full.underlyings.iter().all(|u| u.scan_risk.is_finite() && u.requirement.is_finite()));
                }
                if let Ok(state) = engine.state(&account) {
                    let order = Order { instrument: engine.instrument_index(&InstrumentId::new(names()[(k + 1) % 9]).unwrap()).unwrap(), quantity: q };
                    if let Ok(r) = engine.what_if(&state, order) {
                        prop_assert!(r.initial().is_finite());
                    }
                }
            }
        }
        if let Ok(book) = Portfolio::new(AccountId::new("x"), positions.clone(), &set) {
            if let Ok(r) = isolated_margin(&book, &set, &m, &IsolatedPolicy::default()) {
                prop_assert!(r.requirement.initial().is_finite());
            }
            if let Ok(r) = cross_margin(&book, &set, &m, &CrossPolicy::default()) {
                prop_assert!(r.requirement.initial().is_finite());
            }
        }
    }
}

#[test]
fn an_account_from_another_listing_is_refused_not_misread() {
    let set = instruments();
    let engine = GridMarginEngine::new(&set, &market(), GridPolicy::deribit_style()).unwrap();
    let mut small = InstrumentSet::new();
    small
        .insert(
            InstrumentId::new("ETH-PERP").unwrap(),
            set.get(&InstrumentId::new("ETH-PERP").unwrap())
                .unwrap()
                .clone(),
        )
        .unwrap();
    let other = GridMarginEngine::new(&small, &market(), GridPolicy::deribit_style()).unwrap();
    // Resolved on the big listing, its indices run past the small one's.
    let account = engine
        .account_from_positions(&book(&[("BTC-PERP", 1.0), ("ETH-PERP", 2.0)]))
        .unwrap();
    assert_eq!(other.requirement(&account), Err(Error::ListingMismatch));
    assert_eq!(other.margin(&account).unwrap_err(), Error::ListingMismatch);
    assert!(matches!(other.state(&account), Err(Error::ListingMismatch)));
    assert!(other.scenario_losses(&account).is_err());
    assert!(
        other
            .margin_batch(std::slice::from_ref(&account))
            .get(0)
            .unwrap()
            .is_err()
    );
    let state = engine.state(&account).unwrap();
    let order = Order {
        instrument: other
            .instrument_index(&InstrumentId::new("ETH-PERP").unwrap())
            .unwrap(),
        quantity: 1.0,
    };
    assert_eq!(other.what_if(&state, order), Err(Error::ListingMismatch));
    // A new engine on the same listing (next tick) accepts it.
    let next = GridMarginEngine::new(&set, &market(), GridPolicy::cme_span_16(0.1, 0.05).unwrap())
        .unwrap();
    assert!(next.requirement(&account).is_ok());
}

#[test]
fn a_batch_keeps_each_failure_at_its_account_and_the_rest_dense() {
    let set = instruments();
    let engine = GridMarginEngine::new(&set, &market(), GridPolicy::deribit_style()).unwrap();
    let mut small = InstrumentSet::new();
    let eth = InstrumentId::new("ETH-PERP").unwrap();
    small
        .insert(eth.clone(), set.get(&eth).unwrap().clone())
        .unwrap();
    let other = GridMarginEngine::new(&small, &market(), GridPolicy::deribit_style()).unwrap();
    let stranger = other
        .account_from_positions(&book(&[("ETH-PERP", 1.0)]))
        .unwrap();
    // 600 accounts (three chunks), strangers at both ends and across a
    // chunk boundary.
    let bad = [0, 255, 256, 431, 599];
    let accounts: Vec<GridAccount> = (0..600)
        .map(|i| {
            if bad.contains(&i) {
                stranger.clone()
            } else {
                let q = (i % 7) as f64 - 3.0 + 0.5;
                engine
                    .account_from_positions(&book(&[("BTC-PERP", q), ("ETH-PERP", 1.0)]))
                    .unwrap()
            }
        })
        .collect();
    let batch = engine.margin_batch(&accounts);
    assert_eq!(batch.len(), 600);
    assert_eq!(batch.requirements(), None);
    let failed: Vec<usize> = batch.failures().iter().map(|(i, _)| *i).collect();
    assert_eq!(failed, bad);
    assert!(
        batch
            .failures()
            .iter()
            .all(|(_, e)| *e == Error::ListingMismatch)
    );
    let results = batch.clone().into_results();
    for (i, (got, account)) in batch.iter().zip(&accounts).enumerate() {
        let want = engine.requirement(account);
        assert_eq!(got.map_err(Clone::clone), want, "account {i}");
        assert_eq!(batch.get(i).unwrap().map_err(Clone::clone), want);
        assert_eq!(results[i], want);
    }
    assert_eq!(batch.get(600), None);
    // Held by reference, in another order: the same entries as the
    // accounts themselves in that order, failures at their new indices.
    let refs: Vec<&GridAccount> = accounts.iter().rev().collect();
    let by_ref = engine.margin_batch_of(&refs);
    let reversed: Vec<GridAccount> = accounts.iter().rev().cloned().collect();
    assert_eq!(by_ref, engine.margin_batch(&reversed));
    let failed: Vec<usize> = by_ref.failures().iter().map(|(i, _)| *i).collect();
    let moved: Vec<usize> = bad.iter().rev().map(|i| 599 - i).collect();
    assert_eq!(failed, moved);
    // Without strangers every requirement is handed out at once.
    let good: Vec<GridAccount> = accounts
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .map(|(_, a)| a.clone())
        .collect();
    let clean = engine.margin_batch(&good);
    let all = clean.requirements().unwrap();
    assert_eq!(all.len(), good.len());
    for (r, a) in all.iter().zip(&good) {
        assert_eq!(*r, engine.requirement(a).unwrap());
    }
    assert!(engine.margin_batch(&[]).is_empty());
}
