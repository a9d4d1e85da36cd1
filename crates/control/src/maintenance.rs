//! Maintenance: evacuate a host by live migration before it goes down. Each VM goes to the
//! best host by the pool's strategy *after* the previous moves of the evacuation, so with
//! `spread` the VMs fan out over the hosts with most headroom instead of piling onto one.

use plinth_model::policy::PlacementStrategy;
use plinth_placement::{HostId, HostStatus, Migration, PoolState, VmId};

/// Free CPU fraction plus free memory fraction, in millionths (spread prefers the highest).
pub(crate) fn free_score(state: &PoolState, h: HostId) -> u64 {
    let cap = state.pool().host(h).capacity;
    let free = state.free(h);
    let part = |f: u64, c: u64| {
        if c == 0 {
            0
        } else {
            u64::try_from(u128::from(f.min(c)) * 1_000_000 / u128::from(c)).unwrap_or(0)
        }
    };
    part(free.cpu_millis, cap.cpu_millis) + part(free.memory_bytes, cap.memory_bytes)
}

/// The migrations that empty `host`, VMs in name order, never onto a host in `blocked`;
/// and the VMs that cannot move, with why. Only VMs for which `movable` holds are
/// considered (the others are already in flight). Pure: `state` is not changed.
///
/// Each VM tries the hosts that are up in the pool strategy's order (most free first for
/// `spread`, least free first for `pack`, then by name); the first that passes every hard
/// filter of [`PoolState::migrate`] — capacity, placement groups, host rules — with the
/// evacuation so far applied takes it. One copy of the state per evacuation.
pub fn evacuation(
    state: &PoolState,
    host: HostId,
    movable: impl Fn(VmId) -> bool,
    blocked: &[HostId],
) -> (Vec<Migration>, Vec<(VmId, String)>) {
    let mut work = state.clone();
    evacuate_in(&mut work, host, movable, blocked)
}

/// [`evacuation`] applied to `state` itself: the migrations returned are already made in
/// it (the control plane's desired placement), so no copy of the state is needed.
pub fn evacuate_in(
    work: &mut PoolState,
    host: HostId,
    movable: impl Fn(VmId) -> bool,
    blocked: &[HostId],
) -> (Vec<Migration>, Vec<(VmId, String)>) {
    let mut vms: Vec<VmId> = work
        .vms_on(host)
        .into_iter()
        .filter(|v| movable(*v))
        .collect();
    vms.sort_by_key(|v| work.vm(*v).map(|s| s.name.clone()));
    let spread = work.pool().config().strategy == PlacementStrategy::Spread;
    // Name order of the hosts, computed once: the tie-breaker.
    let n = work.pool().hosts().len();
    let mut by_name: Vec<usize> = (0..n).collect();
    by_name.sort_by(|a, b| {
        let hosts = work.pool().hosts();
        hosts[*a].name.cmp(&hosts[*b].name)
    });
    let mut rank = vec![0usize; n];
    for (r, h) in by_name.into_iter().enumerate() {
        rank[h] = r;
    }
    // Strategy order: most free first for spread, least free first for pack; then name.
    let key = |score: u64, h: HostId| {
        let s = if spread { u64::MAX - score } else { score };
        (s, rank[h.index()])
    };
    let mut moves = Vec::new();
    let mut stuck = Vec::new();
    for vm in vms {
        let mut targets: Vec<((u64, usize), HostId)> = (0..n as u32)
            .map(HostId)
            .filter(|h| *h != host && !blocked.contains(h) && work.status(*h) == HostStatus::Up)
            .map(|h| (key(free_score(work, h), h), h))
            .collect();
        let mut last_error = String::from("no other host is up");
        let mut placed = false;
        // The best target usually takes the VM: try it before sorting the rest.
        if let Some(&(_, to)) = targets.iter().min_by_key(|(k, _)| *k) {
            let m = Migration { vm, from: host, to };
            match work.migrate(m) {
                Ok(()) => {
                    moves.push(m);
                    placed = true;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        if !placed {
            targets.sort_by_key(|(k, _)| *k);
            for (_, to) in targets.into_iter().skip(1) {
                let m = Migration { vm, from: host, to };
                match work.migrate(m) {
                    Ok(()) => {
                        moves.push(m);
                        placed = true;
                        break;
                    }
                    Err(e) => last_error = e.to_string(),
                }
            }
        }
        if !placed {
            stuck.push((vm, last_error));
        }
    }
    (moves, stuck)
}
