//! `plinth validate`: every error of every document at once, with its place and a fix;
//! warnings for what Kubernetes accepts but is probably a mistake.

use std::collections::BTreeMap;

use anyhow::Result;
use plinth_model::Estate;

use crate::Outcome;
use crate::input::InputArgs;
use crate::output;

/// Check manifests: syntax, fields, values and cross-references, all errors at once.
///
/// Errors, warnings and notes go to stderr, the verdict to stdout. Exit codes: 0 valid
/// (warnings may be printed), 1 invalid (or warnings with --strict), 2 usage or I/O error
/// (a kustomization directory included).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
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
    let (input, loaded) = args.input.load()?;
    output::stderr(args.input.report(&input, &loaded.diagnostics));
    let warnings = loaded.diagnostics.warning_count();
    match &loaded.estate {
        Some(estate) => {
            let mut text = format!("valid: {}\n", summary(estate));
            if warnings > 0 {
                text.push_str(&format!("{warnings} warning(s)\n"));
            }
            output::stdout(text)?;
            Ok(Outcome::Success)
        }
        None => {
            output::stdout(format!(
                "invalid: {} error(s), {warnings} warning(s) in {} file(s)\n",
                loaded.diagnostics.error_count(),
                input.sources.len()
            ))?;
            Ok(Outcome::Invalid)
        }
    }
}
