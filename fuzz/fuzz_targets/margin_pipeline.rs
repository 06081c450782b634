//! The margin and collateral pipeline end to end: arbitrary bytes -> a
//! market, instruments and a book (as in `pipeline`) and a grid policy (a
//! preset with fuzzed fields) -> `GridMarginEngine` (requirement,
//! breakdown, batch, cached state, what-if, applied orders) ->
//! isolated and cross margin -> ES margin over a small scenario set ->
//! collateral valuation, account health and a liquidation plan ->
//! `explain_margin_change` and `capital_efficiency`.
//!
//! Every step may return a typed error; nothing may panic, and every `Ok`
//! is finite and sane: `initial >= 0`, `maintenance <= initial`, the
//! breakdown agrees with the fast path, the batch with single accounts
//! bit for bit, a what-if with margining the account with the order
//! (relative to the size of the positions), cross margin never above
//! isolated margin.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portfolio_margin::{
    Account, AccountId, AntiProcyclicality, AssetId, AssetKind, Balance, BorrowUplift,
    CollateralAsset, CollateralPolicy, Concentration, ConcentrationTier, Confidence, CrossPolicy,
    DayBasis, Error, EsMarginInputs, EsMarginPolicy, ExtremeMoves, ExtremeScale, ExtremeVol,
    FinraPortfolioType, GridAccount, GridMargin, GridMarginEngine, GridPolicy, Haircut,
    HaircutPolicy, HealthBands, HedgedUnwind, HorizonScaling, InstrumentSet, IsolatedPolicy,
    LiquidationPolicy, LiquidityTier, LiquidityTiers, LongLookbackFloor, LotSize,
    MarginRequirement, MarginState, MarketDepth, MarketSnapshot, Methodology, MinimumScope,
    OffsetPolicy, OptionMinimum, Order, Portfolio, Position, PriceRange, PriceSource,
    PricedCollateral, PutMinimumBasis, QuantileRule, Revaluation, RiskArrays, RiskFactor,
    ScenarioSet, ShockKind, SpeedLimit, SpeedLimitScope, SpreadCredit, UnderlyingId,
    UnderlyingRange, VolScenarios, VolTermScaling, VolatilityForecast, VolatilityHaircut,
    VolatilitySource, YearFraction, ZeroMove, account_health, capital_efficiency, cross_margin,
    es_margin, explain_margin_change, health_from_valuation, isolated_margin, plan_liquidation,
    plan_liquidation_by_quantities, portfolio_es_margin, portfolio_pnl, positions_value,
    projected_es_margin, value_collateral,
};
use portfolio_margin_fuzz::input::{self, InstrumentIn, UnderlyingIn};
use portfolio_margin_fuzz::{
    assert_finite_numbers, check_collateral, check_es_margin, check_requirement, reached,
};

/// Relative tolerance of a what-if against margining the account with the
/// order (the sums are formed in another order), relative to the size of
/// the positions' loss arrays, delta notionals and option minimums.
const WHAT_IF_RELATIVE: f64 = 1e-9;
/// Absolute slack of every comparison: below this, numbers are subnormal
/// or nearly so and carry few significant digits.
const TINY: f64 = 1e-300;
/// Above this size the what-if comparison is skipped (rounding near
/// `f64::MAX` may overflow one path and not the other).
const HUGE: f64 = 1e290;
/// Accounts in one `margin_batch` call: above its chunk of 256 accounts,
/// so the batch is split across threads.
const BATCH: usize = 260;

/// A number as [`input::Num`], with the sensible range first: when the
/// fuzzer's bytes run out (zeros) it gives the low end of the range, not a
/// raw `0.0`, so short inputs reach the later stages.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Val {
    Scaled(u16),
    Raw(f64),
}

impl Val {
    fn get(self, lo: f64, hi: f64) -> f64 {
        match self {
            Val::Raw(x) => x,
            Val::Scaled(u) => lo + (hi - lo) * f64::from(u) / f64::from(u16::MAX),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Preset {
    Span { price: Val, vol: Val },
    Finra(u8),
    Deribit,
}

#[derive(Debug, Arbitrary)]
struct ExtremeIn {
    moves: Vec<Val>,
    fraction: bool,
    cover: Val,
    vol_up: bool,
}

#[derive(Debug, Arbitrary)]
enum Tweak {
    Range {
        down: Val,
        up: Val,
    },
    UnderlyingRange {
        underlying: u8,
        down: Val,
        up: Val,
    },
    Steps(u8),
    ZeroMove(bool),
    Vol {
        kind: u8,
        up: Val,
        down: Val,
        scenarios: u8,
    },
    TermScaling(Option<[Val; 5]>),
    Extreme(Option<ExtremeIn>),
    Horizon(Val),
    OptionMinimum {
        fraction: Val,
        amount: Val,
        all: bool,
    },
    MinDeltaCharge(Val),
    Credit {
        a: u8,
        b: u8,
        rate: Val,
        ratio: Val,
    },
    CorrelationBreak(Val),
    Concentration {
        default_depth: Option<Val>,
        depth: Option<(u8, Val)>,
        tiers: Vec<(Val, Val)>,
    },
    Maintenance(Val),
}

#[derive(Debug, Arbitrary)]
struct PolicyIn {
    preset: Preset,
    tweaks: Vec<Tweak>,
}

#[derive(Debug, Arbitrary)]
struct IsolatedIn {
    fractions: [Val; 5],
    put_strike: bool,
    maintenance: Val,
    cross_maintenance: Val,
    credits: Vec<(u8, u8, Val, Val)>,
}

#[derive(Debug, Arbitrary)]
struct EsIn {
    moves: Vec<Val>,
    confidence: Val,
    mpor: u8,
    linear: bool,
    at_horizon: bool,
    maintenance: Val,
    buffer: Option<Val>,
    release: Val,
    stressed: Option<(Val, Val)>,
    floor: Option<u8>,
    speed: Option<(Val, bool, Val)>,
    current_vol: Val,
    forecast_vol: Val,
}

#[derive(Debug, Arbitrary)]
enum LotIn {
    Fraction(Val),
    Contracts(Val),
}

#[derive(Debug, Arbitrary)]
struct CollateralIn {
    cash: Val,
    coins: Val,
    sigma: Option<Val>,
    tiers: Vec<(Val, Val)>,
    uplift: Option<Val>,
    bands: [Val; 3],
    target: Val,
    lot: LotIn,
    keep: bool,
    max_steps: u8,
}

#[derive(Debug, Arbitrary)]
struct AfterIn {
    positions: Vec<(u8, Val)>,
    spot_factor: Val,
    policy: PolicyIn,
}

#[derive(Debug, Arbitrary)]
struct Input {
    as_of_offset: i32,
    underlyings: Vec<UnderlyingIn>,
    instruments: Vec<InstrumentIn>,
    positions: Vec<(u8, Val)>,
    policy: PolicyIn,
    orders: Vec<(u8, Val)>,
    isolated: IsolatedIn,
    es: EsIn,
    collateral: CollateralIn,
    after: AfterIn,
}

fn shock_kind(k: u8) -> ShockKind {
    match k % 3 {
        0 => ShockKind::Relative,
        1 => ShockKind::Log,
        _ => ShockKind::Absolute,
    }
}

/// A preset with fuzzed fields; public fields are set as given (the engine
/// validates them), validated parts are skipped when invalid.
fn grid_policy(p: &PolicyIn, ids: &[UnderlyingId]) -> Option<GridPolicy> {
    let pick = |k: u8| ids[usize::from(k) % ids.len()].clone();
    let mut policy = match p.preset {
        Preset::Span { price, vol } => {
            GridPolicy::cme_span_16(price.get(0.01, 0.3), vol.get(0.01, 0.5)).ok()?
        }
        Preset::Finra(k) => GridPolicy::finra_4210(match k % 3 {
            0 => FinraPortfolioType::MarginEquity,
            1 => FinraPortfolioType::HighCapBroadIndex,
            _ => FinraPortfolioType::NonHighCapBroadIndex,
        }),
        Preset::Deribit => GridPolicy::deribit_style(),
    };
    for tweak in p.tweaks.iter().take(6) {
        match tweak {
            Tweak::Range { down, up } => {
                if let Ok(r) = PriceRange::new(down.get(0.01, 0.9), up.get(0.01, 5.0)) {
                    policy.range = r;
                }
            }
            Tweak::UnderlyingRange {
                underlying,
                down,
                up,
            } => {
                if let Ok(range) = PriceRange::new(down.get(0.01, 0.9), up.get(0.01, 5.0)) {
                    policy.ranges.push(UnderlyingRange {
                        underlying: pick(*underlying),
                        range,
                    });
                }
            }
            Tweak::Steps(n) => policy.steps_per_side = usize::from(n % 70),
            Tweak::ZeroMove(included) => {
                policy.zero_move = if *included {
                    ZeroMove::Included
                } else {
                    ZeroMove::Excluded
                }
            }
            Tweak::Vol {
                kind,
                up,
                down,
                scenarios,
            } => {
                policy.vol.kind = shock_kind(*kind);
                policy.vol.up = up.get(0.01, 2.0);
                policy.vol.down = down.get(0.01, 0.9);
                policy.vol.scenarios = match scenarios % 3 {
                    0 => VolScenarios::Unchanged,
                    1 => VolScenarios::UpDown,
                    _ => VolScenarios::DownSameUp,
                };
            }
            Tweak::TermScaling(scaling) => {
                policy.vol.term_scaling = scaling.and_then(|s| {
                    VolTermScaling::new(
                        s[0].get(1.0, 90.0),
                        s[1].get(0.0, 1.0),
                        s[2].get(0.0, 1.0),
                        s[3].get(0.1, 5.0),
                        s[4].get(0.0, 2.0),
                    )
                    .ok()
                });
            }
            Tweak::Extreme(extreme) => {
                policy.extreme = extreme.as_ref().map(|e| ExtremeMoves {
                    moves: e
                        .moves
                        .iter()
                        .take(10)
                        .map(|m| m.get(-0.95, 10.0))
                        .collect(),
                    scale: if e.fraction {
                        ExtremeScale::Fraction
                    } else {
                        ExtremeScale::RangeMultiple
                    },
                    cover: e.cover.get(0.01, 1.0),
                    vol: if e.vol_up {
                        ExtremeVol::Up
                    } else {
                        ExtremeVol::Unchanged
                    },
                });
            }
            Tweak::Horizon(days) => policy.horizon_days = days.get(0.0, 30.0),
            Tweak::OptionMinimum {
                fraction,
                amount,
                all,
            } => {
                policy.option_minimum = OptionMinimum {
                    fraction_of_underlying: fraction.get(0.0, 0.2),
                    amount_per_unit: amount.get(0.0, 10.0),
                    scope: if *all {
                        MinimumScope::AllOptions
                    } else {
                        MinimumScope::ShortOptions
                    },
                };
            }
            Tweak::MinDeltaCharge(x) => policy.min_delta_charge = x.get(0.0, 0.2),
            Tweak::Credit { a, b, rate, ratio } => {
                if let Ok(credit) = SpreadCredit::new(
                    pick(*a),
                    pick(*b),
                    rate.get(0.01, 1.0),
                    ratio.get(0.1, 10.0),
                ) {
                    let mut credits = policy.offsets.credits().to_vec();
                    credits.push(credit);
                    if let Ok(offsets) = OffsetPolicy::new(credits) {
                        policy.offsets = offsets;
                    }
                }
            }
            Tweak::CorrelationBreak(x) => policy.correlation_break = x.get(0.0, 1.0),
            Tweak::Concentration {
                default_depth,
                depth,
                tiers,
            } => {
                let mut above = 0.0;
                policy.concentration = Concentration {
                    default_depth: default_depth.map(|d| d.get(1e3, 1e8)),
                    depths: depth
                        .iter()
                        .map(|(u, d)| MarketDepth {
                            underlying: pick(*u),
                            notional: d.get(1e3, 1e8),
                        })
                        .collect(),
                    tiers: tiers
                        .iter()
                        .take(4)
                        .map(|(step, rate)| {
                            above += step.get(0.0, 5.0);
                            ConcentrationTier {
                                above,
                                rate: rate.get(0.0, 0.2),
                            }
                        })
                        .collect(),
                };
            }
            Tweak::Maintenance(x) => policy.maintenance_fraction = x.get(0.0, 1.0),
        }
    }
    Some(policy)
}

/// Up to 8 positions (duplicates allowed), quantities in +-1000.
fn positions(raw: &[(u8, Val)], n: usize) -> Vec<Position> {
    raw.iter()
        .take(8)
        .map(|(k, q)| {
            Position::new(
                input::instrument_id(usize::from(*k) % n),
                q.get(-1000.0, 1000.0),
            )
        })
        .collect()
}

/// Duplicates merged in order of appearance (quantities added in the order
/// given, as the engine merges them), zeros dropped.
fn merge(raw: &[Position]) -> Vec<Position> {
    let mut out: Vec<Position> = Vec::new();
    for p in raw {
        match out.iter_mut().find(|o| o.instrument == p.instrument) {
            Some(o) => o.quantity += p.quantity,
            None => out.push(p.clone()),
        }
    }
    out.retain(|p| p.quantity != 0.0);
    out
}

/// Per instrument, the size of one contract's contributions: its largest
/// weighted loss, delta notional and option minimums (infinite if the
/// engine refuses one contract).
fn unit_sizes(engine: &GridMarginEngine, instruments: &InstrumentSet) -> Vec<f64> {
    instruments
        .iter()
        .map(|listed| {
            let Ok(index) = engine.instrument_index(&listed.id) else {
                panic!("{} is listed", listed.id);
            };
            let mut size = engine
                .loss_array(index)
                .iter()
                .fold(0.0f64, |m, x| m.max(x.abs()));
            for q in [1.0, -1.0] {
                let one = [Position::new(listed.id.clone(), q)];
                match engine
                    .account_from_positions(&one)
                    .and_then(|a| engine.margin(&a))
                {
                    Ok(m) => {
                        for u in &m.underlyings {
                            size += u.delta_notional.abs() + u.option_minimum;
                        }
                    }
                    Err(_) => return f64::INFINITY,
                }
            }
            size
        })
        .collect()
}

/// The size against which rounding differences of a book are measured:
/// `sum |quantity| x unit size` over every position (before merging).
fn book_size(instruments: &InstrumentSet, units: &[f64], positions: &[Position]) -> f64 {
    positions
        .iter()
        .map(|p| match instruments.position_of(&p.instrument) {
            Ok(k) => p.quantity.abs() * units.get(k).copied().unwrap_or(f64::INFINITY),
            Err(_) => f64::INFINITY,
        })
        .sum()
}

/// The breakdown is consistent with itself and with the loss arrays.
fn check_breakdown(
    engine: &GridMarginEngine,
    instruments: &InstrumentSet,
    merged: &[Position],
    m: &GridMargin,
) {
    assert_finite_numbers("grid margin", m);
    check_requirement("grid margin", &m.requirement);
    let mut sum = 0.0;
    let mut concentration = 0.0;
    for u in &m.underlyings {
        let expected = u.scan_risk.max(u.option_minimum).max(u.delta_charge);
        assert_eq!(u.requirement, expected, "{}: requirement", u.underlying);
        assert!(u.scan_risk >= 0.0 && u.option_minimum >= 0.0 && u.delta_charge >= 0.0);
        assert!(u.concentration_add_on >= 0.0);
        sum += u.requirement;
        concentration += u.concentration_add_on;
        // The scan risk against the loss arrays summed here.
        let held: Vec<(&Position, &[f64])> = merged
            .iter()
            .filter(|p| {
                instruments
                    .get(&p.instrument)
                    .is_ok_and(|i| i.underlying() == &u.underlying)
            })
            .filter_map(|p| {
                let index = engine.instrument_index(&p.instrument).ok()?;
                Some((p, engine.loss_array(index)))
            })
            .collect();
        let mut scan = 0.0f64;
        let mut size = 0.0f64;
        for s in 0..engine.scenario_count() {
            let mut loss = 0.0;
            let mut gross = 0.0;
            for (p, row) in &held {
                let x = p.quantity * row.get(s).copied().unwrap_or(0.0);
                loss += x;
                gross += x.abs();
            }
            scan = scan.max(loss);
            size = size.max(gross);
        }
        if size.is_finite() && size < HUGE {
            assert!(
                (u.scan_risk - scan).abs() <= WHAT_IF_RELATIVE * size + TINY,
                "{}: scan risk {} but the loss arrays give {scan} (size {size})",
                u.underlying,
                u.scan_risk
            );
            let at_worst: f64 = u.positions.iter().map(|p| p.loss_at_worst).sum();
            if u.scan_risk > 0.0 {
                assert!(
                    (at_worst - u.scan_risk).abs() <= WHAT_IF_RELATIVE * size + TINY,
                    "{}: losses at worst sum to {at_worst}, scan risk {}",
                    u.underlying,
                    u.scan_risk
                );
            }
        }
    }
    assert_eq!(m.sum_of_underlyings, sum);
    assert_eq!(m.concentration_add_on, concentration);
    assert!(m.spread_credit >= 0.0 && m.spread_credit <= sum * (1.0 + 1e-12));
    let cb = engine.policy().correlation_break;
    let initial = (sum - m.spread_credit * (1.0 - cb) + concentration).max(0.0);
    assert_eq!(
        m.requirement.initial(),
        initial,
        "initial from the breakdown"
    );
}

/// Everything the grid engine offers, on the book, checked against itself.
fn grid_checks(
    engine: &GridMarginEngine,
    instruments: &InstrumentSet,
    raw: &[Position],
    merged: &[Position],
    orders: &[(u8, Val)],
) -> Option<MarginRequirement> {
    let from_raw = engine.account_from_positions(raw);
    let account = engine.account_from_positions(merged);
    if let (Ok(a), Ok(b)) = (&from_raw, &account) {
        assert_eq!(a, b, "merging before or in the engine gives one account");
    }
    let account = account.ok()?;
    reached("grid account");
    let requirement = engine.requirement(&account);
    let margin = engine.margin(&account);
    let state = engine.state(&account);
    match (&requirement, &margin, &state) {
        (Ok(r), Ok(m), Ok(s)) => {
            reached("grid margin");
            check_requirement("grid requirement", r);
            assert_eq!(*r, m.requirement, "breakdown differs from the fast path");
            assert_eq!(
                *r,
                s.requirement(),
                "cached state differs from the fast path"
            );
            check_breakdown(engine, instruments, merged, m);
        }
        (Err(a), Err(b), Err(c)) => {
            // As printed: an error carrying a NaN is not equal to itself.
            let (a, b, c) = (format!("{a:?}"), format!("{b:?}"), format!("{c:?}"));
            assert!(a == b && b == c, "{a} / {b} / {c}");
        }
        _ => panic!("requirement {requirement:?}, breakdown {margin:?}, state {state:?}"),
    }

    // Batch = one by one, bit for bit, across rayon's split.
    let empty = engine.account_from_positions(&[]).ok()?;
    let mut accounts: Vec<GridAccount> = vec![account.clone(), empty];
    if let Ok(a) = &from_raw {
        accounts.push(a.clone());
    }
    let singles: Vec<_> = accounts.iter().map(|a| engine.requirement(a)).collect();
    let batch: Vec<GridAccount> = accounts.iter().cycle().take(BATCH).cloned().collect();
    for (k, r) in engine.margin_batch(&batch).into_iter().enumerate() {
        assert_eq!(r, singles[k % singles.len()], "batch entry {k}");
    }

    // What-ifs and applied orders against margining the book with the order.
    let units = unit_sizes(engine, instruments);
    if let Ok(state) = &state {
        for (k, q) in orders.iter().take(3) {
            let id = input::instrument_id(usize::from(*k) % instruments.len());
            let Ok(index) = engine.instrument_index(&id) else {
                panic!("{id} is listed");
            };
            let order = Order {
                instrument: index,
                quantity: q.get(-1000.0, 1000.0),
            };
            let mut with = merged.to_vec();
            with.push(Position::new(id.clone(), order.quantity));
            let expected = engine
                .account_from_positions(&with)
                .and_then(|a| engine.requirement(&a));
            let got = engine.what_if(state, order);
            let size = book_size(instruments, &units, &with);
            if let Ok(g) = &got {
                check_requirement("what-if", g);
            }
            if size.is_finite() && size < HUGE {
                match (&got, &expected) {
                    (Ok(g), Ok(e)) => {
                        reached("what-if compared");
                        let tolerance =
                            WHAT_IF_RELATIVE * (size + g.initial().max(e.initial())) + TINY;
                        assert!(
                            (g.initial() - e.initial()).abs() <= tolerance,
                            "what-if {g:?} vs {e:?} (size {size})"
                        );
                    }
                    (Err(_), Err(_)) => {}
                    _ => panic!("what-if {got:?} but margin with the order {expected:?}"),
                }
            }
            let mut applied = state.clone();
            let result = engine.apply_order(&mut applied, order);
            match (&result, &got) {
                (Ok(()), Ok(_)) => {
                    if let Ok(e) = &expected {
                        assert_eq!(applied.requirement(), *e, "applied order");
                    }
                }
                (Err(_), _) => assert_eq!(applied, *state, "a failed order leaves the state"),
                (Ok(()), Err(e)) => panic!("order applied although its what-if failed: {e:?}"),
            }
        }
    }
    requirement.ok()
}

fn isolated_and_cross(
    p: &IsolatedIn,
    ids: &[UnderlyingId],
    book: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
) -> (Option<MarginRequirement>, Option<MarginRequirement>) {
    let mut policy = IsolatedPolicy::default();
    type Setter = fn(IsolatedPolicy, f64) -> portfolio_margin::Result<IsolatedPolicy>;
    let setters: [(Setter, f64, f64); 5] = [
        (IsolatedPolicy::with_futures_fraction, 0.0, 1.0),
        (IsolatedPolicy::with_long_spot_fraction, 0.0, 1.0),
        (IsolatedPolicy::with_short_spot_fraction, 0.0, 2.0),
        (IsolatedPolicy::with_option_base_fraction, 0.0, 1.0),
        (IsolatedPolicy::with_option_minimum_fraction, 0.0, 1.0),
    ];
    for ((set, lo, hi), x) in setters.iter().zip(p.fractions) {
        if let Ok(next) = set(policy.clone(), x.get(*lo, *hi)) {
            policy = next;
        }
    }
    if p.put_strike {
        policy = policy.with_put_minimum_basis(PutMinimumBasis::UnderlyingValue);
    }
    if let Ok(next) = policy
        .clone()
        .with_maintenance_fraction(p.maintenance.get(0.0, 1.0))
    {
        policy = next;
    }
    let pick = |k: u8| ids[usize::from(k) % ids.len()].clone();
    let credits: Vec<SpreadCredit> = p
        .credits
        .iter()
        .take(3)
        .filter_map(|(a, b, rate, ratio)| {
            SpreadCredit::new(
                pick(*a),
                pick(*b),
                rate.get(0.01, 1.0),
                ratio.get(0.1, 10.0),
            )
            .ok()
        })
        .collect();
    let offsets = OffsetPolicy::new(credits).unwrap_or_default();
    let isolated = isolated_margin(book, instruments, market, &policy);
    if let Ok(i) = &isolated {
        reached("isolated margin");
        assert_finite_numbers("isolated margin", i);
        check_requirement("isolated margin", &i.requirement);
        for position in &i.positions {
            check_requirement("isolated position margin", &position.requirement);
        }
    }
    let cross = CrossPolicy::new(policy, offsets, p.cross_maintenance.get(0.0, 1.0))
        .ok()
        .map(|c| cross_margin(book, instruments, market, &c));
    if let Some(Ok(c)) = &cross {
        reached("cross margin");
        assert_finite_numbers("cross margin", c);
        check_requirement("cross margin", &c.requirement);
        for u in &c.underlyings {
            check_requirement("cross underlying margin", &u.requirement);
            assert!(
                u.requirement.initial() <= u.isolated_initial,
                "{}: cross {} above isolated {}",
                u.underlying,
                u.requirement.initial(),
                u.isolated_initial
            );
        }
        if let Ok(i) = &isolated {
            assert!(
                c.requirement.initial() <= i.requirement.initial(),
                "cross {} above isolated {}",
                c.requirement.initial(),
                i.requirement.initial()
            );
        }
    }
    (
        isolated.ok().map(|i| i.requirement),
        cross.and_then(Result::ok).map(|c| c.requirement),
    )
}

fn es_checks(
    e: &EsIn,
    ids: &[UnderlyingId],
    book: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
) -> Option<MarginRequirement> {
    let factors: Vec<(RiskFactor, ShockKind)> = ids
        .iter()
        .map(|id| (RiskFactor::Spot(id.clone()), ShockKind::Relative))
        .collect();
    let mut sizes = Vec::new();
    let fallback = [
        Val::Scaled(0),
        Val::Scaled(u16::MAX),
        Val::Scaled(20_000),
        Val::Scaled(40_000),
    ];
    let moves = if e.moves.is_empty() {
        &fallback[..]
    } else {
        &e.moves[..]
    };
    for m in moves.iter().take(64) {
        let m = m.get(-0.5, 0.5);
        for j in 0..ids.len() {
            sizes.push(m * (1.0 + 0.25 * j as f64));
        }
    }
    let horizon = YearFraction::from_days(1.0, DayBasis::Calendar365).ok()?;
    let scenarios = ScenarioSet::new(factors, sizes, horizon).ok()?;
    let arrays = RiskArrays::compute(instruments, market, &scenarios, Revaluation::Full).ok()?;
    let pnl = portfolio_pnl(book, &arrays).ok()?;
    reached("ES scenario P&L");

    let mut apc = AntiProcyclicality::none();
    if let Some(b) = e.buffer
        && let Ok(next) = apc.with_buffer(b.get(0.25, 1.0))
    {
        apc = next;
    }
    let mut stressed = Vec::new();
    if let Some((weight, scale)) = e.stressed {
        if let Ok(next) = apc.with_stressed_weight(weight.get(0.25, 1.0)) {
            apc = next;
        }
        let k = scale.get(0.5, 5.0);
        stressed = pnl.iter().map(|x| k * x).collect();
    }
    if let Some(n) = e.floor
        && let Ok(floor) = LongLookbackFloor::new(1 + usize::from(n % 64))
    {
        apc = apc.with_long_lookback_floor(floor);
    }
    let mut previous = None;
    if let Some((increase, total, prev)) = e.speed {
        let scope = if total {
            SpeedLimitScope::Total
        } else {
            SpeedLimitScope::AntiProcyclicalComponent
        };
        if let Ok(limit) = SpeedLimit::new(increase.get(0.01, 1.0), scope) {
            apc = apc.with_speed_limit(limit);
        }
        previous = Some(prev.get(0.0, 1e6));
    }
    let rule = if e.linear {
        QuantileRule::Linear
    } else {
        QuantileRule::Empirical
    };
    let confidence = Confidence::new(e.confidence.get(0.5, 0.999)).ok()?;
    let mut policy = EsMarginPolicy::new(confidence, 1 + u32::from(e.mpor % 10))
        .ok()?
        .with_quantile_rule(rule)
        .with_horizon_scaling(if e.at_horizon {
            HorizonScaling::ScenariosAtHorizon
        } else {
            HorizonScaling::SquareRootOfTime
        })
        .with_anti_procyclicality(apc);
    if let Ok(next) = policy.with_maintenance_fraction(e.maintenance.get(0.0, 1.0)) {
        policy = next;
    }
    // The 10-year P&L: the current and stressed P&L, repeated.
    let long: Vec<f64> = pnl
        .iter()
        .chain(&stressed)
        .copied()
        .cycle()
        .take(64.max(pnl.len()))
        .collect();
    let mut inputs = EsMarginInputs::new();
    if !stressed.is_empty()
        && let Ok(next) = inputs.with_stressed_pnl(&stressed)
    {
        inputs = next;
    }
    if let Ok(next) = inputs.with_long_lookback_pnl(&long) {
        inputs = next;
    }
    if let Some(previous) = previous
        && let Ok(next) = inputs.with_previous_initial_margin(previous)
    {
        inputs = next;
    }
    if let Ok(next) = inputs.with_buffer_release(e.release.get(0.0, 1.0)) {
        inputs = next;
    }

    let single = es_margin(&pnl, &inputs, &policy);
    if let Ok(m) = &single {
        reached("ES margin");
        check_es_margin("ES margin", m, rule);
    }
    let per_position = portfolio_es_margin(book, &arrays, &inputs, &policy);
    if let Ok(m) = &per_position {
        check_es_margin("portfolio ES margin", m, rule);
        if !book.positions().is_empty() {
            assert_eq!(m.position_contributions.len(), book.positions().len());
            let total: f64 = m.position_contributions.iter().sum();
            let size: f64 = m.position_contributions.iter().map(|c| c.abs()).sum();
            assert!(
                (total - m.mpor_expected_shortfall).abs()
                    <= 1e-9 * (size + m.mpor_expected_shortfall.abs()) + TINY,
                "contributions sum to {total}, ES {}",
                m.mpor_expected_shortfall
            );
        }
    }
    match (&single, &per_position) {
        (Ok(a), Ok(b)) => {
            // The account P&L is added in position order either way.
            assert_eq!(a.requirement, b.requirement, "portfolio path differs");
            assert_eq!(
                a.expected_shortfall.to_bits(),
                b.expected_shortfall.to_bits()
            );
            assert_eq!(a.value_at_risk.to_bits(), b.value_at_risk.to_bits());
        }
        (Err(_), Err(_)) => {}
        // Within a few factors of f64::MAX the book's ES fits but a sum of
        // one position's tail P&L (its component ES before the division by
        // the tail size) may not: a typed overflow, not a wrong number.
        (Ok(a), Err(Error::NonFiniteResult { .. })) if a.mpor_expected_shortfall.abs() > 1e300 => {
            reached("component ES overflow");
        }
        _ => panic!("es_margin {single:?} but portfolio_es_margin {per_position:?}"),
    }
    if let Ok(p) = projected_es_margin(
        &pnl,
        &inputs,
        &policy,
        e.current_vol.get(0.001, 0.1),
        VolatilityForecast::Given(e.forecast_vol.get(0.0, 0.2)),
    ) {
        reached("projected ES margin");
        assert_finite_numbers("projected ES margin", &p);
        check_es_margin("current ES margin", &p.current, rule);
        check_es_margin("projected ES margin", &p.projected, rule);
    }
    single.ok().map(|m| m.requirement)
}

fn collateral_checks(
    c: &CollateralIn,
    ids: &[UnderlyingId],
    book: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    margin: impl Fn(&Portfolio) -> portfolio_margin::Result<MarginRequirement>,
    marks: Option<f64>,
    engine: Option<&GridMarginEngine>,
) {
    let usdc = AssetId::new("USDC").expect("valid id");
    let coin = AssetId::new(ids[0].to_string()).expect("an underlying name is an asset name");
    let haircuts = || -> portfolio_margin::Result<HaircutPolicy> {
        let source = match c.sigma {
            Some(s) => VolatilitySource::Fixed(s.get(0.0, 3.0)),
            None => VolatilitySource::MarketAtm,
        };
        let mut from = 0.0;
        let tiers = c
            .tiers
            .iter()
            .take(4)
            .enumerate()
            .map(|(k, (step, h))| {
                if k > 0 {
                    from += step.get(1.0, 1e7);
                }
                Ok(LiquidityTier {
                    from,
                    haircut: Haircut::new(h.get(0.0, 0.5))?,
                })
            })
            .collect::<portfolio_margin::Result<Vec<_>>>()?;
        HaircutPolicy::new(
            VolatilityHaircut::with_defaults(source)?,
            LiquidityTiers::new(tiers)?,
            match c.uplift {
                Some(u) => BorrowUplift::Fixed(u.get(0.0, 1.0)),
                None => BorrowUplift::MirrorHaircut,
            },
        )
    };
    let haircuts = haircuts().unwrap_or_else(|_| HaircutPolicy::none());
    let Ok(policy) = CollateralPolicy::new(
        usdc.clone(),
        vec![
            CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0).expect("asset"),
            CollateralAsset::new(
                coin.clone(),
                AssetKind::Coin,
                PriceSource::Underlying(ids[0].clone()),
                haircuts,
            )
            .expect("an asset priced from an underlying"),
        ],
    ) else {
        panic!("two distinct assets");
    };
    let balances = [
        Balance::new(usdc, c.cash.get(-1e6, 1e6)),
        Balance::new(coin, c.coins.get(-10.0, 10.0)),
    ];
    if let Ok(v) = value_collateral(&balances, market, &policy) {
        reached("collateral valuation");
        check_collateral(&v);
        assert_finite_numbers("collateral valuation", &v);
    }
    let account = Account {
        balances: &balances,
        portfolio: book,
        instruments,
        market,
        policy: &policy,
    };
    let bands = HealthBands::new(
        c.bands[0].get(1.0, 2.0),
        c.bands[1].get(0.8, 1.2),
        c.bands[2].get(0.5, 1.0),
    )
    .unwrap_or_default();
    let Ok(requirement) = margin(book) else {
        return;
    };
    if let Ok(h) = account_health(&account, requirement, &bands) {
        reached("account health");
        assert_finite_numbers("account health", &h);
        assert!(h.withdrawable >= 0.0 && h.deposit_to_healthy >= 0.0);
        assert_eq!(h.margin, requirement);
    }
    // The per-snapshot path: collateral priced once, positions at the
    // engine's marks.
    if let Some(marks) = marks
        && let Ok(collateral) = PricedCollateral::new(&policy, market).value(&balances)
        && let Ok(h) = health_from_valuation(collateral, marks, requirement, &bands)
    {
        reached("health from marks");
        assert_finite_numbers("health from marks", &h);
        assert_eq!(h.positions_value, marks);
        assert!(h.withdrawable >= 0.0 && h.deposit_to_healthy >= 0.0);
    }
    let lot = match c.lot {
        LotIn::Fraction(f) => LotSize::FractionOfPosition(f.get(0.05, 1.0)),
        LotIn::Contracts(n) => LotSize::Contracts(n.get(0.01, 100.0)),
    };
    let unwind = if c.keep {
        HedgedUnwind::Keep
    } else {
        HedgedUnwind::ProRata
    };
    let Ok(liquidation) = LiquidationPolicy::new(
        c.target.get(0.5, 3.0),
        lot,
        unwind,
        1 + usize::from(c.max_steps % 32),
    ) else {
        return;
    };
    let planned = plan_liquidation(&account, &margin, &bands, &liquidation);
    // The same plan with candidates re-margined from engine indices.
    if let Some(engine) = engine
        && let Ok(rows) = book
            .positions()
            .iter()
            .map(|p| engine.instrument_index(&p.instrument))
            .collect::<portfolio_margin::Result<Vec<_>>>()
    {
        let by_quantities =
            |q: &[f64]| engine.requirement(&engine.account_from_quantities(&rows, q)?);
        let fast = plan_liquidation_by_quantities(&account, by_quantities, &bands, &liquidation);
        // As printed: an error carrying a NaN is not equal to itself.
        assert_eq!(
            format!("{fast:?}"),
            format!("{planned:?}"),
            "plan by quantities"
        );
    }
    if let Ok(plan) = planned {
        reached(if plan.steps.is_empty() {
            "liquidation plan (no step)"
        } else {
            "liquidation plan (steps)"
        });
        assert_finite_numbers("liquidation plan", &plan);
        assert!(plan.steps.len() <= liquidation.max_steps());
        if plan.restored {
            assert!(plan.final_state.health_factor.meets(liquidation.target()));
        }
        for step in &plan.steps {
            check_requirement("liquidation step margin", &step.after.margin);
        }
        for p in plan.remaining.positions() {
            let Some(q) = book
                .positions()
                .iter()
                .find(|q| q.instrument == p.instrument)
            else {
                panic!("{} was not in the book", p.instrument);
            };
            assert!(
                p.quantity.abs() <= q.quantity.abs() && p.quantity.signum() == q.quantity.signum(),
                "{} grew from {} to {}",
                p.instrument,
                q.quantity,
                p.quantity
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let Some((market, ids)) = input::market(input.as_of_offset, &input.underlyings, 1.0) else {
        return;
    };
    let Some(instruments) = input::instruments(&input.instruments, &market, &ids) else {
        return;
    };
    reached("market and instruments");
    let raw = positions(&input.positions, instruments.len());
    let merged = merge(&raw);
    let policy = grid_policy(&input.policy, &ids);
    let engine = policy
        .clone()
        .and_then(|p| GridMarginEngine::new(&instruments, &market, p).ok());
    if engine.is_some() {
        reached("grid engine");
    }
    let grid = engine
        .as_ref()
        .and_then(|e| grid_checks(e, &instruments, &raw, &merged, &input.orders));

    let Ok(book) = Portfolio::new(AccountId::new("fuzz"), merged.clone(), &instruments) else {
        return;
    };
    reached("book");
    let (isolated, cross) = isolated_and_cross(&input.isolated, &ids, &book, &instruments, &market);
    let es = es_checks(&input.es, &ids, &book, &instruments, &market);

    // The engine's marks against pricing every position again: equal to
    // the kernels' rounding, measured against the positions' own values.
    let marks = engine.as_ref().and_then(|engine| {
        let fast = engine.positions_value(&engine.account(&book).ok()?);
        let slow = positions_value(&book, &instruments, &market);
        if let (Ok(f), Ok(s)) = (&fast, &slow) {
            reached("engine marks");
            let scale: f64 = book
                .positions()
                .iter()
                .map(|p| {
                    Portfolio::new(AccountId::new("one"), vec![p.clone()], &instruments)
                        .and_then(|one| positions_value(&one, &instruments, &market))
                        .map_or(f64::INFINITY, f64::abs)
                })
                .sum();
            assert!(
                (f - s).abs() <= 1e-11 * scale + 1e-300,
                "engine marks {f} against the pricer {s} (scale {scale})"
            );
        }
        fast.ok()
    });
    match &engine {
        Some(engine) => collateral_checks(
            &input.collateral,
            &ids,
            &book,
            &instruments,
            &market,
            |p: &Portfolio| engine.requirement(&engine.account(p)?),
            marks,
            Some(engine),
        ),
        None => collateral_checks(
            &input.collateral,
            &ids,
            &book,
            &instruments,
            &market,
            |p: &Portfolio| {
                isolated_margin(p, &instruments, &market, &IsolatedPolicy::default())
                    .map(|m| m.requirement)
            },
            None,
            None,
        ),
    }

    // Why the margin changed, to another book, market and policy.
    if let (Some(policy), Some(after_policy), Some((after_market, _))) = (
        &policy,
        grid_policy(&input.after.policy, &ids),
        input::market(
            input.as_of_offset,
            &input.underlyings,
            input.after.spot_factor.get(0.5, 2.0),
        ),
    ) {
        let after_positions = positions(&input.after.positions, instruments.len());
        let change = explain_margin_change(
            &instruments,
            MarginState {
                positions: &merged,
                market: &market,
                policy,
            },
            MarginState {
                positions: &after_positions,
                market: &after_market,
                policy: &after_policy,
            },
        );
        if let Ok(c) = change {
            reached("margin change explained");
            assert_finite_numbers("margin change", &c);
            check_requirement("margin before", &c.before);
            check_requirement("margin after", &c.after);
            assert_eq!(c.change, c.after.initial() - c.before.initial());
            let parts = c.positions + c.market + c.parameters;
            let size = c.positions.abs()
                + c.market.abs()
                + c.parameters.abs()
                + c.before.initial()
                + c.after.initial();
            assert!(
                (parts - c.change).abs() <= 1e-9 * size + TINY,
                "contributions {parts} vs change {}",
                c.change
            );
            if let Some(g) = &grid {
                let tolerance = 1e-9 * g.initial().max(c.before.initial()) + TINY;
                assert!(
                    (g.initial() - c.before.initial()).abs() <= tolerance,
                    "explained before {:?} vs the book's grid margin {g:?}",
                    c.before
                );
            }
        }
    }

    // Capital efficiency of whatever was computed.
    let mut requirements = Vec::new();
    for (methodology, r) in [
        (Methodology::Isolated, isolated),
        (Methodology::Cross, cross),
        (Methodology::PortfolioGrid, grid),
        (Methodology::ExpectedShortfall, es),
    ] {
        if let Some(r) = r {
            requirements.push((methodology, r));
        }
    }
    match capital_efficiency(&requirements) {
        Ok(report) => {
            reached("capital efficiency");
            assert_finite_numbers("capital efficiency", &report);
            assert_eq!(Some(report.isolated), isolated);
            assert_eq!(report.methodologies.len(), requirements.len());
            for m in &report.methodologies {
                assert_eq!(
                    m.saving,
                    report.isolated.initial() - m.requirement.initial()
                );
            }
        }
        Err(e) => assert!(
            isolated.is_none()
                || matches!(
                    e,
                    Error::NonFiniteResult {
                        what: "saving fraction",
                        ..
                    }
                ),
            "capital efficiency refused: {e}"
        ),
    }
});
