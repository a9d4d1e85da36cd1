//! `plinth upgrade DIR --cluster CLUSTER --to VERSION|IMAGE --dry-run`: how a rolling
//! upgrade of one cluster would go on the estate's placement, decided by the upgrade
//! reconciler's own functions ([`plinth_control::upgrade::rollout_plan`]).

use anyhow::{Context, Result};
use plinth_control::upgrade::{self, Change, ClusterTopology, Method, RolloutPlan};
use plinth_control::{ControlConfig, Span, UpgradeKind};
use plinth_model::version::KubernetesVersion;

use crate::Outcome;
use crate::commands::{OutputFormat, load_or_report, require_dry_run, table, virtualized_setup};
use crate::input::InputArgs;
use crate::output;

/// Plan a rolling upgrade: whether nodes are replaced, surge or remove-then-add, in what
/// order, the fewest nodes available meanwhile and how long it takes.
///
/// The workloads of a PATH are bound to a cluster with `--bind NAME=PATH` here (`--cluster`
/// names the cluster to upgrade). Exit codes: 0 planned, 1 invalid input or a version the
/// Kubernetes version skew policy forbids (a minor version skipped, a downgrade), 2 usage
/// or I/O error (an unknown cluster, no `--dry-run`).
#[derive(Debug, clap::Args)]
#[command(mut_arg("clusters", |a| a.long("bind")))]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// The cluster to upgrade.
    #[arg(long = "cluster", value_name = "CLUSTER")]
    pub(crate) target: String,
    /// The Kubernetes version (`1.32.1`) or node OS image (`flatcar-4081`) to roll to.
    #[arg(long, value_name = "VERSION|IMAGE")]
    pub(crate) to: String,
    /// Answer what would happen, change nothing (the only mode on an estate directory).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
}

/// Runs `plinth upgrade`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    require_dry_run(args.dry_run, "upgrade")?;
    let Some((input, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let setup = virtualized_setup(&input, &estate)?;
    let control = &setup.control;
    let state = control
        .pool()
        .context("the virtualized design has no pool")?;
    let clusters: Vec<ClusterTopology> = control.clusters().cloned().collect();
    let cluster = upgrade::cluster_named(&clusters, &args.target)?;
    let spec = estate
        .clusters
        .iter()
        .find(|c| c.name == cluster.name)
        .context("the cluster is not in the estate")?;
    let change = Change::to(&args.to, &spec.spec.kubernetes_version, &spec.spec.os_image);
    if let Some(refused) = skew(&change) {
        output::stderr(format!(
            "error: cluster {} cannot be rolled to {}: {refused}\n",
            cluster.name, change.to
        ));
        return Ok(Outcome::Invalid);
    }
    let d = ControlConfig::virtualized(&estate).deadlines;
    let plan = upgrade::rollout_plan(
        state,
        cluster,
        |vm| control.vm_id(vm),
        change,
        d.vm_clone.saturating_add(d.vm_boot),
    );
    match args.output {
        OutputFormat::Json => output::stdout(serde_json::to_string_pretty(&plan)?)?,
        OutputFormat::Table => output::stdout(render(&plan))?,
    }
    Ok(Outcome::Success)
}

/// Why Kubernetes' version skew policy forbids a version `change`, if it does.
fn skew(change: &Change) -> Option<plinth_model::version::SkewError> {
    if change.kind != UpgradeKind::Kubernetes {
        return None;
    }
    let from: KubernetesVersion = change.from.parse().ok()?;
    from.upgrade_to(change.to.parse().ok()?).err()
}

/// The plan as a table, one row per stage.
fn render(plan: &RolloutPlan) -> String {
    let c = &plan.change;
    if !plan.replaces {
        return format!(
            "cluster {} already runs {} {}: no machine is replaced\n",
            plan.cluster, c.kind, c.to
        );
    }
    let mut t = table(
        140,
        vec![
            "stage",
            "method",
            "per wave",
            "waves",
            "min available",
            "takes",
            "order",
        ],
    );
    for s in &plan.stages {
        let method = match s.method {
            Method::Surge => "surge",
            Method::RemoveThenAdd => "remove-then-add",
            Method::Mixed => "surge + remove-then-add",
        };
        t.add_row(vec![
            s.pool.clone(),
            method.to_owned(),
            format!("{} surge, {} in place", s.surge, s.in_place),
            s.waves.to_string(),
            format!("{} of {}", s.min_available, s.order.len()),
            Span(s.duration_ms).to_string(),
            s.order.join(", "),
        ]);
    }
    format!(
        "upgrade of {} ({} {} → {}): every node is replaced, the control plane first; {} in all\n{t}\n",
        plan.cluster,
        c.kind,
        c.from,
        c.to,
        Span(plan.duration_ms)
    )
}
