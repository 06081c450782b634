//! The grid engine's accumulation kernel across row widths: every entry
//! point (batch, single requirement, breakdown, cached state) gives the
//! same bits, whatever the number of scenarios (rows of 32, 64, 96 and 160
//! entries, one or several passes per row) and the number of threads.

mod common;

use common::{as_of, flat_market, id};
use portfolio_margin::*;

fn market() -> MarketSnapshot {
    flat_market(&[
        ("BTC", 100_000.0, 0.0, 0.0, 0.55),
        ("ETH", 4_000.0, 0.0, 0.0, 0.70),
        ("SOL", 200.0, 0.0, 0.0, 0.90),
    ])
}

/// Calls and puts at five strikes and two expiries per underlying, BTC
/// coin-settled, plus a perpetual each.
fn listing() -> (InstrumentSet, Vec<InstrumentId>) {
    let mut set = InstrumentSet::new();
    let mut ids = Vec::new();
    for (u, spot) in [("BTC", 100_000.0), ("ETH", 4_000.0), ("SOL", 200.0)] {
        for days in [7.0, 60.0] {
            let expiry =
                as_of().plus_years(YearFraction::from_days(days, DayBasis::Calendar365).unwrap());
            for k in [0.7, 0.9, 1.0, 1.1, 1.3] {
                for kind in [OptionKind::Call, OptionKind::Put] {
                    let mut o = OptionContract::new(id(u), kind, spot * k, expiry).unwrap();
                    if u == "BTC" {
                        o = o
                            .with_settlement(Settlement::Inverse)
                            .with_model(OptionModel::Black76);
                    }
                    let name = InstrumentId::new(format!("{u}-{kind:?}-{k}-{days}")).unwrap();
                    set.insert(name.clone(), Instrument::Option(o)).unwrap();
                    ids.push(name);
                }
            }
        }
        let perp = InstrumentId::new(format!("{u}-PERP")).unwrap();
        set.insert(
            perp.clone(),
            Instrument::Perpetual(PerpetualContract::new(id(u))),
        )
        .unwrap();
        ids.push(perp);
    }
    (set, ids)
}

/// Deribit-style grids of 27, 63, 71 and 131 scenarios, the last two with
/// spread credits between BTC and ETH.
fn policies() -> Vec<GridPolicy> {
    let mut out = Vec::new();
    for (steps, extreme, credits) in [
        (4, false, false),
        (10, false, false),
        (10, true, true),
        (20, true, false),
    ] {
        let mut p = GridPolicy::deribit_style();
        p.steps_per_side = steps;
        if !extreme {
            p.extreme = None;
        }
        if credits {
            p.offsets = OffsetPolicy::new(vec![
                SpreadCredit::from_correlation(id("BTC"), id("ETH"), 0.8, 1.0).unwrap(),
            ])
            .unwrap();
            p.correlation_break = 0.3;
        }
        out.push(p);
    }
    out
}

/// Deterministic books of 1 to 24 positions (a simple LCG), some on one
/// underlying, most on several.
fn books(ids: &[InstrumentId]) -> Vec<Vec<Position>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as usize
    };
    (0..300)
        .map(|_| {
            let n = 1 + next() % 24;
            (0..n)
                .map(|_| {
                    let k = next() % ids.len();
                    let q = (next() % 21) as f64 - 10.0 + 0.25;
                    Position::new(ids[k].clone(), q)
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_entry_point_gives_the_same_bits_for_every_row_width() {
    let (set, ids) = listing();
    let market = market();
    let books = books(&ids);
    for policy in policies() {
        let scenarios = policy.scenario_count();
        let engine = GridMarginEngine::new(&set, &market, policy).unwrap();
        let accounts: Vec<GridAccount> = books
            .iter()
            .map(|b| engine.account_from_positions(b).unwrap())
            .collect();
        let batch: Vec<u64> = engine
            .margin_batch(&accounts)
            .into_iter()
            .map(|r| r.unwrap().initial().to_bits())
            .collect();
        for (a, &bits) in accounts.iter().zip(&batch) {
            let single = engine.requirement(a).unwrap();
            let detail = engine.margin(a).unwrap();
            let state = engine.state(a).unwrap();
            assert_eq!(single.initial().to_bits(), bits, "{scenarios} scenarios");
            assert_eq!(detail.requirement.initial().to_bits(), bits);
            assert_eq!(state.requirement().initial().to_bits(), bits);
            assert_eq!(
                single.maintenance().to_bits(),
                detail.requirement.maintenance().to_bits()
            );
            // The breakdown's scan risk is the largest scenario loss.
            let losses = engine.scenario_losses(a).unwrap();
            assert_eq!(losses.len(), detail.underlyings.len());
            for ((u, l), d) in losses.iter().zip(&detail.underlyings) {
                assert_eq!(u, &d.underlying);
                assert_eq!(l.len(), scenarios);
                let max = l.iter().fold(0.0f64, |m, &x| if x > m { x } else { m });
                assert_eq!(max.to_bits(), d.scan_risk.to_bits());
            }
        }
        #[cfg(feature = "rayon")]
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let again: Vec<u64> = pool
                .install(|| engine.margin_batch(&accounts))
                .into_iter()
                .map(|r| r.unwrap().initial().to_bits())
                .collect();
            assert_eq!(again, batch, "{threads} threads, {scenarios} scenarios");
        }
    }
}

#[test]
fn the_scan_is_the_sum_of_quantity_times_loss_array() {
    let (set, ids) = listing();
    let market = market();
    let mut policy = GridPolicy::deribit_style();
    policy.steps_per_side = 10;
    policy.extreme = None;
    let engine = GridMarginEngine::new(&set, &market, policy).unwrap();
    // Three BTC positions: the loss in each scenario is the fused sum, in
    // instrument order, of quantity x loss array.
    let book = [(0, 2.0), (3, -1.5), (20, 4.0)];
    let positions: Vec<Position> = book
        .iter()
        .map(|&(k, q)| Position::new(ids[k].clone(), q))
        .collect();
    let account = engine.account_from_positions(&positions).unwrap();
    let losses = engine.scenario_losses(&account).unwrap();
    assert_eq!(losses.len(), 1);
    let (_, got) = &losses[0];
    // In the engine's instrument order.
    let mut indexed: Vec<(InstrumentIndex, f64)> = book
        .iter()
        .map(|&(k, q)| (engine.instrument_index(&ids[k]).unwrap(), q))
        .collect();
    indexed.sort_by_key(|&(i, _)| i);
    let rows: Vec<(&[f64], f64)> = indexed
        .iter()
        .map(|&(i, q)| (engine.loss_array(i), q))
        .collect();
    for (s, &g) in got.iter().enumerate() {
        let fused = rows.iter().fold(0.0f64, |a, (r, q)| q.mul_add(r[s], a));
        let plain = rows.iter().fold(0.0f64, |a, (r, q)| a + q * r[s]);
        // Fused on processors with FMA, plain otherwise.
        assert!(g.to_bits() == fused.to_bits() || g.to_bits() == plain.to_bits());
    }
    let scan = got.iter().fold(0.0f64, |m, &x| if x > m { x } else { m });
    assert!(scan > 0.0);
    assert_eq!(
        engine.margin(&account).unwrap().underlyings[0]
            .scan_risk
            .to_bits(),
        scan.to_bits()
    );
}
