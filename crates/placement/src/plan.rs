//! The planning chain, written once: an estate and a design in, the design's starting
//! state out. `plinth plan`, the simulator and the comparison all call [`plan`].
//!
//! estate → pods bound to node pools ([`bind_pods`]) → pools sized by the pod scheduler
//! (a pool grows until every pod's *required* constraints can be met, up to its `max`) →
//! hosts (virtualized: the capacity plan, owned hosts first; bare metal: whole servers per
//! cluster) → node VMs placed, each pinned to the zone it was sized for → nodes with the
//! labels a real node carries → every pod scheduled with kube-scheduler's semantics, the
//! ones that fit nowhere Pending with the scheduler's own message.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_model::Resources;
use plinth_model::estate::Estate;
use plinth_model::kinds::cluster::{NodePool, TaintEffect as ModelEffect, node_prefix};
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::kinds::inventory::HostRole;
use plinth_model::workload::WorkloadKind;

use crate::baremetal::{BareMetalPlan, BareMetalProblem, Role, allocate_servers};
use crate::capacity::{CapacityPlan, CapacityProblem, plan_capacity};
use crate::designs::{
    Binding, PoolSizes, Zones, bare_metal_problem, bare_metal_vm_pool, bind_pods, kubelet,
    virtualized_problem, vm_allocatable,
};
use crate::error::PlacementError;
use crate::explain::Explanation;
use crate::hosts::{HostSpec, RackId};
use crate::place_all::{PlacementOutcome, place_all};
use crate::pods::{
    Binding as PodBinding, LABEL_HOST, LABEL_HOSTNAME, LABEL_RACK, LABEL_ZONE, Node, PodTemplate,
    PodsError, Scheduler, ScoringStrategy, Taint, TaintEffect,
};
use crate::vm::ZoneId;

/// `kubernetes.io/os`.
pub const LABEL_OS: &str = "kubernetes.io/os";
/// `kubernetes.io/arch`.
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
/// `node.kubernetes.io/instance-type`: the node pool (a VM node) or the server class.
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
/// `topology.kubernetes.io/region`.
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
/// The role label of worker nodes (`node-role.kubernetes.io/worker`).
pub const LABEL_WORKER_ROLE: &str = "node-role.kubernetes.io/worker";
/// The node pool a node belongs to (`plinth.dev/pool`).
pub const LABEL_POOL: &str = plinth_model::kinds::cluster::POOL_LABEL;

/// Labels every node of `pool` carries whatever its design, host or zone: os, arch, region,
/// worker role, `plinth.dev/pool`, then the pool's own labels (which win).
pub fn pool_labels(region: &str, pool: &NodePool) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (LABEL_OS.to_owned(), "linux".to_owned()),
        (LABEL_ARCH.to_owned(), "amd64".to_owned()),
        (LABEL_REGION.to_owned(), region.to_owned()),
        (LABEL_WORKER_ROLE.to_owned(), String::new()),
        (LABEL_POOL.to_owned(), pool.name.clone()),
    ]);
    labels.extend(pool.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// Labels whose value differs from node to node of one pool (or between the designs):
/// only the scheduler, which sees each node, can test them.
pub const PER_NODE_LABELS: [&str; 5] = [
    LABEL_HOSTNAME,
    LABEL_ZONE,
    LABEL_HOST,
    LABEL_RACK,
    LABEL_INSTANCE_TYPE,
];

/// The region nodes are labelled with: the Inventory's `region`, else its name.
pub fn region(estate: &Estate) -> String {
    estate
        .inventory
        .spec
        .region
        .clone()
        .unwrap_or_else(|| estate.inventory.name.clone())
}

/// A host or server of the design.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedHost {
    /// Inventory name, or `new-<class>-NN` for one to buy.
    pub name: String,
    /// Index into the Inventory's host classes.
    pub class: usize,
    /// Rack name (`new` for a bought server without one).
    pub rack: String,
    /// Its zone.
    pub zone: ZoneId,
}

/// Identifies a node pool of the estate: (cluster index, pool index), both in manifest order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolRef {
    /// Index into `Estate::clusters`.
    pub cluster: usize,
    /// Index into the cluster's `nodePools`.
    pub pool: usize,
}

/// What every node of a pool is, but its name, host and zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTemplate {
    /// What pods may request: the node's size less the hypervisor overhead (VM),
    /// kubelet and system reservations and the pool's DaemonSets.
    pub allocatable: Resources,
    /// Labels beyond hostname and zone: os, arch, instance type, region, role, pool, and the
    /// pool's own labels (which win).
    pub labels: BTreeMap<String, String>,
    /// The pool's taints.
    pub taints: Vec<Taint>,
    /// `maxPods` less the DaemonSet pods.
    pub max_pods: u32,
    /// `podsPerCore` (0 = off).
    pub pods_per_core: u32,
    /// Cores the kubelet counts (VM vCPUs or server threads).
    pub cores: u32,
}

impl NodeTemplate {
    /// A node of this pool called `name`, on `host` in `rack`, in `zone`.
    pub fn node(&self, name: &str, host: &str, rack: &str, zone: &str) -> Node {
        let mut node = Node::new(name, host, zone, self.allocatable)
            .with_label(LABEL_RACK, rack)
            .with_pod_limits(self.max_pods, self.pods_per_core);
        node.cores = self.cores;
        node.labels
            .extend(self.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        node.taints = self.taints.clone();
        node
    }
}

/// A node at the start of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedNode {
    /// Node name (= its VM, or its server on bare metal).
    pub name: String,
    /// Its pool.
    pub pool: PoolRef,
    /// Index into [`Plan::hosts`].
    pub host: usize,
}

/// Pods of one workload that fit nowhere, and the scheduler's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Index into `Estate::workloads`.
    pub workload: usize,
    /// How many of its pods.
    pub pods: u32,
    /// kube-scheduler's message for the first of them.
    pub explanation: Explanation,
}

/// How a pool's node count was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSizing {
    /// Nodes the requests alone need (first-fit decreasing) or the declared floor.
    pub by_requests: u32,
    /// Nodes the scheduler needed to place every pod it could (≥ `by_requests`).
    pub by_scheduling: u32,
    /// The zone of each node, in index order (sized round the zones by their hosts).
    pub zones: Vec<ZoneId>,
    /// Stopped growing at the pool's declared `max`.
    pub at_max: bool,
}

/// One workload's pods at the start.
#[derive(Clone, Debug)]
pub struct WorkloadPods {
    /// Index into `Estate::workloads`.
    pub workload: usize,
    /// One replica as the scheduler sees it.
    pub template: Arc<PodTemplate>,
    /// Where each bound replica runs.
    pub bound: Vec<PodBinding>,
    /// Replicas that fit nowhere.
    pub pending: Option<Pending>,
}

/// One cluster at the start.
#[derive(Debug)]
pub struct ClusterPlan {
    /// Created later by a timeline `addCluster` step: sized, placed, but no pods yet.
    pub deferred: bool,
    /// Node templates of its pools, in pool order.
    pub templates: Vec<NodeTemplate>,
    /// The sizing of each pool, in pool order.
    pub sizing: Vec<PoolSizing>,
    /// The cluster as kube-scheduler sees it: its worker nodes and bound pods.
    pub scheduler: Scheduler,
    /// Its workloads' pods (DaemonSets are counted into the node templates instead).
    pub workloads: Vec<WorkloadPods>,
}

/// What the virtualized design adds to a plan.
#[derive(Clone, Debug)]
pub struct VirtualizedPlan {
    /// The capacity problem: hosts, groups, every VM (node VMs pinned to their zones).
    pub problem: CapacityProblem,
    /// The fewest hosts under the headroom rule.
    pub capacity: CapacityPlan,
    /// The VMs placed on the plan's hosts ([`Plan::hosts`] order).
    pub placed: PlacementOutcome,
}

/// What the bare-metal design adds to a plan.
#[derive(Clone, Debug)]
pub struct BareMetalDesign {
    /// The allocation problem.
    pub problem: BareMetalProblem,
    /// Servers per cluster and role; [`Plan::hosts`] lists them in allocation order,
    /// owned before bought.
    pub servers: BareMetalPlan,
    /// The separate virtualization pool of the VirtualMachineSets, if any.
    pub vm_pool: Option<(CapacityProblem, Result<CapacityPlan, PlacementError>)>,
}

/// The design-specific part of a plan.
#[derive(Clone, Debug)]
pub enum DesignPlan {
    /// One pool for every node VM and VirtualMachineSet.
    Virtualized(Box<VirtualizedPlan>),
    /// Whole servers per cluster.
    BareMetal(Box<BareMetalDesign>),
}

/// A design's starting state.
#[derive(Debug)]
pub struct Plan {
    /// Which design.
    pub design: EnvironmentType,
    /// Pods per pool and DaemonSets, and the workloads no pool admits.
    pub binding: Binding,
    /// The zones of the estate.
    pub zones: Zones,
    /// `topology.kubernetes.io/region` of every node.
    pub region: String,
    /// Hosts (virtualized) or servers (bare metal) of the design.
    pub hosts: Vec<PlannedHost>,
    /// Worker nodes at the start, clusters and pools in manifest order.
    pub nodes: Vec<PlannedNode>,
    /// Per cluster, in manifest order.
    pub clusters: Vec<ClusterPlan>,
    /// The design-specific part.
    pub detail: DesignPlan,
}

impl Plan {
    /// Every pending pod group, cluster by cluster.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.clusters
            .iter()
            .flat_map(|c| c.workloads.iter().filter_map(|w| w.pending.as_ref()))
    }
}

/// Why an estate cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Hosts or servers cannot be found or placed.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// A workload's pod spec is one the API server would refuse, or a node is invalid.
    #[error(transparent)]
    Pods(#[from] PodsError),
}

/// Plans `design` for `estate`: the one planning chain.
pub fn plan(estate: &Estate, design: EnvironmentType) -> Result<Plan, PlanError> {
    let binding = bind_pods(estate);
    let zones = Zones::of(estate);
    let region = region(estate);
    let chain = Chain {
        estate,
        binding,
        zones,
        region,
    };
    let workloads = chain.workload_templates()?;
    let (hosts, nodes, sizing, templates, detail) = match design {
        EnvironmentType::Virtualized => chain.virtualized(&workloads)?,
        EnvironmentType::BareMetal => chain.bare_metal(&workloads)?,
    };
    let clusters = chain.schedule(&workloads, &hosts, &nodes, sizing, templates)?;
    Ok(Plan {
        design,
        binding: chain.binding,
        zones: chain.zones,
        region: chain.region,
        hosts,
        nodes,
        clusters,
        detail,
    })
}

/// A workload bound to a pool, with its pod template.
struct Bound {
    workload: usize,
    pool: PoolRef,
    replicas: u32,
    template: Arc<PodTemplate>,
}

/// Per cluster, per pool: how each pool was sized and what its nodes are.
type Sized = (Vec<Vec<PoolSizing>>, Vec<Vec<NodeTemplate>>);

type Designed = (
    Vec<PlannedHost>,
    Vec<PlannedNode>,
    Vec<Vec<PoolSizing>>,
    Vec<Vec<NodeTemplate>>,
    DesignPlan,
);

struct Chain<'a> {
    estate: &'a Estate,
    binding: Binding,
    zones: Zones,
    region: String,
}

impl Chain<'_> {
    /// Every non-DaemonSet workload with replicas, bound to the pool `bind_pods` chose.
    fn workload_templates(&self) -> Result<Vec<Bound>, PodsError> {
        let mut out = Vec::new();
        for (wi, w) in self.estate.workloads.iter().enumerate() {
            if w.id.kind == WorkloadKind::DaemonSet || w.replicas == 0 {
                continue;
            }
            let Some(pool) = self.binding.pool_of(wi) else {
                continue;
            };
            let Some(cluster) = self
                .estate
                .clusters
                .iter()
                .position(|c| c.name == w.id.cluster)
            else {
                continue;
            };
            let Some(p) = self.estate.clusters[cluster]
                .spec
                .node_pools
                .iter()
                .position(|p| p.name == pool)
            else {
                continue;
            };
            out.push(Bound {
                workload: wi,
                pool: PoolRef { cluster, pool: p },
                replicas: w.replicas,
                template: Arc::new(PodTemplate::of_workload(w)?),
            });
        }
        Ok(out)
    }

    /// The node template of pool `r`: VM-sized, or a whole server of `class` (bare metal).
    fn template(&self, r: PoolRef, class: Option<usize>) -> NodeTemplate {
        let c = &self.estate.clusters[r.cluster];
        let p = &c.spec.node_pools[r.pool];
        let k = kubelet(&self.binding, &c.name, p);
        let classes = &self.estate.inventory.spec.host_classes;
        let (size, cores, instance) = match class.and_then(|c| classes.get(c)) {
            Some(c) => (c.capacity(), c.threads(), c.name.clone()),
            None => (vm_allocatable(self.estate, p), p.vcpu, p.name.clone()),
        };
        let mut labels = BTreeMap::from([(LABEL_INSTANCE_TYPE.to_owned(), instance)]);
        labels.extend(pool_labels(&self.region, p));
        NodeTemplate {
            allocatable: size.saturating_sub(&k.reserved),
            labels,
            taints: p
                .taints
                .iter()
                .map(|t| {
                    let effect = match t.effect {
                        ModelEffect::NoSchedule => TaintEffect::NoSchedule,
                        ModelEffect::PreferNoSchedule => TaintEffect::PreferNoSchedule,
                        ModelEffect::NoExecute => TaintEffect::NoExecute,
                    };
                    Taint::new(t.key.clone(), t.value.clone(), effect)
                })
                .collect(),
            max_pods: k.max_pods,
            pods_per_core: k.pods_per_core.unwrap_or(0),
            cores,
        }
    }

    /// How many hosts each zone has in the design, for spreading nodes over zones.
    fn zone_weights(&self, racks: impl Iterator<Item = usize>) -> Vec<u32> {
        let mut w = vec![0u32; self.zones.names.len()];
        for r in racks {
            if let Some(z) = self.zones.of_rack.get(r) {
                w[z.0 as usize] += 1;
            }
        }
        if w.iter().all(|&n| n == 0) {
            w[0] = 1;
        }
        w
    }

    /// Sizes every pool of every cluster with the scheduler. `start` gives each pool's
    /// first count (requests and declarations); `template` its node shape.
    fn size(
        &self,
        workloads: &[Bound],
        weights: &[u32],
        start: impl Fn(PoolRef) -> u32,
        template: impl Fn(PoolRef) -> NodeTemplate,
    ) -> Result<Sized, PodsError> {
        let mut sizing = Vec::new();
        let mut templates = Vec::new();
        for (ci, c) in self.estate.clusters.iter().enumerate() {
            let t: Vec<NodeTemplate> = (0..c.spec.node_pools.len())
                .map(|pi| {
                    template(PoolRef {
                        cluster: ci,
                        pool: pi,
                    })
                })
                .collect();
            let pools: Vec<SizedPool> = c
                .spec
                .node_pools
                .iter()
                .enumerate()
                .map(|(pi, p)| SizedPool {
                    name: format!("{}-{}", c.name, p.name),
                    start: start(PoolRef {
                        cluster: ci,
                        pool: pi,
                    }),
                    max: p.max,
                })
                .collect();
            let mine: Vec<&Bound> = workloads.iter().filter(|w| w.pool.cluster == ci).collect();
            sizing.push(size_cluster(&pools, &t, &mine, weights, &self.zones)?);
            templates.push(t);
        }
        Ok((sizing, templates))
    }

    fn virtualized(&self, workloads: &[Bound]) -> Result<Designed, PlanError> {
        let estate = self.estate;
        let weights = self.zone_weights(
            estate
                .hosts
                .iter()
                .filter(|h| h.role == HostRole::Active)
                .map(|h| h.rack),
        );
        let (sizing, templates) = self.size(
            workloads,
            &weights,
            |r| {
                let c = &estate.clusters[r.cluster];
                let p = &c.spec.node_pools[r.pool];
                let k = kubelet(&self.binding, &c.name, p);
                let alloc = vm_allocatable(estate, p).saturating_sub(&k.reserved);
                let fit = crate::nodes::fit_nodes(&alloc, k.pod_limit(p.vcpu), self.shapes(r))
                    .unwrap_or(p.replicas);
                p.replicas.max(p.bounds().0).max(fit)
            },
            |r| self.template(r, None),
        )?;
        // The sized counts go to placement, which spreads the node VMs by their placement
        // groups; each node takes the zone of the host it starts on. (Keeping node VMs in
        // the sized zones needs reserves per zone, which the capacity plan has not.)
        let mut counts = PoolSizes::new();
        for (ci, c) in estate.clusters.iter().enumerate() {
            for (pi, p) in c.spec.node_pools.iter().enumerate() {
                counts.insert(
                    (c.name.clone(), p.name.clone()),
                    sizing[ci][pi].by_scheduling,
                );
            }
        }
        let problem = virtualized_problem(estate, &counts);
        let capacity = plan_capacity(&problem)?;
        let mut hosts = Vec::new();
        let mut specs = Vec::new();
        let rack_name = |r: u32| {
            problem
                .racks
                .get(r as usize)
                .map_or_else(|| "new".to_owned(), Clone::clone)
        };
        let zone_of = |r: RackId| {
            self.zones
                .of_rack
                .get(r.0 as usize)
                .copied()
                .unwrap_or(ZoneId(0))
        };
        // The plan's owned hosts only: owned hosts it leaves unused are surplus.
        for o in problem
            .owned
            .iter()
            .filter(|o| capacity.host_names.contains(&o.name))
        {
            hosts.push(PlannedHost {
                name: o.name.clone(),
                class: o.class,
                rack: rack_name(o.rack.0),
                zone: zone_of(o.rack),
            });
            specs.push(HostSpec::new(
                o.name.clone(),
                o.rack,
                problem.classes[o.class].capacity,
            ));
        }
        let racks = problem.racks.len().max(1) as u32;
        for u in &capacity.per_class {
            let Some(ci) = problem.classes.iter().position(|c| c.name == u.class) else {
                continue;
            };
            for i in 0..u.to_buy {
                let name = format!("new-{}-{:02}", u.class, i + 1);
                let rack = RackId(i % racks);
                hosts.push(PlannedHost {
                    name: name.clone(),
                    class: ci,
                    rack: rack_name(rack.0),
                    zone: zone_of(rack),
                });
                specs.push(HostSpec::new(name, rack, problem.classes[ci].capacity));
            }
        }
        let pool = problem.pool(specs, problem.groups.clone(), problem.config.clone())?;
        let placed = place_all(pool, problem.vms.clone());
        // Node `i` of pool `p` of cluster `c` is the VM `virtualized_problem` named
        // `<c>-<p>-<i>`.
        let index: BTreeMap<&str, usize> = problem
            .vms
            .iter()
            .enumerate()
            .map(|(i, vm)| (vm.name.as_str(), i))
            .collect();
        let mut nodes = Vec::new();
        for (ci, c) in estate.clusters.iter().enumerate() {
            for (pi, p) in c.spec.node_pools.iter().enumerate() {
                for i in 0..sizing[ci][pi].zones.len() {
                    let name = format!("{}{i}", node_prefix(&c.name, &p.name));
                    let host = index.get(name.as_str()).and_then(|&v| placed.hosts[v]);
                    if let Some(h) = host {
                        nodes.push(PlannedNode {
                            name,
                            pool: PoolRef {
                                cluster: ci,
                                pool: pi,
                            },
                            host: h.index(),
                        });
                    }
                }
            }
        }
        let detail = DesignPlan::Virtualized(Box::new(VirtualizedPlan {
            problem,
            capacity,
            placed,
        }));
        Ok((hosts, nodes, sizing, templates, detail))
    }

    fn bare_metal(&self, workloads: &[Bound]) -> Result<Designed, PlanError> {
        let estate = self.estate;
        let classes = &estate.inventory.spec.host_classes;
        let weights = self.zone_weights(
            estate
                .hosts
                .iter()
                .filter(|h| h.role == HostRole::Active)
                .map(|h| h.rack),
        );
        // First by requests, then with each pool's chosen class as the node shape the
        // scheduler sizes with; a pool that needs more nodes raises its floor.
        let mut floors = BTreeMap::new();
        let first = allocate_servers(&bare_metal_problem(estate, &self.binding, &floors))?;
        let class_of = |plan: &BareMetalPlan, r: PoolRef| -> Option<(usize, u32)> {
            let c = &estate.clusters[r.cluster];
            let p = &c.spec.node_pools[r.pool];
            plan.allocations
                .iter()
                .find(|a| {
                    a.cluster.as_deref() == Some(c.name.as_str())
                        && a.role == Role::Pool(p.name.clone())
                })
                .and_then(|a| {
                    classes
                        .iter()
                        .position(|k| k.name == a.class)
                        .map(|k| (k, a.fit_nodes))
                })
        };
        let (sizing, _) = self.size(
            workloads,
            &weights,
            |r| class_of(&first, r).map_or(0, |(_, fit)| fit),
            |r| self.template(r, class_of(&first, r).map(|(k, _)| k)),
        )?;
        for (ci, c) in estate.clusters.iter().enumerate() {
            for (pi, p) in c.spec.node_pools.iter().enumerate() {
                let s = &sizing[ci][pi];
                if s.by_scheduling > s.by_requests {
                    floors.insert((c.name.clone(), p.name.clone()), s.by_scheduling);
                }
            }
        }
        let problem = bare_metal_problem(estate, &self.binding, &floors);
        let servers = if floors.is_empty() {
            first
        } else {
            allocate_servers(&problem)?
        };
        let inventory: BTreeMap<&str, &plinth_model::estate::Host> = estate
            .hosts
            .iter()
            .filter(|h| h.role == HostRole::Active || h.role == HostRole::Spare)
            .map(|h| (h.name.as_str(), h))
            .collect();
        let mut hosts = Vec::new();
        let mut nodes = Vec::new();
        let mut bought: BTreeMap<&str, u32> = BTreeMap::new();
        let templates: Vec<Vec<NodeTemplate>> = estate
            .clusters
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                (0..c.spec.node_pools.len())
                    .map(|pi| {
                        let r = PoolRef {
                            cluster: ci,
                            pool: pi,
                        };
                        self.template(r, class_of(&servers, r).map(|(k, _)| k))
                    })
                    .collect()
            })
            .collect();
        for a in &servers.allocations {
            let Some(class) = classes.iter().position(|c| c.name == a.class) else {
                continue;
            };
            let ci = a
                .cluster
                .as_deref()
                .and_then(|name| estate.clusters.iter().position(|c| c.name == name));
            let pool = match (&a.role, ci) {
                (Role::Pool(p), Some(ci)) => estate.clusters[ci]
                    .spec
                    .node_pools
                    .iter()
                    .position(|x| &x.name == p)
                    .map(|pi| PoolRef {
                        cluster: ci,
                        pool: pi,
                    }),
                _ => None,
            };
            let mut names: Vec<String> = a.owned.clone();
            for _ in 0..a.to_buy {
                let n = bought.entry(a.class.as_str()).or_insert(0);
                *n += 1;
                names.push(format!("new-{}-{:02}", a.class, n));
            }
            for name in names {
                let (class, rack) = match inventory.get(name.as_str()) {
                    Some(h) => (h.class, Some(h.rack)),
                    None => (class, None),
                };
                let zone = rack
                    .and_then(|r| self.zones.of_rack.get(r).copied())
                    .unwrap_or(ZoneId(0));
                let rack = rack
                    .and_then(|r| estate.inventory.spec.racks.get(r))
                    .map_or_else(|| "new".to_owned(), |r| r.name.clone());
                if let Some(r) = pool {
                    nodes.push(PlannedNode {
                        name: name.clone(),
                        pool: r,
                        host: hosts.len(),
                    });
                }
                hosts.push(PlannedHost {
                    name,
                    class,
                    rack,
                    zone,
                });
            }
        }
        let vm_pool = bare_metal_vm_pool(estate, &servers.spare).map(|p| {
            let planned = plan_capacity(&p);
            (p, planned)
        });
        let detail = DesignPlan::BareMetal(Box::new(BareMetalDesign {
            problem,
            servers,
            vm_pool,
        }));
        Ok((hosts, nodes, sizing, templates, detail))
    }

    /// The pod shapes bound to a pool.
    fn shapes(&self, r: PoolRef) -> &[crate::nodes::PodShape] {
        let c = &self.estate.clusters[r.cluster];
        let p = &c.spec.node_pools[r.pool];
        self.binding
            .pods
            .get(&c.name)
            .and_then(|m| m.get(&p.name))
            .map_or(&[], Vec::as_slice)
    }

    /// Builds each cluster's scheduler over its real nodes and schedules its pods.
    fn schedule(
        &self,
        workloads: &[Bound],
        hosts: &[PlannedHost],
        nodes: &[PlannedNode],
        sizing: Vec<Vec<PoolSizing>>,
        templates: Vec<Vec<NodeTemplate>>,
    ) -> Result<Vec<ClusterPlan>, PodsError> {
        let deferred = crate::designs::deferred_clusters(self.estate);
        let mut out = Vec::new();
        for (((ci, c), sizing), templates) in self
            .estate
            .clusters
            .iter()
            .enumerate()
            .zip(sizing)
            .zip(templates)
        {
            let later = deferred.contains(&c.name);
            // A cluster added later has no nodes yet: they join as they are created.
            let members = nodes
                .iter()
                .filter(|n| n.pool.cluster == ci && !later)
                .map(|n| {
                    let h = &hosts[n.host];
                    let zone = self.zones.name(h.zone);
                    templates[n.pool.pool].node(&n.name, &h.name, &h.rack, zone)
                })
                .collect();
            let mut scheduler = Scheduler::new(members, ScoringStrategy::LeastAllocated)?;
            let mut pods = Vec::new();
            for w in workloads.iter().filter(|w| w.pool.cluster == ci) {
                let (bound, pending) = if later {
                    (Vec::new(), None)
                } else {
                    let o = scheduler.schedule_replicas(&w.template, w.replicas)?;
                    let pending = o.explanation.map(|explanation| Pending {
                        workload: w.workload,
                        pods: o.pending,
                        explanation,
                    });
                    (o.bound, pending)
                };
                pods.push(WorkloadPods {
                    workload: w.workload,
                    template: Arc::clone(&w.template),
                    bound,
                    pending,
                });
            }
            out.push(ClusterPlan {
                deferred: later,
                templates,
                sizing,
                scheduler,
                workloads: pods,
            });
        }
        Ok(out)
    }
}

/// A pool as the sizing sees it.
struct SizedPool {
    /// Node name prefix (`cluster-pool`).
    name: String,
    /// Nodes to start from.
    start: u32,
    /// The declared `max`, if any.
    max: Option<u32>,
}

/// The zone for node `i` of a pool: nodes go round the zones in proportion to their
/// hosts (the zone with the fewest nodes per host next; ties by zone order).
fn next_zone(counts: &[u32], weights: &[u32]) -> ZoneId {
    let mut best = 0usize;
    for z in 1..weights.len() {
        if weights[z] == 0 {
            continue;
        }
        // counts[z]/weights[z] < counts[best]/weights[best], without division.
        let better = weights[best] == 0
            || u64::from(counts[z]) * u64::from(weights[best])
                < u64::from(counts[best]) * u64::from(weights[z]);
        if better {
            best = z;
        }
    }
    ZoneId(u32::try_from(best).unwrap_or(0))
}

/// Sizes one cluster's pools: start from each pool's count, schedule every workload, and
/// while pods are pending add a node to the pool they are bound to — the cluster
/// autoscaler's rule — until they fit, the pool reaches its `max`, or a round of the zones
/// places none of them (constraints no extra node can meet; those nodes are taken back).
fn size_cluster(
    pools: &[SizedPool],
    templates: &[NodeTemplate],
    workloads: &[&Bound],
    weights: &[u32],
    zones: &Zones,
) -> Result<Vec<PoolSizing>, PodsError> {
    let mut counts: Vec<Vec<u32>> = vec![vec![0; weights.len()]; pools.len()];
    let mut sizing: Vec<PoolSizing> = pools
        .iter()
        .map(|p| PoolSizing {
            by_requests: p.start,
            by_scheduling: 0,
            zones: Vec::new(),
            at_max: false,
        })
        .collect();
    let mut scheduler = Scheduler::new(Vec::new(), ScoringStrategy::LeastAllocated)?;
    // Adds node `i` of pool `pi` in the zone its turn gives it.
    let grow =
        |s: &mut Scheduler, counts: &mut [Vec<u32>], sizing: &mut [PoolSizing], pi: usize| {
            let zone = next_zone(&counts[pi], weights);
            counts[pi][zone.0 as usize] += 1;
            let i = sizing[pi].zones.len();
            sizing[pi].zones.push(zone);
            let name = format!("{}-{i}", pools[pi].name);
            // A node of the sizing trial stands for a host of its own in its zone.
            let zone = zones.name(zone);
            s.add_node(templates[pi].node(&name, &name, zone, zone))
        };
    for (pi, p) in pools.iter().enumerate() {
        for _ in 0..p.start {
            grow(&mut scheduler, &mut counts, &mut sizing, pi)?;
        }
    }
    let mut pending: Vec<(usize, u32)> = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        let o = scheduler.schedule_replicas(&w.template, w.replicas)?;
        if o.pending > 0 {
            pending.push((i, o.pending));
        }
    }
    let rounds = weights.iter().filter(|&&w| w > 0).count().max(1) + 1;
    for (i, mut left) in pending {
        let w = workloads[i];
        let pi = w.pool.pool;
        let mut idle = 0;
        while left > 0 {
            let at = sizing[pi].zones.len() as u32;
            if pools[pi].max.is_some_and(|m| at >= m) {
                sizing[pi].at_max = true;
                break;
            }
            if idle >= rounds {
                // No zone helped: take back the nodes added since the last progress.
                for _ in 0..idle {
                    if let Some(z) = sizing[pi].zones.pop() {
                        counts[pi][z.0 as usize] -= 1;
                        let name = format!("{}-{}", pools[pi].name, sizing[pi].zones.len());
                        scheduler.remove_node(&name)?;
                    }
                }
                break;
            }
            grow(&mut scheduler, &mut counts, &mut sizing, pi)?;
            let o = scheduler.schedule_replicas(&w.template, left)?;
            if o.bound.is_empty() {
                idle += 1;
            } else {
                idle = 0;
                left = o.pending;
            }
        }
    }
    for s in &mut sizing {
        s.by_scheduling = s.zones.len() as u32;
    }
    Ok(sizing)
}
