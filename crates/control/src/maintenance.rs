//! Maintenance: evacuate a host by live migration before it goes down. Each VM goes to the
//! best host by the pool's strategy *after* the previous moves of the evacuation, so with
//! `spread` the VMs fan out over the hosts with most headroom instead of piling onto one.

use plinth_placement::{HostId, Migration, PoolState, VmId};

/// The migrations that empty `host`, VMs in name order, never onto a host in `blocked`;
/// and the VMs that cannot move, with why. Only VMs for which `movable` holds are
/// considered (the others are already in flight). Pure: `state` is not changed.
pub fn evacuation(
    state: &PoolState,
    host: HostId,
    movable: impl Fn(VmId) -> bool,
    blocked: &[HostId],
) -> (Vec<Migration>, Vec<(VmId, String)>) {
    let mut work = state.clone();
    let mut vms: Vec<VmId> = work
        .vms_on(host)
        .into_iter()
        .filter(|v| movable(*v))
        .collect();
    vms.sort_by_key(|v| work.vm(*v).map(|s| s.name.clone()));
    let mut moves = Vec::new();
    let mut stuck = Vec::new();
    for vm in vms {
        match work.propose_migration(&[], vm) {
            Ok(m) if !blocked.contains(&m.to) && work.migrate(m).is_ok() => moves.push(m),
            Ok(m) => stuck.push((
                vm,
                format!(
                    "the best target {} is not available",
                    work.pool().host(m.to).name
                ),
            )),
            Err(e) => stuck.push((vm, e.to_string())),
        }
    }
    (moves, stuck)
}
