//! The two designs of one estate, as placement problems: the virtualized pool (every
//! cluster's node VMs plus the VirtualMachineSets on shared hosts) and bare metal (whole
//! servers per cluster, plus a separate pool for the VirtualMachineSets).
//!
//! Both designs use the same pod→pool binding and the same node-count formula
//! ([`crate::nodes`]); only the node shape differs: a VM node has its pool's vCPU and
//! memory less the hypervisor's performance overhead, a bare-metal node is a whole server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PodSpec};
use plinth_model::Resources;
use plinth_model::estate::Estate;
use plinth_model::kinds::RestartPriority as ModelPriority;
use plinth_model::kinds::cluster::{CONTROL_PLANE_POOL, NodePool, Taint, TaintEffect, node_prefix};
use plinth_model::kinds::environment::{AdmissionControl, ControlPlanePlacement, host_reservation};
use plinth_model::kinds::inventory::HostRole;
use plinth_model::workload::{Workload, WorkloadKind};

use crate::admission::AdmissionPolicy;
use crate::baremetal::{BareMetalProblem, ClusterDemand, NodePoolDemand, Server, ServerClass};
use crate::capacity::{CapacityProblem, HeadroomRule, HostClass, OwnedHost};
use crate::error::PlacementError;
use crate::headroom::headroom;
use crate::hosts::HostSpec;
use crate::hosts::{Overcommit, RackId};
use crate::nodes::{Kubelet, PodShape};
use crate::place_all::place_all;
use crate::plan::{PER_NODE_LABELS, pool_labels, region};
use crate::pool::PoolConfig;
use crate::state::PoolState;
use crate::vm::{Group, GroupId, RestartPriority, VmSpec, ZoneId};

/// A workload no node pool of its cluster can run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unbound {
    /// The workload, `cluster/namespace/Kind/name`.
    pub workload: String,
    /// What stopped every pool.
    pub reason: String,
}

/// Which pods run on which pool of each cluster, shared by both designs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// Cluster name → pool name → pod shapes bound to it.
    pub pods: BTreeMap<String, BTreeMap<String, Vec<PodShape>>>,
    /// Cluster name → pool name → per-node DaemonSet requests and pod count.
    pub daemons: BTreeMap<String, BTreeMap<String, (Resources, u32)>>,
    /// Workloads no pool can run.
    pub unbound: Vec<Unbound>,
    /// Index into `Estate::workloads` → the pool its pods are bound to (not DaemonSets).
    pub pool_of: BTreeMap<usize, String>,
}

impl Binding {
    /// The pool workload `w` (an index into `Estate::workloads`) is bound to.
    pub fn pool_of(&self, w: usize) -> Option<&str> {
        self.pool_of.get(&w).map(String::as_str)
    }
}

/// Clusters a timeline `addCluster` step creates later: planned for, built when asked.
pub fn deferred_clusters(estate: &Estate) -> std::collections::BTreeSet<String> {
    estate
        .scenario
        .spec
        .operations
        .timeline
        .iter()
        .filter(|s| s.action == plinth_model::kinds::scenario::TimelineAction::AddCluster)
        .filter_map(|s| s.cluster.clone())
        .collect()
}

fn tolerates(spec: &PodSpec, taint: &Taint) -> bool {
    if taint.effect == TaintEffect::PreferNoSchedule {
        return true;
    }
    spec.tolerations.iter().flatten().any(|t| {
        let key_ok = t
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || k == taint.key);
        let op_exists = t.operator.as_deref() == Some("Exists");
        let value_ok = op_exists || t.value.as_deref().unwrap_or_default() == taint.value;
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == format!("{:?}", taint.effect));
        key_ok && value_ok && effect_ok
    })
}

/// True when the pool's node labels satisfy one `nodeSelectorTerm` (all its expressions);
/// per-node labels (hostname, zone, instance type) are left to the scheduler.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>) -> bool {
    term.match_expressions.iter().flatten().all(|e| {
        if PER_NODE_LABELS.contains(&e.key.as_str()) {
            return true;
        }
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        let number = |v: &str| v.parse::<i64>().ok();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            "Gt" => value
                .and_then(|v| number(v))
                .zip(values.first().and_then(|v| number(v)))
                .is_some_and(|(a, b)| a > b),
            "Lt" => value
                .and_then(|v| number(v))
                .zip(values.first().and_then(|v| number(v)))
                .is_some_and(|(a, b)| a < b),
            _ => false,
        }
    })
}

/// Why `spec` cannot run on `pool`'s nodes, if it cannot: nodeSelector, required node
/// affinity (any of its terms) and taints, against the labels every node of the pool has.
fn pool_rejects(spec: &PodSpec, pool: &NodePool, region: &str) -> Option<String> {
    let labels = pool_labels(region, pool);
    for (k, v) in spec.node_selector.iter().flatten() {
        if PER_NODE_LABELS.contains(&k.as_str()) {
            continue;
        }
        if labels.get(k) != Some(v) {
            return Some(format!("pool {} lacks label {k}={v}", pool.name));
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(selector) = required
        && !selector
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, &labels))
    {
        return Some(format!(
            "pool {} does not match the required node affinity",
            pool.name
        ));
    }
    pool.taints
        .iter()
        .find(|t| !tolerates(spec, t))
        .map(|t| format!("pool {} has untolerated taint {}", pool.name, t.key))
}

/// Binds every workload's pods to the first pool (in declaration order) that admits them
/// and whose node VM holds one of them next to the pool's DaemonSets; DaemonSets go to
/// every pool that admits them. A workload no pool can hold is reported, never dropped.
pub fn bind_pods(estate: &Estate) -> Binding {
    let mut out = Binding::default();
    let region = region(estate);
    type Indexed<'a> = Vec<(usize, &'a Workload)>;
    let (daemons, others): (Indexed<'_>, Indexed<'_>) = estate
        .workloads
        .iter()
        .enumerate()
        .partition(|(_, w)| w.id.kind == WorkloadKind::DaemonSet);
    for (_, w) in daemons {
        let Some(cluster) = estate.cluster(&w.id.cluster) else {
            continue;
        };
        for p in cluster
            .spec
            .node_pools
            .iter()
            .filter(|p| pool_rejects(&w.pod, p, &region).is_none())
        {
            let d = out
                .daemons
                .entry(w.id.cluster.clone())
                .or_default()
                .entry(p.name.clone())
                .or_insert((Resources::ZERO, 0));
            d.0 += w.requests;
            d.1 += 1;
        }
    }
    for (wi, w) in others {
        let Some(cluster) = estate.cluster(&w.id.cluster) else {
            continue;
        };
        let mut reasons = Vec::new();
        let chosen = cluster.spec.node_pools.iter().find(|p| {
            if let Some(r) = pool_rejects(&w.pod, p, &region) {
                reasons.push(r);
                return false;
            }
            let k = kubelet(&out, &w.id.cluster, p);
            let room = vm_allocatable(estate, p) - k.reserved;
            if k.pod_limit(p.vcpu) == 0 {
                reasons.push(format!(
                    "pool {}: maxPods leaves no room next to its DaemonSets",
                    p.name
                ));
                false
            } else if !w.requests.fits_in(&room) {
                reasons.push(format!(
                    "pool {}: a node offers {room} after reservations and DaemonSets",
                    p.name
                ));
                false
            } else {
                true
            }
        });
        match chosen {
            Some(p) if w.replicas > 0 => {
                out.pool_of.insert(wi, p.name.clone());
                out.pods
                    .entry(w.id.cluster.clone())
                    .or_default()
                    .entry(p.name.clone())
                    .or_default()
                    .push(PodShape {
                        requests: w.requests,
                        count: w.replicas,
                    });
            }
            Some(_) => {}
            None => {
                let reason = if reasons.is_empty() {
                    "the cluster has no worker pools".to_owned()
                } else {
                    reasons.join("; ")
                };
                out.unbound.push(Unbound {
                    workload: format!("{} (requests {} per pod)", w.id, w.requests),
                    reason,
                });
            }
        }
    }
    out
}

/// The kubelet of `pool`'s nodes with its cluster's DaemonSets counted as reservations.
pub fn kubelet(estate_binding: &Binding, cluster: &str, pool: &NodePool) -> Kubelet {
    let (daemon, daemons) = estate_binding
        .daemons
        .get(cluster)
        .and_then(|d| d.get(&pool.name))
        .copied()
        .unwrap_or((Resources::ZERO, 0));
    Kubelet {
        reserved: pool.reserved.total() + daemon,
        max_pods: pool.max_pods.saturating_sub(daemons),
        pods_per_core: (pool.pods_per_core > 0).then_some(pool.pods_per_core),
    }
}

/// The headroom rule of the estate's Scenario, for `surge_vms` surge nodes.
fn rule(estate: &Estate) -> HeadroomRule {
    let r = &estate.scenario.spec.requirements;
    HeadroomRule {
        host_failures: r.host_failures_to_tolerate,
        maintenance: r.hosts_in_maintenance,
        surge: u32::from(r.upgrade_surge),
    }
}

fn priority(p: ModelPriority) -> RestartPriority {
    match p {
        ModelPriority::Low => RestartPriority::Low,
        ModelPriority::Medium => RestartPriority::Medium,
        ModelPriority::High => RestartPriority::High,
        ModelPriority::Highest => RestartPriority::Highest,
    }
}

fn price(estate: &Estate, class: &str) -> u64 {
    let sheet = &estate.price_sheet.spec;
    let money = sheet
        .servers
        .get(class)
        .map_or(sheet.default_server_price, |s| s.price);
    u64::try_from(money.0 / plinth_model::quantity::Money::MICROS).unwrap_or(0)
}

fn vm_demand(vcpu: u32, memory: u64, disk: u64) -> Resources {
    Resources::new(u64::from(vcpu) * 1000, memory, disk)
}

/// A node VM's allocatable: its size less the hypervisor's performance overhead.
pub(crate) fn vm_allocatable(estate: &Estate, pool: &NodePool) -> Resources {
    let o = &estate.virtualized.spec.performance_overhead;
    let scale = |v: u64, loss: f64| (v as f64 * (1.0 - loss.clamp(0.0, 1.0))).floor() as u64;
    Resources::new(
        scale(u64::from(pool.vcpu) * 1000, o.cpu),
        scale(pool.memory.0, o.memory),
        pool.disk.0,
    )
}

/// How many node VMs each pool (`cluster`, `pool`) has.
pub type PoolSizes = BTreeMap<(String, String), u32>;

/// The racks' zones: zone names in order of first appearance, and each rack's zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zones {
    /// Zone names, indexed by [`ZoneId`].
    pub names: Vec<String>,
    /// Rack index → its zone.
    pub of_rack: Vec<ZoneId>,
}

impl Zones {
    /// The zones of the estate's racks (a rack's declared zone, else its name); one zone
    /// `new` when the Inventory has no racks.
    pub fn of(estate: &Estate) -> Self {
        let inv = &estate.inventory.spec;
        let mut out = Self::default();
        for r in 0..inv.racks.len() {
            let name = inv.zone_of_rack(r).unwrap_or("new");
            let id = match out.names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    out.names.push(name.to_owned());
                    out.names.len() - 1
                }
            };
            out.of_rack
                .push(ZoneId(u32::try_from(id).unwrap_or(u32::MAX)));
        }
        if out.names.is_empty() {
            out.names.push("new".to_owned());
            out.of_rack.push(ZoneId(0));
        }
        out
    }

    /// The name of `zone`.
    pub fn name(&self, zone: ZoneId) -> &str {
        self.names
            .get(zone.0 as usize)
            .map_or("new", String::as_str)
    }
}

/// The virtualized design as a capacity problem: every node VM and legacy VM on one pool.
/// A pool gets the node VMs `nodes` gives it, else its declared replicas.
pub fn virtualized_problem(estate: &Estate, nodes: &PoolSizes) -> CapacityProblem {
    let env = &estate.virtualized.spec;
    let reservation = host_reservation(env);
    let classes = estate
        .inventory
        .spec
        .host_classes
        .iter()
        .map(|c| HostClass {
            name: c.name.clone(),
            capacity: c.capacity() - Resources::new(reservation.cpu.0, reservation.memory.0, 0),
            price: price(estate, &c.name),
        })
        .collect();
    let owned = estate
        .hosts
        .iter()
        .filter(|h| h.role == HostRole::Active)
        .map(|h| OwnedHost {
            name: h.name.clone(),
            class: h.class,
            rack: RackId(u32::try_from(h.rack).unwrap_or(0)),
        })
        .collect();
    let mut groups = Vec::new();
    let mut vms = Vec::new();
    let mut group = |name: String, policy| {
        groups.push(Group { name, policy });
        GroupId(u32::try_from(groups.len() - 1).unwrap_or(u32::MAX))
    };
    for c in &estate.clusters {
        let cp = &c.spec.control_plane;
        let g = group(format!("{}-cp", c.name), cp.placement);
        for i in 0..cp.replicas {
            vms.push(
                VmSpec::new(
                    format!("{}{i}", node_prefix(&c.name, CONTROL_PLANE_POOL)),
                    vm_demand(cp.vcpu, cp.memory.0, cp.disk.0),
                )
                .in_group(g)
                .with_priority(priority(cp.restart_priority)),
            );
        }
        for p in &c.spec.node_pools {
            let g = group(format!("{}-{}", c.name, p.name), p.placement);
            let n = nodes
                .get(&(c.name.clone(), p.name.clone()))
                .copied()
                .unwrap_or(p.replicas);
            for i in 0..n {
                vms.push(
                    VmSpec::new(
                        format!("{}{i}", node_prefix(&c.name, &p.name)),
                        vm_demand(p.vcpu, p.memory.0, p.disk.0),
                    )
                    .in_group(g)
                    .with_priority(priority(p.restart_priority)),
                );
            }
        }
    }
    for v in &estate.vm_sets {
        let g = group(v.name.clone(), v.spec.placement);
        for i in 0..v.spec.count {
            vms.push(
                VmSpec::new(
                    format!("{}-{i}", v.name),
                    vm_demand(v.spec.vcpu, v.spec.memory.0, v.spec.disk.0),
                )
                .in_group(g)
                .with_priority(priority(v.spec.restart_priority)),
            );
        }
    }
    CapacityProblem {
        classes,
        owned,
        racks: estate
            .inventory
            .spec
            .racks
            .iter()
            .map(|r| r.name.clone())
            .collect(),
        groups,
        vms,
        config: pool_config(estate),
        rule: rule(estate),
    }
}

/// The Environment's placement settings. `failoverHosts` sizes like the headroom rule's
/// host failures (F idle hosts); the planner checks those directly, so admission is off.
pub fn pool_config(estate: &Estate) -> PoolConfig {
    let env = &estate.virtualized.spec;
    let permille = |r: f64| (r * 1000.0).round().clamp(1.0, f64::from(u32::MAX)) as u32;
    let failures = estate.scenario.spec.requirements.host_failures_to_tolerate;
    let admission = if !env.ha.enabled {
        AdmissionPolicy::Disabled
    } else {
        match env.ha.admission_control {
            AdmissionControl::Percentage => AdmissionPolicy::Percentage {
                host_failures: failures,
            },
            AdmissionControl::Slots => AdmissionPolicy::Slots {
                host_failures: failures,
            },
            AdmissionControl::FailoverHosts => AdmissionPolicy::Disabled,
        }
    };
    PoolConfig {
        overcommit: Overcommit {
            cpu_permille: permille(env.overcommit.cpu),
            memory_permille: permille(env.overcommit.memory),
        },
        vm_overhead: Resources::new(env.per_vm_overhead.cpu.0, env.per_vm_overhead.memory.0, 0),
        strategy: env.placement_strategy,
        admission,
    }
}

/// How many more VMs of one placement group fit, and what stops the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupHeadroom {
    /// The placement group (`cluster-pool`, `cluster-cp` or a VirtualMachineSet).
    pub group: String,
    /// More VMs of the group's shape that fit.
    pub more: u32,
    /// Why the next one does not fit; `None` when `limit` was reached.
    pub stopped_by: Option<PlacementError>,
}

/// The whole design of a [`CapacityProblem`] placed on its owned hosts, from which each
/// placement group's headroom is asked independently (each question works on its own copy
/// of the placed state, so they may be asked in any order, or in parallel).
#[derive(Clone, Debug)]
pub struct HeadroomTrials {
    /// The owned hosts with every VM of the design placed.
    placed: PoolState,
    /// Each group that has a VM: its name and the shape of its first VM, in group order.
    shapes: Vec<(String, VmSpec)>,
}

impl HeadroomTrials {
    /// Places the whole design of `problem` on its owned hosts.
    pub fn new(problem: &CapacityProblem) -> Result<Self, PlacementError> {
        let hosts: Vec<HostSpec> = problem
            .owned
            .iter()
            .map(|h| HostSpec::new(h.name.clone(), h.rack, problem.classes[h.class].capacity))
            .collect();
        let pool = problem.pool(hosts, problem.groups.clone(), problem.config.clone())?;
        let placed = place_all(pool, problem.vms.clone()).state;
        Ok(Self {
            placed,
            shapes: first_member_shapes(problem),
        })
    }

    /// How many groups have a headroom question.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Whether no group has a VM.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// How many more VMs of the `i`-th group's shape fit (at most `limit`), or `None`
    /// past the last group.
    pub fn ask(&self, i: usize, limit: u32) -> Option<GroupHeadroom> {
        let (name, shape) = self.shapes.get(i)?;
        let h = headroom(&self.placed, shape, limit);
        Some(GroupHeadroom {
            group: name.clone(),
            more: h.more,
            stopped_by: h.stopped_by,
        })
    }
}

/// The shape of each group's first VM (named after the group), for the groups that have
/// one, in group order: one pass over the VMs.
fn first_member_shapes(problem: &CapacityProblem) -> Vec<(String, VmSpec)> {
    let mut first: Vec<Option<&VmSpec>> = vec![None; problem.groups.len()];
    for vm in &problem.vms {
        if let Some(slot) = vm.group.and_then(|g| first.get_mut(g.0 as usize))
            && slot.is_none()
        {
            *slot = Some(vm);
        }
    }
    problem
        .groups
        .iter()
        .zip(first)
        .filter_map(|(group, vm)| {
            let shape = VmSpec {
                name: group.name.clone(),
                ..vm?.clone()
            };
            Some((group.name.clone(), shape))
        })
        .collect()
}

/// The bare-metal design's servers per cluster; `scheduling` gives the fewest nodes a
/// pool's pods need by their scheduling constraints (`cluster`, `pool`), when known.
pub fn bare_metal_problem(
    estate: &Estate,
    binding: &Binding,
    scheduling: &BTreeMap<(String, String), u32>,
) -> BareMetalProblem {
    let classes = estate
        .inventory
        .spec
        .host_classes
        .iter()
        .map(|c| ServerClass {
            name: c.name.clone(),
            capacity: c.capacity(),
            cores: c.cores(),
            price: price(estate, &c.name),
        })
        .collect();
    let servers = estate
        .hosts
        .iter()
        .filter(|h| h.role == HostRole::Active)
        .map(|h| Server {
            name: h.name.clone(),
            class: h.class,
            rack: h.rack,
        })
        .collect();
    let clusters = estate
        .clusters
        .iter()
        .map(|c| ClusterDemand {
            name: c.name.clone(),
            control_plane: NodePoolDemand {
                name: "control-plane".to_owned(),
                replicas: c.spec.control_plane.replicas,
                scheduling: 0,
                declared_size: None,
                // One member: its declared size (etcd, API server, scheduler, controllers).
                pods: vec![PodShape {
                    requests: Resources::new(
                        u64::from(c.spec.control_plane.vcpu) * 1000,
                        c.spec.control_plane.memory.0,
                        0,
                    ),
                    count: 1,
                }],
                kubelet: Kubelet::default(),
            },
            stacked: estate.bare_metal.spec.control_plane.placement
                == ControlPlanePlacement::Stacked,
            pools: c
                .spec
                .node_pools
                .iter()
                .map(|p| NodePoolDemand {
                    name: p.name.clone(),
                    replicas: p.bounds().0.max(p.replicas),
                    scheduling: scheduling
                        .get(&(c.name.clone(), p.name.clone()))
                        .copied()
                        .unwrap_or(0),
                    declared_size: Some(Resources::new(u64::from(p.vcpu) * 1000, p.memory.0, 0)),
                    pods: binding
                        .pods
                        .get(&c.name)
                        .and_then(|m| m.get(&p.name))
                        .cloned()
                        .unwrap_or_default(),
                    kubelet: kubelet(binding, &c.name, p),
                })
                .collect(),
        })
        .collect();
    BareMetalProblem {
        classes,
        servers,
        clusters,
        rule: rule(estate),
        spares: estate.bare_metal.spec.spares.scope,
    }
}

/// The separate virtualization pool a bare-metal design needs for the VirtualMachineSets:
/// the owned servers no cluster took (`spare`) first, then bought ones; `None` without VM sets.
pub fn bare_metal_vm_pool(estate: &Estate, spare: &[String]) -> Option<CapacityProblem> {
    if estate.vm_sets.is_empty() {
        return None;
    }
    let mut problem = virtualized_problem(
        &Estate {
            clusters: Vec::new(),
            workloads: Vec::new(),
            ..estate.clone()
        },
        &PoolSizes::new(),
    );
    problem.owned.retain(|h| spare.contains(&h.name));
    Some(problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Toleration;
    use plinth_model::kinds::cluster::Reserved;

    fn pool(labels: &[(&str, &str)], taints: &[(&str, TaintEffect)]) -> NodePool {
        NodePool {
            name: "p".into(),
            vcpu: 4,
            memory: plinth_model::quantity::ByteSize(16 << 30),
            disk: plinth_model::quantity::ByteSize(0),
            replicas: 1,
            min: None,
            max: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            taints: taints
                .iter()
                .map(|(k, e)| Taint {
                    key: k.to_string(),
                    value: String::new(),
                    effect: *e,
                })
                .collect(),
            max_pods: 110,
            pods_per_core: 0,
            reserved: Reserved::default(),
            upgrade: Default::default(),
            restart_priority: Default::default(),
            host_rules: Vec::new(),
            placement: plinth_model::policy::PlacementPolicy::WORKER_DEFAULT,
        }
    }

    #[test]
    fn node_selector_must_match_pool_labels() {
        let spec = PodSpec {
            node_selector: Some([("disk".to_string(), "ssd".to_string())].into()),
            ..Default::default()
        };
        assert!(pool_rejects(&spec, &pool(&[("disk", "ssd")], &[]), "r").is_none());
        assert_eq!(
            pool_rejects(&spec, &pool(&[], &[]), "r").as_deref(),
            Some("pool p lacks label disk=ssd")
        );
    }

    #[test]
    fn taints_need_tolerations_except_prefer_no_schedule() {
        let plain = PodSpec::default();
        assert!(
            pool_rejects(
                &plain,
                &pool(&[], &[("gpu", TaintEffect::PreferNoSchedule)]),
                "r"
            )
            .is_none()
        );
        assert!(
            pool_rejects(&plain, &pool(&[], &[("gpu", TaintEffect::NoSchedule)]), "r").is_some()
        );
        let tolerant = PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some("gpu".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(
            pool_rejects(
                &tolerant,
                &pool(&[], &[("gpu", TaintEffect::NoSchedule)]),
                "r"
            )
            .is_none()
        );
    }
}
