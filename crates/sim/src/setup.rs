//! From an estate to a starting world: the hosts (owned plus those the capacity plan buys),
//! the initial placement of every VM, the Kubernetes nodes and their pods, and the control
//! plane that starts from the same state.

use std::collections::{BTreeMap, BTreeSet};

use plinth_control::upgrade::CONTROL_PLANE;
use plinth_control::{ClusterTopology, Control, ControlConfig, PoolTopology, Strategy};
use plinth_model::Resources;
use plinth_model::estate::Estate;
use plinth_model::kinds::VolumeStorage;
use plinth_model::kinds::cluster::NodePool;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::kinds::inventory::HostRole;
use plinth_model::kinds::scenario::{HostFailures, TimelineAction};
use plinth_model::workload::WorkloadKind;
use plinth_placement::baremetal::Role;
use plinth_placement::designs::{bare_metal_problem, bind_pods, virtualized_problem};
use plinth_placement::{
    HostSpec, PlacementError, Pool, RackId, VmId, VmSpec, allocate_servers, place_all,
    plan_capacity,
};

use crate::Options;

/// Why a simulation could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The design could not be planned or placed.
    #[error("cannot build the {env} design")]
    Design {
        /// `virtualized` or `bare-metal`.
        env: &'static str,
        /// What placement said.
        #[source]
        source: PlacementError,
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
    /// Physical capacity: hardware threads × 1000, memory, disk.
    pub capacity: Resources,
}

/// A Kubernetes node.
#[derive(Clone, Debug)]
pub struct SimNode {
    /// Node name (= VM name, or server name on bare metal).
    pub name: String,
    /// `cluster/pool`.
    pub pool: String,
    /// What pods may request.
    pub allocatable: Resources,
}

/// A pod as the simulated Kubernetes sees it.
#[derive(Clone, Debug)]
pub struct SimPod {
    /// Index into [`Setup::workloads`].
    pub workload: u32,
    /// `cluster/pool`.
    pub pool: String,
    /// Requests.
    pub requests: Resources,
    /// Whether its volume is on the node's own disk.
    pub local: bool,
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
    /// `cluster/pool` (and `cluster/control-plane`) → the size of a new VM of it.
    pub vm_template: BTreeMap<String, Resources>,
    /// `cluster/pool` → a new node's allocatable on a VM (virtualized), or what the
    /// kubelet and DaemonSets take from a server (bare metal).
    pub pool_alloc: BTreeMap<String, Resources>,
    /// The control plane, starting from the same placement.
    pub control: Control,
    /// The estate's settings the world needs.
    pub estate: Estate,
}

fn failure_model(estate: &Estate, class: &str) -> HostFailures {
    let f = &estate.scenario.spec.failures;
    f.by_class.get(class).copied().unwrap_or(f.hosts)
}

fn reserved(p: &NodePool) -> Resources {
    let r = &p.reserved;
    Resources::new(
        r.system_cpu.0 + r.kube_cpu.0,
        r.system_memory.0 + r.kube_memory.0,
        0,
    )
}

/// Builds the starting world of `options.env` for `estate`.
pub fn setup(estate: &Estate, options: &Options) -> Result<Setup, SimError> {
    let binding = bind_pods(estate);
    let classes = &estate.inventory.spec.host_classes;
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    let mut host = |name: String, class: &str, rack: &str| {
        let n = per_class.entry(class.to_owned()).or_insert(0);
        *n += 1;
        SimHost {
            name,
            class: class.to_owned(),
            failures: failure_model(estate, class),
            index_in_class: *n - 1,
            rack: rack.to_owned(),
            capacity: classes
                .iter()
                .find(|c| c.name == class)
                .map_or(Resources::ZERO, |c| c.capacity()),
        }
    };
    let mut control_planes = Vec::new();
    let mut topology: Vec<ClusterTopology> = Vec::new();
    let mut vm_size = BTreeMap::new();
    let mut vm_template = BTreeMap::new();
    let mut pool_alloc = BTreeMap::new();
    let strategy = |p: &NodePool| Strategy {
        max_surge: p.upgrade.max_surge,
        max_unavailable: p.upgrade.max_unavailable,
    };
    let pool_topo = |name: &str, nodes: Vec<String>, strategy: Strategy| PoolTopology {
        name: name.to_owned(),
        nodes,
        strategy,
        create: None,
    };
    // Clusters a timeline `addCluster` step creates later: planned for, but not built yet.
    let deferred: BTreeSet<String> = estate
        .scenario
        .spec
        .operations
        .timeline
        .iter()
        .filter(|s| s.action == TimelineAction::AddCluster)
        .filter_map(|s| s.cluster.clone())
        .collect();
    let member_of = |vm: &str, c: &str, pool: &str| {
        vm.strip_prefix(&format!("{c}-{pool}-"))
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|ch| ch.is_ascii_digit()))
    };
    let mut hosts = Vec::new();
    let mut vms = BTreeMap::new();
    let mut vm_memory = BTreeMap::new();
    let mut nodes = Vec::new();
    let mut node_server = BTreeMap::new();
    let mut unplaced = Vec::new();
    // Node allocatable per `cluster/pool`, and the pool spec.
    let daemon = |c: &str, p: &str| {
        binding
            .daemons
            .get(c)
            .and_then(|d| d.get(p))
            .map_or(Resources::ZERO, |d| d.0)
    };
    let control = match options.env {
        EnvironmentType::Virtualized => {
            let problem = virtualized_problem(estate, &binding);
            let plan = plan_capacity(&problem).map_err(|source| SimError::Design {
                env: "virtualized",
                source,
            })?;
            let mut specs = Vec::new();
            // The plan's owned hosts only: owned hosts it leaves unused are surplus, not
            // part of the pool (they are neither costed nor simulated).
            for o in problem
                .owned
                .iter()
                .filter(|o| plan.host_names.contains(&o.name))
            {
                let rack = problem
                    .racks
                    .get(o.rack.0 as usize)
                    .map_or("new", String::as_str);
                hosts.push(host(o.name.clone(), &problem.classes[o.class].name, rack));
                specs.push(HostSpec::new(
                    o.name.clone(),
                    o.rack,
                    problem.classes[o.class].capacity,
                ));
            }
            let racks = problem.racks.len().max(1) as u32;
            for u in &plan.per_class {
                let Some(ci) = problem.classes.iter().position(|c| c.name == u.class) else {
                    continue;
                };
                for i in 0..u.to_buy {
                    let name = format!("new-{}-{:02}", u.class, i + 1);
                    let rack = problem
                        .racks
                        .get((i % racks) as usize)
                        .map_or("new", String::as_str);
                    hosts.push(host(name.clone(), &u.class, rack));
                    specs.push(HostSpec::new(
                        name,
                        RackId(i % racks),
                        problem.classes[ci].capacity,
                    ));
                }
            }
            let mut racks = problem.racks.clone();
            if racks.is_empty() {
                racks.push("new".into());
            }
            let pool = Pool::new(
                specs,
                racks,
                problem.groups.clone(),
                Vec::new(),
                problem.config.clone(),
            )
            .map_err(|source| SimError::Design {
                env: "virtualized",
                source,
            })?;
            let mut placed = place_all(pool, problem.vms.clone());
            // VMs of deferred clusters: (cluster, pool) → how many and the first one's spec.
            let mut later: BTreeMap<(String, String), (u32, VmSpec)> = BTreeMap::new();
            for (i, vm) in problem.vms.iter().enumerate() {
                let owner = estate
                    .clusters
                    .iter()
                    .filter(|c| deferred.contains(&c.name))
                    .find_map(|c| {
                        std::iter::once("cp")
                            .chain(c.spec.node_pools.iter().map(|p| p.name.as_str()))
                            .find(|p| member_of(&vm.name, &c.name, p))
                            .map(|p| (c.name.clone(), p.to_owned()))
                    });
                if let Some(key) = owner {
                    if placed.hosts[i].is_some() {
                        let _ = placed.state.remove(VmId(i as u32));
                    }
                    later.entry(key).or_insert((0, vm.clone())).0 += 1;
                    continue;
                }
                match placed.hosts[i] {
                    Some(h) => {
                        vms.insert(vm.name.clone(), h.index());
                        vm_memory.insert(vm.name.clone(), vm.demand.memory_bytes);
                        vm_size.insert(vm.name.clone(), (vm.demand, None));
                    }
                    None => unplaced.push(vm.name.clone()),
                }
            }
            let perf = &estate.virtualized.spec.performance_overhead;
            let scale = |v: u64, loss: f64| (v as f64 * (1.0 - loss.clamp(0.0, 1.0))) as u64;
            for set in &estate.vm_sets {
                let usage = Usage::of(&set.spec.usage);
                let prefix = format!("{}-", set.name);
                for (name, (_, u)) in vm_size.iter_mut() {
                    if name
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| rest.chars().all(|ch| ch.is_ascii_digit()))
                    {
                        *u = Some(usage);
                    }
                }
            }
            for c in &estate.clusters {
                let cp = &c.spec.control_plane;
                let created = |pool: &str| {
                    later
                        .get(&(c.name.clone(), pool.to_owned()))
                        .map(|(n, spec)| (*n, Some(spec.clone())))
                };
                let members: Vec<String> = (0..cp.replicas)
                    .map(|i| format!("{}-cp-{i}", c.name))
                    .collect();
                vm_template.insert(
                    format!("{}/{CONTROL_PLANE}", c.name),
                    Resources::new(u64::from(cp.vcpu) * 1000, cp.memory.0, cp.disk.0),
                );
                control_planes.push(SimControlPlane {
                    cluster: c.name.clone(),
                    replicas: cp.replicas,
                    members: members.clone(),
                    deferred: deferred.contains(&c.name),
                });
                let mut topo = ClusterTopology {
                    name: c.name.clone(),
                    control_plane: pool_topo(
                        CONTROL_PLANE,
                        members
                            .into_iter()
                            .filter(|m| vms.contains_key(m))
                            .collect(),
                        Strategy::CONTROL_PLANE,
                    ),
                    pools: Vec::new(),
                    spares: Vec::new(),
                    remediate_after: Some(c.spec.kubernetes.machine_health_timeout.millis()),
                };
                topo.control_plane.create = created("cp");
                for p in &c.spec.node_pools {
                    let key = format!("{}/{}", c.name, p.name);
                    vm_template.insert(
                        key.clone(),
                        Resources::new(u64::from(p.vcpu) * 1000, p.memory.0, p.disk.0),
                    );
                    let alloc = Resources::new(
                        scale(u64::from(p.vcpu) * 1000, perf.cpu),
                        scale(p.memory.0, perf.memory),
                        p.disk.0,
                    )
                    .saturating_sub(&(reserved(p) + daemon(&c.name, &p.name)));
                    pool_alloc.insert(key.clone(), alloc);
                    let prefix = format!("{}-{}-", c.name, p.name);
                    let mut members = Vec::new();
                    for name in vms.keys().filter(|n| {
                        n.strip_prefix(&prefix)
                            .is_some_and(|rest| rest.chars().all(|ch| ch.is_ascii_digit()))
                    }) {
                        members.push(name.clone());
                        nodes.push(SimNode {
                            name: name.clone(),
                            pool: key.clone(),
                            allocatable: alloc,
                        });
                    }
                    let mut tp = pool_topo(&p.name, members, strategy(p));
                    tp.create = created(&p.name);
                    topo.pools.push(tp);
                }
                topology.push(topo);
            }
            Control::virtualized(ControlConfig::virtualized(estate), placed.state)
                .with_clusters(topology)
        }
        EnvironmentType::BareMetal => {
            let plan =
                allocate_servers(&bare_metal_problem(estate, &binding)).map_err(|source| {
                    SimError::Design {
                        env: "bare-metal",
                        source,
                    }
                })?;
            let racks = &estate.inventory.spec.racks;
            let class_of: BTreeMap<&str, (&str, &str)> = estate
                .hosts
                .iter()
                .filter(|h| h.role == HostRole::Active || h.role == HostRole::Spare)
                .map(|h| {
                    let rack = racks.get(h.rack).map_or("new", |r| r.name.as_str());
                    (h.name.as_str(), (classes[h.class].name.as_str(), rack))
                })
                .collect();
            let mut bought: BTreeMap<String, u32> = BTreeMap::new();
            for c in &estate.clusters {
                control_planes.push(SimControlPlane {
                    cluster: c.name.clone(),
                    replicas: c.spec.control_plane.replicas,
                    members: Vec::new(),
                    deferred: deferred.contains(&c.name),
                });
                topology.push(ClusterTopology {
                    name: c.name.clone(),
                    control_plane: pool_topo(CONTROL_PLANE, Vec::new(), Strategy::CONTROL_PLANE),
                    pools: c
                        .spec
                        .node_pools
                        .iter()
                        .map(|p| pool_topo(&p.name, Vec::new(), strategy(p)))
                        .collect(),
                    spares: Vec::new(),
                    remediate_after: Some(c.spec.kubernetes.machine_health_timeout.millis()),
                });
                for p in &c.spec.node_pools {
                    pool_alloc.insert(
                        format!("{}/{}", c.name, p.name),
                        reserved(p) + daemon(&c.name, &p.name),
                    );
                }
            }
            for a in &plan.allocations {
                let Some(class) = classes.iter().find(|c| c.name == a.class) else {
                    continue;
                };
                let mut names: Vec<String> = a.owned.clone();
                for _ in 0..a.to_buy {
                    let n = bought.entry(a.class.clone()).or_insert(0);
                    *n += 1;
                    names.push(format!("new-{}-{:02}", a.class, n));
                }
                let pool = match &a.role {
                    Role::Pool(p) => estate
                        .cluster(&a.cluster)
                        .and_then(|c| c.spec.node_pools.iter().find(|x| &x.name == p)),
                    _ => None,
                };
                let ci = estate.clusters.iter().position(|c| c.name == a.cluster);
                for name in names {
                    let (cls, rack) = class_of
                        .get(name.as_str())
                        .copied()
                        .unwrap_or((&a.class, "new"));
                    node_server.insert(name.clone(), hosts.len());
                    hosts.push(host(name.clone(), cls, rack));
                    let later = ci.is_some_and(|ci| deferred.contains(&estate.clusters[ci].name));
                    if let Some(ci) = ci
                        && later
                    {
                        // Built when the cluster is added: every server is a spare until then,
                        // and each stage gets as many as it was allocated.
                        let topo = &mut topology[ci];
                        topo.spares.push(name.clone());
                        let stage = match &a.role {
                            Role::ControlPlane => Some(&mut topo.control_plane),
                            Role::Pool(p) => topo.pools.iter_mut().find(|x| &x.name == p),
                            Role::Surge => None,
                        };
                        if let Some(tp) = stage {
                            tp.create.get_or_insert((0, None)).0 += 1;
                        }
                        continue;
                    }
                    if let Some(ci) = ci {
                        let topo = &mut topology[ci];
                        match &a.role {
                            Role::ControlPlane => {
                                control_planes[ci].members.push(name.clone());
                                topo.control_plane.nodes.push(name.clone());
                            }
                            Role::Pool(p) => {
                                if let Some(tp) = topo.pools.iter_mut().find(|x| &x.name == p) {
                                    tp.nodes.push(name.clone());
                                }
                            }
                            Role::Surge => topo.spares.push(name.clone()),
                        }
                    }
                    if let Some(p) = pool {
                        let alloc = Resources::new(
                            u64::from(class.threads()) * 1000,
                            class.memory.0,
                            class.disk_bytes(),
                        )
                        .saturating_sub(&(reserved(p) + daemon(&a.cluster, &p.name)));
                        nodes.push(SimNode {
                            name,
                            pool: format!("{}/{}", a.cluster, p.name),
                            allocatable: alloc,
                        });
                    }
                }
            }
            Control::bare_metal(
                ControlConfig::bare_metal(estate),
                hosts.iter().map(|h| h.name.clone()).collect(),
            )
            .with_clusters(topology)
        }
    };
    // Pods: each workload goes to the pool `bind_pods` chose for it, recovered by walking
    // every pool's shapes in workload order (first pool whose next shape matches).
    let default_storage = match options.env {
        EnvironmentType::Virtualized => estate.virtualized.spec.volume_storage,
        EnvironmentType::BareMetal => estate.bare_metal.spec.volume_storage,
    };
    let mut cursor: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut workloads = Vec::new();
    let mut workload_usage = Vec::new();
    let mut min_available = Vec::new();
    let mut pods = Vec::new();
    let mut deferred_pods: BTreeMap<String, Vec<SimPod>> = BTreeMap::new();
    let unbound: Vec<&str> = binding
        .unbound
        .iter()
        .map(|u| u.workload.as_str())
        .collect();
    for w in &estate.workloads {
        if w.id.kind == WorkloadKind::DaemonSet || w.replicas == 0 {
            continue;
        }
        let id = w.id.to_string();
        if unbound.contains(&id.as_str()) {
            continue;
        }
        let (Some(cluster), Some(shapes)) = (
            estate.cluster(&w.id.cluster),
            binding.pods.get(&w.id.cluster),
        ) else {
            continue;
        };
        let pool = cluster.spec.node_pools.iter().find(|p| {
            let at = cursor
                .get(&(cluster.name.clone(), p.name.clone()))
                .copied()
                .unwrap_or(0);
            shapes
                .get(&p.name)
                .and_then(|s| s.get(at))
                .is_some_and(|s| s.requests == w.requests && s.count == w.replicas)
        });
        let Some(pool) = pool else {
            continue;
        };
        *cursor
            .entry((cluster.name.clone(), pool.name.clone()))
            .or_insert(0) += 1;
        let local = w.storage.resolve(default_storage) == Some(VolumeStorage::Local);
        let wi = workloads.len() as u32;
        workloads.push(id);
        workload_usage.push(Usage::of(&w.usage));
        min_available.push(budget(estate, w));
        let target = if deferred.contains(&cluster.name) {
            deferred_pods.entry(cluster.name.clone()).or_default()
        } else {
            &mut pods
        };
        for _ in 0..w.replicas {
            target.push(SimPod {
                workload: wi,
                pool: format!("{}/{}", cluster.name, pool.name),
                requests: w.requests,
                local,
            });
        }
    }
    Ok(Setup {
        env: options.env,
        hosts,
        vms,
        vm_memory,
        nodes,
        node_server,
        pods,
        workloads,
        unplaced,
        deferred_pods,
        control_planes,
        workload_usage,
        min_available,
        vm_size,
        vm_template,
        pool_alloc,
        control,
        estate: estate.clone(),
    })
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
