//! Engine types are `Send + Sync`, so one market snapshot and one set of
//! instruments can be shared by every thread of an exchange backend.

use portfolio_margin::*;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn shared_types_are_send_and_sync() {
    assert_send_sync::<MarketSnapshot>();
    assert_send_sync::<VolSurface>();
    assert_send_sync::<InstrumentSet>();
    assert_send_sync::<Portfolio>();
    assert_send_sync::<OptionBatch>();
    assert_send_sync::<GreeksBatch>();
    assert_send_sync::<ScenarioSet>();
    assert_send_sync::<CorrelationMatrix>();
    assert_send_sync::<Error>();
}

/// Greeks computed from several threads against one shared snapshot equal
/// the single-threaded answers bit for bit.
#[test]
fn threads_sharing_a_snapshot_get_the_same_bits() {
    let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).unwrap();
    let btc = UnderlyingId::new("BTC").unwrap();
    let market = MarketSnapshot::builder(as_of)
        .underlying(
            btc.clone(),
            UnderlyingMarket::new(95_000.0, 0.04, 0.01, VolSurface::flat(0.55).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let expiry = Timestamp::from_ymd_hms(2027, 3, 26, 8, 0, 0).unwrap();
    let options: Vec<Instrument> = (0..200)
        .map(|i| {
            let strike = 60_000.0 + 400.0 * f64::from(i);
            let kind = if i % 2 == 0 {
                OptionKind::Call
            } else {
                OptionKind::Put
            };
            Instrument::Option(
                OptionContract::new(btc.clone(), kind, strike, expiry)
                    .unwrap()
                    .with_settlement(Settlement::Inverse)
                    .with_model(OptionModel::Black76),
            )
        })
        .collect();
    let alone: Vec<InstrumentGreeks> = options
        .iter()
        .map(|o| instrument_greeks(o, &market).unwrap())
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    options
                        .iter()
                        .map(|o| instrument_greeks(o, &market).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            let got = handle.join().unwrap();
            for (a, b) in got.iter().zip(&alone) {
                assert_eq!(
                    a.native.fields().map(f64::to_bits),
                    b.native.fields().map(f64::to_bits)
                );
                assert_eq!(
                    a.quote.fields().map(f64::to_bits),
                    b.quote.fields().map(f64::to_bits)
                );
            }
        }
    });
}
