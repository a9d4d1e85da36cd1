//! Servers onto bare-metal clusters: whole servers, exclusive to one cluster, one node per
//! server; the control plane on servers of its own (dedicated) or as members on the first
//! worker pool's servers (stacked, their size counted as pods of that pool); each role
//! sized by the shared node-count formula ([`crate::nodes`]) on the cheapest server class
//! that fits, with room for `hostsInMaintenance` drained servers in every worker pool.
//! Spares follow the Environment's policy ([`SpareScope`]): shared by every cluster
//! (`estate`, or per rack), `hostFailuresToTolerate + upgradeSurge` servers of each class a
//! worker pool uses; or each cluster's own (`cluster`), every worker pool sized for the
//! failures too and one surge server per cluster, of its largest pool's class. Owned servers are used first, taken round-robin over their racks so that a role spreads over racks;
//! the rest is reported as servers to buy, never as an error. Stranded capacity is what a
//! cluster's servers offer beyond its pods' requests: free, but no other cluster can use
//! it.

use std::collections::BTreeMap;

use plinth_model::Resources;
pub use plinth_model::kinds::environment::SpareScope;

use crate::capacity::HeadroomRule;
use crate::error::PlacementError;
use crate::explain::Explanation;
use crate::nodes::{Kubelet, NodeTerm, PodShape, fit_nodes, node_count};

/// A server model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerClass {
    /// Class name.
    pub name: String,
    /// The whole server (CPU = threads × 1000).
    pub capacity: Resources,
    /// Physical cores, for `podsPerCore`.
    pub cores: u32,
    /// Price of one server.
    pub price: u64,
}

/// An owned server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Server name.
    pub name: String,
    /// Index into [`BareMetalProblem::classes`].
    pub class: usize,
    /// Its rack (an index; servers of one role are spread over racks).
    pub rack: usize,
}

/// A node pool (or a control plane) of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePoolDemand {
    /// Pool name.
    pub name: String,
    /// Declared replicas: a floor on the node count when `declared_size` is `None` (a
    /// control plane, whose members are etcd voters), else the count of declared nodes
    /// of `declared_size` whose capacity the servers must at least match.
    pub replicas: u32,
    /// The fewest nodes the pods' scheduling constraints need (required anti-affinity,
    /// DoNotSchedule spread), found by the scheduler; 0 when nothing beyond requests.
    pub scheduling: u32,
    /// The declared node size (CPU, memory) of a worker pool. Its declared capacity,
    /// `replicas × declared_size`, is the floor in whole servers: a pool declared as
    /// 12 × 16 vCPU needs the servers that hold 192 vCPU, not 12 servers.
    pub declared_size: Option<Resources>,
    /// The pods bound to the pool, by shape.
    pub pods: Vec<PodShape>,
    /// Kubelet reservations and pod limits of its nodes.
    pub kubelet: Kubelet,
}

impl NodePoolDemand {
    /// The fewest nodes of `allocatable` that the declaration asks for.
    pub fn declared_nodes(&self, allocatable: &Resources) -> u32 {
        let Some(size) = self.declared_size else {
            return self.replicas;
        };
        let n = u64::from(self.replicas);
        let per = |want: u64, have: u64| {
            if want == 0 {
                0
            } else if have == 0 {
                u64::from(u32::MAX)
            } else {
                (want.saturating_mul(n)).div_ceil(have)
            }
        };
        let nodes = per(size.cpu_millis, allocatable.cpu_millis)
            .max(per(size.memory_bytes, allocatable.memory_bytes));
        u32::try_from(nodes).unwrap_or(u32::MAX)
    }
}

/// One cluster's demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDemand {
    /// Cluster name.
    pub name: String,
    /// The control plane: its replicas and the pods (components) each member runs.
    pub control_plane: NodePoolDemand,
    /// Whether the control-plane members run on the first worker pool's servers
    /// (stacked) instead of servers of their own (dedicated).
    pub stacked: bool,
    /// Worker pools.
    pub pools: Vec<NodePoolDemand>,
}

/// The bare-metal problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BareMetalProblem {
    /// Server classes (owned servers belong to them; missing servers are bought from them).
    pub classes: Vec<ServerClass>,
    /// Owned servers.
    pub servers: Vec<Server>,
    /// Clusters, allocated in name order.
    pub clusters: Vec<ClusterDemand>,
    /// How many spares: failures and maintenance, and surge.
    pub rule: HeadroomRule,
    /// Per what the spares are kept.
    pub spares: SpareScope,
}

/// What a role of a cluster gets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The control plane's servers.
    ControlPlane,
    /// A worker pool's servers.
    Pool(String),
    /// A cluster's own spare servers for rolling-upgrade surge nodes (scope `cluster`).
    Surge,
    /// Spare servers shared by every cluster (scope `estate` or `rack`).
    Spare,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ControlPlane => f.write_str("control plane"),
            Self::Pool(p) => write!(f, "pool {p}"),
            Self::Surge => f.write_str("surge"),
            Self::Spare => f.write_str("spare"),
        }
    }
}

/// Servers given to one role of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleAllocation {
    /// The cluster; `None` for the spares every cluster shares.
    pub cluster: Option<String>,
    /// The role.
    pub role: Role,
    /// The server class chosen.
    pub class: String,
    /// Servers (= nodes) the role gets.
    pub nodes: u32,
    /// Nodes its pods' requests alone need.
    pub fit_nodes: u32,
    /// Which term of the formula set `nodes`.
    pub term: NodeTerm,
    /// Owned servers given to it, by name.
    pub owned: Vec<String>,
    /// Servers of `class` to buy for it.
    pub to_buy: u32,
    /// Allocatable of its servers (capacity less kubelet reservations), all together.
    pub allocatable: Resources,
    /// What its pods (or control-plane members) request, all together.
    pub requested: Resources,
}

impl RoleAllocation {
    /// Allocatable left beyond its pods' requests: free, but no other cluster can use it.
    pub fn stranded(&self) -> Resources {
        self.allocatable.saturating_sub(&self.requested)
    }

    /// Why the role has its servers, in words: the rule of `problem` that set the count,
    /// and whether `plan` stacks the cluster's control-plane members on its first pool.
    pub fn reason(&self, problem: &BareMetalProblem, plan: &BareMetalPlan) -> String {
        let rule = &problem.rule;
        let stacked = self.cluster.as_deref().is_some_and(|c| plan.stacked(c));
        let members = if stacked {
            " (control-plane members stacked on the first servers, counted as pods)"
        } else {
            ""
        };
        match (&self.role, self.term) {
            (Role::ControlPlane, _) => format!(
                "{} control-plane members, one per server of their own (dedicated)",
                self.nodes
            ),
            (Role::Surge, _) => {
                "one spare server per cluster for rolling upgrades (upgradeSurge) and repairs"
                    .into()
            }
            (Role::Spare, _) => {
                let kept = match (problem.spares, self.owned.is_empty()) {
                    (SpareScope::Rack, false) => "kept in one rack, ",
                    (SpareScope::Rack, true) => "for the pools' bought servers, ",
                    _ => "",
                };
                format!(
                    "{} servers, {kept}shared by every cluster: +{} for host failures, +{} for upgrade surges",
                    self.class, rule.host_failures, rule.surge
                )
            }
            (Role::Pool(_), NodeTerm::Declared) => format!(
                "the pool's declared capacity needs {} server{} of this class{members}",
                self.nodes,
                if self.nodes == 1 { "" } else { "s" }
            ),
            (Role::Pool(_), NodeTerm::Capacity) => {
                format!("the pods' requests need {}{members}", self.fit_nodes)
            }
            (Role::Pool(_), NodeTerm::Headroom) if problem.spares.shared() => format!(
                "the pods need {}{members}, +{} in maintenance (failures take a shared spare)",
                self.fit_nodes, rule.maintenance
            ),
            (Role::Pool(_), NodeTerm::Headroom) => format!(
                "the pods need {}{members}, +{} for host failures, +{} in maintenance",
                self.fit_nodes, rule.host_failures, rule.maintenance
            ),
        }
    }
}

impl BareMetalProblem {
    /// Servers the pool `pool` of `cluster` needs when its declared replicas become
    /// `replicas` (a timeline `scalePool` step): the node-count formula again, with the new
    /// declared capacity, on the class `plan` gave the pool and with the nodes its pods
    /// need. `None` when the pool has no allocation.
    pub fn servers_for(
        &self,
        plan: &BareMetalPlan,
        cluster: &str,
        pool: &str,
        replicas: u32,
    ) -> Option<u32> {
        let demand = self
            .clusters
            .iter()
            .find(|c| c.name == cluster)?
            .pools
            .iter()
            .find(|p| p.name == pool)?;
        let alloc = plan.allocations.iter().find(|a| {
            a.cluster.as_deref() == Some(cluster) && a.role == Role::Pool(pool.to_owned())
        })?;
        let class = self.classes.iter().find(|c| c.name == alloc.class)?;
        let scaled = NodePoolDemand {
            replicas,
            ..demand.clone()
        };
        let allocatable = class.capacity - demand.kubelet.reserved;
        Some(
            node_count(
                scaled.declared_nodes(&allocatable),
                alloc.fit_nodes,
                self.pool_extra(),
            )
            .0,
        )
    }
}

impl BareMetalProblem {
    /// Nodes every worker pool gets on top of its pods: room for the servers in
    /// maintenance (a drained server's pods go to the pool's other nodes), and for the
    /// failures too when each cluster keeps its own spares.
    fn pool_extra(&self) -> u32 {
        if self.spares.shared() {
            self.rule.maintenance
        } else {
            self.rule
                .host_failures
                .saturating_add(self.rule.maintenance)
        }
    }
}

impl BareMetalPlan {
    /// Whether `cluster`'s control plane is stacked on its workers (it has no
    /// control-plane servers of its own).
    pub fn stacked(&self, cluster: &str) -> bool {
        !self
            .allocations
            .iter()
            .any(|a| a.cluster.as_deref() == Some(cluster) && a.role == Role::ControlPlane)
    }
}

/// The allocation of servers to clusters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BareMetalPlan {
    /// Per cluster (name order) and role (control plane, pools by name, surge).
    pub allocations: Vec<RoleAllocation>,
    /// Servers to buy per class name.
    pub to_buy: BTreeMap<String, u32>,
    /// Owned servers no cluster got, by name.
    pub spare: Vec<String>,
}

impl BareMetalPlan {
    /// Sum of every role's stranded capacity.
    pub fn stranded(&self) -> Resources {
        self.allocations
            .iter()
            .fold(Resources::ZERO, |acc, a| acc + a.stranded())
    }
}

/// The owned servers of each class in the order roles take them: round-robin over the
/// racks (racks by index, servers by name within a rack), so consecutive servers are in
/// different racks. Each list is reversed, to be taken from its end with `pop`.
fn free_lists(problem: &BareMetalProblem) -> Vec<Vec<usize>> {
    let mut by_rack: Vec<BTreeMap<usize, Vec<usize>>> =
        vec![BTreeMap::new(); problem.classes.len()];
    for (i, s) in problem.servers.iter().enumerate() {
        if let Some(racks) = by_rack.get_mut(s.class) {
            racks.entry(s.rack).or_default().push(i);
        }
    }
    by_rack
        .into_iter()
        .map(|racks| {
            let mut racks: Vec<Vec<usize>> = racks.into_values().collect();
            for r in &mut racks {
                r.sort_by(|a, b| problem.servers[*a].name.cmp(&problem.servers[*b].name));
            }
            let longest = racks.iter().map(Vec::len).max().unwrap_or(0);
            let mut order: Vec<usize> = (0..longest)
                .flat_map(|k| racks.iter().filter_map(move |r| r.get(k).copied()))
                .collect();
            order.reverse();
            order
        })
        .collect()
}

/// The first worker pool (by name) of a stacked cluster with its control-plane members
/// added as pods of the members' size, and its node floor raised to the member count.
fn with_members(pool: &NodePoolDemand, control_plane: &NodePoolDemand) -> NodePoolDemand {
    let mut p = pool.clone();
    p.pods
        .extend(control_plane.pods.iter().map(|shape| PodShape {
            requests: shape.requests,
            count: shape.count.saturating_mul(control_plane.replicas),
        }));
    p.scheduling = p.scheduling.max(control_plane.replicas);
    p
}

/// Allocates whole servers to clusters. Errors only when some pod fits no server class.
pub fn allocate_servers(problem: &BareMetalProblem) -> Result<BareMetalPlan, PlacementError> {
    let mut free = free_lists(problem);
    let mut clusters: Vec<&ClusterDemand> = problem.clusters.iter().collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let mut plan = BareMetalPlan {
        allocations: Vec::new(),
        to_buy: BTreeMap::new(),
        spare: Vec::new(),
    };
    let extra = problem.pool_extra();
    for cluster in clusters {
        let mut pools: Vec<NodePoolDemand> = cluster.pools.clone();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        let stacked = cluster.stacked && !pools.is_empty();
        let mut roles: Vec<(Role, &NodePoolDemand, u32)> = Vec::new();
        if stacked {
            pools[0] = with_members(&pools[0], &cluster.control_plane);
        } else {
            roles.push((Role::ControlPlane, &cluster.control_plane, 0));
        }
        roles.extend(pools.iter().map(|p| (Role::Pool(p.name.clone()), p, extra)));
        let mut largest: Option<(u32, usize)> = None;
        for (role, demand, extra) in roles {
            let (class, fit) = best_class(problem, demand, &free, extra)
                .ok_or_else(|| unfit(cluster, demand, problem))?;
            let allocatable = problem.classes[class].capacity - demand.kubelet.reserved;
            let (nodes, term) = node_count(demand.declared_nodes(&allocatable), fit, extra);
            if role != Role::ControlPlane && largest.is_none_or(|(n, _)| nodes > n) {
                largest = Some((nodes, class));
            }
            let alloc = take(
                problem,
                &mut free,
                &mut plan,
                Some(&cluster.name),
                role,
                class,
                nodes,
                fit,
                term,
                demand,
            );
            plan.allocations.push(alloc);
        }
        if let Some((_, class)) = largest
            && problem.rule.surge > 0
            && !problem.spares.shared()
        {
            let surge = NodePoolDemand {
                name: "surge".into(),
                replicas: 0,
                scheduling: 0,
                declared_size: None,
                pods: vec![],
                kubelet: Kubelet::default(),
            };
            let n = problem.rule.surge;
            let alloc = take(
                problem,
                &mut free,
                &mut plan,
                Some(&cluster.name),
                Role::Surge,
                class,
                n,
                0,
                NodeTerm::Headroom,
                &surge,
            );
            plan.allocations.push(alloc);
        }
    }
    if problem.spares.shared() {
        shared_spares(problem, &mut free, &mut plan);
    }
    let mut spare: Vec<String> = free
        .iter()
        .flatten()
        .map(|s| problem.servers[*s].name.clone())
        .collect();
    spare.sort();
    plan.spare = spare;
    Ok(plan)
}

/// The shared spares: `host_failures + surge` servers of each class a worker pool uses,
/// once for the estate or, with scope `rack`, once per rack holding such a pool's servers
/// (taken from that rack while it has free servers of the class), the sets of racks first.
fn shared_spares(problem: &BareMetalProblem, free: &mut [Vec<usize>], plan: &mut BareMetalPlan) {
    let n = problem
        .rule
        .host_failures
        .saturating_add(problem.rule.surge);
    if n == 0 {
        return;
    }
    let rack_of: BTreeMap<&str, usize> = problem
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.rack))
        .collect();
    // (class, rack): `None` for the estate, or for servers to buy (no rack yet).
    let mut groups: std::collections::BTreeSet<(usize, Option<usize>)> = Default::default();
    for a in plan
        .allocations
        .iter()
        .filter(|a| matches!(a.role, Role::Pool(_)))
    {
        let Some(class) = problem.classes.iter().position(|c| c.name == a.class) else {
            continue;
        };
        if problem.spares == SpareScope::Rack {
            groups.extend(
                a.owned
                    .iter()
                    .map(|s| (class, rack_of.get(s.as_str()).copied())),
            );
            if a.to_buy > 0 {
                groups.insert((class, None));
            }
        } else {
            groups.insert((class, None));
        }
    }
    let empty = NodePoolDemand {
        name: "spare".into(),
        replicas: 0,
        scheduling: 0,
        declared_size: None,
        pods: vec![],
        kubelet: Kubelet::default(),
    };
    // A rack's set takes that rack's free servers before a set of no rack takes any.
    let mut groups: Vec<(usize, Option<usize>)> = groups.into_iter().collect();
    groups.sort_by_key(|(class, rack)| (rack.is_none(), *class, *rack));
    for (class, rack) in groups {
        if let Some(rack) = rack {
            // This rack's free servers of the class go to the end of the list, taken first.
            free[class].sort_by_key(|s| problem.servers[*s].rack == rack);
        }
        let alloc = take(
            problem,
            free,
            plan,
            None,
            Role::Spare,
            class,
            n,
            0,
            NodeTerm::Headroom,
            &empty,
        );
        plan.allocations.push(alloc);
    }
}

/// How a class ranks for a role, cheapest first: (to buy, value used, servers, name).
type ClassCost<'a> = (u64, u64, u32, &'a str);

/// The cheapest class that fits `demand`: the least to buy given the owned servers still
/// free, then the least value of servers used (so a small class serves a small role),
/// then the fewest servers, then the name.
fn best_class(
    problem: &BareMetalProblem,
    demand: &NodePoolDemand,
    free: &[Vec<usize>],
    extra: u32,
) -> Option<(usize, u32)> {
    let mut best: Option<(ClassCost<'_>, usize, u32)> = None;
    for (i, class) in problem.classes.iter().enumerate() {
        let allocatable = class.capacity - demand.kubelet.reserved;
        let Some(fit) = fit_nodes(
            &allocatable,
            demand.kubelet.pod_limit(class.cores),
            &demand.pods,
        ) else {
            continue;
        };
        let fit = fit.max(demand.scheduling);
        let (nodes, _) = node_count(demand.declared_nodes(&allocatable), fit, extra);
        let buy = u64::from(nodes).saturating_sub(free[i].len() as u64) * class.price;
        let used = u64::from(nodes) * class.price;
        let key = (buy, used, nodes, class.name.as_str());
        if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
            best = Some((key, i, fit));
        }
    }
    best.map(|(_, i, fit)| (i, fit))
}

#[allow(clippy::too_many_arguments)]
fn take(
    problem: &BareMetalProblem,
    free: &mut [Vec<usize>],
    plan: &mut BareMetalPlan,
    cluster: Option<&str>,
    role: Role,
    class: usize,
    nodes: u32,
    fit: u32,
    term: NodeTerm,
    demand: &NodePoolDemand,
) -> RoleAllocation {
    let owned: Vec<String> = (0..nodes)
        .map_while(|_| free[class].pop())
        .map(|s| problem.servers[s].name.clone())
        .collect();
    let to_buy = nodes - owned.len() as u32;
    let c = &problem.classes[class];
    if to_buy > 0 {
        *plan.to_buy.entry(c.name.clone()).or_insert(0) += to_buy;
    }
    let requested = demand.pods.iter().fold(Resources::ZERO, |acc, p| {
        acc + p.requests.times(u64::from(p.count))
    });
    let allocatable = (c.capacity - demand.kubelet.reserved).times(u64::from(nodes));
    RoleAllocation {
        cluster: cluster.map(str::to_owned),
        role,
        class: c.name.clone(),
        nodes,
        fit_nodes: fit,
        term,
        owned,
        to_buy,
        allocatable,
        requested,
    }
}

fn unfit(
    cluster: &ClusterDemand,
    demand: &NodePoolDemand,
    problem: &BareMetalProblem,
) -> PlacementError {
    let mut explanation = Explanation::new("server classes", problem.classes.len());
    for _ in &problem.classes {
        explanation.reject("a pod's requests exceed a node's allocatable");
    }
    PlacementError::Unplaceable {
        vm: format!("{}/{}", cluster.name, demand.name),
        explanation,
    }
}
