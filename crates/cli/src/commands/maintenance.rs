//! `plinth maintenance DIR --host HOST --dry-run`: what taking a host down for maintenance
//! would do to the estate, planned on its placement by the control plane's own evacuation
//! ([`plinth_control::maintenance::plan`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use plinth_control::maintenance::{self, Budget, MaintenancePlan, Snapshot};
use plinth_control::{ClusterTopology, ControlConfig, Span};
use plinth_sim::Setup;
use serde_json::json;

use crate::Outcome;
use crate::commands::{OutputFormat, load_or_report, require_dry_run, table, virtualized_setup};
use crate::input::InputArgs;
use crate::output;

/// Plan a host's maintenance: where its VMs move, which stop and why, whether every etcd
/// quorum and PodDisruptionBudget holds, and when the host can go down.
///
/// Exit codes: 0 safe (or `--force`), 1 invalid input or a quorum or budget would break,
/// 2 usage or I/O error (an unknown host, no `--dry-run`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// The host to take down.
    #[arg(long)]
    pub(crate) host: String,
    /// Answer what would happen, change nothing (the only mode on an estate directory).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Exit 0 even when an etcd quorum or a PodDisruptionBudget would break.
    #[arg(long)]
    pub(crate) force: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
}

/// Runs `plinth maintenance`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    require_dry_run(args.dry_run, "maintenance")?;
    let Some((input, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let setup = virtualized_setup(&input, &estate)?;
    let state = setup
        .control
        .pool()
        .context("the virtualized design has no pool")?;
    let host = maintenance::host_named(state, &args.host)?;
    let clusters: Vec<ClusterTopology> = setup.control.clusters().cloned().collect();
    let budgets = budgets(&setup);
    let deadlines = ControlConfig::virtualized(&estate).deadlines;
    let plan = maintenance::plan(
        &Snapshot {
            state,
            zones: setup.control.zones(),
            clusters: &clusters,
            budgets: &budgets,
            deadlines: &deadlines,
        },
        host,
    );
    let refusals = plan.refusals();
    let refused = !refusals.is_empty() && !args.force;
    match args.output {
        OutputFormat::Json => output::stdout(serde_json::to_string_pretty(&json!({
            "plan": plan,
            "safe": refusals.is_empty(),
            "refusals": refusals,
            "forced": args.force && !refusals.is_empty(),
        }))?)?,
        OutputFormat::Table => output::stdout(render(&plan, &refusals, refused))?,
    }
    Ok(if refused {
        Outcome::Invalid
    } else {
        Outcome::Success
    })
}

/// Every PodDisruptionBudget of the design with the pods of its workload by node, as the
/// plan bound them.
fn budgets(setup: &Setup) -> Vec<Budget> {
    let mut pods_on: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
    for pod in &setup.pods {
        if let Some((_, node)) = &pod.initial {
            *pods_on
                .entry(pod.workload)
                .or_default()
                .entry(node.clone())
                .or_default() += 1;
        }
    }
    setup
        .min_available
        .iter()
        .zip(&setup.workloads)
        .zip(0u32..)
        .filter_map(|((budget, workload), w)| {
            let (min_available, name) = budget.as_ref()?;
            Some(Budget {
                name: name.clone(),
                workload: workload.clone(),
                min_available: *min_available,
                pods_on: pods_on.remove(&w).unwrap_or_default(),
            })
        })
        .collect()
}

/// The plan as tables: moves, stops, quorum, the budgets that break, the verdict.
fn render(plan: &MaintenancePlan, refusals: &[String], refused: bool) -> String {
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
    if refusals.is_empty() {
        out.push_str("safe: no etcd quorum or PodDisruptionBudget breaks\n");
    } else {
        for r in refusals {
            out.push_str(&format!("- {r}\n"));
        }
        out.push_str(if refused {
            "refused: pass --force to take the host down anyway\n"
        } else {
            "forced: the host goes down anyway\n"
        });
    }
    out
}
