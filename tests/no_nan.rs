//! No NaN out: public entry points driven with arbitrary numbers, finite or
//! not, return either a typed error or finite outputs.

use portfolio_margin::*;
use proptest::prelude::*;

/// Any f64, with the awkward values over-represented.
fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => proptest::num::f64::ANY,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(f64::MAX),
        4 => -2.0..2.0f64,
        4 => 1e-6..1e6f64,
    ]
}

fn config() -> ProptestConfig {
    // A fixed seed keeps CI deterministic; run with PROPTEST_CASES and
    // PROPTEST_RNG_SEED set to explore further.
    let mut config = ProptestConfig::with_cases(3000);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5EED);
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn option_kernel_is_finite_or_refuses(
        s in any_number(), k in any_number(), t in any_number(), v in any_number(),
        r in any_number(), q in any_number(), call in any::<bool>(), black76 in any::<bool>(),
    ) {
        let kind = if call { OptionKind::Call } else { OptionKind::Put };
        let model = if black76 { OptionModel::Black76 } else { OptionModel::BlackScholesMerton };
        if let Ok(inputs) = BsInputs::new(kind, model, s, k, t, v, r, q) {
            let g = black_scholes(&inputs);
            prop_assert!(g.is_finite(), "{inputs:?} -> {g:?}");
            let b = bump_greeks(&inputs);
            prop_assert!(b.is_finite(), "{inputs:?} -> bump {b:?}");
            let mut batch = OptionBatch::new();
            batch.push(&inputs);
            let mut out = GreeksBatch::default();
            batch.greeks(&mut out).unwrap();
            prop_assert!(out.value[0].is_finite() && out.gamma[0].is_finite() && out.theta[0].is_finite());
        }
    }

    #[test]
    fn implied_vol_is_finite_or_refuses(
        price in any_number(), f in any_number(), k in any_number(), t in any_number(), call in any::<bool>(),
    ) {
        let kind = if call { OptionKind::Call } else { OptionKind::Put };
        if let Ok(vol) = implied_volatility(price, f, k, t, kind) {
            prop_assert!(vol.is_finite() && vol > 0.0, "{vol}");
        }
    }

    #[test]
    fn market_and_measures_are_finite_or_refuse(
        spot in any_number(), rate in any_number(), q in any_number(), vol in any_number(),
        pnl in proptest::collection::vec(any_number(), 0..40), c in any_number(),
    ) {
        if let (Ok(surface), Ok(market)) = (VolSurface::flat(vol), VolSurface::flat(vol).and_then(|s| UnderlyingMarket::new(spot, rate, q, s))) {
            prop_assert!(surface.volatility(0.5, spot.abs(), spot.abs()).is_finite());
            prop_assert!(market.spot() > 0.0);
        }
        if let Ok(confidence) = Confidence::new(c) {
            for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
                if let Ok(var) = value_at_risk(&pnl, confidence, rule) {
                    prop_assert!(var.is_finite());
                }
                if let Ok(es) = expected_shortfall(&pnl, confidence, rule) {
                    prop_assert!(es.is_finite());
                }
            }
        }
    }

    #[test]
    fn correlation_is_valid_or_refused(entries in proptest::collection::vec(any_number(), 9)) {
        if let Ok(m) = CorrelationMatrix::new(3, entries) {
            prop_assert!(m.as_slice().iter().all(|x| x.is_finite() && x.abs() <= 1.0));
        }
    }
}

// ---------------------------------------------------------------------------
// Margin and collateral entry points.

/// `true` if no number printed by `value`'s `Debug` is NaN or infinite.
///
/// `Debug` prints every `f64` (NaN as `NaN`, infinities as `inf`/`-inf`),
/// so a token check covers every field of a report, including fields added
/// later. No id or name used here contains those tokens.
fn all_finite<T: std::fmt::Debug>(value: &T) -> bool {
    let text = format!("{value:?}");
    !text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|token| token == "NaN" || token == "inf")
}

#[test]
fn the_finiteness_check_can_fail() {
    assert!(all_finite(&(1.0, "BTC", Some(-0.0))));
    assert!(!all_finite(&(1.0, f64::NAN)));
    assert!(!all_finite(&vec![f64::NEG_INFINITY]));
    assert!(!all_finite(
        &MarginRequirement::new(0.0, 1.0).map(|_| f64::INFINITY)
    ));
}

/// Mostly a point of `[lo, hi]`, sometimes any number: the set-up of a
/// test (markets, listings) is then usually valid, so most cases reach the
/// entry point under test, while invalid set-ups are still tried.
fn near(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![6 => lo..hi, 1 => any_number()]
}

/// As [`near`], with any number only one time in 31: for the many numbers
/// of a policy, each of which must be valid for the policy to be.
fn mostly(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![30 => lo..hi, 1 => any_number()]
}

/// Found by `concentration_and_spread_credits_are_finite_or_refuse`: the
/// allocation-free total of spread credits did not check its inputs (the
/// grid engine's are valid) and returned `inf` for an infinite requirement
/// and a negative total for a NaN one. Fixed by checking them
/// (src/margin/offsets.rs, `ResolvedOffsets::total_credit`).
#[test]
fn total_spread_credit_refuses_invalid_inputs() {
    let ids = [uid("BTC"), uid("ETH"), uid("SOL")];
    let policy = OffsetPolicy::new(vec![
        SpreadCredit::new(ids[0].clone(), ids[1].clone(), 2.2e-308, 2.2e-308).unwrap(),
        SpreadCredit::new(ids[1].clone(), ids[2].clone(), 0.004, 1.0).unwrap(),
    ])
    .unwrap();
    let resolved = policy.resolve(|u| ids.iter().position(|x| x == u));
    let mut scratch = [0.0; 6];
    for (requirement, delta, index) in [
        ([0.0, f64::INFINITY, 0.0], [f64::MAX, -1.97, 0.0], 1),
        ([f64::NAN, 1.0, 1.0], [1e-148, -1.0, 1.0], 0),
        ([1.0, -1.0, 1.0], [1.0, -1.0, 1.0], 1),
        ([1.0, 1.0, 1.0], [1.0, f64::NAN, 1.0], 1),
    ] {
        let err = resolved
            .total_credit(&requirement, &delta, &mut scratch)
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidElement { index: i, .. } if i == index),
            "{err:?}"
        );
    }
    let total = resolved
        .total_credit(&[10.0, 10.0, 10.0], &[100.0, -100.0, 100.0], &mut scratch)
        .unwrap();
    assert!(total.is_finite() && total > 0.0);
}

fn mid_config(cases: u32) -> ProptestConfig {
    let mut config = config();
    config.cases = cases;
    config
}

fn uid(s: &str) -> UnderlyingId {
    UnderlyingId::new(s).unwrap()
}

fn iid(s: &str) -> InstrumentId {
    InstrumentId::new(s).unwrap()
}

fn as_of() -> Timestamp {
    Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).unwrap()
}

/// A one-underlying market; `None` if the numbers are refused.
fn btc_market(spot: f64, vol: f64, rate: f64) -> Option<MarketSnapshot> {
    let surface = VolSurface::flat(vol).ok()?;
    let m = UnderlyingMarket::new(spot, rate, 0.0, surface).ok()?;
    MarketSnapshot::builder(as_of())
        .underlying(uid("BTC"), m)
        .build()
        .ok()
}

/// A perpetual, a future and a call and put on BTC, any multiplier and
/// strike; `None` if refused.
fn btc_instruments(multiplier: f64, strike: f64) -> Option<InstrumentSet> {
    let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0).unwrap();
    let mut set = InstrumentSet::new();
    set.insert(
        iid("PERP"),
        Instrument::Perpetual(
            PerpetualContract::new(uid("BTC"))
                .with_multiplier(multiplier)
                .ok()?,
        ),
    )
    .ok()?;
    set.insert(
        iid("FUT"),
        Instrument::Future(
            FutureContract::new(uid("BTC"), expiry).with_settlement(Settlement::Inverse),
        ),
    )
    .ok()?;
    for (name, kind) in [("CALL", OptionKind::Call), ("PUT", OptionKind::Put)] {
        set.insert(
            iid(name),
            Instrument::Option(
                OptionContract::new(uid("BTC"), kind, strike, expiry)
                    .ok()?
                    .with_multiplier(multiplier.abs().max(1e-3))
                    .ok()?,
            ),
        )
        .ok()?;
    }
    Some(set)
}

const NAMES: [&str; 4] = ["PERP", "FUT", "CALL", "PUT"];

/// A grid policy from a preset with every public number replaced.
fn any_grid_policy(preset: u8, numbers: &[f64]) -> GridPolicy {
    let mut p = match preset % 3 {
        0 => GridPolicy::deribit_style(),
        1 => GridPolicy::finra_4210(FinraPortfolioType::MarginEquity),
        _ => GridPolicy::cme_span_16(0.1, 0.05).unwrap(),
    };
    let n = |k: usize| numbers.get(k).copied().unwrap_or(0.5);
    if let Ok(r) = PriceRange::new(n(0), n(1)) {
        p.range = r;
    }
    p.vol.up = n(2);
    p.vol.down = n(3);
    p.horizon_days = n(4);
    p.min_delta_charge = n(5);
    p.maintenance_fraction = n(6);
    p.option_minimum.fraction_of_underlying = n(7);
    p.option_minimum.amount_per_unit = n(8);
    p.correlation_break = n(9);
    if let Some(e) = p.extreme.as_mut() {
        e.cover = n(10);
        e.moves.push(n(11));
    }
    p.concentration = Concentration {
        default_depth: Some(n(12)),
        depths: vec![],
        tiers: vec![ConcentrationTier {
            above: n(13),
            rate: n(14),
        }],
    };
    p
}

fn requirement_ok(r: &MarginRequirement) -> bool {
    r.initial().is_finite()
        && r.initial() >= 0.0
        && r.maintenance() >= 0.0
        && r.maintenance() <= r.initial()
}

proptest! {
    #![proptest_config(mid_config(1000))]

    /// Isolated, cross and grid margin (every engine path) on a market,
    /// listing, book and policy of arbitrary numbers.
    #[test]
    fn margin_methodologies_are_finite_or_refuse(
        spot in near(1.0, 1e6), vol in near(0.05, 2.0), rate in near(-0.05, 0.1),
        multiplier in near(1e-3, 1e3), strike in near(1.0, 2e6),
        quantities in proptest::collection::vec(near(-1e6, 1e6), 1..5),
        fractions in proptest::collection::vec(any_number(), 6),
        preset in any::<u8>(),
        grid_numbers in proptest::collection::vec(mostly(0.0, 1.0), 15),
        order in any_number(),
    ) {
        let (Some(market), Some(set)) = (btc_market(spot, vol, rate), btc_instruments(multiplier, strike)) else {
            return Ok(());
        };
        let positions: Vec<Position> = quantities
            .iter()
            .enumerate()
            .map(|(k, q)| Position::new(iid(NAMES[k % NAMES.len()]), *q))
            .collect();
        if let Ok(book) = Portfolio::new(AccountId::new("x"), positions.clone(), &set) {
            let mut isolated = IsolatedPolicy::default();
            for (k, f) in fractions.iter().enumerate() {
                let next = match k {
                    0 => isolated.clone().with_futures_fraction(*f),
                    1 => isolated.clone().with_long_spot_fraction(*f),
                    2 => isolated.clone().with_short_spot_fraction(*f),
                    3 => isolated.clone().with_option_base_fraction(*f),
                    4 => isolated.clone().with_option_minimum_fraction(*f),
                    _ => isolated.clone().with_maintenance_fraction(*f),
                };
                if let Ok(next) = next {
                    isolated = next;
                }
            }
            if let Ok(m) = isolated_margin(&book, &set, &market, &isolated) {
                prop_assert!(all_finite(&m) && requirement_ok(&m.requirement), "{m:?}");
            }
            let offsets = OffsetPolicy::default();
            if let Ok(policy) = CrossPolicy::new(isolated, offsets, fractions[5])
                && let Ok(m) = cross_margin(&book, &set, &market, &policy)
            {
                prop_assert!(all_finite(&m) && requirement_ok(&m.requirement), "{m:?}");
            }
        }
        if let Ok(engine) = GridMarginEngine::new(&set, &market, any_grid_policy(preset, &grid_numbers)) {
            for name in NAMES {
                let index = engine.instrument_index(&iid(name)).unwrap();
                prop_assert!(all_finite(&engine.loss_array(index)));
                prop_assert!(engine.notional_per_contract(index).is_finite());
            }
            let Ok(account) = engine.account_from_positions(&positions) else {
                return Ok(());
            };
            if let Ok(r) = engine.requirement(&account) {
                prop_assert!(requirement_ok(&r), "{r:?}");
            }
            if let Ok(m) = engine.margin(&account) {
                prop_assert!(all_finite(&m) && requirement_ok(&m.requirement), "{m:?}");
            }
            if let Ok(losses) = engine.scenario_losses(&account) {
                prop_assert!(all_finite(&losses));
            }
            if let Ok(v) = engine.positions_value(&account) {
                prop_assert!(v.is_finite(), "{v}");
            }
            for r in engine.margin_batch(&[account.clone(), account.clone()]).iter().flatten() {
                prop_assert!(requirement_ok(&r), "{r:?}");
            }
            if let Ok(mut state) = engine.state(&account) {
                prop_assert!(requirement_ok(&state.requirement()));
                let order = Order { instrument: engine.instrument_index(&iid("CALL")).unwrap(), quantity: order };
                if let Ok(r) = engine.what_if(&state, order) {
                    prop_assert!(requirement_ok(&r), "{r:?}");
                }
                if engine.apply_order(&mut state, order).is_ok() {
                    prop_assert!(requirement_ok(&state.requirement()));
                }
            }
        }
    }

    /// ES margin from P&L, position P&L, a portfolio's arrays and a
    /// volatility projection, with arbitrary P&L, inputs and policy.
    #[test]
    fn es_margin_entry_points_are_finite_or_refuse(
        pnl in proptest::collection::vec(near(-1e6, 1e6), 0..30),
        stressed in proptest::collection::vec(near(-1e6, 1e6), 0..10),
        level in near(0.5, 0.999), mpor in 0u32..300,
        tools in (near(0.25, 1.0), near(0.25, 1.0), near(0.01, 1.0), near(0.0, 1.0), near(0.0, 1e7), near(0.0, 1.0)),
        floor in 0usize..40, linear in any::<bool>(),
        current in any_number(), forecast in any_number(),
        spot in near(1.0, 1e6), multiplier in near(1e-3, 1e3), quantity in near(-1e6, 1e6),
        moves in proptest::collection::vec(near(-0.5, 0.5), 0..20),
    ) {
        let Ok(confidence) = Confidence::new(level) else { return Ok(()) };
        let Ok(mut policy) = EsMarginPolicy::new(confidence, mpor) else { return Ok(()) };
        let mut apc = AntiProcyclicality::none();
        if let Ok(next) = apc.with_buffer(tools.0) { apc = next; }
        if let Ok(next) = apc.with_stressed_weight(tools.1) { apc = next; }
        if let Ok(f) = LongLookbackFloor::new(floor) { apc = apc.with_long_lookback_floor(f); }
        if let Ok(s) = SpeedLimit::new(tools.2, SpeedLimitScope::Total) { apc = apc.with_speed_limit(s); }
        policy = policy.with_anti_procyclicality(apc).with_quantile_rule(if linear { QuantileRule::Linear } else { QuantileRule::Empirical });
        if let Ok(next) = policy.with_maintenance_fraction(tools.3) { policy = next; }
        let mut inputs = EsMarginInputs::new();
        if let Ok(next) = inputs.with_stressed_pnl(&stressed) { inputs = next; }
        if let Ok(next) = inputs.with_long_lookback_pnl(&pnl) { inputs = next; }
        if let Ok(next) = inputs.with_previous_initial_margin(tools.4) { inputs = next; }
        if let Ok(next) = inputs.with_buffer_release(tools.5) { inputs = next; }

        if let Ok(m) = es_margin(&pnl, &inputs, &policy) {
            prop_assert!(all_finite(&m) && requirement_ok(&m.requirement), "{m:?}");
        }
        let half = pnl.len() / 2;
        let rows = [&pnl[..half], &pnl[half..2 * half]];
        if let Ok(m) = es_margin_with_positions(&rows, &inputs, &policy) {
            prop_assert!(all_finite(&m) && requirement_ok(&m.requirement), "{m:?}");
        }
        for forecast in [VolatilityForecast::Given(forecast), VolatilityForecast::Given(0.02)] {
            if let Ok(p) = projected_es_margin(&pnl, &inputs, &policy, current, forecast) {
                prop_assert!(all_finite(&p) && requirement_ok(&p.projected.requirement), "{p:?}");
            }
        }
        // A portfolio's arrays over arbitrary log moves of the spot.
        let (Some(market), Some(set)) = (btc_market(spot, 0.5, 0.0), btc_instruments(multiplier, 100.0)) else {
            return Ok(());
        };
        let Ok(scenarios) = ScenarioSet::new(vec![(RiskFactor::Spot(uid("BTC")), ShockKind::Log)], moves, YearFraction::ZERO) else {
            return Ok(());
        };
        let (Ok(arrays), Ok(book)) = (
            RiskArrays::compute(&set, &market, &scenarios, Revaluation::Full),
            Portfolio::new(AccountId::new("x"), vec![Position::new(iid("PERP"), quantity)], &set),
        ) else {
            return Ok(());
        };
        if let Ok(m) = portfolio_es_margin(&book, &arrays, &inputs, &policy) {
            prop_assert!(all_finite(&m) && requirement_ok(&m.requirement), "{m:?}");
        }
    }

    /// Collateral valuation, account health, deposits and liquidation plans
    /// with arbitrary balances, prices, haircuts, margins and policies.
    #[test]
    fn collateral_entry_points_are_finite_or_refuse(
        amounts in proptest::collection::vec(near(-1e6, 1e6), 3),
        price in near(0.5, 2.0), spot in near(1.0, 1e6),
        haircut in (near(0.0, 3.0), near(0.0, 0.5), near(1e3, 1e7), near(0.0, 0.5), near(0.0, 1.0)),
        margin in (near(0.0, 1e7), near(0.0, 1.0), near(0.5, 3.0)),
        bands in (near(1.0, 2.0), near(0.8, 1.2), near(0.5, 1.0)),
        liquidation in (near(0.5, 3.0), near(0.01, 1.0)),
        quantity in near(-1e3, 1e3), steps in 0usize..20,
    ) {
        let Some(market) = btc_market(spot, 0.5, 0.0) else { return Ok(()) };
        let Some(set) = btc_instruments(1.0, 100.0) else { return Ok(()) };
        let Ok(book) = Portfolio::new(AccountId::new("x"), vec![Position::new(iid("PERP"), quantity), Position::new(iid("CALL"), -1.0)], &set) else {
            return Ok(());
        };
        let usd = AssetId::new("USD").unwrap();
        let btc = AssetId::new("BTC").unwrap();
        let eur = AssetId::new("EUR").unwrap();
        let coin_haircuts = || -> Result<HaircutPolicy> {
            HaircutPolicy::new(
                VolatilityHaircut::with_defaults(VolatilitySource::Fixed(haircut.0))?,
                LiquidityTiers::new(vec![
                    LiquidityTier { from: 0.0, haircut: Haircut::new(haircut.1)? },
                    LiquidityTier { from: haircut.2, haircut: Haircut::new(haircut.3)? },
                ])?,
                BorrowUplift::Fixed(haircut.4),
            )
        };
        let Ok(coin_haircuts) = coin_haircuts() else { return Ok(()) };
        let mut assets = vec![CollateralAsset::at_par(usd.clone(), AssetKind::Fiat, 1.0).unwrap()];
        assets.push(CollateralAsset::new(btc.clone(), AssetKind::Coin, PriceSource::Underlying(uid("BTC")), coin_haircuts).unwrap());
        if let Ok(a) = CollateralAsset::at_par(eur.clone(), AssetKind::Fiat, price) {
            assets.push(a);
        }
        let policy = CollateralPolicy::new(usd.clone(), assets).unwrap();
        let balances = [
            Balance::new(usd, amounts[0]),
            Balance::new(btc, amounts[1]),
            Balance::new(eur, amounts[2]),
        ];
        if let Ok(v) = value_collateral(&balances, &market, &policy) {
            prop_assert!(all_finite(&v), "{v:?}");
        }
        let account = Account { balances: &balances, portfolio: &book, instruments: &set, market: &market, policy: &policy };
        if let Ok(e) = account.equity() {
            prop_assert!(e.is_finite());
        }
        let bands = HealthBands::new(bands.0, bands.1, bands.2).unwrap_or_default();
        let Ok(requirement) = MarginRequirement::new(margin.0, margin.1) else { return Ok(()) };
        if let Ok(h) = account_health(&account, requirement, &bands) {
            prop_assert!(all_finite(&h), "{h:?}");
            if let Ok(d) = h.deposit_to_reach(margin.2) {
                prop_assert!(d.is_finite() && d >= 0.0);
            }
        }
        if let Ok(d) = deposit_to_reach(amounts[0], margin.0, margin.2) {
            prop_assert!(d.is_finite() && d >= 0.0);
        }
        if let Ok(f) = HealthFactor::new(amounts[0], margin.0) {
            prop_assert!(all_finite(&f));
        }
        let lot = if liquidation.1 > 0.5 { LotSize::FractionOfPosition(liquidation.1) } else { LotSize::Contracts(liquidation.1) };
        let Ok(liquidation) = LiquidationPolicy::new(liquidation.0, lot, HedgedUnwind::ProRata, steps) else {
            return Ok(());
        };
        // Margin proportional to the contracts held, at an arbitrary rate.
        let rate = margin.0;
        let margin_of = |p: &Portfolio| {
            let contracts: f64 = p.positions().iter().map(|x| x.quantity.abs()).sum();
            MarginRequirement::new(rate * contracts, 0.5)
        };
        if let Ok(plan) = plan_liquidation(&account, margin_of, &bands, &liquidation) {
            prop_assert!(all_finite(&plan), "{plan:?}");
        }
    }

    /// Margin explanations and capital-efficiency reports from arbitrary
    /// markets, books, policies and requirements.
    #[test]
    fn explain_and_efficiency_are_finite_or_refuse(
        spots in proptest::collection::vec(near(1.0, 1e6), 2),
        quantities in proptest::collection::vec(near(-1e6, 1e6), 4),
        presets in proptest::collection::vec(any::<u8>(), 2),
        grid_numbers in proptest::collection::vec(mostly(0.0, 1.0), 15),
        requirements in proptest::collection::vec((any_number(), any_number()), 4),
        include in proptest::collection::vec(any::<bool>(), 4),
    ) {
        let mut list = Vec::new();
        for ((m, (initial, fraction)), keep) in Methodology::ALL.iter().zip(&requirements).zip(&include) {
            if let (true, Ok(r)) = (keep, MarginRequirement::new(*initial, *fraction)) {
                list.push((*m, r));
            }
        }
        if let Ok(report) = capital_efficiency(&list) {
            prop_assert!(all_finite(&report), "{report:?}");
        }
        let (Some(before), Some(after), Some(set)) = (btc_market(spots[0], 0.5, 0.0), btc_market(spots[1], 0.6, 0.0), btc_instruments(1.0, 100.0)) else {
            return Ok(());
        };
        let book = |qs: &[f64]| -> Vec<Position> {
            qs.iter().enumerate().map(|(k, q)| Position::new(iid(NAMES[k % NAMES.len()]), *q)).collect()
        };
        let (a, b) = (book(&quantities[..2]), book(&quantities[2..]));
        let p0 = any_grid_policy(presets[0], &grid_numbers);
        let p1 = any_grid_policy(presets[1], &[]);
        if let Ok(c) = explain_margin_change(
            &set,
            MarginState { positions: &a, market: &before, policy: &p0 },
            MarginState { positions: &b, market: &after, policy: &p1 },
        ) {
            prop_assert!(all_finite(&c), "{c:?}");
        }
    }

    /// Concentration add-ons and spread credits from arbitrary numbers,
    /// including tiers nobody validated (the fields are public).
    #[test]
    fn concentration_and_spread_credits_are_finite_or_refuse(
        tiers in proptest::collection::vec((near(0.0, 5.0), near(0.0, 1.0)), 0..4),
        default_depth in proptest::option::of(near(1.0, 1e7)),
        exposure in near(0.0, 1e9), depth in near(1.0, 1e7),
        credit in (near(0.01, 1.0), near(0.1, 10.0), near(0.01, 1.0), near(0.01, 1.0)),
        exposures in proptest::collection::vec((near(0.0, 1e6), near(-1e6, 1e6)), 3),
    ) {
        let c = Concentration {
            default_depth,
            depths: vec![MarketDepth { underlying: uid("BTC"), notional: depth }],
            tiers: tiers.iter().map(|&(above, rate)| ConcentrationTier { above, rate }).collect(),
        };
        if let Ok(add_on) = c.add_on(exposure, depth) {
            prop_assert!(add_on.is_finite() && add_on >= 0.0, "{add_on} from {c:?}");
        }
        let mut credits = Vec::new();
        if let Ok(s) = SpreadCredit::new(uid("BTC"), uid("ETH"), credit.0, credit.1) {
            prop_assert!(s.credit_rate() > 0.0 && s.credit_rate() <= 1.0 && s.ratio().is_finite() && s.ratio() > 0.0);
            credits.push(s);
        }
        if let Ok(s) = SpreadCredit::from_correlation(uid("ETH"), uid("SOL"), credit.2, credit.3) {
            prop_assert!(s.credit_rate() > 0.0 && s.credit_rate() <= 1.0, "{s:?}");
            match s.clone().with_ratio(credit.0) {
                Ok(r) => prop_assert!(r.ratio().is_finite() && r.ratio() > 0.0),
                Err(_) => prop_assert!(!(credit.0.is_finite() && credit.0 > 0.0)),
            }
            credits.push(s);
        }
        let policy = OffsetPolicy::new(credits).unwrap();
        let list: Vec<UnderlyingExposure> = ["BTC", "ETH", "SOL"]
            .iter()
            .zip(&exposures)
            .map(|(name, &(requirement, delta_notional))| UnderlyingExposure { underlying: uid(name), requirement, delta_notional })
            .collect();
        if let Ok(applied) = policy.apply(&list) {
            prop_assert!(all_finite(&applied), "{applied:?}");
        }
        let resolved = policy.resolve(|u| ["BTC", "ETH", "SOL"].iter().position(|n| uid(n) == *u));
        let requirement: Vec<f64> = exposures.iter().map(|e| e.0).collect();
        let delta: Vec<f64> = exposures.iter().map(|e| e.1).collect();
        let mut scratch = vec![0.0; 6];
        if let Ok(total) = resolved.total_credit(&requirement, &delta, &mut scratch) {
            prop_assert!(total.is_finite() && total >= 0.0, "{total}");
        }
    }
}
