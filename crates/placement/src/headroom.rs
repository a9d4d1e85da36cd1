//! Headroom: how many more VMs of one shape still fit (cluster-capacity semantics: place
//! copies one by one with every filter and admission control on), and what stops them.

use crate::error::PlacementError;
use crate::hosts::HostId;
use crate::state::PoolState;
use crate::vm::VmSpec;

/// How many more copies of a shape fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headroom {
    /// Copies that fit.
    pub more: u32,
    /// Why the next copy does not fit; `None` when `limit` was reached first.
    pub stopped_by: Option<PlacementError>,
}

/// Places copies of `shape` (named `{name}+{i}`, same group and rule) on a copy of `state`
/// until one fails or `limit` fit. `state` is not changed.
///
/// Every hard filter only tightens as copies are placed (capacity is used up, group
/// members are added, no host changes status), so a host that cannot take the next copy
/// will take none of the later ones either: the trial takes such hosts out of its host
/// index, and the walk of each later copy does not pass them again. The choices are those
/// of placing every copy on the untouched index; only the walks are shorter.
pub fn headroom(state: &PoolState, shape: &VmSpec, limit: u32) -> Headroom {
    let mut trial = state.clone();
    let footprint = trial.pool.footprint(shape);
    // A shape with a VM→host rule looks its hosts up by their index keys: keep them all.
    let prune = shape.rule.is_none();
    if prune {
        for h in 0..trial.pool.hosts().len() as u32 {
            trial.forget_if_rejected(HostId(h), shape, &footprint);
        }
    }
    for more in 0..limit {
        let copy = VmSpec {
            name: format!("{}+{}", shape.name, more + 1),
            ..shape.clone()
        };
        match trial.place(copy) {
            Ok((_, host)) if prune => trial.forget_if_rejected(host, shape, &footprint),
            Ok(_) => {}
            Err(e) => {
                return Headroom {
                    more,
                    stopped_by: Some(e),
                };
            }
        }
    }
    Headroom {
        more: limit,
        stopped_by: None,
    }
}

impl PoolState {
    /// Takes `host` out of the host index when a hard filter rejects `shape` there. Only
    /// for trials that place nothing but copies of `shape`: the host can never pass again.
    fn forget_if_rejected(
        &mut self,
        host: HostId,
        shape: &VmSpec,
        footprint: &plinth_model::Resources,
    ) {
        if self.reject(host, shape, footprint, None).is_some() {
            self.index.remove(host.0);
        }
    }
}
