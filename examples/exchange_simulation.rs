//! An exchange's risk loop, end to end, on synthetic data: a listing of
//! ~2,000 BTC and ETH options plus perpetuals and futures, 20,000 accounts
//! with multi-asset collateral, and a stream of market ticks with a crash
//! in the middle.
//!
//! On every tick the exchange
//!
//! 1. settles futures' and perpetuals' variation margin into cash;
//! 2. rebuilds the scenario-grid risk arrays for the new snapshot
//!    ([`GridMarginEngine::new`]);
//! 3. margins every account ([`GridMarginEngine::margin_batch`]);
//! 4. values collateral and positions at prices taken once per snapshot
//!    and assigns a health status ([`PricedCollateral`],
//!    [`GridMarginEngine::positions_value`], [`health_from_valuation`]);
//! 5. plans and executes the liquidation of accounts below maintenance
//!    ([`plan_liquidation_by_quantities`], candidates re-margined from
//!    engine indices);
//! 6. until the next tick, runs pre-trade checks on a flow of orders against
//!    cached account states ([`GridMarginEngine::what_if`]), booking the
//!    accepted ones ([`GridMarginEngine::apply_order`]).
//!
//! ```sh
//! cargo run --release --example exchange_simulation
//! cargo run --release --example exchange_simulation -- --accounts 2000 --ticks 10 --orders 500
//! ```
//!
//! Everything is seeded: two runs print the same market path, statuses and
//! counts (only the timings differ).

use portfolio_margin::{
    Account, AccountHealth, AccountId, AccountState, AssetId, AssetKind, Balance, BorrowUplift,
    CollateralAsset, CollateralPolicy, DayBasis, FutureContract, GridAccount, GridMarginEngine,
    GridPolicy, Haircut, HaircutPolicy, HealthBands, HealthStatus, Instrument, InstrumentId,
    InstrumentIndex, InstrumentSet, LiquidationPlan, LiquidationPolicy, LiquidityTier,
    LiquidityTiers, MarketSnapshot, OptionContract, OptionKind, OptionModel, Order,
    PerpetualContract, Portfolio, Position, PriceSource, PricedCollateral, Settlement, StrikeAxis,
    Timestamp, UnderlyingId, UnderlyingMarket, VolSurface, VolatilityHaircut, VolatilitySource,
    YearFraction, health_from_valuation, plan_liquidation_by_quantities, positions_value, price,
};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Options listed: the first `BTC_OPTIONS` on BTC (coin-settled, Black-76,
/// Deribit style), the rest on ETH (USD-settled).
const OPTIONS: usize = 2_000;
const BTC_OPTIONS: usize = 1_200;
/// Minutes between two market ticks.
const TICK_MINUTES: f64 = 5.0;
/// Shortest option expiry, days: the simulation may run at most
/// `MAX_TICKS` ticks so no listed option expires during it.
const MIN_EXPIRY_DAYS: f64 = 2.0;
const MAX_TICKS: usize = 500;
/// Seeds of the listing, the accounts, the market path and the order flow.
const SEED: u64 = 2026;

/// Command-line settings.
struct Config {
    accounts: usize,
    ticks: usize,
    /// Pre-trade checks between two ticks (2,000 a tick: 100,000 over the
    /// default 50 ticks).
    orders_per_tick: usize,
}

fn parse_args() -> AnyResult<Config> {
    let mut config = Config {
        accounts: 20_000,
        ticks: 50,
        orders_per_tick: 2_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--accounts" => config.accounts = value.max(1),
            "--ticks" => config.ticks = value.clamp(1, MAX_TICKS),
            "--orders" => config.orders_per_tick = value,
            _ => return Err(format!("unknown flag {flag} (--accounts, --ticks, --orders)").into()),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    match parse_args().and_then(|config| run(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The listing
// ---------------------------------------------------------------------------

/// The two underlyings, by position in `Listing::underlyings`.
const BTC: usize = 0;
const ETH: usize = 1;

/// What kind of contract a listed instrument is (the simulation needs it for
/// cash flows: options exchange premium, futures settle variation margin).
#[derive(Clone, Copy, PartialEq)]
enum Contract {
    Option,
    Perpetual,
    Future,
}

/// Every listed instrument, with the engine's index and the facts the
/// simulation uses to generate orders and cash flows.
struct Listing {
    set: InstrumentSet,
    underlyings: [UnderlyingId; 2],
    ids: Vec<InstrumentId>,
    contract: Vec<Contract>,
    /// `BTC` or `ETH`.
    underlying: Vec<usize>,
    /// Index of each underlying's perpetual.
    perpetual: [usize; 2],
}

impl Listing {
    /// Position of an instrument id in `ids` (the listing is small: ids are
    /// `O<k>`, `BTC-PERP`, ...; a map keeps it simple).
    fn index_map(&self) -> BTreeMap<&InstrumentId, usize> {
        self.ids.iter().enumerate().map(|(k, id)| (id, k)).collect()
    }
}

/// 1,200 BTC coin-settled options and 800 ETH linear options, strikes within
/// +-40% of spot, 2 to 180 days; each underlying's linear perpetual and two
/// linear futures (30 and 90 days).
fn listing(as_of: Timestamp, spot: [f64; 2]) -> AnyResult<Listing> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let underlyings = [UnderlyingId::new("BTC")?, UnderlyingId::new("ETH")?];
    let mut listing = Listing {
        set: InstrumentSet::new(),
        underlyings: underlyings.clone(),
        ids: Vec::new(),
        contract: Vec::new(),
        underlying: Vec::new(),
        perpetual: [0, 0],
    };
    let add = |l: &mut Listing, name: String, i: Instrument, c: Contract, u: usize| {
        let id = InstrumentId::new(name)?;
        l.set.insert(id.clone(), i)?;
        l.ids.push(id);
        l.contract.push(c);
        l.underlying.push(u);
        Ok::<(), portfolio_margin::Error>(())
    };
    let days = |d: f64| YearFraction::from_days(d, DayBasis::Calendar365);
    for k in 0..OPTIONS {
        let u = if k < BTC_OPTIONS { BTC } else { ETH };
        let kind = if rng.random::<bool>() {
            OptionKind::Call
        } else {
            OptionKind::Put
        };
        let strike = (spot[u] * rng.random_range(0.6..1.4f64)).round();
        let expiry = as_of.plus_years(days(rng.random_range(MIN_EXPIRY_DAYS..180.0f64).round())?);
        let mut o = OptionContract::new(underlyings[u].clone(), kind, strike, expiry)?;
        if u == BTC {
            o = o
                .with_settlement(Settlement::Inverse)
                .with_model(OptionModel::Black76);
        }
        add(
            &mut listing,
            format!("O{k}"),
            Instrument::Option(o),
            Contract::Option,
            u,
        )?;
    }
    for u in [BTC, ETH] {
        let name = underlyings[u].as_str().to_owned();
        listing.perpetual[u] = listing.ids.len();
        let perp = PerpetualContract::new(underlyings[u].clone());
        add(
            &mut listing,
            format!("{name}-PERP"),
            Instrument::Perpetual(perp),
            Contract::Perpetual,
            u,
        )?;
        for d in [30.0, 90.0] {
            let future = FutureContract::new(underlyings[u].clone(), as_of.plus_years(days(d)?));
            add(
                &mut listing,
                format!("{name}-F{d}"),
                Instrument::Future(future),
                Contract::Future,
                u,
            )?;
        }
    }
    Ok(listing)
}

// ---------------------------------------------------------------------------
// The market path
// ---------------------------------------------------------------------------

/// One tick of market data: time, spots and at-the-money vols.
#[derive(Clone, Copy)]
struct Tick {
    as_of: Timestamp,
    spot: [f64; 2],
    atm_vol: [f64; 2],
}

impl Tick {
    /// The snapshot of this tick: zero rates, and a one-expiry smile in
    /// log-moneyness (puts richer than calls, as in crypto) scaled to the
    /// tick's ATM vol.
    fn snapshot(&self, listing: &Listing) -> AnyResult<MarketSnapshot> {
        let mut builder = MarketSnapshot::builder(self.as_of);
        for u in [BTC, ETH] {
            let atm = self.atm_vol[u];
            let smile = [1.25, 1.08, 1.0, 1.02, 1.08].map(|m| m * atm).to_vec();
            let surface = VolSurface::grid(
                vec![0.25],
                StrikeAxis::LogMoneyness,
                vec![-0.4, -0.2, 0.0, 0.2, 0.4],
                smile,
            )?;
            builder = builder.underlying(
                listing.underlyings[u].clone(),
                UnderlyingMarket::new(self.spot[u], 0.0, 0.0, surface)?,
            );
        }
        Ok(builder.build()?)
    }
}

/// A correlated random walk of BTC and ETH (per tick: 0.8% and 1.0%
/// standard deviation, correlation 0.8) with a crash of -15% (BTC) and -18%
/// (ETH) spread over three ticks in the middle of the run. Implied vol
/// moves against price: `vol *= exp(-2 x log return)`, within [20%, 250%].
fn market_path(ticks: usize, start: Tick) -> AnyResult<Vec<Tick>> {
    const SIGMA: [f64; 2] = [0.008, 0.010];
    const CORRELATION: f64 = 0.8;
    const CRASH: [f64; 2] = [0.85, 0.82];
    const CRASH_TICKS: usize = 3;
    const VOL_BETA: f64 = 2.0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED + 1);
    let crash_start = ticks / 2;
    let step = YearFraction::from_days(TICK_MINUTES / 1_440.0, DayBasis::Calendar365)?;
    let mut path = vec![start];
    let mut tick = start;
    for t in 1..ticks {
        let z0: f64 = StandardNormal.sample(&mut rng);
        let e: f64 = StandardNormal.sample(&mut rng);
        let z = [
            z0,
            CORRELATION * z0 + (1.0 - CORRELATION * CORRELATION).sqrt() * e,
        ];
        let crashing = (crash_start..crash_start + CRASH_TICKS).contains(&t);
        tick.as_of = tick.as_of.plus_years(step);
        for u in [BTC, ETH] {
            let mut r = SIGMA[u] * z[u];
            if crashing {
                r += CRASH[u].ln() / CRASH_TICKS as f64;
            }
            tick.spot[u] *= r.exp();
            tick.atm_vol[u] = (tick.atm_vol[u] * (-VOL_BETA * r).exp()).clamp(0.2, 2.5);
        }
        path.push(tick);
    }
    Ok(path)
}

/// Value of one contract of each instrument at `market`, quote currency:
/// an option's premium (coin premiums converted at spot); a future's or
/// perpetual's price (the forward to expiry, spot for a perpetual), which
/// variation margin settles against.
fn marks(listing: &Listing, market: &MarketSnapshot) -> AnyResult<Vec<f64>> {
    listing
        .set
        .iter()
        .map(|item| {
            let u = market.underlying(item.instrument.underlying())?;
            Ok(match &item.instrument {
                Instrument::Option(o) => {
                    let native = price(&item.instrument, market)? * o.multiplier();
                    match o.settlement() {
                        Settlement::Linear => native,
                        Settlement::Inverse => native * u.spot(),
                    }
                }
                Instrument::Future(f) => u.forward(market.years_to(f.expiry())) * f.multiplier(),
                other => u.spot() * other.multiplier(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------

/// The collateral assets, in the order every account's balances use.
const USD: usize = 0;
const USDC: usize = 1;
const BTC_COIN: usize = 2;
const ETH_COIN: usize = 3;

/// USD and USDC at par (USDC settles), BTC and ETH with a 99%, one-day
/// volatility haircut from the market's ATM vol plus a liquidity haircut on
/// large balances (5% above $5M, 15% above $20M). Borrowed balances count
/// at market value plus the mirror of the haircut.
fn collateral_policy(listing: &Listing) -> AnyResult<(CollateralPolicy, [AssetId; 4])> {
    let ids = [
        AssetId::new("USD")?,
        AssetId::new("USDC")?,
        AssetId::new("BTC")?,
        AssetId::new("ETH")?,
    ];
    let tiers = LiquidityTiers::new(vec![
        LiquidityTier {
            from: 0.0,
            haircut: Haircut::ZERO,
        },
        LiquidityTier {
            from: 5e6,
            haircut: Haircut::new(0.05)?,
        },
        LiquidityTier {
            from: 2e7,
            haircut: Haircut::new(0.15)?,
        },
    ])?;
    let coin = |id: &AssetId, u: usize| {
        CollateralAsset::new(
            id.clone(),
            AssetKind::Coin,
            PriceSource::Underlying(listing.underlyings[u].clone()),
            HaircutPolicy::new(
                VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm)?,
                tiers.clone(),
                BorrowUplift::MirrorHaircut,
            )?,
        )
    };
    let assets = vec![
        CollateralAsset::at_par(ids[USD].clone(), AssetKind::Fiat, 1.0)?,
        CollateralAsset::at_par(ids[USDC].clone(), AssetKind::Stablecoin, 1.0)?,
        coin(&ids[BTC_COIN], BTC)?,
        coin(&ids[ETH_COIN], ETH)?,
    ];
    Ok((CollateralPolicy::new(ids[USDC].clone(), assets)?, ids))
}

/// One account: its positions (validated as a `Portfolio`) and its four
/// balances (USD, USDC, BTC, ETH; negative when borrowed).
struct Trader {
    portfolio: Portfolio,
    balances: Vec<Balance>,
}

impl Trader {
    fn positions(&self) -> &[Position] {
        self.portfolio.positions()
    }
}

/// How an account trades, which shapes its book.
#[derive(Clone, Copy)]
enum Style {
    /// Options and futures leaning one way (bullish or bearish).
    Directional,
    /// Random options, delta-hedged with the perpetual.
    DeltaHedged,
    /// Pairs of options on the same underlying with opposite signs.
    Spreads,
}

/// A random contract quantity: BTC in 0.1 steps up to 5, ETH in whole
/// contracts up to 50.
fn random_size(rng: &mut Xoshiro256PlusPlus, underlying: usize) -> f64 {
    match underlying {
        BTC => rng.random_range(1..=50) as f64 / 10.0,
        _ => rng.random_range(1..=50) as f64,
    }
}

/// A random book of 5 to 30 positions (net of the delta hedge) in `style`,
/// as `instrument index -> quantity`.
fn random_book(
    rng: &mut Xoshiro256PlusPlus,
    listing: &Listing,
    engine: &GridMarginEngine,
    style: Style,
) -> AnyResult<BTreeMap<usize, f64>> {
    let target = rng.random_range(5..=30usize);
    let mut book = BTreeMap::new();
    let option = |rng: &mut Xoshiro256PlusPlus| rng.random_range(0..OPTIONS);
    match style {
        Style::Directional => {
            // Bullish: long calls, short puts, long futures; bearish the mirror.
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let futures: Vec<usize> = (OPTIONS..listing.ids.len()).collect();
            while book.len() < target {
                let k = if rng.random_range(0..5) == 0 {
                    futures[rng.random_range(0..futures.len())]
                } else {
                    option(rng)
                };
                let q = random_size(rng, listing.underlying[k]);
                let kind_sign = match listing.set.get(&listing.ids[k])? {
                    Instrument::Option(o) if o.kind() == OptionKind::Put => -1.0,
                    _ => 1.0,
                };
                book.insert(k, sign * kind_sign * q);
            }
        }
        Style::Spreads => {
            while book.len() + 1 < target {
                let a = option(rng);
                let b = option(rng);
                if a == b || listing.underlying[a] != listing.underlying[b] {
                    continue;
                }
                let q = random_size(rng, listing.underlying[a]);
                book.insert(a, q);
                book.insert(b, -q);
            }
        }
        Style::DeltaHedged => {
            while book.len() + 2 < target {
                let k = option(rng);
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                book.insert(k, sign * random_size(rng, listing.underlying[k]));
            }
            hedge_delta(listing, engine, &mut book)?;
        }
    }
    Ok(book)
}

/// Adds to `book` the perpetual position that offsets each underlying's net
/// delta, read from the engine's margin breakdown (delta notional in quote
/// currency / spot = contracts of a linear perpetual with multiplier 1).
fn hedge_delta(
    listing: &Listing,
    engine: &GridMarginEngine,
    book: &mut BTreeMap<usize, f64>,
) -> AnyResult<()> {
    let account = engine.account_from_positions(&to_positions(listing, book))?;
    for u in engine.margin(&account)?.underlyings {
        let Some(k) = listing.underlyings.iter().position(|x| *x == u.underlying) else {
            continue;
        };
        let perpetual = listing.perpetual[k];
        let spot = engine.notional_per_contract(engine.instrument_index(&listing.ids[perpetual])?);
        let hedge = (-u.delta_notional / spot * 100.0).round() / 100.0;
        if hedge != 0.0 {
            *book.entry(perpetual).or_insert(0.0) += hedge;
        }
    }
    book.retain(|_, q| *q != 0.0);
    Ok(())
}

fn to_positions(listing: &Listing, book: &BTreeMap<usize, f64>) -> Vec<Position> {
    book.iter()
        .map(|(&k, &q)| Position::new(listing.ids[k].clone(), q))
        .collect()
}

/// Builds `count` accounts against the opening market and funds each so
/// that its equity is a random multiple of its initial margin: 1.4x to 3x
/// for 85% of accounts, 1.0x to 1.4x for the rest (healthy, but the first
/// to get margin calls). Collateral is spread over USD, USDC, BTC and ETH;
/// one account in five borrows USDC against extra BTC.
fn open_accounts(
    count: usize,
    listing: &Listing,
    engine: &GridMarginEngine,
    market: &MarketSnapshot,
    policy: &CollateralPolicy,
    assets: &[AssetId; 4],
) -> AnyResult<Vec<Trader>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED + 2);
    let spot = [
        market.underlying(&listing.underlyings[BTC])?.spot(),
        market.underlying(&listing.underlyings[ETH])?.spot(),
    ];
    let mut traders = Vec::with_capacity(count);
    for a in 0..count {
        let style = match rng.random_range(0..10) {
            0..4 => Style::Directional,
            4..8 => Style::DeltaHedged,
            _ => Style::Spreads,
        };
        let book = random_book(&mut rng, listing, engine, style)?;
        let positions = to_positions(listing, &book);
        let initial = engine
            .requirement(&engine.account_from_positions(&positions)?)?
            .initial();
        let portfolio = Portfolio::new(AccountId::new(format!("A{a}")), positions, &listing.set)?;
        let multiple = if rng.random_range(0..100) < 85 {
            rng.random_range(1.4..3.0)
        } else {
            rng.random_range(1.0..1.4)
        };
        let target_equity = initial * multiple;
        // Split the collateral's market value over the four assets.
        let weights: [f64; 4] = std::array::from_fn(|_| rng.random::<f64>());
        let total: f64 = weights.iter().sum();
        let value = (target_equity - positions_value(&portfolio, &listing.set, market)?).max(0.0);
        let mut amounts = [
            value * weights[USD] / total,
            value * weights[USDC] / total,
            value * weights[BTC_COIN] / total / spot[BTC],
            value * weights[ETH_COIN] / total / spot[ETH],
        ];
        if rng.random_range(0..5) == 0 {
            // A loan: 0.5x the value of extra BTC pledged, borrowed in USDC.
            let pledged = value * rng.random_range(0.2..1.0);
            amounts[BTC_COIN] += pledged / spot[BTC];
            amounts[USDC] -= 0.5 * pledged;
        }
        let mut trader = Trader {
            portfolio,
            balances: (0..4)
                .map(|i| Balance::new(assets[i].clone(), amounts[i]))
                .collect(),
        };
        // Haircuts and the loan uplift make equity differ from the plan:
        // top up (or draw down) USD so equity is exactly the target.
        let equity = account_view(&trader, listing, market, policy).equity()?;
        trader.balances[USD].amount += target_equity - equity;
        traders.push(trader);
    }
    Ok(traders)
}

/// The borrowed view of one account that the collateral functions read.
fn account_view<'a>(
    trader: &'a Trader,
    listing: &'a Listing,
    market: &'a MarketSnapshot,
    policy: &'a CollateralPolicy,
) -> Account<'a> {
    Account {
        balances: &trader.balances,
        portfolio: &trader.portfolio,
        instruments: &listing.set,
        market,
        policy,
    }
}

/// Adds `quantity` of `instrument` to a position list (removing a position
/// that nets to zero).
fn book_trade(positions: &mut Vec<Position>, instrument: &InstrumentId, quantity: f64) {
    match positions.iter().position(|p| &p.instrument == instrument) {
        Some(i) => {
            positions[i].quantity += quantity;
            if positions[i].quantity == 0.0 {
                positions.remove(i);
            }
        }
        None => positions.push(Position::new(instrument.clone(), quantity)),
    }
}

// ---------------------------------------------------------------------------
// Per-tick steps
// ---------------------------------------------------------------------------

/// Variation margin: futures and perpetuals are marked to market every
/// tick and their P&L paid into (or out of) the account's USD balance, so
/// the collateral carries it (`positions_value` counts them at 0).
fn settle_variation_margin(
    traders: &mut [Trader],
    listing: &Listing,
    index: &BTreeMap<&InstrumentId, usize>,
    previous: &[f64],
    current: &[f64],
) {
    for trader in traders {
        let mut pnl = 0.0;
        for p in trader.positions() {
            let k = index[&p.instrument];
            if listing.contract[k] != Contract::Option {
                pnl += p.quantity * (current[k] - previous[k]);
            }
        }
        trader.balances[USD].amount += pnl;
    }
}

/// Timings of one tick, and of the calls inside it.
#[derive(Default)]
struct Timings {
    risk_arrays: Vec<Duration>,
    batch_margin: Vec<Duration>,
    health: Vec<Duration>,
    state_cache: Vec<Duration>,
    what_if: Vec<Duration>,
    apply_order: Vec<Duration>,
    liquidation_plan: Vec<Duration>,
}

/// Status counts of one tick, in `HealthStatus` order.
fn count_statuses(health: &[AccountHealth]) -> [usize; 5] {
    let mut counts = [0; 5];
    for h in health {
        counts[status_rank(h.status)] += 1;
    }
    counts
}

fn status_rank(status: HealthStatus) -> usize {
    match status {
        HealthStatus::Healthy => 0,
        HealthStatus::Warning => 1,
        HealthStatus::ReduceOnly => 2,
        HealthStatus::Liquidation => 3,
        _ => 4,
    }
}

/// What the liquidation engine did on one tick.
#[derive(Default)]
struct LiquidationSummary {
    plans: usize,
    restored: usize,
    /// Negative equity of the accounts taken over this tick, quote currency:
    /// the loss the insurance fund absorbs.
    deficit: f64,
}

/// Plans the liquidation of every account in `Liquidation` or `Bankrupt`
/// and executes it: the remaining book replaces the positions, and options
/// closed at mark turn into cash (so equity is unchanged). The margin
/// closure re-margins each candidate book on the tick's risk arrays.
fn liquidate(
    traders: &mut [Trader],
    health: &mut [AccountHealth],
    ctx: &TickContext<'_>,
    timings: &mut Timings,
) -> AnyResult<LiquidationSummary> {
    let bands = HealthBands::default();
    let policy = LiquidationPolicy::default();
    let engine = ctx.engine;
    // Accounts taken over earlier (no positions left) have nothing to plan.
    let selected: Vec<usize> = (0..traders.len())
        .filter(|&a| {
            health[a].status >= HealthStatus::Liquidation && !traders[a].positions().is_empty()
        })
        .collect();
    // Plans are independent: compute them in parallel, each timed alone.
    let plans: Vec<(usize, LiquidationPlan, Duration)> = selected
        .par_iter()
        .map(|&a| {
            let start = Instant::now();
            let account = account_view(&traders[a], ctx.listing, ctx.market, ctx.policy);
            // Candidates re-margined from the engine's indices, resolved
            // once per plan: no ids hashed, no `Portfolio` built.
            let rows: Vec<InstrumentIndex> = account
                .portfolio
                .positions()
                .iter()
                .map(|p| engine.instrument_index(&p.instrument))
                .collect::<portfolio_margin::Result<_>>()?;
            let margin = |q: &[f64]| engine.requirement(&engine.account_from_quantities(&rows, q)?);
            let plan = plan_liquidation_by_quantities(&account, margin, &bands, &policy)?;
            Ok((a, plan, start.elapsed()))
        })
        .collect::<portfolio_margin::Result<_>>()?;
    let mut summary = LiquidationSummary::default();
    for (a, plan, elapsed) in plans {
        timings.liquidation_plan.push(elapsed);
        summary.plans += 1;
        summary.restored += usize::from(plan.restored);
        let trader = &mut traders[a];
        for step in &plan.steps {
            for r in &step.reductions {
                let k = ctx.index[&r.instrument];
                if ctx.listing.contract[k] == Contract::Option {
                    trader.balances[USD].amount -= r.trade * ctx.marks[k];
                }
            }
        }
        if plan.equity <= 0.0 {
            // Bankrupt: the exchange takes the account over, closes what
            // the plan left, the insurance fund absorbs the negative equity
            // and the balances are zeroed.
            summary.deficit -= plan.equity;
            trader.balances.iter_mut().for_each(|b| b.amount = 0.0);
            trader.portfolio =
                Portfolio::new(plan.remaining.account().clone(), vec![], &ctx.listing.set)?;
            continue;
        }
        trader.portfolio = plan.remaining;
        health[a].status = plan.final_state.status;
        health[a].margin = plan.final_state.margin;
    }
    Ok(summary)
}

/// Read-only inputs of one tick.
struct TickContext<'a> {
    listing: &'a Listing,
    index: &'a BTreeMap<&'a InstrumentId, usize>,
    engine_index: &'a [InstrumentIndex],
    engine: &'a GridMarginEngine,
    market: &'a MarketSnapshot,
    policy: &'a CollateralPolicy,
    marks: &'a [f64],
}

/// Order-flow counters of one tick.
#[derive(Default)]
struct FlowSummary {
    accepted: usize,
    rejected: usize,
    blocked: usize,
}

/// A random order from account `trader`: half the time it trades an
/// instrument the account holds (closing, halving or doubling the
/// position), otherwise a random instrument of the listing.
fn random_order(
    rng: &mut Xoshiro256PlusPlus,
    listing: &Listing,
    index: &BTreeMap<&InstrumentId, usize>,
    trader: &Trader,
) -> (usize, f64) {
    let held = trader.positions();
    if !held.is_empty() && rng.random::<bool>() {
        let p = &held[rng.random_range(0..held.len())];
        let q = match rng.random_range(0..3) {
            0 => -p.quantity,
            1 => -0.5 * p.quantity,
            _ => p.quantity,
        };
        (index[&p.instrument], q)
    } else {
        let k = rng.random_range(0..listing.ids.len());
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        (k, sign * random_size(rng, listing.underlying[k]))
    }
}

/// Pre-trade risk checks between two ticks. Each account's margin state is
/// cached on its first order ([`GridMarginEngine::state`], O(positions x
/// scenarios)); an order is then checked in O(scenarios) with `what_if`:
///
/// * accounts in liquidation or bankrupt are blocked;
/// * reduce-only accounts may only trade if initial margin does not rise;
/// * otherwise the order is accepted if equity covers the new initial
///   margin.
///
/// Accepted orders fill at mark: an option's premium moves between cash and
/// the position (equity unchanged), and the cached state is updated with
/// `apply_order`.
fn order_flow(
    orders: usize,
    rng: &mut Xoshiro256PlusPlus,
    traders: &mut [Trader],
    health: &[AccountHealth],
    ctx: &TickContext<'_>,
    timings: &mut Timings,
) -> AnyResult<FlowSummary> {
    // States are built on an account's first order of the tick (a cache
    // miss) and reused, and updated in place, by its later orders.
    let mut states: Vec<Option<AccountState>> = vec![None; traders.len()];
    let mut books: Vec<Option<Vec<Position>>> = vec![None; traders.len()];
    let mut summary = FlowSummary::default();
    for _ in 0..orders {
        let a = rng.random_range(0..traders.len());
        let (k, quantity) = random_order(rng, ctx.listing, ctx.index, &traders[a]);
        let status = health[a].status;
        if status >= HealthStatus::Liquidation {
            summary.blocked += 1;
            continue;
        }
        let order = Order {
            instrument: ctx.engine_index[k],
            quantity,
        };
        let state = match &mut states[a] {
            Some(state) => state,
            slot => {
                let begin = Instant::now();
                let state = ctx
                    .engine
                    .state(&ctx.engine.account(&traders[a].portfolio)?)?;
                timings.state_cache.push(begin.elapsed());
                slot.insert(state)
            }
        };
        let begin = Instant::now();
        let after = ctx.engine.what_if(state, order)?;
        timings.what_if.push(begin.elapsed());
        let accepted = match status {
            HealthStatus::ReduceOnly => after.initial() <= state.requirement().initial(),
            _ => after.initial() <= health[a].equity,
        };
        if !accepted {
            summary.rejected += 1;
            continue;
        }
        summary.accepted += 1;
        let begin = Instant::now();
        ctx.engine.apply_order(state, order)?;
        timings.apply_order.push(begin.elapsed());
        let trader = &mut traders[a];
        if ctx.listing.contract[k] == Contract::Option {
            trader.balances[USD].amount -= quantity * ctx.marks[k];
        }
        let book = books[a].get_or_insert_with(|| trader.positions().to_vec());
        book_trade(book, &ctx.listing.ids[k], quantity);
    }
    // Re-validate the books that traded.
    for (trader, book) in traders.iter_mut().zip(books) {
        if let Some(positions) = book {
            let owner = trader.portfolio.account().clone();
            trader.portfolio = Portfolio::new(owner, positions, &ctx.listing.set)?;
        }
    }
    Ok(summary)
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// The risk policy: Deribit-style grid (9 price points x 3 vols plus the
/// extended table), maintenance = 80% of initial.
fn grid_policy() -> GridPolicy {
    GridPolicy::deribit_style()
}

fn run(config: &Config) -> AnyResult<()> {
    let open = Tick {
        as_of: Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?,
        spot: [100_000.0, 4_000.0],
        atm_vol: [0.55, 0.70],
    };
    let listing = listing(open.as_of, open.spot)?;
    let index = listing.index_map();
    let (policy, assets) = collateral_policy(&listing)?;
    let path = market_path(config.ticks, open)?;
    let opening_market = open.snapshot(&listing)?;
    let opening_engine = GridMarginEngine::new(&listing.set, &opening_market, grid_policy())?;
    let engine_index = listing
        .ids
        .iter()
        .map(|id| opening_engine.instrument_index(id))
        .collect::<portfolio_margin::Result<Vec<_>>>()?;
    println!(
        "Exchange simulation: {} instruments ({} options), {} grid scenarios, {} accounts, {} ticks of {} min, {} orders per tick, {} threads",
        listing.ids.len(),
        OPTIONS,
        opening_engine.scenario_count(),
        config.accounts,
        config.ticks,
        TICK_MINUTES,
        config.orders_per_tick,
        rayon::current_num_threads(),
    );
    let start = Instant::now();
    let mut traders = open_accounts(
        config.accounts,
        &listing,
        &opening_engine,
        &opening_market,
        &policy,
        &assets,
    )?;
    let positions: usize = traders.iter().map(|t| t.positions().len()).sum();
    println!(
        "opened {} accounts, {} positions ({:.1} per account) in {:.2?}\n",
        traders.len(),
        positions,
        positions as f64 / traders.len() as f64,
        start.elapsed()
    );
    println!(
        "{:>4} {:>9} {:>7} {:>6} {:>6} | {:>7} {:>7} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>12} | {:>8} {:>8} {:>7}",
        "tick",
        "BTC",
        "ETH",
        "BTC vol",
        "ETH vol",
        "healthy",
        "warning",
        "reduce",
        "liquid",
        "bankr",
        "liq'd",
        "restor",
        "deficit $",
        "accepted",
        "rejected",
        "blocked"
    );

    let mut timings = Timings::default();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED + 3);
    let mut previous_marks = marks(&listing, &opening_market)?;
    let mut totals = (0usize, 0usize);
    for (t, tick) in path.iter().enumerate() {
        let market = tick.snapshot(&listing)?;
        let current_marks = marks(&listing, &market)?;
        settle_variation_margin(
            &mut traders,
            &listing,
            &index,
            &previous_marks,
            &current_marks,
        );

        // Risk arrays: every instrument revalued on every grid scenario.
        let begin = Instant::now();
        let engine = GridMarginEngine::new(&listing.set, &market, grid_policy())?;
        timings.risk_arrays.push(begin.elapsed());

        // Margin every account on the new arrays.
        let accounts: Vec<GridAccount> = traders
            .par_iter()
            .map(|t| engine.account(&t.portfolio))
            .collect::<portfolio_margin::Result<_>>()?;
        let begin = Instant::now();
        let margins = engine.margin_batch(&accounts);
        timings.batch_margin.push(begin.elapsed());

        // Health: haircut collateral + option marks against maintenance.
        let bands = HealthBands::default();
        let begin = Instant::now();
        // Positions at the engine's marks and balances at the collateral
        // prices and haircuts, both taken once per snapshot.
        let priced = PricedCollateral::new(&policy, &market);
        if let Some((_, e)) = margins.failures().first() {
            return Err(e.clone().into());
        }
        let requirements = margins.requirements().unwrap_or_default();
        let mut health: Vec<AccountHealth> = traders
            .par_iter()
            .zip(&accounts)
            .zip(requirements)
            .map(|((trader, account), &margin)| {
                let collateral = priced.value(&trader.balances)?;
                let positions = engine.positions_value(account)?;
                health_from_valuation(collateral, positions, margin, &bands)
            })
            .collect::<portfolio_margin::Result<_>>()?;
        timings.health.push(begin.elapsed());
        let counts = count_statuses(&health);

        let ctx = TickContext {
            listing: &listing,
            index: &index,
            engine_index: &engine_index,
            engine: &engine,
            market: &market,
            policy: &policy,
            marks: &current_marks,
        };
        let liquidations = liquidate(&mut traders, &mut health, &ctx, &mut timings)?;
        totals.0 += liquidations.plans;
        totals.1 += liquidations.restored;
        let flow = order_flow(
            config.orders_per_tick,
            &mut rng,
            &mut traders,
            &health,
            &ctx,
            &mut timings,
        )?;
        println!(
            "{:>4} {:>9.0} {:>7.1} {:>6.1}% {:>6.1}% | {:>7} {:>7} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>12.0} | {:>8} {:>8} {:>7}",
            t,
            tick.spot[BTC],
            tick.spot[ETH],
            100.0 * tick.atm_vol[BTC],
            100.0 * tick.atm_vol[ETH],
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            liquidations.plans,
            liquidations.restored,
            liquidations.deficit,
            flow.accepted,
            flow.rejected,
            flow.blocked,
        );
        previous_marks = current_marks;
    }
    report(config, &timings, totals);
    Ok(())
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// The `p`-quantile (nearest rank) of `samples`, `p` in [0, 1].
fn quantile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn report(config: &Config, timings: &Timings, (plans, restored): (usize, usize)) {
    let median = |s: &[Duration]| quantile(s, 0.5);
    let p99 = |s: &[Duration]| quantile(s, 0.99);
    let per_account = |d: Duration| d.as_nanos() as f64 / config.accounts as f64;
    let batch = median(&timings.batch_margin);
    let health = median(&timings.health);
    println!("\nTimings ({} threads):", rayon::current_num_threads());
    println!(
        "  risk-array rebuild per tick      median {:>10.2?}   p99 {:>10.2?}",
        median(&timings.risk_arrays),
        p99(&timings.risk_arrays)
    );
    println!(
        "  batch margin per tick            median {:>10.2?}   p99 {:>10.2?}   {:.2} M accounts/s, {:.0} ns/account",
        batch,
        p99(&timings.batch_margin),
        config.accounts as f64 / batch.as_secs_f64() / 1e6,
        per_account(batch)
    );
    println!(
        "  health (collateral + marks)      median {:>10.2?}   p99 {:>10.2?}   {:.0} ns/account",
        health,
        p99(&timings.health),
        per_account(health)
    );
    println!(
        "  account state (cache miss)       median {:>10.2?}   p99 {:>10.2?}   ({} states)",
        median(&timings.state_cache),
        p99(&timings.state_cache),
        timings.state_cache.len()
    );
    println!(
        "  what-if pre-trade check          median {:>10.2?}   p99 {:>10.2?}   ({} checks)",
        median(&timings.what_if),
        p99(&timings.what_if),
        timings.what_if.len()
    );
    println!(
        "  apply_order (accepted orders)    median {:>10.2?}   p99 {:>10.2?}   ({} orders)",
        median(&timings.apply_order),
        p99(&timings.apply_order),
        timings.apply_order.len()
    );
    println!(
        "  liquidation plan                 median {:>10.2?}   p99 {:>10.2?}   ({} plans, {} restored)",
        median(&timings.liquidation_plan),
        p99(&timings.liquidation_plan),
        plans,
        restored
    );
    println!(
        "  (what-if and apply_order are timed one call at a time with Instant, which adds ~20-40 ns)"
    );
}
