//! Pictures of the sample book's risk, as SVG and PNG:
//!
//! * `loss_distribution.{svg,png}`: the histogram of the book's 1-day loss
//!   over 200,000 Monte Carlo paths (correlated spot and implied-vol moves,
//!   full revaluation), with the 99% VaR and ES marked. A progress bar
//!   follows the simulation through the library's progress callback.
//! * `grid_margin_heat_map.{svg,png}`: the book's Deribit-style grid margin
//!   across its scenario grid: per underlying, the weighted loss of every
//!   price move x implied-vol shock ([`GridMarginEngine::scenario_losses`]),
//!   the worst scenario (the scan risk) outlined, the margin in the title.
//! * `stress_heat_map.{svg,png}`: the book's P&L over a spot x vol stress
//!   grid (every underlying moving together).
//!
//! ```sh
//! cargo run --release --example plots                          # into target/plots
//! cargo run --release --example plots -- --out /tmp/pics       # elsewhere
//! cargo run --release --example plots -- --paths 50000 book.json
//! ```
//!
//! Text is drawn with the bundled DejaVu Sans (`examples/assets/`), so the
//! PNGs render the same on machines without system fonts.

mod common;

use indicatif::{ProgressBar, ProgressStyle};
use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use portfolio_margin::{
    Confidence, CorrelationMatrix, DayBasis, Flow, GridAxis, GridCharge, GridMarginEngine,
    GridPolicy, GridScope, MonteCarloConfig, MonteCarloGenerator, MonteCarloRisk, ProgressUpdate,
    Revaluation, RiskArrays, RiskFactor, ShockKind, SimulatedFactor, StressGrid, UnderlyingId,
    VolPoint, YearFraction, monte_carlo_pnl, portfolio_pnl,
};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// DejaVu Sans 2.37 (licence in `examples/assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("assets/DejaVuSans.ttf");
/// Monte Carlo paths unless `--paths` says otherwise.
const DEFAULT_PATHS: usize = 200_000;
/// Seed of the Monte Carlo generator (fixed: the same picture every run).
const SEED: u64 = 20_261_125;
/// VaR and ES confidence.
const CONFIDENCE: f64 = 0.99;
/// Horizon of both pictures, in calendar days.
const HORIZON_DAYS: f64 = 1.0;
/// Annual volatility of the log change of each implied-vol level.
const VOL_OF_VOL: f64 = 1.0;
/// Correlations of the simulated moves: spot with spot, vol with vol, an
/// underlying's spot with its own vol, and with another's vol.
const SPOT_SPOT: f64 = 0.75;
const VOL_VOL: f64 = 0.6;
const SPOT_OWN_VOL: f64 = -0.3;
const SPOT_OTHER_VOL: f64 = -0.2;
/// Histogram bins.
const BINS: usize = 120;
/// Picture sizes in pixels (and SVG user units).
const HISTOGRAM_SIZE: (u32, u32) = (1400, 850);
const HEAT_MAP_SIZE: (u32, u32) = (1400, 950);
/// Height of one underlying's panel of the grid-margin heat map, pixels.
const GRID_PANEL_HEIGHT: u32 = 520;
const GRID_MAP_WIDTH: u32 = 1900;

struct Args {
    out: PathBuf,
    paths: usize,
    book: Option<String>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/plots"),
        paths: DEFAULT_PATHS,
        book: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => args.out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--paths" => {
                let n = it.next().ok_or("--paths needs a number")?;
                args.paths = n.parse().map_err(|e| format!("--paths {n}: {e}"))?;
            }
            flag if flag.starts_with("--") => {
                return Err(format!(
                    "unknown option {flag}; usage: plots [--out DIR] [--paths N] [book.json]"
                )
                .into());
            }
            _ => args.book = Some(arg),
        }
    }
    Ok(args)
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| "the bundled font is not a valid TrueType font")?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("creating {}: {e}", args.out.display()))?;
    let book = common::load_book(args.book.as_deref())?;
    let account = book.portfolio.account().to_string();
    let horizon = YearFraction::from_days(HORIZON_DAYS, DayBasis::Calendar365)?;
    let underlyings: Vec<UnderlyingId> = book
        .market
        .underlyings()
        .map(|(id, _)| id.clone())
        .collect();

    // (a) Monte Carlo P&L with a progress bar driven by the library.
    let generator = generator(&book.market, &underlyings, args.paths, horizon)?;
    let bar = ProgressBar::new(generator.n_chunks() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} chunks, {elapsed_precise}",
    )?);
    let show = |u: ProgressUpdate| {
        bar.set_message(u.stage);
        bar.set_length(u.total);
        bar.set_position(u.done);
        Flow::Continue
    };
    let pnl = monte_carlo_pnl(
        &book.portfolio,
        &book.instruments,
        &book.market,
        &generator,
        Revaluation::Full,
        &show,
    )?;
    bar.finish();
    let confidence = Confidence::new(CONFIDENCE)?;
    let risk = MonteCarloRisk::from_pnl(&pnl, confidence)?;
    println!(
        "{} paths: VaR {:.0}% {} ± {} USD, ES {} ± {} USD",
        risk.paths,
        100.0 * CONFIDENCE,
        thousands(risk.value_at_risk),
        thousands(risk.var_standard_error),
        thousands(risk.expected_shortfall),
        thousands(risk.es_standard_error),
    );
    let losses: Vec<f64> = pnl.iter().map(|p| -p).collect();
    let histogram = LossHistogram {
        title: format!(
            "{account}: {HORIZON_DAYS}-day loss, {} Monte Carlo paths, full revaluation",
            thousands(risk.paths as f64)
        ),
        losses: &losses,
        risk: &risk,
    };
    for path in outputs(&args.out, "loss_distribution") {
        match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => draw_loss_histogram(
                &SVGBackend::new(&path, HISTOGRAM_SIZE).into_drawing_area(),
                &histogram,
            )?,
            _ => draw_loss_histogram(
                &BitMapBackend::new(&path, HISTOGRAM_SIZE).into_drawing_area(),
                &histogram,
            )?,
        }
        println!("wrote {}", path.display());
    }

    // (b) The grid margin across its scenario grid, one panel per underlying.
    let engine =
        GridMarginEngine::new(&book.instruments, &book.market, GridPolicy::deribit_style())?;
    let grid_account = engine.account(&book.portfolio)?;
    let margin = engine.margin(&grid_account)?;
    let mut panels = Vec::new();
    for (underlying, losses) in engine.scenario_losses(&grid_account)? {
        let points = engine.scenario_points(&underlying)?;
        let detail = margin
            .underlyings
            .iter()
            .find(|u| u.underlying == underlying)
            .ok_or("an underlying of the scenario losses has no margin line")?;
        panels.push(grid_panel(&underlying, points, &losses, detail)?);
    }
    let title = format!(
        "{account}: {} grid margin {} USD initial, {} maintenance",
        engine.policy().name,
        thousands(margin.requirement.initial()),
        thousands(margin.requirement.maintenance()),
    );
    let size = (
        GRID_MAP_WIDTH,
        60 + GRID_PANEL_HEIGHT * u32::try_from(panels.len())?,
    );
    for path in outputs(&args.out, "grid_margin_heat_map") {
        match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => draw_heat_maps(
                &SVGBackend::new(&path, size).into_drawing_area(),
                &title,
                &panels,
            )?,
            _ => draw_heat_maps(
                &BitMapBackend::new(&path, size).into_drawing_area(),
                &title,
                &panels,
            )?,
        }
        println!("wrote {}", path.display());
    }

    // (c) P&L over a spot x vol stress grid, every underlying together.
    let grid = StressGrid::new(
        GridAxis::new(ShockKind::Relative, 0.30, 13)?,
        GridAxis::new(ShockKind::Relative, 0.40, 9)?,
        GridScope::AllTogether,
        horizon,
    );
    let scenarios = grid.scenarios(&underlyings)?;
    let arrays = RiskArrays::compute(
        &book.instruments,
        &book.market,
        &scenarios,
        Revaluation::Full,
    )?;
    let grid_pnl = portfolio_pnl(&book.portfolio, &arrays)?;
    // Scenario order: spot move outer, vol move inner (both ascending).
    let spot_moves = grid.spot().moves();
    let vol_moves = grid.vol().moves();
    let rows: Vec<Vec<f64>> = (0..vol_moves.len())
        .map(|v| {
            (0..spot_moves.len())
                .map(|s| grid_pnl.get(s * vol_moves.len() + v).copied())
                .collect::<Option<Vec<f64>>>()
                .ok_or("stress grid P&L is shorter than the grid")
        })
        .collect::<Result<_, _>>()?;
    let percent = |m: &f64| format!("{:+.0}%", 100.0 * m);
    let title = format!(
        "{account}: P&L over a stress grid, all underlyings together, {HORIZON_DAYS}-day horizon"
    );
    let heat_map = HeatMap {
        caption: String::new(),
        x_axis: Axis {
            name: "spot move".into(),
            unit: "relative, %".into(),
            ticks: spot_moves.iter().map(percent).collect(),
        },
        y_axis: Axis {
            name: "implied vol move".into(),
            unit: "relative, %".into(),
            ticks: vol_moves.iter().map(percent).collect(),
        },
        value_name: "P&L".into(),
        value_unit: "USD".into(),
        values: rows
            .into_iter()
            .map(|row| row.into_iter().map(Some).collect())
            .collect(),
        outlined: Extreme::Lowest,
    };
    for path in outputs(&args.out, "stress_heat_map") {
        match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => draw_heat_maps(
                &SVGBackend::new(&path, HEAT_MAP_SIZE).into_drawing_area(),
                &title,
                std::slice::from_ref(&heat_map),
            )?,
            _ => draw_heat_maps(
                &BitMapBackend::new(&path, HEAT_MAP_SIZE).into_drawing_area(),
                &title,
                std::slice::from_ref(&heat_map),
            )?,
        }
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// One underlying's grid as a heat map: columns are the price moves in
/// increasing order (extreme moves marked `*`), rows the vol points; each
/// cell the book's weighted loss there (a scenario the grid does not have,
/// such as an extreme move with vol down, is left blank).
fn grid_panel(
    underlying: &UnderlyingId,
    points: &[portfolio_margin::GridPoint],
    losses: &[f64],
    detail: &portfolio_margin::UnderlyingGridMargin,
) -> Result<HeatMap, Box<dyn Error>> {
    if points.len() != losses.len() {
        return Err(format!(
            "{underlying}: {} scenario points but {} losses",
            points.len(),
            losses.len()
        )
        .into());
    }
    let mut columns: Vec<(f64, bool)> = points.iter().map(|p| (p.price_move, p.extreme)).collect();
    columns.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    columns.dedup();
    let vol_rows: Vec<VolPoint> = [VolPoint::Down, VolPoint::Same, VolPoint::Up]
        .into_iter()
        .filter(|v| points.iter().any(|p| p.vol == *v))
        .collect();
    let mut values = vec![vec![None; columns.len()]; vol_rows.len()];
    let mut cover = None;
    let mut extreme_vols = Vec::new();
    for (point, loss) in points.iter().zip(losses) {
        let c = columns
            .iter()
            .position(|&col| col == (point.price_move, point.extreme));
        let r = vol_rows.iter().position(|v| *v == point.vol);
        if let (Some(r), Some(c)) = (r, c) {
            values[r][c] = Some(*loss);
        }
        if point.extreme {
            cover = Some(point.weight);
            if !extreme_vols.contains(&point.vol) {
                extreme_vols.push(point.vol);
            }
        }
    }
    let binding = match detail.binding {
        GridCharge::ScanRisk => "scan risk",
        GridCharge::OptionMinimum => "option minimum",
        GridCharge::DeltaCharge => "delta charge",
    };
    Ok(HeatMap {
        caption: format!(
            "{underlying}: requirement {} USD ({binding}); scan risk {} USD, worst scenario (outlined): {}",
            thousands(detail.requirement),
            thousands(detail.scan_risk),
            detail.worst_scenario_name
        ),
        x_axis: Axis {
            name: "price move".into(),
            unit: match cover {
                Some(w) => format!(
                    "relative, %; * extreme move{}, {:.0}% of its loss counted",
                    match extreme_vols.as_slice() {
                        [VolPoint::Up] => " (vol up only)",
                        [VolPoint::Same] => " (vol unchanged only)",
                        [VolPoint::Down] => " (vol down only)",
                        _ => "",
                    },
                    100.0 * w
                ),
                None => "relative, %".into(),
            },
            ticks: columns
                .iter()
                .map(|&(m, extreme)| {
                    format!("{:+.0}%{}", 100.0 * m, if extreme { "*" } else { "" })
                })
                .collect(),
        },
        y_axis: Axis {
            name: "implied vol".into(),
            unit: "shock".into(),
            ticks: vol_rows
                .iter()
                .map(|v| {
                    match v {
                        VolPoint::Down => "down",
                        VolPoint::Same => "unchanged",
                        VolPoint::Up => "up",
                    }
                    .to_string()
                })
                .collect(),
        },
        value_name: "weighted loss".into(),
        value_unit: "USD".into(),
        values,
        outlined: Extreme::Highest,
    })
}

/// `DIR/NAME.svg` and `DIR/NAME.png`.
fn outputs(dir: &Path, name: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{name}.svg")),
        dir.join(format!("{name}.png")),
    ]
}

/// Log spot moves and log implied-vol moves of every underlying, with the
/// spot's annual volatility read off its surface (at the money, 30 days).
fn generator(
    market: &portfolio_margin::MarketSnapshot,
    underlyings: &[UnderlyingId],
    paths: usize,
    horizon: YearFraction,
) -> Result<MonteCarloGenerator, Box<dyn Error>> {
    let mut factors = common::atm_spot_factors(market, underlyings)?;
    for u in underlyings {
        factors.push(SimulatedFactor::new(
            RiskFactor::Vol(u.clone()),
            ShockKind::Log,
            VOL_OF_VOL,
        )?);
    }
    // Factor k < n is spot k, factor n + k is vol k.
    let n = underlyings.len();
    let dim = 2 * n;
    let correlation: Vec<f64> = (0..dim * dim)
        .map(|idx| {
            let (i, j) = (idx / dim, idx % dim);
            let same = i % n == j % n;
            match (i < n, j < n) {
                _ if i == j => 1.0,
                (true, true) => SPOT_SPOT,
                (false, false) => VOL_VOL,
                _ if same => SPOT_OWN_VOL,
                _ => SPOT_OTHER_VOL,
            }
        })
        .collect();
    let config = MonteCarloConfig::new(SEED, paths, horizon)?;
    Ok(MonteCarloGenerator::new(
        config,
        factors,
        &CorrelationMatrix::new(dim, correlation)?,
    )?)
}

/// `-1234567.8` as `"-1,234,568"`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x.round() < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// Which side of its line a label prefers.
#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
}

/// What the loss histogram shows.
struct LossHistogram<'a> {
    title: String,
    /// Loss per path, quote currency (positive = loss).
    losses: &'a [f64],
    risk: &'a MonteCarloRisk,
}

const TEXT: RGBColor = RGBColor(30, 30, 30);
const BODY: RGBColor = RGBColor(120, 150, 190);
const TAIL: RGBColor = RGBColor(205, 70, 50);
const VAR_LINE: RGBColor = RGBColor(230, 140, 0);
const ES_LINE: RGBColor = RGBColor(140, 20, 20);

/// The histogram of `h.losses` in [`BINS`] bins, paths beyond VaR in red,
/// VaR and ES as labelled vertical lines.
fn draw_loss_histogram<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &LossHistogram,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let lo = h.losses.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = h.losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Err("the losses have no spread to draw".into());
    }
    let width = (hi - lo) / BINS as f64;
    let mut counts = vec![0_u64; BINS];
    for &l in h.losses {
        let bin = (((l - lo) / width) as usize).min(BINS - 1);
        if let Some(c) = counts.get_mut(bin) {
            *c += 1;
        }
    }
    // Headroom above the tallest bar for the legend.
    let top = counts.iter().copied().max().unwrap_or(1) as f64 * 1.3;
    let (var, es) = (h.risk.value_at_risk, h.risk.expected_shortfall);
    let pct = 100.0 * h.risk.confidence;

    let mut chart = ChartBuilder::on(root)
        .caption(&h.title, ("sans-serif", 30).into_font().color(&TEXT))
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(100)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(format!(
            "loss over {HORIZON_DAYS} day (USD; positive = loss, negative = gain)"
        ))
        .y_desc(format!(
            "paths per bin (bin width {} USD)",
            thousands(width)
        ))
        .x_label_formatter(&|x| thousands(*x))
        .y_label_formatter(&|y| thousands(*y))
        .axis_desc_style(("sans-serif", 22))
        .label_style(("sans-serif", 18))
        .draw()?;

    let bar = |k: usize, color: RGBColor| {
        let x0 = lo + k as f64 * width;
        Rectangle::new([(x0, 0.0), (x0 + width, counts[k] as f64)], color.filled())
    };
    // A bin is in the tail once its upper edge is beyond VaR.
    let tail = |k: usize| lo + (k + 1) as f64 * width > var;
    chart
        .draw_series((0..BINS).filter(|&k| !tail(k)).map(|k| bar(k, BODY)))?
        .label(format!(
            "paths ({} in all)",
            thousands(h.losses.len() as f64)
        ))
        .legend(|(x, y)| Rectangle::new([(x, y - 7), (x + 18, y + 7)], BODY.filled()));
    chart
        .draw_series((0..BINS).filter(|&k| tail(k)).map(|k| bar(k, TAIL)))?
        .label(format!(
            "bins beyond the {pct:.0}% VaR (the worst {:.0}% of paths)",
            100.0 - pct
        ))
        .legend(|(x, y)| Rectangle::new([(x, y - 7), (x + 18, y + 7)], TAIL.filled()));
    for (value, color, name, se, y, side) in [
        (
            var,
            VAR_LINE,
            "VaR",
            h.risk.var_standard_error,
            0.93,
            Side::Left,
        ),
        (
            es,
            ES_LINE,
            "ES",
            h.risk.es_standard_error,
            0.85,
            Side::Right,
        ),
    ] {
        let label = format!(
            "{name} {pct:.0}%: {} USD (± {})",
            thousands(value),
            thousands(se)
        );
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(value, 0.0), (value, top)],
                color.stroke_width(3),
            )))?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
        // The value next to its line: VaR's on the left and ES's on the
        // right (ES >= VaR, so the labels never cross the other line),
        // unless the side lacks room.
        let right_side = match side {
            Side::Right => value < lo + 0.8 * (hi - lo),
            Side::Left => value < lo + 0.2 * (hi - lo),
        };
        let anchor = if right_side {
            (
                plotters::style::text_anchor::HPos::Left,
                value + 0.01 * (hi - lo),
            )
        } else {
            (
                plotters::style::text_anchor::HPos::Right,
                value - 0.01 * (hi - lo),
            )
        };
        let style = ("sans-serif", 20).into_font().color(&color).pos(
            plotters::style::text_anchor::Pos::new(
                anchor.0,
                plotters::style::text_anchor::VPos::Center,
            ),
        );
        chart.draw_series(std::iter::once(Text::new(
            format!("{name} {}", thousands(value)),
            (anchor.1, top * y),
            style,
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .margin(15)
        .label_font(("sans-serif", 20))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A grid of numbers to colour: `values[row][column]`, rows along the y
/// axis (first row at the bottom), columns along the x axis; `None` is a
/// cell without a value (drawn blank).
///
/// Not tied to any risk model: a stress grid's P&L, or a margin grid's
/// losses.
struct HeatMap {
    /// The panel's caption (may be empty).
    caption: String,
    /// Columns: one tick per column.
    x_axis: Axis,
    /// Rows: one tick per row.
    y_axis: Axis,
    /// What the numbers are (`"P&L"`) and their unit (`"USD"`).
    value_name: String,
    value_unit: String,
    values: Vec<Vec<Option<f64>>>,
    /// Which cell is outlined, and which side of zero is drawn red.
    outlined: Extreme,
}

/// The bad end of a heat map's values.
#[derive(Clone, Copy, PartialEq)]
enum Extreme {
    /// Low is bad (P&L): the lowest cell is outlined, negatives are red.
    Lowest,
    /// High is bad (losses): the highest cell is outlined, positives are red.
    Highest,
}

/// A heat map axis: what moves, in which unit, and a label per cell.
struct Axis {
    name: String,
    unit: String,
    ticks: Vec<String>,
}

impl Axis {
    fn description(&self) -> String {
        format!("{} ({})", self.name, self.unit)
    }
}

/// `v` in thousands: `"-412k"`, `"0"`.
fn kilo(v: f64) -> String {
    match thousands(v / 1000.0) {
        zero if zero == "0" => zero,
        k => format!("{k}k"),
    }
}

/// Diverging colour for `t` in [-1, 1]: red below zero, white at zero, blue
/// above.
fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        (178.0, 24.0, 43.0)
    } else {
        (33.0, 102.0, 172.0)
    };
    let a = t.abs();
    let mix = |c: f64| (255.0 + (c - 255.0) * a).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

/// A figure: `title` on top, then the heat maps one under the other.
fn draw_heat_maps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    maps: &[HeatMap],
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root
        .margin(15, 0, 0, 0)
        .titled(title, ("sans-serif", 28).into_font().color(&TEXT))?;
    for (area, map) in root.split_evenly((maps.len(), 1)).iter().zip(maps) {
        draw_heat_map(area, map)?;
    }
    root.present()?;
    Ok(())
}

/// The heat map with each cell's value written in it, the worst cell
/// outlined, and a colour bar on the right.
fn draw_heat_map<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    map: &HeatMap,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let rows = map.values.len();
    let cols = map.values.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 || map.values.iter().any(|r| r.len() != cols) {
        return Err("the heat map needs a non-empty rectangular grid".into());
    }
    if map.x_axis.ticks.len() != cols || map.y_axis.ticks.len() != rows {
        return Err("the heat map needs one tick label per row and column".into());
    }
    let cells = || {
        map.values.iter().enumerate().flat_map(|(r, row)| {
            row.iter()
                .enumerate()
                .filter_map(move |(c, v)| v.map(|v| (r, c, v)))
        })
    };
    let scale = cells()
        .map(|(_, _, v)| v.abs())
        .fold(0.0, f64::max)
        .max(1.0);
    // Colour position in [-1, 1], negative (red) at the bad end.
    let badness = match map.outlined {
        Extreme::Lowest => 1.0,
        Extreme::Highest => -1.0,
    };
    let (worst_r, worst_c, worst) = cells()
        .min_by(|a, b| (badness * a.2).total_cmp(&(badness * b.2)))
        .ok_or("empty heat map")?;
    let which = match map.outlined {
        Extreme::Lowest => "lowest",
        Extreme::Highest => "highest",
    };
    let worst_text = format!(
        "{which} {} (outlined): {} {} at {} {}, {} {}",
        map.value_name,
        thousands(worst),
        map.value_unit,
        map.x_axis.name,
        map.x_axis.ticks[worst_c],
        map.y_axis.name,
        map.y_axis.ticks[worst_r]
    );
    let caption = if map.caption.is_empty() {
        worst_text
    } else {
        map.caption.clone()
    };
    let (main, bar_area) = area.split_horizontally(area.dim_in_pixel().0 as i32 - 200);

    // Integer ranges are inclusive in plotters: `0..=cols - 1` is `cols` cells.
    let mut chart = ChartBuilder::on(&main)
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(140)
        .caption(caption, ("sans-serif", 20).into_font().color(&TEXT))
        .build_cartesian_2d(
            (0..cols - 1).into_segmented(),
            (0..rows - 1).into_segmented(),
        )?;
    let tick = |labels: &[String], v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols)
        .y_labels(rows)
        .x_label_formatter(&|v| tick(&map.x_axis.ticks, v))
        .y_label_formatter(&|v| tick(&map.y_axis.ticks, v))
        .x_desc(map.x_axis.description())
        .y_desc(map.y_axis.description())
        .axis_desc_style(("sans-serif", 22))
        .label_style(("sans-serif", 18))
        .draw()?;
    let corner = |r: usize, c: usize| (SegmentValue::Exact(c), SegmentValue::Exact(r));
    chart.draw_series(map.values.iter().enumerate().flat_map(|(r, row)| {
        row.iter().enumerate().map(move |(c, v)| {
            let color = match v {
                Some(v) => diverging(badness * v / scale),
                None => RGBColor(235, 235, 235),
            };
            Rectangle::new([corner(r, c), corner(r + 1, c + 1)], color.filled())
        })
    }))?;
    // Values in thousands inside the cells, white on dark cells.
    chart.draw_series(cells().map(|(r, c, v)| {
        let color = if v.abs() / scale > 0.55 { WHITE } else { BLACK };
        let style = ("sans-serif", 16).into_font().color(&color).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ),
        );
        Text::new(
            kilo(v),
            (SegmentValue::CenterOf(c), SegmentValue::CenterOf(r)),
            style,
        )
    }))?;
    // A path, not an unfilled rectangle: the SVG backend keeps its width.
    chart.draw_series(std::iter::once(PathElement::new(
        vec![
            corner(worst_r, worst_c),
            corner(worst_r, worst_c + 1),
            corner(worst_r + 1, worst_c + 1),
            corner(worst_r + 1, worst_c),
            corner(worst_r, worst_c),
        ],
        BLACK.stroke_width(4),
    )))?;

    // Colour bar: value axis from -scale to +scale.
    let mut bar = ChartBuilder::on(&bar_area)
        .margin_top(20)
        .margin_bottom(90)
        .margin_right(15)
        .y_label_area_size(110)
        .caption(
            format!("{} ({})", map.value_name, map.value_unit),
            ("sans-serif", 18),
        )
        .build_cartesian_2d(0.0..1.0, -scale..scale)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(9)
        .y_label_formatter(&|v| kilo(*v))
        .label_style(("sans-serif", 16))
        .draw()?;
    let steps = 200;
    bar.draw_series((0..steps).map(|k| {
        let y0 = -scale + 2.0 * scale * k as f64 / steps as f64;
        let y1 = -scale + 2.0 * scale * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, y0), (1.0, y1)],
            diverging(badness * (y0 + y1) / (2.0 * scale)).filled(),
        )
    }))?;
    Ok(())
}
