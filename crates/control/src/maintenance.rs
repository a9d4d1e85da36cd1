//! Maintenance: evacuate a host by live migration before it goes down. Each VM goes to the
//! best host of its zone by the pool's strategy *after* the previous moves of the
//! evacuation, so with `spread` the VMs fan out over the hosts with most headroom instead
//! of piling onto one.
//!
//! [`plan`] is the whole decision for one host as a value ([`MaintenancePlan`]): the moves,
//! the VMs that must stop and why, whether every guest cluster keeps its etcd quorum and
//! every PodDisruptionBudget holds, the migrations in parallel and the predicted
//! completion time. `plinth maintenance --dry-run` prints it; the control plane executes
//! the same evacuation ([`evacuate_in`]) with the same bound on parallel migrations
//! ([`parallel_migrations`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use plinth_model::Resources;
use plinth_model::policy::PlacementStrategy;
use plinth_placement::{HostId, HostStatus, Migration, PoolState, VmId, ZoneId};

use crate::ControlError;
use crate::config::Deadlines;
use crate::upgrade::ClusterTopology;

/// Free CPU fraction plus free memory fraction, in millionths (spread prefers the highest).
pub(crate) fn free_score(state: &PoolState, h: HostId) -> u64 {
    let cap = state.pool().host(h).capacity;
    let free = state.free(h);
    let part = |f: u64, c: u64| {
        if c == 0 {
            return 0;
        }
        // In u64 while the product fits (hosts below about 16 TiB): the same quotient as
        // the 128-bit division, which is much slower.
        let f = f.min(c);
        f.checked_mul(1_000_000).map_or_else(
            || u64::try_from(u128::from(f) * 1_000_000 / u128::from(c)).unwrap_or(0),
            |scaled| scaled / c,
        )
    };
    part(free.cpu_millis, cap.cpu_millis) + part(free.memory_bytes, cap.memory_bytes)
}

/// The host of `state`'s pool called `name`.
///
/// # Errors
/// [`ControlError::UnknownHost`], naming the hosts that exist.
pub fn host_named(state: &PoolState, name: &str) -> Result<HostId, ControlError> {
    let hosts = state.pool().hosts();
    hosts
        .iter()
        .position(|h| h.name == name)
        .and_then(|i| u32::try_from(i).ok())
        .map(HostId)
        .ok_or_else(|| ControlError::UnknownHost {
            host: name.to_owned(),
            known: hosts.iter().map(|h| h.name.clone()).collect(),
        })
}

/// Where an evacuation may send VMs and how many migrations it starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounds<'a> {
    /// Hosts that take no VMs (silent, failed, being emptied).
    pub blocked: &'a [HostId],
    /// Each host's zone, by host id: a VM moves only to a host of its host's zone. Empty:
    /// the pool is one zone.
    pub zones: &'a [ZoneId],
    /// Migrations to start at most (the rest wait on the host for a later call).
    pub limit: usize,
}

/// The migrations that empty `host`, VMs in name order, within `bounds`; and the VMs that
/// cannot move, with why. Only VMs for which `movable` holds are considered (the others
/// are already in flight). Pure: `state` is not changed.
///
/// Each VM tries the hosts of its zone that are up in the pool strategy's order (most free
/// first for `spread`, least free first for `pack`, then by name); the first that passes
/// every hard filter of [`PoolState::migrate`] — capacity, placement groups, host rules —
/// with the evacuation so far applied takes it. One copy of the state per evacuation.
pub fn evacuation(
    state: &PoolState,
    host: HostId,
    movable: impl Fn(VmId) -> bool,
    bounds: &Bounds<'_>,
) -> (Vec<Migration>, Vec<(VmId, String)>) {
    let mut work = state.clone();
    evacuate_in(&mut work, host, movable, bounds)
}

/// [`evacuation`] applied to `state` itself: the migrations returned are already made in
/// it (the control plane's desired placement), so no copy of the state is needed.
pub fn evacuate_in(
    work: &mut PoolState,
    host: HostId,
    movable: impl Fn(VmId) -> bool,
    bounds: &Bounds<'_>,
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
    let mut targets = Targets::new(work, host, bounds);
    let mut moves = Vec::new();
    let mut stuck = Vec::new();
    for vm in vms {
        if moves.len() >= bounds.limit {
            break;
        }
        match migrate_to_best(work, &mut targets, vm, host) {
            Ok(m) => {
                targets.refresh(work, m.to);
                moves.push(m);
            }
            Err(reason) => stuck.push((vm, reason)),
        }
    }
    (moves, stuck)
}

/// The hosts of each zone, by zone id, from each host's zone by host id (`zones`; empty:
/// one zone of all `hosts` hosts).
pub fn zone_members(zones: &[ZoneId], hosts: usize) -> Vec<Vec<HostId>> {
    let mut members: Vec<Vec<HostId>> = Vec::new();
    for h in (0..hosts).filter_map(|h| u32::try_from(h).ok()) {
        let z = zones.get(h as usize).map_or(0, |z| z.0 as usize);
        if members.len() <= z {
            members.resize_with(z + 1, Vec::new);
        }
        members[z].push(HostId(h));
    }
    members
}

/// What an evacuation saw when every VM it left on its host was refused by every host of
/// its zone: the pool's room stamp, what the host held and the hosts that took no VMs.
/// Trying again can only move a VM once room appeared on a host it may go to
/// ([`PoolState::room_since`]), a VM came onto the host, or the blocked hosts changed, so
/// until then the evacuation waits instead of being recomputed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    room: u64,
    held: Resources,
    blocked: Vec<HostId>,
}

impl Refusal {
    /// The refusal of an evacuation of `host` just tried on `state` with `blocked` hosts.
    pub fn new(state: &PoolState, host: HostId, blocked: &[HostId]) -> Self {
        Self {
            room: state.room_stamp(),
            held: state.used(host),
            blocked: blocked.to_vec(),
        }
    }

    /// Whether an evacuation of `host` refused as `self` could now come out differently:
    /// the blocked hosts or what `host` holds changed, or room appeared on one of `zone`
    /// (the hosts of `host`'s zone) that is not blocked. Room on a blocked host (another
    /// host being emptied) does not count. When nothing changed, the refusal is renewed to
    /// the pool's stamp, so the next check costs nothing until room appears again.
    pub fn lapsed(
        &mut self,
        state: &PoolState,
        host: HostId,
        zone: &[HostId],
        blocked: &[HostId],
    ) -> bool {
        if self.blocked != blocked || self.held != state.used(host) {
            return true;
        }
        let stamp = state.room_stamp();
        if stamp == self.room {
            return false;
        }
        let lapsed = zone
            .iter()
            .any(|h| state.room_since(*h, self.room) && !blocked.contains(h));
        if !lapsed {
            self.room = stamp;
        }
        lapsed
    }
}

/// The hosts an evacuation may migrate onto, in the pool strategy's order (most free first
/// for `spread`, least free first for `pack`, then by name). An evacuation usually takes
/// the first host it tries, so the order is built only as far as it is read
/// ([`LazyOrder`]); only a migration's target changes its free room, so the order is kept
/// by re-keying that host alone.
struct Targets {
    /// `((strategy score, name rank), host)` of every candidate.
    order: LazyOrder<((u64, u32), HostId)>,
    /// Whether the pool spreads (most free first) rather than packs.
    spread: bool,
}

impl Targets {
    /// The hosts that are up in `host`'s zone, other than `host` and those blocked.
    fn new(work: &PoolState, host: HostId, bounds: &Bounds<'_>) -> Self {
        let spread = work.pool().config().strategy == PlacementStrategy::Spread;
        let zone = |h: HostId| bounds.zones.get(h.index());
        let candidates = (0..work.pool().hosts().len())
            .filter_map(|h| u32::try_from(h).ok().map(HostId))
            .filter(|&h| {
                h != host
                    && zone(h) == zone(host)
                    && !bounds.blocked.contains(&h)
                    && work.status(h) == HostStatus::Up
            })
            .map(|h| (key_of(work, h, spread), h));
        Self {
            order: LazyOrder::new(candidates),
            spread,
        }
    }

    /// The candidates in order.
    fn in_order(&mut self) -> impl Iterator<Item = HostId> + '_ {
        self.order.in_order().map(|(_, h)| h)
    }

    /// Re-keys candidate `h` after its usage changed.
    fn refresh(&mut self, work: &PoolState, h: HostId) {
        let entry = (key_of(work, h, self.spread), h);
        self.order.replace(|&(_, x)| x == h, entry);
    }
}

/// Items in ascending order, sorted only as far as they are read: a sorted prefix, and the
/// rest in a heap whose least item is at least the prefix's last. Reading the first few of
/// n items costs O(n) rather than a full sort's O(n log n).
#[derive(Debug)]
struct LazyOrder<T> {
    sorted: Vec<T>,
    rest: BinaryHeap<Reverse<T>>,
}

impl<T: Ord + Copy> LazyOrder<T> {
    fn new(items: impl IntoIterator<Item = T>) -> Self {
        Self {
            sorted: Vec::new(),
            rest: items.into_iter().map(Reverse).collect(),
        }
    }

    /// Every item, least first (each call reads from the start).
    fn in_order(&mut self) -> impl Iterator<Item = T> + '_ {
        let mut next = 0;
        std::iter::from_fn(move || {
            if next == self.sorted.len() {
                let Reverse(least) = self.rest.pop()?;
                self.sorted.push(least);
            }
            next += 1;
            self.sorted.get(next - 1).copied()
        })
    }

    /// Replaces the item `is_old` picks (if any) by `new`.
    fn replace(&mut self, is_old: impl Fn(&T) -> bool, new: T) {
        match self.sorted.iter().position(&is_old) {
            Some(at) => {
                self.sorted.remove(at);
            }
            None => self.rest.retain(|Reverse(x)| !is_old(x)),
        }
        match self.sorted.last() {
            Some(last) if new <= *last => {
                let at = self.sorted.binary_search(&new).unwrap_or_else(|at| at);
                self.sorted.insert(at, new);
            }
            _ => self.rest.push(Reverse(new)),
        }
    }
}

/// Host `h`'s place in an evacuation's order, from its free room now.
fn key_of(work: &PoolState, h: HostId, spread: bool) -> (u64, u32) {
    let score = free_score(work, h);
    let s = if spread { u64::MAX - score } else { score };
    (s, work.pool().rank(h))
}

/// Migrates `vm` off `host` onto the first candidate in `targets`' order that passes every
/// hard filter; the migration made, or the last reason a target refused it.
fn migrate_to_best(
    work: &mut PoolState,
    targets: &mut Targets,
    vm: VmId,
    host: HostId,
) -> Result<Migration, String> {
    work.migrate_first(vm, host, targets.in_order())
        .map_err(|e| {
            e.map_or_else(
                || {
                    String::from(
                        "no other host of its zone is up and open (not cordoned or in maintenance)",
                    )
                },
                |e| e.to_string(),
            )
        })
}

/// A guest cluster's PodDisruptionBudget as a maintenance plan checks it: the available
/// pods of the workload it guards, by node, and the fewest it lets a disruption leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The budget's name.
    pub name: String,
    /// The workload it guards, `cluster/namespace/Kind/name`.
    pub workload: String,
    /// Pods that must stay available.
    pub min_available: u32,
    /// Available pods of the workload, by node name.
    pub pods_on: BTreeMap<String, u32>,
}

/// What a maintenance plan is made from: the placement and what depends on it.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// The placement and capacity of the pool.
    pub state: &'a PoolState,
    /// Each host's zone, by host id (empty: one zone).
    pub zones: &'a [ZoneId],
    /// The guest clusters: control-plane members (etcd) and pools.
    pub clusters: &'a [ClusterTopology],
    /// The PodDisruptionBudgets of every guest cluster.
    pub budgets: &'a [Budget],
    /// Live-migration bandwidth and dirty rate.
    pub deadlines: &'a Deadlines,
}

/// Live migrations off one host at a time: vCenter's network limit for concurrent vMotions,
/// 4 on a 1 GbE link and 8 on 10 GbE ("Limits on Simultaneous Migrations", vSphere 6.5–6.7
/// vCenter Server and Host Management; the host limit is 8 too), and one below 1 Gbit/s,
/// where VMware gives no figure. The migrations share the host's bandwidth.
pub fn parallel_migrations(gbps: f64) -> u32 {
    if gbps >= 10.0 {
        8
    } else if gbps >= 1.0 {
        4
    } else {
        1
    }
}

/// One live migration of a maintenance plan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMove {
    /// The VM.
    pub vm: String,
    /// The host being emptied.
    pub from: String,
    /// Where it goes.
    pub to: String,
    /// When it starts, ms after the maintenance begins.
    pub start_ms: u64,
    /// How long it takes with the bandwidth it shares, ms.
    pub duration_ms: u64,
}

/// A VM that cannot leave the host and stops with it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stop {
    /// The VM.
    pub vm: String,
    /// Why no host takes it.
    pub reason: String,
}

/// Whether a guest cluster's etcd keeps its majority while the host is down.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuorumCheck {
    /// The cluster.
    pub cluster: String,
    /// Control-plane members.
    pub members: u32,
    /// Of them, members that stop with the host.
    pub stopped: u32,
    /// Members a majority needs.
    pub needed: u32,
    /// The members left running are a majority (or none stops).
    pub holds: bool,
}

/// Whether a PodDisruptionBudget holds while the host is down.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetCheck {
    /// The budget.
    pub budget: String,
    /// The workload it guards.
    pub workload: String,
    /// Pods it keeps available.
    pub min_available: u32,
    /// Available pods now.
    pub available: u32,
    /// Available pods while the host is down (pods of stopped node VMs are lost).
    pub available_after: u32,
    /// It holds (or the maintenance takes none of its pods).
    pub holds: bool,
}

/// The whole maintenance of one host, decided before any of it is done.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenancePlan {
    /// The host.
    pub host: String,
    /// Live migrations, in the order they start.
    pub moves: Vec<PlannedMove>,
    /// VMs that stop with the host.
    pub stops: Vec<Stop>,
    /// Every guest cluster's etcd quorum.
    pub quorum: Vec<QuorumCheck>,
    /// Every PodDisruptionBudget.
    pub budgets: Vec<BudgetCheck>,
    /// Migrations in flight at once at most.
    pub parallel: u32,
    /// When the last migration ends and the host can go down, ms.
    pub completion_ms: u64,
}

impl MaintenancePlan {
    /// Why the maintenance would break a guarantee: each etcd quorum lost and each budget
    /// broken. Empty when it is safe.
    pub fn refusals(&self) -> Vec<String> {
        let quorum = self.quorum.iter().filter(|q| !q.holds).map(|q| {
            format!(
                "cluster {} loses etcd quorum: {} of {} control-plane members stop, {} must run",
                q.cluster, q.stopped, q.members, q.needed
            )
        });
        let budgets = self.budgets.iter().filter(|b| !b.holds).map(|b| {
            format!(
                "PodDisruptionBudget {} of {} breaks: {} of {} pods stay available, it needs {}",
                b.budget, b.workload, b.available_after, b.available, b.min_available
            )
        });
        quorum.chain(budgets).collect()
    }
}

/// A maintenance plan with its verdict: what `plinth maintenance --dry-run -o json` prints
/// and what the service answers for `POST …/hosts/NAME/maintenance` (with or without a dry
/// run), from the one [`crate::Control::maintenance_review`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// The plan.
    pub plan: MaintenancePlan,
    /// No etcd quorum and no PodDisruptionBudget breaks.
    pub safe: bool,
    /// What breaks ([`MaintenancePlan::refusals`]).
    pub refusals: Vec<String>,
    /// It is not safe and the operator forced it.
    pub forced: bool,
}

impl Review {
    /// `plan` judged, `force` set by the operator.
    pub fn of(plan: MaintenancePlan, force: bool) -> Self {
        let refusals = plan.refusals();
        Self {
            safe: refusals.is_empty(),
            forced: force && !refusals.is_empty(),
            refusals,
            plan,
        }
    }

    /// The maintenance must not go ahead: it is not safe and not forced.
    pub fn refused(&self) -> bool {
        !self.safe && !self.forced
    }
}

/// Plans the maintenance of `host` on `snapshot`: every running VM of the host is evacuated
/// by [`evacuation`] (the control plane's own choice), the VMs that find no host stop, and
/// the stops are checked against every etcd quorum and PodDisruptionBudget. Migrations run
/// [`parallel_migrations`] at a time in name order, sharing the host's bandwidth.
pub fn plan(snapshot: &Snapshot<'_>, host: HostId) -> MaintenancePlan {
    let state = snapshot.state;
    let bounds = Bounds {
        blocked: &[],
        zones: snapshot.zones,
        limit: usize::MAX,
    };
    let (moves, stuck) = evacuation(state, host, |_| true, &bounds);
    let name = |vm: VmId| state.vm(vm).map_or_else(String::new, |s| s.name.clone());
    let stops: Vec<Stop> = stuck
        .into_iter()
        .map(|(vm, reason)| Stop {
            vm: name(vm),
            reason,
        })
        .collect();
    let stopped: BTreeSet<&str> = stops.iter().map(|s| s.vm.as_str()).collect();
    let parallel = parallel_migrations(snapshot.deadlines.migration_gbps);
    let shared = Deadlines {
        migration_gbps: snapshot.deadlines.migration_gbps / f64::from(parallel),
        ..*snapshot.deadlines
    };
    let durations: Vec<u64> = moves
        .iter()
        .map(|m| {
            let memory = state.vm(m.vm).map_or(0, |s| s.demand.memory_bytes);
            shared.expected_migration(memory)
        })
        .collect();
    let starts = schedule(&durations, parallel);
    let completion_ms = starts
        .iter()
        .zip(&durations)
        .map(|(s, d)| s + d)
        .max()
        .unwrap_or(0);
    let host_name = |h: HostId| state.pool().host(h).name.clone();
    MaintenancePlan {
        host: host_name(host),
        moves: moves
            .iter()
            .zip(starts.iter().zip(&durations))
            .map(|(m, (&start_ms, &duration_ms))| PlannedMove {
                vm: name(m.vm),
                from: host_name(m.from),
                to: host_name(m.to),
                start_ms,
                duration_ms,
            })
            .collect(),
        quorum: snapshot
            .clusters
            .iter()
            .map(|c| quorum(c, &stopped))
            .collect(),
        budgets: snapshot
            .budgets
            .iter()
            .map(|b| budget(b, &stopped))
            .collect(),
        stops,
        parallel,
        completion_ms,
    }
}

/// The etcd quorum of `cluster` with the VMs in `stopped` down.
fn quorum(cluster: &ClusterTopology, stopped: &BTreeSet<&str>) -> QuorumCheck {
    let nodes = &cluster.control_plane.nodes;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let members = count(nodes.len());
    let down = count(
        nodes
            .iter()
            .filter(|n| stopped.contains(n.as_str()))
            .count(),
    );
    let needed = members / 2 + 1;
    QuorumCheck {
        cluster: cluster.name.clone(),
        members,
        stopped: down,
        needed,
        holds: down == 0 || members - down >= needed,
    }
}

/// Budget `b` with the node VMs in `stopped` down.
fn budget(b: &Budget, stopped: &BTreeSet<&str>) -> BudgetCheck {
    let available: u32 = b.pods_on.values().sum();
    let lost: u32 = b
        .pods_on
        .iter()
        .filter(|(node, _)| stopped.contains(node.as_str()))
        .map(|(_, n)| n)
        .sum();
    let available_after = available - lost;
    BudgetCheck {
        budget: b.name.clone(),
        workload: b.workload.clone(),
        min_available: b.min_available,
        available,
        available_after,
        holds: lost == 0 || available_after >= b.min_available,
    }
}

/// Start times of jobs of `durations`, in order, on `lanes` lanes: each starts when the
/// earliest lane is free.
fn schedule(durations: &[u64], lanes: u32) -> Vec<u64> {
    let mut free: BinaryHeap<Reverse<u64>> = (0..lanes.max(1)).map(|_| Reverse(0)).collect();
    durations
        .iter()
        .map(|d| {
            let Reverse(start) = free.pop().unwrap_or(Reverse(0));
            free.push(Reverse(start.saturating_add(*d)));
            start
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GIB, cluster, id, state, vm};
    use proptest::prelude::*;

    /// A step of [`LazyOrder`]'s property test: read the first `n` items, or give item `i`
    /// (modulo the count) key `key`.
    #[derive(Clone, Debug)]
    enum Step {
        Read(usize),
        Replace(usize, u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..12).prop_map(Step::Read),
            (any::<usize>(), any::<u8>()).prop_map(|(i, k)| Step::Replace(i, k)),
        ]
    }

    proptest! {
        /// Whatever is read and re-keyed, in any order, a lazy order reads as a full sort
        /// of its items would (keys repeat; the id breaks ties, as a host's does).
        #[test]
        fn a_lazy_order_reads_as_a_full_sort(
            keys in prop::collection::vec(any::<u8>(), 0..40),
            steps in prop::collection::vec(step(), 0..60),
        ) {
            let mut items: Vec<(u8, usize)> = keys.into_iter().zip(0..).collect();
            let mut lazy = LazyOrder::new(items.iter().copied());
            for s in steps {
                items.sort_unstable();
                match s {
                    Step::Read(n) => {
                        let read: Vec<_> = lazy.in_order().take(n).collect();
                        prop_assert_eq!(&read[..], &items[..n.min(items.len())]);
                    }
                    Step::Replace(i, key) if !items.is_empty() => {
                        let id = items[i % items.len()].1;
                        lazy.replace(|&(_, x)| x == id, (key, id));
                        items.retain(|&(_, x)| x != id);
                        items.push((key, id));
                    }
                    Step::Replace(..) => {}
                }
            }
            items.sort_unstable();
            let all: Vec<_> = lazy.in_order().collect();
            prop_assert_eq!(all, items);
        }
    }

    fn deadlines(gbps: f64) -> Deadlines {
        Deadlines {
            vm_boot: 60_000,
            vm_clone: 30_000,
            fence: 10_000,
            reboot: 300_000,
            install: 0,
            reimage: 0,
            migration_gbps: gbps,
            dirty_rate: 0.0,
            switchover: 1_000,
        }
    }

    fn snapshot<'a>(
        state: &'a PoolState,
        zones: &'a [ZoneId],
        clusters: &'a [ClusterTopology],
        budgets: &'a [Budget],
        d: &'a Deadlines,
    ) -> Snapshot<'a> {
        Snapshot {
            state,
            zones,
            clusters,
            budgets,
            deadlines: d,
        }
    }

    #[test]
    fn a_refused_evacuation_lapses_only_when_room_appears_in_its_zone_or_blocked_hosts_change() {
        // h0, h1 in zone 0, h2 in zone 1; h0's 16 one-core VMs fill it.
        let zones = [ZoneId(0), ZoneId(0), ZoneId(1)];
        let mut s = state(3);
        for i in 0..48 {
            s.place(vm(&format!("w-{i:02}"), 1, 1, false))
                .expect("fits");
        }
        let h0 = HostId(0);
        let bounds = Bounds {
            blocked: &[h0],
            zones: &zones,
            limit: 8,
        };
        let (moves, stuck) = evacuate_in(&mut s, h0, |_| true, &bounds);
        assert!(moves.is_empty(), "h1 is full, h2 is in another zone");
        assert_eq!(stuck.len(), 16);
        let zone0 = [h0, HostId(1)];
        let mut refusal = Refusal::new(&s, h0, &[h0]);
        assert!(!refusal.lapsed(&s, h0, &zone0, &[h0]), "nothing changed");
        let on = |s: &PoolState, h: u32| s.vms_on(HostId(h))[0];
        s.remove(on(&s, 2)).expect("placed");
        assert!(
            !refusal.lapsed(&s, h0, &zone0, &[h0]),
            "room in another zone does not help"
        );
        assert!(
            refusal.lapsed(&s, h0, &zone0, &[h0, HostId(2)]),
            "a host blocked or unblocked since"
        );
        let arrived = s.place(vm("new", 1, 1, false)).expect("fits on h2").0;
        assert!(
            !refusal.lapsed(&s, h0, &zone0, &[h0]),
            "a VM placed in another zone changes nothing here"
        );
        s.remove(arrived).expect("placed");
        s.remove(on(&s, 0)).expect("placed");
        assert!(
            refusal.lapsed(&s, h0, &zone0, &[h0]),
            "what the host holds changed"
        );
        let mut refusal = Refusal::new(&s, h0, &[h0]);
        s.remove(on(&s, 1)).expect("placed");
        assert!(refusal.lapsed(&s, h0, &zone0, &[h0]), "room on h1");
        let (moves, stuck) = evacuate_in(&mut s, h0, |_| true, &bounds);
        assert_eq!(moves.len(), 1, "and the evacuation moves one VM into it");
        assert_eq!(stuck.len(), 14);
    }

    #[test]
    fn vms_move_only_to_hosts_of_their_zone_and_spread_over_them() {
        let mut s = state(5);
        for i in 0..10 {
            s.place(vm(&format!("w-{i}"), 2, 8, false)).expect("fits");
        }
        let h0 = HostId(0);
        assert_eq!(s.vms_on(h0).len(), 2);
        let zones = [ZoneId(0), ZoneId(0), ZoneId(0), ZoneId(1), ZoneId(1)];
        let d = deadlines(10.0);
        let plan = plan(&snapshot(&s, &zones, &[], &[], &d), h0);
        assert!(plan.stops.is_empty());
        let targets: BTreeSet<&str> = plan.moves.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(targets, BTreeSet::from(["h1", "h2"]), "in zone, spread");
    }

    #[test]
    fn a_vm_whose_zone_has_no_other_host_stops_and_etcd_quorum_is_judged() {
        let mut s = state(3);
        // Two of three members on h0 (no group), the third elsewhere.
        s.place(vm("c-cp-0", 2, 4, false)).expect("fits");
        let first = s
            .host_of(id(&s, "c-cp-0").expect("placed"))
            .expect("placed");
        let zones: Vec<ZoneId> = (0..3u32)
            .map(|h| ZoneId(u32::from(HostId(h) != first)))
            .collect();
        let topo = [cluster(&["c-cp-0"], &[])];
        let d = deadlines(10.0);
        let alone = plan(&snapshot(&s, &zones, &topo, &[], &d), first);
        assert_eq!(alone.stops.len(), 1);
        assert_eq!(
            alone.stops[0].reason,
            "no other host of its zone is up and open (not cordoned or in maintenance)"
        );
        assert!(!alone.quorum[0].holds, "1 member, 1 stops");
        assert!(alone.refusals()[0].contains("cluster c loses etcd quorum"));

        let three = [cluster(&["c-cp-0", "x-1", "x-2"], &[])];
        let kept = plan(&snapshot(&s, &zones, &three, &[], &d), first);
        assert!(kept.quorum[0].holds, "2 of 3 still run");
        assert!(kept.refusals().is_empty());
    }

    #[test]
    fn a_budget_breaks_only_when_stopped_nodes_take_too_many_pods() {
        let b = Budget {
            name: "web-pdb".into(),
            workload: "c/default/Deployment/web".into(),
            min_available: 2,
            pods_on: BTreeMap::from([("n-0".into(), 2), ("n-1".into(), 1)]),
        };
        let stopped = BTreeSet::from(["n-0"]);
        let check = budget(&b, &stopped);
        assert_eq!((check.available, check.available_after), (3, 1));
        assert!(!check.holds);
        assert!(budget(&b, &BTreeSet::from(["n-1"])).holds);
        assert!(budget(&b, &BTreeSet::new()).holds);
    }

    #[test]
    fn migrations_run_a_bounded_number_at_a_time_sharing_the_bandwidth() {
        assert_eq!(parallel_migrations(25.0), 8);
        assert_eq!(parallel_migrations(1.0), 4);
        assert_eq!(parallel_migrations(0.5), 1);
        assert_eq!(schedule(&[10, 10, 10], 2), vec![0, 0, 10]);
        let mut s = state(2);
        for i in 0..5 {
            s.place(vm(&format!("w-{i}"), 1, 1, false)).expect("fits");
        }
        let h0 = HostId(0);
        let on_h0 = s.vms_on(h0).len();
        let d = deadlines(1.0);
        let p = plan(&snapshot(&s, &[], &[], &[], &d), h0);
        assert_eq!(p.parallel, 4);
        // 1 GiB at 1/4 Gbit/s: 8 Gbit / 0.25 Gbit/s = 34.4 s, plus the switch-over.
        let one = (GIB * 8) as f64 / 0.25e6;
        assert_eq!(p.moves[0].duration_ms, one as u64 + d.switchover);
        assert!(p.moves.iter().take(4).all(|m| m.start_ms == 0));
        assert_eq!(p.moves.len(), on_h0);
        let last = p.moves.iter().map(|m| m.start_ms + m.duration_ms).max();
        assert_eq!(Some(p.completion_ms), last);
    }

    #[test]
    fn an_unknown_host_names_the_hosts_that_exist() {
        let err = host_named(&state(2), "h9").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "no host `h9` in the pool; its hosts are: h0, h1"
        );
    }
}
