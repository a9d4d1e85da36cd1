//! Level-triggered resync inside [`Control`]: what hosts report they run is reconciled
//! against where the control plane wants each VM, and commands whose outcome is unknown
//! are resolved by asking, never by assuming.
//!
//! - A VM reported on a host where it should not run (a stale copy from before a
//!   partition, or one the control plane deleted) is stopped there; it is never resumed.
//! - A VM the control plane believes runs on a host that does not report it is started
//!   again there.
//! - A start, create or migration whose answer was lost (timed out, outcome unknown) puts
//!   its VM in [`VmPhase::Unknown`]: the hosts it may be on are asked for their inventory
//!   and nothing else is done with it until each has answered or is known dead.
//! - An idempotent command that failed (drain, cordon, uncordon, delete, stop, remove,
//!   inventory) is sent again with backoff; what waits for it waits, with a condition
//!   naming the blocker. So is a start or create that certainly did nothing (its agent was
//!   unreachable or refused) while its host is up; on a lost host HA takes over.

use std::collections::BTreeSet;

use plinth_placement::{HostId, Migration};

use super::{Control, Health, InFlight, Pending, VmPhase};
use crate::command::{Command, CommandError, CommandKind, Reason};
use crate::time::{Span, Time};

/// Refusals of one idempotent command after which it is no longer retried.
const MAX_REFUSALS: u32 = 8;

/// A VM whose location is being asked.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Locate {
    /// Hosts that have not answered yet (indices).
    ask: BTreeSet<usize>,
    /// The command whose outcome is unknown.
    command: InFlight,
}

/// Commands that put a VM somewhere: an unknown outcome must be resolved by asking.
pub(super) fn places_vm(kind: &CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::StartVm { .. } | CommandKind::CreateVm { .. } | CommandKind::MigrateVm { .. }
    )
}

/// Commands that may be sent again as they are until they take effect.
pub(super) fn idempotent(kind: &CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::Cordon { .. }
            | CommandKind::Uncordon { .. }
            | CommandKind::LabelNode { .. }
            | CommandKind::OutOfService { .. }
            | CommandKind::InService { .. }
            | CommandKind::Drain { .. }
            | CommandKind::DeleteVm { .. }
            | CommandKind::StopVm { .. }
            | CommandKind::RemoveNode { .. }
            | CommandKind::ReportInventory { .. }
    )
}

/// The host a command must reach, when it is a host's agent that carries it out.
fn agent_host(kind: &CommandKind) -> Option<&str> {
    match kind {
        CommandKind::StopVm { host, .. } | CommandKind::ReportInventory { host } => Some(host),
        CommandKind::DeleteVm { host, .. } => host.as_deref(),
        _ => None,
    }
}

/// The condition object a failed command's retry is reported on.
fn retry_object(kind: &CommandKind) -> Option<String> {
    match kind {
        CommandKind::Cordon { node }
        | CommandKind::Uncordon { node }
        | CommandKind::Drain { node }
        | CommandKind::LabelNode { node, .. }
        | CommandKind::OutOfService { node }
        | CommandKind::InService { node }
        | CommandKind::RemoveNode { node } => Some(format!("node/{node}")),
        CommandKind::DeleteVm { vm, .. }
        | CommandKind::StopVm { vm, .. }
        | CommandKind::StartVm { vm, .. }
        | CommandKind::CreateVm { vm, .. } => Some(format!("vm/{vm}")),
        _ => None,
    }
}

/// What waits for a failed drain, in words.
fn drain_blocks(pending: &Pending) -> &'static str {
    match pending {
        Pending::Drain { .. } => "the host's maintenance waits and the server stays up",
        Pending::Upgrade { .. } => "the rollout waits and the node is not deleted",
        Pending::Scale(_) => "the scale-down waits and the node is not removed",
        _ => "nothing proceeds on the node",
    }
}

/// What becomes of a failed command to the agent of a host that is not up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HostDown {
    /// Done: the host is known dead (fenced, or its agent has killed its VMs), so the VM
    /// the command would stop or delete is not running, and the host's return resyncs
    /// what is left of it; what waits for the command (a rollout's delete) goes on.
    Done,
    /// Dropped: nothing waits for it (an inventory the host's return sends anyway).
    Dropped,
}

impl Control {
    /// Whether failed command `f` went to the agent of a host that is not up, and what
    /// becomes of it then; `None` when it is retried as any other: a stop or delete on a
    /// host only silent or being fenced (its VM may still run), and a maintenance's stop
    /// (the evacuation waits for its answer: the host back, or the VM moved by HA).
    pub(super) fn host_down(&self, f: &InFlight) -> Option<HostDown> {
        if matches!(f.pending, Pending::Park { .. }) {
            return None;
        }
        let host = agent_host(&f.kind)?;
        let health = self.host_index.get(host).map(|&i| self.hosts[i].health);
        match (&f.kind, health) {
            (_, Some(Health::Up)) => None,
            (CommandKind::ReportInventory { .. }, _) => Some(HostDown::Dropped),
            (_, Some(Health::Failed) | None) => Some(HostDown::Done),
            _ => None,
        }
    }

    /// An idempotent command failed: send it again after a backoff, and say what waits.
    pub(super) fn retry_failed(&mut self, now: Time, f: InFlight, error: &CommandError) {
        let object = retry_object(&f.kind);
        // A failed drain holds a rollout up: its Cluster shows the pause
        // ([`Control::rollout_condition`] reads the node's condition).
        let (reason, rollout) = match (&f.kind, &f.pending) {
            (CommandKind::Drain { .. }, &Pending::Upgrade { cluster, .. }) => {
                (Reason::DrainFailed, Some(cluster))
            }
            (CommandKind::Drain { .. }, _) => (Reason::DrainFailed, None),
            _ => (Reason::Retrying, None),
        };
        if matches!(error, CommandError::Refused { .. }) && f.attempt >= MAX_REFUSALS {
            // Refused every time: waiting longer will not help. A VM whose start is given
            // up is down, with no restart coming: its cluster's machine health check, if
            // any, replaces it once its timeout passes; else an operator must act.
            let remediated = match &f.kind {
                CommandKind::StartVm { vm, .. } => {
                    self.set_phase(vm, VmPhase::Down);
                    self.remediate_after(vm).is_some()
                }
                _ => false,
            };
            if let Some(object) = object {
                let what = f.kind.object().to_owned();
                self.set_condition(
                    object,
                    reason,
                    format!(
                        "{} of {what} refused {} times, last: {error}; given up: {}",
                        serde_variant(&f.kind),
                        f.attempt + 1,
                        if remediated {
                            "the machine health check replaces the node"
                        } else {
                            "an operator must act"
                        }
                    ),
                    now,
                );
            }
            if let Some(c) = rollout {
                self.rollout_condition(now, c, None);
            }
            return;
        }
        let blocks = match &f.kind {
            CommandKind::Drain { .. } => drain_blocks(&f.pending),
            _ => "it is retried",
        };
        let what = f.kind.object().to_owned();
        let verb = serde_variant(&f.kind);
        let at = self.retry_later(now, f);
        if let Some(object) = object {
            self.set_condition(
                object,
                reason,
                format!(
                    "{verb} of {what} failed ({error}); {blocks}; next try in {}",
                    Span::until(now, at)
                ),
                now,
            );
        }
        if let Some(c) = rollout {
            self.rollout_condition(now, c, None);
        }
    }

    /// A retried command took effect: its condition goes.
    pub(super) fn clear_retry_condition(&mut self, kind: &CommandKind, now: Time) {
        let Some(object) = retry_object(kind) else {
            return;
        };
        if self
            .conditions
            .get(&object)
            .is_some_and(|c| matches!(c.reason, Reason::DrainFailed | Reason::Retrying))
        {
            self.clear_condition(&object, now);
        }
    }

    /// A command placing a VM lost its answer: ask the hosts it may be on.
    pub(super) fn locate_after(
        &mut self,
        now: Time,
        f: InFlight,
        error: &CommandError,
        out: &mut Vec<Command>,
    ) {
        let (vm, hosts): (String, Vec<&str>) = match &f.kind {
            CommandKind::StartVm { vm, host } | CommandKind::CreateVm { vm, host, .. } => {
                (vm.clone(), vec![host.as_str()])
            }
            CommandKind::MigrateVm { vm, from, to } => {
                (vm.clone(), vec![from.as_str(), to.as_str()])
            }
            _ => return,
        };
        let ask: BTreeSet<usize> = hosts
            .iter()
            .filter_map(|h| self.host_index.get(*h).copied())
            .collect();
        let names = hosts.join(" and ");
        self.set_phase(&vm, VmPhase::Unknown);
        self.set_condition(
            format!("vm/{vm}"),
            Reason::Locating,
            format!(
                "{} {error}; asking {names} what they run before anything else is done with it",
                serde_variant(&f.kind)
            ),
            now,
        );
        self.locating.insert(
            vm.clone(),
            Locate {
                ask: ask.clone(),
                command: f,
            },
        );
        for i in ask {
            if self.hosts[i].health == Health::Failed {
                // Known dead already: it runs nothing.
                self.not_on(now, &vm, i, out);
            } else {
                self.ask_inventory(i, out);
            }
        }
    }

    /// Asks host `i` what it runs, if it is up (a silent host is asked again when it
    /// answers, or its VMs are known dead when it is declared failed).
    fn ask_inventory(&mut self, i: usize, out: &mut Vec<Command>) {
        if self.hosts[i].health != Health::Up {
            return;
        }
        let asked = self
            .pending
            .values()
            .any(|f| matches!(f.pending, Pending::Inventory { host } if host == i));
        if !asked {
            let host = self.hosts[i].name.clone();
            self.issue(
                CommandKind::ReportInventory { host },
                Pending::Inventory { host: i },
                out,
            );
        }
    }

    /// Host `i` answered an inventory request: if a VM is still being located there, its
    /// report was lost on the way; ask again after a backoff.
    pub(super) fn inventory_answered(&mut self, now: Time, i: usize) {
        if self.locating.values().any(|l| l.ask.contains(&i)) {
            let again = InFlight {
                kind: CommandKind::ReportInventory {
                    host: self.hosts[i].name.clone(),
                },
                pending: Pending::Inventory { host: i },
                deadline: now,
                attempt: 0,
            };
            self.retry_later(now, again);
        }
    }

    /// Host `i` is heard from again: ask it about the VMs still being located there.
    pub(super) fn ask_again(&mut self, i: usize, out: &mut Vec<Command>) {
        if self.locating.values().any(|l| l.ask.contains(&i)) {
            self.ask_inventory(i, out);
        }
    }

    /// Host `i` answers again after its failure was declared but before its VMs were
    /// restarted elsewhere: they may still run there. Locate each on it.
    pub(super) fn relocate_on(&mut self, now: Time, i: usize, out: &mut Vec<Command>) {
        let host = self.hosts[i].name.clone();
        for vm in self.vms_on(i) {
            if self.locating.contains_key(&vm) {
                continue;
            }
            self.set_phase(&vm, VmPhase::Unknown);
            self.set_condition(
                format!("vm/{vm}"),
                Reason::Locating,
                format!("host {host} answers again; asking it whether the VM still runs"),
                now,
            );
            let command = InFlight {
                kind: CommandKind::StartVm {
                    vm: vm.clone(),
                    host: host.clone(),
                },
                pending: Pending::Start { vm: vm.clone() },
                deadline: now,
                attempt: 0,
            };
            self.locating.insert(
                vm,
                Locate {
                    ask: BTreeSet::from([i]),
                    command,
                },
            );
        }
        self.ask_again(i, out);
    }

    /// Host `i`'s VMs are known dead: it answers "not here" for every VM asked of it.
    pub(super) fn host_dead_for_locates(&mut self, now: Time, i: usize, out: &mut Vec<Command>) {
        let asked: Vec<String> = self
            .locating
            .iter()
            .filter(|(_, l)| l.ask.contains(&i))
            .map(|(vm, _)| vm.clone())
            .collect();
        for vm in asked {
            self.not_on(now, &vm, i, out);
        }
    }

    /// What host `host` runs, from its agent, in its current life.
    pub(super) fn on_inventory(
        &mut self,
        now: Time,
        host: &str,
        vms: Vec<String>,
        out: &mut Vec<Command>,
    ) {
        let Some(&i) = self.host_index.get(host) else {
            return;
        };
        // A host not up is being fenced or was declared failed: the fence or the
        // known-dead rule decides about its VMs, and its next heartbeat resyncs it.
        if self.vms.is_none() || self.hosts[i].health != Health::Up {
            return;
        }
        let reported: BTreeSet<String> = vms.into_iter().collect();
        let asked: Vec<String> = self
            .locating
            .iter()
            .filter(|(_, l)| l.ask.contains(&i))
            .map(|(vm, _)| vm.clone())
            .collect();
        for vm in asked {
            if reported.contains(&vm) {
                self.found_on(now, &vm, i, out);
            } else {
                self.not_on(now, &vm, i, out);
            }
        }
        for vm in &reported {
            if self.locating.contains_key(vm) || !self.stale_on(vm, i) {
                continue;
            }
            let stopping = self.pending.values().any(|f| {
                matches!(&f.kind, CommandKind::StopVm { vm: v, host: h } if v == vm && h == host)
            });
            if !stopping {
                self.issue(
                    CommandKind::StopVm {
                        vm: vm.clone(),
                        host: host.to_owned(),
                    },
                    Pending::Kube,
                    out,
                );
            }
        }
        for vm in self.vms_on(i) {
            if !reported.contains(&vm)
                && self.vm_phase(&vm) == Some(VmPhase::Running)
                && !self.locating.contains_key(&vm)
            {
                self.set_phase(&vm, VmPhase::Down);
                self.start_vm(vm, host.to_owned(), out);
            }
        }
    }

    /// Whether a copy of `vm` reported on host `i` must be stopped: the control plane
    /// wants it elsewhere (or not at all), and it is not migrating between them.
    fn stale_on(&self, vm: &str, i: usize) -> bool {
        let Some(v) = &self.vms else {
            return false;
        };
        let wanted = v.ids.get(vm).and_then(|id| v.pool.host_of(*id));
        if wanted == Some(HostId(i as u32)) {
            return false;
        }
        let migrating = self.pending.values().any(|f| {
            matches!(&f.pending, Pending::Migrate { vm: m, from, .. } if m == vm && from.index() == i)
        });
        !migrating
    }

    /// `vm`, being located, runs on host `i`: the desired placement follows, and the
    /// command whose answer was lost counts as done (or, for a migration found on its
    /// source, as not done).
    fn found_on(&mut self, now: Time, vm: &str, i: usize, out: &mut Vec<Command>) {
        let Some(loc) = self.locating.remove(vm) else {
            return;
        };
        self.clear_condition(&format!("vm/{vm}"), now);
        let here = HostId(i as u32);
        self.move_desired(vm, here);
        match loc.command.pending {
            Pending::Migrate { vm, from, to, .. } if here == from => {
                let error = CommandError::Refused {
                    reason: "the VM stayed on its source".into(),
                };
                self.migrate_done(now, vm, from, to, true, Some(error), out);
            }
            pending => self.dispatch(now, pending, None, out),
        }
    }

    /// Host `i` does not run `vm` (it said so, or it is known dead). Once no host is left
    /// to ask, the VM runs nowhere: it is started where the control plane wants it.
    fn not_on(&mut self, now: Time, vm: &str, i: usize, out: &mut Vec<Command>) {
        let Some(loc) = self.locating.get_mut(vm) else {
            return;
        };
        loc.ask.remove(&i);
        if !loc.ask.is_empty() {
            return;
        }
        let Some(loc) = self.locating.remove(vm) else {
            return;
        };
        self.clear_condition(&format!("vm/{vm}"), now);
        self.set_phase(vm, VmPhase::Down);
        let Some(host) = self.vm_host(vm).map(str::to_owned) else {
            // No host wants it (stranded for lack of room): it waits for capacity.
            return;
        };
        let Some(&target) = self.host_index.get(&host) else {
            return;
        };
        if self.hosts[target].health != Health::Up {
            // Its host is silent or failed: HA restarts it once that host is dead.
            return;
        }
        match loc.command.kind {
            CommandKind::CreateVm { pool, .. } => {
                let kind = CommandKind::CreateVm {
                    vm: vm.to_owned(),
                    host,
                    pool,
                };
                self.set_phase(vm, VmPhase::Starting);
                self.send(kind, loc.command.pending, loc.command.attempt + 1, out);
            }
            CommandKind::MigrateVm { .. } => {
                if let Pending::Migrate { from, .. } = loc.command.pending {
                    self.start_vm(vm.to_owned(), host, out);
                    self.continue_evacuation(now, from.index(), out);
                }
            }
            _ => {
                self.set_phase(vm, VmPhase::Starting);
                let kind = CommandKind::StartVm {
                    vm: vm.to_owned(),
                    host,
                };
                self.send(kind, loc.command.pending, loc.command.attempt + 1, out);
            }
        }
    }

    /// Whether a start or create that failed with nothing changed (its host's agent was
    /// unreachable or refused) is sent again: while its host is up and still wants the VM.
    /// On a lost host it is not: HA restarts the VM elsewhere once the host is dead.
    pub(super) fn retry_placing(&self, kind: &CommandKind, error: &CommandError) -> bool {
        error.nothing_changed()
            && matches!(
                kind,
                CommandKind::StartVm { .. } | CommandKind::CreateVm { .. }
            )
            && self.placing_can_retry(kind)
    }

    /// Whether a start or create may be sent (again): its VM is still wanted on its host and
    /// that host is up.
    pub(super) fn placing_can_retry(&self, kind: &CommandKind) -> bool {
        let (CommandKind::StartVm { host, .. } | CommandKind::CreateVm { host, .. }) = kind else {
            return true;
        };
        self.still_wanted_there(kind)
            && self
                .host_index
                .get(host.as_str())
                .is_some_and(|&i| self.hosts[i].health == Health::Up)
    }

    /// Whether a start or create is still for the host the VM is wanted on (other kinds:
    /// always).
    pub(super) fn still_wanted_there(&self, kind: &CommandKind) -> bool {
        match kind {
            CommandKind::StartVm { vm, host } | CommandKind::CreateVm { vm, host, .. } => {
                self.vm_host(vm).is_none_or(|h| h == host)
            }
            _ => true,
        }
    }

    /// Moves `vm` in the desired placement to host `to` (where it was found running).
    fn move_desired(&mut self, vm: &str, to: HostId) {
        let Some(v) = &mut self.vms else {
            return;
        };
        let Some(&id) = v.ids.get(vm) else {
            return;
        };
        if let Some(from) = v.pool.host_of(id)
            && from != to
            && v.pool.migrate(Migration { vm: id, from, to }).is_ok()
        {
            self.drs_dirty = true;
        }
    }
}

/// The command's kind as in the event log (`startVm`, `drain`, …).
fn serde_variant(kind: &CommandKind) -> &'static str {
    match kind {
        CommandKind::StartVm { .. } => "startVm",
        CommandKind::CreateVm { .. } => "createVm",
        CommandKind::DeleteVm { .. } => "deleteVm",
        CommandKind::StopVm { .. } => "stopVm",
        CommandKind::MigrateVm { .. } => "migrateVm",
        CommandKind::FenceHost { .. } => "fenceHost",
        CommandKind::MaintainHost { .. } => "maintainHost",
        CommandKind::Cordon { .. } => "cordon",
        CommandKind::Uncordon { .. } => "uncordon",
        CommandKind::LabelNode { .. } => "labelNode",
        CommandKind::OutOfService { .. } => "outOfService",
        CommandKind::InService { .. } => "inService",
        CommandKind::Drain { .. } => "drain",
        CommandKind::ProvisionServer { .. } => "provisionServer",
        CommandKind::RemoveNode { .. } => "removeNode",
        CommandKind::ReimageServer { .. } => "reimageServer",
        CommandKind::ReportInventory { .. } => "reportInventory",
    }
}
