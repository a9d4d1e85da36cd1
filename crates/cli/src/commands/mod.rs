//! One module per verb, and what several verbs share.

pub(crate) mod compare;
pub(crate) mod explain;
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
