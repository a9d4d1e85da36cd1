//! `plinth drs DIR --dry-run`: the moves the next DRS pass would make on the estate's
//! placement, by the control plane's own rule ([`plinth_control::drs::plan`]), and the
//! imbalance before and after them.

use anyhow::{Context, Result};
use plinth_control::drs::{self, Roles};
use plinth_control::{ControlConfig, Span};
use serde_json::json;

use crate::Outcome;
use crate::commands::{OutputFormat, load_or_report, require_dry_run, table, virtualized_setup};
use crate::input::InputArgs;
use crate::output;

/// Plan a DRS pass: the live migrations that reduce the imbalance of CPU allocation, other
/// VMs first, control-plane VMs last and one at a time.
///
/// Exit codes: 0 planned, 1 invalid input, 2 usage or I/O error (no `--dry-run`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// Answer what would happen, change nothing (the only mode on an estate directory).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
}

/// Runs `plinth drs`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    require_dry_run(args.dry_run, "drs")?;
    let Some((input, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let setup = virtualized_setup(&input, &estate)?;
    let control = &setup.control;
    let state = control
        .pool()
        .context("the virtualized design has no pool")?;
    let cfg = ControlConfig::virtualized(&estate).drs;
    let roles = Roles::of(control.clusters(), |vm| control.vm_id(vm));
    let plan = drs::plan(state, &cfg, &roles, |_| true, &[], control.zones());
    let moves = plan.named(state, &roles);
    match args.output {
        OutputFormat::Json => output::stdout(serde_json::to_string_pretty(&json!({
            "enabled": cfg.enabled,
            "threshold": cfg.threshold,
            "intervalMs": cfg.interval,
            "maxMovesPerInterval": cfg.max_moves,
            "imbalanceBefore": plan.before,
            "imbalanceAfter": plan.after,
            "moves": moves,
        }))?)?,
        OutputFormat::Table => {
            let mut out = format!(
                "DRS{}: imbalance {:.3} (threshold {:.3}) → {:.3} after {} of at most {} moves per {}\n",
                if cfg.enabled {
                    ""
                } else {
                    " (disabled in the Environment)"
                },
                plan.before,
                cfg.threshold,
                plan.after,
                moves.len(),
                cfg.max_moves,
                Span(cfg.interval)
            );
            if !moves.is_empty() {
                let mut t = table(120, vec!["vm", "from", "to", "role"]);
                for m in &moves {
                    let role = m
                        .control_plane_of
                        .as_ref()
                        .map_or_else(|| "other".to_owned(), |c| format!("control plane of {c}"));
                    t.add_row(vec![m.vm.clone(), m.from.clone(), m.to.clone(), role]);
                }
                out.push_str(&format!("{t}\n"));
            }
            output::stdout(out)?;
        }
    }
    Ok(Outcome::Success)
}
