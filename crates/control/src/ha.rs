//! Host HA: a host is declared failed after `detection_timeout` of silence since its last
//! heartbeat; it is fenced (powered off through its BMC) before any of its VMs start
//! elsewhere, so a host that is only cut off can never leave a second copy running; its
//! VMs are then restarted by restart priority, respecting placement groups, VM→host rules
//! and what is left of the admission reserve ([`PoolState::fail_host`]).

use plinth_placement::{
    Evacuation, Exceptions, HostId, PlacementError, PoolState, RestartScope, VmId, VmSpec,
};

use crate::time::Time;

/// When a silent host is declared failed.
pub fn declare_at(last_heard: Time, detection_timeout: u64) -> Time {
    last_heard + detection_timeout
}

/// After a successful fence: mark `host` failed and choose where its VMs restart, inside
/// `scope` (its zone, and whether a VM may restart outside it).
pub fn restart(
    state: &mut PoolState,
    host: HostId,
    scope: RestartScope<'_>,
) -> Result<Evacuation, PlacementError> {
    state.fail_host_in(host, scope)
}

/// The outcome of [`retry`].
#[derive(Debug, Default)]
pub struct Retried {
    /// VMs placed, with their new ids, hosts, names and the exceptions their scope let
    /// them make.
    pub placed: Vec<(VmId, HostId, String, Exceptions)>,
    /// VMs still without a host, and why.
    pub waiting: Vec<(VmSpec, PlacementError)>,
}

/// Tries again to place VMs that found no room, in restart order (priority, then name),
/// each inside the scope `scope_of` gives it.
pub fn retry<'a>(
    state: &mut PoolState,
    mut waiting: Vec<VmSpec>,
    scope_of: impl Fn(&VmSpec) -> RestartScope<'a>,
) -> Retried {
    waiting.sort_by(|a, b| {
        b.restart_priority
            .cmp(&a.restart_priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut out = Retried::default();
    for spec in waiting {
        let name = spec.name.clone();
        let scope = scope_of(&spec);
        match state.place_in(spec.clone(), scope) {
            Ok((id, h, broken)) => out.placed.push((id, h, name, broken)),
            Err(e) => out.waiting.push((spec, e)),
        }
    }
    out
}
