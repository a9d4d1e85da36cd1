//! `plinth validate`: every error of every document at once, with its place and a fix.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use plinth_model::{Estate, Severity, load};

use crate::Outcome;
use crate::input::InputArgs;
use crate::render::render;

/// Check manifests: syntax, fields, values and cross-references, all errors at once.
///
/// Exit codes: 0 valid, 1 invalid, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// Hide notes (skipped documents).
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// One line per kind of thing loaded, for the summary.
pub(crate) fn summary(estate: &Estate) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for w in &estate.workloads {
        *kinds.entry(w.id.kind.to_string()).or_default() += 1;
    }
    let workloads: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let spares = estate
        .hosts
        .iter()
        .filter(|h| h.role == plinth_model::kinds::inventory::HostRole::Spare)
        .count();
    let mut out = format!(
        "{} hosts ({} spare) in {} racks, {} host classes; {} clusters; {} workloads ({}); {} PodDisruptionBudgets; {} VirtualMachineSets ({} VMs)",
        estate.hosts.len(),
        spares,
        estate.inventory.spec.racks.len(),
        estate.inventory.spec.host_classes.len(),
        estate.clusters.len(),
        estate.workloads.len(),
        if workloads.is_empty() {
            "none".to_owned()
        } else {
            workloads.join(", ")
        },
        estate.disruption_budgets.len(),
        estate.vm_sets.len(),
        estate
            .vm_sets
            .iter()
            .map(|v| u64::from(v.spec.count))
            .sum::<u64>(),
    );
    let defaulted = estate.defaulted();
    if !defaulted.is_empty() {
        out.push_str(&format!("\ndefault: {}", defaulted.join(", ")));
    }
    out
}

/// Runs `plinth validate`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let input = args.input.read()?;
    let loaded = load(&input);
    let shown: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| !(args.quiet && d.severity == Severity::Note))
        .cloned()
        .collect();
    let mut out = std::io::stdout().lock();
    write!(out, "{}", render(&input, &shown))?;
    let errors = loaded.diagnostics.error_count();
    let warnings = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    match &loaded.estate {
        Some(estate) => {
            writeln!(out, "valid: {}", summary(estate))?;
            if warnings > 0 {
                writeln!(out, "{warnings} warning(s)")?;
            }
            Ok(Outcome::Success)
        }
        None => {
            writeln!(
                out,
                "invalid: {errors} error(s), {warnings} warning(s) in {} file(s)",
                input.sources.len()
            )?;
            Ok(Outcome::Invalid)
        }
    }
}
