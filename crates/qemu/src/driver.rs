//! [`QemuDriver`]: the control-plane [`Driver`] over host agents and the wall clock.
//!
//! Time is Unix milliseconds, so what a durable control plane stored in one run is on the
//! same clock in the next. Each host has a [`link`](crate::link) task; the driver turns the
//! agents' frames into observations and the control plane's commands into agent commands:
//!
//! | control plane | agent |
//! |---|---|
//! | `createVm` | `createVm` (linked clone + NoCloud seed), then `startVm`; done when the guest agent reports Ready |
//! | `startVm` | the same; a VirtualMachineSet's VM is created first (a no-op where the pool has it) |
//! | `stopVm`, `deleteVm` | the same |
//! | `fenceHost` | `fence` (the agent kills every VM); a cut-off host is unreachable and the known-dead rule applies |
//! | `reportInventory` | `resync`; done once the inventory arrived |
//! | `cordon`, `uncordon`, `drain` | done at once: no Kubernetes API runs here (docs/run.md) |
//! | `maintainHost` | done at once: a namespaced host cannot be rebooted |
//! | `migrateVm` | `receiveVm` on the target (a paused QEMU listening on the target's address), `sendVm` on the source to it (QMP `migrate`; done once the source is gone), then `startVm` on the target: done when the guest agent reports Ready there |
//! | bare-metal commands | refused: bare-metal servers are not driven by this driver |
//!
//! A command for a host whose link is down fails `unreachable` without being sent; the
//! commands in flight on a link that is lost fail `outcomeUnknown`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plinth_control::store::Store;
use plinth_control::{
    BootId, Command, CommandError, CommandId, CommandKind, Driver, Observation, Ready, Time,
};
use plinth_proto::{
    self as proto, Action, FromAgent, MigrationStats, ToAgent, Token, VmName, VmState,
};
use plinth_tls::ClientConfig;
use tokio::sync::mpsc;

use crate::bootstrap::Pools;
use crate::error::QemuError;
use crate::link::{self, LinkConfig, LinkEvent};

/// Heartbeat intervals of silence after which the driver reports a host's heartbeat missed.
pub const MISSED_AFTER_HEARTBEATS: u64 = 2;

/// The wall clock as the control plane's [`Time`]: Unix milliseconds.
pub fn wall_clock() -> Time {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Time(ms)
}

/// What the driver keeps for users: every step's conditions, events and commands, and every
/// observation (`plinth run` prints them as progress; a service keeps them as its log).
pub trait Journal {
    /// A step of the control plane at `now`, before its commands are sent.
    fn step(&mut self, now: Time, ready: &Ready);
    /// An observation handed to the control plane.
    fn observed(&mut self, now: Time, observation: &Observation);
    /// The live migration of control command `id` switched over, as its source measured it
    /// (its `CommandCompleted` follows once the VM is Ready on its target).
    fn migrated(&mut self, now: Time, id: CommandId, stats: &MigrationStats);
}

/// A journal that keeps nothing.
#[derive(Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn step(&mut self, _: Time, _: &Ready) {}
    fn observed(&mut self, _: Time, _: &Observation) {}
    fn migrated(&mut self, _: Time, _: CommandId, _: &MigrationStats) {}
}

/// How the driver reaches the agents.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Each host's agent address, by host name.
    pub agents: BTreeMap<String, SocketAddr>,
    /// The shared token.
    pub token: Token,
    /// Mutual TLS to the agents (`plinth_tls::LinkFiles::control_plane_config`); None:
    /// plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
    /// Heartbeat interval (the Environment's `ha.heartbeatInterval`).
    pub heartbeat: Duration,
    /// Node VM templates.
    pub pools: Pools,
}

/// An agent action of a control command still to send, and the host it is for.
#[derive(Debug)]
enum Step {
    /// `action` on `host`.
    Act { host: String, action: Action },
    /// `sendVm` of `vm` from `host` to the receiver the step before answered with.
    SendToReceiver { host: String, vm: VmName },
}

/// One agent command in flight, and what it is part of.
#[derive(Debug)]
struct InFlight {
    /// The host of the agent command in flight.
    host: String,
    control: CommandId,
    /// Agent actions still to send after this one, in order.
    then: VecDeque<Step>,
    /// Whether an earlier action of the same control command already took effect.
    changed: bool,
    /// Whether the action in flight is a `sendVm`: its refusal leaves everything as before
    /// the command (the VM runs on its source; the receiver ends by itself at the deadline).
    sending: bool,
    deadline: u64,
}

/// A host's link as the driver sees it.
#[derive(Debug)]
struct HostLink {
    outbox: mpsc::UnboundedSender<ToAgent>,
    connected: bool,
    /// Last frame heard, and whether its silence was reported.
    last_heard: Time,
    missed: bool,
    /// When the driver last delivered a message of this host (a heartbeat or an
    /// inventory): the time the control plane took it in.
    taken_in: Time,
    boot: Option<BootId>,
    /// `reportInventory` commands waiting for this host's next inventory.
    inventory_waiters: Vec<CommandId>,
}

impl HostLink {
    /// Records a frame heard from the agent in its life `boot`. True when that is news to
    /// report as a heartbeat: the first frame after a reported silence, or a new life. A run
    /// of heartbeats is coalesced so only news is delivered.
    fn heard(&mut self, at: Time, boot: BootId) -> bool {
        self.last_heard = self.last_heard.max(at);
        let news = self.missed || self.boot != Some(boot);
        self.missed = false;
        self.boot = Some(boot);
        news
    }

    /// The time its reported silence is dated from: its last frame, or the last message of
    /// it the control plane took in, when that is later (a frame waits before it is taken
    /// in). The control plane counts a message it took in after this time as the host
    /// answering a fence, so a silence must not be dated before a message it already has.
    fn silent_since(&self) -> Time {
        self.last_heard.max(self.taken_in)
    }
}

/// The control-plane driver over host agents.
pub struct QemuDriver {
    runtime: tokio::runtime::Runtime,
    events: mpsc::UnboundedReceiver<(String, Time, LinkEvent)>,
    hosts: BTreeMap<String, HostLink>,
    in_flight: BTreeMap<proto::CommandId, InFlight>,
    ready: VecDeque<(Time, Observation)>,
    next_id: u64,
    config: DriverConfig,
    secret: Vec<u8>,
    store: Box<dyn Store + Send>,
    journal: Box<dyn Journal + Send>,
    stop: Arc<AtomicBool>,
    fault: Option<QemuError>,
}

impl std::fmt::Debug for QemuDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuDriver")
            .field("hosts", &self.hosts.keys().collect::<Vec<_>>())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl QemuDriver {
    /// Replaces what each pool's VMs are made from (a changed estate: a new cluster, a new
    /// Kubernetes version). Commands sent before keep what they were sent with.
    pub fn set_pools(&mut self, pools: crate::bootstrap::Pools) {
        self.config.pools = pools;
    }

    /// What each pool's VMs, and each VirtualMachineSet's, are made from.
    pub fn pools(&self) -> &Pools {
        &self.config.pools
    }

    /// Starts one link per agent. Writes go to `store` before any command is sent; `secret`
    /// derives the clusters' bootstrap tokens.
    ///
    /// # Errors
    /// When the runtime cannot start.
    pub fn start(
        config: DriverConfig,
        secret: &[u8],
        store: Box<dyn Store + Send>,
        journal: Box<dyn Journal + Send>,
    ) -> Result<Self, QemuError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(QemuError::Runtime)?;
        if config.tls.is_none() {
            tracing::warn!(
                "speaking to the agents without TLS: the token crosses the network in clear text (`plinth certs` issues the certificates)"
            );
        }
        let (events_tx, events) = mpsc::unbounded_channel();
        let now = wall_clock();
        let mut hosts = BTreeMap::new();
        for (host, addr) in &config.agents {
            let (outbox, rx) = mpsc::unbounded_channel();
            let link = LinkConfig {
                host: host.clone(),
                addr: *addr,
                token: config.token.clone(),
                heartbeat: config.heartbeat,
                tls: config.tls.clone(),
            };
            runtime.spawn(link::run(link, rx, events_tx.clone()));
            hosts.insert(
                host.clone(),
                HostLink {
                    outbox,
                    connected: false,
                    last_heard: now,
                    missed: false,
                    taken_in: now,
                    boot: None,
                    inventory_waiters: Vec::new(),
                },
            );
        }
        Ok(Self {
            runtime,
            events,
            hosts,
            in_flight: BTreeMap::new(),
            ready: VecDeque::new(),
            // Agent command ids are unique across runs: they start at the start time.
            next_id: now.millis().saturating_mul(1024),
            config,
            secret: secret.to_vec(),
            store,
            journal,
            stop: Arc::new(AtomicBool::new(false)),
            fault: None,
        })
    }

    /// Setting this flag ends the run at the next observation (Ctrl-C).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Sets the stop flag on Ctrl-C (SIGINT): the run ends at the next observation and
    /// the VMs keep running.
    pub fn stop_on_ctrl_c(&self) {
        let stop = Arc::clone(&self.stop);
        self.runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        });
    }

    /// The store the control plane's records are written to.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Why the run ended early, if it did (a store that refused a write).
    pub fn take_fault(&mut self) -> Option<QemuError> {
        self.fault.take()
    }

    /// Whether the driver has an agent address for `host`.
    pub fn knows(&self, host: &str) -> bool {
        self.hosts.contains_key(host)
    }

    /// Whether every host was heard in its current connection.
    pub fn all_heard(&self) -> bool {
        self.hosts.values().all(|h| h.connected && h.boot.is_some())
    }

    /// Whether `host`'s link is connected now.
    pub fn connected(&self, host: &str) -> bool {
        self.hosts.get(host).is_some_and(|h| h.connected)
    }

    /// Forgets every command in flight, as a control plane that crashed would (its agents'
    /// late answers are ignored); the restored control plane times them out or locates.
    pub fn forget_in_flight(&mut self) {
        self.in_flight.clear();
        self.ready.clear();
        for h in self.hosts.values_mut() {
            h.inventory_waiters.clear();
        }
    }

    /// The next observation before `until`, or `None` when `until` passes first (or the run
    /// was stopped). A `Timer` is returned when `wakeup` passes.
    pub fn poll(&mut self, wakeup: Option<Time>, until: Time) -> Option<(Time, Observation)> {
        loop {
            if let Some(o) = self.ready.pop_front() {
                self.journal.observed(o.0, &o.1);
                return Some(o);
            }
            if self.fault.is_some() || self.stop.load(Ordering::SeqCst) {
                return None;
            }
            // What the links received while the control plane was busy elsewhere is read
            // before any silence is judged: a slow step is not a silent host.
            while let Ok((host, at, e)) = self.events.try_recv() {
                self.absorb(&host, at, e);
            }
            if !self.ready.is_empty() {
                continue;
            }
            let now = wall_clock();
            if let Some(missed) = self.overdue(now) {
                self.ready.push_back((now, missed));
                continue;
            }
            if wakeup.is_some_and(|w| w <= now) {
                self.ready.push_back((now, Observation::Timer));
                continue;
            }
            if now >= until {
                return None;
            }
            let mut deadline = until.min(self.next_miss()).min(now.plus(250));
            if let Some(w) = wakeup {
                deadline = deadline.min(w);
            }
            let wait = Duration::from_millis(deadline.since(now).max(1));
            let event = self
                .runtime
                .block_on(async { tokio::time::timeout(wait, self.events.recv()).await });
            match event {
                Ok(Some((host, at, e))) => self.absorb(&host, at, e),
                Ok(None) => return None,
                Err(_elapsed) => {}
            }
        }
    }

    /// The first host whose silence is past due and not yet reported.
    fn overdue(&mut self, now: Time) -> Option<Observation> {
        let after = self.config_heartbeat_ms() * MISSED_AFTER_HEARTBEATS;
        let (host, link) = self
            .hosts
            .iter_mut()
            .find(|(_, h)| !h.missed && now.since(h.last_heard) > after)?;
        link.missed = true;
        Some(Observation::HeartbeatMissed {
            host: host.clone(),
            last_heard: link.silent_since(),
        })
    }

    fn next_miss(&self) -> Time {
        let after = self.config_heartbeat_ms() * MISSED_AFTER_HEARTBEATS;
        self.hosts
            .values()
            .filter(|h| !h.missed)
            .map(|h| h.last_heard.plus(after + 1))
            .min()
            .unwrap_or(Time(u64::MAX))
    }

    fn config_heartbeat_ms(&self) -> u64 {
        u64::try_from(self.config.heartbeat.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Turns one link event into observations.
    /// Takes in `event`, received from `host`'s link at `at`.
    fn absorb(&mut self, host: &str, at: Time, event: LinkEvent) {
        let now = wall_clock();
        let Some(link) = self.hosts.get_mut(host) else {
            return;
        };
        match event {
            LinkEvent::Connected => link.connected = true,
            LinkEvent::Lost { reason } => {
                link.connected = false;
                let lost: Vec<proto::CommandId> = self
                    .in_flight
                    .iter()
                    .filter(|(_, f)| f.host == host)
                    .map(|(id, _)| *id)
                    .collect();
                for id in lost {
                    if let Some(f) = self.in_flight.remove(&id) {
                        self.ready.push_back((
                            now,
                            Observation::CommandFailed {
                                id: f.control,
                                error: CommandError::OutcomeUnknown {
                                    reason: format!("the link to {host} was lost: {reason}"),
                                },
                            },
                        ));
                    }
                }
                for id in std::mem::take(&mut link.inventory_waiters) {
                    self.ready.push_back((
                        now,
                        Observation::CommandFailed {
                            id,
                            error: CommandError::Unreachable,
                        },
                    ));
                }
            }
            LinkEvent::Message(message) => self.message(host, now, at, message),
        }
    }

    /// Takes in `message`, received from `host` at `heard_at`, at `now`.
    fn message(&mut self, host: &str, now: Time, heard_at: Time, message: FromAgent) {
        let Some(link) = self.hosts.get_mut(host) else {
            return;
        };
        match message {
            FromAgent::Heartbeat(beat) => {
                let boot = BootId(beat.boot_id.0);
                if link.heard(heard_at, boot) {
                    link.taken_in = now;
                    self.ready.push_back((
                        now,
                        Observation::Heartbeat {
                            host: host.to_owned(),
                            boot,
                        },
                    ));
                }
            }
            FromAgent::Inventory(inventory) => {
                let boot = BootId(inventory.boot_id.0);
                if link.heard(heard_at, boot) {
                    self.ready.push_back((
                        now,
                        Observation::Heartbeat {
                            host: host.to_owned(),
                            boot,
                        },
                    ));
                }
                link.taken_in = now;
                let vms = inventory
                    .vms
                    .iter()
                    .filter(|v| v.state == VmState::Running)
                    .map(|v| v.name.0.clone())
                    .collect();
                self.ready.push_back((
                    now,
                    Observation::Inventory {
                        host: host.to_owned(),
                        boot,
                        vms,
                    },
                ));
                for id in std::mem::take(&mut link.inventory_waiters) {
                    self.ready
                        .push_back((now, Observation::CommandCompleted { id }));
                }
            }
            FromAgent::Completion(done) => self.completion(now, done),
            // Never asked by the control plane: `plinth logs` reads consoles on its own
            // connection.
            FromAgent::Refused { .. }
            | FromAgent::Console(_)
            | FromAgent::NoConsole { .. }
            | FromAgent::Reach { .. }
            | FromAgent::Bench { .. } => {}
        }
    }

    fn completion(&mut self, now: Time, done: proto::Completion) {
        let Some(mut f) = self.in_flight.remove(&done.id) else {
            // An answer to a command this control plane forgot (a restart) or a duplicate.
            return;
        };
        let failed = match done.outcome {
            proto::Outcome::Failed { error } => error,
            succeeded => {
                if let proto::Outcome::Migrated(stats) = &succeeded {
                    self.journal.migrated(now, f.control, stats);
                }
                let Some(step) = f.then.pop_front() else {
                    self.ready
                        .push_back((now, Observation::CommandCompleted { id: f.control }));
                    return;
                };
                f.changed = true;
                let (host, action) = match (step, succeeded) {
                    (Step::Act { host, action }, _) => (host, action),
                    (Step::SendToReceiver { host, vm }, proto::Outcome::Listening { addr }) => {
                        (host, Action::SendVm { vm, to: addr })
                    }
                    (Step::SendToReceiver { .. }, other) => {
                        let reason =
                            format!("the receiver answered {other:?}, not where it listens");
                        return self.answer(
                            now,
                            f.control,
                            Some(CommandError::OutcomeUnknown { reason }),
                        );
                    }
                };
                return self.send_action(now, f, host, action);
            }
        };
        let error = match failed {
            proto::CommandError::Refused { reason } if f.changed && !f.sending => {
                CommandError::OutcomeUnknown {
                    reason: format!("a later step was refused: {reason}"),
                }
            }
            proto::CommandError::Refused { reason } => CommandError::Refused { reason },
            proto::CommandError::TimedOut => CommandError::TimedOut,
            proto::CommandError::OutcomeUnknown { reason } => {
                CommandError::OutcomeUnknown { reason }
            }
        };
        self.ready.push_back((
            now,
            Observation::CommandFailed {
                id: f.control,
                error,
            },
        ));
    }

    fn answer(&mut self, now: Time, id: CommandId, error: Option<CommandError>) {
        let o = match error {
            None => Observation::CommandCompleted { id },
            Some(error) => Observation::CommandFailed { id, error },
        };
        self.ready.push_back((now, o));
    }

    /// Sends one agent action of a control command to `host`, or answers it `unreachable`.
    fn send_action(&mut self, now: Time, mut f: InFlight, host: String, action: Action) {
        f.host = host;
        f.sending = matches!(action, Action::SendVm { .. });
        let Some(link) = self.hosts.get(&f.host).filter(|l| l.connected) else {
            let error = if f.changed {
                CommandError::OutcomeUnknown {
                    reason: format!("{} became unreachable mid-command", f.host),
                }
            } else {
                CommandError::Unreachable
            };
            self.answer(now, f.control, Some(error));
            return;
        };
        self.next_id += 1;
        let id = proto::CommandId(self.next_id);
        let message = ToAgent::Command(proto::Command {
            id,
            deadline_unix_ms: f.deadline,
            action,
        });
        if link.outbox.send(message).is_err() {
            self.answer(now, f.control, Some(CommandError::Unreachable));
            return;
        }
        self.in_flight.insert(id, f);
    }

    /// Carries out one control-plane command.
    fn submit(&mut self, now: Time, command: Command) {
        // The agent gives up when the control plane does (the one definition of a deadline).
        let deadline = command.deadline.millis();
        // The first action of a plan is known; the steps after it may wait on its answer.
        let start = |host: &str, first: Action, then: Vec<Step>| {
            (
                InFlight {
                    host: host.to_owned(),
                    control: command.id,
                    then: then.into(),
                    changed: false,
                    sending: false,
                    deadline,
                },
                first,
            )
        };
        let on = |host: &str, first: Action, then: Vec<Action>| {
            let then = then
                .into_iter()
                .map(|action| Step::Act {
                    host: host.to_owned(),
                    action,
                })
                .collect();
            start(host, first, then)
        };
        let vm = |name: &str| VmName(name.to_owned());
        let plan = match &command.kind {
            CommandKind::CreateVm {
                vm: name,
                host,
                pool,
            } => match self.config.pools.spec(name, pool, &self.secret) {
                Some(spec) => on(
                    host,
                    Action::CreateVm(spec),
                    vec![Action::StartVm { vm: vm(name) }],
                ),
                None => {
                    return self.answer(
                        now,
                        command.id,
                        Some(CommandError::Refused {
                            reason: format!("no pool {pool} in the estate"),
                        }),
                    );
                }
            },
            // A VirtualMachineSet's VM is not made by a command of its own: the control plane
            // starts it where the plan placed it, and it is made there first when no host of
            // the pool has it yet (a create of a VM the pool has is a no-op).
            CommandKind::StartVm { vm: name, host } => {
                let boot = Action::StartVm { vm: vm(name) };
                match self.config.pools.set_member(name) {
                    Some(spec) => on(host, Action::CreateVm(spec), vec![boot]),
                    None => on(host, boot, Vec::new()),
                }
            }
            CommandKind::StopVm { vm: name, host } => {
                on(host, Action::StopVm { vm: vm(name) }, Vec::new())
            }
            CommandKind::DeleteVm {
                vm: name,
                host: Some(host),
            } => on(host, Action::DeleteVm { vm: vm(name) }, Vec::new()),
            // Nowhere known to run: nothing to delete.
            CommandKind::DeleteVm { host: None, .. }
            | CommandKind::Cordon { .. }
            | CommandKind::Uncordon { .. }
            | CommandKind::LabelNode { .. }
            | CommandKind::OutOfService { .. }
            | CommandKind::InService { .. }
            | CommandKind::Drain { .. }
            | CommandKind::MaintainHost { .. } => return self.answer(now, command.id, None),
            CommandKind::FenceHost { host } => on(host, Action::Fence, Vec::new()),
            CommandKind::ReportInventory { host } => {
                return self.resync(now, command.id, host);
            }
            // The target listens on its own address, the one the control plane reaches it on.
            CommandKind::MigrateVm { vm: name, from, to } => match self.config.agents.get(to) {
                Some(target) => start(
                    to,
                    Action::ReceiveVm {
                        vm: vm(name),
                        listen: target.ip(),
                    },
                    vec![
                        Step::SendToReceiver {
                            host: from.clone(),
                            vm: vm(name),
                        },
                        Step::Act {
                            host: to.clone(),
                            action: Action::StartVm { vm: vm(name) },
                        },
                    ],
                ),
                None => return self.answer(now, command.id, Some(CommandError::Unreachable)),
            },
            CommandKind::ProvisionServer { .. }
            | CommandKind::RemoveNode { .. }
            | CommandKind::ReimageServer { .. } => {
                return self.refuse(
                    now,
                    command.id,
                    "bare-metal servers are not driven by the QEMU driver",
                );
            }
        };
        let (f, first) = plan;
        let host = f.host.clone();
        self.send_action(now, f, host, first);
    }

    fn refuse(&mut self, now: Time, id: CommandId, reason: &str) {
        self.answer(
            now,
            id,
            Some(CommandError::Refused {
                reason: reason.to_owned(),
            }),
        );
    }

    fn resync(&mut self, now: Time, id: CommandId, host: &str) {
        match self.hosts.get_mut(host) {
            Some(link) if link.connected && link.outbox.send(ToAgent::Resync).is_ok() => {
                link.inventory_waiters.push(id);
            }
            _ => self.answer(now, id, Some(CommandError::Unreachable)),
        }
    }
}

impl Driver for QemuDriver {
    fn next(&mut self, wakeup: Option<Time>) -> Option<(Time, Observation)> {
        loop {
            if let Some(o) = self.poll(wakeup, wall_clock().plus(1000)) {
                return Some(o);
            }
            if self.fault.is_some() || self.stop.load(Ordering::SeqCst) {
                return None;
            }
        }
    }

    fn apply(&mut self, now: Time, ready: Ready) {
        if let Err(e) = self.store.write(&ready.writes) {
            // Nothing of the step may be sent: its cause was not kept.
            tracing::error!(error = %e, "the store refused a step; stopping");
            self.fault = Some(QemuError::Store(e));
            return;
        }
        self.journal.step(now, &ready);
        for command in ready.commands {
            self.submit(now, command);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> HostLink {
        HostLink {
            outbox: mpsc::unbounded_channel().0,
            connected: true,
            last_heard: Time(0),
            missed: false,
            taken_in: Time(0),
            boot: None,
            inventory_waiters: Vec::new(),
        }
    }

    /// A frame received at 400 ms and taken in by the control plane at 500 ms, then
    /// silence: the silence is dated from 500 ms. Dated from 400 ms, the control plane took
    /// that message for an answer to the fence of the silent host (the message arrived
    /// "after its last frame"), and a crashed host was marked recovered at once, its VMs
    /// left waiting for its repair instead of restarting elsewhere.
    #[test]
    fn a_silence_is_not_dated_before_a_message_the_control_plane_already_has() {
        let mut l = link();
        assert!(l.heard(Time(400), BootId(1)), "a new life is news");
        l.taken_in = Time(500);
        assert_eq!(l.silent_since(), Time(500));
        assert!(!l.heard(Time(900), BootId(1)), "heartbeats are coalesced");
        assert_eq!(l.silent_since(), Time(900), "a later frame dates it");
    }
}
