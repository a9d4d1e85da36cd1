//! One module per verb, and what several verbs share.

pub(crate) mod agent;
pub(crate) mod apply;
pub(crate) mod calibrate;
pub(crate) mod certs;
pub(crate) mod compare;
pub(crate) mod drs;
pub(crate) mod explain;
pub(crate) mod get;
pub(crate) mod hosts;
pub(crate) mod image;
pub(crate) mod logs;
pub(crate) mod maintenance;
pub(crate) mod plan;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod upgrade;
pub(crate) mod validate;

use anyhow::Result;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::quantity::Duration;
use plinth_model::ranges;
use plinth_model::{Estate, Input};

use crate::input::InputArgs;
use crate::output;

/// `--env` values, kebab-case as kubectl spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EnvArg {
    /// Node VMs on a shared hypervisor pool.
    Virtualized,
    /// One node per physical server.
    BareMetal,
}

impl From<EnvArg> for EnvironmentType {
    fn from(e: EnvArg) -> Self {
        match e {
            EnvArg::Virtualized => Self::Virtualized,
            EnvArg::BareMetal => Self::BareMetal,
        }
    }
}

/// `-o` values for commands whose output is data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Tables for a terminal.
    Table,
    /// JSON for machines.
    Json,
}

/// Parses `--duration`: a duration inside [`ranges::RUN_DURATION`], for every command that
/// simulates, so `simulate` and `compare` refuse the same values with the same message.
pub(crate) fn duration_arg(text: &str) -> Result<Duration, String> {
    let d: Duration = text.parse()?;
    if ranges::RUN_DURATION.contains(d) {
        Ok(d)
    } else {
        Err(format!(
            "{d} is out of range: expected {} ({})",
            ranges::RUN_DURATION,
            ranges::RUN_DURATION.why
        ))
    }
}

/// Parses `--max-events-per-day`: at least 100 (the hourly series alone takes 48 events a
/// day; a lower budget would stop every run).
pub(crate) fn events_per_day_arg(text: &str) -> Result<u64, String> {
    let n: u64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number of events"))?;
    if n >= 100 {
        Ok(n)
    } else {
        Err(format!(
            "{n} is out of range: expected at least 100 events a day (the hourly series alone takes 48)"
        ))
    }
}

/// Parses a count of paired runs (`--seeds`, `--sweep-runs`): 2 (the least that gives an
/// interval) up to the most in [`ranges::RUNS`].
pub(crate) fn runs_arg(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number of runs"))?;
    if (2..=ranges::RUNS.max).contains(&u64::from(n)) {
        Ok(n)
    } else {
        Err(format!(
            "{n} is out of range: expected 2 to {} ({})",
            ranges::RUNS.max,
            ranges::RUNS.why
        ))
    }
}

/// Reads and loads the input `args` name, and prints what the load found on stderr
/// ([`InputArgs::report`]). Returns `None` when the input is invalid (with `--strict`,
/// when it has warnings).
pub(crate) fn load_or_report(args: &InputArgs) -> Result<Option<(Input, Estate)>> {
    let (input, loaded) = args.load()?;
    let report = args.report(&input, &loaded.diagnostics);
    output::stderr(report);
    Ok(loaded.estate.map(|e| (input, e)))
}

/// The dry-run verbs answer questions about an estate directory; without `--dry-run` there
/// is nothing running to carry the operation out.
pub(crate) fn require_dry_run(dry_run: bool, verb: &str) -> Result<()> {
    if dry_run {
        return Ok(());
    }
    anyhow::bail!(
        "`plinth {verb}` on an estate directory only plans: nothing runs there to carry it out; \
         pass --dry-run to see what it would do (carrying it out is the service's job)"
    )
}

/// Log lines on stderr (`RUST_LOG` filters them; `info` by default).
pub(crate) fn logging() {
    logging_from("info");
}

/// Log lines on stderr from `level` up (`RUST_LOG` overrides it).
pub(crate) fn logging_from(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// A tokio runtime for the verbs that talk to processes and sockets, with log lines on
/// stderr (`RUST_LOG` filters them; `info` by default).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    logging();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// A table as every command prints one: condensed UTF-8 borders, wrapped to `width`
/// columns, with `header`.
pub(crate) fn table(width: u16, header: Vec<&str>) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(header);
    t
}
