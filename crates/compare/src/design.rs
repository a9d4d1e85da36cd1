//! The two designs built from one input, as static facts: which servers each uses, what
//! runs where, and how its capacity splits into workload, overhead and idle. The
//! simulator's own setup builds them, so what is costed is exactly what is simulated.

use std::collections::{BTreeMap, BTreeSet};

use plinth_control::PoolName;
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
    /// Physical capacity left after its VMs (virtualized hosts; zero on bare metal).
    pub free: Resources,
    /// What its control-plane VMs take from it (virtualized hosts; zero on bare metal).
    pub control_plane_footprint: Resources,
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

/// Capacity held for one cluster alone: a node (a node VM, or a server) or a role's servers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Held {
    /// Its allocatable (capacity less kubelet reservations), in its own units (vCPUs of a
    /// node VM, threads of a server).
    pub allocatable: Resources,
    /// What the cluster's pods (or control-plane members) on it request, in the same units.
    pub requested: Resources,
    /// Its units per physical unit: the pool's overcommit (CPU, memory) for a node VM,
    /// 1 for a server.
    pub overcommit: (f64, f64),
}

/// Free capacity of a machine any VM of the pool may use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SharedFree {
    /// Free physical capacity after what runs on it.
    pub free: Resources,
    /// What the smallest demand that may come to it takes from it, in physical units (CPU
    /// and memory taken separately).
    pub smallest: Resources,
}

/// Stranded capacity, one definition for both designs, in physical units: what is held
/// for one cluster and not requested by it (free, but no other cluster may use it), plus
/// the free capacity of a shared machine that its smallest demand cannot take because the
/// other resource is exhausted there.
pub fn stranded(held: &[Held], shared: &[SharedFree]) -> Resources {
    let physical = |units: u64, per: f64| (units as f64 / per.max(f64::MIN_POSITIVE)) as u64;
    let held = held.iter().fold(Resources::ZERO, |acc, h| {
        let left = h.allocatable.saturating_sub(&h.requested);
        acc + Resources::new(
            physical(left.cpu_millis, h.overcommit.0),
            physical(left.memory_bytes, h.overcommit.1),
            0,
        )
    });
    shared.iter().fold(held, |mut acc, m| {
        if m.free.memory_bytes < m.smallest.memory_bytes {
            acc.cpu_millis += m.free.cpu_millis;
        }
        if m.free.cpu_millis < m.smallest.cpu_millis {
            acc.memory_bytes += m.free.memory_bytes;
        }
        acc
    })
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
    /// Free capacity nothing can use, by [`stranded`]: what a node or a server held for
    /// one cluster offers beyond its requests, plus CPU or memory left on a shared host
    /// where the other resource is too full for the smallest VM.
    pub stranded: Resources,
    /// Kubernetes nodes.
    pub nodes: u32,
    /// vCPUs of the worker node VMs (0 on bare metal).
    pub node_vcpus: u64,
    /// vCPUs of the control-plane VMs (0 on bare metal).
    pub control_plane_vcpus: u64,
    /// Allocatable milli-CPU of one node, per pool.
    pub node_cpu: BTreeMap<PoolName, u64>,
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
    /// Bare metal: per cluster, the allocatable milli-CPU the owned servers no role uses
    /// would add as nodes of its best pool ([`surplus_node_cpu`]); empty on the
    /// virtualized pool, whose room is in `headroom`.
    pub surplus_node_cpu: BTreeMap<String, u64>,
    /// Servers of the design that stand idle, ready to become a node without a purchase:
    /// the bare-metal spare servers, shared or a cluster's own (0 on the virtualized pool,
    /// whose spare room is in `headroom`).
    pub idle_spares: u32,
    /// Bare metal with `shareServers`: the clusters merged into one.
    pub merges: Vec<plinth_model::merge::Merge>,
    /// Each merged workload's id in the design's runs → its id in the input.
    pub renamed: BTreeMap<String, String>,
}

impl Design {
    /// The cluster of the design that the input's cluster `name` is: the one it was
    /// merged into, or itself.
    pub fn cluster_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.merges
            .iter()
            .find(|m| m.members.iter().any(|x| x == name))
            .map_or(name, |m| m.into.as_str())
    }

    /// How many clusters the design runs: the input's, less those merged into another.
    pub fn cluster_count(&self, estate: &Estate) -> usize {
        let merged: usize = self.merges.iter().map(|m| m.members.len() - 1).sum();
        estate.clusters.len().saturating_sub(merged)
    }
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
    /// The cluster (empty for what every cluster shares: the virtualization pool, the spares).
    pub cluster: String,
    /// The role: `control plane`, `pool <name>`, `surge`, `spare`, `virtualization pool`, `VM pool`.
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
        let c = &s.estate.clusters[n.cluster];
        let m = &mut out[h];
        m.nodes += 1;
        m.clusters.extend(members(s, &c.name));
        m.stacks.insert(stack(&c.spec));
    }
    out
}

/// The input's clusters that `cluster` of the setup is: its merged members, or itself.
fn members(s: &Setup, cluster: &str) -> Vec<String> {
    s.merges
        .iter()
        .find(|m| m.into == cluster)
        .map_or_else(|| vec![cluster.to_owned()], |m| m.members.clone())
}

/// Allocatable milli-CPU per node of each pool, and per cluster in all.
fn worker_cpu(s: &Setup) -> (BTreeMap<PoolName, u64>, BTreeMap<String, u64>) {
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

/// Each node's allocatable and its pods' requests where the scheduler bound them at the
/// start, in node order.
fn node_requests(s: &Setup) -> Vec<(Resources, Resources)> {
    let index: BTreeMap<&str, usize> = s
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut out: Vec<(Resources, Resources)> = s
        .nodes
        .iter()
        .map(|n| (n.allocatable, Resources::ZERO))
        .collect();
    for p in &s.pods {
        if let Some((_, node)) = &p.initial
            && let Some(&i) = index.get(node.as_str())
        {
            out[i].1 += p.requests;
        }
    }
    out
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

/// Per cluster of a bare-metal setup, the allocatable milli-CPU the owned servers in
/// `surplus` would add as nodes of its best pool: each server's CPU less what that pool's
/// kubelet and DaemonSets reserve on a node (a bare-metal node is a whole server, and a
/// bare-metal setup's `pool_alloc` holds that reservation), in the unit the virtualized
/// pool's growth is counted in.
fn surplus_node_cpu(estate: &Estate, s: &Setup, surplus: &[String]) -> BTreeMap<String, u64> {
    let classes = &estate.inventory.spec.host_classes;
    let unused: BTreeSet<&str> = surplus.iter().map(String::as_str).collect();
    let cpus: Vec<u64> = estate
        .hosts
        .iter()
        .filter(|h| unused.contains(h.name.as_str()))
        .map(|h| classes[h.class].capacity().cpu_millis)
        .collect();
    let mut out = BTreeMap::new();
    for (pool, reserved) in &s.pool_alloc {
        let added: u64 = cpus
            .iter()
            .map(|cpu| cpu.saturating_sub(reserved.cpu_millis))
            .sum();
        let best = out.entry(pool.cluster.clone()).or_insert(0);
        *best = added.max(*best);
    }
    out
}

/// What keeps a design from serving every workload: workloads no pool admits, and pods
/// the scheduler can place nowhere.
fn unserved(s: &Setup) -> Vec<String> {
    let unbound = s
        .binding
        .unbound
        .iter()
        .map(|u| format!("workload {} has no pool: {}", u.workload, u.reason));
    let pending = s.pending.iter().map(|p| {
        format!(
            "{} pod(s) of {} are Pending: {}",
            p.pods, s.estate.workloads[p.workload].id, p.explanation
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
            // What the VM takes from a host: its demand after overcommit, plus per-VM overhead.
            let takes = pool.pool().footprint(v);
            smallest = Some(smallest.map_or(takes, |s| Resources {
                cpu_millis: s.cpu_millis.min(takes.cpu_millis),
                memory_bytes: s.memory_bytes.min(takes.memory_bytes),
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
                m.control_plane_footprint += takes;
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
    let mut shared = Vec::new();
    for (i, m) in machines.iter_mut().enumerate() {
        let cap = estate.inventory.spec.host_classes[m.class].capacity();
        capacity += Resources::new(cap.cpu_millis, cap.memory_bytes, 0);
        overhead += Resources::new(reservation.cpu.0, reservation.memory.0, 0);
        if let Some(pool) = s.control.pool() {
            m.free = pool.free(plinth_placement::HostId(i as u32));
        }
        if let Some(smallest) = smallest {
            shared.push(SharedFree {
                free: m.free,
                smallest,
            });
        }
    }
    // Each worker node VM is held for its cluster; a control-plane VM is its member's
    // size, all of it requested.
    let overcommit = (spec.overcommit.cpu, spec.overcommit.memory);
    let held: Vec<Held> = node_requests(&s)
        .into_iter()
        .map(|(allocatable, requested)| Held {
            allocatable,
            requested,
            overcommit,
        })
        .collect();
    let stranded = stranded(&held, &shared);
    let mut failures = unserved(&s);
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
        merges: Vec::new(),
        renamed: BTreeMap::new(),
        surplus_node_cpu: BTreeMap::new(),
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
        if a.role == Role::ControlPlane
            && let Some(cluster) = &a.cluster
        {
            m.clusters.extend(members(&s, cluster));
            if let Some(c) = s.estate.cluster(cluster) {
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
    let mut failures = unserved(&s);
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
            cluster: a.cluster.clone().unwrap_or_default(),
            role: a.role.to_string(),
            servers: a.nodes,
            why: a.reason(&design.problem, plan),
        })
        .collect();
    roles.extend(s.merges.iter().map(|m| RoleRow {
        cluster: m.into.clone(),
        role: "merged clusters".into(),
        servers: 0,
        why: format!(
            "{}: one OS image and Kubernetes version, merged into one cluster with a namespace \
             each (shareServers); its servers are counted above",
            m.members.join(", ")
        ),
    }));
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
        .filter(|a| matches!(a.role, Role::Surge | Role::Spare))
        .map(|a| a.nodes)
        .sum();
    Ok(Design {
        env,
        surplus_node_cpu: surplus_node_cpu(estate, &s, &surplus),
        surplus,
        failures,
        headroom: Vec::new(),
        roles,
        idle_spares,
        merges: s.merges.clone(),
        renamed: s.renamed.clone(),
        split: Split {
            capacity,
            workload: pod_requests(&s) + vm_set_demand(estate),
            overhead,
        },
        // Spares every cluster shares are free to any of them, as the virtualized pool's
        // HA reserve is: not stranded.
        stranded: stranded(
            &plan
                .allocations
                .iter()
                .filter(|a| a.cluster.is_some())
                .map(|a| Held {
                    allocatable: a.allocatable,
                    requested: a.requested,
                    overcommit: (1.0, 1.0),
                })
                .collect::<Vec<_>>(),
            &[],
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;

    /// The same facts give both designs the same number: a node held for one cluster
    /// strands what its pods do not request, whether it is a node VM or a server; a node
    /// VM holds its vCPUs and memory at the pool's overcommit.
    #[test]
    fn stranded_is_one_definition_for_both_designs() {
        let node = |overcommit| Held {
            allocatable: Resources::new(16_000, 64 * GI, 0),
            requested: Resources::new(8_000, 16 * GI, 0),
            overcommit,
        };
        let server = stranded(&[node((1.0, 1.0))], &[]);
        assert_eq!(server, Resources::new(8_000, 48 * GI, 0));
        assert_eq!(
            stranded(&[node((4.0, 1.0))], &[]),
            Resources::new(2_000, 48 * GI, 0),
            "8 unrequested vCPUs at 4:1 hold 2 threads"
        );
    }

    /// A shared machine's free CPU is stranded only when the smallest demand cannot take
    /// it for want of memory there, and its memory only for want of CPU.
    #[test]
    fn shared_free_capacity_is_stranded_only_where_the_other_resource_is_exhausted() {
        let smallest = Resources::new(1_000, 4 * GI, 0);
        let free = |cpu, mem| SharedFree {
            free: Resources::new(cpu, mem * GI, 0),
            smallest,
        };
        assert_eq!(stranded(&[], &[free(8_000, 64)]), Resources::ZERO);
        assert_eq!(
            stranded(&[], &[free(8_000, 2)]),
            Resources::new(8_000, 0, 0)
        );
        assert_eq!(
            stranded(&[], &[free(500, 64)]),
            Resources::new(0, 64 * GI, 0)
        );
    }
}
