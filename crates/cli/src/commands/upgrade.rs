//! `plinth upgrade`: how a rolling upgrade of one cluster goes, decided by the control
//! plane's own planning ([`plinth_control::Control::upgrade_plan`]). On an estate directory
//! (`plinth upgrade DIR --cluster C --to V --dry-run`) it plans on the directory's
//! placement; without a directory it asks the running service (`plinth serve`), which plans
//! on the placement as it is now and, without `--dry-run`, writes the new version or image
//! into the Cluster and rolls it out.

use anyhow::{Context, Result};
use plinth_control::upgrade::{Method, RolloutPlan};
use plinth_control::{ControlError, Span};
use plinth_server::wire::{ClusterUpgrade, UpgradeRequest, upgrade_path};

use crate::Outcome;
use crate::client::{Client, ClientError, ServerArgs};
use crate::commands::{OutputFormat, load_or_report, require_dry_run, table};
use crate::input::InputArgs;
use crate::output;

/// Plan a rolling upgrade: whether nodes are replaced, surge or remove-then-add, in what
/// order, the fewest nodes available meanwhile and how long it takes. With DIR, on that
/// estate's placement (`--dry-run` only); without, on the running service's, which carries
/// it out unless `--dry-run`.
///
/// The workloads of a PATH are bound to a cluster with `--bind NAME=PATH` here (`--cluster`
/// names the cluster to upgrade). Exit codes: 0 planned (with the service, requested), 1
/// invalid input or a version the Kubernetes version skew policy forbids (a minor version
/// skipped, a downgrade), 2 usage, I/O or server error (an unknown cluster, no `--dry-run`
/// on a directory).
#[derive(Debug, clap::Args)]
#[command(mut_arg("clusters", |a| a.long("bind")))]
#[command(mut_arg("paths", |a| a.required(false)))]
pub(crate) struct Args {
    /// DIR: the estate directory to plan on; none asks the service.
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
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth upgrade`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let (plan, requested) = if args.input.paths.is_empty() {
        match asked(args)? {
            Some(answer) => (answer.plan, Some(!answer.dry_run)),
            None => return Ok(Outcome::Invalid),
        }
    } else {
        match planned(args)? {
            Some(plan) => (plan, None),
            None => return Ok(Outcome::Invalid),
        }
    };
    match args.output {
        OutputFormat::Json => output::stdout(serde_json::to_string_pretty(&plan)?)?,
        OutputFormat::Table => output::stdout(render(&plan, requested))?,
    }
    Ok(Outcome::Success)
}

/// On an estate directory: the plan on its placement; `None` when the input or the
/// version is refused (said on stderr).
fn planned(args: &Args) -> Result<Option<RolloutPlan>> {
    require_dry_run(args.dry_run, "upgrade")?;
    let Some((_, estate)) = load_or_report(&args.input)? else {
        return Ok(None);
    };
    let setup = plinth_sim::owned_setup(&estate)?;
    let spec = estate
        .clusters
        .iter()
        .find(|c| c.name == args.target)
        .map(|c| &c.spec);
    let plan = spec
        .ok_or_else(|| ControlError::UnknownCluster {
            cluster: args.target.clone(),
            known: estate.clusters.iter().map(|c| c.name.clone()).collect(),
        })
        .and_then(|spec| setup.control.upgrade_plan(&args.target, spec, &args.to));
    match plan {
        Ok(plan) => Ok(Some(plan)),
        Err(e @ ControlError::VersionSkew { .. }) => {
            output::stderr(format!("error: {e}\n"));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Of the running service: its plan on the placement as it is now and, without
/// `--dry-run`, the upgrade requested; `None` when the version is refused.
fn asked(args: &Args) -> Result<Option<ClusterUpgrade>> {
    let client = Client::new(&args.server)?;
    let mut path = upgrade_path(&args.target);
    if args.dry_run {
        path.push_str("?dryRun=All");
    }
    let body = UpgradeRequest {
        to: args.to.clone(),
    };
    match client.post(&path, &body) {
        Ok(answer) => Ok(Some(answer)),
        Err(ClientError::Api(status)) if status.reason == "Invalid" => {
            output::stderr(format!("error: {}\n", status.message));
            Ok(None)
        }
        Err(e) => Err(e).context("asking the service for the upgrade"),
    }
}

/// The plan as a table, one row per stage; with the service, whether the upgrade was
/// `requested`.
fn render(plan: &RolloutPlan, requested: Option<bool>) -> String {
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
    let mut out = format!(
        "upgrade of {} ({} {} → {}): every node is replaced, the control plane first; {} in all\n{t}\n",
        plan.cluster,
        c.kind,
        c.from,
        c.to,
        Span(plan.duration_ms)
    );
    match requested {
        Some(true) => out.push_str(&format!(
            "requested: cluster {} now asks for {} {}; the control plane rolls it out (`plinth get clusters` shows its state)\n",
            plan.cluster, c.kind, c.to
        )),
        Some(false) => out.push_str("dry run: nothing was requested\n"),
        None => {}
    }
    out
}
