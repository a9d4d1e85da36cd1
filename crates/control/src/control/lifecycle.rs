//! The cluster lifecycle reconciler inside [`Control`]: rolling upgrades. The decisions
//! (how many nodes start, the order, names) are the pure functions of [`crate::upgrade`];
//! this file walks each replacement through its commands.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use plinth_model::kinds::cluster::node_prefix;
use plinth_placement::{HostId, HostStatus, Migration, VmSpec};

use super::{Control, Health, Maint, Pending, Timer};
use crate::command::{
    Command, CommandKind, ControlEvent, PoolName, Reason, ReplaceMethod, UpgradeKind,
};
use crate::control::VmPhase;
use crate::time::{Span, Time};
use crate::upgrade::{self, CONTROL_PLANE, ClusterTopology, PoolTopology, Spare};

/// Wait before a replacement that found no room is tried again, ms.
const RETRY_MS: u64 = 60_000;

/// Where one node's replacement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum Step {
    /// The new VM is being cloned and booted (or restarted by HA after its host failed).
    Creating,
    /// A spare server is being installed as the new node.
    Provisioning,
    /// The old node is being drained.
    Draining,
    /// The old VM is being deleted.
    Deleting,
    /// The old node is being removed and its server returned as a spare.
    Removing,
    /// The server is being reimaged in place.
    Reimaging,
    /// The reimaged node is being made schedulable again.
    Uncordoning,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Replacement {
    /// The new node (`None` while an in-place VM replacement drains the old one; the old
    /// name when a server is reimaged in place).
    new: Option<String>,
    surge: bool,
    step: Step,
    /// The deleted VM's spec, the template of its in-place replacement.
    spec: Option<VmSpec>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Rollout {
    kind: UpgradeKind,
    /// 0: control plane; i ≥ 1: pool i − 1.
    stage: usize,
    /// Nodes of the stage not started yet, last to start first.
    waiting: Vec<String>,
    /// Replacements in progress, by old node.
    active: BTreeMap<String, Replacement>,
    nodes: u32,
    done: u32,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct ClusterRec {
    topo: ClusterTopology,
    /// Next free node index, by stage.
    next: Vec<u32>,
    rollout: Option<Rollout>,
    queued: VecDeque<UpgradeKind>,
    retry_at: Option<Time>,
    /// Pools being scaled: stage → nodes wanted.
    scale_target: BTreeMap<usize, u32>,
    /// Failed servers replaced by remediation: they become spares once repaired.
    remediated: Vec<Spare>,
    /// Being created (`ClusterRequested`): the stage being built (0: control plane).
    creating: Option<usize>,
    /// Scale commands in flight.
    scaling: u32,
}

impl ClusterRec {
    pub(super) fn new(topo: ClusterTopology) -> Self {
        let mut next = Vec::new();
        for p in std::iter::once(&topo.control_plane).chain(&topo.pools) {
            let prefix = node_prefix(&topo.name, &p.name);
            next.push(upgrade::next_index(
                &prefix,
                p.nodes.iter().map(String::as_str),
            ));
        }
        Self {
            topo,
            next,
            rollout: None,
            queued: VecDeque::new(),
            retry_at: None,
            scale_target: BTreeMap::new(),
            remediated: Vec::new(),
            creating: None,
            scaling: 0,
        }
    }

    /// The prefix of stage `stage`'s new node names ([`name_prefix`]).
    fn name_prefix(&self, stage: usize) -> String {
        let pool = self.stage(stage).map_or(CONTROL_PLANE, |p| p.name.as_str());
        node_prefix(&self.topo.name, pool)
    }

    /// Whether a creation, a scale or a rollout of the cluster is under way or queued.
    pub(super) fn busy(&self) -> bool {
        self.creating.is_some()
            || self.rollout.is_some()
            || !self.queued.is_empty()
            || self.scaling > 0
            || !self.scale_target.is_empty()
    }

    fn stage(&self, stage: usize) -> Option<&PoolTopology> {
        if stage == 0 {
            Some(&self.topo.control_plane)
        } else {
            self.topo.pools.get(stage - 1)
        }
    }

    fn stage_mut(&mut self, stage: usize) -> Option<&mut PoolTopology> {
        if stage == 0 {
            Some(&mut self.topo.control_plane)
        } else {
            self.topo.pools.get_mut(stage - 1)
        }
    }

    /// When its rollout or scale-up that found no room looks again.
    pub(super) fn retry_at(&self) -> Option<Time> {
        self.retry_at
    }

    /// The cluster's topology as the control plane sees it now.
    pub(super) fn topology(&self) -> &ClusterTopology {
        &self.topo
    }
}

/// The prefix of a pool's node VM names: VMs of the control plane are `<cluster>-cp-<i>`,
/// of a pool `<cluster>-<pool>-<i>`, where `<i>` is the node's index
/// ([`upgrade::node_index`]).
impl Control {
    pub(super) fn request_upgrade(
        &mut self,
        now: Time,
        cluster: &str,
        kind: UpgradeKind,
        out: &mut Vec<Command>,
    ) {
        let Some(&c) = self.cluster_index.get(cluster) else {
            return;
        };
        if self.clusters[c].rollout.is_some() {
            self.clusters[c].queued.push_back(kind);
            return;
        }
        self.start_rollout(now, c, kind, out);
    }

    fn start_rollout(&mut self, now: Time, c: usize, kind: UpgradeKind, out: &mut Vec<Command>) {
        let rec = &self.clusters[c];
        let nodes = std::iter::once(&rec.topo.control_plane)
            .chain(&rec.topo.pools)
            .map(|p| p.nodes.len() as u32)
            .sum();
        let name = rec.topo.name.clone();
        self.clusters[c].rollout = Some(Rollout {
            kind,
            stage: 0,
            waiting: self.stage_nodes(c, 0),
            active: BTreeMap::new(),
            nodes,
            done: 0,
        });
        self.events.push(ControlEvent::UpgradeStarted {
            cluster: name,
            kind,
            nodes,
        });
        self.rollout_condition(now, c, None);
        self.advance(now, c, out);
    }

    /// Nodes of `stage`, last in name order first (they are popped).
    fn stage_nodes(&self, c: usize, stage: usize) -> Vec<String> {
        let mut v = self.clusters[c]
            .stage(stage)
            .map(|p| p.nodes.clone())
            .unwrap_or_default();
        v.sort();
        v.reverse();
        v
    }

    pub(super) fn rollout_condition(&mut self, now: Time, c: usize, waiting: Option<String>) {
        let rec = &self.clusters[c];
        let Some(r) = &rec.rollout else {
            return;
        };
        let pool = rec.stage(r.stage).map_or("", |p| p.name.as_str());
        let mut message = format!(
            "rolling {} upgrade: {} of {} nodes done; now {pool}",
            r.kind, r.done, r.nodes
        );
        if let Some(w) = waiting {
            message.push_str("; ");
            message.push_str(&w);
        }
        // Each node whose drain failed holds the rollout up: paused until it is drained.
        for node in r.active.keys() {
            if let Some(cond) = self
                .conditions
                .get(&format!("node/{node}"))
                .filter(|c| c.reason == Reason::DrainFailed)
            {
                message.push_str("; paused: ");
                message.push_str(&cond.message);
            }
        }
        let object = format!("cluster/{}", rec.topo.name);
        self.set_condition(object, Reason::Upgrading, message, now);
    }

    /// Starts whatever the current stage allows; moves to the next stage, or finishes.
    pub(super) fn advance(&mut self, now: Time, c: usize, out: &mut Vec<Command>) {
        loop {
            let Some(r) = &self.clusters[c].rollout else {
                return;
            };
            let stage = r.stage;
            if r.waiting.is_empty() && r.active.is_empty() {
                if stage >= self.clusters[c].topo.pools.len() {
                    self.finish_rollout(now, c, out);
                    return;
                }
                let waiting = self.stage_nodes(c, stage + 1);
                if let Some(r) = &mut self.clusters[c].rollout {
                    r.stage = stage + 1;
                    r.waiting = waiting;
                }
                self.rollout_condition(now, c, None);
                continue;
            }
            let rec = &self.clusters[c];
            let Some(pool) = rec.stage(stage) else {
                return;
            };
            let surging = r.active.values().filter(|x| x.surge).count() as u32;
            let unavailable = r.active.len() as u32 - surging;
            let (room, free) = if let Some(v) = &mut self.vms {
                // The next node to go is the template of a surge node.
                let template = r.waiting.last().and_then(|n| v.ids.get(n)).copied();
                upgrade::vm_surge_room(&mut v.pool, template, pool.strategy, surging, unavailable)
            } else if stage == 0 {
                (0, 0)
            } else {
                // Spares that are down do not count: with none up, the pool goes in place.
                let free = self.spares_up(c, stage);
                (free + surging, free)
            };
            let b = upgrade::batch(
                pool.strategy,
                room,
                free,
                surging,
                unavailable,
                r.waiting.len(),
            );
            if b.surge == 0 && b.in_place == 0 {
                return;
            }
            let mut blocked = false;
            for i in 0..b.surge + b.in_place {
                let Some(old) = self.clusters[c]
                    .rollout
                    .as_mut()
                    .and_then(|r| r.waiting.pop())
                else {
                    break;
                };
                // Scaled away or remediated since the stage began: nothing to replace.
                if !self.clusters[c]
                    .stage(stage)
                    .is_some_and(|p| p.nodes.contains(&old))
                {
                    continue;
                }
                if !self.begin_replacement(now, c, stage, old, i < b.surge, out) {
                    blocked = true;
                    break;
                }
            }
            if blocked {
                return;
            }
        }
    }

    /// Begins replacing `old`; false (and `old` back in line) when nothing could start.
    fn begin_replacement(
        &mut self,
        now: Time,
        c: usize,
        stage: usize,
        old: String,
        surge: bool,
        out: &mut Vec<Command>,
    ) -> bool {
        let virtualized = self.vms.is_some();
        // A server that is silent, failed or in maintenance waits: its repair or its
        // maintenance comes first.
        if !virtualized
            && let Some(&i) = self.host_index.get(&old)
            && !self.hosts[i].open()
        {
            self.requeue(c, old.clone());
            self.rollout_wait(now, c, format!("server {old} is down or in maintenance"));
            return false;
        }
        let step = match (virtualized, surge, stage == 0) {
            (true, true, _) => Step::Creating,
            (true, false, _) => Step::Draining,
            (false, true, _) => Step::Provisioning,
            (false, false, true) => Step::Reimaging,
            (false, false, false) => Step::Draining,
        };
        let mut rep = Replacement {
            new: None,
            surge,
            step,
            spec: None,
        };
        match step {
            Step::Creating => match self.create_node(now, c, stage, &old, out) {
                Some(new) => rep.new = Some(new),
                None => {
                    self.requeue(c, old);
                    return false;
                }
            },
            Step::Provisioning => {
                let spare = self.take_spare(c, stage, Some(&old));
                let Some(spare) = spare else {
                    self.requeue(c, old);
                    self.rollout_wait(now, c, "no spare server is up".into());
                    return false;
                };
                let pool = self.pool_name(c, stage);
                rep.new = Some(spare.clone());
                self.issue_upgrade(
                    c,
                    &old,
                    CommandKind::ProvisionServer {
                        server: spare,
                        pool,
                    },
                    out,
                );
            }
            Step::Reimaging => {
                rep.new = Some(old.clone());
                self.issue_upgrade(
                    c,
                    &old,
                    CommandKind::ReimageServer {
                        server: old.clone(),
                    },
                    out,
                );
            }
            _ => {
                if !virtualized {
                    rep.new = Some(old.clone());
                }
                self.issue_upgrade(c, &old, CommandKind::Drain { node: old.clone() }, out);
            }
        }
        if let Some(r) = &mut self.clusters[c].rollout {
            r.active.insert(old, rep);
        }
        true
    }

    fn requeue(&mut self, c: usize, old: String) {
        if let Some(r) = &mut self.clusters[c].rollout {
            r.waiting.push(old);
        }
    }

    fn pool_name(&self, c: usize, stage: usize) -> PoolName {
        let rec = &self.clusters[c];
        let pool = rec.stage(stage).map_or(CONTROL_PLANE, |p| p.name.as_str());
        PoolName::new(&rec.topo.name, pool)
    }

    fn issue_upgrade(&mut self, c: usize, old: &str, kind: CommandKind, out: &mut Vec<Command>) {
        self.issue(
            kind,
            Pending::Upgrade {
                cluster: c,
                old: old.to_owned(),
            },
            out,
        );
    }

    /// Places a new VM like `old` (same size, group, priority) and creates it; the new
    /// name, or `None` (with the cluster's condition saying why) when no host has room.
    /// Places a new VM of stage `stage` of cluster `c` from `template` (renamed to the
    /// next free name) and marks it starting; its name and host.
    fn place_node(
        &mut self,
        c: usize,
        stage: usize,
        mut spec: VmSpec,
    ) -> Result<(String, String), plinth_placement::PlacementError> {
        let prefix = self.clusters[c].name_prefix(stage);
        let index = self.clusters[c].next.get(stage).copied().unwrap_or(0);
        let new = format!("{prefix}{index}");
        let Some(v) = self.vms.as_mut() else {
            return Err(plinth_placement::PlacementError::Invalid {
                reason: "no virtualization pool".into(),
            });
        };
        spec.name = new.clone();
        let hosts = &self.hosts;
        let blocked = |h: HostId| !hosts[h.index()].open();
        let (id, mut host) = v.pool.place(spec)?;
        // Placement knows no "silent" or "being emptied": move the new VM off such a host
        // before it is created, to the host with most room that takes it (else a silent
        // host fails the create and HA restarts it; an emptied one evacuates it again).
        if blocked(host) {
            let mut targets: Vec<(u64, &str, HostId)> = (0..v.pool.pool().hosts().len() as u32)
                .map(HostId)
                .filter(|h| !blocked(*h) && v.pool.status(*h) == HostStatus::Up)
                .map(|h| {
                    let score = u64::MAX - crate::maintenance::free_score(&v.pool, h);
                    (score, v.pool.pool().host(h).name.as_str(), h)
                })
                .collect();
            targets.sort();
            let targets: Vec<HostId> = targets.into_iter().map(|(_, _, h)| h).collect();
            for to in targets {
                let m = Migration {
                    vm: id,
                    from: host,
                    to,
                };
                if v.pool.migrate(m).is_ok() {
                    host = to;
                    break;
                }
            }
        }
        v.ids.insert(new.clone(), id);
        v.phase.insert(new.clone(), VmPhase::Starting);
        let host = v.pool.pool().host(host).name.clone();
        self.drs_dirty = true;
        if let Some(n) = self.clusters[c].next.get_mut(stage) {
            *n += 1;
        }
        Ok((new, host))
    }

    /// The spec of VM `name` (running, or stranded for lack of room).
    pub(super) fn vm_spec(&self, name: &str) -> Option<VmSpec> {
        let v = self.vms.as_ref()?;
        v.ids
            .get(name)
            .and_then(|id| v.pool.vm(*id))
            .or_else(|| v.stranded.get(name))
            .cloned()
    }

    /// Places a new VM like `old` (same size, group, priority) and creates it; the new
    /// name, or `None` (with the cluster's condition saying why) when no host has room.
    fn create_node(
        &mut self,
        now: Time,
        c: usize,
        stage: usize,
        old: &str,
        out: &mut Vec<Command>,
    ) -> Option<String> {
        let kept = self.replacement(c, old).and_then(|r| r.spec);
        let template = self.vm_spec(old).or(kept)?;
        let pool = self.pool_name(c, stage);
        match self.place_node(c, stage, template) {
            Ok((new, host)) => {
                self.issue_upgrade(
                    c,
                    old,
                    CommandKind::CreateVm {
                        vm: new.clone(),
                        host,
                        pool,
                    },
                    out,
                );
                self.upgrade_vms.insert(new.clone(), (c, old.to_owned()));
                Some(new)
            }
            Err(e) => {
                let retry = now + RETRY_MS;
                self.rollout_condition(
                    now,
                    c,
                    Some(format!(
                        "waiting for capacity for a new node like {old}: {e}; next try in {}",
                        Span(RETRY_MS)
                    )),
                );
                if self.clusters[c].retry_at.is_none() {
                    self.clusters[c].retry_at = Some(retry);
                    self.timers.insert((retry, Timer::Rollout(c)));
                }
                None
            }
        }
    }

    /// The rollout of cluster `c` waits (`why`): say so and look again in a minute.
    fn rollout_wait(&mut self, now: Time, c: usize, why: String) {
        let retry = now + RETRY_MS;
        self.rollout_condition(now, c, Some(format!("waiting: {why}")));
        if self.clusters[c].retry_at.is_none() {
            self.clusters[c].retry_at = Some(retry);
            self.timers.insert((retry, Timer::Rollout(c)));
        }
    }

    /// Whether pool `stage` of cluster `c` may take `spare` now: kept for the cluster or
    /// shared, of the pool's class, up and not in maintenance.
    fn spare_ready(&self, c: usize, stage: usize, spare: &Spare) -> bool {
        let rec = &self.clusters[c];
        spare.cluster.as_ref().is_none_or(|x| *x == rec.topo.name)
            && rec
                .stage(stage)
                .and_then(|p| p.class.as_ref())
                .is_none_or(|k| *k == spare.class)
            && self
                .host_index
                .get(&spare.server)
                .is_some_and(|i| self.hosts[*i].open())
    }

    /// Spare servers pool `stage` of cluster `c` may take now.
    fn spares_up(&self, c: usize, stage: usize) -> u32 {
        self.spares
            .iter()
            .filter(|s| self.spare_ready(c, stage, s))
            .count() as u32
    }

    /// Takes the spare pool `stage` of cluster `c` installs next: of those it may take,
    /// one in the zone of `near` (the server it replaces) first, then one kept for the
    /// cluster before a shared one, then by name.
    fn take_spare(&mut self, c: usize, stage: usize, near: Option<&str>) -> Option<String> {
        let zone_of = |server: &str| {
            self.host_index
                .get(server)
                .and_then(|i| self.zones.get(*i))
                .copied()
        };
        let zone = near.and_then(zone_of);
        let (at, _) = self
            .spares
            .iter()
            .enumerate()
            .filter(|(_, s)| self.spare_ready(c, stage, s))
            .min_by_key(|(_, s)| {
                (
                    zone.is_some() && zone_of(&s.server) != zone,
                    s.cluster.is_none(),
                    &s.server,
                )
            })?;
        Some(self.spares.remove(at).server)
    }

    /// `server`, leaving pool `stage` of cluster `c`, as a spare: of the pool's class,
    /// shared or kept for the cluster as the spare scope says.
    fn as_spare(&self, c: usize, stage: usize, server: String) -> Spare {
        let rec = &self.clusters[c];
        Spare {
            server,
            class: rec
                .stage(stage)
                .and_then(|p| p.class.clone())
                .unwrap_or_default(),
            cluster: (!self.spare_scope.shared()).then(|| rec.topo.name.clone()),
        }
    }

    /// `spare` joins the spares; the clusters it may serve that wait for a server to grow
    /// a pool look again.
    fn give_back(&mut self, now: Time, spare: Spare, out: &mut Vec<Command>) {
        let waiting: Vec<usize> = match &spare.cluster {
            Some(name) => self.cluster_index.get(name).copied().into_iter().collect(),
            None => (0..self.clusters.len())
                .filter(|c| !self.clusters[*c].scale_target.is_empty())
                .collect(),
        };
        self.spares.push(spare);
        for c in waiting {
            self.rescale(now, c, out);
        }
    }

    /// The nodes rollouts are replacing right now (the old ones): a rollout owns them until
    /// it deletes them, so HA does not restart one whose host fails (its replacement runs
    /// soon, or already does: a restart would be deleted as it boots).
    pub(super) fn replaced_nodes(&self) -> BTreeSet<String> {
        self.clusters
            .iter()
            .filter_map(|c| c.rollout.as_ref())
            .flat_map(|r| r.active.keys().cloned())
            .collect()
    }

    /// Whether a rollout is replacing or reimaging `node` right now.
    pub(super) fn in_rollout(&self, node: &str) -> bool {
        self.clusters.iter().any(|c| {
            c.rollout.as_ref().is_some_and(|r| {
                r.active.contains_key(node)
                    || r.active.values().any(|x| x.new.as_deref() == Some(node))
            })
        })
    }

    pub(super) fn rollout_retry(&mut self, now: Time, c: usize, out: &mut Vec<Command>) {
        self.clusters[c].retry_at = None;
        self.rollout_condition(now, c, None);
        self.advance(now, c, out);
    }

    /// A VM reached Running: if it is a rollout's new node, the replacement moves on.
    pub(super) fn upgrade_vm_running(&mut self, now: Time, vm: &str, out: &mut Vec<Command>) {
        let Some((c, old)) = self.upgrade_vms.get(vm).cloned() else {
            return;
        };
        let Some(rep) = self.replacement(c, &old) else {
            return;
        };
        if rep.step != Step::Creating {
            return;
        }
        self.upgrade_vms.remove(vm);
        let stage = self.clusters[c].rollout.as_ref().map_or(0, |r| r.stage);
        if !rep.surge {
            self.finish_replacement(now, c, &old, out);
        } else if stage == 0 {
            self.delete_vm(now, c, &old, out);
        } else {
            self.set_step(c, &old, Step::Draining);
            self.issue_upgrade(c, &old, CommandKind::Drain { node: old.clone() }, out);
        }
    }

    fn replacement(&self, c: usize, old: &str) -> Option<Replacement> {
        self.clusters[c].rollout.as_ref()?.active.get(old).cloned()
    }

    fn set_step(&mut self, c: usize, old: &str, step: Step) {
        if let Some(rep) = self.clusters[c]
            .rollout
            .as_mut()
            .and_then(|r| r.active.get_mut(old))
        {
            rep.step = step;
        }
    }

    fn delete_vm(&mut self, now: Time, c: usize, old: &str, out: &mut Vec<Command>) {
        self.set_step(c, old, Step::Deleting);
        let mut host = None;
        let mut spec = None;
        if let Some(v) = &mut self.vms {
            if let Some(id) = v.ids.remove(old) {
                host = v
                    .pool
                    .host_of(id)
                    .map(|h| v.pool.pool().host(h).name.clone());
                spec = v.pool.remove(id).ok();
            }
            if let Some(s) = v.stranded.remove(old) {
                spec = Some(s);
            }
            v.phase.remove(old);
            self.drs_dirty = true;
        }
        if let Some(r) = self.clusters[c]
            .rollout
            .as_mut()
            .and_then(|r| r.active.get_mut(old))
        {
            r.spec = spec;
        }
        self.clear_condition(&format!("vm/{old}"), now);
        self.issue_upgrade(
            c,
            old,
            CommandKind::DeleteVm {
                vm: old.to_owned(),
                host,
            },
            out,
        );
        // Its room is free in the desired placement: a VM waiting for some may fit now.
        self.retry_stranded(now, out);
    }

    /// A rollout command finished (or failed).
    pub(super) fn upgrade_done(
        &mut self,
        now: Time,
        c: usize,
        old: String,
        failed: Option<crate::command::CommandError>,
        out: &mut Vec<Command>,
    ) {
        let Some(rep) = self.replacement(c, &old) else {
            return;
        };
        let virtualized = self.vms.is_some();
        match rep.step {
            Step::Creating => {
                let Some(new) = rep.new.clone() else {
                    return;
                };
                if failed.is_none() {
                    self.set_phase(&new, VmPhase::Running);
                    self.clear_condition(&format!("vm/{new}"), now);
                    self.upgrade_vm_running(now, &new, out);
                }
                // Failed: its host was lost; HA restarts it like any VM of that host, and
                // the replacement moves on when it runs.
            }
            Step::Provisioning | Step::Reimaging if failed.is_some() => {
                // The server failed meanwhile: start this node over once it is back (a
                // spare goes back to the spares).
                if rep.step == Step::Provisioning
                    && let Some(spare) = rep.new.clone()
                {
                    let stage = self.clusters[c].rollout.as_ref().map_or(0, |r| r.stage);
                    let spare = self.as_spare(c, stage, spare);
                    self.give_back(now, spare, out);
                }
                if let Some(r) = &mut self.clusters[c].rollout {
                    r.active.remove(&old);
                }
                self.requeue(c, old.clone());
                self.rollout_wait(
                    now,
                    c,
                    format!(
                        "{} failed: {}",
                        old,
                        failed.map(|e| e.to_string()).unwrap_or_default()
                    ),
                );
            }
            Step::Provisioning => {
                if let Some(new) = &rep.new {
                    let stage = self.clusters[c].rollout.as_ref().map_or(0, |r| r.stage);
                    if let Some(p) = self.clusters[c].stage_mut(stage) {
                        p.nodes.push(new.clone());
                    }
                }
                self.set_step(c, &old, Step::Draining);
                self.issue_upgrade(c, &old, CommandKind::Drain { node: old.clone() }, out);
            }
            Step::Draining => {
                // Drained: the pause for its drain, if it failed before, ends (its node's
                // condition was cleared as the answer came).
                self.rollout_condition(now, c, None);
                if virtualized {
                    self.delete_vm(now, c, &old, out);
                } else if rep.surge {
                    self.set_step(c, &old, Step::Removing);
                    self.issue_upgrade(c, &old, CommandKind::RemoveNode { node: old.clone() }, out);
                } else {
                    self.set_step(c, &old, Step::Reimaging);
                    self.issue_upgrade(
                        c,
                        &old,
                        CommandKind::ReimageServer {
                            server: old.clone(),
                        },
                        out,
                    );
                }
            }
            Step::Deleting => {
                if rep.surge {
                    self.finish_replacement(now, c, &old, out);
                } else {
                    let stage = self.clusters[c].rollout.as_ref().map_or(0, |r| r.stage);
                    match self.create_node(now, c, stage, &old, out) {
                        Some(new) => {
                            if let Some(r) = self.clusters[c]
                                .rollout
                                .as_mut()
                                .and_then(|r| r.active.get_mut(&old))
                            {
                                r.new = Some(new);
                                r.step = Step::Creating;
                            }
                        }
                        None => {
                            // The old VM is gone; keep the slot and try again later.
                            self.set_step(c, &old, Step::Deleting);
                            self.retry_deleted.push((c, old));
                        }
                    }
                }
            }
            Step::Removing => {
                let stage = self.clusters[c].rollout.as_ref().map_or(0, |r| r.stage);
                if let Some(p) = self.clusters[c].stage_mut(stage) {
                    p.nodes.retain(|n| n != &old);
                }
                self.finish_replacement(now, c, &old, out);
                let spare = self.as_spare(c, stage, old);
                self.give_back(now, spare, out);
            }
            Step::Reimaging => {
                let stage = self.clusters[c].rollout.as_ref().map_or(0, |r| r.stage);
                if stage == 0 {
                    self.finish_replacement(now, c, &old, out);
                } else {
                    self.set_step(c, &old, Step::Uncordoning);
                    self.issue_upgrade(c, &old, CommandKind::Uncordon { node: old.clone() }, out);
                }
            }
            Step::Uncordoning => self.finish_replacement(now, c, &old, out),
        }
    }

    /// In-place VM replacements whose new VM found no room: try again.
    pub(super) fn retry_recreates(&mut self, now: Time, out: &mut Vec<Command>) {
        let waiting = std::mem::take(&mut self.retry_deleted);
        for (c, old) in waiting {
            let rep = self.replacement(c, &old);
            if rep.is_none() {
                continue;
            }
            self.upgrade_done(now, c, old, None, out);
        }
    }

    fn finish_replacement(&mut self, now: Time, c: usize, old: &str, out: &mut Vec<Command>) {
        let Some(r) = &mut self.clusters[c].rollout else {
            return;
        };
        let Some(rep) = r.active.remove(old) else {
            return;
        };
        r.done += 1;
        let stage = r.stage;
        let new = rep.new.clone().unwrap_or_else(|| old.to_owned());
        let method = match (self.vms.is_some(), rep.surge) {
            (_, true) => ReplaceMethod::Surge,
            (true, false) => ReplaceMethod::Recreate,
            (false, false) => ReplaceMethod::Reimage,
        };
        let cluster = self.clusters[c].topo.name.clone();
        let pool_name = self.clusters[c]
            .stage(stage)
            .map_or(CONTROL_PLANE.to_owned(), |p| p.name.clone());
        if self.vms.is_some()
            && let Some(p) = self.clusters[c].stage_mut(stage)
        {
            p.nodes.retain(|n| n != old);
            p.nodes.push(new.clone());
        }
        self.events.push(ControlEvent::NodeReplaced {
            cluster,
            pool: pool_name,
            old: old.to_owned(),
            new,
            method,
        });
        self.rollout_condition(now, c, None);
        self.advance(now, c, out);
    }

    fn finish_rollout(&mut self, now: Time, c: usize, out: &mut Vec<Command>) {
        let Some(r) = self.clusters[c].rollout.take() else {
            return;
        };
        let cluster = self.clusters[c].topo.name.clone();
        self.clear_condition(&format!("cluster/{cluster}"), now);
        self.events.push(ControlEvent::UpgradeFinished {
            cluster,
            kind: r.kind,
        });
        if let Some(next) = self.clusters[c].queued.pop_front() {
            self.start_rollout(now, c, next, out);
        }
    }
}

/// One node of a pool being scaled, and where it is.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct ScaleOp {
    cluster: usize,
    stage: usize,
    node: String,
    step: ScaleStep,
}

/// Where one node of a pool being scaled is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum ScaleStep {
    /// A new VM is being cloned and booted.
    Creating,
    /// A spare server is being installed.
    Provisioning,
    /// A node being removed is drained.
    Draining,
    /// Its VM is deleted, or its server returned as a spare.
    Removing,
}

impl Control {
    /// Scales pool `pool` of `cluster` to `replicas` nodes: new VMs (or spare servers) join;
    /// the last nodes by name that no rollout is replacing are drained and removed.
    pub(super) fn scale_pool(
        &mut self,
        now: Time,
        cluster: &str,
        pool: &str,
        replicas: u32,
        out: &mut Vec<Command>,
    ) {
        let Some(&c) = self.cluster_index.get(cluster) else {
            return;
        };
        let Some(i) = self.clusters[c]
            .topo
            .pools
            .iter()
            .position(|p| p.name == pool)
        else {
            return;
        };
        self.clusters[c].scale_target.insert(i + 1, replicas);
        self.rescale(now, c, out);
    }

    /// Moves every pool of cluster `c` with a scale target towards it.
    pub(super) fn rescale(&mut self, now: Time, c: usize, out: &mut Vec<Command>) {
        let targets: Vec<(usize, u32)> = self.clusters[c]
            .scale_target
            .iter()
            .map(|(s, r)| (*s, *r))
            .collect();
        for (stage, replicas) in targets {
            let current = self.clusters[c].stage(stage).map_or(0, |p| p.nodes.len()) as u32;
            if replicas > current {
                for _ in current..replicas {
                    if !self.scale_up(now, c, stage, out) {
                        break;
                    }
                }
            } else if replicas < current {
                self.scale_down(c, stage, current - replicas, out);
            }
            let done = self.clusters[c].stage(stage).map_or(0, |p| p.nodes.len()) as u32;
            if done == replicas {
                self.clusters[c].scale_target.remove(&stage);
                let key = self.pool_name(c, stage);
                self.clear_condition(&format!("pool/{key}"), now);
            }
        }
    }

    /// One more node for pool `stage`; false (with a condition) when none can be had now.
    fn scale_up(&mut self, now: Time, c: usize, stage: usize, out: &mut Vec<Command>) -> bool {
        let key = self.pool_name(c, stage);
        let why = if self.vms.is_some() {
            let mut names = self.clusters[c]
                .stage(stage)
                .map(|p| p.nodes.clone())
                .unwrap_or_default();
            names.sort();
            let template = names.iter().find_map(|n| self.vm_spec(n)).or_else(|| {
                self.clusters[c]
                    .stage(stage)
                    .and_then(|p| p.create.as_ref())
                    .and_then(|(_, t)| t.clone())
            });
            let Some(template) = template else {
                let object = format!("pool/{key}");
                self.set_condition(
                    object,
                    Reason::WaitingForCapacity,
                    "the pool has no node to take a VM size from".into(),
                    now,
                );
                return false;
            };
            match self.place_node(c, stage, template) {
                Ok((new, host)) => {
                    if let Some(p) = self.clusters[c].stage_mut(stage) {
                        p.nodes.push(new.clone());
                    }
                    self.clusters[c].scaling += 1;
                    self.issue(
                        CommandKind::CreateVm {
                            vm: new.clone(),
                            host,
                            pool: key,
                        },
                        Pending::Scale(ScaleOp {
                            cluster: c,
                            stage,
                            node: new,
                            step: ScaleStep::Creating,
                        }),
                        out,
                    );
                    return true;
                }
                Err(e) => e.to_string(),
            }
        } else {
            if let Some(spare) = self.take_spare(c, stage, None) {
                if let Some(p) = self.clusters[c].stage_mut(stage) {
                    p.nodes.push(spare.clone());
                }
                self.clusters[c].scaling += 1;
                self.issue(
                    CommandKind::ProvisionServer {
                        server: spare.clone(),
                        pool: key,
                    },
                    Pending::Scale(ScaleOp {
                        cluster: c,
                        stage,
                        node: spare,
                        step: ScaleStep::Provisioning,
                    }),
                    out,
                );
                return true;
            }
            "no spare server of the pool's class is up; another one takes the hardware lead time"
                .into()
        };
        self.set_condition(
            format!("pool/{key}"),
            Reason::WaitingForCapacity,
            format!("scaling up: {why}"),
            now,
        );
        // A VM pool may free room any time: look again every minute. A bare-metal pool gets
        // a spare only when a server is given back, which calls `rescale`.
        if self.vms.is_some() && self.clusters[c].retry_at.is_none() {
            let retry = now + RETRY_MS;
            self.clusters[c].retry_at = Some(retry);
            self.timers.insert((retry, Timer::Rollout(c)));
        }
        false
    }

    /// Drains and removes `n` nodes of pool `stage`, newest (highest index) first, skipping
    /// nodes a rollout is replacing.
    fn scale_down(&mut self, c: usize, stage: usize, n: u32, out: &mut Vec<Command>) {
        let busy: Vec<String> = self.clusters[c]
            .rollout
            .as_ref()
            .map(|r| r.active.keys().cloned().collect())
            .unwrap_or_default();
        let mut names = self.clusters[c]
            .stage(stage)
            .map(|p| p.nodes.clone())
            .unwrap_or_default();
        // The newest go first: by index (`-12` after `-9`), then by name (bare-metal
        // servers, which have none).
        let prefix = self.clusters[c].name_prefix(stage);
        names.sort_by(|a, b| {
            (upgrade::node_index(&prefix, a), a).cmp(&(upgrade::node_index(&prefix, b), b))
        });
        let victims: Vec<String> = names
            .into_iter()
            .rev()
            .filter(|v| !busy.contains(v))
            .take(n as usize)
            .collect();
        for node in victims {
            if let Some(p) = self.clusters[c].stage_mut(stage) {
                p.nodes.retain(|x| x != &node);
            }
            if let Some(r) = &mut self.clusters[c].rollout {
                r.waiting.retain(|x| x != &node);
            }
            self.issue(
                CommandKind::Drain { node: node.clone() },
                Pending::Scale(ScaleOp {
                    cluster: c,
                    stage,
                    node,
                    step: ScaleStep::Draining,
                }),
                out,
            );
        }
    }

    pub(super) fn scale_done(
        &mut self,
        now: Time,
        op: ScaleOp,
        failed: Option<crate::command::CommandError>,
        out: &mut Vec<Command>,
    ) {
        let ScaleOp {
            cluster: c,
            stage,
            node,
            step,
        } = op;
        if matches!(step, ScaleStep::Creating | ScaleStep::Provisioning) {
            self.clusters[c].scaling = self.clusters[c].scaling.saturating_sub(1);
            self.build_next(now, c, out);
        }
        match step {
            ScaleStep::Creating => {
                if failed.is_none() {
                    self.set_phase(&node, VmPhase::Running);
                    self.clear_condition(&format!("vm/{node}"), now);
                }
                // Failed: its host was lost; HA restarts it like any VM of that host.
            }
            ScaleStep::Provisioning => {}
            ScaleStep::Draining => {
                let kind = if let Some(v) = &mut self.vms {
                    let mut host = None;
                    if let Some(id) = v.ids.remove(&node) {
                        host = v
                            .pool
                            .host_of(id)
                            .map(|h| v.pool.pool().host(h).name.clone());
                        let _ = v.pool.remove(id);
                    }
                    v.stranded.remove(&node);
                    v.phase.remove(&node);
                    self.drs_dirty = true;
                    self.clear_condition(&format!("vm/{node}"), now);
                    CommandKind::DeleteVm {
                        vm: node.clone(),
                        host,
                    }
                } else {
                    CommandKind::RemoveNode { node: node.clone() }
                };
                self.issue(
                    kind,
                    Pending::Scale(ScaleOp {
                        cluster: c,
                        stage,
                        node,
                        step: ScaleStep::Removing,
                    }),
                    out,
                );
            }
            ScaleStep::Removing => {
                if self.vms.is_none() {
                    let spare = self.as_spare(c, stage, node);
                    self.give_back(now, spare, out);
                }
            }
        }
    }
}

impl Control {
    /// Why taking server `server` down now would break its guest cluster's etcd quorum
    /// (it is a control-plane member and fewer than a majority of the others are up), if
    /// it would. An etcd of one or two members loses its majority with any member down:
    /// its maintenance cannot wait for one, so it never waits.
    pub(super) fn breaks_quorum(&self, server: &str) -> Option<String> {
        let (c, 0) = self.stage_of(server)? else {
            return None;
        };
        let topo = &self.clusters[c].topo;
        let members = &topo.control_plane.nodes;
        let up = members
            .iter()
            .filter(|m| *m != server)
            .filter(|m| {
                self.host_index.get(m.as_str()).is_some_and(|&i| {
                    self.hosts[i].health == Health::Up
                        && !matches!(self.hosts[i].maint, Maint::Maintaining)
                })
            })
            .filter(|m| !self.in_rollout(m))
            .count();
        let majority = members.len() / 2 + 1;
        if members.len() - 1 < majority {
            return None;
        }
        (up < majority).then(|| {
            format!(
                "cluster {} would keep {up} of {} etcd members up, fewer than a majority ({majority})",
                topo.name,
                members.len()
            )
        })
    }

    /// The cluster and stage (0: control plane, ≥ 1: worker pools) `node` belongs to.
    pub(super) fn stage_of(&self, node: &str) -> Option<(usize, usize)> {
        // VM names start with their cluster's; servers are named by the inventory.
        let vms = self.vms.is_some();
        self.clusters.iter().enumerate().find_map(|(c, rec)| {
            if vms && !node.starts_with(rec.topo.name.as_str()) {
                return None;
            }
            std::iter::once(&rec.topo.control_plane)
                .chain(&rec.topo.pools)
                .position(|p| p.nodes.iter().any(|n| n == node))
                .map(|i| (c, i))
        })
    }

    /// The cluster and stage (≥ 1: worker pools only) `node` belongs to.
    fn worker_pool_of(&self, node: &str) -> Option<(usize, usize)> {
        self.stage_of(node).filter(|&(_, stage)| stage >= 1)
    }

    /// The timeout of the machine health check that watches `node`, if its cluster has one
    /// and it is a worker.
    pub(super) fn remediate_after(&self, node: &str) -> Option<u64> {
        let (c, _) = self.worker_pool_of(node)?;
        self.clusters[c].topo.remediate_after
    }

    /// `node` stopped (VM down, or server declared failed): check it again after its
    /// cluster's machine-health timeout.
    pub(super) fn watch_health(&mut self, node: &str) {
        let Some(after) = self.remediate_after(node) else {
            return;
        };
        let key = self.health_seq;
        self.health_seq += 1;
        let at = self.clock + after;
        self.health.insert(key, (node.to_owned(), at));
        self.timers.insert((at, Timer::Health(key)));
    }

    /// Machine health check: replaces `node` if it is still down and nothing else owns it.
    pub(super) fn check_health(&mut self, now: Time, node: &str, out: &mut Vec<Command>) {
        let Some((c, stage)) = self.worker_pool_of(node) else {
            return;
        };
        // A rollout replacing the node owns it.
        if self.replacement(c, node).is_some() {
            return;
        }
        let key = self.pool_name(c, stage);
        if self.vms.is_some() {
            // HA restarted it (or is restarting it) in time: HA owns the failure. A VM
            // stopped for its host's maintenance is a planned disruption.
            if self.vm_phase(node) != Some(VmPhase::Down)
                || self.vms.as_ref().is_some_and(|v| v.parked.contains(node))
            {
                return;
            }
            let Some(template) = self.vm_spec(node) else {
                return;
            };
            match self.place_node(c, stage, template) {
                Ok((new, host)) => {
                    self.forget_vm(now, node);
                    if let Some(p) = self.clusters[c].stage_mut(stage) {
                        p.nodes.retain(|n| n != node);
                        p.nodes.push(new.clone());
                    }
                    if let Some(r) = &mut self.clusters[c].rollout {
                        r.waiting.retain(|n| n != node);
                    }
                    self.issue(
                        CommandKind::DeleteVm {
                            vm: node.to_owned(),
                            host: None,
                        },
                        Pending::Kube,
                        out,
                    );
                    let after = self.clusters[c].topo.remediate_after.unwrap_or_default();
                    self.set_condition(
                        format!("vm/{new}"),
                        Reason::Replacing,
                        format!(
                            "machine health check: node {node} was not running {} after it stopped (its restart failed or found no room); this node replaces it on {host}",
                            Span(after)
                        ),
                        now,
                    );
                    self.issue(
                        CommandKind::CreateVm {
                            vm: new.clone(),
                            host,
                            pool: key,
                        },
                        Pending::Remediate {
                            cluster: c,
                            stage,
                            old: node.to_owned(),
                            new,
                        },
                        out,
                    );
                }
                Err(e) => {
                    self.set_condition(
                        format!("vm/{node}"),
                        Reason::WaitingForCapacity,
                        format!("machine health check: node down too long, and no host can take a replacement: {e}"),
                        now,
                    );
                }
            }
            return;
        }
        // Bare metal: still failed, and a spare server to install in its place.
        let Some(&i) = self.host_index.get(node) else {
            return;
        };
        if self.hosts[i].health != Health::Failed {
            return;
        }
        let spare = self.take_spare(c, stage, Some(node));
        let Some(spare) = spare else {
            return;
        };
        if let Some(p) = self.clusters[c].stage_mut(stage) {
            p.nodes.retain(|n| n != node);
            p.nodes.push(spare.clone());
        }
        if let Some(r) = &mut self.clusters[c].rollout {
            r.waiting.retain(|n| n != node);
        }
        let repaired = self.as_spare(c, stage, node.to_owned());
        self.clusters[c].remediated.push(repaired);
        self.issue(
            CommandKind::RemoveNode {
                node: node.to_owned(),
            },
            Pending::Kube,
            out,
        );
        self.issue(
            CommandKind::ProvisionServer {
                server: spare.clone(),
                pool: key,
            },
            Pending::Remediate {
                cluster: c,
                stage,
                old: node.to_owned(),
                new: spare,
            },
            out,
        );
    }

    /// Drops a VM from the desired placement (it is being deleted).
    fn forget_vm(&mut self, now: Time, vm: &str) {
        if let Some(v) = &mut self.vms {
            if let Some(id) = v.ids.remove(vm) {
                let _ = v.pool.remove(id);
            }
            v.stranded.remove(vm);
            v.phase.remove(vm);
            self.drs_dirty = true;
        }
        self.clear_condition(&format!("vm/{vm}"), now);
    }

    pub(super) fn remediation_done(
        &mut self,
        now: Time,
        c: usize,
        stage: usize,
        old: String,
        new: String,
        failed: Option<crate::command::CommandError>,
    ) {
        if failed.is_some() {
            // The new VM's host was lost: HA restarts it like any other.
            return;
        }
        if self.vms.is_some() {
            self.set_phase(&new, VmPhase::Running);
            self.clear_condition(&format!("vm/{new}"), now);
        }
        let cluster = self.clusters[c].topo.name.clone();
        let pool = self.clusters[c]
            .stage(stage)
            .map_or(CONTROL_PLANE.to_owned(), |p| p.name.clone());
        self.events.push(ControlEvent::NodeReplaced {
            cluster,
            pool,
            old,
            new,
            method: ReplaceMethod::Remediate,
        });
    }

    /// A failed bare-metal server answers again: if remediation replaced it, it becomes a
    /// spare (true) instead of rejoining as a node.
    pub(super) fn server_repaired(
        &mut self,
        now: Time,
        server: &str,
        out: &mut Vec<Command>,
    ) -> bool {
        let Some((c, at)) = self.clusters.iter().enumerate().find_map(|(c, r)| {
            let at = r.remediated.iter().position(|s| s.server == server)?;
            Some((c, at))
        }) else {
            return false;
        };
        let spare = self.clusters[c].remediated.remove(at);
        self.give_back(now, spare, out);
        true
    }
}

impl Control {
    /// Creates cluster `cluster` (declared with empty pools): the control plane first.
    pub(super) fn create_cluster(&mut self, now: Time, cluster: &str, out: &mut Vec<Command>) {
        let Some(&c) = self.cluster_index.get(cluster) else {
            return;
        };
        if self.clusters[c].creating.is_some() {
            return;
        }
        self.clusters[c].creating = Some(0);
        self.build_stage(now, c, 0, out);
    }

    fn build_stage(&mut self, now: Time, c: usize, stage: usize, out: &mut Vec<Command>) {
        let want = self.clusters[c]
            .stage(stage)
            .and_then(|p| p.create.as_ref())
            .map_or(0, |(n, _)| *n);
        self.clusters[c].scale_target.insert(stage, want);
        self.rescale(now, c, out);
        self.build_next(now, c, out);
    }

    /// A node of a cluster being created is up: once its stage is complete, the next one
    /// starts; after the last, the cluster is ready.
    fn build_next(&mut self, now: Time, c: usize, out: &mut Vec<Command>) {
        let Some(stage) = self.clusters[c].creating else {
            return;
        };
        let rec = &self.clusters[c];
        if rec.scaling > 0 || rec.scale_target.contains_key(&stage) {
            return;
        }
        if stage >= rec.topo.pools.len() {
            self.clusters[c].creating = None;
            let cluster = self.clusters[c].topo.name.clone();
            self.events.push(ControlEvent::ClusterReady { cluster });
            return;
        }
        self.clusters[c].creating = Some(stage + 1);
        self.build_stage(now, c, stage + 1, out);
    }
}
