//! `plinth maintenance`: what taking a host down for maintenance does to the estate,
//! planned by the control plane's own evacuation
//! ([`plinth_control::Control::maintenance_review`]). On an estate directory (`plinth
//! maintenance DIR --host HOST --dry-run`) it plans on the directory's placement; without
//! a directory it asks the running service (`plinth serve`), which plans on the placement
//! as it is now and, without `--dry-run`, carries the maintenance out.

use anyhow::{Context, Result};
use plinth_control::Span;
use plinth_control::maintenance::{MaintenancePlan, Review};
use plinth_server::wire::{HostMaintenance, maintenance_path};

use crate::Outcome;
use crate::client::{Client, ClientError, ServerArgs};
use crate::commands::{OutputFormat, load_or_report, require_dry_run, table};
use crate::input::InputArgs;
use crate::output;

/// Plan a host's maintenance: where its VMs move, which stop and why, whether every etcd
/// quorum and PodDisruptionBudget holds, and when the host can go down. With DIR, on that
/// estate's placement (`--dry-run` only); without, on the running service's, which carries
/// it out unless `--dry-run`.
///
/// Exit codes: 0 safe (or `--force`; with the service, requested), 1 invalid input or a
/// quorum or budget would break, 2 usage, I/O or server error (an unknown host, no
/// `--dry-run` on a directory).
#[derive(Debug, clap::Args)]
#[command(mut_arg("paths", |a| a.required(false)))]
pub(crate) struct Args {
    /// DIR: the estate directory to plan on; none asks the service.
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// The host to take down.
    #[arg(long)]
    pub(crate) host: String,
    /// Answer what would happen, change nothing (the only mode on an estate directory).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Go ahead (exit 0) even when an etcd quorum or a PodDisruptionBudget would break.
    #[arg(long)]
    pub(crate) force: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth maintenance`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    if args.input.paths.is_empty() {
        asked(args)
    } else {
        planned(args, &args.input)
    }
}

/// On an estate directory: the plan on its placement.
fn planned(args: &Args, input_args: &InputArgs) -> Result<Outcome> {
    require_dry_run(args.dry_run, "maintenance")?;
    let Some((_, estate)) = load_or_report(input_args)? else {
        return Ok(Outcome::Invalid);
    };
    let setup = plinth_sim::owned_setup(&estate)?;
    let review = setup
        .control
        .maintenance_review(&args.host, &setup.budgets(), args.force)?;
    match args.output {
        OutputFormat::Json => output::stdout(serde_json::to_string_pretty(&review)?)?,
        OutputFormat::Table => output::stdout(render(&review, None))?,
    }
    Ok(verdict(&review))
}

/// Of the running service: its plan on the placement as it is now and, without
/// `--dry-run`, the maintenance requested.
fn asked(args: &Args) -> Result<Outcome> {
    let client = Client::new(&args.server)?;
    let mut path = maintenance_path(&args.host);
    let query: Vec<&str> = [
        args.dry_run.then_some("dryRun=All"),
        args.force.then_some("force=true"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let answer: HostMaintenance = match client.post(&path, &serde_json::json!({})) {
        Ok(answer) => answer,
        Err(ClientError::Api(status)) if status.reason == "Refused" => {
            output::stderr(format!("error: {}", status.message));
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e).context("asking the service for the maintenance"),
    };
    match args.output {
        OutputFormat::Json => output::stdout(serde_json::to_string_pretty(&answer)?)?,
        OutputFormat::Table => {
            output::stdout(render(&answer.review, Some(!answer.dry_run)))?;
        }
    }
    Ok(verdict(&answer.review))
}

/// Exit 1 when the maintenance must not go ahead.
fn verdict(review: &Review) -> Outcome {
    if review.refused() {
        Outcome::Invalid
    } else {
        Outcome::Success
    }
}

/// The review as tables: moves, stops, quorum, the budgets that break, the verdict; with
/// the service, whether the maintenance was `requested`.
fn render(review: &Review, requested: Option<bool>) -> String {
    let plan: &MaintenancePlan = &review.plan;
    let mut out = format!(
        "maintenance of {}: {} VMs move, {} stop; {} migrations at a time; the host is empty after {}\n",
        plan.host,
        plan.moves.len(),
        plan.stops.len(),
        plan.parallel,
        Span(plan.completion_ms)
    );
    if !plan.moves.is_empty() {
        let mut t = table(120, vec!["vm", "to", "starts at", "takes"]);
        for m in &plan.moves {
            t.add_row(vec![
                m.vm.clone(),
                m.to.clone(),
                Span(m.start_ms).to_string(),
                Span(m.duration_ms).to_string(),
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    if !plan.stops.is_empty() {
        let mut t = table(120, vec!["vm that stops", "why"]);
        for s in &plan.stops {
            t.add_row(vec![s.vm.clone(), s.reason.clone()]);
        }
        out.push_str(&format!("{t}\n"));
    }
    let mut t = table(
        120,
        vec!["cluster", "etcd members", "stop", "need", "quorum"],
    );
    for q in &plan.quorum {
        t.add_row(vec![
            q.cluster.clone(),
            q.members.to_string(),
            q.stopped.to_string(),
            q.needed.to_string(),
            if q.holds { "holds" } else { "LOST" }.to_owned(),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    let held = plan.budgets.iter().filter(|b| b.holds).count();
    out.push_str(&format!(
        "PodDisruptionBudgets: {held} of {} hold\n",
        plan.budgets.len()
    ));
    if review.safe {
        out.push_str("safe: no etcd quorum or PodDisruptionBudget breaks\n");
    } else {
        for r in &review.refusals {
            out.push_str(&format!("- {r}\n"));
        }
        out.push_str(if review.refused() {
            "refused: pass --force to take the host down anyway\n"
        } else {
            "forced: the host goes down anyway\n"
        });
    }
    match requested {
        Some(true) => out.push_str(&format!(
            "requested: the control plane evacuates {} now (`plinth get hosts` shows its state)\n",
            plan.host
        )),
        Some(false) => out.push_str("dry run: nothing was requested\n"),
        None => {}
    }
    out
}
