//! Maintenance: evacuate a host by live migration before it goes down. Each VM goes to the
//! best host by the pool's strategy *after* the previous moves of the evacuation, so with
//! `spread` the VMs fan out over the hosts with most headroom instead of piling onto one.

use std::collections::BTreeSet;

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
    vms.sort_by(|a, b| {
        let name = |v: &VmId| work.vm(*v).map(|s| &s.name);
        name(a).cmp(&name(b))
    });
    let mut targets = Targets::new(work, host, blocked);
    let mut moves = Vec::new();
    let mut stuck = Vec::new();
    for vm in vms {
        match migrate_to_best(work, &targets, vm, host) {
            Ok(m) => {
                targets.refresh(work, m.to);
                moves.push(m);
            }
            Err(reason) => stuck.push((vm, reason)),
        }
    }
    (moves, stuck)
}

/// The hosts an evacuation may migrate onto, in the pool strategy's order (most free first
/// for `spread`, least free first for `pack`, then by name). Only a migration's target
/// changes its free room, so the order is kept by re-keying that host alone.
struct Targets {
    /// `((strategy score, name rank), host)` of every candidate.
    order: BTreeSet<((u64, u32), HostId)>,
    /// Each host's current entry in `order`, if it is a candidate.
    key: Vec<Option<(u64, u32)>>,
    /// Whether the pool spreads (most free first) rather than packs.
    spread: bool,
}

impl Targets {
    /// The hosts that are up, other than `host` and those in `blocked`.
    fn new(work: &PoolState, host: HostId, blocked: &[HostId]) -> Self {
        let n = work.pool().hosts().len();
        let mut targets = Self {
            order: BTreeSet::new(),
            key: vec![None; n],
            spread: work.pool().config().strategy == PlacementStrategy::Spread,
        };
        for h in (0..n as u32).map(HostId) {
            if h != host && !blocked.contains(&h) && work.status(h) == HostStatus::Up {
                targets.refresh(work, h);
            }
        }
        targets
    }

    /// Re-keys candidate `h` after its usage changed (adds it, from [`Targets::new`]).
    fn refresh(&mut self, work: &PoolState, h: HostId) {
        if let Some(old) = self.key[h.index()].take() {
            self.order.remove(&(old, h));
        }
        let score = free_score(work, h);
        let s = if self.spread { u64::MAX - score } else { score };
        let key = (s, work.pool().rank(h));
        self.order.insert((key, h));
        self.key[h.index()] = Some(key);
    }
}

/// Migrates `vm` off `host` onto the first candidate in `targets`' order that passes every
/// hard filter; the migration made, or the last reason a target refused it.
fn migrate_to_best(
    work: &mut PoolState,
    targets: &Targets,
    vm: VmId,
    host: HostId,
) -> Result<Migration, String> {
    work.migrate_first(vm, host, targets.order.iter().map(|&(_, to)| to))
        .map_err(|e| e.map_or_else(|| String::from("no other host is up"), |e| e.to_string()))
}
