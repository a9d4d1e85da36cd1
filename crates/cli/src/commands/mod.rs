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
use plinth_model::{Estate, Input};

use crate::input::InputArgs;

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

/// Reads and loads the input `args` name, and prints what the load found on stderr
/// ([`InputArgs::report`]). Returns `None` when the input is invalid (with `--strict`,
/// when it has warnings).
pub(crate) fn load_or_report(args: &InputArgs) -> Result<Option<(Input, Estate)>> {
    let (input, loaded) = args.load()?;
    let report = args.report(&input, &loaded.diagnostics);
    if !report.is_empty() {
        write!(std::io::stderr().lock(), "{report}")?;
    }
    Ok(loaded.estate.map(|e| (input, e)))
}
