//! Writes the sample JSON documents of `examples/data/` from the crate's
//! types (presets, defaults, the sample book and the main example's
//! settings), so that they are exactly the serde form. The format is
//! described in `docs/json_format.md`; `tests/json_samples.rs` checks
//! that the committed files match.
//!
//! ```sh
//! cargo run --example json_samples                 # rewrites examples/data/*.json
//! cargo run --example json_samples -- --out DIR    # elsewhere
//! cargo run --example json_samples -- --check      # exit 1 if a file differs
//! ```
//!
//! `report.json` is the main example's output:
//! `cargo run --release --example portfolio_margin -- --json > examples/data/report.json`.

mod common;
#[path = "common/samples.rs"]
mod samples;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether every file matched (always true when writing).
fn run() -> Result<bool, Box<dyn Error>> {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => dir = PathBuf::from(args.next().ok_or("--out needs a directory")?),
            "--check" => check = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: json_samples [--out DIR] [--check]"
                )
                .into());
            }
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut all_match = true;
    for (name, text) in samples::samples()? {
        let path = dir.join(name);
        if check {
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            // The committed file must be what the types write, and decode
            // and re-encode to itself.
            let again = samples::round_trip(name, &committed)
                .ok_or_else(|| format!("no decoder for {name}"))?;
            match again {
                Ok(again) if committed == text && again == text => {
                    println!("ok       {}", path.display());
                }
                Ok(_) => {
                    println!("DIFFERS  {}", path.display());
                    all_match = false;
                }
                Err(e) => {
                    println!("INVALID  {}: {e}", path.display());
                    all_match = false;
                }
            }
        } else {
            std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
            println!("wrote    {}", path.display());
        }
    }
    Ok(all_match)
}
