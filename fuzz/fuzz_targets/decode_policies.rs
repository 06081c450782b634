//! JSON decoding of every policy type. The first byte picks the type
//! (`b'a'` + index, modulo the number of types; see `TYPES`), the rest is
//! the JSON. A decoded policy round-trips and holds only finite numbers,
//! and is then used once against a fixed market, book and P&L: every
//! result is a typed error or finite and sane.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::{
    Account, AccountId, AntiProcyclicality, AssetId, AssetKind, Balance, CollateralAsset,
    CollateralPolicy, Concentration, Confidence, CrossPolicy, EmirProductClass, EsMarginInputs,
    EsMarginPolicy, FutureContract, GridMarginEngine, GridPolicy, HaircutPolicy, HealthBands,
    HealthFactor, Instrument, InstrumentId, InstrumentSet, IsolatedPolicy, LiquidationPolicy,
    MarginRequirement, MarketSnapshot, OffsetPolicy, OptionContract, OptionKind, PerpetualContract,
    Portfolio, Position, PriceSource, Settlement, SpreadCredit, Timestamp, UnderlyingExposure,
    UnderlyingId, UnderlyingMarket, VolSurface, VolTermScaling, account_health, cross_margin,
    es_margin, isolated_margin, plan_liquidation, value_collateral,
};
use portfolio_margin_fuzz::{
    assert_finite_numbers, check_collateral, check_es_margin, check_requirement, round_trip,
};
use std::sync::LazyLock;

/// The types, by selector (`b'a'` is the first).
const TYPES: [&str; 13] = [
    "GridPolicy",
    "EsMarginPolicy",
    "IsolatedPolicy",
    "CrossPolicy",
    "OffsetPolicy",
    "CollateralPolicy",
    "HealthBands",
    "LiquidationPolicy",
    "VolTermScaling",
    "AntiProcyclicality",
    "SpreadCredit",
    "HaircutPolicy",
    "Concentration",
];

/// Longest liquidation plan run (a decoded policy may allow a million
/// steps; the plan logic is the same after a few).
const MAX_PLAN_STEPS: usize = 64;

/// A fixed market, listing, book and P&L the decoded policies are used on.
struct Env {
    market: MarketSnapshot,
    instruments: InstrumentSet,
    book: Portfolio,
    pnl: Vec<f64>,
    long_pnl: Vec<f64>,
}

fn uid(s: &str) -> UnderlyingId {
    UnderlyingId::new(s).expect("valid id")
}

fn iid(s: &str) -> InstrumentId {
    InstrumentId::new(s).expect("valid id")
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let as_of = Timestamp::from_millis(1_795_593_600_000);
    let day = 86_400_000;
    let market = MarketSnapshot::builder(as_of)
        .underlying(
            uid("BTC"),
            UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.6).expect("vol"))
                .expect("market"),
        )
        .underlying(
            uid("ETH"),
            UnderlyingMarket::new(3_400.0, 0.04, 0.0, VolSurface::flat(0.7).expect("vol"))
                .expect("market"),
        )
        .build()
        .expect("market");
    let mut instruments = InstrumentSet::new();
    let expiry = |days: i64| Timestamp::from_millis(1_795_593_600_000 + days * day);
    let listed = [
        (
            "BTC-PERP",
            Instrument::Perpetual(PerpetualContract::new(uid("BTC"))),
            2.0,
        ),
        (
            "BTC-C110",
            Instrument::Option(
                OptionContract::new(uid("BTC"), OptionKind::Call, 110_000.0, expiry(30))
                    .expect("option"),
            ),
            -3.0,
        ),
        (
            "BTC-P90",
            Instrument::Option(
                OptionContract::new(uid("BTC"), OptionKind::Put, 90_000.0, expiry(7))
                    .expect("option"),
            ),
            1.0,
        ),
        (
            "ETH-FUT",
            Instrument::Future(
                FutureContract::new(uid("ETH"), expiry(90))
                    .with_multiplier(10.0)
                    .expect("multiplier")
                    .with_settlement(Settlement::Inverse),
            ),
            -5.0,
        ),
        (
            "ETH-C4000",
            Instrument::Option(
                OptionContract::new(uid("ETH"), OptionKind::Call, 4_000.0, expiry(60))
                    .expect("option"),
            ),
            4.0,
        ),
    ];
    let mut positions = Vec::new();
    for (name, instrument, quantity) in listed {
        instruments.insert(iid(name), instrument).expect("listing");
        positions.push(Position::new(iid(name), quantity));
    }
    let book = Portfolio::new(AccountId::new("fuzz"), positions, &instruments).expect("book");
    // A deterministic P&L of 250 scenarios, and a 10-year one.
    let walk = |n: usize, scale: f64| -> Vec<f64> {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                scale * (2.0 * u - 1.0).powi(3)
            })
            .collect()
    };
    Env {
        market,
        instruments,
        book,
        pnl: walk(250, 20_000.0),
        long_pnl: walk(3_650, 30_000.0),
    }
});

/// A grid engine on the fixed listing, the book's margin and breakdown.
fn use_grid_policy(policy: &GridPolicy) {
    let env = &*ENV;
    let Ok(engine) = GridMarginEngine::new(&env.instruments, &env.market, policy.clone()) else {
        return;
    };
    assert_eq!(engine.scenario_count(), policy.scenario_count());
    let Ok(account) = engine.account(&env.book) else {
        panic!("the fixed book resolves against its own listing");
    };
    let requirement = engine.requirement(&account);
    let margin = engine.margin(&account);
    match (&requirement, &margin) {
        (Ok(r), Ok(m)) => {
            check_requirement("grid requirement", r);
            assert_eq!(*r, m.requirement, "breakdown and fast path differ");
            assert_finite_numbers("grid margin", m);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("requirement {requirement:?} but breakdown {margin:?}"),
    }
}

fn use_es_policy(policy: &EsMarginPolicy) {
    let env = &*ENV;
    let _ = policy.check_emir_minimums(EmirProductClass::ExchangeTraded);
    let _ = policy.check_emir_minimums(EmirProductClass::OverTheCounter);
    assert!(policy.horizon_factor().is_finite() && policy.horizon_factor() > 0.0);
    let long = match policy.anti_procyclicality().long_lookback_floor() {
        Some(f) if f.min_scenarios() > env.long_pnl.len() => return,
        _ => &env.long_pnl,
    };
    let stressed: Vec<f64> = env.pnl.iter().map(|x| 2.5 * x).collect();
    let inputs = EsMarginInputs::new()
        .with_stressed_pnl(&stressed)
        .and_then(|i| i.with_long_lookback_pnl(long))
        .and_then(|i| i.with_previous_initial_margin(30_000.0))
        .and_then(|i| i.with_buffer_release(0.5))
        .expect("fixed inputs are valid");
    for inputs in [inputs, EsMarginInputs::new()] {
        if let Ok(m) = es_margin(&env.pnl, &inputs, policy) {
            check_es_margin("ES margin", &m, policy.quantile_rule());
        }
    }
}

fn use_cross_policy(policy: &CrossPolicy) {
    let env = &*ENV;
    let isolated = isolated_margin(&env.book, &env.instruments, &env.market, policy.isolated());
    let cross = cross_margin(&env.book, &env.instruments, &env.market, policy);
    if let Ok(i) = &isolated {
        check_requirement("isolated margin", &i.requirement);
        assert_finite_numbers("isolated margin", i);
    }
    if let Ok(c) = &cross {
        check_requirement("cross margin", &c.requirement);
        assert_finite_numbers("cross margin", c);
    }
    if let (Ok(i), Ok(c)) = (&isolated, &cross) {
        assert!(
            c.requirement.initial() <= i.requirement.initial(),
            "cross {} above isolated {}",
            c.requirement.initial(),
            i.requirement.initial()
        );
    }
}

fn use_offsets(policy: &OffsetPolicy) {
    let names = ["BTC", "ETH", "SOL", "XRP"];
    let exposures: Vec<UnderlyingExposure> = names
        .iter()
        .zip([(16_000.0, 1e5), (5_000.0, -4e4), (900.0, 7e3), (0.0, 0.0)])
        .map(|(name, (requirement, delta_notional))| UnderlyingExposure {
            underlying: uid(name),
            requirement,
            delta_notional,
        })
        .collect();
    let Ok(credits) = policy.apply(&exposures) else {
        return;
    };
    assert_finite_numbers("spread credits", &credits);
    for e in &exposures {
        let total: f64 = credits
            .iter()
            .map(|c| {
                (if c.a == e.underlying { c.credit_a } else { 0.0 })
                    + (if c.b == e.underlying { c.credit_b } else { 0.0 })
            })
            .sum();
        assert!(
            total <= e.requirement * (1.0 + 1e-12),
            "credits {total} above the requirement {} of {}",
            e.requirement,
            e.underlying
        );
    }
    for c in &credits {
        assert!(c.credit_a >= 0.0 && c.credit_b >= 0.0 && c.spread_notional >= 0.0);
    }
}

fn use_collateral(policy: &CollateralPolicy) {
    let env = &*ENV;
    let balances: Vec<Balance> = policy
        .assets()
        .iter()
        .enumerate()
        .map(|(k, a)| Balance::new(a.id().clone(), if k % 2 == 0 { 1.5 } else { -0.5 }))
        .collect();
    if let Ok(v) = value_collateral(&balances, &env.market, policy) {
        check_collateral(&v);
        assert_finite_numbers("collateral valuation", &v);
    }
    let account = Account {
        balances: &balances,
        portfolio: &env.book,
        instruments: &env.instruments,
        market: &env.market,
        policy,
    };
    let margin = MarginRequirement::new(40_000.0, 0.5).expect("valid margin");
    if let Ok(h) = account_health(&account, margin, &HealthBands::default()) {
        assert_finite_numbers("account health", &h);
    }
}

fn use_bands(bands: &HealthBands) {
    let mut last = None;
    for equity in [-1e3, 0.0, 1e3, 4e3, 5e3, 6e3, 1e4, 1e9] {
        let margin = MarginRequirement::new(1e4, 0.5).expect("valid margin");
        let Ok(state) = bands.state(equity, margin) else {
            panic!("a finite equity against a valid margin is assessed");
        };
        assert_finite_numbers("health state", &state);
        // More equity never worsens the status.
        if let Some(previous) = last {
            assert!(state.status <= previous, "{state:?} after {previous:?}");
        }
        last = Some(state.status);
    }
}

fn use_liquidation(policy: &LiquidationPolicy) {
    let env = &*ENV;
    let Ok(policy) = LiquidationPolicy::new(
        policy.target(),
        policy.lot(),
        policy.hedged_unwind(),
        policy.max_steps().min(MAX_PLAN_STEPS),
    ) else {
        panic!("a decoded policy with fewer steps is valid");
    };
    let usdc = AssetId::new("USDC").expect("valid id");
    let Ok(collateral) = CollateralPolicy::new(
        usdc.clone(),
        vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0).expect("asset")],
    ) else {
        panic!("fixed collateral policy");
    };
    let balances = [Balance::new(usdc, 20_000.0)];
    let account = Account {
        balances: &balances,
        portfolio: &env.book,
        instruments: &env.instruments,
        market: &env.market,
        policy: &collateral,
    };
    let Ok(engine) =
        GridMarginEngine::new(&env.instruments, &env.market, GridPolicy::deribit_style())
    else {
        panic!("fixed engine");
    };
    let margin = |p: &Portfolio| engine.requirement(&engine.account(p)?);
    let Ok(plan) = plan_liquidation(&account, margin, &HealthBands::default(), &policy) else {
        return;
    };
    assert_finite_numbers("liquidation plan", &plan);
    assert!(plan.steps.len() <= policy.max_steps());
    if plan.restored {
        assert!(plan.final_state.health_factor.meets(policy.target()));
    }
    for p in plan.remaining.positions() {
        let Some(q) = env
            .book
            .positions()
            .iter()
            .find(|q| q.instrument == p.instrument)
        else {
            panic!("{} was not in the book", p.instrument);
        };
        assert!(p.quantity.abs() <= q.quantity.abs() && p.quantity.signum() == q.quantity.signum());
    }
}

fn use_term_scaling(scaling: VolTermScaling) {
    for days in [0.0, 1e-9, 0.5, 1.0, 7.0, 30.0, 365.0, 1e6, f64::NAN] {
        let f = scaling.factor(days);
        assert!(!f.is_nan() && f >= 0.0, "factor {f} at {days} days");
    }
    let mut policy = GridPolicy::deribit_style();
    policy.vol.term_scaling = Some(scaling);
    use_grid_policy(&policy);
}

fn use_haircuts(policy: &HaircutPolicy) {
    for value in [0.0, 1.0, 1e6, 1e12, 1e300] {
        for sigma in [0.0, 0.5, 3.0, 1e300] {
            if let Ok(h) = policy.haircut_at(value, sigma) {
                assert!((0.0..=1.0).contains(&h.fraction()), "haircut {h:?}");
            }
        }
    }
    let usdc = AssetId::new("USDC").expect("valid id");
    let btc = AssetId::new("BTC").expect("valid id");
    let Ok(asset) = CollateralAsset::new(
        btc,
        AssetKind::Coin,
        PriceSource::Underlying(uid("BTC")),
        policy.clone(),
    ) else {
        return;
    };
    let Ok(collateral) = CollateralPolicy::new(
        usdc.clone(),
        vec![
            CollateralAsset::at_par(usdc, AssetKind::Stablecoin, 1.0).expect("asset"),
            asset,
        ],
    ) else {
        panic!("two distinct assets");
    };
    use_collateral(&collateral);
}

fn use_concentration(c: &Concentration) {
    for exposure in [0.0, 1.0, 5e5, 1e6, 3e6, 1e9, 1e300, f64::MAX] {
        for depth in [1e-300, 1.0, 1e6, 1e300] {
            if let Ok(add_on) = c.add_on(exposure, depth) {
                assert!(
                    add_on.is_finite() && add_on >= 0.0,
                    "add-on {add_on} for {exposure} against {depth}"
                );
            }
        }
    }
    let mut policy = GridPolicy::cme_span_16(0.08, 0.04).expect("valid preset");
    policy.concentration = c.clone();
    use_grid_policy(&policy);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    match usize::from(selector.wrapping_sub(b'a')) % TYPES.len() {
        0 => {
            if let Some(p) = round_trip::<GridPolicy>(json) {
                assert_finite_numbers("GridPolicy", &p);
                p.validate().expect("a decoded policy is valid");
                use_grid_policy(&p);
            }
        }
        1 => {
            if let Some(p) = round_trip::<EsMarginPolicy>(json) {
                assert_finite_numbers("EsMarginPolicy", &p);
                use_es_policy(&p);
            }
        }
        2 => {
            if let Some(p) = round_trip::<IsolatedPolicy>(json) {
                assert_finite_numbers("IsolatedPolicy", &p);
                let cross = CrossPolicy::new(p, OffsetPolicy::default(), 0.5)
                    .expect("0.5 is a valid maintenance fraction");
                use_cross_policy(&cross);
            }
        }
        3 => {
            if let Some(p) = round_trip::<CrossPolicy>(json) {
                assert_finite_numbers("CrossPolicy", &p);
                use_cross_policy(&p);
            }
        }
        4 => {
            if let Some(p) = round_trip::<OffsetPolicy>(json) {
                assert_finite_numbers("OffsetPolicy", &p);
                use_offsets(&p);
            }
        }
        5 => {
            if let Some(p) = round_trip::<CollateralPolicy>(json) {
                assert_finite_numbers("CollateralPolicy", &p);
                use_collateral(&p);
            }
        }
        6 => {
            if let Some(b) = round_trip::<HealthBands>(json) {
                assert_finite_numbers("HealthBands", &b);
                use_bands(&b);
                let f = HealthFactor::new(1.0, 1.0).expect("valid factor");
                let _ = b.status(1.0, f);
            }
        }
        7 => {
            if let Some(p) = round_trip::<LiquidationPolicy>(json) {
                assert_finite_numbers("LiquidationPolicy", &p);
                use_liquidation(&p);
            }
        }
        8 => {
            if let Some(s) = round_trip::<VolTermScaling>(json) {
                assert_finite_numbers("VolTermScaling", &s);
                use_term_scaling(s);
            }
        }
        9 => {
            if let Some(apc) = round_trip::<AntiProcyclicality>(json) {
                assert_finite_numbers("AntiProcyclicality", &apc);
                let confidence = Confidence::new(0.99).expect("valid level");
                let policy = EsMarginPolicy::new(confidence, 2)
                    .expect("valid policy")
                    .with_anti_procyclicality(apc);
                use_es_policy(&policy);
            }
        }
        10 => {
            if let Some(c) = round_trip::<SpreadCredit>(json) {
                assert_finite_numbers("SpreadCredit", &c);
                let policy = OffsetPolicy::new(vec![c]).expect("one pair is never a duplicate");
                use_offsets(&policy);
            }
        }
        11 => {
            if let Some(p) = round_trip::<HaircutPolicy>(json) {
                assert_finite_numbers("HaircutPolicy", &p);
                use_haircuts(&p);
            }
        }
        _ => {
            if let Some(c) = round_trip::<Concentration>(json) {
                assert_finite_numbers("Concentration", &c);
                use_concentration(&c);
            }
        }
    }
});
