//! One module per verb, and what several verbs share.

pub(crate) mod agent;
pub(crate) mod compare;
pub(crate) mod explain;
pub(crate) mod image;
pub(crate) mod plan;
pub(crate) mod schema;
pub(crate) mod simulate;
pub(crate) mod validate;

use std::io::Write;

use anyhow::Result;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::{Estate, Input, Severity, load};

use crate::input::{ClusterPath, read_input};
use crate::render::render;
use std::path::PathBuf;

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

/// Reads and loads an input. On invalid input, prints the diagnostics to stderr and
/// returns `None`; warnings are printed either way.
pub(crate) fn load_or_report(
    paths: &[PathBuf],
    clusters: &[ClusterPath],
) -> Result<Option<(Input, Estate)>> {
    let input = read_input(paths, clusters)?;
    let loaded = load(&input);
    let shown: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Note)
        .cloned()
        .collect();
    if !shown.is_empty() {
        write!(std::io::stderr().lock(), "{}", render(&input, &shown))?;
    }
    Ok(loaded.estate.map(|e| (input, e)))
}

/// A tokio runtime for the verbs that talk to processes and sockets, with log lines on
/// stderr (`RUST_LOG` filters them; `info` by default).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
