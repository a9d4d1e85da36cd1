//! `plinth plan`: the fewest servers that hold the estate in each environment under the
//! Scenario's headroom rule, what one server fewer would break, and how much each node
//! pool can still grow on the inventory.

use anyhow::Result;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use plinth_model::Estate;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::units::format_bytes;
use plinth_placement::PlacementError;
use plinth_placement::baremetal::{BareMetalPlan, Role, allocate_servers};
use plinth_placement::capacity::{CapacityPlan, CapacityProblem, plan_capacity};
use plinth_placement::designs::{
    Binding, bare_metal_problem, bare_metal_vm_pool, bind_pods, group_headroom, virtualized_problem,
};
use plinth_placement::nodes::NodeTerm;
use serde_json::{Value, json};
use std::io::Write;

use crate::Outcome;
use crate::commands::{EnvArg, OutputFormat, load_or_report};
use crate::input::InputArgs;

/// Plan capacity: minimum servers per environment under the headroom rule, and headroom.
///
/// Owned hosts are used first, then the cheapest class that fits is bought. Exit codes:
/// 0 planned, 1 invalid input or a workload no pool can run, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// Plan only this environment (default: both).
    #[arg(long, value_enum)]
    pub(crate) env: Option<EnvArg>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
}

/// Most extra copies a headroom question tries before it stops counting.
const HEADROOM_LIMIT: u32 = 1000;

fn capacity_json(plan: &CapacityPlan) -> Value {
    json!({
        "hosts": plan.hosts,
        "perClass": plan.per_class.iter().map(|c| json!({
            "class": c.class, "ownedUsed": c.owned_used, "ownedSpare": c.owned_spare, "toBuy": c.to_buy,
        })).collect::<Vec<_>>(),
        "costToBuy": plan.cost_to_buy,
        "oneFewerFails": plan.one_fewer.as_ref().map(|s| json!({"condition": s.condition.to_string(), "detail": s.detail})),
    })
}

fn capacity_table(title: &str, plan: &CapacityPlan, currency: &str) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(120)
        .set_header(vec!["host class", "owned used", "owned spare", "to buy"]);
    for c in &plan.per_class {
        t.add_row(vec![
            c.class.clone(),
            c.owned_used.to_string(),
            c.owned_spare.to_string(),
            c.to_buy.to_string(),
        ]);
    }
    let mut out = format!(
        "{title}: {} hosts, {} {currency} to buy\n{t}\n",
        plan.hosts, plan.cost_to_buy
    );
    if let Some(s) = &plan.one_fewer {
        out.push_str(&format!("minimal: with one host fewer it fails {s}\n"));
    }
    out
}

/// How many more node VMs of each pool fit on the owned hosts after placing the whole design.
fn pool_headroom(problem: &CapacityProblem) -> Result<Vec<(String, u32, String)>> {
    Ok(group_headroom(problem, HEADROOM_LIMIT)?
        .into_iter()
        .map(|h| {
            let why = h
                .stopped_by
                .map_or_else(|| format!("at least {HEADROOM_LIMIT}"), |e| e.to_string());
            (h.group, h.more, why)
        })
        .collect())
}

/// A role as the table and JSON spell it: `control plane`, `pool NAME`, `surge`.
fn role_name(role: &Role) -> String {
    match role {
        Role::ControlPlane => "control plane".to_owned(),
        Role::Pool(p) => format!("pool {p}"),
        Role::Surge => "surge".to_owned(),
    }
}

/// Which term of the node-count formula set a count.
fn term_name(term: NodeTerm) -> &'static str {
    match term {
        NodeTerm::Declared => "declared",
        NodeTerm::Capacity => "capacity",
        NodeTerm::Headroom => "headroom",
    }
}

fn bare_metal_table(plan: &BareMetalPlan) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(120)
        .set_header(vec![
            "cluster",
            "role",
            "class",
            "nodes",
            "pods need",
            "set by",
            "owned",
            "to buy",
            "stranded",
        ]);
    for a in &plan.allocations {
        let role = role_name(&a.role);
        t.add_row(vec![
            a.cluster.clone(),
            role,
            a.class.clone(),
            a.nodes.to_string(),
            a.fit_nodes.to_string(),
            term_name(a.term).to_owned(),
            a.owned.len().to_string(),
            a.to_buy.to_string(),
            format!(
                "{} CPU, {}",
                plinth_model::units::format_cpu(a.stranded.cpu_millis),
                format_bytes(a.stranded.memory_bytes)
            ),
        ]);
    }
    let buy: Vec<String> = plan
        .to_buy
        .iter()
        .map(|(c, n)| format!("{n} × {c}"))
        .collect();
    format!(
        "{t}\nto buy: {}; owned servers left unused: {}; stranded (free but owned by a cluster that cannot use it): {}\n",
        if buy.is_empty() {
            "nothing".to_owned()
        } else {
            buy.join(", ")
        },
        plan.spare.len(),
        plan.stranded
    )
}

fn plan_virtualized(
    estate: &Estate,
    binding: &Binding,
    json_out: &mut serde_json::Map<String, Value>,
    text: &mut String,
) -> Result<()> {
    let problem = virtualized_problem(estate, binding);
    let plan = plan_capacity(&problem)?;
    let growth = pool_headroom(&problem)?;
    let currency = &estate.price_sheet.spec.currency;
    text.push_str(&capacity_table(
        &format!("virtualized: one pool, {} VMs", problem.vms.len()),
        &plan,
        currency,
    ));
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(120)
        .set_header(vec![
            "placement group",
            "more VMs fit on owned hosts",
            "stops because",
        ]);
    for (g, more, why) in &growth {
        t.add_row(vec![g.clone(), more.to_string(), why.clone()]);
    }
    text.push_str(&format!("headroom on the owned hosts:\n{t}\n\n"));
    let mut v = capacity_json(&plan);
    v["vms"] = json!(problem.vms.len());
    v["headroom"] = json!(
        growth
            .iter()
            .map(|(g, m, w)| json!({"group": g, "more": m, "stopsBecause": w}))
            .collect::<Vec<_>>()
    );
    json_out.insert("virtualized".into(), v);
    Ok(())
}

fn plan_bare_metal(
    estate: &Estate,
    binding: &Binding,
    json_out: &mut serde_json::Map<String, Value>,
    text: &mut String,
) -> Result<()> {
    let plan = allocate_servers(&bare_metal_problem(estate, binding))?;
    let servers: u32 = plan.allocations.iter().map(|a| a.nodes).sum();
    text.push_str(&format!(
        "bare metal: {servers} servers for {} clusters\n{}",
        estate.clusters.len(),
        bare_metal_table(&plan)
    ));
    let lead = estate
        .inventory
        .spec
        .host_classes
        .iter()
        .map(|c| c.lead_time)
        .min()
        .unwrap_or_default();
    text.push_str(&format!(
        "headroom on the owned servers: {n} unused, so any pool can grow by {n} node(s); the next needs a server bought ({lead} lead time)\n",
        n = plan.spare.len(),
    ));
    let mut v = json!({
        "servers": servers,
        "allocations": plan.allocations.iter().map(|a| json!({
            "cluster": a.cluster, "role": role_name(&a.role), "class": a.class, "nodes": a.nodes,
            "fitNodes": a.fit_nodes, "term": term_name(a.term), "owned": a.owned, "toBuy": a.to_buy,
        })).collect::<Vec<_>>(),
        "toBuy": plan.to_buy,
        "spare": plan.spare,
        "headroom": {"moreNodes": plan.spare.len(), "thenLeadTime": lead.to_string()},
    });
    if let Some(problem) = bare_metal_vm_pool(estate, &plan.spare) {
        let pool = plan_capacity(&problem)?;
        text.push_str(&capacity_table(
            &format!(
                "bare metal: separate pool for {} non-Kubernetes VMs",
                problem.vms.len()
            ),
            &pool,
            &estate.price_sheet.spec.currency,
        ));
        v["vmPool"] = capacity_json(&pool);
    }
    text.push('\n');
    json_out.insert("bareMetal".into(), v);
    Ok(())
}

/// Runs `plinth plan`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let Some((_, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let binding = bind_pods(&estate);
    if !binding.unbound.is_empty() {
        for u in &binding.unbound {
            writeln!(
                std::io::stderr().lock(),
                "error: {} fits no node pool: {}",
                u.workload,
                u.reason
            )?;
        }
        return Ok(Outcome::Invalid);
    }
    let envs: Vec<EnvironmentType> = match args.env {
        Some(e) => vec![e.into()],
        None => EnvironmentType::ALL.to_vec(),
    };
    let mut json_out = serde_json::Map::new();
    let mut text = String::new();
    let r = &estate.scenario.spec.requirements;
    text.push_str(&format!(
        "headroom rule: survive {} host failure(s) with {} host(s) in maintenance{}\n\n",
        r.host_failures_to_tolerate,
        r.hosts_in_maintenance,
        if r.upgrade_surge {
            " and one upgrade surge"
        } else {
            ""
        }
    ));
    for env in envs {
        let planned = match env {
            EnvironmentType::Virtualized => {
                plan_virtualized(&estate, &binding, &mut json_out, &mut text)
            }
            EnvironmentType::BareMetal => {
                plan_bare_metal(&estate, &binding, &mut json_out, &mut text)
            }
        };
        // A design that cannot be planned is a property of the input (exit 1), not a usage error.
        if let Err(e) = planned {
            match e.downcast_ref::<PlacementError>() {
                Some(p) => {
                    writeln!(
                        std::io::stderr().lock(),
                        "error: cannot plan the {} design: {p}",
                        env.cli_name()
                    )?;
                    return Ok(Outcome::Invalid);
                }
                None => return Err(e),
            }
        }
    }
    let defaulted = estate.defaulted();
    if !defaulted.is_empty() {
        text.push_str(&format!("default: {}\n", defaulted.join(", ")));
        json_out.insert("defaults".into(), json!(defaulted));
    }
    match args.output {
        OutputFormat::Table => print!("{text}"),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&Value::Object(json_out))?
        ),
    }
    Ok(Outcome::Success)
}
