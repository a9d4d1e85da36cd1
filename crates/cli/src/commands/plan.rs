//! `plinth plan`: the fewest servers that hold the estate in each environment under the
//! Scenario's headroom rule, what one server fewer would break, and how much each node
//! pool can still grow on the inventory.

use anyhow::Result;
use plinth_compare::design::group_headroom;
use plinth_model::Estate;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::units::format_bytes;
use plinth_placement::baremetal::{BareMetalPlan, BareMetalProblem};
use plinth_placement::capacity::{CapacityPlan, CapacityProblem};
use plinth_placement::nodes::NodeTerm;
use plinth_placement::plan::{BareMetalDesign, DesignPlan, Plan, PlanError, VirtualizedPlan, plan};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::Outcome;
use crate::commands::{EnvArg, OutputFormat, load_or_report, table};
use crate::input::InputArgs;
use crate::output;

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
    let mut t = table(
        120,
        vec!["host class", "owned used", "owned spare", "to buy"],
    );
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
/// Which term of the node-count formula set a count.
fn term_name(term: NodeTerm) -> &'static str {
    match term {
        NodeTerm::Declared => "declared",
        NodeTerm::Capacity => "capacity",
        NodeTerm::Headroom => "headroom",
    }
}

fn bare_metal_table(plan: &BareMetalPlan, problem: &BareMetalProblem) -> String {
    let mut t = table(
        140,
        vec![
            "cluster",
            "role",
            "class",
            "nodes",
            "pods need",
            "set by",
            "why",
            "owned",
            "to buy",
            "stranded",
        ],
    );
    for a in &plan.allocations {
        let role = a.role.to_string();
        t.add_row(vec![
            a.cluster.clone().unwrap_or_else(|| "shared".to_owned()),
            role,
            a.class.clone(),
            a.nodes.to_string(),
            a.fit_nodes.to_string(),
            term_name(a.term).to_owned(),
            a.reason(problem, plan),
            a.owned.len().to_string(),
            a.to_buy.to_string(),
            format!(
                "{} CPU, {}",
                plinth_model::units::format_cpu(a.stranded().cpu_millis),
                format_bytes(a.stranded().memory_bytes)
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
        plan.stranded()
    )
}

/// The node pools' sizes: declared or needed by requests, then by the scheduler, and
/// the pods that fit nowhere with kube-scheduler's message.
fn pools_and_pending(
    estate: &Estate,
    plan: &Plan,
    json_out: &mut serde_json::Map<String, Value>,
    text: &mut String,
) {
    let mut t = table(
        120,
        vec![
            "cluster",
            "node pool",
            "nodes by requests",
            "nodes for scheduling",
            "nodes per zone",
            "note",
        ],
    );
    let mut pools = Vec::new();
    for (ci, (c, cp)) in estate.clusters.iter().zip(&plan.clusters).enumerate() {
        for (pi, (p, s)) in c.spec.node_pools.iter().zip(&cp.sizing).enumerate() {
            // Where the pool's nodes are at the start.
            let mut zones: BTreeMap<&str, u32> = BTreeMap::new();
            for n in plan
                .nodes
                .iter()
                .filter(|n| n.pool.cluster == ci && n.pool.pool == pi)
            {
                *zones
                    .entry(plan.zones.name(plan.hosts[n.host].zone))
                    .or_insert(0) += 1;
            }
            let zones: Vec<String> = zones.iter().map(|(z, n)| format!("{z}: {n}")).collect();
            let note = if s.at_max {
                format!("at max ({})", p.max.unwrap_or(s.by_scheduling))
            } else {
                String::new()
            };
            t.add_row(vec![
                c.name.clone(),
                p.name.clone(),
                s.by_requests.to_string(),
                s.by_scheduling.to_string(),
                zones.join(", "),
                note.clone(),
            ]);
            pools.push(json!({
                "cluster": c.name, "pool": p.name, "byRequests": s.by_requests,
                "byScheduling": s.by_scheduling, "zones": zones, "atMax": s.at_max,
            }));
        }
    }
    text.push_str(&format!(
        "node pools (sized with the pod scheduler):\n{t}\n"
    ));
    let pending: Vec<Value> = plan
        .pending()
        .map(|p| {
            let w = &estate.workloads[p.workload];
            text.push_str(&format!(
                "pending: {} pod(s) of {} {}/{} in cluster {}: {}\n",
                p.pods, w.id.kind, w.id.namespace, w.id.name, w.id.cluster, p.explanation
            ));
            json!({"workload": w.id.to_string(), "pods": p.pods, "reason": p.explanation.to_string()})
        })
        .collect();
    // Where each workload's pods are bound at the start, by node and by zone.
    let mut placement = Vec::new();
    for cp in &plan.clusters {
        for w in &cp.workloads {
            let mut nodes: BTreeMap<&str, u32> = BTreeMap::new();
            let mut zones: BTreeMap<&str, u32> = BTreeMap::new();
            for node in w.bound.iter().filter_map(|b| cp.scheduler.node(b.node)) {
                *nodes.entry(node.name.as_str()).or_insert(0) += 1;
                if let Some(z) = node.labels.get(plinth_placement::pods::LABEL_ZONE) {
                    *zones.entry(z.as_str()).or_insert(0) += 1;
                }
            }
            placement.push(json!({
                "workload": estate.workloads[w.workload].id.to_string(),
                "nodes": nodes,
                "zones": zones,
                "pending": w.pending.as_ref().map_or(0, |p| p.pods),
            }));
        }
    }
    json_out.insert("pools".into(), json!(pools));
    json_out.insert("placement".into(), json!(placement));
    json_out.insert("pending".into(), json!(pending));
}

fn plan_virtualized(
    estate: &Estate,
    plan: &Plan,
    v: &VirtualizedPlan,
    json_out: &mut serde_json::Map<String, Value>,
    text: &mut String,
) -> Result<()> {
    let problem = &v.problem;
    let growth = pool_headroom(problem)?;
    let currency = &estate.price_sheet.spec.currency;
    text.push_str(&capacity_table(
        &format!("virtualized: one pool, {} VMs", problem.vms.len()),
        &v.capacity,
        currency,
    ));
    let mut t = table(
        120,
        vec![
            "placement group",
            "more VMs fit on owned hosts",
            "stops because",
        ],
    );
    for (g, more, why) in &growth {
        t.add_row(vec![g.clone(), more.to_string(), why.clone()]);
    }
    text.push_str(&format!("headroom on the owned hosts:\n{t}\n"));
    let mut v_json = capacity_json(&v.capacity);
    v_json["vms"] = json!(problem.vms.len());
    v_json["headroom"] = json!(
        growth
            .iter()
            .map(|(g, m, w)| json!({"group": g, "more": m, "stopsBecause": w}))
            .collect::<Vec<_>>()
    );
    let mut detail = serde_json::Map::new();
    pools_and_pending(estate, plan, &mut detail, text);
    text.push('\n');
    if let Some(o) = v_json.as_object_mut() {
        o.extend(detail);
    }
    json_out.insert("virtualized".into(), v_json);
    Ok(())
}

fn plan_bare_metal(
    estate: &Estate,
    plan: &Plan,
    b: &BareMetalDesign,
    json_out: &mut serde_json::Map<String, Value>,
    text: &mut String,
) -> Result<()> {
    let servers_plan = &b.servers;
    let servers: u32 = servers_plan.allocations.iter().map(|a| a.nodes).sum();
    text.push_str(&format!(
        "bare metal: {servers} servers for {} clusters\n{}",
        estate.clusters.len(),
        bare_metal_table(servers_plan, &b.problem)
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
        n = servers_plan.spare.len(),
    ));
    let mut v = json!({
        "servers": servers,
        "allocations": servers_plan.allocations.iter().map(|a| json!({
            "cluster": a.cluster, "role": a.role.to_string(), "class": a.class, "nodes": a.nodes,
            "fitNodes": a.fit_nodes, "term": term_name(a.term), "owned": a.owned, "toBuy": a.to_buy,
        })).collect::<Vec<_>>(),
        "toBuy": servers_plan.to_buy,
        "spare": servers_plan.spare,
        "headroom": {"moreNodes": servers_plan.spare.len(), "thenLeadTime": lead.to_string()},
    });
    if let Some((problem, pool)) = &b.vm_pool {
        let pool = pool.as_ref().map_err(Clone::clone)?;
        text.push_str(&capacity_table(
            &format!(
                "bare metal: separate pool for {} non-Kubernetes VMs",
                problem.vms.len()
            ),
            pool,
            &estate.price_sheet.spec.currency,
        ));
        v["vmPool"] = capacity_json(pool);
    }
    let mut detail = serde_json::Map::new();
    pools_and_pending(estate, plan, &mut detail, text);
    if let Some(o) = v.as_object_mut() {
        o.extend(detail);
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
    let binding = plinth_placement::designs::bind_pods(&estate);
    if !binding.unbound.is_empty() {
        for u in &binding.unbound {
            output::stderr(format!(
                "error: {} fits no node pool: {}\n",
                u.workload, u.reason
            ));
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
    let mut pending = false;
    for env in envs {
        // A design that cannot be planned is a property of the input (exit 1), not a usage error.
        // Bare metal with `shareServers` plans the clusters it merges as one.
        let merged = plinth_model::merge::for_design(&estate, env);
        let estate = merged.as_ref().map_or(&estate, |m| &m.estate);
        if let Some(m) = &merged {
            for merge in &m.merges {
                text.push_str(&format!(
                    "bare metal shares servers: clusters {} merged into `{}`\n",
                    merge.members.join(", "),
                    merge.into
                ));
            }
        }
        let plan = match plan(estate, env) {
            Ok(plan) => plan,
            Err(e) => return cannot_plan(env, &e),
        };
        pending |= plan.pending().next().is_some();
        let printed = match &plan.detail {
            DesignPlan::Virtualized(v) => {
                plan_virtualized(estate, &plan, v, &mut json_out, &mut text)
            }
            DesignPlan::BareMetal(b) => plan_bare_metal(estate, &plan, b, &mut json_out, &mut text),
        };
        if let Err(e) = printed {
            match e.downcast::<plinth_placement::PlacementError>() {
                Ok(p) => return cannot_plan(env, &PlanError::Placement(p)),
                Err(e) => return Err(e),
            }
        }
        if let Some(m) = &merged
            && let Some(Value::Object(bm)) = json_out.get_mut("bareMetal")
        {
            bm.insert("merges".into(), json!(m.merges));
        }
    }
    let defaulted = estate.defaulted();
    if !defaulted.is_empty() {
        text.push_str(&format!("default: {}\n", defaulted.join(", ")));
        json_out.insert("defaults".into(), json!(defaulted));
    }
    match args.output {
        OutputFormat::Table => output::stdout(text)?,
        OutputFormat::Json => output::stdout(format!(
            "{}\n",
            serde_json::to_string_pretty(&Value::Object(json_out))?
        ))?,
    }
    if pending {
        output::stderr(
            "error: some pods fit no node (see `pending` above): the plan cannot run every workload\n",
        );
        return Ok(Outcome::Invalid);
    }
    Ok(Outcome::Success)
}

/// Reports a design that cannot be planned: exit 1.
fn cannot_plan(env: EnvironmentType, e: &PlanError) -> Result<Outcome> {
    output::stderr(format!(
        "error: cannot plan the {} design: {e}\n",
        env.cli_name()
    ));
    Ok(Outcome::Invalid)
}
