//! DRS: when the standard deviation of per-host CPU allocation / capacity exceeds the
//! threshold, propose at most N live migrations that each reduce it. Every move is checked
//! against the state *with the plan so far applied* ([`PoolState::migrate`] on a working
//! copy), so two moves of one plan can never together break a placement group.
//!
//! Moves are role-aware: worker and other VMs move first; a control-plane VM moves only
//! when no other move helps, alone, so two members of one etcd cluster are never in flight
//! together ([`admissible`], checked as the plan is built and again by the control plane
//! before it issues each move). `plinth drs --dry-run` prints the same [`DrsPlan`].

use plinth_placement::{HostId, HostStatus, Migration, PoolState, VmId, ZoneId};

use crate::config::DrsConfig;
use crate::upgrade::ClusterTopology;

/// CPU allocation / capacity of host `h`.
fn ratio(state: &PoolState, h: HostId) -> f64 {
    let cap = state.pool().host(h).capacity.cpu_millis.max(1) as f64;
    state.used(h).cpu_millis as f64 / cap
}

/// The hosts that are up, by host id.
fn up_hosts(state: &PoolState) -> impl Iterator<Item = HostId> + '_ {
    (0..state.pool().hosts().len() as u32)
        .map(HostId)
        .filter(|h| state.status(*h) == HostStatus::Up)
}

/// CPU allocation / capacity of every host that is up, by host id.
fn ratios(state: &PoolState) -> Vec<(HostId, f64)> {
    up_hosts(state).map(|h| (h, ratio(state, h))).collect()
}

/// The population standard deviation of per-host CPU allocation / capacity over the hosts
/// that are up (0 with fewer than two). Sums in host id order without collecting the
/// ratios (DRS evaluates it once per candidate move).
pub fn imbalance(state: &PoolState) -> f64 {
    let n = up_hosts(state).count();
    if n < 2 {
        return 0.0;
    }
    let n = n as f64;
    let mean = up_hosts(state).map(|h| ratio(state, h)).sum::<f64>() / n;
    (up_hosts(state)
        .map(|h| {
            let x = ratio(state, h);
            (x - mean) * (x - mean)
        })
        .sum::<f64>()
        / n)
        .sqrt()
}

/// The control-plane (etcd) members of the guest clusters, by VM. Built on every DRS pass,
/// so it borrows the clusters' names and allocates one vector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles<'a> {
    /// Control-plane VM and its cluster's name, sorted by VM.
    members: Vec<(VmId, &'a str)>,
}

impl<'a> Roles<'a> {
    /// The control-plane members of `clusters`; `id` finds a VM by name (members it does
    /// not know, not placed, are left out).
    pub fn of(
        clusters: impl IntoIterator<Item = &'a ClusterTopology>,
        id: impl Fn(&str) -> Option<VmId>,
    ) -> Self {
        let mut members: Vec<(VmId, &'a str)> = clusters
            .into_iter()
            .flat_map(|c| {
                let id = &id;
                c.control_plane
                    .nodes
                    .iter()
                    .filter_map(move |n| id(n).map(|vm| (vm, c.name.as_str())))
            })
            .collect();
        members.sort_unstable_by_key(|(vm, _)| *vm);
        Self { members }
    }

    /// The cluster whose etcd `vm` is a member of, if it is a control-plane VM.
    pub fn cluster_of(&self, vm: VmId) -> Option<&'a str> {
        let i = self.members.binary_search_by_key(&vm, |(v, _)| *v).ok()?;
        Some(self.members[i].1)
    }
}

/// Whether `vm` may start migrating while the VMs of `in_flight` migrate (DRS's moves of
/// the same pass included): a control-plane VM only alone, and no other VM while a
/// control-plane VM is in flight. So control-plane VMs move one at a time and never two
/// members of one etcd cluster at once.
pub fn admissible(roles: &Roles, in_flight: &[VmId], vm: VmId) -> bool {
    match roles.cluster_of(vm) {
        Some(_) => in_flight.iter().all(|v| *v == vm),
        None => in_flight.iter().all(|v| roles.cluster_of(*v).is_none()),
    }
}

/// One DRS pass as a value: its moves and the imbalance before and after them.
#[derive(Clone, Debug, PartialEq)]
pub struct DrsPlan {
    /// [`imbalance`] now.
    pub before: f64,
    /// [`imbalance`] once the moves are made.
    pub after: f64,
    /// The moves, in the order they were chosen.
    pub moves: Vec<Migration>,
}

/// A move of a [`DrsPlan`] by name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedMove {
    /// The VM.
    pub vm: String,
    /// Its host now.
    pub from: String,
    /// Where it goes.
    pub to: String,
    /// The cluster whose etcd it is a member of, for a control-plane VM.
    pub control_plane_of: Option<String>,
}

impl DrsPlan {
    /// The moves by name, in order; `state` is the placement the plan was made on.
    pub fn named(&self, state: &PoolState, roles: &Roles) -> Vec<NamedMove> {
        let host = |h: HostId| state.pool().host(h).name.clone();
        self.moves
            .iter()
            .map(|m| NamedMove {
                vm: name(state, m.vm).to_owned(),
                from: host(m.from),
                to: host(m.to),
                control_plane_of: roles.cluster_of(m.vm).map(str::to_owned),
            })
            .collect()
    }
}

/// A DRS pass as an operator reads it: the settings it ran under, the imbalance before
/// and after, and its moves by name (`plinth drs --dry-run`, and the service's answer).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// Whether DRS runs (a pass is planned either way).
    pub enabled: bool,
    /// The imbalance above which DRS moves VMs.
    pub threshold: f64,
    /// Time between passes, ms.
    pub interval_ms: u64,
    /// Moves per pass at most.
    pub max_moves_per_interval: u32,
    /// [`imbalance`] now.
    pub imbalance_before: f64,
    /// [`imbalance`] once the moves are made.
    pub imbalance_after: f64,
    /// The moves, in the order they are made.
    pub moves: Vec<NamedMove>,
}

impl Review {
    /// `plan`, made under `cfg` on `state`, for an operator.
    pub fn of(cfg: &DrsConfig, plan: &DrsPlan, state: &PoolState, roles: &Roles) -> Self {
        Self {
            enabled: cfg.enabled,
            threshold: cfg.threshold,
            interval_ms: cfg.interval,
            max_moves_per_interval: cfg.max_moves,
            imbalance_before: plan.before,
            imbalance_after: plan.after,
            moves: plan.named(state, roles),
        }
    }
}

/// Whether a pool of imbalance `imbalance` needs no move: at or under the threshold.
pub fn balanced(imbalance: f64, cfg: &DrsConfig) -> bool {
    imbalance <= cfg.threshold
}

/// Up to `cfg.max_moves` migrations that reduce [`imbalance`], each from the most loaded
/// host; only VMs for which `movable` holds move, never onto a host in `blocked` and only
/// within the source host's zone (`zones`, by host id; empty: one zone). Other VMs first; a control-plane VM of `roles` only when no other move helps, and then
/// alone ([`admissible`]). No moves when the pool is balanced or no move helps. Pure:
/// `state` is not changed.
pub fn plan(
    state: &PoolState,
    cfg: &DrsConfig,
    roles: &Roles,
    movable: impl Fn(VmId) -> bool,
    blocked: &[HostId],
    zones: &[ZoneId],
) -> DrsPlan {
    let before = imbalance(state);
    let mut plan = DrsPlan {
        before,
        after: before,
        moves: Vec::new(),
    };
    if balanced(before, cfg) {
        return plan;
    }
    let mut work = state.clone();
    let mut moved: Vec<VmId> = Vec::new();
    for _ in 0..cfg.max_moves {
        if balanced(imbalance(&work), cfg) {
            break;
        }
        let worker = |v: VmId| roles.cluster_of(v).is_none();
        let step = best_move(&mut work, |v| worker(v) && movable(v), blocked, zones)
            .or_else(|| best_move(&mut work, |v| !worker(v) && movable(v), blocked, zones));
        let Some(m) = step.filter(|m| admissible(roles, &moved, m.vm)) else {
            break;
        };
        if work.migrate(m).is_err() {
            break;
        }
        moved.push(m.vm);
        plan.moves.push(m);
    }
    plan.after = imbalance(&work);
    plan
}

/// The move off the most loaded host, among the VMs `candidate` admits, that reduces
/// [`imbalance`] most: each VM tries the least loaded host of the source's zone that takes
/// it. `work` is tried on and left as it was.
fn best_move(
    work: &mut PoolState,
    candidate: impl Fn(VmId) -> bool,
    blocked: &[HostId],
    zones: &[ZoneId],
) -> Option<Migration> {
    let before = imbalance(work);
    let mut r = ratios(work);
    r.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| work.pool().host(a.0).name.cmp(&work.pool().host(b.0).name))
    });
    let &(source, _) = r.first()?;
    let targets: Vec<HostId> = r
        .iter()
        .rev()
        .map(|(h, _)| *h)
        .filter(|h| {
            *h != source
                && !blocked.contains(h)
                && zones.get(h.index()) == zones.get(source.index())
        })
        .collect();
    let mut vms: Vec<VmId> = work
        .vms_on(source)
        .into_iter()
        .filter(|v| candidate(*v))
        .collect();
    vms.sort_by(|a, b| name(work, *a).cmp(name(work, *b)));
    let mut best: Option<(f64, Migration)> = None;
    for vm in vms {
        for &to in &targets {
            let m = Migration {
                vm,
                from: source,
                to,
            };
            if work.migrate(m).is_err() {
                continue;
            }
            let after = imbalance(work);
            let back = Migration {
                vm,
                from: to,
                to: source,
            };
            // Moving back to where it ran before cannot break a constraint.
            let _ = work.migrate(back);
            if after < before - 1e-9 && best.as_ref().is_none_or(|(b, _)| after < *b) {
                best = Some((after, m));
            }
            // The least loaded target that accepts the VM is its best; try the next VM.
            break;
        }
    }
    best.map(|(_, m)| m)
}

fn name(state: &PoolState, vm: VmId) -> &str {
    state.vm(vm).map_or("", |s| s.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cluster, id, state, vm};
    use plinth_placement::HostStatus;

    /// Everything on h0 and h1 of four hosts: two control-plane members (strict) and
    /// `workers` workers.
    fn lopsided(workers: usize) -> PoolState {
        let mut s = state(4);
        for h in 2..4 {
            s.set_status(HostId(h), HostStatus::Maintenance)
                .expect("empty");
        }
        for i in 0..2 {
            s.place(vm(&format!("c-cp-{i}"), 2, 4, true)).expect("fits");
        }
        for i in 0..workers {
            s.place(vm(&format!("w-{i:02}"), 2, 4, false))
                .expect("fits");
        }
        for h in 2..4 {
            s.set_status(HostId(h), HostStatus::Up).expect("up");
        }
        s
    }

    fn cfg(max_moves: u32) -> DrsConfig {
        DrsConfig {
            enabled: true,
            threshold: 0.05,
            interval: 300_000,
            max_moves,
        }
    }

    fn roles<'a>(s: &PoolState, clusters: &'a [ClusterTopology]) -> Roles<'a> {
        Roles::of(clusters, |n| id(s, n))
    }

    fn clusters() -> [ClusterTopology; 1] {
        [cluster(&["c-cp-0", "c-cp-1"], &[])]
    }

    #[test]
    fn other_vms_move_first_and_control_plane_vms_last_one_at_a_time() {
        let s = lopsided(6);
        let cs = clusters();
        let r = roles(&s, &cs);
        let first = plan(&s, &cfg(8), &r, |_| true, &[], &[]);
        assert!(!first.moves.is_empty());
        assert!(first.after < first.before);
        assert!(first.moves.iter().all(|m| r.cluster_of(m.vm).is_none()));

        // With only the control plane left to move: one member, alone.
        let only_cp = plan(&s, &cfg(8), &r, |v| r.cluster_of(v).is_some(), &[], &[]);
        assert_eq!(only_cp.moves.len(), 1);
        assert!(only_cp.after < only_cp.before);
    }

    #[test]
    fn moves_per_interval_are_bounded() {
        let s = lopsided(10);
        assert_eq!(
            plan(&s, &cfg(2), &roles(&s, &clusters()), |_| true, &[], &[])
                .moves
                .len(),
            2
        );
    }

    #[test]
    fn a_control_plane_move_never_joins_another_move() {
        let s = lopsided(0);
        let cs = clusters();
        let r = roles(&s, &cs);
        let (cp0, cp1) = (id(&s, "c-cp-0").expect("cp"), id(&s, "c-cp-1").expect("cp"));
        let w = VmId(99);
        assert!(admissible(&r, &[], cp0));
        assert!(!admissible(&r, &[cp1], cp0), "two members of one etcd");
        assert!(!admissible(&r, &[w], cp0), "a control-plane VM moves alone");
        assert!(!admissible(&r, &[cp0], w), "nothing joins it");
        assert!(admissible(&r, &[w], VmId(98)));
    }

    #[test]
    fn a_balanced_pool_gets_no_moves() {
        let mut s = state(2);
        for i in 0..4 {
            s.place(vm(&format!("w-{i}"), 2, 4, false)).expect("fits");
        }
        let p = plan(&s, &cfg(4), &Roles::default(), |_| true, &[], &[]);
        assert!(p.moves.is_empty());
        assert_eq!(p.before, p.after);
    }
}
