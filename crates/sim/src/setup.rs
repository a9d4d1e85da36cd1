//! From an estate to a starting world: the hosts (owned plus those the capacity plan buys),
//! the initial placement of every VM, the Kubernetes nodes and their pods, and the control
//! plane that starts from the same state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use plinth_control::maintenance::Budget;
use plinth_control::upgrade::CONTROL_PLANE;
use plinth_control::{
    ClusterTopology, Control, ControlConfig, PoolName, PoolTopology, Spare, Strategy,
};
use plinth_model::Resources;
use plinth_model::estate::Estate;
use plinth_model::kinds::VolumeStorage;
use plinth_model::kinds::cluster::{NodePool, node_prefix};
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::kinds::inventory::InventorySpec;
use plinth_model::kinds::scenario::HostFailures;
use plinth_placement::baremetal::Role;
use plinth_placement::designs::{Binding, deferred_clusters, kubelet};
use plinth_placement::plan::{
    BareMetalDesign, DesignPlan, NodeTemplate, Pending, Plan, PlanError, PlannedHost,
    VirtualizedPlan, plan,
};
use plinth_placement::pods::{PodId, PodTemplate, Scheduler};
use plinth_placement::{VmId, VmSpec, ZoneId};

use plinth_control::store::StoreError;
use plinth_events::EventsError;

use crate::Options;
use crate::budget::Overrun;

/// Why a simulation could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The design could not be planned or placed.
    #[error("cannot build the {env} design")]
    Design {
        /// `virtualized` or `bare-metal`.
        env: &'static str,
        /// What the planning chain said.
        #[source]
        source: PlanError,
    },
    /// A simulated day took more events than the budget allows.
    #[error(
        "simulated day {} took more than {limit} events, the budget of a day (--max-events-per-day), most of them from {}: look at {}",
        overrun.day,
        overrun.driver,
        overrun.driver.input()
    )]
    EventBudget {
        /// The day and what drove it.
        overrun: Overrun,
        /// The budget per day ([`crate::LogOutput::with_budget`]).
        limit: u64,
    },
    /// The event log could not be written.
    #[error("cannot write the event log")]
    Log {
        /// Why.
        source: EventsError,
    },
    /// The control plane's store failed ([`crate::run_restarting`]).
    #[error("the control plane's store failed")]
    Store {
        /// Why.
        source: StoreError,
    },
}

/// A host or server of the simulated world.
#[derive(Clone, Debug)]
pub struct SimHost {
    /// Name.
    pub name: String,
    /// Host class name.
    pub class: String,
    /// Its failure model.
    pub failures: HostFailures,
    /// Index within its class (the failure stream key).
    pub index_in_class: usize,
    /// Its rack (power domain).
    pub rack: String,
    /// Its zone (`topology.kubernetes.io/zone` of the nodes on it).
    pub zone: String,
    /// Physical capacity: hardware threads × 1000, memory, disk.
    pub capacity: Resources,
}

/// A Kubernetes node.
#[derive(Clone, Debug)]
pub struct SimNode {
    /// Node name (= VM name, or server name on bare metal).
    pub name: String,
    /// Index of its cluster in `Estate::clusters` (and [`Setup::schedulers`]).
    pub cluster: usize,
    /// Its pool.
    pub pool: PoolName,
    /// What pods may request.
    pub allocatable: Resources,
}

/// A pod as the simulated Kubernetes sees it.
#[derive(Clone, Debug)]
pub struct SimPod {
    /// Index into [`Setup::workloads`].
    pub workload: u32,
    /// Index of its cluster in `Estate::clusters` (and [`Setup::schedulers`]).
    pub cluster: usize,
    /// What the scheduler places.
    pub template: Arc<PodTemplate>,
    /// Requests.
    pub requests: Resources,
    /// Whether its volume is on the node's own disk.
    pub local: bool,
    /// Where the plan bound it at the start: its id in its cluster's scheduler and the node.
    pub initial: Option<(PodId, String)>,
}

/// A cluster's control plane, for etcd quorum.
#[derive(Clone, Debug)]
pub struct SimControlPlane {
    /// Cluster name.
    pub cluster: String,
    /// Members the cluster is declared with.
    pub replicas: u32,
    /// Member VMs (virtualized) or servers (bare metal) at the start.
    pub members: Vec<String>,
    /// Created later by a timeline `addCluster` step.
    pub deferred: bool,
}

/// How much of its request a workload (or of its size a VM) uses: `mean` outside the daily
/// peak window `[start, end)` hours, `peak` inside (a window with start > end wraps over
/// midnight).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    /// Fraction outside the peak window.
    pub mean: f64,
    /// Fraction inside it.
    pub peak: f64,
    /// First peak hour.
    pub start: u8,
    /// First hour after the peak.
    pub end: u8,
}

impl Usage {
    fn of(p: &plinth_model::kinds::UsageProfile) -> Self {
        let (start, end) = p.peak_window().unwrap_or((8, 18));
        Self {
            mean: p.mean,
            peak: p.peak,
            start,
            end,
        }
    }

    /// The fraction used at `hour` of the day (0–23).
    pub fn at(&self, hour: u8) -> f64 {
        let inside = if self.start <= self.end {
            (self.start..self.end).contains(&hour)
        } else {
            hour >= self.start || hour < self.end
        };
        if inside { self.peak } else { self.mean }
    }
}

/// Everything a run starts from.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Which design.
    pub env: EnvironmentType,
    /// Hosts (virtualized) or servers (bare metal), in order.
    pub hosts: Vec<SimHost>,
    /// VM name → host index, where each VM runs at the start (virtualized).
    pub vms: BTreeMap<String, usize>,
    /// Guest memory of each VM, bytes (for live-migration time).
    pub vm_memory: BTreeMap<String, u64>,
    /// Nodes.
    pub nodes: Vec<SimNode>,
    /// Node name → the server it is (bare metal).
    pub node_server: BTreeMap<String, usize>,
    /// Pods.
    pub pods: Vec<SimPod>,
    /// Workload ids, `cluster/namespace/Kind/name`.
    pub workloads: Vec<String>,
    /// VMs no host could take at the start.
    pub unplaced: Vec<String>,
    /// Pods of clusters a timeline `addCluster` step creates, deployed once it is ready.
    pub deferred_pods: BTreeMap<String, Vec<SimPod>>,
    /// Control planes, by cluster.
    pub control_planes: Vec<SimControlPlane>,
    /// Usage of each workload, by index into `workloads`.
    pub workload_usage: Vec<Usage>,
    /// Per workload: the fewest pods its PodDisruptionBudgets let a drain leave available,
    /// and the budget that says so.
    pub min_available: Vec<Option<(u32, String)>>,
    /// VM name → its size (demand, without the per-VM overhead) and, for VirtualMachineSet
    /// VMs, its usage.
    pub vm_size: BTreeMap<String, (Resources, Option<Usage>)>,
    /// Each pool (and each control plane) → the size of a new VM of it.
    pub vm_template: BTreeMap<PoolName, Resources>,
    /// Each pool → a new node's allocatable on a VM (virtualized), or what the
    /// kubelet and DaemonSets take from a server (bare metal).
    pub pool_alloc: BTreeMap<PoolName, Resources>,
    /// Each pool → its cluster's index and what a new node of it is (labels, taints,
    /// pod limits).
    pub templates: BTreeMap<PoolName, (usize, NodeTemplate)>,
    /// Per cluster, the simulated kube-scheduler: its nodes and bound pods.
    pub schedulers: Vec<Scheduler>,
    /// Pods per pool, DaemonSets and the workloads no pool admits, as the plan bound them.
    pub binding: Binding,
    /// Pods the plan could place nowhere, with kube-scheduler's reason.
    pub pending: Vec<Pending>,
    /// The design's hosts and placement (virtualized) or server allocation (bare metal).
    pub design: DesignPlan,
    /// The control plane, starting from the same placement.
    pub control: Control,
    /// The estate the design runs: the input's, or its clusters merged ([`setup`]).
    pub estate: Estate,
    /// Clusters merged into one (`shareServers` on bare metal), in input order.
    pub merges: Vec<plinth_model::merge::Merge>,
    /// Each merged workload's id (`cluster/namespace/Kind/name`) → its id in the input.
    pub renamed: BTreeMap<String, String>,
}

impl Setup {
    /// Every PodDisruptionBudget with the available pods of its workload by node, as the
    /// plan bound them: what a maintenance plan checks
    /// ([`plinth_control::Control::maintenance_review`]).
    pub fn budgets(&self) -> Vec<Budget> {
        let mut pods_on: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
        for pod in &self.pods {
            if let Some((_, node)) = &pod.initial {
                *pods_on
                    .entry(pod.workload)
                    .or_default()
                    .entry(node.clone())
                    .or_default() += 1;
            }
        }
        self.min_available
            .iter()
            .zip(&self.workloads)
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
}

fn failure_model(estate: &Estate, class: &str) -> HostFailures {
    let f = &estate.scenario.spec.failures;
    f.by_class.get(class).copied().unwrap_or(f.hosts)
}

/// Builds the starting world of `options.env` for `estate`, from the one planning chain
/// ([`plinth_placement::plan::plan`]).
///
/// On bare metal with `shareServers`, the design runs the estate with the clusters of one
/// OS image and Kubernetes version merged ([`plinth_model::merge::for_design`]): `estate`,
/// `merges` and `renamed` of the result say so.
pub fn setup(estate: &Estate, options: &Options) -> Result<Setup, SimError> {
    let merged = plinth_model::merge::for_design(estate, options.env);
    let estate = merged.as_ref().map_or(estate, |m| &m.estate);
    let plan = plan(estate, options.env).map_err(|source| SimError::Design {
        env: options.env.cli_name(),
        source,
    })?;
    let mut s = from_plan(estate, plan, &deferred_clusters(estate));
    if let Some(m) = merged {
        s.merges = m.merges;
        s.renamed = m
            .workloads
            .iter()
            .map(|(now, was)| (now.to_string(), was.to_string()))
            .collect();
    }
    Ok(s)
}

/// The headroom a design keeps: the Scenario's requirements that size the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    /// Host failures survived with every VM restarted.
    pub host_failures: u32,
    /// Hosts in maintenance at the same time.
    pub maintenance: u32,
    /// Room for one upgrade surge node.
    pub surge: bool,
}

impl Headroom {
    fn of(estate: &Estate) -> Self {
        let r = &estate.scenario.spec.requirements;
        Self {
            host_failures: r.host_failures_to_tolerate,
            maintenance: r.hosts_in_maintenance,
            surge: r.upgrade_surge,
        }
    }

    /// Less headroom, one step at a time: maintenance first, then the surge, then one
    /// host failure after another — HA is given up last.
    fn lowered(self) -> Option<Self> {
        if self.maintenance > 0 {
            Some(Self {
                maintenance: 0,
                ..self
            })
        } else if self.surge {
            Some(Self {
                surge: false,
                ..self
            })
        } else if self.host_failures > 0 {
            Some(Self {
                host_failures: self.host_failures - 1,
                ..self
            })
        } else {
            None
        }
    }
}

impl std::fmt::Display for Headroom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} host failure(s) with {} host(s) in maintenance and {}",
            self.host_failures,
            self.maintenance,
            if self.surge {
                "one upgrade surge"
            } else {
                "no upgrade surge"
            }
        )
    }
}

/// A design run on the hosts an estate owns.
#[derive(Clone, Debug)]
pub struct Greenfield {
    /// The control plane: every cluster declared, none built.
    pub control: Control,
    /// When the owned hosts cannot meet the Scenario's headroom: what it asks, and what
    /// the design keeps.
    pub short: Option<(Headroom, Headroom)>,
}

/// The control plane of a virtualized estate where nothing runs yet, for `plinth run` and
/// `plinth serve`: the same planning chain and hosts as [`setup`], with every cluster
/// declared and none built, so each waits for its `ClusterRequested` (the path a
/// timeline's `addCluster` takes). The VirtualMachineSets' VMs are placed as in [`setup`]
/// and start out running there: the driver makes the ones no host has.
///
/// A run has only the hosts the Inventory owns: when the Scenario's headroom rule would
/// buy more, the headroom is lowered ([`Headroom`]: maintenance first, HA last) until the
/// design fits the owned hosts, and [`Greenfield::short`] says what was given up. When not
/// even no headroom fits, the design is the Scenario's own, and running it fails on the
/// host it would buy.
///
/// # Errors
/// When the design cannot be planned.
pub fn greenfield(estate: &Estate) -> Result<Greenfield, SimError> {
    let d = owned_design(estate)?;
    let every: BTreeSet<String> = estate.clusters.iter().map(|c| c.name.clone()).collect();
    Ok(Greenfield {
        control: from_plan(&d.estate, d.plan, &every).control,
        short: d.short,
    })
}

/// [`setup`] of a virtualized estate on the hosts it owns, as [`greenfield`] designs them,
/// with its clusters built: the placement `plinth serve` and `plinth run` reach once they
/// have built the estate, on which `plinth maintenance`, `plinth upgrade` and `plinth drs`
/// plan an estate directory (so their dry runs there answer what the service answers).
///
/// # Errors
/// When the design cannot be planned.
pub fn owned_setup(estate: &Estate) -> Result<Setup, SimError> {
    let d = owned_design(estate)?;
    Ok(from_plan(&d.estate, d.plan, &deferred_clusters(estate)))
}

/// A virtualized design on the hosts an estate owns.
struct OwnedDesign {
    /// The estate it was planned from, its headroom lowered when the Scenario's would buy
    /// hosts.
    estate: Estate,
    /// The design.
    plan: Plan,
    /// What was given up: asked, kept.
    short: Option<(Headroom, Headroom)>,
}

/// The virtualized design on the hosts `estate` owns ([`greenfield`]'s rule).
fn owned_design(estate: &Estate) -> Result<OwnedDesign, SimError> {
    let env = EnvironmentType::Virtualized;
    let design = |estate: &Estate| {
        plan(estate, env).map_err(|source| SimError::Design {
            env: env.cli_name(),
            source,
        })
    };
    let owned: BTreeSet<String> = plinth_model::estate::expand_hosts(&estate.inventory.spec)
        .into_iter()
        .map(|h| h.name)
        .collect();
    let asked = Headroom::of(estate);
    let first = design(estate)?;
    let fits = |plan: &Plan| plan.hosts.iter().all(|h| owned.contains(&h.name));
    if !fits(&first) {
        let mut lowered = estate.clone();
        let mut kept = asked;
        while let Some(less) = kept.lowered() {
            kept = less;
            let r = &mut lowered.scenario.spec.requirements;
            r.host_failures_to_tolerate = kept.host_failures;
            r.hosts_in_maintenance = kept.maintenance;
            r.upgrade_surge = kept.surge;
            let plan = design(&lowered)?;
            if fits(&plan) {
                return Ok(OwnedDesign {
                    estate: lowered,
                    plan,
                    short: Some((asked, kept)),
                });
            }
        }
    }
    Ok(OwnedDesign {
        estate: estate.clone(),
        plan: first,
        short: None,
    })
}

/// The simulated hosts of a plan: class, failure model and stream key, rack and zone.
fn sim_hosts(estate: &Estate, plan: &Plan) -> Vec<SimHost> {
    let classes = &estate.inventory.spec.host_classes;
    let mut per_class = vec![0usize; classes.len()];
    plan.hosts
        .iter()
        .map(|h| {
            let class = &classes[h.class];
            per_class[h.class] += 1;
            SimHost {
                name: h.name.clone(),
                class: class.name.clone(),
                failures: failure_model(estate, &class.name),
                index_in_class: per_class[h.class] - 1,
                rack: h.rack.clone(),
                zone: plan.zones.name(h.zone).to_owned(),
                capacity: class.capacity(),
            }
        })
        .collect()
}

fn strategy(p: &NodePool) -> Strategy {
    Strategy {
        max_surge: p.upgrade.max_surge,
        max_unavailable: p.upgrade.max_unavailable,
    }
}

fn pool_topology(name: &str, nodes: Vec<String>, strategy: Strategy) -> PoolTopology {
    PoolTopology {
        name: name.to_owned(),
        nodes,
        strategy,
        class: None,
        create: None,
    }
}

/// The zone that evacuations and DRS keep each host's VMs in, hosts in the pool's order:
/// its rack's declared `zone`; the hosts of racks that declare none (bought servers
/// included) share one, so only declared zones confine.
fn declared_zones(inv: &InventorySpec, hosts: &[PlannedHost]) -> Vec<ZoneId> {
    let mut seen: Vec<Option<&str>> = Vec::new();
    hosts
        .iter()
        .map(|h| {
            let declared = inv
                .racks
                .iter()
                .find(|r| r.name == h.rack)
                .and_then(|r| r.zone.as_deref());
            let i = seen.iter().position(|z| *z == declared).unwrap_or_else(|| {
                seen.push(declared);
                seen.len() - 1
            });
            ZoneId(u32::try_from(i).unwrap_or(u32::MAX))
        })
        .collect()
}

/// The setup of a planned design.
fn from_plan(estate: &Estate, plan: Plan, deferred: &BTreeSet<String>) -> Setup {
    let hosts = sim_hosts(estate, &plan);
    let mut out = Setup {
        env: plan.design,
        hosts,
        vms: BTreeMap::new(),
        vm_memory: BTreeMap::new(),
        nodes: Vec::new(),
        node_server: BTreeMap::new(),
        pods: Vec::new(),
        workloads: Vec::new(),
        unplaced: Vec::new(),
        deferred_pods: BTreeMap::new(),
        control_planes: Vec::new(),
        workload_usage: Vec::new(),
        min_available: Vec::new(),
        vm_size: BTreeMap::new(),
        vm_template: BTreeMap::new(),
        pool_alloc: BTreeMap::new(),
        templates: BTreeMap::new(),
        schedulers: Vec::new(),
        binding: plan.binding.clone(),
        pending: plan.pending().cloned().collect(),
        design: plan.detail.clone(),
        control: Control::bare_metal(ControlConfig::bare_metal(estate), Vec::new()),
        estate: estate.clone(),
        merges: Vec::new(),
        renamed: BTreeMap::new(),
    };
    for (ci, c) in estate.clusters.iter().enumerate() {
        for (pi, p) in c.spec.node_pools.iter().enumerate() {
            let t = plan.clusters[ci].templates[pi].clone();
            let key = PoolName::new(&c.name, &p.name);
            // What a new node of the pool may offer pods: a VM's allocatable, or what the
            // kubelet and DaemonSets take from a server (its allocatable is the server less this).
            let alloc = match plan.design {
                EnvironmentType::Virtualized => t.allocatable,
                EnvironmentType::BareMetal => kubelet(&plan.binding, &c.name, p).reserved,
            };
            out.pool_alloc.insert(key.clone(), alloc);
            out.templates.insert(key, (ci, t));
        }
    }
    let (control, topology) = match &plan.detail {
        DesignPlan::Virtualized(v) => virtualized(estate, &plan, v, deferred, &mut out),
        DesignPlan::BareMetal(b) => bare_metal(estate, &plan, b, deferred, &mut out),
    };
    for n in &plan.nodes {
        let c = &estate.clusters[n.pool.cluster];
        let p = &c.spec.node_pools[n.pool.pool];
        let later = deferred.contains(&c.name);
        if plan.design == EnvironmentType::BareMetal {
            out.node_server.insert(n.name.clone(), n.host);
        }
        if later {
            continue;
        }
        let allocatable = plan.clusters[n.pool.cluster].templates[n.pool.pool].allocatable;
        out.nodes.push(SimNode {
            name: n.name.clone(),
            cluster: n.pool.cluster,
            pool: PoolName::new(&c.name, &p.name),
            allocatable,
        });
    }
    let control = control.with_clusters(topology);
    out.control = if estate.inventory.spec.declares_zones() {
        control.with_zones(declared_zones(&estate.inventory.spec, &plan.hosts))
    } else {
        control
    };
    pods(estate, &plan, deferred, &mut out);
    out.schedulers = plan.clusters.into_iter().map(|c| c.scheduler).collect();
    out
}

/// The virtualized design's VMs, control planes, pool topologies and the control plane over
/// its placement. VMs of clusters a
/// timeline step adds later are taken out of the pool again: the control plane creates
/// them when asked.
fn virtualized(
    estate: &Estate,
    plan: &Plan,
    v: &VirtualizedPlan,
    deferred: &BTreeSet<String>,
    out: &mut Setup,
) -> (Control, Vec<ClusterTopology>) {
    let mut state = v.placed.state.clone();
    // VMs of deferred clusters: (cluster, pool) → how many and the spec to clone.
    let mut later: BTreeMap<(String, String), (u32, VmSpec)> = BTreeMap::new();
    let owner = |vm: &str| -> Option<(String, String)> {
        estate
            .clusters
            .iter()
            .filter(|c| deferred.contains(&c.name))
            .find_map(|c| {
                std::iter::once("cp")
                    .chain(c.spec.node_pools.iter().map(|p| p.name.as_str()))
                    .find(|p| is_member(vm, &c.name, p))
                    .map(|p| (c.name.clone(), p.to_owned()))
            })
    };
    for (i, vm) in v.problem.vms.iter().enumerate() {
        if let Some(key) = owner(&vm.name) {
            if v.placed.hosts[i].is_some() {
                let _ = state.remove(VmId(i as u32));
            }
            later.entry(key).or_insert((0, vm.clone())).0 += 1;
            continue;
        }
        match v.placed.hosts[i] {
            Some(h) => {
                out.vms.insert(vm.name.clone(), h.index());
                out.vm_memory
                    .insert(vm.name.clone(), vm.demand.memory_bytes);
                out.vm_size.insert(vm.name.clone(), (vm.demand, None));
            }
            None => out.unplaced.push(vm.name.clone()),
        }
    }
    for set in &estate.vm_sets {
        let usage = Usage::of(&set.spec.usage);
        for (name, (_, u)) in out.vm_size.iter_mut() {
            if is_numbered(name, &set.name) {
                *u = Some(usage);
            }
        }
    }
    let mut topology = Vec::new();
    for c in &estate.clusters {
        let cp = &c.spec.control_plane;
        let created = |pool: &str| {
            later
                .get(&(c.name.clone(), pool.to_owned()))
                .map(|(n, spec)| (*n, Some(spec.clone())))
        };
        let members: Vec<String> = (0..cp.replicas)
            .map(|i| format!("{}{i}", node_prefix(&c.name, CONTROL_PLANE)))
            .collect();
        out.vm_template.insert(
            PoolName::new(&c.name, CONTROL_PLANE),
            Resources::new(u64::from(cp.vcpu) * 1000, cp.memory.0, cp.disk.0),
        );
        out.control_planes.push(SimControlPlane {
            cluster: c.name.clone(),
            replicas: cp.replicas,
            members: members.clone(),
            deferred: deferred.contains(&c.name),
        });
        let mut topo = ClusterTopology {
            name: c.name.clone(),
            control_plane: pool_topology(
                CONTROL_PLANE,
                members
                    .into_iter()
                    .filter(|m| out.vms.contains_key(m))
                    .collect(),
                Strategy::CONTROL_PLANE,
            ),
            pools: Vec::new(),
            remediate_after: Some(c.spec.kubernetes.machine_health_timeout.millis()),
        };
        topo.control_plane.create = created("cp");
        for p in &c.spec.node_pools {
            out.vm_template.insert(
                PoolName::new(&c.name, &p.name),
                Resources::new(u64::from(p.vcpu) * 1000, p.memory.0, p.disk.0),
            );
            let members: Vec<String> = plan
                .nodes
                .iter()
                .filter(|n| {
                    let r = &estate.clusters[n.pool.cluster];
                    r.name == c.name && r.spec.node_pools[n.pool.pool].name == p.name
                })
                .map(|n| n.name.clone())
                .filter(|n| out.vms.contains_key(n))
                .collect();
            let mut tp = pool_topology(&p.name, members, strategy(p));
            tp.create = created(&p.name);
            topo.pools.push(tp);
        }
        topology.push(topo);
    }
    // The control plane starts from the placement without the deferred clusters' VMs.
    let control = Control::virtualized(ControlConfig::virtualized(estate), state);
    (control, topology)
}

/// The bare-metal design's servers, control planes, pool topologies and the control plane
/// over its servers. Servers of a cluster a timeline step adds later are its spares until
/// then.
fn bare_metal(
    estate: &Estate,
    plan: &Plan,
    b: &BareMetalDesign,
    deferred: &BTreeSet<String>,
    out: &mut Setup,
) -> (Control, Vec<ClusterTopology>) {
    let mut topology: Vec<ClusterTopology> = estate
        .clusters
        .iter()
        .map(|c| {
            out.control_planes.push(SimControlPlane {
                cluster: c.name.clone(),
                replicas: c.spec.control_plane.replicas,
                members: Vec::new(),
                deferred: deferred.contains(&c.name),
            });
            ClusterTopology {
                name: c.name.clone(),
                control_plane: pool_topology(CONTROL_PLANE, Vec::new(), Strategy::CONTROL_PLANE),
                pools: c
                    .spec
                    .node_pools
                    .iter()
                    .map(|p| pool_topology(&p.name, Vec::new(), strategy(p)))
                    .collect(),
                remediate_after: Some(c.spec.kubernetes.machine_health_timeout.millis()),
            }
        })
        .collect();
    // `Plan::hosts` lists each allocation's servers in allocation order.
    let mut next = 0usize;
    let mut spares = Vec::new();
    for a in &b.servers.allocations {
        let n = a.owned.len() + a.to_buy as usize;
        let names = plan.hosts[next..next + n].iter().map(|h| h.name.clone());
        next += n;
        let spare = |server: String| Spare {
            server,
            class: a.class.clone(),
            cluster: a.cluster.clone(),
        };
        let Some(ci) = a
            .cluster
            .as_deref()
            .and_then(|name| estate.clusters.iter().position(|c| c.name == name))
        else {
            // The spares every cluster shares.
            spares.extend(names.map(spare));
            continue;
        };
        let topo = &mut topology[ci];
        let stage = match &a.role {
            Role::ControlPlane => Some(&mut topo.control_plane),
            Role::Pool(p) => topo.pools.iter_mut().find(|x| &x.name == p),
            Role::Surge | Role::Spare => None,
        };
        if let Some(tp) = stage {
            tp.class = Some(a.class.clone());
            if deferred.contains(&topo.name) {
                // Built when the cluster is added: every server is its spare until then,
                // and each stage gets as many as it was allocated.
                tp.create.get_or_insert((0, None)).0 += n as u32;
                spares.extend(names.map(spare));
                continue;
            }
            if a.role == Role::ControlPlane {
                out.control_planes[ci].members.extend(names.clone());
            }
            tp.nodes.extend(names);
        } else {
            spares.extend(names.map(spare));
        }
    }
    stack_members(estate, &b.servers, &topology, deferred, out);
    let servers = out.hosts.iter().map(|h| h.name.clone()).collect();
    (
        Control::bare_metal(ControlConfig::bare_metal(estate), servers)
            .with_spares(estate.bare_metal.spec.spares.scope, spares),
        topology,
    )
}

/// Stacked control planes (a cluster the allocation gave no control-plane servers): the
/// members run on the first `replicas` servers of the cluster's first worker pool by name,
/// which the allocation spread over racks.
fn stack_members(
    estate: &Estate,
    servers: &plinth_placement::BareMetalPlan,
    topology: &[ClusterTopology],
    deferred: &BTreeSet<String>,
    out: &mut Setup,
) {
    for (ci, c) in estate.clusters.iter().enumerate() {
        let dedicated = servers
            .allocations
            .iter()
            .any(|a| a.cluster.as_deref() == Some(c.name.as_str()) && a.role == Role::ControlPlane);
        if dedicated || deferred.contains(&c.name) {
            continue;
        }
        let Some(first) = topology[ci].pools.iter().min_by(|a, b| a.name.cmp(&b.name)) else {
            continue;
        };
        let n = c.spec.control_plane.replicas as usize;
        out.control_planes[ci]
            .members
            .extend(first.nodes.iter().take(n).cloned());
    }
}

/// Every workload's pods, bound where the plan scheduled them or pending; pods of clusters
/// added later wait in `deferred_pods`.
fn pods(estate: &Estate, plan: &Plan, deferred: &BTreeSet<String>, out: &mut Setup) {
    let default_storage = match plan.design {
        EnvironmentType::Virtualized => estate.virtualized.spec.volume_storage,
        EnvironmentType::BareMetal => estate.bare_metal.spec.volume_storage,
    };
    for (ci, c) in plan.clusters.iter().enumerate() {
        let cluster = &estate.clusters[ci];
        for wp in &c.workloads {
            let w = &estate.workloads[wp.workload];
            let local = w.storage.resolve(default_storage) == Some(VolumeStorage::Local);
            let wi = out.workloads.len() as u32;
            out.workloads.push(w.id.to_string());
            out.workload_usage.push(Usage::of(&w.usage));
            out.min_available.push(budget(estate, w));
            let later = deferred.contains(&cluster.name);
            for r in 0..w.replicas as usize {
                let initial = wp.bound.get(r).and_then(|b| {
                    c.scheduler
                        .node(b.node)
                        .map(|node| (b.pod, node.name.clone()))
                });
                let pod = SimPod {
                    workload: wi,
                    cluster: ci,
                    template: Arc::clone(&wp.template),
                    requests: w.requests,
                    local,
                    initial,
                };
                if later {
                    out.deferred_pods
                        .entry(cluster.name.clone())
                        .or_default()
                        .push(pod);
                } else {
                    out.pods.push(pod);
                }
            }
        }
    }
}

/// True when `name` is `<prefix>-<digits>`.
fn is_numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// True when VM `vm` is a member of pool `pool` (`cp` for the control plane) of `cluster`.
fn is_member(vm: &str, cluster: &str, pool: &str) -> bool {
    vm.strip_prefix(cluster)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| is_numbered(rest, pool))
}

/// The fewest pods of `w` its PodDisruptionBudgets leave available to voluntary
/// evictions (the strictest budget selecting its pods wins), and that budget's name.
/// `minAvailable: N` or `P%` (rounded up), `maxUnavailable: N` or `P%` (rounded up, as
/// the disruption controller) of the workload's replicas.
fn budget(estate: &Estate, w: &plinth_model::workload::Workload) -> Option<(u32, String)> {
    let desired = w.replicas;
    let count = |v: &str| -> Option<u32> {
        match v.strip_suffix('%') {
            Some(p) => {
                let p: u64 = p.trim().parse().ok()?;
                Some(u32::try_from((u64::from(desired) * p).div_ceil(100)).unwrap_or(u32::MAX))
            }
            None => v.trim().parse().ok(),
        }
    };
    estate
        .disruption_budgets
        .iter()
        .filter(|b| b.cluster == w.id.cluster && b.namespace == w.id.namespace)
        .filter(|b| {
            b.selector
                .as_ref()
                .is_some_and(|s| plinth_model::workload::selector_matches(s, &w.pod_labels))
        })
        .filter_map(|b| {
            let min = match (&b.min_available, &b.max_unavailable) {
                (Some(m), _) => count(m)?,
                (None, Some(m)) => desired.saturating_sub(count(m)?),
                (None, None) => return None,
            };
            Some((min.min(desired), format!("{}/{}", b.namespace, b.name)))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
}
