//! `plinth drs --dry-run`: the moves the next DRS pass would make, by the control plane's
//! own rule ([`plinth_control::Control::drs_review`]), and the imbalance before and after
//! them. On an estate directory (`plinth drs DIR --dry-run`) it plans on the directory's
//! placement; without a directory it asks the running service (`plinth serve`) for the
//! pass it would make now.

use anyhow::{Context, Result};
use plinth_control::Span;
use plinth_control::drs::Review;
use plinth_server::wire::{DRS_PATH, DrsPass};

use crate::Outcome;
use crate::client::{Client, ServerArgs};
use crate::commands::{OutputFormat, load_or_report, table};
use crate::input::InputArgs;
use crate::output;

/// Plan a DRS pass: the live migrations that reduce the imbalance of CPU allocation, other
/// VMs first, control-plane VMs last and one at a time. With DIR, on that estate's
/// placement; without, on the running service's. Only a dry run: the service runs passes
/// by itself while DRS is on.
///
/// Exit codes: 0 planned, 1 invalid input, 2 usage, I/O or server error (no `--dry-run`).
#[derive(Debug, clap::Args)]
#[command(mut_arg("paths", |a| a.required(false)))]
pub(crate) struct Args {
    /// DIR: the estate directory to plan on; none asks the service.
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// Answer what would happen, change nothing (the only mode).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth drs`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    if !args.dry_run {
        anyhow::bail!(
            "`plinth drs` only plans: DRS passes run by themselves while DRS is on (the Environment's `drs`); \
             pass --dry-run to see the pass it would make now"
        );
    }
    let review = if args.input.paths.is_empty() {
        let client = Client::new(&args.server)?;
        let answer: DrsPass = client
            .post(&format!("{DRS_PATH}?dryRun=All"), &serde_json::json!({}))
            .context("asking the service for a DRS pass")?;
        answer.review
    } else {
        let Some((_, estate)) = load_or_report(&args.input)? else {
            return Ok(Outcome::Invalid);
        };
        plinth_sim::owned_setup(&estate)?.control.drs_review()?
    };
    match args.output {
        OutputFormat::Json => output::stdout(serde_json::to_string_pretty(&review)?)?,
        OutputFormat::Table => output::stdout(render(&review))?,
    }
    Ok(Outcome::Success)
}

/// The pass as a line and a table of moves.
fn render(review: &Review) -> String {
    let mut out = format!(
        "DRS{}: imbalance {:.3} (threshold {:.3}) → {:.3} after {} of at most {} moves per {}\n",
        if review.enabled {
            ""
        } else {
            " (disabled in the Environment)"
        },
        review.imbalance_before,
        review.threshold,
        review.imbalance_after,
        review.moves.len(),
        review.max_moves_per_interval,
        Span(review.interval_ms)
    );
    if !review.moves.is_empty() {
        let mut t = table(120, vec!["vm", "from", "to", "role"]);
        for m in &review.moves {
            let role = m
                .control_plane_of
                .as_ref()
                .map_or_else(|| "other".to_owned(), |c| format!("control plane of {c}"));
            t.add_row(vec![m.vm.clone(), m.from.clone(), m.to.clone(), role]);
        }
        out.push_str(&format!("{t}\n"));
    }
    out
}
