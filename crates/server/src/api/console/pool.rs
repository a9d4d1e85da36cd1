//! The pool map: hosts grouped by rack, each with its VMs as blocks sized by vCPU (width)
//! and memory (height) and coloured by cluster or VirtualMachineSet; the host's state; the
//! placement groups whose hard limit the VMs' hosts break.

use std::collections::BTreeMap;

use maud::{Markup, html};
use plinth_model::Estate;
use plinth_model::estate::Host as EstateHost;
use plinth_model::kinds::environment::AdmissionControl;
use plinth_model::policy::{PlacementPolicy, Scope};

use super::objects::{Owner, Snapshot, Vm, gib};

/// Colours of clusters, then VirtualMachineSets, in estate order (Okabe–Ito, told apart
/// with colour-blindness too).
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#555555",
];

/// The colour of the owner at `index` ([`owner_index`]).
pub(crate) fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// A placement group's hard limit broken in one failure domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The group: a cluster's pool or a VirtualMachineSet.
    pub(crate) group: Owner,
    /// What the group spreads over.
    pub(crate) scope: Scope,
    /// The host or rack.
    pub(crate) domain: String,
    /// Members of the group in it.
    pub(crate) members: u32,
    /// The most the policy allows.
    pub(crate) limit: u32,
}

/// The placement groups of `estate`: each cluster's pools, then each VirtualMachineSet.
fn groups(estate: &Estate) -> Vec<(Owner, PlacementPolicy)> {
    let pool = |cluster: &str, pool: &str| Owner::Pool {
        cluster: cluster.to_owned(),
        pool: pool.to_owned(),
    };
    let pools = estate.clusters.iter().flat_map(|c| {
        let cp = (
            pool(&c.name, plinth_control::upgrade::CONTROL_PLANE),
            c.spec.control_plane.placement,
        );
        std::iter::once(cp).chain(
            c.spec
                .node_pools
                .iter()
                .map(|p| (pool(&c.name, &p.name), p.placement)),
        )
    });
    let sets = estate.vm_sets.iter().map(|v| {
        let set = Owner::Set {
            set: v.name.clone(),
        };
        (set, v.spec.placement)
    });
    pools.chain(sets).collect()
}

/// The failure domain of `host` at `scope`: its name or its rack's.
fn domain(estate: &Estate, host: &str, scope: Scope) -> String {
    match scope {
        Scope::Host => host.to_owned(),
        Scope::Rack => estate.hosts.iter().find(|h| h.name == host).map_or_else(
            || host.to_owned(),
            |h| estate.inventory.spec.racks[h.rack].name.clone(),
        ),
    }
}

/// Every domain where a pool has more placed members than its policy's hard limit.
pub(crate) fn violations(estate: &Estate, vms: &[Vm]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (group, policy) in groups(estate) {
        let Some(limit) = policy.hard_limit() else {
            continue;
        };
        let mut members: BTreeMap<String, u32> = BTreeMap::new();
        for vm in vms.iter().filter(|v| v.spec == group) {
            if let Some(host) = &vm.status.host {
                *members
                    .entry(domain(estate, host, policy.spread_over))
                    .or_default() += 1;
            }
        }
        out.extend(
            members
                .into_iter()
                .filter(|&(_, n)| n > limit)
                .map(|(domain, n)| Violation {
                    group: group.clone(),
                    scope: policy.spread_over,
                    domain,
                    members: n,
                    limit,
                }),
        );
    }
    out
}

/// A VM's size: (vCPU, memory bytes), from its pool's or its VirtualMachineSet's spec.
fn size(estate: &Estate, vm: &Vm) -> Option<(u32, u64)> {
    let (cluster, pool) = match &vm.spec {
        Owner::Pool { cluster, pool } => (cluster, pool),
        Owner::Set { set } => {
            let v = estate.vm_sets.iter().find(|v| v.name == *set)?;
            return Some((v.spec.vcpu, v.spec.memory.0));
        }
    };
    let cluster = estate.clusters.iter().find(|c| c.name == *cluster)?;
    if pool == plinth_control::upgrade::CONTROL_PLANE {
        let cp = &cluster.spec.control_plane;
        return Some((cp.vcpu, cp.memory.0));
    }
    let pool = cluster.spec.node_pools.iter().find(|p| p.name == *pool)?;
    Some((pool.vcpu, pool.memory.0))
}

/// The colour index of a VM's owner: its cluster's place in the estate, or its
/// VirtualMachineSet's after the clusters.
fn owner_index(estate: &Estate, owner: &Owner) -> usize {
    let unknown = estate.clusters.len() + estate.vm_sets.len();
    match owner {
        Owner::Pool { cluster, .. } => estate.clusters.iter().position(|c| c.name == *cluster),
        Owner::Set { set } => estate
            .vm_sets
            .iter()
            .position(|v| v.name == *set)
            .map(|i| estate.clusters.len() + i),
    }
    .unwrap_or(unknown)
}

/// Share of `part` in `whole`, as a percentage clamped to [min, 100].
fn share(part: f64, whole: f64, min: f64) -> f64 {
    if whole <= 0.0 {
        return min;
    }
    (part / whole * 100.0).clamp(min, 100.0)
}

fn vm_block(estate: &Estate, vm: &Vm, threads: u32, memory: u64, broken: bool) -> Markup {
    let (vcpu, bytes) = size(estate, vm).unwrap_or((1, 0));
    let width = share(f64::from(vcpu), f64::from(threads), 4.0);
    // 20 px for a VM with almost no memory, 60 px for one with all of the host's.
    let height = 20.0 + 0.4 * share(bytes as f64, memory as f64, 0.0);
    let label = format!(
        "{} of {}: {vcpu} vCPU, {}, {}",
        vm.metadata.name,
        vm.spec,
        gib(bytes),
        vm.status.phase
    );
    html! {
        li.vm.violation[broken] data-vm=(vm.metadata.name) data-phase=(vm.status.phase)
            tabindex="0" title=(label) aria-label=(label)
            style=(format!("--w:{width:.1}%;--h:{height:.0}px;--c:{}",
                colour(owner_index(estate, &vm.spec)))) {
            span.vm-name aria-hidden="true" { (vm.metadata.name) }
        }
    }
}

/// A host's card: its state, its use, its VMs; `can_write` adds the maintenance action to
/// a host that is up.
fn host_card(
    estate: &Estate,
    snapshot: &Snapshot,
    host: &EstateHost,
    broken: &[&str],
    can_write: bool,
) -> Markup {
    let class = estate.class_of(host);
    let threads = class.threads();
    let on: Vec<&Vm> = snapshot
        .vms
        .iter()
        .filter(|v| v.status.host.as_deref() == Some(host.name.as_str()))
        .collect();
    let used_cpu: u32 = on
        .iter()
        .filter_map(|v| size(estate, v))
        .map(|(c, _)| c)
        .sum();
    let used_memory: u64 = on
        .iter()
        .filter_map(|v| size(estate, v))
        .map(|(_, m)| m)
        .sum();
    let state = snapshot.host_state(&host.name);
    html! {
        li.host data-host=(host.name) data-state=(state) {
            div.host-head {
                span.host-name { (host.name) }
                span class=(format!("state state-{state}")) { (state) }
            }
            @if can_write && state == "up" {
                form.action.maintain data-host=(host.name) {
                    button type="submit" aria-label=(format!("Maintenance of {}…", host.name)) { "Maintenance…" }
                }
            }
            div.host-use {
                (used_cpu) "/" (threads) " vCPU · " (gib(used_memory)) " of " (gib(class.memory.0))
            }
            ul.vms aria-label=(format!("VMs on {}", host.name)) {
                @for vm in &on {
                    (vm_block(estate, vm, threads, class.memory.0, broken.contains(&vm.metadata.name.as_str())))
                }
            }
        }
    }
}

/// The VMs breaking a violation: the members of its pool in its domain.
fn breaking<'a>(estate: &Estate, vms: &'a [Vm], v: &Violation) -> Vec<&'a str> {
    vms.iter()
        .filter(|vm| vm.spec == v.group)
        .filter(|vm| {
            vm.status
                .host
                .as_deref()
                .is_some_and(|h| domain(estate, h, v.scope) == v.domain)
        })
        .map(|vm| vm.metadata.name.as_str())
        .collect()
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Host => "host",
        Scope::Rack => "rack",
    }
}

/// What HA holds back, as the Environment's policy and the Scenario ask; and, when the
/// hosts cannot meet it, the Inventory's `HeadroomMet` condition saying what runs instead.
fn reserve(estate: &Estate, snapshot: &Snapshot) -> Markup {
    let ha = &estate.virtualized.spec.ha;
    let failures = estate.scenario.spec.requirements.host_failures_to_tolerate;
    // The design's pool once the control plane reports it; the Inventory's hosts before.
    let pool = match snapshot.hosts.len() {
        0 => estate.hosts.len(),
        n => n,
    }
    .max(1);
    let policy = match ha.admission_control {
        AdmissionControl::Percentage => format!(
            "{failures}/{pool} of the pool's capacity held back ({:.0} %)",
            f64::from(failures) / pool as f64 * 100.0
        ),
        AdmissionControl::Slots => {
            format!("room kept for the VMs of the {failures} largest host(s)")
        }
        AdmissionControl::FailoverHosts => format!("{failures} idle failover host(s)"),
    };
    let short = snapshot
        .inventories
        .iter()
        .flat_map(|i| &i.status.conditions)
        .find(|c| c.kind == "HeadroomMet" && c.status == "False");
    html! {
        p.reserve {
            @if ha.enabled {
                "HA reserve for " (failures) " host failure(s): " (policy) "."
            } @else {
                "HA is off: a failed host's VMs are not restarted elsewhere."
            }
            @if let Some(c) = short { " " span.warning { (c.message) } }
        }
    }
}

/// The pool map of `snapshot`; `can_write` draws the maintenance actions.
pub(crate) fn render(snapshot: &Snapshot, can_write: bool) -> Markup {
    let Some(estate) = &snapshot.estate else {
        return html! {
            p.empty { "No valid estate is applied yet: apply an Inventory and Clusters (" code { "plinth apply -f PATH" } "); the Clusters view shows what is missing." }
        };
    };
    let violations = violations(estate, &snapshot.vms);
    let broken: Vec<&str> = violations
        .iter()
        .flat_map(|v| breaking(estate, &snapshot.vms, v))
        .collect();
    let unplaced: Vec<&Vm> = snapshot
        .vms
        .iter()
        .filter(|v| v.status.host.is_none())
        .collect();
    html! {
        div.pool-summary {
            span { (estate.hosts.len()) " hosts · " (snapshot.vms.len()) " VMs" }
            ul.legend aria-label="Clusters and VirtualMachineSets" {
                @for (i, name) in estate.clusters.iter().map(|c| &c.name).chain(estate.vm_sets.iter().map(|v| &v.name)).enumerate() {
                    li { span.swatch style=(format!("--c:{}", colour(i))) {} (name) }
                }
            }
        }
        (reserve(estate, snapshot))
        section.violations aria-label="Placement groups" {
            @if violations.is_empty() {
                p.ok { "Every placement group keeps its hard limit." }
            } @else {
                ul {
                    @for v in &violations {
                        li.violation-item {
                            strong { (v.group) } ": " (v.members) " members on " (scope_name(v.scope)) " " (v.domain)
                            " (its policy allows " (v.limit) ")"
                        }
                    }
                }
            }
        }
        @for (i, rack) in estate.inventory.spec.racks.iter().enumerate() {
            section.rack aria-label=(format!("Rack {}", rack.name)) {
                h3 { "Rack " (rack.name) }
                ul.hosts {
                    @for host in estate.hosts.iter().filter(|h| h.rack == i) {
                        (host_card(estate, snapshot, host, &broken, can_write))
                    }
                }
            }
        }
        @if !unplaced.is_empty() {
            section.rack aria-label="Not placed" {
                h3 { "Not placed yet" }
                ul.vms.unplaced {
                    @for vm in &unplaced {
                        (vm_block(estate, vm, 32, 256 << 30, false))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::console::objects::{Host, HostStatus, Meta, VmStatus};

    fn estate() -> Estate {
        let mut input = plinth_model::Input::default();
        input.add(plinth_model::SourceFile::new(
            "e.yaml",
            "apiVersion: plinth.dev/v1alpha1\nkind: Inventory\nmetadata: {name: lab}\nspec:\n  hostClasses:\n  - {name: std, sockets: 1, coresPerSocket: 8, memory: 64Gi}\n  racks: [{name: r1}, {name: r2}]\n  hosts:\n  - {rack: r1, class: std, count: 2}\n  - {rack: r2, class: std, count: 1}\n---\napiVersion: plinth.dev/v1alpha1\nkind: Cluster\nmetadata: {name: apps}\nspec:\n  kubernetesVersion: 1.31.4\n  osImage: ubuntu-24.04\n  controlPlane: {replicas: 3, vcpu: 2, memory: 8Gi}\n  nodePools:\n  - {name: workers, vcpu: 4, memory: 16Gi, replicas: 2, placement: {spreadOver: rack, mode: strict}}\n---\napiVersion: plinth.dev/v1alpha1\nkind: VirtualMachineSet\nmetadata: {name: legacy}\nspec: {count: 2, vcpu: 8, memory: 32Gi, placement: {spreadOver: host, mode: strict}}\n",
        ));
        plinth_model::load(&input).estate.expect("a valid estate")
    }

    fn placed(name: &str, spec: Owner, host: &str) -> Vm {
        Vm {
            metadata: Meta { name: name.into() },
            spec,
            status: VmStatus {
                phase: "Running".into(),
                host: Some(host.into()),
            },
        }
    }

    fn vm(name: &str, pool: &str, host: &str) -> Vm {
        let spec = Owner::Pool {
            cluster: "apps".into(),
            pool: pool.into(),
        };
        placed(name, spec, host)
    }

    fn legacy(name: &str, host: &str) -> Vm {
        let spec = Owner::Set {
            set: "legacy".into(),
        };
        placed(name, spec, host)
    }

    #[test]
    fn a_virtual_machine_set_is_a_placement_group_and_sized_from_its_spec() {
        let estate = estate();
        let apart = [
            legacy("legacy-0", "r1-std-01"),
            legacy("legacy-1", "r1-std-02"),
        ];
        assert_eq!(violations(&estate, &apart), vec![]);
        let together = [
            legacy("legacy-0", "r1-std-01"),
            legacy("legacy-1", "r1-std-01"),
        ];
        let found = violations(&estate, &together);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].group.to_string(), "VirtualMachineSet legacy");
        assert_eq!(
            (found[0].domain.as_str(), found[0].members),
            ("r1-std-01", 2)
        );
        let snapshot = Snapshot {
            estate: Some(estate),
            vms: together.to_vec(),
            ..Snapshot::default()
        };
        let html = render(&snapshot, false).into_string();
        // 8 vCPU of 16 threads; the set's colour follows the one cluster's.
        assert!(
            html.contains(&format!("--w:50.0%;--h:40px;--c:{}", colour(1))),
            "{html}"
        );
        assert!(
            html.contains("legacy-0 of VirtualMachineSet legacy: 8 vCPU"),
            "{html}"
        );
        assert!(html.contains("16/16 vCPU"), "{html}");
    }

    #[test]
    fn a_pool_over_its_hard_limit_in_a_domain_is_a_violation() {
        let estate = estate();
        let spread = [
            vm("w0", "workers", "r1-std-01"),
            vm("w1", "workers", "r2-std-01"),
            vm("cp0", "control-plane", "r1-std-01"),
            vm("cp1", "control-plane", "r1-std-02"),
        ];
        assert_eq!(violations(&estate, &spread), vec![]);
        // Two workers in rack r1 (on two hosts): the rack-strict pool breaks its limit;
        // two control-plane VMs on one host break theirs.
        let packed = [
            vm("w0", "workers", "r1-std-01"),
            vm("w1", "workers", "r1-std-02"),
            vm("cp0", "control-plane", "r1-std-01"),
            vm("cp1", "control-plane", "r1-std-01"),
        ];
        let found = violations(&estate, &packed);
        let seen: Vec<(String, &str, u32)> = found
            .iter()
            .map(|v| (v.group.to_string(), v.domain.as_str(), v.members))
            .collect();
        assert_eq!(
            seen,
            [
                ("apps/control-plane".to_owned(), "r1-std-01", 2),
                ("apps/workers".to_owned(), "r1", 2)
            ]
        );
    }

    #[test]
    fn the_map_shows_every_host_by_rack_and_every_vm_on_its_host() {
        let snapshot = Snapshot {
            estate: Some(estate()),
            vms: vec![vm("w0", "workers", "r2-std-01")],
            ..Snapshot::default()
        };
        let html = render(&snapshot, false).into_string();
        for host in ["r1-std-01", "r1-std-02", "r2-std-01"] {
            assert!(html.contains(&format!("data-host=\"{host}\"")), "{html}");
        }
        assert!(!html.contains("form class=\"action maintain\""), "{html}");
        let reported = |name: &str, state: &str| Host {
            metadata: Meta {
                name: name.to_owned(),
            },
            status: HostStatus {
                state: Some(state.to_owned()),
            },
        };
        let writable = Snapshot {
            hosts: vec![
                reported("r1-std-01", "up"),
                reported("r1-std-02", "maintenance"),
                reported("r2-std-01", "up"),
            ],
            ..snapshot
        };
        let writable = render(&writable, true).into_string();
        let actions: Vec<&str> = writable
            .match_indices("form class=\"action maintain\" data-host=\"")
            .map(|(at, m)| &writable[at + m.len()..at + m.len() + 9])
            .collect();
        assert_eq!(
            actions,
            ["r1-std-01", "r2-std-01"],
            "a maintenance action on every host that is up"
        );
        let rack2 = html.find("Rack r2").expect("rack r2");
        assert!(html.find("data-vm=\"w0\"").is_some_and(|at| at > rack2));
        assert!(
            html.contains(
                "HA reserve for 1 host failure(s): 1/3 of the pool's capacity held back (33 %)"
            ),
            "{html}"
        );
        // 4 vCPU of the host's 16 threads (8 cores, SMT): a quarter of its width.
        assert!(html.contains("--w:25.0%"), "{html}");
    }
}
