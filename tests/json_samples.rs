//! The JSON documents of `examples/data/` (format in `docs/json_format.md`):
//! every file decodes into its type and writes back byte for byte; the
//! committed files are what the types write today (presets, defaults, the
//! main example's settings); the sample report agrees with the library on
//! the sample book; unknown fields, malformed numbers and unsupported
//! versions are rejected with a message naming the field (or the version);
//! and the messages quoted in the format document are the real ones.
#![cfg(feature = "serde")]

#[path = "../examples/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../examples/common/samples.rs"]
mod samples;

use common::{
    BookFile, CrossPolicyFile, EsMarginPolicyFile, FORMAT_VERSION, GridPolicyFile, HealthBandsFile,
    HistoricalConfigFile, InstrumentsFile, IsolatedPolicyFile, LiquidationPolicyFile, MarketFile,
    MonteCarloConfigFile, StressGridFile, read_document,
};
use portfolio_margin::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// Relative tolerance between the sample report's margins and the
/// library's today: the same computation, summed perhaps in another order.
const REPORT_REL_TOL: f64 = 1e-12;

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data")
}

fn data(name: &str) -> String {
    let path = data_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn docs() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json_format.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The error of decoding `text` as the document `name` holds.
fn error_of(name: &str, text: &str) -> String {
    match samples::round_trip(name, text).expect("a known sample") {
        Ok(_) => panic!("{name}: the edited document decoded:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The error of decoding `name` with the first `from` replaced by `to`.
fn error_after_replacing(name: &str, from: &str, to: &str) -> String {
    let text = data(name);
    assert!(text.contains(from), "{name} has no {from:?}");
    error_of(name, &text.replacen(from, to, 1))
}

/// The error of decoding `name` after `edit` on its JSON value.
fn error_after_edit(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(&data(name)).unwrap();
    edit(&mut value);
    error_of(name, &common::to_pretty_json(&value).unwrap())
}

fn object<'a>(value: &'a mut Value, pointer: &str) -> &'a mut serde_json::Map<String, Value> {
    value
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {pointer}"))
}

/// The keys of a pretty-printed document's top-level object, in the order
/// written (serde_json's `Value` would sort them).
fn top_level_keys(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split('"').next())
        .collect()
}

fn rel_close(a: f64, b: f64) -> bool {
    (a - b).abs() <= REPORT_REL_TOL * a.abs().max(b.abs())
}

#[test]
fn every_file_in_examples_data_is_a_known_sample() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut known: BTreeSet<String> = samples::samples()
        .unwrap()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    known.insert("report.json".into());
    assert_eq!(on_disk, known);
}

#[test]
fn committed_samples_are_what_the_types_write() {
    for (name, generated) in samples::samples().unwrap() {
        assert!(
            data(name) == generated,
            "examples/data/{name} differs from what the types write; \
             run `cargo run --example json_samples`"
        );
    }
}

#[test]
fn every_sample_decodes_and_writes_back_byte_for_byte() {
    let mut checked = 0;
    for (name, _) in samples::samples().unwrap() {
        let text = data(name);
        let again = samples::round_trip(name, &text)
            .expect("a known sample")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again, text, "{name}");
        // And every document starts with the current version.
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["format_version"], FORMAT_VERSION, "{name}");
        assert_eq!(top_level_keys(&text)[0], "format_version", "{name}");
        checked += 1;
    }
    assert_eq!(checked, 16);
}

#[test]
fn samples_decode_to_the_presets_they_were_written_from() {
    let grid = |name: &str| {
        read_document::<GridPolicyFile>(&data(name))
            .unwrap()
            .grid_policy
    };
    assert_eq!(
        grid("grid_policy_deribit_style.json"),
        GridPolicy::deribit_style()
    );
    assert_eq!(
        grid("grid_policy_cme_span_16.json"),
        GridPolicy::cme_span_16(samples::SPAN_PRICE_SCAN_RANGE, samples::SPAN_VOL_SCAN_RANGE)
            .unwrap()
    );
    assert_eq!(
        grid("grid_policy_finra_4210.json"),
        GridPolicy::finra_4210(FinraPortfolioType::HighCapBroadIndex)
    );
    let isolated: IsolatedPolicyFile = read_document(&data("isolated_policy.json")).unwrap();
    assert_eq!(isolated.isolated_policy, IsolatedPolicy::default());
    let cross: CrossPolicyFile = read_document(&data("cross_policy.json")).unwrap();
    assert_eq!(cross.cross_policy, CrossPolicy::default());
    let es: EsMarginPolicyFile = read_document(&data("es_margin_policy.json")).unwrap();
    assert_eq!(es.es_margin_policy, EsMarginPolicy::default());
    let bands: HealthBandsFile = read_document(&data("health_bands.json")).unwrap();
    assert_eq!(bands.health_bands, HealthBands::default());
    let liquidation: LiquidationPolicyFile =
        read_document(&data("liquidation_policy.json")).unwrap();
    assert_eq!(liquidation.liquidation_policy, LiquidationPolicy::default());
    let mc: MonteCarloConfigFile = read_document(&data("monte_carlo_config.json")).unwrap();
    assert_eq!(
        mc.monte_carlo_config,
        common::report_monte_carlo_config().unwrap()
    );
    assert_eq!(mc.monte_carlo_config.paths(), 50_000);
    let historical: HistoricalConfigFile = read_document(&data("historical_config.json")).unwrap();
    assert_eq!(
        historical.historical_config,
        common::report_historical_config().unwrap()
    );
    let stress: StressGridFile = read_document(&data("stress_grid.json")).unwrap();
    assert_eq!(stress.stress_grid, common::report_stress_grid().unwrap());
    assert_eq!(stress.stress_grid.spot().moves().len(), 13);
}

#[test]
fn the_book_file_agrees_with_the_standalone_market_and_instruments() {
    let path = data_dir().join("sample_book.json");
    let book = common::load_book(path.to_str()).unwrap();
    let embedded = common::load_book(None).unwrap();
    assert_eq!(book.portfolio, embedded.portfolio);
    assert_eq!(book.portfolio.positions().len(), 9);
    assert_eq!(book.balances.len(), 4);
    let market: MarketFile = read_document(&data("market.json")).unwrap();
    assert_eq!(market.market, book.market);
    let instruments: InstrumentsFile = read_document(&data("instruments.json")).unwrap();
    assert_eq!(instruments.instruments, book.instruments);
    let balances: common::BalancesFile = read_document(&data("balances.json")).unwrap();
    assert_eq!(balances.balances, book.balances);
    let collateral: common::CollateralPolicyFile =
        read_document(&data("collateral_policy.json")).unwrap();
    assert_eq!(collateral.collateral_policy, book.collateral);
}

#[test]
fn the_sample_report_is_current_and_its_parts_decode() {
    let text = data("report.json");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        top_level_keys(&text),
        [
            "format_version",
            "account",
            "as_of",
            "positions",
            "greeks",
            "stress_grid",
            "historical",
            "monte_carlo",
            "margin",
            "health"
        ]
    );
    assert_eq!(report["format_version"], FORMAT_VERSION);

    // The parts whose types read JSON decode and write back unchanged.
    let greeks: PortfolioGreeks = serde_json::from_value(report["greeks"].clone()).unwrap();
    assert_eq!(serde_json::to_value(&greeks).unwrap(), report["greeks"]);
    let attribution: RiskAttribution =
        serde_json::from_value(report["historical"]["attribution"].clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&attribution).unwrap(),
        report["historical"]["attribution"]
    );

    // The report is the sample book's: same positions, same Greeks, same
    // margins and health as the library computes today.
    let book = common::load_book(None).unwrap();
    let positions = report["positions"].as_array().unwrap();
    assert_eq!(positions.len(), book.portfolio.positions().len());
    for (line, p) in positions.iter().zip(book.portfolio.positions()) {
        assert_eq!(line["instrument"], p.instrument.as_str());
        assert_eq!(line["quantity"], p.quantity);
        let unit: InstrumentGreeks = serde_json::from_value(line["unit_greeks"].clone()).unwrap();
        let now =
            instrument_greeks(book.instruments.get(&p.instrument).unwrap(), &book.market).unwrap();
        assert!(
            rel_close(unit.quote.value, now.quote.value),
            "{}",
            p.instrument
        );
        assert!(
            rel_close(unit.quote.delta, now.quote.delta),
            "{}",
            p.instrument
        );
    }
    let number = |pointer: &str| -> f64 {
        report
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("no number at {pointer}"))
    };
    let isolated = isolated_margin(
        &book.portfolio,
        &book.instruments,
        &book.market,
        &IsolatedPolicy::default(),
    )
    .unwrap();
    let cross = cross_margin(
        &book.portfolio,
        &book.instruments,
        &book.market,
        &CrossPolicy::default(),
    )
    .unwrap();
    let engine =
        GridMarginEngine::new(&book.instruments, &book.market, GridPolicy::deribit_style())
            .unwrap();
    let grid = engine
        .margin(&engine.account(&book.portfolio).unwrap())
        .unwrap();
    for (pointer, now) in [
        (
            "/margin/isolated/requirement/initial",
            isolated.requirement.initial(),
        ),
        (
            "/margin/cross/requirement/initial",
            cross.requirement.initial(),
        ),
        (
            "/margin/portfolio_grid/requirement/initial",
            grid.requirement.initial(),
        ),
        (
            "/margin/portfolio_grid/requirement/maintenance",
            grid.requirement.maintenance(),
        ),
    ] {
        assert!(
            rel_close(number(pointer), now),
            "{pointer}: report {} but the library computes {now}; \
             regenerate examples/data/report.json",
            number(pointer)
        );
    }
    let account = Account {
        balances: &book.balances,
        portfolio: &book.portfolio,
        instruments: &book.instruments,
        market: &book.market,
        policy: &book.collateral,
    };
    let health = account_health(&account, grid.requirement, &HealthBands::default()).unwrap();
    assert!(rel_close(number("/health/equity"), health.equity));
    assert_eq!(report["health"]["status"], "healthy");
    assert_eq!(health.status, HealthStatus::Healthy);
}

#[test]
fn unknown_fields_are_rejected_by_name_at_every_level() {
    // (file, object to add the field to)
    let cases = [
        ("sample_book.json", ""),
        ("sample_book.json", "/positions/0"),
        ("market.json", "/market"),
        ("market.json", "/market/underlyings/0"),
        ("market.json", "/market/underlyings/0/vol/grid"),
        ("instruments.json", "/instruments/0/instrument/option"),
        ("balances.json", "/balances/1"),
        (
            "collateral_policy.json",
            "/collateral_policy/assets/2/haircut/volatility",
        ),
        ("grid_policy_deribit_style.json", "/grid_policy"),
        (
            "grid_policy_deribit_style.json",
            "/grid_policy/vol/term_scaling",
        ),
        ("grid_policy_cme_span_16.json", "/grid_policy/extreme"),
        ("isolated_policy.json", "/isolated_policy"),
        ("cross_policy.json", "/cross_policy/isolated"),
        ("es_margin_policy.json", "/es_margin_policy"),
        ("health_bands.json", "/health_bands"),
        ("liquidation_policy.json", "/liquidation_policy"),
        ("monte_carlo_config.json", "/monte_carlo_config"),
        ("historical_config.json", "/historical_config"),
        ("stress_grid.json", "/stress_grid"),
        ("stress_grid.json", "/stress_grid/spot"),
    ];
    for (name, pointer) in cases {
        let message = error_after_edit(name, |v| {
            object(v, pointer).insert("colour".into(), Value::from(1));
        });
        assert!(
            message.starts_with("unknown field `colour`, expected"),
            "{name} {pointer}: {message}"
        );
    }
}

#[test]
fn malformed_numbers_are_rejected_naming_the_field_and_the_rule() {
    // (file, text replaced, replacement, words the message must contain)
    let cases = [
        (
            "market.json",
            "\"spot\": 95000.0",
            "\"spot\": NaN",
            &["\"spot\": NaN", "expected value"][..],
        ),
        (
            "market.json",
            "\"spot\": 95000.0",
            "\"spot\": -95000.0",
            &["underlying BTC: spot must be finite and > 0", "-95000"],
        ),
        (
            "market.json",
            "\"spot\": 95000.0",
            "\"spot\": 1e999",
            &["number out of range", "\"spot\": 1e999"],
        ),
        (
            "market.json",
            "\"spot\": 95000.0",
            "\"spot\": \"95000\"",
            &["invalid type: string", "\"spot\": \"95000\""],
        ),
        (
            "market.json",
            "\"flat\": 0.68",
            "\"flat\": 68",
            &["volatility must be", "got 68"],
        ),
        (
            "instruments.json",
            "\"strike\": 100000.0",
            "\"strike\": 0.0",
            &["strike must be finite and > 0"],
        ),
        (
            "instruments.json",
            "\"multiplier\": 10.0",
            "\"multiplier\": -10.0",
            &["multiplier", "-10"],
        ),
        (
            "balances.json",
            "\"amount\": 12.5",
            "\"amount\": null",
            &["invalid type: null", "\"amount\": null"],
        ),
        (
            "es_margin_policy.json",
            "\"confidence\": 0.99",
            "\"confidence\": 99",
            &["confidence must be in the open interval (0, 1), got 99"],
        ),
        (
            "es_margin_policy.json",
            "\"mpor_days\": 2",
            "\"mpor_days\": -2",
            &["invalid value: integer `-2`", "\"mpor_days\": -2"],
        ),
        (
            "grid_policy_deribit_style.json",
            "\"down\": 0.16",
            "\"down\": 1.5",
            &["price range down must be in (0, 1), got 1.5"],
        ),
        (
            "grid_policy_deribit_style.json",
            "\"cover\": 0.05",
            "\"cover\": -0.05",
            &["cover", "got -0.05"],
        ),
        (
            "grid_policy_deribit_style.json",
            "\"maintenance_fraction\": 0.8",
            "\"maintenance_fraction\": 1.5",
            &["maintenance fraction", "got 1.5"],
        ),
        (
            "isolated_policy.json",
            "\"futures_fraction\": 0.15",
            "\"futures_fraction\": -0.15",
            &["futures fraction", "got -0.15"],
        ),
        (
            "health_bands.json",
            "\"liquidation_below\": 1.0",
            "\"liquidation_below\": 2.0",
            &["liquidation threshold", "got 2"],
        ),
        (
            "liquidation_policy.json",
            "\"target\": 1.25",
            "\"target\": 0.0",
            &["liquidation target health factor", "got 0"],
        ),
        (
            "collateral_policy.json",
            "\"haircut\": 0.01",
            "\"haircut\": 1.5",
            &["haircut must be a fraction in [0, 1], got 1.5"],
        ),
        (
            "collateral_policy.json",
            "\"cap\": 0.5",
            "\"cap\": 1.5",
            &["volatility haircut cap must be a fraction in [0, 1], got 1.5"],
        ),
        (
            "monte_carlo_config.json",
            "\"paths\": 50000",
            "\"paths\": 0",
            &["Monte Carlo paths", "got 0"],
        ),
        (
            "monte_carlo_config.json",
            "\"horizon\": 0.0027397260273972603",
            "\"horizon\": -1.0",
            &["year fraction must be finite and >= 0, got -1"],
        ),
        (
            "stress_grid.json",
            "\"max_move\": 0.3",
            "\"max_move\": -0.3",
            &["stress grid max move", "got -0.3"],
        ),
    ];
    for (name, from, to, words) in cases {
        let message = error_after_replacing(name, from, to);
        for word in words {
            assert!(
                message.contains(word),
                "{name} {to}: {message:?} lacks {word:?}"
            );
        }
        assert!(message.contains(" at line "), "{name} {to}: {message}");
    }
}

#[test]
fn versions_other_than_the_supported_ones_are_rejected_naming_the_version() {
    let message = error_after_replacing(
        "market.json",
        "\"format_version\": 2",
        "\"format_version\": 3",
    );
    assert_eq!(
        message,
        "market document: format_version 3 is not supported (this reader reads 2)"
    );
    // The version is checked before the payload: a payload of another
    // version gets the version error, not a field error.
    let message = error_after_edit("grid_policy_finra_4210.json", |v| {
        v["format_version"] = 1.into();
        v["grid_policy"]["renamed_in_version_1"] = true.into();
    });
    assert_eq!(
        message,
        "grid_policy document: format_version 1 is not supported (this reader reads 2)"
    );
    let message = error_after_replacing(
        "sample_book.json",
        "\"format_version\": 2",
        "\"format_version\": 7",
    );
    assert_eq!(
        message,
        "book document: format_version 7 is not supported (this reader reads 1 and 2)"
    );
    let message = error_after_edit("health_bands.json", |v| {
        v.as_object_mut().unwrap().remove("format_version");
    });
    assert!(
        message.starts_with("missing field `format_version`"),
        "{message}"
    );
    let message = error_after_replacing(
        "health_bands.json",
        "\"format_version\": 2",
        "\"format_version\": \"2\"",
    );
    assert!(
        message.starts_with("invalid type: string \"2\", expected u32"),
        "{message}"
    );

    // A version-1 book is a version-2 book without balances or collateral.
    let mut book: Value = serde_json::from_str(&data("sample_book.json")).unwrap();
    book["format_version"] = 1.into();
    let text = common::to_pretty_json(&book).unwrap();
    let dir = std::env::temp_dir().join(format!("json_samples_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v1_with_balances.json");
    std::fs::write(&path, &text).unwrap();
    let message = common::load_book(path.to_str()).err().unwrap().to_string();
    assert_eq!(message, "balances and collateral need format_version 2");
    book.as_object_mut().unwrap().remove("balances");
    let path = dir.join("v1.json");
    std::fs::write(&path, common::to_pretty_json(&book).unwrap()).unwrap();
    let v1 = common::load_book(path.to_str()).unwrap();
    assert_eq!(v1.portfolio.positions().len(), 9);
    assert!(v1.balances.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_document_of_another_kind_is_rejected_by_its_key() {
    let message = read_document::<MarketFile>(&data("grid_policy_cme_span_16.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("unknown field `grid_policy`, expected `format_version` or `market`"),
        "{message}"
    );
    let message = read_document::<BookFile>(&data("market.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("unknown field `market`") || message.starts_with("missing field"),
        "{message}"
    );
}

#[test]
fn a_book_with_an_unlisted_instrument_or_absurd_quantity_is_rejected_on_load() {
    let dir = std::env::temp_dir().join(format!("json_samples_book_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, from: &str, to: &str| {
        let text = data("sample_book.json");
        assert!(text.contains(from));
        let path = dir.join(name);
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        path
    };
    let path = write(
        "unlisted.json",
        "\"instrument\": \"BTC-PERPETUAL\"",
        "\"instrument\": \"BTC-PERPETUAL-2\"",
    );
    let message = common::load_book(path.to_str()).err().unwrap().to_string();
    assert!(message.contains("BTC-PERPETUAL-2"), "{message}");
    let path = write("huge.json", "\"quantity\": -25.0", "\"quantity\": -2.5e300");
    let message = common::load_book(path.to_str()).err().unwrap().to_string();
    assert!(message.contains("quantity"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every ```json block of docs/json_format.md that is a whole document
/// decodes; every error message it quotes is produced verbatim.
#[test]
fn the_format_document_quotes_real_documents_and_real_errors() {
    let docs = docs();
    let mut blocks = 0;
    let mut rest = docs.as_str();
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("a closed block");
        let block = &body[..end];
        rest = &body[end + 3..];
        let value: Value = serde_json::from_str(block)
            .unwrap_or_else(|e| panic!("docs block is not JSON ({e}):\n{block}"));
        let Some(object) = value.as_object() else {
            continue;
        };
        if !object.contains_key("format_version") {
            continue;
        }
        let kind = object
            .keys()
            .find(|k| *k != "format_version")
            .expect("a payload")
            .clone();
        let name = match kind.as_str() {
            "account" => "sample_book.json".to_string(),
            "grid_policy" => "grid_policy_deribit_style.json".to_string(),
            other => format!("{other}.json"),
        };
        samples::round_trip(&name, block)
            .unwrap_or_else(|| panic!("docs block of unknown kind {kind}"))
            .unwrap_or_else(|e| panic!("docs block of kind {kind} does not decode: {e}\n{block}"));
        blocks += 1;
    }
    assert!(blocks >= 3, "only {blocks} whole documents in the docs");

    let quoted = [
        error_after_replacing("market.json", "\"spot\": 95000.0", "\"spto\": 95000.0"),
        error_after_replacing("market.json", "\"spot\": 95000.0", "\"spot\": NaN"),
        error_after_replacing("market.json", "\"spot\": 95000.0", "\"spot\": -95000.0"),
        error_after_replacing("market.json", "\"spot\": 95000.0", "\"spot\": \"95000\""),
        error_after_replacing(
            "es_margin_policy.json",
            "\"confidence\": 0.99",
            "\"confidence\": 99",
        ),
        error_after_replacing(
            "grid_policy_deribit_style.json",
            "\"scenarios\": \"down_same_up\"",
            "\"scenarios\": \"up_only\"",
        ),
        error_after_replacing(
            "grid_policy_deribit_style.json",
            "\"format_version\": 2",
            "\"format_version\": 3",
        ),
        read_document::<MarketFile>(&data("grid_policy_deribit_style.json"))
            .err()
            .unwrap()
            .to_string(),
    ];
    let missing: Vec<String> = quoted
        .into_iter()
        .filter(|message| !docs.contains(message.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/json_format.md does not quote the real messages:\n{}",
        missing.join("\n")
    );
}
