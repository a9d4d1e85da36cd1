//! Initial placement of a whole set of VMs: hard-constrained first, then largest first
//! (first-fit decreasing in the strategy's order), ties by name.

use std::cmp::Reverse;

use crate::error::PlacementError;
use crate::hosts::{HostId, score_floor};
use crate::pool::Pool;
use crate::state::PoolState;
use crate::vm::{VmId, VmSpec};
use plinth_model::policy::RuleKind;

/// The result of [`place_all`]: VM `i` of the input is `VmId(i)` in the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementOutcome {
    /// The pool with every placed VM.
    pub state: PoolState,
    /// Host of each input VM, `None` when it could not be placed.
    pub hosts: Vec<Option<HostId>>,
    /// The VMs not placed and why, in input order.
    pub unplaced: Vec<(VmId, PlacementError)>,
}

/// Places every VM it can, in [`placement_order`]; the rest are reported, not fatal.
pub fn place_all(pool: Pool, vms: Vec<VmSpec>) -> PlacementOutcome {
    let mut state = PoolState::new(pool);
    let order = placement_order(state.pool(), &vms);
    let mut hosts = vec![None; vms.len()];
    let mut unplaced = Vec::new();
    let mut specs: Vec<Option<VmSpec>> = vms.into_iter().map(Some).collect();
    for i in order {
        let Some(spec) = specs[i].take() else {
            continue;
        };
        match state.place_as(VmId(i as u32), spec, false) {
            Ok(h) => hosts[i] = Some(h),
            Err(e) => unplaced.push((VmId(i as u32), e)),
        }
    }
    state.vms.resize(hosts.len(), None);
    unplaced.sort_by_key(|(v, _)| *v);
    PlacementOutcome {
        state,
        hosts,
        unplaced,
    }
}

/// The order a batch is placed in: VMs with a must rule or a hard group limit first, then
/// by size (CPU plus memory as fractions of the largest host) descending, then by name.
pub(crate) fn placement_order(pool: &Pool, vms: &[VmSpec]) -> Vec<usize> {
    let max = pool.max_capacity();
    let key = |vm: &VmSpec| {
        let must = vm.rule.is_some_and(|r| {
            pool.rules()
                .get(r.0 as usize)
                .is_some_and(|r| r.kind == RuleKind::Must)
        });
        let hard = vm.group.is_some_and(|g| {
            pool.groups()
                .get(g.0 as usize)
                .is_some_and(|g| g.policy.hard_limit().is_some())
        });
        (
            !(must || hard),
            Reverse(score_floor(&pool.footprint(vm), &max)),
        )
    };
    let keys: Vec<_> = vms.iter().map(key).collect();
    let mut order: Vec<usize> = (0..vms.len()).collect();
    order.sort_by(|&a, &b| {
        keys[a]
            .cmp(&keys[b])
            .then_with(|| vms[a].name.cmp(&vms[b].name))
            .then(a.cmp(&b))
    });
    order
}
