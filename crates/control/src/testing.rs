//! Small pools for the unit tests of the planning functions.

use plinth_model::Resources;
use plinth_model::policy::{PlacementPolicy, PlacementStrategy, Scope, SpreadMode};
use plinth_placement::{
    AdmissionPolicy, Group, GroupId, HostSpec, Overcommit, Pool, PoolConfig, PoolState, RackId,
    VmId, VmSpec,
};

use crate::upgrade::{ClusterTopology, PoolTopology, Strategy};

pub(crate) const GIB: u64 = 1 << 30;

/// `hosts` hosts `h0`.. of 16 cores and 64 GiB, spread strategy, no admission control;
/// group 0 is a strict spread over hosts (`cp`).
pub(crate) fn state(hosts: usize) -> PoolState {
    let hosts = (0..hosts)
        .map(|i| {
            HostSpec::new(
                format!("h{i}"),
                RackId(0),
                Resources::new(16_000, 64 * GIB, 0),
            )
        })
        .collect();
    let groups = vec![Group {
        name: "cp".into(),
        policy: PlacementPolicy {
            spread_over: Scope::Host,
            mode: SpreadMode::Strict,
            max_per_domain: None,
        },
    }];
    let config = PoolConfig {
        overcommit: Overcommit::NONE,
        vm_overhead: Resources::ZERO,
        strategy: PlacementStrategy::Spread,
        admission: AdmissionPolicy::Disabled,
    };
    PoolState::new(
        Pool::new(hosts, vec!["r0".into()], groups, Vec::new(), config).expect("valid pool"),
    )
}

/// A VM of `cores` cores and `gib` GiB, in the strict group when `strict`.
pub(crate) fn vm(name: &str, cores: u64, gib: u64, strict: bool) -> VmSpec {
    let spec = VmSpec::new(name, Resources::new(cores * 1000, gib * GIB, 0));
    if strict {
        spec.in_group(GroupId(0))
    } else {
        spec
    }
}

/// The id of VM `name` in `state`.
pub(crate) fn id(state: &PoolState, name: &str) -> Option<VmId> {
    state
        .placements()
        .map(|(v, _)| v)
        .find(|v| state.vm(*v).is_some_and(|s| s.name == name))
}

/// A pool of the cluster with `nodes` and the default strategy (surge 1).
pub(crate) fn pool_topology(name: &str, nodes: &[&str]) -> PoolTopology {
    PoolTopology {
        name: name.into(),
        nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
        strategy: Strategy::CONTROL_PLANE,
        class: None,
        create: None,
    }
}

/// Cluster `c` with control plane `cp` and one worker pool `workers`.
pub(crate) fn cluster(cp: &[&str], workers: &[&str]) -> ClusterTopology {
    ClusterTopology {
        name: "c".into(),
        control_plane: pool_topology(crate::upgrade::CONTROL_PLANE, cp),
        pools: vec![pool_topology("w", workers)],
        remediate_after: None,
    }
}
