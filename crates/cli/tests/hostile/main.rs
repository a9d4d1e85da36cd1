//! The hostile-input suite (issue 13): a table of inputs and flags a hostile or careless
//! user might give, each run through the real `plinth` binary with a timeout and a check
//! of its peak memory, with the exit code and a message fragment it must give. No case
//! may panic, abort, hang or exhaust memory.
//!
//! `harness = false`: cases run one after another so that the peak resident set of the
//! children (`getrusage(RUSAGE_CHILDREN)`, a running maximum) rises past the limit on the
//! very case that caused it. `cargo test -p plinth-cli --test hostile -- NAME` runs the
//! cases whose name contains NAME.

mod cases;
mod run;

use std::process::ExitCode;

fn main() -> ExitCode {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases = cases::all();
    let total = cases.len();
    let chosen: Vec<run::Case> = cases
        .into_iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    let mut failures = Vec::new();
    for case in &chosen {
        match run::run(case) {
            Ok(()) => println!("ok   {}", case.name),
            Err(e) => {
                println!("FAIL {}: {e}", case.name);
                failures.push(format!("{}: {e}", case.name));
            }
        }
    }
    println!(
        "hostile inputs: {} of {} cases run, {} failed",
        chosen.len(),
        total,
        failures.len()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            println!("failed: {f}");
        }
        ExitCode::FAILURE
    }
}
