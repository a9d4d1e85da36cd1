//! Typed documents → an [`Estate`]: singletons and defaults, workload binding, and the
//! semantic and cross-reference checks no single document can make.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::document::Collected;
use crate::document::RequiredTerm;
use crate::estate::{Estate, Input, Named, Origin, Provided, expand_hosts};
use crate::kinds::cluster::{CONTROL_PLANE_POOL, ClusterSpec, node_prefix};
use crate::kinds::environment::{
    Fencing, VirtualizedSpec, default_bare_metal, default_virtualized, host_reservation,
};
use crate::kinds::inventory::{HostClass, HostRole, InventorySpec};
use crate::kinds::scenario::TimelineAction;
use crate::kinds::vm_set::VmSetSpec;
use crate::kinds::{UsageProfile, VolumeStorage};
use crate::names::{self, NameRule};
use crate::policy::{HostRule, PlacementPolicy, Scope, SpreadMode};
use crate::quantity::Duration;
use crate::ranges;
use crate::source::Location;
use crate::version::{KubernetesVersion, SkewError};
use crate::workload::{
    DisruptionBudget, PodStorage, Workload, format_labels, format_selector, selector_matches,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Most hosts one Inventory may declare: far above any single estate, and low enough
/// that expanding the entries stays cheap.
pub const MAX_HOSTS: u64 = 100_000;

/// Keys of the 13 comparison dimensions, as a Scenario's `materiality` names them.
pub const DIMENSION_KEYS: [&str; 13] = [
    "osFlexibility",
    "resourceAllocation",
    "performance",
    "reliability",
    "availability",
    "agility",
    "scalability",
    "utilization",
    "isolation",
    "cost",
    "lifecycle",
    "independence",
    "operations",
];

fn single<S>(mut all: Vec<Named<S>>, kind: &str, diags: &mut Diagnostics) -> Option<Named<S>> {
    for extra in all.iter().skip(1) {
        diags.push(
            Diagnostic::error(
                extra.location.clone(),
                format!(
                    "a second {kind} (`{}`): one input has at most one",
                    extra.name
                ),
            )
            .with_help(format!(
                "merge it into `{}` at {}, or give the two to separate commands",
                all[0].name, all[0].location
            )),
        );
    }
    (!all.is_empty()).then(|| all.swap_remove(0))
}

fn provided<S>(found: Option<Named<S>>, default: impl FnOnce() -> S) -> Provided<S> {
    match found {
        Some(n) => Provided {
            spec: n.spec,
            origin: Origin::Declared(n.location),
        },
        None => Provided {
            spec: default(),
            origin: Origin::Default,
        },
    }
}

fn unknown(location: Location, what: &str, name: &str, known: &[&str]) -> Diagnostic {
    let d = Diagnostic::error(location, format!("unknown {what} `{name}`"));
    match did_you_mean(name, known.iter().copied()) {
        Some(near) => d.with_help(format!("did you mean `{near}`?")),
        None if known.is_empty() => d.with_help(format!("declare the {what} first")),
        None => d.with_help(format!("known: {}", known.join(", "))),
    }
}

/// Reports every name declared a second time, at the second declaration.
fn duplicates<'a>(
    names: impl Iterator<Item = (&'a str, Location)>,
    what: &str,
    diags: &mut Diagnostics,
) {
    let mut seen = BTreeSet::new();
    for (n, at) in names {
        if !seen.insert(n) {
            diags.push(
                Diagnostic::error(at, format!("{what} `{n}` is declared twice"))
                    .with_help("names must be unique"),
            );
        }
    }
}

/// Node VMs are named by [`node_prefix`] (`{cluster}-{pool}-{i}`, control-plane members
/// `{cluster}-cp-{i}`) and a VirtualMachineSet's VMs `{set}-{i}`: two owners with one
/// prefix (cluster `a` pool `b-c` and cluster `a-b` pool `c`; a pool named `cp` or
/// `control-plane` beside its control plane) would give two VMs one name.
fn check_vm_names(
    clusters: &[Named<ClusterSpec>],
    vm_sets: &[Named<VmSetSpec>],
    diags: &mut Diagnostics,
) {
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |prefix: String, what: String, at: Location| match owners.get(&prefix) {
        Some(first) => diags.push(
            Diagnostic::error(
                at,
                format!("{what} would name its VMs `{prefix}0`, `{prefix}1`, … as {first} does"),
            )
            .with_help("rename one of them: every VM needs a name of its own"),
        ),
        None => {
            owners.insert(prefix, what);
        }
    };
    for c in clusters {
        claim(
            node_prefix(&c.name, CONTROL_PLANE_POOL),
            format!("the control plane of cluster `{}`", c.name),
            c.at("/metadata/name"),
        );
        for (i, p) in c.spec.node_pools.iter().enumerate() {
            claim(
                node_prefix(&c.name, &p.name),
                format!("pool `{}` of cluster `{}`", p.name, c.name),
                c.at(&format!("/spec/nodePools/{i}/name")),
            );
        }
    }
    for v in vm_sets {
        claim(
            format!("{}-", v.name),
            format!("VirtualMachineSet `{}`", v.name),
            v.at("/metadata/name"),
        );
    }
}

fn check_inventory(inv: &Named<InventorySpec>, diags: &mut Diagnostics) {
    let spec = &inv.spec;
    if spec.host_classes.is_empty() {
        diags.push(
            Diagnostic::error(
                inv.key_at("/spec/hostClasses"),
                "the Inventory has no host classes",
            )
            .with_help("add `spec.hostClasses` with at least one server model"),
        );
    }
    if spec.racks.is_empty() {
        diags.push(
            Diagnostic::error(inv.key_at("/spec/racks"), "the Inventory has no racks")
                .with_help("add `spec.racks`, e.g. `- name: r1`"),
        );
    }
    for (i, c) in spec.host_classes.iter().enumerate() {
        diags.extend(names::diagnostic(
            &c.name,
            NameRule::Label,
            "host class",
            || inv.at(&format!("/spec/hostClasses/{i}/name")),
        ));
    }
    for (i, r) in spec.racks.iter().enumerate() {
        diags.extend(names::diagnostic(&r.name, NameRule::Label, "rack", || {
            inv.at(&format!("/spec/racks/{i}/name"))
        }));
    }
    for (i, h) in spec.hosts.iter().enumerate() {
        if let Some(name) = &h.name {
            diags.extend(names::diagnostic(name, NameRule::Label, "host", || {
                inv.at(&format!("/spec/hosts/{i}/name"))
            }));
        }
    }
    duplicates(
        spec.host_classes.iter().enumerate().map(|(i, c)| {
            (
                c.name.as_str(),
                inv.at(&format!("/spec/hostClasses/{i}/name")),
            )
        }),
        "host class",
        diags,
    );
    duplicates(
        spec.racks
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), inv.at(&format!("/spec/racks/{i}/name")))),
        "rack",
        diags,
    );
    for (i, c) in spec.host_classes.iter().enumerate() {
        if c.watts.peak < c.watts.idle {
            diags.push(Diagnostic::error(
                inv.at(&format!("/spec/hostClasses/{i}/watts")),
                format!(
                    "host class `{}`: peak watts {} below idle {}",
                    c.name, c.watts.peak, c.watts.idle
                ),
            ));
        }
    }
    let classes: Vec<&str> = spec.host_classes.iter().map(|c| c.name.as_str()).collect();
    let racks: Vec<&str> = spec.racks.iter().map(|r| r.name.as_str()).collect();
    for (i, h) in spec.hosts.iter().enumerate() {
        if !classes.contains(&h.class.as_str()) {
            diags.push(unknown(
                inv.at(&format!("/spec/hosts/{i}/class")),
                "host class",
                &h.class,
                &classes,
            ));
        }
        if !racks.contains(&h.rack.as_str()) {
            diags.push(unknown(
                inv.at(&format!("/spec/hosts/{i}/rack")),
                "rack",
                &h.rack,
                &racks,
            ));
        }
        if h.count == 0 || (h.name.is_some() && h.count != 1) {
            diags.push(Diagnostic::error(
                inv.at(&format!("/spec/hosts/{i}/count")),
                format!(
                    "host entry of class `{}`: count must be 1 with a name, at least 1 without",
                    h.class
                ),
            ));
        }
        if h.agent.is_some() && h.name.is_none() {
            diags.push(Diagnostic::error(
                inv.at(&format!("/spec/hosts/{i}/agent")),
                format!(
                    "host entry of class `{}`: an agent address belongs to one host; give the entry a `name`",
                    h.class
                ),
            ));
        }
    }
}

/// Checks a placement policy against what the Inventory fixes: racks. Hosts are not
/// bounded here — a hard spread over more hosts than are owned means hosts to buy, which
/// the capacity plan reports.
fn check_policy(
    policy: &PlacementPolicy,
    members: u32,
    what: &str,
    at: &Location,
    racks: usize,
    diags: &mut Diagnostics,
) {
    if policy.mode == SpreadMode::AtMost && policy.max_per_domain.is_none_or(|n| n == 0) {
        diags.push(Diagnostic::error(
            at.clone(),
            format!("{what}: `mode: atMost` needs `maxPerDomain` of at least 1"),
        ));
        return;
    }
    if let (Some(limit), Scope::Rack) = (policy.hard_limit(), policy.spread_over) {
        let room = u64::from(limit) * racks as u64;
        if u64::from(members) > room {
            diags.push(
                Diagnostic::error(at.clone(), format!("{what}: {members} members under a hard spread over {racks} racks (at most {limit} each) can never all be placed"))
                    .with_help("use `mode: soft`, a larger `maxPerDomain`, fewer members, or add racks to the Inventory"),
            );
        }
    }
}

fn check_cluster(
    c: &Named<ClusterSpec>,
    inv: &InventorySpec,
    env: &VirtualizedSpec,
    diags: &mut Diagnostics,
) {
    for (i, p) in c.spec.node_pools.iter().enumerate() {
        diags.extend(names::diagnostic(
            &p.name,
            NameRule::Label,
            "node pool",
            || c.at(&format!("/spec/nodePools/{i}/name")),
        ));
    }
    diags.extend(check_version(&c.spec.kubernetes_version, || {
        c.at("/spec/kubernetesVersion")
    }));
    let racks = inv.racks.len();
    let cp = &c.spec.control_plane;
    let cp_at = c.at("/spec/controlPlane/replicas");
    if cp.replicas == 0 {
        diags.push(Diagnostic::error(
            cp_at.clone(),
            format!(
                "cluster `{}`: control plane needs at least 1 replica",
                c.name
            ),
        ));
    } else if cp.replicas.is_multiple_of(2) {
        diags.push(
            Diagnostic::warning(
                cp_at,
                format!(
                    "cluster `{}`: {} control-plane members tolerate no more failures than {}",
                    c.name,
                    cp.replicas,
                    cp.replicas - 1
                ),
            )
            .with_help("use an odd number: 1, 3 or 5"),
        );
    }
    check_recovery_clocks(c, env, diags);
    check_policy(
        &cp.placement,
        cp.replicas,
        &format!("cluster `{}` control plane", c.name),
        &c.at("/spec/controlPlane/placement"),
        racks,
        diags,
    );
    duplicates(
        c.spec
            .node_pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), c.at(&format!("/spec/nodePools/{i}/name")))),
        "node pool",
        diags,
    );
    // What one VM may take on the largest host: its capacity less the per-host
    // reservations and the per-VM overhead, CPU scaled by the overcommit ratio.
    let reservation = host_reservation(env);
    let room = |h: &HostClass| {
        let cpu = (h.capacity().cpu_millis.saturating_sub(reservation.cpu.0) as f64
            * env.overcommit.cpu) as u64;
        let memory =
            (h.memory.0.saturating_sub(reservation.memory.0) as f64 * env.overcommit.memory) as u64;
        (
            cpu.saturating_sub(env.per_vm_overhead.cpu.0),
            memory.saturating_sub(env.per_vm_overhead.memory.0),
        )
    };
    let biggest_cpu = inv
        .host_classes
        .iter()
        .map(|h| room(h).0)
        .max()
        .unwrap_or(0);
    let biggest_memory = inv
        .host_classes
        .iter()
        .map(|h| room(h).1)
        .max()
        .unwrap_or(0);
    for (i, p) in c.spec.node_pools.iter().enumerate() {
        let what = format!("cluster `{}` pool `{}`", c.name, p.name);
        let field = |f: &str| c.at(&format!("/spec/nodePools/{i}/{f}"));
        if p.vcpu == 0 || p.memory.0 == 0 {
            diags.push(Diagnostic::error(
                field("vcpu"),
                format!("{what}: vcpu and memory must be above zero"),
            ));
        }
        if u64::from(p.vcpu) * 1000 > biggest_cpu || p.memory.0 > biggest_memory {
            diags.push(
                Diagnostic::error(
                    field("vcpu"),
                    format!(
                        "{what}: a {} vCPU / {} node VM is larger than any host class offers a VM after the hypervisor's and storage's reservations",
                        p.vcpu,
                        crate::units::format_bytes(p.memory.0)
                    ),
                )
                .with_help("make the node VMs smaller, or add a larger host class"),
            );
        }
        if let (Some(min), Some(max)) = (p.min, p.max)
            && min > max
        {
            diags.push(Diagnostic::error(
                field("min"),
                format!("{what}: min {min} is above max {max}"),
            ));
        }
        check_policy(
            &p.placement,
            p.replicas,
            &what,
            &field("placement"),
            racks,
            diags,
        );
    }
}

/// Decides the cluster of a workload-like object: label, else `--cluster`, else the only Cluster.
fn bind(
    what: &str,
    label: Option<&(String, Location)>,
    source: &str,
    at: &Location,
    input: &Input,
    clusters: &[&str],
    diags: &mut Diagnostics,
) -> Option<String> {
    let flag = input.bindings.get(source);
    let chosen = match (label, flag) {
        (Some((l, loc)), Some(f)) if l != f => {
            diags.push(
                Diagnostic::error(
                    loc.clone(),
                    format!(
                        "{what}: label `plinth.dev/cluster: {l}` disagrees with `--cluster {f}=...`"
                    ),
                )
                .with_help("remove the label or change the flag"),
            );
            return None;
        }
        (Some((l, loc)), _) => (l.clone(), loc.clone()),
        (None, Some(f)) => (f.clone(), at.clone()),
        (None, None) if clusters.len() == 1 => (clusters[0].to_owned(), at.clone()),
        (None, None) => {
            let d = Diagnostic::error(
                at.clone(),
                format!(
                    "{what}: cannot tell which cluster it belongs to ({} clusters in the input)",
                    clusters.len()
                ),
            )
            .with_help("add the label `plinth.dev/cluster: NAME`, or pass `--cluster NAME=PATH`");
            diags.push(d);
            return None;
        }
    };
    if !clusters.contains(&chosen.0.as_str()) {
        let mut d = unknown(chosen.1, "cluster", &chosen.0, clusters);
        d.message = format!("{what}: {}", d.message);
        diags.push(d);
        return None;
    }
    Some(chosen.0)
}

fn storage_of(
    claims: &[Option<String>],
    host_path: bool,
    annotation: Option<VolumeStorage>,
    classes: &BTreeMap<String, bool>,
) -> PodStorage {
    if let Some(s) = annotation {
        return PodStorage::Declared(s);
    }
    if host_path {
        return PodStorage::Declared(VolumeStorage::Local);
    }
    let mut out = PodStorage::Stateless;
    for claim in claims {
        match claim.as_ref().and_then(|c| classes.get(c)) {
            Some(true) => return PodStorage::Declared(VolumeStorage::Local),
            Some(false) => out = PodStorage::Declared(VolumeStorage::Shared),
            None if out == PodStorage::Stateless => out = PodStorage::EnvironmentDefault,
            None => {}
        }
    }
    out
}

/// The outer clock must outlast the inner recovery: a node whose host failed is back
/// (restarted by HA, booted) before the machine health check would replace it, or both act
/// on one failure (docs/recovery.md).
fn check_recovery_clocks(c: &Named<ClusterSpec>, env: &VirtualizedSpec, diags: &mut Diagnostics) {
    if !env.ha.enabled {
        return;
    }
    let k = &c.spec.kubernetes;
    let restart = env.ha.worst_restart_after();
    let back = Duration(
        restart
            .millis()
            .saturating_add(env.timings.vm_boot.millis()),
    );
    let replaced = Duration(
        k.node_monitor_grace_period
            .millis()
            .saturating_add(k.machine_health_timeout.millis()),
    );
    if replaced > back {
        return;
    }
    diags.push(
        Diagnostic::warning(
            c.at("/spec/kubernetes/machineHealthTimeout"),
            format!(
                "cluster `{}`: its machine health check replaces a node {replaced} after its host fails (nodeMonitorGracePeriod {} + machineHealthTimeout {}), before HA has it back ({back} at worst: restart after {restart}, then vmBoot {}): both would act on one failure",
                c.name, k.node_monitor_grace_period, k.machine_health_timeout, env.timings.vm_boot
            ),
        )
        .with_help(format!(
            "make machineHealthTimeout more than {}, or shorten the virtualized Environment's HA timings or vmBoot (docs/recovery.md)",
            Duration(back.millis().saturating_sub(k.node_monitor_grace_period.millis()))
        )),
    );
}

/// Warns about claims naming a StorageClass the input does not declare.
fn check_claim_classes(
    w: &Workload,
    claims: &[Option<String>],
    classes: &BTreeMap<String, bool>,
    diags: &mut Diagnostics,
) {
    for class in claims.iter().flatten() {
        if !classes.contains_key(class) {
            let known: Vec<&str> = classes.keys().map(String::as_str).collect();
            let d = Diagnostic::warning(
                w.location.clone(),
                format!(
                    "{}: StorageClass `{class}` is not in the input; the Environment's volumeStorage decides",
                    w.id.object()
                ),
            );
            diags.push(match did_you_mean(class, known.iter().copied()) {
                Some(near) => d.with_help(format!("did you mean `{near}`?")),
                None => d.with_help("add the StorageClass document, or the annotation `plinth.dev/storage: shared|local`"),
            });
        }
    }
}

/// Checks host names are unique and VM→host rules name real hosts or racks.
fn check_host_names(
    inv: &Named<InventorySpec>,
    hosts: &[crate::estate::Host],
    rules: &[(String, &[HostRule], Location)],
    diags: &mut Diagnostics,
) {
    let mut seen = BTreeSet::new();
    for h in hosts {
        if !seen.insert(h.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    inv.at("/spec/hosts"),
                    format!("host `{}` is declared twice", h.name),
                )
                .with_help(
                    "host names must be unique; counted hosts are named `<rack>-<class>-<nn>`",
                ),
            );
        }
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let racks: Vec<&str> = inv.spec.racks.iter().map(|r| r.name.as_str()).collect();
    for (what, list, at) in rules {
        for rule in *list {
            for target in &rule.hosts {
                let (kind, name, known) = match target.strip_prefix("rack:") {
                    Some(rack) => ("rack", rack, &racks),
                    None => ("host", target.as_str(), &names),
                };
                if !known.contains(&name) {
                    let mut d = unknown(at.clone(), kind, name, known);
                    d.message = format!("{what}: {}", d.message);
                    diags.push(d);
                }
            }
        }
    }
}

/// Largest pod a node of `cluster` can hold in the virtualized design, or a whole server.
fn largest_node(
    cluster: &ClusterSpec,
    inv: &InventorySpec,
) -> (crate::Resources, crate::Resources) {
    let vm = cluster
        .node_pools
        .iter()
        .map(|p| {
            crate::Resources::new(u64::from(p.vcpu) * 1000, p.memory.0, p.disk.0)
                - p.reserved.total()
        })
        .fold(crate::Resources::ZERO, |a, b| a.max_each(&b));
    let server = inv
        .host_classes
        .iter()
        .map(HostClass::capacity)
        .fold(crate::Resources::ZERO, |a, b| a.max_each(&b));
    (vm, server)
}

fn check_workload(
    w: &Workload,
    cluster: &ClusterSpec,
    inv: &InventorySpec,
    diags: &mut Diagnostics,
) {
    let (vm, server) = largest_node(cluster, inv);
    let req = crate::Resources {
        disk_bytes: 0,
        ..w.requests
    };
    let vm = crate::Resources {
        disk_bytes: 0,
        ..vm
    };
    let server = crate::Resources {
        disk_bytes: 0,
        ..server
    };
    if !req.fits_in(&server) {
        diags.push(
            Diagnostic::error(
                w.location.clone(),
                format!(
                    "{} requests {} per pod, more than any server offers",
                    w.id.object(),
                    req
                ),
            )
            .with_help("lower the requests, or add a larger host class"),
        );
    } else if !req.fits_in(&vm) && !cluster.node_pools.is_empty() {
        diags.push(
            Diagnostic::error(w.location.clone(), format!("{} requests {} per pod, more than any node of cluster `{}` offers ({vm} allocatable at most)", w.id.object(), req, w.id.cluster))
                .with_help("lower the requests, or add a node pool with larger VMs"),
        );
    }
}

/// Warns about selectors that match no pod of the input: Kubernetes accepts them, but a
/// budget that protects nothing or a required (anti-)affinity that selects nothing is
/// almost always a typo. Each warning shows the selector and the labels it missed.
fn check_selectors(
    workloads: &[(Workload, Vec<RequiredTerm>)],
    budgets: &[(DisruptionBudget, Location)],
    diags: &mut Diagnostics,
) {
    let selects_any = |cluster: &str, namespaces: Option<&[String]>, sel: &LabelSelector| {
        workloads.iter().any(|(w, _)| {
            w.id.cluster == cluster
                && namespaces.is_none_or(|ns| ns.contains(&w.id.namespace))
                && selector_matches(sel, &w.pod_labels)
        })
    };
    for (b, selector_at) in budgets {
        let namespace = std::slice::from_ref(&b.namespace);
        // policy/v1: a budget without a selector selects no pod.
        if b.selector
            .as_ref()
            .is_some_and(|sel| selects_any(&b.cluster, Some(namespace), sel))
        {
            continue;
        }
        let selector = b
            .selector
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), format_selector);
        let there: Vec<String> = workloads
            .iter()
            .filter(|(w, _)| w.id.cluster == b.cluster && w.id.namespace == b.namespace)
            .map(|(w, _)| format!("{} has {}", w.id.object(), format_labels(&w.pod_labels)))
            .collect();
        let help = if there.is_empty() {
            format!(
                "no workload of cluster `{}` runs in namespace `{}`",
                b.cluster, b.namespace
            )
        } else {
            format!("pod template labels there: {}", there.join("; "))
        };
        diags.push(
            Diagnostic::warning(
                selector_at.clone(),
                format!(
                    "PodDisruptionBudget {}/{}: selector `{selector}` matches no pod in namespace `{}` of cluster `{}`",
                    b.namespace, b.name, b.namespace, b.cluster
                ),
            )
            .with_help(help),
        );
    }
    for (w, terms) in workloads {
        for term in terms {
            if selects_any(&w.id.cluster, term.namespaces.as_deref(), &term.selector) {
                continue;
            }
            let (what, effect) = if term.anti {
                ("anti-affinity", "it keeps no pod apart")
            } else {
                (
                    "affinity",
                    "Kubernetes keeps its pods Pending until such a pod runs",
                )
            };
            diags.push(
                Diagnostic::warning(
                    term.at.clone(),
                    format!(
                        "{}: required pod {what} selector `{}` matches no pod: {effect}",
                        w.id.object(),
                        format_selector(&term.selector)
                    ),
                )
                .with_help(format!(
                    "its pod template's labels are `{}`; the selector usually matches them",
                    format_labels(&w.pod_labels)
                )),
            );
        }
    }
}

fn check_scenario(
    scenario: &Named<crate::kinds::scenario::ScenarioSpec>,
    clusters: &[Named<ClusterSpec>],
    hosts: &[crate::estate::Host],
    diags: &mut Diagnostics,
) {
    let s = &scenario.spec;
    for key in s.materiality.keys() {
        if !DIMENSION_KEYS.contains(&key.as_str()) {
            diags.push(unknown(
                scenario.key_at(&crate::yaml::push_pointer("/spec/materiality", key)),
                "dimension",
                key,
                &DIMENSION_KEYS,
            ));
        }
    }
    let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    let host_names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    for (i, step) in s.operations.timeline.iter().enumerate() {
        let at = &scenario.at(&format!("/spec/operations/timeline/{i}"));
        if step.action == TimelineAction::HostMaintenance {
            match &step.host {
                Some(h) if !host_names.contains(&h.as_str()) => {
                    diags.push(unknown(at.clone(), "host", h, &host_names))
                }
                None => diags.push(Diagnostic::error(
                    at.clone(),
                    "timeline step `hostMaintenance` needs `host`",
                )),
                _ => {}
            }
            continue;
        }
        let Some(c) = &step.cluster else {
            diags.push(Diagnostic::error(
                at.clone(),
                format!("timeline step at {} needs `cluster`", step.at),
            ));
            continue;
        };
        let Some(cluster) = clusters.iter().find(|x| &x.name == c) else {
            diags.push(unknown(at.clone(), "cluster", c, &names));
            continue;
        };
        if step.action == TimelineAction::ScalePool {
            let pools: Vec<&str> = cluster
                .spec
                .node_pools
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            match (&step.pool, step.replicas) {
                (Some(p), Some(_)) if !pools.contains(&p.as_str()) => {
                    diags.push(unknown(at.clone(), "node pool", p, &pools))
                }
                (Some(_), Some(_)) => {}
                _ => diags.push(Diagnostic::error(
                    at.clone(),
                    "timeline step `scalePool` needs `pool` and `replicas`",
                )),
            }
        }
        if step.action == TimelineAction::UpgradeKubernetes && step.version.is_none() {
            diags.push(Diagnostic::error(
                at.clone(),
                "timeline step `upgradeKubernetes` needs `version`",
            ));
        }
        if let Some(v) = &step.version {
            diags.extend(check_version(v, || {
                scenario.at(&format!("/spec/operations/timeline/{i}/version"))
            }));
        }
    }
    check_upgrade_steps(scenario, clusters, diags);
}

/// Each cluster's `upgradeKubernetes` steps, in time order from the version it runs, roll
/// one minor version at a time and never back (the version skew policy).
fn check_upgrade_steps(
    scenario: &Named<crate::kinds::scenario::ScenarioSpec>,
    clusters: &[Named<ClusterSpec>],
    diags: &mut Diagnostics,
) {
    let timeline = &scenario.spec.operations.timeline;
    let mut running: BTreeMap<&str, KubernetesVersion> = clusters
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.spec.kubernetes_version.parse().ok()?)))
        .collect();
    let mut order: Vec<usize> = (0..timeline.len()).collect();
    order.sort_by_key(|&i| timeline[i].at.millis());
    for i in order {
        let step = &timeline[i];
        let (TimelineAction::UpgradeKubernetes, Some(cluster), Some(version)) =
            (step.action, &step.cluster, &step.version)
        else {
            continue;
        };
        let (Some(from), Ok(to)) = (
            running.get_mut(cluster.as_str()),
            version.parse::<KubernetesVersion>(),
        ) else {
            continue;
        };
        match from.upgrade_to(to) {
            Ok(()) => *from = to,
            Err(e) => {
                let d = Diagnostic::error(
                    scenario.at(&format!("/spec/operations/timeline/{i}/version")),
                    format!("cluster {cluster} cannot be upgraded here: {e}"),
                );
                diags.push(if matches!(e, SkewError::SkipsMinor { .. }) {
                    d.with_help("add a step for each minor version between, in time order")
                } else {
                    d
                });
            }
        }
    }
}

fn check_usage(usage: &UsageProfile, what: &str, at: &Location, diags: &mut Diagnostics) {
    if let Err(e) = usage.peak_window() {
        diags.push(Diagnostic::error(at.clone(), format!("{what}: {e}")));
    }
}

/// Says, once per input, which parsed inputs no part of Plinth models yet, so that no
/// accepted input silently changes nothing.
fn not_modelled_notes(workloads: &[Workload], diags: &mut Diagnostics) {
    let jobs: Vec<&Workload> = workloads
        .iter()
        .filter(|w| w.run_duration.is_some() || w.schedule.is_some())
        .collect();
    if let Some(first) = jobs.first() {
        diags.push(Diagnostic::note(
            first.location.clone(),
            format!("{} Job/CronJob run time(s) and schedule(s) parsed, not modelled yet: their pods are counted as always running", jobs.len()),
        ));
    }
    if let Some(first) = workloads.first() {
        diags.push(Diagnostic::note(
            first.location.clone(),
            "usage profiles (`plinth.dev/usage-*`) parsed, not modelled yet: capacity is planned from requests",
        ));
    }
}

/// The error for a Kubernetes version that does not parse as one.
fn check_version(text: &str, at: impl FnOnce() -> Location) -> Option<Diagnostic> {
    text.parse::<KubernetesVersion>().err().map(|e| {
        Diagnostic::error(at(), format!("`{}` {e}", crate::diag::excerpt(text)))
            .with_help("write the release as Kubernetes numbers it, e.g. \"1.31.4\" (quoted)")
    })
}

/// Reports failure classes of a Scenario that name no host class.
fn check_failure_classes(
    inventory: &Named<InventorySpec>,
    scenario: &Named<crate::kinds::scenario::ScenarioSpec>,
    diags: &mut Diagnostics,
) {
    let classes: Vec<&str> = inventory
        .spec
        .host_classes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for class in scenario.spec.failures.by_class.keys() {
        if !classes.contains(&class.as_str()) {
            diags.push(unknown(
                scenario.key_at(&crate::yaml::push_pointer("/spec/failures/byClass", class)),
                "host class",
                class,
                &classes,
            ));
        }
    }
}

/// Checks every number of every document against its documented range, at its field.
pub(crate) fn check_ranges(docs: &Collected, diags: &mut Diagnostics) {
    docs.inventories
        .iter()
        .for_each(|d| ranges::inventory(d, diags));
    docs.virtualized
        .iter()
        .for_each(|d| ranges::virtualized(d, diags));
    docs.bare_metal
        .iter()
        .for_each(|d| ranges::bare_metal(d, diags));
    docs.clusters.iter().for_each(|d| ranges::cluster(d, diags));
    docs.vm_sets.iter().for_each(|d| ranges::vm_set(d, diags));
    docs.scenarios
        .iter()
        .for_each(|d| ranges::scenario(d, diags));
    docs.price_sheets
        .iter()
        .for_each(|d| ranges::price_sheet(d, diags));
    docs.calibrations
        .iter()
        .for_each(|d| ranges::calibration(d, diags));
}

/// Builds the estate from typed documents, reporting everything that is wrong.
pub(crate) fn assemble(docs: Collected, input: &Input, diags: &mut Diagnostics) -> Option<Estate> {
    check_ranges(&docs, diags);
    let Collected {
        inventories,
        virtualized,
        bare_metal,
        clusters,
        vm_sets,
        scenarios,
        price_sheets,
        calibrations,
        workloads,
        budgets,
        storage_classes,
        inventory_attempted,
        cluster_documents,
    } = docs;
    let first = input
        .sources
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_else(|| "<input>".into());
    let inventory = single(inventories, "Inventory", diags);
    let mut virtualized = provided(
        single(virtualized, "virtualized Environment", diags),
        default_virtualized,
    );
    let bare_metal = provided(
        single(bare_metal, "bareMetal Environment", diags),
        default_bare_metal,
    );
    let scenario_doc = single(scenarios, "Scenario", diags);
    let price_doc = single(price_sheets, "PriceSheet", diags);
    let price_index = price_doc.as_ref().map(|n| n.index.clone());
    let price_sheet = provided(price_doc, Default::default);
    // A Calibration counts only when the virtualized Environment names it: one left in a
    // directory of manifests must not change the comparison unasked.
    let calibration = single(calibrations, "Calibration", diags).filter(|c| {
        let named = virtualized.spec.calibration.is_some();
        if !named {
            diags.push(
                Diagnostic::warning(
                    c.location.clone(),
                    format!("Calibration `{}` is not used: no Environment names it", c.name),
                )
                .with_help("set `calibration: <this file>` in the virtualized Environment's spec, or remove the file from the input"),
            );
        }
        named
    });
    // The measured timings replace the declared ones before anything reads them.
    if let Some(c) = &calibration {
        let v = &mut virtualized.spec;
        if c.spec.fence_latency.is_some() && v.ha.fencing == Fencing::Bmc {
            diags.push(Diagnostic::note(
                c.location.clone(),
                format!(
                    "Calibration `{}`'s fenceLatency is an agent's fence; the Environment fences through a BMC, so its fenceLatency {} stays",
                    c.name, v.ha.fence_latency
                ),
            ));
        }
        let replaced = c.spec.apply(&mut v.timings, &mut v.ha);
        if !replaced.is_empty() {
            let list: Vec<String> = replaced
                .iter()
                .map(|(name, was, now)| format!("{name} {was} → {now}"))
                .collect();
            diags.push(Diagnostic::note(
                c.location.clone(),
                format!(
                    "Calibration `{}` ({}) replaces the virtualized Environment's {}",
                    c.name,
                    c.spec.accelerator,
                    list.join(", ")
                ),
            ));
        }
    }
    let Some(inventory) = inventory else {
        if inventory_attempted {
            return None;
        }
        diags.push(
            Diagnostic::error(Location::start_of(first), "the input has no Inventory").with_help(
                "add a document with `kind: Inventory` listing host classes, racks and hosts",
            ),
        );
        return None;
    };
    check_inventory(&inventory, diags);
    let declared: u64 = inventory
        .spec
        .hosts
        .iter()
        .map(|h| u64::from(h.count))
        .sum();
    if declared > MAX_HOSTS {
        diags.push(
            Diagnostic::error(
                inventory.location.clone(),
                format!(
                    "the Inventory declares {declared} hosts; Plinth models at most {MAX_HOSTS}"
                ),
            )
            .with_help("check the `count` of the host entries"),
        );
        return None;
    }
    let hosts = expand_hosts(&inventory.spec);
    let mut rules: Vec<(String, &[HostRule], Location)> = Vec::new();
    for c in &clusters {
        rules.push((
            format!("cluster `{}` control plane", c.name),
            &c.spec.control_plane.host_rules,
            c.at("/spec/controlPlane/hostRules"),
        ));
        for (i, p) in c.spec.node_pools.iter().enumerate() {
            rules.push((
                format!("cluster `{}` pool `{}`", c.name, p.name),
                &p.host_rules,
                c.at(&format!("/spec/nodePools/{i}/hostRules")),
            ));
        }
    }
    for v in &vm_sets {
        rules.push((
            format!("VirtualMachineSet `{}`", v.name),
            &v.spec.host_rules,
            v.at("/spec/hostRules"),
        ));
    }
    check_host_names(&inventory, &hosts, &rules, diags);
    let active = hosts.iter().filter(|h| h.role == HostRole::Active).count();
    if active == 0 && !inventory.spec.hosts.is_empty() {
        diags.push(Diagnostic::warning(
            inventory.location.clone(),
            "no active hosts: every server will be bought",
        ));
    }
    duplicates(
        clusters
            .iter()
            .map(|c| (c.name.as_str(), c.at("/metadata/name"))),
        "cluster",
        diags,
    );
    for c in &clusters {
        check_cluster(c, &inventory.spec, &virtualized.spec, diags);
    }
    check_vm_names(&clusters, &vm_sets, diags);
    for v in &vm_sets {
        check_policy(
            &v.spec.placement,
            v.spec.count,
            &format!("VirtualMachineSet `{}`", v.name),
            &v.location,
            inventory.spec.racks.len(),
            diags,
        );
        check_usage(
            &v.spec.usage,
            &format!("VirtualMachineSet `{}`", v.name),
            &v.location,
            diags,
        );
    }
    if virtualized.spec.calibration.is_some()
        && calibration.is_none()
        && let Origin::Declared(at) = &virtualized.origin
    {
        diags.push(
            Diagnostic::error(at.clone(), "`calibration` names a file that was not loaded")
                .with_help("check the path; it is relative to the Environment's file"),
        );
    }
    if virtualized.spec.overcommit.memory > 1.0
        && let Origin::Declared(at) = &virtualized.origin
    {
        diags.push(
            Diagnostic::warning(
                at.clone(),
                "memory overcommit above 1.0: an OOM-killed node VM loses its pods",
            )
            .with_help("keep `overcommit.memory: 1.0` for node VMs"),
        );
    }
    let classes: BTreeMap<String, bool> = storage_classes.into_iter().collect();
    let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    let mut bound = Vec::with_capacity(workloads.len());
    // A Cluster that failed to decode would make every binding to it look wrong: its
    // own errors are already reported, so binding waits for a clean input.
    let clusters_incomplete = cluster_documents > clusters.len();
    for p in workloads {
        if clusters_incomplete {
            break;
        }
        let Some(cluster) = bind(
            &p.workload.id.object(),
            p.label.as_ref(),
            &p.source,
            &p.workload.location,
            input,
            &names,
            diags,
        ) else {
            continue;
        };
        let mut w = p.workload;
        w.id.cluster = cluster;
        w.storage = storage_of(&p.claims, p.host_path, p.storage_annotation, &classes);
        check_claim_classes(&w, &p.claims, &classes, diags);
        if let Some(spec) = clusters.iter().find(|c| c.name == w.id.cluster) {
            check_workload(&w, &spec.spec, &inventory.spec, diags);
        }
        bound.push((w, p.required_terms));
    }
    let mut ids = BTreeSet::new();
    for (w, _) in &bound {
        if !ids.insert(&w.id) {
            diags.push(
                Diagnostic::error(
                    w.location.clone(),
                    format!(
                        "{} is declared twice in cluster `{}`",
                        w.id.object(),
                        w.id.cluster
                    ),
                )
                .with_help("workload identity is (cluster, namespace, kind, name)"),
            );
        }
    }
    let mut pdbs = Vec::new();
    for p in budgets {
        let what = format!(
            "PodDisruptionBudget {}/{}",
            p.budget.namespace, p.budget.name
        );
        let Some(cluster) = bind(
            &what,
            p.label.as_ref(),
            &p.source,
            &p.budget.location,
            input,
            &names,
            diags,
        ) else {
            continue;
        };
        pdbs.push((
            DisruptionBudget {
                cluster,
                ..p.budget
            },
            p.selector_at,
        ));
    }
    check_selectors(&bound, &pdbs, diags);
    let bound: Vec<Workload> = bound.into_iter().map(|(w, _)| w).collect();
    let pdbs: Vec<DisruptionBudget> = pdbs.into_iter().map(|(b, _)| b).collect();
    if let Some(s) = &scenario_doc {
        check_scenario(s, &clusters, &hosts, diags);
    }
    if let Origin::Declared(at) = &price_sheet.origin {
        let price_at = |pointer: &str| {
            price_index
                .as_ref()
                .map_or_else(|| at.clone(), |i| i.key(pointer))
        };
        let class_names: Vec<&str> = inventory
            .spec
            .host_classes
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for class in price_sheet.spec.servers.keys() {
            if !class_names.contains(&class.as_str()) {
                diags.push(unknown(
                    price_at(&crate::yaml::push_pointer("/spec/servers", class)),
                    "host class",
                    class,
                    &class_names,
                ));
            }
        }
        let operations: Vec<&str> = crate::kinds::price_sheet::LABOUR_OPERATIONS
            .iter()
            .map(|(k, _, _)| *k)
            .collect();
        for op in price_sheet.spec.labour.hours.keys() {
            if !operations.contains(&op.as_str()) {
                diags.push(unknown(
                    price_at(&crate::yaml::push_pointer("/spec/labour/hours", op)),
                    "labour operation",
                    op,
                    &operations,
                ));
            }
        }
    }
    not_modelled_notes(&bound, diags);
    if let Some(s) = &scenario_doc {
        check_failure_classes(&inventory, s, diags);
    }
    let ruled = clusters.iter().any(|c| {
        !c.spec.control_plane.host_rules.is_empty()
            || c.spec.node_pools.iter().any(|p| !p.host_rules.is_empty())
    }) || vm_sets.iter().any(|v| !v.spec.host_rules.is_empty());
    if ruled {
        diags.push(Diagnostic::note(
            inventory.location.clone(),
            "`hostRules` are checked, but not yet modelled: capacity plans cannot know the hosts they buy",
        ));
    }
    let scenario = provided(scenario_doc, Default::default);
    let estate = Estate {
        inventory,
        hosts,
        virtualized,
        bare_metal,
        scenario,
        price_sheet,
        calibration,
        clusters,
        vm_sets,
        workloads: bound,
        disruption_budgets: pdbs,
        storage_classes: classes,
    };
    note_shared_servers(&estate, diags);
    Some(estate)
}

/// `shareServers: true`: which clusters the bare-metal design merges.
fn note_shared_servers(estate: &Estate, diags: &mut Diagnostics) {
    let Origin::Declared(at) = &estate.bare_metal.origin else {
        return;
    };
    if !estate.bare_metal.spec.share_servers {
        return;
    }
    let groups = crate::merge::same_stack_groups(estate);
    let message = if groups.is_empty() {
        "`shareServers: true`, but no two clusters run the same OS image and Kubernetes \
         version: every cluster keeps servers of its own"
            .to_owned()
    } else {
        let merges: Vec<String> = groups
            .iter()
            .map(|g| {
                let names: Vec<&str> = g
                    .iter()
                    .map(|&i| estate.clusters[i].name.as_str())
                    .collect();
                format!("{} into `{}`", names.join(", "), names[0])
            })
            .collect();
        format!(
            "`shareServers: true`: the bare-metal design merges the clusters of one OS image \
             and Kubernetes version into one cluster with a namespace each: {}",
            merges.join("; ")
        )
    };
    diags.push(Diagnostic::note(at.clone(), message));
}
