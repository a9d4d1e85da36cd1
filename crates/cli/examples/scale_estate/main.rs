//! Writes one of issue 13's generated estates into a directory, for measuring `plinth
//! compare` and `plinth plan` at scale (docs/benchmarks.md, "Scale (issue 13)"):
//!
//! ```text
//! cargo run --release -p plinth-cli --example scale_estate -- compare /tmp/estate-500
//! cargo run --release -p plinth-cli --example scale_estate -- plan /tmp/estate-10k
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: its result and usage"
)]

mod estate;

use std::path::PathBuf;
use std::process::ExitCode;

use estate::Shape;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shape = match args.first().map(String::as_str) {
        Some("compare") => Shape::COMPARE,
        Some("plan") => Shape::PLAN,
        Some("small") => Shape::SMALL,
        _ => return usage(),
    };
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        return usage();
    };
    match estate::write(&dir, &shape) {
        Ok(()) => {
            println!("{shape:?} written to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: scale_estate compare|plan|small DIR");
    ExitCode::from(2)
}
