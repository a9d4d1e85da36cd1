//! Headroom: how many more VMs of one shape still fit (cluster-capacity semantics: place
//! copies one by one with every filter and admission control on), and what stops them.

use crate::error::PlacementError;
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
pub fn headroom(state: &PoolState, shape: &VmSpec, limit: u32) -> Headroom {
    let mut trial = state.clone();
    for more in 0..limit {
        let copy = VmSpec {
            name: format!("{}+{}", shape.name, more + 1),
            ..shape.clone()
        };
        if let Err(e) = trial.place(copy) {
            return Headroom {
                more,
                stopped_by: Some(e),
            };
        }
    }
    Headroom {
        more: limit,
        stopped_by: None,
    }
}
