//! Rolling upgrades: the pure decisions behind them. A rollout replaces (virtualized) or
//! reimages (bare metal) every node of a cluster, the control plane first and one member at
//! a time (so etcd keeps a majority), then each node pool in order, one pool at a time (as
//! Cluster API's default upgrade concurrency of 1).
//!
//! Within a pool, [`batch`] decides how many nodes start now: up to `maxSurge` with a new
//! node created before the old one is drained (surge-replace), and up to `maxUnavailable`
//! drained first (a VM pool recreates the node, bare metal reimages the server in place).
//! A bare-metal surge needs a spare server of the cluster; with none, the pool is reimaged
//! in place. With neither surge nor unavailability allowed, one node at a time goes in
//! place, or the rollout could never progress.

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
    /// Bare metal: idle servers of the cluster a surge may install (empty on a VM pool).
    pub spares: Vec<String>,
    /// Machine health check: replace a worker node not Ready for this long, ms (`None`:
    /// off). On a VM pool HA owns host failures: the check acts only on a VM HA has not
    /// restarted by then (fence failed, no room, HA off). On bare metal it installs a
    /// spare server of the cluster in place of a failed one, if there is a spare.
    pub remediate_after: Option<u64>,
}

/// The pool name of the control plane.
pub const CONTROL_PLANE: &str = "control-plane";

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
/// cluster's spare servers, in use or free, on bare metal) and `surge_free` how many can be
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

/// The next free index for new nodes named `<prefix><i>`: one above the highest in use.
pub fn next_index<'a>(prefix: &str, names: impl IntoIterator<Item = &'a str>) -> u32 {
    names
        .into_iter()
        .filter_map(|n| n.strip_prefix(prefix)?.parse::<u32>().ok())
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
