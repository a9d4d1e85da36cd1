//! The two designs built from one input, as static facts: which servers each uses, what
//! runs where, and how its capacity splits into workload, overhead and idle. The
//! simulator's own setup builds them, so what is costed is exactly what is simulated.

use std::collections::{BTreeMap, BTreeSet};

use plinth_model::Resources;
use plinth_model::estate::Estate;
use plinth_model::kinds::environment::{EnvironmentType, host_reservation};
use plinth_model::kinds::inventory::HostRole;
use plinth_model::kinds::{UsageProfile, cluster::ClusterSpec};
use plinth_placement::PlacementError;
use plinth_placement::baremetal::Role;
use plinth_placement::capacity::CapacityProblem;
use plinth_placement::designs::{GroupHeadroom, HeadroomTrials};
use plinth_placement::plan::DesignPlan;
use plinth_sim::{Options, Setup, setup};
use rayon::prelude::*;
use serde::Serialize;

use crate::CompareError;

/// What runs on one server of a design.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// Server name (`new-…` when bought).
    pub name: String,
    /// Index into the inventory's host classes.
    pub class: usize,
    /// Rack name (`new` for a bought server the plan put in no rack).
    pub rack: String,
    /// Whether the estate already owns it.
    pub owned: bool,
    /// Clusters with a node or control-plane member on it.
    pub clusters: BTreeSet<String>,
    /// VirtualMachineSets with a VM on it.
    pub vm_sets: BTreeSet<String>,
    /// Distinct (OS image, Kubernetes version) stacks of its nodes.
    pub stacks: BTreeSet<(String, String)>,
    /// Kubernetes nodes on it.
    pub nodes: u32,
    /// VMs on it (node VMs and VirtualMachineSet VMs; 0 on a bare-metal node server).
    pub vms: u32,
    /// Pods expected on it: each pool's pods spread evenly over the pool's nodes.
    pub pods: f64,
    /// The cluster of each control-plane member on it (a cluster repeats when two of
    /// its members share the server).
    pub control_plane: Vec<String>,
}

/// A design's capacity split the OpenCost way: every unit is workload, overhead or idle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    /// Physical capacity of every server used.
    pub capacity: Resources,
    /// Pod requests and VirtualMachineSet VM sizes.
    pub workload: Resources,
    /// Hypervisor and storage reservations, per-VM overhead, control planes, kubelet
    /// reservations and DaemonSets.
    pub overhead: Resources,
}

impl Split {
    /// What neither workload nor overhead holds (after scaling an overcommitted sum down
    /// to the physical capacity).
    pub fn idle(&self) -> Resources {
        let (w, o) = self.physical();
        self.capacity.saturating_sub(&(w + o))
    }

    /// Workload and overhead in physical units: when overcommit makes their sum exceed the
    /// capacity of a resource, both are scaled down in proportion.
    pub fn physical(&self) -> (Resources, Resources) {
        let scale = |w: u64, o: u64, cap: u64| {
            let sum = u128::from(w) + u128::from(o);
            if sum <= u128::from(cap) || sum == 0 {
                (w, o)
            } else {
                let f = |x: u64| (u128::from(x) * u128::from(cap) / sum) as u64;
                (f(w), f(o))
            }
        };
        let (wc, oc) = scale(
            self.workload.cpu_millis,
            self.overhead.cpu_millis,
            self.capacity.cpu_millis,
        );
        let (wm, om) = scale(
            self.workload.memory_bytes,
            self.overhead.memory_bytes,
            self.capacity.memory_bytes,
        );
        (Resources::new(wc, wm, 0), Resources::new(oc, om, 0))
    }
}

/// One environment's design.
#[derive(Clone, Debug)]
pub struct Design {
    /// Which environment.
    pub env: EnvironmentType,
    /// Every server it uses, the bare-metal design's VM pool included.
    pub machines: Vec<Machine>,
    /// Owned active servers it leaves unused.
    pub surplus: Vec<String>,
    /// Why it fails the service check (every workload placed under the headroom rule);
    /// empty when it passes.
    pub failures: Vec<String>,
    /// Capacity split.
    pub split: Split,
    /// Free capacity on servers that cannot use it: on bare metal, what a cluster's
    /// servers hold beyond its pods; on virtualized hosts, CPU or memory left where the
    /// other resource is too full for the smallest VM.
    pub stranded: Resources,
    /// Kubernetes nodes.
    pub nodes: u32,
    /// vCPUs of the worker node VMs (0 on bare metal).
    pub node_vcpus: u64,
    /// vCPUs of the control-plane VMs (0 on bare metal).
    pub control_plane_vcpus: u64,
    /// Allocatable milli-CPU of one node, per pool (`cluster/pool`).
    pub node_cpu: BTreeMap<String, u64>,
    /// Allocatable milli-CPU of every worker node, per cluster.
    pub worker_cpu: BTreeMap<String, u64>,
    /// Mean CPU and memory demand of the VirtualMachineSets per hour of the day, milli-CPU
    /// and bytes (the bare-metal VM pool is not simulated; its usage comes from here).
    pub vm_pool_usage: [(f64, f64); 24],
    /// Physical capacity of the bare-metal VM pool (zero otherwise).
    pub vm_pool_capacity: Resources,
    /// Virtualized: how many more VMs of each placement group fit on the owned hosts
    /// (at most [`GROWTH_LIMIT`]); empty on bare metal.
    pub headroom: Vec<GroupHeadroom>,
    /// Why each server is there, by role.
    pub roles: Vec<RoleRow>,
    /// Servers of the design that stand idle, ready to become a node without a purchase:
    /// the bare-metal surge servers (0 on the virtualized pool, whose spare room is in
    /// `headroom`).
    pub idle_spares: u32,
}

/// The virtualized design's role table: one pool for everything.
fn pool_roles(estate: &Estate, hosts: usize, vms: usize) -> Vec<RoleRow> {
    let r = &estate.scenario.spec.requirements;
    vec![RoleRow {
        cluster: String::new(),
        role: "virtualization pool".into(),
        servers: hosts as u32,
        why: format!(
            "the fewest hosts that hold all {vms} VMs (node, control-plane and VirtualMachineSet VMs) with room for {} host failure(s), {} host(s) in maintenance{}",
            r.host_failures_to_tolerate,
            r.hosts_in_maintenance,
            if r.upgrade_surge {
                " and one upgrade surge"
            } else {
                ""
            }
        ),
    }]
}

/// Why a design has some of its servers: one row of the role table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRow {
    /// The cluster (empty for the pool shared by every cluster).
    pub cluster: String,
    /// The role: `control plane`, `pool <name>`, `surge`, `virtualization pool`, `VM pool`.
    pub role: String,
    /// Servers it takes.
    pub servers: u32,
    /// The rule that set the count.
    pub why: String,
}

/// Most extra VMs of one group the headroom question counts.
pub const GROWTH_LIMIT: u32 = 1000;

/// Places the whole design of `problem` on its owned hosts, then asks, group by group (in
/// parallel, answers in group order), how many more VMs of the group's shape fit (at most
/// `limit`).
pub fn group_headroom(
    problem: &CapacityProblem,
    limit: u32,
) -> Result<Vec<GroupHeadroom>, PlacementError> {
    let trials = HeadroomTrials::new(problem)?;
    Ok((0..trials.len())
        .into_par_iter()
        .filter_map(|i| trials.ask(i, limit))
        .collect())
}

impl Design {
    /// Servers used.
    pub fn servers(&self) -> usize {
        self.machines.len()
    }
}

/// The fraction of a request used at `hour` of the day under `usage`.
pub fn usage_at(usage: &UsageProfile, hour: u8) -> f64 {
    let Ok((start, end)) = usage.peak_window() else {
        return usage.mean;
    };
    let inside = if start <= end {
        (start..end).contains(&hour)
    } else {
        hour >= start || hour < end
    };
    if inside { usage.peak } else { usage.mean }
}

fn stack(c: &ClusterSpec) -> (String, String) {
    (c.os_image.clone(), c.kubernetes_version.clone())
}

fn sim_options(env: EnvironmentType) -> Options {
    Options {
        env,
        seed: 0,
        duration: 0,
        input: plinth_events::InputDigest::default(),
    }
}

/// Builds the design of `estate` for `env`.
pub fn design(estate: &Estate, env: EnvironmentType) -> Result<Design, CompareError> {
    match env {
        EnvironmentType::Virtualized => virtualized(estate),
        EnvironmentType::BareMetal => bare_metal(estate),
    }
}

fn class_index(estate: &Estate, name: &str) -> usize {
    estate
        .inventory
        .spec
        .host_classes
        .iter()
        .position(|c| c.name == name)
        .unwrap_or(0)
}

/// Machines of a simulator setup, with nodes and pods filled in from `node_host`.
fn machines(estate: &Estate, s: &Setup, node_host: &BTreeMap<&str, usize>) -> Vec<Machine> {
    let owned: BTreeSet<&str> = estate.hosts.iter().map(|h| h.name.as_str()).collect();
    let mut out: Vec<Machine> = s
        .hosts
        .iter()
        .map(|h| Machine {
            name: h.name.clone(),
            class: class_index(estate, &h.class),
            rack: h.rack.clone(),
            owned: owned.contains(h.name.as_str()),
            ..Machine::default()
        })
        .collect();
    // Pods where the scheduler bound them at the start.
    for p in &s.pods {
        if let Some((_, node)) = &p.initial
            && let Some(&h) = node_host.get(node.as_str())
        {
            out[h].pods += 1.0;
        }
    }
    for n in &s.nodes {
        let Some(&h) = node_host.get(n.name.as_str()) else {
            continue;
        };
        let c = &estate.clusters[n.cluster];
        let m = &mut out[h];
        m.nodes += 1;
        m.clusters.insert(c.name.clone());
        m.stacks.insert(stack(&c.spec));
    }
    out
}

/// Allocatable milli-CPU per node of each pool, and per cluster in all.
fn worker_cpu(s: &Setup) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let (mut per_node, mut per_cluster) = (BTreeMap::new(), BTreeMap::new());
    for n in &s.nodes {
        per_node.insert(n.pool.clone(), n.allocatable.cpu_millis);
        let cluster = estate_cluster_name(s, n.cluster);
        *per_cluster.entry(cluster).or_insert(0) += n.allocatable.cpu_millis;
    }
    (per_node, per_cluster)
}

fn estate_cluster_name(s: &Setup, cluster: usize) -> String {
    s.estate
        .clusters
        .get(cluster)
        .map_or_else(String::new, |c| c.name.clone())
}

fn pod_requests(s: &Setup) -> Resources {
    s.pods
        .iter()
        .fold(Resources::ZERO, |acc, p| acc + p.requests)
}

fn vm_set_usage(estate: &Estate) -> [(f64, f64); 24] {
    let mut out = [(0.0, 0.0); 24];
    for v in &estate.vm_sets {
        let n = f64::from(v.spec.count);
        for (h, slot) in out.iter_mut().enumerate() {
            let u = usage_at(&v.spec.usage, h as u8);
            slot.0 += n * f64::from(v.spec.vcpu) * 1000.0 * u;
            slot.1 += n * v.spec.memory.0 as f64 * u;
        }
    }
    out
}

fn vm_set_demand(estate: &Estate) -> Resources {
    estate.vm_sets.iter().fold(Resources::ZERO, |acc, v| {
        let n = u64::from(v.spec.count);
        acc + Resources::new(
            n * u64::from(v.spec.vcpu) * 1000,
            n.saturating_mul(v.spec.memory.0),
            0,
        )
    })
}

fn surplus(estate: &Estate, used: &[Machine]) -> Vec<String> {
    let used: BTreeSet<&str> = used.iter().map(|m| m.name.as_str()).collect();
    estate
        .hosts
        .iter()
        .filter(|h| h.role == HostRole::Active && !used.contains(h.name.as_str()))
        .map(|h| h.name.clone())
        .collect()
}

/// What keeps a design from serving every workload: workloads no pool admits, and pods
/// the scheduler can place nowhere.
fn unserved(estate: &Estate, s: &Setup) -> Vec<String> {
    let unbound = s
        .binding
        .unbound
        .iter()
        .map(|u| format!("workload {} has no pool: {}", u.workload, u.reason));
    let pending = s.pending.iter().map(|p| {
        format!(
            "{} pod(s) of {} are Pending: {}",
            p.pods, estate.workloads[p.workload].id, p.explanation
        )
    });
    unbound.chain(pending).collect()
}

fn virtualized(estate: &Estate) -> Result<Design, CompareError> {
    let env = EnvironmentType::Virtualized;
    let s = setup(estate, &sim_options(env)).map_err(|source| CompareError::Design {
        env: "virtualized",
        source,
    })?;
    let spec = &estate.virtualized.spec;
    let mut node_host = BTreeMap::new();
    for (vm, &h) in &s.vms {
        node_host.insert(vm.as_str(), h);
    }
    let mut machines = machines(estate, &s, &node_host);
    // Owners of each placement group.
    let mut cp_group = BTreeMap::new();
    for c in &estate.clusters {
        cp_group.insert(format!("{}-cp", c.name), c);
    }
    let sets: BTreeSet<&str> = estate.vm_sets.iter().map(|v| v.name.as_str()).collect();
    let mut overhead = Resources::ZERO;
    let mut node_vcpus = 0;
    let mut control_plane_vcpus = 0;
    let per_vm = Resources::new(spec.per_vm_overhead.cpu.0, spec.per_vm_overhead.memory.0, 0);
    let nodes: BTreeMap<&str, Resources> = s
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.allocatable))
        .collect();
    let mut smallest: Option<Resources> = None;
    if let Some(pool) = s.control.pool() {
        for (vm, host) in pool.placements() {
            let Some(v) = pool.vm(vm) else { continue };
            let m = &mut machines[host.index()];
            m.vms += 1;
            overhead += per_vm;
            smallest = Some(smallest.map_or(v.demand, |s| Resources {
                cpu_millis: s.cpu_millis.min(v.demand.cpu_millis),
                memory_bytes: s.memory_bytes.min(v.demand.memory_bytes),
                disk_bytes: 0,
            }));
            let group = v
                .group
                .and_then(|g| pool.pool().groups().get(g.0 as usize))
                .map(|g| g.name.as_str())
                .unwrap_or_default();
            if let Some(c) = cp_group.get(group) {
                m.clusters.insert(c.name.clone());
                m.stacks.insert(stack(&c.spec));
                m.control_plane.push(c.name.clone());
                control_plane_vcpus += v.demand.cpu_millis / 1000;
                overhead += Resources::new(v.demand.cpu_millis, v.demand.memory_bytes, 0);
            } else if sets.contains(group) {
                m.vm_sets.insert(group.to_owned());
            } else if let Some(alloc) = nodes.get(v.name.as_str()) {
                node_vcpus += v.demand.cpu_millis / 1000;
                // What the node VM holds beyond its allocatable: kubelet and system
                // reservations, DaemonSets, and the performance lost to the hypervisor.
                overhead += Resources::new(v.demand.cpu_millis, v.demand.memory_bytes, 0)
                    .saturating_sub(alloc);
            }
        }
    }
    let reservation = host_reservation(spec);
    let mut capacity = Resources::ZERO;
    let mut stranded = Resources::ZERO;
    for (i, m) in machines.iter().enumerate() {
        let cap = estate.inventory.spec.host_classes[m.class].capacity();
        capacity += Resources::new(cap.cpu_millis, cap.memory_bytes, 0);
        overhead += Resources::new(reservation.cpu.0, reservation.memory.0, 0);
        if let (Some(pool), Some(small)) = (s.control.pool(), smallest) {
            let free = pool.free(plinth_placement::HostId(i as u32));
            if free.memory_bytes < small.memory_bytes {
                stranded.cpu_millis += free.cpu_millis;
            }
            if free.cpu_millis < small.cpu_millis {
                stranded.memory_bytes += free.memory_bytes;
            }
        }
    }
    let mut failures = unserved(estate, &s);
    failures.extend(
        s.unplaced
            .iter()
            .map(|vm| format!("VM {vm} cannot be placed under the headroom rule")),
    );
    let surplus = surplus(estate, &machines);
    let headroom = match &s.design {
        DesignPlan::Virtualized(v) => group_headroom(&v.problem, GROWTH_LIMIT).unwrap_or_default(),
        DesignPlan::BareMetal(_) => Vec::new(),
    };
    let roles = pool_roles(
        estate,
        machines.len(),
        machines.iter().map(|m| m.vms as usize).sum(),
    );
    Ok(Design {
        env,
        surplus,
        failures,
        headroom,
        roles,
        idle_spares: 0,
        split: Split {
            capacity,
            workload: pod_requests(&s) + vm_set_demand(estate),
            overhead,
        },
        stranded,
        nodes: s.nodes.len() as u32,
        node_vcpus,
        control_plane_vcpus,
        node_cpu: worker_cpu(&s).0,
        worker_cpu: worker_cpu(&s).1,
        vm_pool_usage: [(0.0, 0.0); 24],
        vm_pool_capacity: Resources::ZERO,
        machines,
    })
}

fn bare_metal(estate: &Estate) -> Result<Design, CompareError> {
    let env = EnvironmentType::BareMetal;
    let s = setup(estate, &sim_options(env)).map_err(|source| CompareError::Design {
        env: "bare-metal",
        source,
    })?;
    let node_host: BTreeMap<&str, usize> = s
        .node_server
        .iter()
        .map(|(n, &h)| (n.as_str(), h))
        .collect();
    let mut machines = machines(estate, &s, &node_host);
    let DesignPlan::BareMetal(design) = &s.design else {
        return Err(CompareError::WrongDesign { env: "bare-metal" });
    };
    let plan = &design.servers;
    let classes = &estate.inventory.spec.host_classes;
    let mut overhead = Resources::ZERO;
    let mut capacity = Resources::ZERO;
    let allocatable: BTreeMap<usize, Resources> = s
        .nodes
        .iter()
        .filter_map(|n| node_host.get(n.name.as_str()).map(|&h| (h, n.allocatable)))
        .collect();
    // The simulator's setup lists each allocation's servers in plan order, owned first.
    let roles = plan
        .allocations
        .iter()
        .flat_map(|a| std::iter::repeat_n(a, a.owned.len() + a.to_buy as usize));
    for ((i, m), a) in machines.iter_mut().enumerate().zip(roles) {
        let cap = classes[m.class].capacity();
        let cap = Resources::new(cap.cpu_millis, cap.memory_bytes, 0);
        capacity += cap;
        match allocatable.get(&i) {
            Some(alloc) => overhead += cap.saturating_sub(alloc),
            // No worker node: a control-plane or surge server, all of it overhead.
            None => overhead += cap,
        }
        if a.role == Role::ControlPlane {
            m.clusters.insert(a.cluster.clone());
            if let Some(c) = estate.cluster(&a.cluster) {
                m.stacks.insert(stack(&c.spec));
            }
        }
    }
    // Control-plane members where the simulator runs them: their own servers
    // (dedicated) or worker servers (stacked).
    for cp in &s.control_planes {
        for member in &cp.members {
            if let Some(m) = machines.iter_mut().find(|m| &m.name == member) {
                m.control_plane.push(cp.cluster.clone());
            }
        }
    }
    let mut failures = unserved(estate, &s);
    let mut vm_pool_capacity = Resources::ZERO;
    if let Some((_, vm_plan)) = &design.vm_pool {
        match vm_plan {
            Ok(vm_plan) => {
                let reservation = host_reservation(&estate.virtualized.spec);
                let per_vm = &estate.virtualized.spec.per_vm_overhead;
                let vms: u32 = estate.vm_sets.iter().map(|v| v.spec.count).sum();
                overhead += Resources::new(
                    u64::from(vms) * per_vm.cpu.0,
                    u64::from(vms) * per_vm.memory.0,
                    0,
                );
                let owned: BTreeMap<&str, &plinth_model::estate::Host> =
                    estate.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
                let mut pool: Vec<Machine> = vm_plan
                    .host_names
                    .iter()
                    .filter_map(|name| owned.get(name.as_str()))
                    .map(|h| Machine {
                        name: h.name.clone(),
                        class: h.class,
                        rack: estate
                            .inventory
                            .spec
                            .racks
                            .get(h.rack)
                            .map_or_else(|| "new".into(), |r| r.name.clone()),
                        owned: true,
                        ..Machine::default()
                    })
                    .collect();
                for u in &vm_plan.per_class {
                    let class = class_index(estate, &u.class);
                    pool.extend((0..u.to_buy).map(|i| Machine {
                        name: format!("vm-pool-new-{}-{:02}", u.class, i + 1),
                        class,
                        rack: "new".into(),
                        ..Machine::default()
                    }));
                }
                let per_machine = vms.div_ceil(pool.len().max(1) as u32);
                for m in &mut pool {
                    let cap = classes[m.class].capacity();
                    vm_pool_capacity += Resources::new(cap.cpu_millis, cap.memory_bytes, 0);
                    overhead += Resources::new(reservation.cpu.0, reservation.memory.0, 0);
                    m.vm_sets = estate.vm_sets.iter().map(|v| v.name.clone()).collect();
                    m.vms = per_machine;
                }
                machines.extend(pool);
                capacity += vm_pool_capacity;
            }
            Err(e) => failures.push(format!("the separate VM pool cannot be built: {e}")),
        }
    }
    let surplus = surplus(estate, &machines);
    let mut roles: Vec<RoleRow> = plan
        .allocations
        .iter()
        .map(|a| RoleRow {
            cluster: a.cluster.clone(),
            role: a.role.to_string(),
            servers: a.nodes,
            why: a.reason(&design.problem.rule, plan.stacked(&a.cluster)),
        })
        .collect();
    let pool = machines.iter().filter(|m| !m.vm_sets.is_empty()).count();
    if pool > 0 {
        roles.push(RoleRow {
            cluster: String::new(),
            role: "VM pool".into(),
            servers: pool as u32,
            why:
                "a separate virtualization pool for the VirtualMachineSets, under the headroom rule"
                    .into(),
        });
    }
    let idle_spares = plan
        .allocations
        .iter()
        .filter(|a| a.role == Role::Surge)
        .map(|a| a.nodes)
        .sum();
    Ok(Design {
        env,
        surplus,
        failures,
        headroom: Vec::new(),
        roles,
        idle_spares,
        split: Split {
            capacity,
            workload: pod_requests(&s) + vm_set_demand(estate),
            overhead,
        },
        stranded: Resources::new(plan.stranded.cpu_millis, plan.stranded.memory_bytes, 0),
        nodes: s.nodes.len() as u32,
        node_vcpus: 0,
        control_plane_vcpus: 0,
        node_cpu: worker_cpu(&s).0,
        worker_cpu: worker_cpu(&s).1,
        vm_pool_usage: vm_set_usage(estate),
        vm_pool_capacity,
        machines,
    })
}
