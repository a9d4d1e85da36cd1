//! Rolling upgrades: the pure decisions behind them. A rollout replaces (virtualized) or
//! reimages (bare metal) every node of a cluster, the control plane first and one member at
//! a time (so etcd keeps a majority), then each node pool in order, one pool at a time (as
//! Cluster API's default upgrade concurrency of 1).
//!
//! Within a pool, [`batch`] decides how many nodes start now: up to `maxSurge` with a new
//! node created before the old one is drained (surge-replace), and up to `maxUnavailable`
//! drained first (a VM pool recreates the node, bare metal reimages the server in place).
//! A bare-metal surge needs a spare server of the pool's class ([`Spare`]); with none up,
//! the pool is reimaged in place. With neither surge nor unavailability allowed, one node at a time goes in
//! place, or the rollout could never progress.

use plinth_model::kinds::cluster::ClusterSpec;
use plinth_model::version::KubernetesVersion;
use plinth_placement::{PoolState, VmId};

use crate::{ControlError, UpgradeKind};

/// A pool's rollout limits (`NodePool.upgrade`: defaults maxSurge 1, maxUnavailable 0, as
/// Cluster API's MachineDeployment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Strategy {
    /// Nodes created above the pool's size at once.
    pub max_surge: u32,
    /// Nodes of the pool that may be unavailable at once.
    pub max_unavailable: u32,
}

impl Strategy {
    /// The control plane's: one member at a time, a new one before the old one leaves.
    pub const CONTROL_PLANE: Self = Self {
        max_surge: 1,
        max_unavailable: 0,
    };
}

/// One pool of a cluster as the control plane manages it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolTopology {
    /// Pool name (`control-plane` for the control plane).
    pub name: String,
    /// Its nodes (VM names, or server names on bare metal).
    pub nodes: Vec<String>,
    /// Rollout limits.
    pub strategy: Strategy,
    /// Bare metal: the server class of its nodes; only a spare of this class joins it
    /// (`None`: any spare, and always on a VM pool).
    #[serde(default)]
    pub class: Option<String>,
    /// A cluster added later (`addCluster`): the nodes the pool gets then and, on a VM
    /// pool, the VM each is made from. `None` for a pool that exists from the start.
    pub create: Option<(u32, Option<plinth_placement::VmSpec>)>,
}

/// A cluster's nodes, as the control plane manages them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterTopology {
    /// Cluster name.
    pub name: String,
    /// Control-plane members.
    pub control_plane: PoolTopology,
    /// Worker pools, in manifest order.
    pub pools: Vec<PoolTopology>,
    /// Machine health check: replace a worker node not Ready for this long, ms (`None`:
    /// off). On a VM pool HA owns host failures: the check acts only on a VM HA has not
    /// restarted by then (fence failed, no room, HA off). On bare metal it installs a
    /// spare server in place of a failed one, if one is up.
    pub remediate_after: Option<u64>,
}

/// A bare-metal server standing by to become a node: in place of a failed one
/// (remediation), as a rollout's surge node, or to grow a pool.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spare {
    /// The server.
    pub server: String,
    /// Its server class: it joins only a pool of this class.
    pub class: String,
    /// The cluster it is kept for; `None` when every cluster shares it.
    pub cluster: Option<String>,
}

/// The pool name of the control plane.
pub const CONTROL_PLANE: &str = plinth_model::kinds::cluster::CONTROL_PLANE_POOL;

/// What may start now in one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Replacements with a new node first.
    pub surge: u32,
    /// Nodes drained first (recreated or reimaged in place).
    pub in_place: u32,
}

/// How many replacements of a pool start now.
///
/// `surge_room` is how many surge nodes could exist at all (unbounded on a VM pool; the
/// spare servers the pool may take, in use or free, on bare metal) and `surge_free` how many can be
/// created now; `surging` and `unavailable` are the replacements in progress of each kind,
/// `waiting` the nodes not yet started.
pub fn batch(
    strategy: Strategy,
    surge_room: u32,
    surge_free: u32,
    surging: u32,
    unavailable: u32,
    waiting: usize,
) -> Batch {
    let waiting = u32::try_from(waiting).unwrap_or(u32::MAX);
    let surge_cap = strategy.max_surge.min(surge_room);
    let surge = surge_cap
        .saturating_sub(surging)
        .min(surge_free)
        .min(waiting);
    let unavailable_cap = if surge_cap == 0 {
        strategy.max_unavailable.max(1)
    } else {
        strategy.max_unavailable
    };
    let in_place = unavailable_cap
        .saturating_sub(unavailable)
        .min(waiting - surge);
    Batch { surge, in_place }
}

/// The surge room and free surge slots of a VM pool for [`batch`]: how many more surge
/// nodes like `template` (the next node to go) fit now, placed one after another on
/// `state` and removed again ([`PoolState::copies_fit`]), so capacity, placement groups
/// and host rules decide; none while a node of the pool is replaced in place, so a node
/// removed to make room is not raced for that room by a surge node. No free slot means
/// the pool is replaced remove-then-add (in place).
pub fn vm_surge_room(
    state: &mut PoolState,
    template: Option<VmId>,
    strategy: Strategy,
    surging: u32,
    unavailable: u32,
) -> (u32, u32) {
    let spec = template.and_then(|id| state.vm(id)).cloned();
    let free = match spec {
        Some(t) if unavailable == 0 => {
            state.copies_fit(&t, strategy.max_surge.saturating_sub(surging))
        }
        _ => 0,
    };
    (surging.saturating_add(free), free)
}

/// What an upgrade changes: the Kubernetes version or the node OS image, from what to what.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What changes.
    pub kind: UpgradeKind,
    /// The cluster's version or image now.
    pub from: String,
    /// The one asked for.
    pub to: String,
}

impl Change {
    /// A change of a cluster running Kubernetes `version` on `image` to `to`: a version
    /// (`1.32.1`, `v1.32`: digits and dots, at least one dot, an optional `v`) changes the
    /// Kubernetes version, anything else names an OS image.
    pub fn to(to: &str, version: &str, image: &str) -> Self {
        let bare = to.strip_prefix('v').unwrap_or(to);
        let is_version = bare.contains('.')
            && bare
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if is_version {
            Self {
                kind: UpgradeKind::Kubernetes,
                from: version.strip_prefix('v').unwrap_or(version).to_owned(),
                to: bare.to_owned(),
            }
        } else {
            Self {
                kind: UpgradeKind::Os,
                from: image.to_owned(),
                to: to.to_owned(),
            }
        }
    }

    /// Whether the change replaces machines: the version or image differs from the one the
    /// cluster runs.
    pub fn replaces(&self) -> bool {
        self.from != self.to
    }

    /// [`Change::to`] for cluster `cluster` of spec `spec`, refused when Kubernetes' version
    /// skew policy forbids it (a minor version skipped, a downgrade).
    pub fn checked(cluster: &str, spec: &ClusterSpec, to: &str) -> Result<Self, ControlError> {
        let change = Self::to(to, &spec.kubernetes_version, &spec.os_image);
        if change.kind != UpgradeKind::Kubernetes {
            return Ok(change);
        }
        let (Ok(from), Ok(target)) = (
            change.from.parse::<KubernetesVersion>(),
            change.to.parse::<KubernetesVersion>(),
        ) else {
            return Ok(change);
        };
        match from.upgrade_to(target) {
            Ok(()) => Ok(change),
            Err(reason) => Err(ControlError::VersionSkew {
                cluster: cluster.to_owned(),
                to: change.to,
                reason,
            }),
        }
    }
}

/// What a rollout replaces a pool's nodes with: a new node before the old one leaves, the
/// old one removed first, or both at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    /// A new node first (`maxSurge`).
    Surge,
    /// The old node drained and removed first (no room for a surge node, or `maxSurge` 0).
    RemoveThenAdd,
    /// Surge and remove-then-add replacements in the same wave (`maxUnavailable` > 0).
    Mixed,
}

/// One stage of a rollout: the control plane, or one worker pool.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagePlan {
    /// The pool (`control-plane` for the control plane).
    pub pool: String,
    /// Its nodes, in the order they are replaced.
    pub order: Vec<String>,
    /// How they are replaced.
    pub method: Method,
    /// Surge replacements per wave.
    pub surge: u32,
    /// Remove-then-add replacements per wave.
    pub in_place: u32,
    /// Waves of replacements.
    pub waves: u32,
    /// Nodes of the pool available at the lowest point of its rollout.
    pub min_available: u32,
    /// How long the stage takes, ms.
    pub duration_ms: u64,
}

/// A rollout of one cluster, decided before it starts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPlan {
    /// The cluster.
    pub cluster: String,
    /// What changes.
    pub change: Change,
    /// Whether machines are replaced (no stages when they are not).
    pub replaces: bool,
    /// The control plane first, then each worker pool in manifest order.
    pub stages: Vec<StagePlan>,
    /// Every stage one after another, ms.
    pub duration_ms: u64,
}

/// Plans the rollout of `cluster` on a virtualization pool `state` (`id` finds a VM by
/// name): stage by stage as the control plane runs it, each stage's batch from [`batch`]
/// with the surge room from [`vm_surge_room`] as the reconciler computes it. A replacement
/// takes `replace_ms` (a new VM cloned and booted; drains are assumed not to wait on a
/// PodDisruptionBudget). A `change` that changes nothing replaces nothing.
pub fn rollout_plan(
    state: &PoolState,
    cluster: &ClusterTopology,
    id: impl Fn(&str) -> Option<VmId>,
    change: Change,
    replace_ms: u64,
) -> RolloutPlan {
    let replaces = change.replaces();
    // Surge nodes are tried on the placement and removed again: on a copy of its own.
    let mut work = state.clone();
    let stages: Vec<StagePlan> = std::iter::once(&cluster.control_plane)
        .chain(&cluster.pools)
        .filter(|p| replaces && !p.nodes.is_empty())
        .map(|p| {
            let mut order = p.nodes.clone();
            order.sort();
            let template = order.first().and_then(|n| id(n));
            let (room, free) = vm_surge_room(&mut work, template, p.strategy, 0, 0);
            let b = batch(p.strategy, room, free, 0, 0, order.len());
            stage_plan(p, order, b, replace_ms)
        })
        .collect();
    RolloutPlan {
        cluster: cluster.name.clone(),
        change,
        replaces,
        duration_ms: stages.iter().map(|s| s.duration_ms).sum(),
        stages,
    }
}

/// Stage `pool` replaced in `order`, `b` at a time.
fn stage_plan(pool: &PoolTopology, order: Vec<String>, b: Batch, replace_ms: u64) -> StagePlan {
    let nodes = u32::try_from(order.len()).unwrap_or(u32::MAX);
    let per_wave = (b.surge + b.in_place).max(1);
    let waves = nodes.div_ceil(per_wave);
    let method = match (b.surge, b.in_place) {
        (0, _) => Method::RemoveThenAdd,
        (_, 0) => Method::Surge,
        _ => Method::Mixed,
    };
    StagePlan {
        pool: pool.name.clone(),
        order,
        method,
        surge: b.surge,
        in_place: b.in_place,
        waves,
        min_available: nodes.saturating_sub(b.in_place),
        duration_ms: u64::from(waves).saturating_mul(replace_ms),
    }
}

/// The index `i` of a node named `<prefix><i>`; `None` for any other name (a bare-metal
/// server's).
pub fn node_index(prefix: &str, name: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.parse().ok()
}

/// The next free index for new nodes named `<prefix><i>`: one above the highest in use.
pub fn next_index<'a>(prefix: &str, names: impl IntoIterator<Item = &'a str>) -> u32 {
    names
        .into_iter()
        .filter_map(|n| node_index(prefix, n))
        .map(|i| i.saturating_add(1))
        .max()
        .unwrap_or(0)
}

/// Evenly spaced times of a recurring operation of cluster `index` of `clusters`: every
/// `interval`, cluster i first at `interval × (i + 1) / (clusters + 1)`, so clusters do not
/// all roll at once and none rolls at time 0. Times are ms, before `end`.
pub fn staggered(interval: u64, index: usize, clusters: usize, end: u64) -> Vec<u64> {
    if interval == 0 {
        return Vec::new();
    }
    let offset = u64::try_from(u128::from(interval) * (index as u128 + 1) / (clusters as u128 + 1))
        .unwrap_or(u64::MAX);
    (0..)
        .map(|k: u64| offset.saturating_add(k.saturating_mul(interval)))
        .take_while(|t| *t < end)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cluster, id, state, vm};

    /// Three hosts, a strict three-member control plane and `workers` small workers.
    fn three_hosts(workers: usize) -> PoolState {
        let mut s = state(3);
        for i in 0..3 {
            s.place(vm(&format!("c-cp-{i}"), 2, 4, true)).expect("fits");
        }
        for i in 0..workers {
            s.place(vm(&format!("c-w-{i}"), 2, 4, false)).expect("fits");
        }
        s
    }

    #[test]
    fn a_strict_group_with_as_many_members_as_hosts_goes_remove_then_add() {
        let s = three_hosts(2);
        let c = cluster(&["c-cp-0", "c-cp-1", "c-cp-2"], &["c-w-1", "c-w-0"]);
        let change = Change::to("1.32.0", "1.31.4", "ubuntu-22.04");
        let plan = rollout_plan(&s, &c, |n| id(&s, n), change, 90_000);
        assert!(plan.replaces);
        let cp = &plan.stages[0];
        assert_eq!(cp.pool, CONTROL_PLANE);
        assert_eq!(
            cp.method,
            Method::RemoveThenAdd,
            "no fourth host for a surge"
        );
        assert_eq!((cp.waves, cp.min_available), (3, 2));
        let w = &plan.stages[1];
        assert_eq!(w.method, Method::Surge);
        assert_eq!(w.order, vec!["c-w-0", "c-w-1"], "in name order");
        assert_eq!(w.min_available, 2, "a surge keeps every node serving");
        assert_eq!(plan.duration_ms, 5 * 90_000);
    }

    #[test]
    fn surge_room_is_what_fits_now_and_none_while_a_node_is_replaced_in_place() {
        let mut s = three_hosts(1);
        let before = s.clone();
        let worker = id(&s, "c-w-0");
        let cp = id(&s, "c-cp-0");
        let two = Strategy {
            max_surge: 2,
            max_unavailable: 0,
        };
        assert_eq!(vm_surge_room(&mut s, worker, two, 0, 0), (2, 2));
        assert_eq!(vm_surge_room(&mut s, worker, two, 1, 0), (2, 1));
        assert_eq!(vm_surge_room(&mut s, worker, two, 0, 1), (0, 0));
        assert_eq!(vm_surge_room(&mut s, None, two, 0, 0), (0, 0));
        assert_eq!(
            vm_surge_room(&mut s, cp, Strategy::CONTROL_PLANE, 0, 0),
            (0, 0),
            "a strict member per host, every host has one"
        );
        assert_eq!(s, before, "the trial surge nodes are gone again");
    }

    #[test]
    fn the_target_says_what_changes() {
        let k = Change::to("v1.32.1", "1.31.4", "ubuntu-22.04");
        assert_eq!(
            (k.kind, k.from.as_str(), k.to.as_str()),
            (UpgradeKind::Kubernetes, "1.31.4", "1.32.1")
        );
        let os = Change::to("flatcar-4081", "1.31.4", "ubuntu-22.04");
        assert_eq!(os.kind, UpgradeKind::Os);
        assert!(os.replaces());
        assert!(!Change::to("1.31.4", "1.31.4", "x").replaces());
        assert!(!Change::to("ubuntu-22.04", "1.31.4", "ubuntu-22.04").replaces());
    }

    const VM: u32 = u32::MAX;

    #[test]
    fn default_strategy_surges_one_at_a_time() {
        let s = Strategy {
            max_surge: 1,
            max_unavailable: 0,
        };
        assert_eq!(
            batch(s, VM, VM, 0, 0, 5),
            Batch {
                surge: 1,
                in_place: 0
            }
        );
        assert_eq!(batch(s, VM, VM, 1, 0, 4).surge, 0);
    }

    #[test]
    fn unavailable_budget_adds_in_place_replacements() {
        let s = Strategy {
            max_surge: 1,
            max_unavailable: 2,
        };
        assert_eq!(
            batch(s, VM, VM, 0, 0, 5),
            Batch {
                surge: 1,
                in_place: 2
            }
        );
        assert_eq!(
            batch(s, VM, VM, 1, 1, 2),
            Batch {
                surge: 0,
                in_place: 1
            }
        );
    }

    #[test]
    fn bare_metal_without_spares_goes_in_place_at_least_one_at_a_time() {
        let s = Strategy {
            max_surge: 1,
            max_unavailable: 0,
        };
        assert_eq!(
            batch(s, 0, 0, 0, 0, 3),
            Batch {
                surge: 0,
                in_place: 1
            }
        );
        // A spare in use by the surge in progress: wait for it, do not go in place.
        assert_eq!(
            batch(s, 1, 0, 1, 0, 3),
            Batch {
                surge: 0,
                in_place: 0
            }
        );
    }

    #[test]
    fn next_index_is_above_the_highest() {
        assert_eq!(next_index("c-w-", ["c-w-0", "c-w-7", "c-w-x", "d-w-9"]), 8);
        assert_eq!(next_index("c-w-", []), 0);
    }

    #[test]
    fn staggered_spreads_clusters_over_the_interval() {
        assert_eq!(staggered(100, 0, 3, 350), vec![25, 125, 225, 325]);
        assert_eq!(staggered(100, 2, 3, 200), vec![75, 175]);
        assert_eq!(
            staggered(100, 0, 1, 250),
            vec![50, 150],
            "none at the end itself"
        );
        assert!(staggered(0, 0, 1, 1000).is_empty());
    }
}
