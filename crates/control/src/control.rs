//! [`Control`]: the sans-I/O state machine. A driver calls [`Control::handle`] with each
//! observation and the time, carries out the commands returned, and calls `handle` with
//! [`Observation::Timer`] once [`Control::next_wakeup`] has passed. Only the objects an
//! observation names (and timers that fall due) are reconciled.

use std::collections::{BTreeMap, BTreeSet};

use plinth_placement::{
    HostId, HostStatus, Migration, PoolState, RestartScope, VmId, VmSpec, ZoneId,
};

use crate::command::{
    BootId, Command, CommandError, CommandId, CommandKind, Condition, ConditionChange,
    ControlEvent, Observation, Ready, Reason,
};
use crate::config::ControlConfig;
use crate::time::{Span, Time};
use crate::upgrade::ClusterTopology;
use crate::{ControlError, drs, ha, maintenance, upgrade};
use plinth_model::kinds::cluster::ClusterSpec;
use plinth_model::kinds::environment::SpareScope;

mod durable;
mod lifecycle;
mod resync;

/// First wait before a failed idempotent command is sent again, ms; it doubles per attempt.
const BACKOFF_MS: u64 = 5_000;
/// Longest wait between two attempts, ms.
const BACKOFF_CAP_MS: u64 = 300_000;

/// The wait before attempt `attempt` (1 for the first retry) of a failed command.
fn backoff(attempt: u32) -> u64 {
    BACKOFF_MS
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP_MS)
}

/// What the control plane believes a VM is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VmPhase {
    /// Running on its host.
    Running,
    /// A StartVm is in flight.
    Starting,
    /// A MigrateVm is in flight.
    Migrating,
    /// A command that places it lost its answer: where it runs is being asked of its
    /// hosts before anything else is done with it.
    Unknown,
    /// Not running; its condition says why.
    Down,
}

/// One host failure as the control plane saw it, for recovery time by phase.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    /// Host or server.
    pub host: String,
    /// Its last heartbeat.
    pub last_heard: Time,
    /// When the failure was declared (last heartbeat + detection timeout).
    pub declared_at: Time,
    /// When a fence succeeded (virtualized).
    pub fenced_at: Option<Time>,
    /// When its VMs were known dead, by a confirmed fence or by the self-fence deadline
    /// (`last_heard + selfFenceTimeout + margin`), and so restarted elsewhere.
    pub known_dead_at: Option<Time>,
    /// Fences tried.
    pub fence_attempts: u32,
    /// When every VM chosen for restart was running again (virtualized), or the server
    /// was back (bare metal).
    pub recovered_at: Option<Time>,
    /// VMs restarted.
    pub vms_restarted: u32,
    /// VMs that found no room.
    pub vms_stranded: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Health {
    Up,
    Silent { last_heard: Time, deadline: Time },
    Fencing,
    FenceFailed { retry: Time },
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Maint {
    None,
    /// Requested while another host of the pool is being emptied: in service until its
    /// turn (one host is emptied at a time, each planned on the room the others left),
    /// in request order.
    Queued {
        since: Time,
    },
    Evacuating,
    Draining,
    /// Drained (bare metal), and held up: taking it down now would leave its guest
    /// cluster's etcd without a majority ([`Control::breaks_quorum`]).
    Drained,
    Maintaining,
}

/// What an evacuation left on its host, and so when a DRS pass tries it again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Leftover {
    /// Nothing (or no evacuation).
    #[default]
    None,
    /// VMs not movable yet (starting, migrating back) or waiting for a migration slot:
    /// tried at every pass.
    Waiting,
    /// Every VM left found no target: tried once that can have changed.
    Refused(maintenance::Refusal),
}

#[derive(Clone, Debug)]
struct HostRec {
    name: String,
    health: Health,
    maint: Maint,
    /// What its evacuation left on it.
    leftover: Leftover,
    /// Index into `failures` of the failure being handled.
    failure: Option<usize>,
    /// The host's current life, once heard from.
    boot: Option<BootId>,
    /// When it was last heard from (a delivered heartbeat or inventory).
    heard_at: Option<Time>,
}

impl HostRec {
    /// Up and in service (not being emptied, drained or maintained): new VMs may go to it.
    fn open(&self) -> bool {
        self.health == Health::Up && matches!(self.maint, Maint::None | Maint::Queued { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Drs,
    Detect(usize),
    FenceRetry(usize),
    /// A rollout of cluster i that found no room tries again.
    Rollout(usize),
    /// Machine health check of the node in `health` under this key.
    Health(u64),
    /// A command's deadline.
    Deadline(CommandId),
    /// A failed command in `retries` under this key is sent again.
    Reissue(u64),
    /// A silent host's VMs are dead without a fence: its agent has killed them. The
    /// failure (index into `failures`) it belongs to.
    KnownDead {
        host: usize,
        failure: usize,
    },
}

/// A command in flight: what it is for, and when it times out.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct InFlight {
    kind: CommandKind,
    pending: Pending,
    deadline: Time,
    /// 0 for the first send.
    attempt: u32,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Pending {
    Start {
        vm: String,
    },
    Migrate {
        vm: String,
        from: HostId,
        to: HostId,
        reverted: bool,
    },
    Fence {
        host: usize,
    },
    Maintain {
        host: usize,
    },
    /// A VM that cannot leave host `host` stops for its maintenance.
    Park {
        vm: String,
        host: usize,
    },
    Drain {
        host: usize,
    },
    /// A step of a rollout of cluster `cluster` replacing node `old`.
    Upgrade {
        cluster: usize,
        old: String,
    },
    /// Machine health remediation of cluster `cluster`: `new` replaces `old`.
    Remediate {
        cluster: usize,
        stage: usize,
        old: String,
        new: String,
    },
    /// A step of scaling a pool.
    Scale(lifecycle::ScaleOp),
    /// A command nothing waits for but that must take effect (cordon, uncordon, deleting
    /// a remediated node, stopping a stale copy): retried until it does.
    Kube,
    /// Asking a host what it runs (see [`resync`]).
    Inventory {
        host: usize,
    },
}

/// Where a VM waiting for room without a host may start again. Each retry places it
/// inside its zone; one a failure left without a host may start outside its zone or beside
/// a member of its group as HA's policy allows, as a recorded exception; one stopped for a
/// maintenance (planned) only as far as it already did before the stop, as the maintenance
/// would not have moved it there either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Waiting {
    /// Its zone (none: the pool is one zone).
    zone: Option<ZoneId>,
    /// It ran outside its zone before a planned stop (a zone exception).
    outside: bool,
    /// It ran beside a member of its group before a planned stop (a spread exception).
    beside_group: bool,
}

impl Waiting {
    /// After a failure, in zone `zone`.
    fn failed(zone: Option<ZoneId>) -> Self {
        Self {
            zone,
            ..Self::default()
        }
    }

    /// Whether it may start outside its zone, when HA's policy allows; `planned`: it was
    /// stopped for a maintenance ([`Vms::parked`]).
    fn may_leave_zone(self, planned: bool) -> bool {
        !planned || self.outside
    }

    /// Whether it may start beside a member of its group, when HA's policy allows.
    fn may_join_group(self, planned: bool) -> bool {
        !planned || self.beside_group
    }
}

#[derive(Clone, Debug)]
struct Vms {
    pool: PoolState,
    ids: BTreeMap<String, VmId>,
    phase: BTreeMap<String, VmPhase>,
    /// VMs that found no host, waiting for capacity.
    stranded: BTreeMap<String, VmSpec>,
    /// Zone exceptions: VMs HA restarted outside their zone → their zone, until they are
    /// moved back ([`Control::heal_exceptions`]).
    outside_zone: BTreeMap<String, ZoneId>,
    /// Where each VM waiting for room without a host (stranded after its host failed, or
    /// stopped for a maintenance) may start again.
    waiting: BTreeMap<String, Waiting>,
    /// Spread exceptions: VMs HA restarted beside a member of their strict placement group,
    /// until they are moved apart ([`Control::heal_exceptions`]) or the member leaves.
    beside_group: BTreeSet<String>,
    /// VMs stopped for their host's maintenance because no other host may take them (what
    /// the maintenance plan lists as stopping): out of the placement once stopped, they
    /// wait for room as a stranded VM does (their host, once back) and are never
    /// remediated meanwhile: the disruption is planned.
    parked: BTreeSet<String>,
}

/// The control plane: reconcilers over the observed state, deterministic and pure.
#[derive(Clone, Debug)]
pub struct Control {
    cfg: ControlConfig,
    vms: Option<Vms>,
    /// Each host's zone, by host id: evacuations stay inside it (empty: one zone).
    zones: Vec<ZoneId>,
    /// The hosts of each zone, by zone id ([`maintenance::zone_members`]).
    zone_hosts: Vec<Vec<HostId>>,
    /// Nodes marked out of service (machine confirmed off), until they run again.
    out_of_service: BTreeSet<String>,
    hosts: Vec<HostRec>,
    host_index: BTreeMap<String, usize>,
    pending: BTreeMap<CommandId, InFlight>,
    next_id: u64,
    /// Failed commands waiting for their next attempt, by key.
    retries: BTreeMap<u64, (Time, InFlight)>,
    retry_seq: u64,
    /// VMs whose location is being asked (see [`resync`]).
    locating: BTreeMap<String, resync::Locate>,
    timers: BTreeSet<(Time, Timer)>,
    conditions: BTreeMap<String, Condition>,
    changes: Vec<ConditionChange>,
    failures: Vec<FailureRecord>,
    drs_dirty: bool,
    clusters: Vec<lifecycle::ClusterRec>,
    cluster_index: BTreeMap<String, usize>,
    /// Bare metal: the spare servers, and whose a server a cluster gives up becomes.
    spares: Vec<crate::Spare>,
    spare_scope: SpareScope,
    /// New VMs of rollouts → (cluster, the node they replace).
    upgrade_vms: BTreeMap<String, (usize, String)>,
    /// In-place VM replacements whose new VM found no room yet.
    retry_deleted: Vec<(usize, String)>,
    events: Vec<ControlEvent>,
    /// The time of the observation being handled.
    clock: Time,
    /// Machine health checks due, by key: the node to look at.
    health: BTreeMap<u64, (String, Time)>,
    health_seq: u64,
    /// What was written to the store, by key (version, record); `None` when the control
    /// plane is not durable.
    persisted: Option<BTreeMap<crate::store::Key, (u64, Vec<u8>)>>,
}

impl Control {
    fn new(cfg: ControlConfig, names: Vec<String>, vms: Option<Vms>) -> Self {
        let host_index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let hosts: Vec<HostRec> = names
            .into_iter()
            .map(|name| HostRec {
                name,
                health: Health::Up,
                maint: Maint::None,
                leftover: Leftover::None,
                failure: None,
                boot: None,
                heard_at: None,
            })
            .collect();
        let mut c = Self {
            cfg,
            vms,
            zones: Vec::new(),
            zone_hosts: maintenance::zone_members(&[], hosts.len()),
            out_of_service: BTreeSet::new(),
            hosts,
            host_index,
            pending: BTreeMap::new(),
            next_id: 0,
            retries: BTreeMap::new(),
            retry_seq: 0,
            locating: BTreeMap::new(),
            timers: BTreeSet::new(),
            conditions: BTreeMap::new(),
            changes: Vec::new(),
            failures: Vec::new(),
            drs_dirty: true,
            clusters: Vec::new(),
            cluster_index: BTreeMap::new(),
            spares: Vec::new(),
            spare_scope: SpareScope::default(),
            upgrade_vms: BTreeMap::new(),
            retry_deleted: Vec::new(),
            events: Vec::new(),
            clock: Time::ZERO,
            health: BTreeMap::new(),
            health_seq: 0,
            persisted: None,
        };
        c.arm_drs(Time::ZERO);
        c
    }

    /// Schedules the next DRS pass, one interval after `now`. A VM pool always has one: the
    /// pass balances only when DRS is on, but on or off it tries stuck evacuations again,
    /// so a maintenance waiting for room goes on once room returns (none with a zero
    /// interval, which could never advance).
    fn arm_drs(&mut self, now: Time) {
        if self.vms.is_some() && self.cfg.drs.interval > 0 {
            self.timers
                .insert((now + self.cfg.drs.interval, Timer::Drs));
        }
    }

    /// A virtualized pool whose VMs all run where `pool` places them (the starting state
    /// the driver also starts from). Hosts are the pool's hosts, in order.
    pub fn virtualized(cfg: ControlConfig, pool: PoolState) -> Self {
        let names = pool.pool().hosts().iter().map(|h| h.name.clone()).collect();
        let mut ids = BTreeMap::new();
        let mut phase = BTreeMap::new();
        for (vm, _) in pool.placements() {
            if let Some(spec) = pool.vm(vm) {
                ids.insert(spec.name.clone(), vm);
                phase.insert(spec.name.clone(), VmPhase::Running);
            }
        }
        let vms = Vms {
            pool,
            ids,
            phase,
            stranded: BTreeMap::new(),
            outside_zone: BTreeMap::new(),
            waiting: BTreeMap::new(),
            beside_group: BTreeSet::new(),
            parked: BTreeSet::new(),
        };
        Self::new(cfg, names, Some(vms))
    }

    /// Bare-metal servers, one Kubernetes node each, named after the server.
    pub fn bare_metal(cfg: ControlConfig, servers: Vec<String>) -> Self {
        Self::new(cfg, servers, None)
    }

    /// The clusters whose nodes this control plane manages (rolling upgrades); names and
    /// pools as in the manifests, VMs named `<cluster>-cp-<i>` and `<cluster>-<pool>-<i>`.
    pub fn with_clusters(mut self, clusters: Vec<ClusterTopology>) -> Self {
        for topo in clusters {
            self.cluster_index
                .insert(topo.name.clone(), self.clusters.len());
            self.clusters.push(lifecycle::ClusterRec::new(topo));
        }
        self
    }

    /// Bare metal: the spare servers, and `scope`: whether a server a cluster gives up
    /// (scaled down, replaced by a surge node, repaired after remediation) is shared by
    /// every cluster or kept for that cluster.
    pub fn with_spares(mut self, scope: SpareScope, spares: Vec<crate::Spare>) -> Self {
        self.spare_scope = scope;
        self.spares = spares;
        self
    }

    /// The spare servers (see [`crate::Spare`]); which one a pool takes is decided when it
    /// takes one, not by this order.
    pub fn spares(&self) -> &[crate::Spare] {
        &self.spares
    }

    /// The zone of each host, by host id (the pool's order): a VM evacuated for maintenance
    /// moves only to a host of its host's zone. Without it the pool is one zone.
    pub fn with_zones(mut self, zones: Vec<ZoneId>) -> Self {
        self.zone_hosts = maintenance::zone_members(&zones, self.hosts.len());
        self.zones = zones;
        self
    }

    /// Each host's zone, by host id (empty: one zone).
    pub fn zones(&self) -> &[ZoneId] {
        &self.zones
    }

    /// Every cluster as the control plane sees it now, in the order it was given them.
    pub fn clusters(&self) -> impl Iterator<Item = &ClusterTopology> {
        self.clusters.iter().map(lifecycle::ClusterRec::topology)
    }

    /// A cluster's nodes as the control plane sees them now (replaced nodes included).
    pub fn cluster(&self, name: &str) -> Option<&ClusterTopology> {
        let c = *self.cluster_index.get(name)?;
        Some(self.clusters[c].topology())
    }

    /// The earliest time the control plane wants a [`Observation::Timer`].
    pub fn next_wakeup(&self) -> Option<Time> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Reconciles what `observation` touches, and every timer due at `now`; returns what
    /// the step produced, for the driver to persist and carry out (see [`Ready`]).
    pub fn handle(&mut self, now: Time, observation: Observation) -> Ready {
        let mut out = Vec::new();
        self.clock = now;
        // Whether the step may change a record (a quiet DRS pass changes none).
        let mut changed = !matches!(observation, Observation::Timer);
        match observation {
            Observation::Timer => {}
            Observation::Heartbeat { host, boot } => {
                if self.accept_boot(&host, boot) {
                    self.on_heartbeat(now, &host, &mut out);
                }
            }
            Observation::Inventory { host, boot, vms } => {
                if self.accept_boot(&host, boot) {
                    self.on_inventory(now, &host, vms, &mut out);
                }
            }
            Observation::HeartbeatMissed { host, last_heard } => {
                // A host the control plane took down for maintenance is expected to be
                // silent.
                if let Some(&i) = self.host_index.get(&host)
                    && self.hosts[i].health == Health::Up
                    && self.hosts[i].maint != Maint::Maintaining
                {
                    let deadline = ha::declare_at(last_heard, self.cfg.ha.detection_timeout);
                    self.hosts[i].health = Health::Silent {
                        last_heard,
                        deadline,
                    };
                    self.sync_cordon(i);
                    self.timers.insert((deadline, Timer::Detect(i)));
                }
            }
            Observation::CommandCompleted { id } => {
                if let Some(f) = self.settle(id) {
                    self.on_done(now, f, None, &mut out);
                }
            }
            Observation::CommandFailed { id, error } => {
                if let Some(f) = self.settle(id) {
                    self.on_done(now, f, Some(error), &mut out);
                }
            }
            Observation::MaintenanceRequested { host } => {
                if let Some(&i) = self.host_index.get(&host) {
                    self.start_maintenance(now, i, &mut out);
                }
            }
            Observation::UpgradeRequested { cluster, upgrade } => {
                self.request_upgrade(now, &cluster, upgrade, &mut out);
            }
            Observation::ClusterRequested { cluster } => {
                self.create_cluster(now, &cluster, &mut out);
            }
            Observation::ScaleRequested {
                cluster,
                pool,
                replicas,
            } => self.scale_pool(now, &cluster, &pool, replicas, &mut out),
        }
        while let Some(&(t, timer)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            changed |= self.on_timer(now, timer, &mut out);
        }
        // Level-triggered: a drained server held for its cluster's quorum goes down once
        // the step let enough members back up.
        let held: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.hosts[i].maint == Maint::Drained)
            .collect();
        for i in held {
            self.maintain_drained(now, i, &mut out);
            changed = true;
        }
        Ready {
            writes: if changed { self.persist() } else { Vec::new() },
            commands: out,
            conditions: std::mem::take(&mut self.changes),
            events: std::mem::take(&mut self.events),
        }
    }

    /// Every condition in force, by object name.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.conditions.values()
    }

    /// The condition of `object` (`vm/NAME`, `host/NAME`), if any.
    pub fn condition(&self, object: &str) -> Option<&Condition> {
        self.conditions.get(object)
    }

    /// Every host failure declared so far.
    pub fn failures(&self) -> &[FailureRecord] {
        &self.failures
    }

    /// The desired placement (virtualized only).
    pub fn pool(&self) -> Option<&PoolState> {
        self.vms.as_ref().map(|v| &v.pool)
    }

    /// The maintenance of host `host` planned on the placement as it is now
    /// ([`maintenance::plan`], with every guest cluster as the control plane sees it and
    /// its own migration bandwidth), judged against `budgets`; `force` is the operator's.
    ///
    /// # Errors
    /// [`ControlError::UnknownHost`]; [`ControlError::NoVmPool`] on bare metal.
    pub fn maintenance_review(
        &self,
        host: &str,
        budgets: &[maintenance::Budget],
        force: bool,
    ) -> Result<maintenance::Review, ControlError> {
        let state = self.pool().ok_or(ControlError::NoVmPool {
            what: "a host maintenance",
            instead: "drain that node instead",
        })?;
        let id = maintenance::host_named(state, host)?;
        let clusters: Vec<ClusterTopology> = self.clusters().cloned().collect();
        let plan = maintenance::plan(
            &maintenance::Snapshot {
                state,
                zones: &self.zones,
                clusters: &clusters,
                budgets,
                deadlines: &self.cfg.deadlines,
            },
            id,
        );
        Ok(maintenance::Review::of(plan, force))
    }

    /// Plans the rolling upgrade of cluster `cluster`, whose spec `spec` says the version
    /// and image it runs, to `to` on the placement as it is now
    /// ([`upgrade::rollout_plan`]): what `plinth upgrade DIR --dry-run` prints for an estate
    /// directory and the service answers for itself. A version the skew policy forbids is
    /// refused.
    pub fn upgrade_plan(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        to: &str,
    ) -> Result<upgrade::RolloutPlan, ControlError> {
        let state = self.pool().ok_or(ControlError::NoVmPool {
            what: "an upgrade",
            instead: "a bare-metal rollout reimages or replaces servers one by one, as `plinth simulate --env bare-metal` runs it",
        })?;
        let topology = self
            .cluster(cluster)
            .ok_or_else(|| ControlError::UnknownCluster {
                cluster: cluster.to_owned(),
                known: self.clusters().map(|c| c.name.clone()).collect(),
            })?;
        let change = upgrade::Change::checked(cluster, spec, to)?;
        let d = &self.cfg.deadlines;
        Ok(upgrade::rollout_plan(
            state,
            topology,
            |vm| self.vm_id(vm),
            change,
            d.vm_clone.saturating_add(d.vm_boot),
        ))
    }

    /// The DRS pass the control plane would make now, whether or not it is due
    /// ([`drs::plan`] with the VMs it may move now): what `plinth drs DIR --dry-run` prints
    /// for an estate directory and the service answers for itself.
    pub fn drs_review(&self) -> Result<drs::Review, ControlError> {
        let no_pool = || ControlError::NoVmPool {
            what: "a DRS pass",
            instead: "bare metal has no live migration to balance with",
        };
        let state = self.pool().ok_or_else(no_pool)?;
        let roles = self.roles();
        let plan = self.drs_plan(&roles).ok_or_else(no_pool)?;
        Ok(drs::Review::of(&self.cfg.drs, &plan, state, &roles))
    }

    /// The id of VM `vm` in the desired placement ([`Control::pool`]).
    pub fn vm_id(&self, vm: &str) -> Option<VmId> {
        self.vms.as_ref()?.ids.get(vm).copied()
    }

    /// Where the control plane wants `vm` to run.
    pub fn vm_host(&self, vm: &str) -> Option<&str> {
        let v = self.vms.as_ref()?;
        let h = v.pool.host_of(*v.ids.get(vm)?)?;
        Some(&v.pool.pool().host(h).name)
    }

    /// What the control plane believes `vm` is doing.
    pub fn vm_phase(&self, vm: &str) -> Option<VmPhase> {
        self.vms.as_ref()?.phase.get(vm).copied()
    }

    /// True when nothing is under way: no command in flight, no condition, no cluster
    /// being created, scaled or rolled, and every node VM running. A real driver's
    /// `plinth run --until-converged` ends here.
    pub fn settled(&self) -> bool {
        self.in_flight() == 0
            && self.conditions().next().is_none()
            && !self.clusters.iter().any(lifecycle::ClusterRec::busy)
            && self.clusters().all(|c| {
                std::iter::once(&c.control_plane)
                    .chain(&c.pools)
                    .flat_map(|p| &p.nodes)
                    .all(|n| self.vm_phase(n).is_none_or(|p| p == VmPhase::Running))
            })
    }

    /// How the control plane sees host `name` now, for a service's status.
    pub fn host_state(&self, name: &str) -> Option<HostState> {
        let h = &self.hosts[*self.host_index.get(name)?];
        Some(match (h.health, h.maint) {
            (Health::Up, Maint::None | Maint::Queued { .. }) => HostState::Up,
            (Health::Up, _) => HostState::Maintenance,
            (Health::Silent { .. }, _) => HostState::Silent,
            (Health::Fencing, _) => HostState::Fencing,
            (Health::FenceFailed { .. } | Health::Failed, _) => HostState::Failed,
        })
    }

    /// Where one cluster stands now, for a service's status: its nodes, how many run, and
    /// whether a creation, scale or rollout is under way or queued.
    pub fn cluster_state(&self, name: &str) -> Option<ClusterState> {
        let &c = self.cluster_index.get(name)?;
        let rec = &self.clusters[c];
        let topo = rec.topology();
        let nodes: Vec<&String> = std::iter::once(&topo.control_plane)
            .chain(&topo.pools)
            .flat_map(|p| &p.nodes)
            .collect();
        let running = nodes
            .iter()
            .filter(|n| self.vm_phase(n) == Some(VmPhase::Running))
            .count();
        Some(ClusterState {
            nodes: u32::try_from(nodes.len()).unwrap_or(u32::MAX),
            running: u32::try_from(running).unwrap_or(u32::MAX),
            busy: rec.busy(),
        })
    }

    /// Commands not yet answered.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    // --- internals -------------------------------------------------------------------

    fn issue(&mut self, kind: CommandKind, pending: Pending, out: &mut Vec<Command>) {
        self.send(kind, pending, 0, out);
    }

    /// Sends attempt `attempt` of a command, with its deadline.
    fn send(&mut self, kind: CommandKind, pending: Pending, attempt: u32, out: &mut Vec<Command>) {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        let memory = match &kind {
            CommandKind::MigrateVm { vm, .. } => self.vm_memory(vm),
            _ => 0,
        };
        let deadline = self.clock + self.cfg.deadlines.of(&kind, memory);
        self.timers.insert((deadline, Timer::Deadline(id)));
        self.pending.insert(
            id,
            InFlight {
                kind: kind.clone(),
                pending,
                deadline,
                attempt,
            },
        );
        out.push(Command { id, deadline, kind });
    }

    /// The command `id` is answered (or timed out): no longer in flight.
    fn settle(&mut self, id: CommandId) -> Option<InFlight> {
        let f = self.pending.remove(&id)?;
        self.timers.remove(&(f.deadline, Timer::Deadline(id)));
        Some(f)
    }

    fn vm_memory(&self, vm: &str) -> u64 {
        self.vm_spec(vm).map_or(0, |s| s.demand.memory_bytes)
    }

    /// Sends a failed command again after a backoff that grows with its attempts.
    fn retry_later(&mut self, now: Time, mut f: InFlight) -> Time {
        f.attempt += 1;
        let at = now + backoff(f.attempt);
        let key = self.retry_seq;
        self.retry_seq += 1;
        self.retries.insert(key, (at, f));
        self.timers.insert((at, Timer::Reissue(key)));
        at
    }

    /// Whether a message carrying `boot` from `host` is from its current life (or a
    /// later one, which becomes current); one from an earlier life is stale.
    fn accept_boot(&mut self, host: &str, boot: BootId) -> bool {
        let Some(&i) = self.host_index.get(host) else {
            return false;
        };
        let rec = &mut self.hosts[i];
        if rec.boot.is_some_and(|b| boot < b) {
            return false;
        }
        rec.boot = Some(boot);
        // Drivers coalesce heartbeats (only the first after a miss must be delivered),
        // so this changes the host's record rarely.
        rec.heard_at = Some(self.clock);
        true
    }

    fn set_condition(&mut self, object: String, reason: Reason, message: String, now: Time) {
        if self
            .conditions
            .get(&object)
            .is_some_and(|c| c.reason == reason && c.message == message)
        {
            return;
        }
        let since = match self.conditions.get(&object) {
            Some(c) if c.reason == reason => c.since,
            _ => now,
        };
        let c = Condition {
            object: object.clone(),
            reason,
            message,
            since,
        };
        self.changes.push(ConditionChange::Set(c.clone()));
        self.conditions.insert(object, c);
    }

    fn clear_condition(&mut self, object: &str, now: Time) {
        if self.conditions.remove(object).is_some() {
            self.changes.push(ConditionChange::Cleared {
                object: object.to_owned(),
                at: now,
            });
        }
    }

    fn vms_on(&self, host: usize) -> Vec<String> {
        let Some(v) = &self.vms else {
            return Vec::new();
        };
        let mut names: Vec<String> = v
            .pool
            .vms_on(HostId(host as u32))
            .into_iter()
            .filter_map(|id| v.pool.vm(id).map(|s| s.name.clone()))
            .collect();
        names.sort();
        names
    }

    /// Marks `vm` starting and asks the driver to boot it on `host`.
    fn start_vm(&mut self, vm: String, host: String, out: &mut Vec<Command>) {
        self.set_phase(&vm, VmPhase::Starting);
        let kind = CommandKind::StartVm {
            vm: vm.clone(),
            host,
        };
        self.issue(kind, Pending::Start { vm }, out);
    }

    /// Keeps a node's topology labels true: node VM `vm` now runs (or boots) on `host`, away
    /// from where it ran (a live migration, an HA restart). VMs that are no node (of a
    /// VirtualMachineSet) carry no labels.
    fn relabel(&mut self, vm: &str, host: &str, out: &mut Vec<Command>) {
        if self.stage_of(vm).is_some() {
            let kind = CommandKind::LabelNode {
                node: vm.to_owned(),
                host: host.to_owned(),
            };
            self.issue(kind, Pending::Kube, out);
        }
    }

    /// Marks node `node` out of service (its machine is confirmed off), once: Kubernetes
    /// then moves its pods at once rather than after the not-ready toleration.
    fn out_of_service(&mut self, node: &str, out: &mut Vec<Command>) {
        if self.stage_of(node).is_some() && self.out_of_service.insert(node.to_owned()) {
            let kind = CommandKind::OutOfService {
                node: node.to_owned(),
            };
            self.issue(kind, Pending::Kube, out);
        }
    }

    /// Node `node` runs again: its out-of-service taint, if any, is removed.
    fn in_service(&mut self, node: &str, out: &mut Vec<Command>) {
        if self.out_of_service.remove(node) {
            let kind = CommandKind::InService {
                node: node.to_owned(),
            };
            self.issue(kind, Pending::Kube, out);
        }
    }

    fn set_phase(&mut self, vm: &str, phase: VmPhase) {
        if let Some(v) = &mut self.vms {
            let before = v.phase.insert(vm.to_owned(), phase);
            if phase == VmPhase::Down && before != Some(VmPhase::Down) {
                self.watch_health(vm);
            }
        }
    }

    /// Cordons host `i` in the placement while it is blocked ([`Control::blocked_hosts`]:
    /// not heard from, failed, or in maintenance), and lifts it once it is up and in service
    /// again: no VM is placed, restarted or moved onto a host being emptied or gone silent.
    pub(super) fn sync_cordon(&mut self, i: usize) {
        let blocked = !self.hosts[i].open();
        if let Some(v) = &mut self.vms {
            let _ = v.pool.cordon(HostId(i as u32), blocked);
        }
    }

    /// Hosts new VMs must not go to: not heard from, failed or being emptied.
    fn blocked_hosts(&self) -> Vec<HostId> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.open())
            .map(|(i, _)| HostId(i as u32))
            .collect()
    }

    fn on_heartbeat(&mut self, now: Time, host: &str, out: &mut Vec<Command>) {
        let Some(&i) = self.host_index.get(host) else {
            return;
        };
        match self.hosts[i].health {
            Health::Up | Health::Fencing => {}
            Health::Silent { deadline, .. } => {
                self.timers.remove(&(deadline, Timer::Detect(i)));
                self.hosts[i].health = Health::Up;
                self.sync_cordon(i);
                self.ask_again(i, out);
                // Lifting its cordon made room: VMs stranded meanwhile may fit there.
                self.retry_stranded(now, out);
            }
            Health::FenceFailed { retry } => {
                // The host answers again before its VMs were restarted elsewhere: they
                // may still run there (a partition that healed). Ask it what it runs;
                // the VMs it does not run start on it — never as a second copy elsewhere.
                self.timers.remove(&(retry, Timer::FenceRetry(i)));
                self.hosts[i].health = Health::Up;
                self.sync_cordon(i);
                self.relocate_on(now, i, out);
                self.retry_stranded(now, out);
                self.close_failure_if_done(i, now);
            }
            Health::Failed => {
                self.hosts[i].health = Health::Up;
                self.sync_cordon(i);
                self.ask_again(i, out);
                self.clear_condition(&format!("host/{host}"), now);
                if let Some(v) = &mut self.vms {
                    let _ = v.pool.set_status(HostId(i as u32), HostStatus::Up);
                    self.drs_dirty = true;
                    self.retry_stranded(now, out);
                } else {
                    if let Some(f) = self.hosts[i].failure.take() {
                        self.failures[f].recovered_at = Some(now);
                    }
                    self.in_service(host, out);
                    if !self.server_repaired(now, host, out) {
                        self.issue(
                            CommandKind::Uncordon {
                                node: host.to_owned(),
                            },
                            Pending::Kube,
                            out,
                        );
                    }
                }
            }
        }
    }

    /// Acts on `timer`; whether anything may have changed (a DRS pass with nothing to do
    /// changes nothing, and its step persists nothing).
    fn on_timer(&mut self, now: Time, timer: Timer, out: &mut Vec<Command>) -> bool {
        match timer {
            Timer::Detect(i) => {
                let Health::Silent { last_heard, .. } = self.hosts[i].health else {
                    return true;
                };
                self.declare_failed(now, i, last_heard, out);
            }
            Timer::FenceRetry(i) => {
                if matches!(self.hosts[i].health, Health::FenceFailed { .. }) {
                    self.fence(i, out);
                }
            }
            Timer::Drs => {
                self.arm_drs(now);
                return self.drs_pass(now, out);
            }
            Timer::Health(key) => {
                if let Some((node, _)) = self.health.remove(&key) {
                    self.check_health(now, &node, out);
                }
            }
            Timer::Rollout(c) => {
                self.rollout_retry(now, c, out);
                self.retry_recreates(now, out);
                self.rescale(now, c, out);
            }
            Timer::Deadline(id) => {
                if let Some(f) = self.settle(id) {
                    self.on_done(now, f, Some(CommandError::TimedOut), out);
                }
            }
            Timer::Reissue(key) => {
                if let Some((_, f)) = self.retries.remove(&key) {
                    if resync::places_vm(&f.kind) && !self.placing_can_retry(&f.kind) {
                        // Its host was lost (or HA moved the VM) meanwhile: the VM takes
                        // the path of any VM of a lost host.
                        self.clear_retry_condition(&f.kind, now);
                        self.dispatch(now, f.pending, Some(CommandError::Unreachable), out);
                    } else {
                        self.send(f.kind, f.pending, f.attempt, out);
                    }
                }
            }
            Timer::KnownDead { host, failure } => {
                if self.hosts[host].failure == Some(failure)
                    && !self.heard_since_failure(host)
                    && matches!(
                        self.hosts[host].health,
                        Health::Fencing | Health::FenceFailed { .. }
                    )
                {
                    self.known_dead(now, host, out);
                }
            }
        }
        true
    }

    fn declare_failed(&mut self, now: Time, i: usize, last_heard: Time, out: &mut Vec<Command>) {
        let name = self.hosts[i].name.clone();
        self.failures.push(FailureRecord {
            host: name.clone(),
            last_heard,
            declared_at: now,
            fenced_at: None,
            known_dead_at: None,
            fence_attempts: 0,
            recovered_at: None,
            vms_restarted: 0,
            vms_stranded: 0,
        });
        self.hosts[i].failure = Some(self.failures.len() - 1);
        if self.vms.is_none() {
            // Bare metal: the node stays down until the server is repaired; Kubernetes
            // moves what it can. Cordon so a flapping server takes no new pods.
            self.hosts[i].health = Health::Failed;
            self.sync_cordon(i);
            self.set_condition(
                format!("host/{name}"),
                Reason::WaitingForRepair,
                format!("no heartbeat since {last_heard}; the node stays down until the server is repaired"),
                now,
            );
            self.watch_health(&name);
            self.issue(
                CommandKind::Cordon { node: name.clone() },
                Pending::Kube,
                out,
            );
            // Power it off through its BMC, so its node can be marked out of service.
            self.issue(
                CommandKind::FenceHost { host: name },
                Pending::Fence { host: i },
                out,
            );
            return;
        }
        if !self.cfg.ha.enabled {
            self.hosts[i].health = Health::Failed;
            self.sync_cordon(i);
            for vm in self.vms_on(i) {
                self.set_phase(&vm, VmPhase::Down);
                self.set_condition(
                    format!("vm/{vm}"),
                    Reason::WaitingForHost,
                    format!("host {name} failed and HA is disabled; the VM waits for its host"),
                    now,
                );
            }
            return;
        }
        let dead_at = self.cfg.ha.known_dead_at(last_heard);
        for vm in self.vms_on(i) {
            self.set_phase(&vm, VmPhase::Down);
            self.set_condition(
                format!("vm/{vm}"),
                Reason::WaitingForFence,
                format!("host {name} silent for {}; the VM restarts elsewhere once the host is fenced, or in {} when its own agent has killed it", Span::until(last_heard, now), Span::until(now, dead_at)),
                now,
            );
        }
        if let Some(failure) = self.hosts[i].failure {
            self.timers
                .insert((dead_at, Timer::KnownDead { host: i, failure }));
        }
        self.fence(i, out);
    }

    fn fence(&mut self, i: usize, out: &mut Vec<Command>) {
        self.hosts[i].health = Health::Fencing;
        self.sync_cordon(i);
        if let Some(f) = self.hosts[i].failure {
            self.failures[f].fence_attempts += 1;
        }
        let host = self.hosts[i].name.clone();
        self.issue(
            CommandKind::FenceHost { host },
            Pending::Fence { host: i },
            out,
        );
    }

    fn on_done(
        &mut self,
        now: Time,
        f: InFlight,
        failed: Option<CommandError>,
        out: &mut Vec<Command>,
    ) {
        if failed.is_some() && !self.still_wanted_there(&f.kind) {
            // A start or create on a host the VM no longer belongs to (HA moved it when
            // that host was known dead): its failure says nothing about the VM.
            if !matches!(f.pending, Pending::Start { .. }) {
                self.dispatch(now, f.pending, failed, out);
            }
            return;
        }
        if let Some(error) = &failed {
            if !error.nothing_changed() && resync::places_vm(&f.kind) {
                self.locate_after(now, f, error, out);
                return;
            }
            match self.host_down(&f) {
                Some(resync::HostDown::Done) => {
                    self.dispatch(now, f.pending, None, out);
                    return;
                }
                Some(resync::HostDown::Dropped) => return,
                None => {}
            }
            if resync::idempotent(&f.kind) || self.retry_placing(&f.kind, error) {
                self.retry_failed(now, f, error);
                return;
            }
        } else if f.attempt > 0 {
            self.clear_retry_condition(&f.kind, now);
        }
        self.dispatch(now, f.pending, failed, out);
    }

    /// Acts on the answer of a command, by what it was for.
    fn dispatch(
        &mut self,
        now: Time,
        p: Pending,
        failed: Option<CommandError>,
        out: &mut Vec<Command>,
    ) {
        match p {
            Pending::Fence { host } => self.fence_done(now, host, failed, out),
            Pending::Start { vm } => {
                if failed.is_none() {
                    self.in_service(&vm, out);
                    self.set_phase(&vm, VmPhase::Running);
                    self.exception_condition(now, &vm);
                    self.upgrade_vm_running(now, &vm, out);
                } else {
                    // Its host is lost; HA moves it once the host is declared failed.
                    self.set_phase(&vm, VmPhase::Down);
                    let why = failed.map(|e| e.to_string()).unwrap_or_default();
                    self.set_condition(
                        format!("vm/{vm}"),
                        Reason::WaitingForHost,
                        format!("start failed: {why}"),
                        now,
                    );
                }
                self.vm_settled(now, &vm);
            }
            Pending::Migrate {
                vm,
                from,
                to,
                reverted,
            } => self.migrate_done(now, vm, from, to, reverted, failed, out),
            Pending::Park { vm, host } => self.parked(now, vm, host, out),
            Pending::Maintain { host } => {
                self.hosts[host].maint = Maint::None;
                self.sync_cordon(host);
                let name = self.hosts[host].name.clone();
                self.clear_condition(&format!("host/{name}"), now);
                if let Some(v) = &mut self.vms {
                    if self.hosts[host].health == Health::Up {
                        let _ = v.pool.set_status(HostId(host as u32), HostStatus::Up);
                    }
                    self.drs_dirty = true;
                    self.retry_stranded(now, out);
                    self.next_maintenance(now, out);
                } else {
                    self.issue(CommandKind::Uncordon { node: name }, Pending::Kube, out);
                }
            }
            Pending::Drain { host } => {
                self.hosts[host].maint = Maint::Drained;
                self.maintain_drained(now, host, out);
            }
            Pending::Upgrade { cluster, old } => self.upgrade_done(now, cluster, old, failed, out),
            Pending::Scale(op) => self.scale_done(now, op, failed, out),
            Pending::Remediate {
                cluster,
                stage,
                old,
                new,
            } => self.remediation_done(now, cluster, stage, old, new, failed),
            Pending::Inventory { host } => self.inventory_answered(now, host),
            Pending::Kube => {}
        }
    }

    fn fence_done(
        &mut self,
        now: Time,
        i: usize,
        failed: Option<CommandError>,
        out: &mut Vec<Command>,
    ) {
        if self.vms.is_none() {
            // A failed server powered off through its BMC: its node's pods may go.
            if failed.is_none() && self.hosts[i].health == Health::Failed {
                if let Some(f) = self.hosts[i].failure {
                    self.failures[f].fenced_at = Some(now);
                }
                let node = self.hosts[i].name.clone();
                self.out_of_service(&node, out);
            }
            return;
        }
        if self.hosts[i].health != Health::Fencing {
            return;
        }
        let name = self.hosts[i].name.clone();
        // A fence that timed out or whose answer was lost counts as failed: the host is
        // never assumed off.
        if failed.is_some() && self.heard_since_failure(i) {
            // It answered while being fenced: it is alive and reachable.
            self.hosts[i].health = Health::Up;
            self.sync_cordon(i);
            self.relocate_on(now, i, out);
            self.retry_stranded(now, out);
            self.close_failure_if_done(i, now);
            return;
        }
        if let Some(error) = failed {
            let retry = now + self.cfg.ha.fence_retry;
            self.hosts[i].health = Health::FenceFailed { retry };
            self.sync_cordon(i);
            self.timers.insert((retry, Timer::FenceRetry(i)));
            let dead_at = self.hosts[i]
                .failure
                .map(|f| self.cfg.ha.known_dead_at(self.failures[f].last_heard));
            let until = dead_at.map_or_else(String::new, |t| {
                format!(
                    "; it restarts elsewhere in {}, when the host's agent has killed it",
                    Span::until(now, t)
                )
            });
            for vm in self.vms_on(i) {
                self.set_condition(
                    format!("vm/{vm}"),
                    Reason::WaitingForFence,
                    format!("fence of host {name} failed ({error}); the VM stays down rather than risk a second copy{until}; next fence in {}", Span::until(now, retry)),
                    now,
                );
            }
            return;
        }
        if let Some(f) = self.hosts[i].failure {
            self.failures[f].fenced_at = Some(now);
        }
        self.known_dead(now, i, out);
    }

    /// Whether host `i` was heard from after the last heartbeat of its failure.
    fn heard_since_failure(&self, i: usize) -> bool {
        let Some(f) = self.hosts[i].failure else {
            return false;
        };
        self.hosts[i]
            .heard_at
            .is_some_and(|t| t > self.failures[f].last_heard)
    }

    /// Host `i`'s VMs are known dead (its fence was confirmed, or its own agent has
    /// killed them): restart them elsewhere.
    fn known_dead(&mut self, now: Time, i: usize, out: &mut Vec<Command>) {
        self.hosts[i].health = Health::Failed;
        self.sync_cordon(i);
        if let Some(f) = self.hosts[i].failure {
            self.failures[f].known_dead_at = Some(now);
        }
        for vm in self.vms_on(i) {
            self.out_of_service(&vm, out);
        }
        self.restart_elsewhere(now, i, out);
        self.host_dead_for_locates(now, i, out);
    }

    fn restart_elsewhere(&mut self, now: Time, i: usize, out: &mut Vec<Command>) {
        let name = self.hosts[i].name.clone();
        let replaced = self.replaced_nodes();
        let Some(v) = &mut self.vms else {
            return;
        };
        let h = HostId(i as u32);
        // A VM migrating onto the failed host still runs on its source: put it back there
        // so HA does not start a second copy.
        let mut reverted = Vec::new();
        for (id, f) in self.pending.iter_mut() {
            if let Pending::Migrate {
                vm,
                from,
                to,
                reverted: r,
            } = &mut f.pending
                && *to == h
                && *from != h
                && let Some(&vid) = v.ids.get(vm)
                && v.pool
                    .migrate(Migration {
                        vm: vid,
                        from: h,
                        to: *from,
                    })
                    .is_ok()
            {
                *r = true;
                reverted.push(*id);
            }
        }
        let zone = self.zones.get(i).copied();
        // A VM HA restarted here from another zone earlier restarts in its own.
        let homes: Vec<(&str, &[HostId])> = v
            .outside_zone
            .iter()
            .filter_map(|(vm, z)| {
                Some((vm.as_str(), self.zone_hosts.get(z.0 as usize)?.as_slice()))
            })
            .collect();
        let scope = RestartScope {
            zone: zone.map_or(&[], |z| self.zone_hosts[z.0 as usize].as_slice()),
            homes: &homes,
            outside: self.cfg.ha.restart_outside_zone,
            beside_group: self.cfg.ha.restart_beside_group,
        };
        // A node a rollout is replacing is the rollout's: not restarted, it leaves the
        // placement before HA places the others (its room is theirs) and waits for the
        // rollout to delete it.
        let mut left_to_rollout = Vec::new();
        for vid in v.pool.vms_on(h) {
            let Some(vm) = v.pool.vm(vid).map(|s| s.name.clone()) else {
                continue;
            };
            if replaced.contains(&vm)
                && let Ok(spec) = v.pool.remove(vid)
            {
                v.ids.remove(&vm);
                v.stranded.insert(vm.clone(), spec);
                left_to_rollout.push(vm);
            }
        }
        let evac = match ha::restart(&mut v.pool, h, scope) {
            Ok(e) => e,
            Err(_) => return,
        };
        self.drs_dirty = true;
        let mut starts = Vec::new();
        for (vid, to) in &evac.restarted {
            if let Some(spec) = v.pool.vm(*vid) {
                let vm = spec.name.clone();
                starts.push((vm.clone(), v.pool.pool().host(*to).name.clone()));
                v.parked.remove(&vm);
                // This restart's exceptions replace any an earlier one left.
                let home = v.outside_zone.get(&vm).copied().or(zone);
                match home.filter(|_| evac.outside_zone.contains(vid)) {
                    Some(z) => v.outside_zone.insert(vm.clone(), z),
                    None => v.outside_zone.remove(&vm),
                };
                if evac.beside_group.contains(vid) {
                    v.beside_group.insert(vm);
                } else {
                    v.beside_group.remove(&vm);
                }
            }
        }
        let mut stranded = Vec::new();
        for (_, spec, err) in evac.stranded {
            stranded.push((spec.name.clone(), err.to_string()));
            // Its host failed: no longer a planned stop, and the health check may act.
            v.parked.remove(&spec.name);
            v.ids.remove(&spec.name);
            let home = v.outside_zone.remove(&spec.name).or(zone);
            v.waiting.insert(spec.name.clone(), Waiting::failed(home));
            v.stranded.insert(spec.name.clone(), spec);
        }
        if let Some(f) = self.hosts[i].failure {
            self.failures[f].vms_restarted = starts.len() as u32;
            self.failures[f].vms_stranded = stranded.len() as u32;
        }
        for (vm, host) in starts {
            self.note_arrival(&host);
            self.restarting(
                now,
                &vm,
                format!("host {name} failed; HA restarts it on {host}"),
            );
            self.relabel(&vm, &host, out);
            // A VM whose location is still asked of another host waits for that answer.
            if !self.locating.contains_key(&vm) {
                self.start_vm(vm, host, out);
            }
        }
        for (vm, why) in stranded {
            self.set_phase(&vm, VmPhase::Down);
            self.set_condition(
                format!("vm/{vm}"),
                Reason::WaitingForCapacity,
                format!("host {name} failed and no host can take the VM: {why}"),
                now,
            );
        }
        for vm in left_to_rollout {
            self.set_phase(&vm, VmPhase::Down);
            self.set_condition(
                format!("vm/{vm}"),
                Reason::Upgrading,
                format!(
                    "host {name} failed; not restarted: the rollout replacing this node deletes it once its replacement runs"
                ),
                now,
            );
        }
        self.close_failure_if_done(i, now);
    }

    /// A VM of a failure finished starting (or failed to): close the failure's record when
    /// none of its VMs is still starting.
    fn vm_settled(&mut self, now: Time, _vm: &str) {
        for i in 0..self.hosts.len() {
            if self.hosts[i].failure.is_some() {
                self.close_failure_if_done(i, now);
            }
        }
    }

    fn close_failure_if_done(&mut self, i: usize, now: Time) {
        let Some(f) = self.hosts[i].failure else {
            return;
        };
        if self.failures[f].known_dead_at.is_none() && !matches!(self.hosts[i].health, Health::Up) {
            return;
        }
        let starting = self.pending.values().any(|f| {
            matches!(&f.pending, Pending::Start { vm } if self.vms.as_ref().is_some_and(|v| v.ids.contains_key(vm)))
        });
        if !starting {
            self.failures[f].recovered_at = Some(now);
            self.hosts[i].failure = None;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn migrate_done(
        &mut self,
        now: Time,
        vm: String,
        from: HostId,
        to: HostId,
        reverted: bool,
        failed: Option<CommandError>,
        out: &mut Vec<Command>,
    ) {
        self.drs_dirty = true;
        if failed.is_some() && self.hosts[from.index()].maint == Maint::Evacuating {
            // The VM is back on (or lost with) the host being emptied: evacuate it again
            // at the next pass.
            self.hosts[from.index()].leftover = Leftover::Waiting;
        }
        if failed.is_none() || reverted {
            self.set_phase(&vm, VmPhase::Running);
            if !reverted {
                let host = self.hosts[to.index()].name.clone();
                self.relabel(&vm, &host, out);
                // Back in its zone, or apart from its group: the exception ends.
                if let Some(v) = &mut self.vms {
                    if v.outside_zone
                        .get(&vm)
                        .is_some_and(|z| self.zones.get(to.index()) == Some(z))
                    {
                        v.outside_zone.remove(&vm);
                    }
                    if v.ids.get(&vm).is_some_and(|&id| !v.pool.crowded(id)) {
                        v.beside_group.remove(&vm);
                    }
                }
            }
            self.exception_condition(now, &vm);
        } else {
            let source_up = self.hosts[from.index()].health == Health::Up;
            let target_up = self.hosts[to.index()].health == Health::Up;
            let Some(v) = &mut self.vms else {
                return;
            };
            let Some(&vid) = v.ids.get(&vm) else {
                return;
            };
            if source_up
                && v.pool.host_of(vid) == Some(to)
                && v.pool
                    .migrate(Migration {
                        vm: vid,
                        from: to,
                        to: from,
                    })
                    .is_ok()
            {
                self.set_phase(&vm, VmPhase::Running);
            } else if target_up && v.pool.host_of(vid) == Some(to) {
                // The source died with the VM: boot it where it was going.
                let host = v.pool.pool().host(to).name.clone();
                self.relabel(&vm, &host, out);
                self.start_vm(vm, host, out);
                return;
            } else {
                self.set_phase(&vm, VmPhase::Down);
            }
        }
        if failed.is_none() && self.hosts[from.index()].maint == Maint::Evacuating {
            // A migration slot is free: the next VM of the host starts (and the host goes
            // down once it is empty).
            self.evacuate(now, from.index(), out);
        } else {
            self.continue_evacuation(now, from.index(), out);
        }
    }

    /// Takes drained server `host` down for its maintenance, unless that would leave its
    /// guest cluster's etcd without a majority (another member is down: failed, in
    /// maintenance, being reimaged); then it stays drained, with the reason, and is tried
    /// again after every step until it may go ([`Control::handle`]).
    fn maintain_drained(&mut self, now: Time, host: usize, out: &mut Vec<Command>) {
        let name = self.hosts[host].name.clone();
        if let Some(why) = self.breaks_quorum(&name) {
            let message = format!("drained; waits to go down: {why}");
            let object = format!("host/{name}");
            if self.condition(&object).is_none_or(|c| c.message != message) {
                self.set_condition(object, Reason::Evacuating, message, now);
            }
            return;
        }
        self.hosts[host].maint = Maint::Maintaining;
        self.sync_cordon(host);
        self.set_condition(
            format!("host/{name}"),
            Reason::InMaintenance,
            "drained; server down for maintenance".into(),
            now,
        );
        self.issue(
            CommandKind::MaintainHost { host: name },
            Pending::Maintain { host },
            out,
        );
    }

    fn start_maintenance(&mut self, now: Time, i: usize, out: &mut Vec<Command>) {
        if self.hosts[i].health != Health::Up || self.hosts[i].maint != Maint::None {
            return;
        }
        // One host of a pool is emptied at a time: evacuations share the free room, and
        // each is planned on what the others left (a patch wave on a small pool would
        // otherwise cordon every host, none able to finish).
        if self.vms.is_some()
            && let Some(other) = self.hosts.iter().position(|h| h.maint == Maint::Evacuating)
        {
            self.hosts[i].maint = Maint::Queued { since: now };
            self.queued_condition(now, i, other);
            return;
        }
        // A server a rollout is reimaging or installing is down for that already.
        if self.vms.is_none() && self.in_rollout(&self.hosts[i].name) {
            return;
        }
        let name = self.hosts[i].name.clone();
        if self.vms.is_none() {
            self.hosts[i].maint = Maint::Draining;
            self.sync_cordon(i);
            self.set_condition(
                format!("host/{name}"),
                Reason::Evacuating,
                "draining the node before maintenance".into(),
                now,
            );
            self.issue(
                CommandKind::Drain { node: name },
                Pending::Drain { host: i },
                out,
            );
            return;
        }
        self.hosts[i].maint = Maint::Evacuating;
        self.sync_cordon(i);
        self.set_condition(
            format!("host/{name}"),
            Reason::Evacuating,
            "live-migrating its VMs before maintenance".into(),
            now,
        );
        self.evacuate(now, i, out);
    }

    fn evacuate(&mut self, now: Time, i: usize, out: &mut Vec<Command>) {
        let h = HostId(i as u32);
        let in_flight = self
            .pending
            .values()
            .filter(|f| matches!(&f.pending, Pending::Migrate { from, .. } if *from == h))
            .count();
        let parallel = maintenance::parallel_migrations(self.cfg.deadlines.migration_gbps);
        let limit = (parallel as usize).saturating_sub(in_flight);
        if limit == 0 {
            // Every slot is in flight: the next start is when one ends (`migrate_done`).
            let left = self
                .vms
                .as_ref()
                .is_some_and(|v| !v.pool.vms_on(h).is_empty());
            self.hosts[i].leftover = if left {
                Leftover::Waiting
            } else {
                Leftover::None
            };
            return;
        }
        let blocked = self.blocked_hosts();
        let bounds = maintenance::Bounds {
            blocked: &blocked,
            zones: &self.zones,
            limit,
        };
        let Some(v) = &mut self.vms else {
            return;
        };
        let on_host = v.pool.vms_on(h);
        let movable: Vec<VmId> = on_host
            .iter()
            .copied()
            .filter(|id| {
                v.pool
                    .vm(*id)
                    .is_some_and(|s| v.phase.get(&s.name) == Some(&VmPhase::Running))
            })
            .collect();
        // Planned on the desired placement itself: the moves are made in it as they are
        // chosen, and issued below without applying them again.
        let (moves, stuck) =
            maintenance::evacuate_in(&mut v.pool, h, |id| movable.contains(&id), &bounds);
        // What is left on the host did not move: VMs with no target, VMs not movable yet
        // (starting, migrating back), VMs waiting for a migration slot (the next start
        // when a migration off the host ends, see `migrate_done`).
        let left = on_host.len() - moves.len();
        self.hosts[i].leftover = if left == 0 {
            Leftover::None
        } else if left == stuck.len() {
            Leftover::Refused(maintenance::Refusal::new(&v.pool, h, &blocked))
        } else {
            Leftover::Waiting
        };
        let host = self.hosts[i].name.clone();
        let stuck: Vec<(String, String)> = stuck
            .into_iter()
            .filter_map(|(vid, why)| Some((v.pool.vm(vid)?.name.clone(), why.to_string())))
            .collect();
        // The rest moved, and what is left can go nowhere although every other host is up
        // and in service (waiting brings no host back): it stops with the host, as the
        // maintenance plan said, when every guest cluster keeps its etcd majority.
        let last = moves.is_empty()
            && in_flight == 0
            && matches!(self.hosts[i].leftover, Leftover::Refused(_))
            && blocked.iter().all(|b| b.index() == i);
        let quorum = if last {
            let names: Vec<&str> = stuck.iter().map(|(vm, _)| vm.as_str()).collect();
            self.stops_break_quorum(&names)
        } else {
            None
        };
        if last && quorum.is_none() {
            for (vm, why) in stuck {
                self.park(now, i, vm, &why, out);
            }
            return;
        }
        if let Some(breaks) = quorum {
            // A member running again changes nothing the refusal watches: try at every pass.
            self.hosts[i].leftover = Leftover::Waiting;
            self.set_condition(
                format!("host/{host}"),
                Reason::Evacuating,
                format!("waiting: its VMs that cannot move would stop with it, and {breaks}"),
                now,
            );
        }
        for (vm, why) in stuck {
            self.set_condition(
                format!("vm/{vm}"),
                Reason::WaitingForCapacity,
                format!("cannot leave host {host} for maintenance: {why}"),
                now,
            );
        }
        for m in moves {
            self.issue_applied(m, out);
        }
        self.continue_evacuation(now, i, out);
    }

    /// Why stopping `vms` now would leave a guest cluster's etcd without a majority of
    /// its members running, if it would. An etcd of one or two members loses its majority
    /// with any member down: a maintenance cannot wait for that, so it does not count.
    fn stops_break_quorum(&self, vms: &[&str]) -> Option<String> {
        self.clusters().find_map(|topo| {
            let members = &topo.control_plane.nodes;
            let majority = members.len() / 2 + 1;
            if members.len() < 3 || !members.iter().any(|m| vms.contains(&m.as_str())) {
                return None;
            }
            let running = members
                .iter()
                .filter(|m| !vms.contains(&m.as_str()))
                .filter(|m| self.vm_phase(m) == Some(VmPhase::Running))
                .count();
            (running < majority).then(|| {
                format!(
                    "cluster {} would keep {running} of {} etcd members running, fewer than a majority ({majority})",
                    topo.name,
                    members.len()
                )
            })
        })
    }

    /// Stops `vm`, which no host other than `i` may take (`why`), for host `i`'s
    /// maintenance: a planned disruption, so no health check replaces it meanwhile.
    fn park(&mut self, now: Time, i: usize, vm: String, why: &str, out: &mut Vec<Command>) {
        let Some(v) = &mut self.vms else {
            return;
        };
        v.parked.insert(vm.clone());
        self.set_phase(&vm, VmPhase::Down);
        let host = self.hosts[i].name.clone();
        self.set_condition(
            format!("vm/{vm}"),
            Reason::StoppedForMaintenance,
            format!("stopping for the maintenance of host {host}: {why}"),
            now,
        );
        self.issue(
            CommandKind::StopVm {
                vm: vm.clone(),
                host,
            },
            Pending::Park { vm, host: i },
            out,
        );
    }

    /// A VM stopped for host `i`'s maintenance: it leaves the placement and waits for room
    /// (host `i`, once back), and the host goes down once nothing else is on it.
    fn parked(&mut self, now: Time, vm: String, i: usize, out: &mut Vec<Command>) {
        let h = HostId(i as u32);
        // HA may have taken it meanwhile (the host failed during the stop): then only the
        // evacuation goes on.
        let still_there = self.vms.as_mut().is_some_and(|v| {
            let Some(&id) = v.ids.get(&vm).filter(|&&id| v.pool.host_of(id) == Some(h)) else {
                return false;
            };
            let Ok(spec) = v.pool.remove(id) else {
                return false;
            };
            v.ids.remove(&vm);
            let outside = v.outside_zone.remove(&vm);
            let waiting = Waiting {
                zone: outside.or(self.zones.get(i).copied()),
                outside: outside.is_some(),
                beside_group: v.beside_group.contains(&vm),
            };
            v.waiting.insert(vm.clone(), waiting);
            v.stranded.insert(vm.clone(), spec);
            true
        });
        if still_there {
            self.set_phase(&vm, VmPhase::Down);
            let host = self.hosts[i].name.clone();
            self.set_condition(
                format!("vm/{vm}"),
                Reason::StoppedForMaintenance,
                format!(
                    "stopped for the maintenance of host {host}, no other host may take it; it starts again where room returns first in what its placement allows ({host} once back)"
                ),
                now,
            );
        }
        self.continue_evacuation(now, i, out);
    }

    fn issue_migrations(&mut self, moves: Vec<Migration>, out: &mut Vec<Command>) {
        for m in moves {
            let Some(v) = &mut self.vms else {
                return;
            };
            if v.pool.migrate(m).is_err() {
                continue;
            }
            self.issue_applied(m, out);
        }
    }

    /// Issues a migration already made in the desired placement.
    fn issue_applied(&mut self, m: Migration, out: &mut Vec<Command>) {
        let Some(v) = &mut self.vms else {
            return;
        };
        let Some(name) = v.pool.vm(m.vm).map(|s| s.name.clone()) else {
            return;
        };
        let from = v.pool.pool().host(m.from).name.clone();
        let to = v.pool.pool().host(m.to).name.clone();
        v.phase.insert(name.clone(), VmPhase::Migrating);
        self.drs_dirty = true;
        self.issue(
            CommandKind::MigrateVm {
                vm: name.clone(),
                from,
                to,
            },
            Pending::Migrate {
                vm: name,
                from: m.from,
                to: m.to,
                reverted: false,
            },
            out,
        );
    }

    /// When an evacuating host is empty and nothing migrates off it or stops on it, it goes
    /// down.
    fn continue_evacuation(&mut self, now: Time, i: usize, out: &mut Vec<Command>) {
        if self.hosts[i].maint != Maint::Evacuating {
            return;
        }
        let h = HostId(i as u32);
        // Cheap first: a host with anything allocated still holds a VM.
        let allocated = self
            .vms
            .as_ref()
            .is_some_and(|v| v.pool.used(h) != plinth_model::Resources::ZERO);
        if allocated || !self.vms_on(i).is_empty() {
            return;
        }
        let busy = self.pending.values().any(|f| match &f.pending {
            Pending::Migrate { from, .. } => *from == h,
            Pending::Park { host, .. } => *host == i,
            _ => false,
        });
        if busy {
            return;
        }
        if let Some(v) = &mut self.vms
            && v.pool.set_status(h, HostStatus::Maintenance).is_err()
        {
            return;
        }
        self.hosts[i].maint = Maint::Maintaining;
        self.sync_cordon(i);
        let host = self.hosts[i].name.clone();
        self.set_condition(
            format!("host/{host}"),
            Reason::InMaintenance,
            "emptied; in maintenance".into(),
            now,
        );
        self.issue(
            CommandKind::MaintainHost { host },
            Pending::Maintain { host: i },
            out,
        );
        self.next_maintenance(now, out);
    }

    /// No host is being emptied (one went down for maintenance, or came back): the
    /// maintenance queued first, of a host that is up, starts.
    fn next_maintenance(&mut self, now: Time, out: &mut Vec<Command>) {
        if self.hosts.iter().any(|h| h.maint == Maint::Evacuating) {
            return;
        }
        let next = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.health == Health::Up)
            .filter_map(|(i, h)| match h.maint {
                Maint::Queued { since } => Some((since, i)),
                _ => None,
            })
            .min();
        let Some((_, i)) = next else {
            return;
        };
        self.hosts[i].maint = Maint::None;
        self.start_maintenance(now, i, out);
        // The others wait for this one now.
        if self.hosts[i].maint == Maint::Evacuating {
            let queued: Vec<usize> = (0..self.hosts.len())
                .filter(|&q| matches!(self.hosts[q].maint, Maint::Queued { .. }))
                .collect();
            for q in queued {
                self.queued_condition(now, q, i);
            }
        }
    }

    /// Host `q`'s maintenance waits for host `i`'s evacuation: its condition says so.
    fn queued_condition(&mut self, now: Time, q: usize, i: usize) {
        let message = format!(
            "host {} is being emptied first (one host at a time); this one stays in service until then",
            self.hosts[i].name
        );
        let name = self.hosts[q].name.clone();
        self.set_condition(
            format!("host/{name}"),
            Reason::MaintenanceQueued,
            message,
            now,
        );
    }

    /// HA placed a VM on `host`: if it is being emptied, evacuate it again later.
    fn note_arrival(&mut self, host: &str) {
        if let Some(&i) = self.host_index.get(host)
            && self.hosts[i].maint == Maint::Evacuating
        {
            self.hosts[i].leftover = Leftover::Waiting;
        }
    }

    fn retry_stranded(&mut self, now: Time, out: &mut Vec<Command>) {
        if self.vms.as_ref().is_none_or(|v| v.stranded.is_empty()) {
            return;
        }
        let replaced = self.replaced_nodes();
        let Some(v) = &mut self.vms else {
            return;
        };
        // The nodes a rollout is replacing wait for it to delete them.
        let (kept, waiting): (Vec<VmSpec>, Vec<VmSpec>) = std::mem::take(&mut v.stranded)
            .into_values()
            .partition(|s| replaced.contains(&s.name));
        for spec in kept {
            v.stranded.insert(spec.name.clone(), spec);
        }
        let (zone_hosts, ha) = (&self.zone_hosts, &self.cfg.ha);
        let (ways, parked) = (&v.waiting, &v.parked);
        let ha::Retried {
            placed,
            waiting: still,
        } = ha::retry(&mut v.pool, waiting, |spec| {
            let w = ways.get(&spec.name).copied().unwrap_or_default();
            let planned = parked.contains(&spec.name);
            RestartScope {
                zone: w
                    .zone
                    .and_then(|z| zone_hosts.get(z.0 as usize))
                    .map_or(&[], Vec::as_slice),
                homes: &[],
                outside: ha.restart_outside_zone && w.may_leave_zone(planned),
                beside_group: ha.restart_beside_group && w.may_join_group(planned),
            }
        });
        let mut starts = Vec::new();
        for (id, h, name, broken) in placed {
            // This start's exceptions replace any an earlier restart made, and a VM stopped
            // for a maintenance starts again.
            let zone = v.waiting.remove(&name).and_then(|w| w.zone);
            match zone.filter(|_| broken.outside_zone) {
                Some(z) => v.outside_zone.insert(name.clone(), z),
                None => v.outside_zone.remove(&name),
            };
            if broken.beside_group {
                v.beside_group.insert(name.clone());
            } else {
                v.beside_group.remove(&name);
            }
            v.parked.remove(&name);
            v.ids.insert(name.clone(), id);
            starts.push((name, v.pool.pool().host(h).name.clone()));
        }
        for (spec, _) in still {
            v.stranded.insert(spec.name.clone(), spec);
        }
        for (vm, host) in starts {
            self.note_arrival(&host);
            self.restarting(
                now,
                &vm,
                format!("a host has room again; HA restarts it on {host}"),
            );
            self.relabel(&vm, &host, out);
            self.start_vm(vm, host, out);
        }
    }

    /// The remediation ladder's restart step, on VM `vm`'s condition: `why` it restarts
    /// where, and when the machine health check replaces it if it is not running by then.
    /// An exception HA made (outside its zone, beside its group) says that instead; the
    /// condition ends when the VM runs.
    fn restarting(&mut self, now: Time, vm: &str, why: String) {
        let excepted = self
            .vms
            .as_ref()
            .is_some_and(|v| v.outside_zone.contains_key(vm) || v.beside_group.contains(vm));
        if excepted {
            self.exception_condition(now, vm);
            return;
        }
        let next = self
            .health
            .values()
            .filter(|(node, _)| node == vm)
            .map(|&(_, at)| at)
            .min()
            .map_or_else(String::new, |at| {
                format!(
                    "; if it is still down in {}, the machine health check replaces it",
                    Span::until(now, at)
                )
            });
        self.set_condition(
            format!("vm/{vm}"),
            Reason::Restarting,
            format!("{why}{next}"),
            now,
        );
    }

    /// The condition of a VM HA restarted, started or moved: cleared, or naming the rule it
    /// breaks when HA restarted it outside its zone or beside a member of its placement
    /// group (an exception, healed by live migration).
    fn exception_condition(&mut self, now: Time, vm: &str) {
        let (outside, beside) = self.vms.as_ref().map_or((false, false), |v| {
            (v.outside_zone.contains_key(vm), v.beside_group.contains(vm))
        });
        let object = format!("vm/{vm}");
        let Some(host) = self.vm_host(vm).filter(|_| outside || beside) else {
            self.clear_condition(&object, now);
            return;
        };
        let (reason, message) = match (outside, beside) {
            (false, _) => (
                Reason::BesideGroup,
                format!(
                    "HA restarted it on {host}, beside a member of its placement group: no host the group allows could take it; it moves apart by live migration when one can"
                ),
            ),
            (true, false) => (
                Reason::OutsideZone,
                format!(
                    "HA restarted it on {host}, outside its zone: no host of its zone could take it; it moves back by live migration when one can"
                ),
            ),
            (true, true) => (
                Reason::OutsideZoneBesideGroup,
                format!(
                    "HA restarted it on {host}, outside its zone and beside a member of its placement group: no host its rules allow could take it; it moves by live migration when one can"
                ),
            ),
        };
        self.set_condition(object, reason, message, now);
    }

    /// Heals HA's exceptions: moves a VM restarted outside its zone back into it, or one
    /// restarted beside a member of its group apart, by one live migration per pass and
    /// none while another migration runs (a control-plane VM never moves beside another),
    /// to the best host of its zone (the whole pool without zones) that takes it under
    /// every rule and is not blocked. VMs that no longer exist are forgotten, and a VM
    /// whose group member left is no longer an exception.
    fn heal_exceptions(&mut self, now: Time, out: &mut Vec<Command>) {
        let in_flight = self
            .pending
            .values()
            .any(|f| matches!(f.pending, Pending::Migrate { .. }));
        let blocked = self.blocked_hosts();
        let Some(v) = &mut self.vms else {
            return;
        };
        v.outside_zone.retain(|vm, _| v.ids.contains_key(vm));
        v.waiting.retain(|vm, _| v.stranded.contains_key(vm));
        let apart: Vec<String> = v
            .beside_group
            .iter()
            .filter(|vm| v.ids.get(*vm).is_none_or(|&id| !v.pool.crowded(id)))
            .cloned()
            .collect();
        for vm in &apart {
            v.beside_group.remove(vm);
        }
        let mut moved = None;
        if !in_flight {
            let all: Vec<HostId> = (0..v.pool.pool().hosts().len() as u32)
                .map(HostId)
                .collect();
            let excepted = v.outside_zone.keys().chain(&v.beside_group);
            for vm in excepted {
                if v.phase.get(vm) != Some(&VmPhase::Running) {
                    continue;
                }
                let Some(&id) = v.ids.get(vm) else {
                    continue;
                };
                let Some(from) = v.pool.host_of(id) else {
                    continue;
                };
                // Its own zone, or the zone it runs in when only its group is broken.
                let zone = v
                    .outside_zone
                    .get(vm)
                    .or_else(|| self.zones.get(from.index()))
                    .and_then(|z| self.zone_hosts.get(z.0 as usize));
                let hosts = zone.unwrap_or(&all);
                let targets = hosts.iter().copied().filter(|h| !blocked.contains(h));
                if let Ok(m) = v.pool.migrate_first(id, from, targets) {
                    moved = Some(m);
                    break;
                }
            }
        }
        // Their exception condition ends; any other (down, locating) says more and stays.
        for vm in apart {
            let excepted = self
                .condition(&format!("vm/{vm}"))
                .is_some_and(|c| c.reason.is_exception());
            if excepted {
                self.exception_condition(now, &vm);
            }
        }
        if let Some(m) = moved {
            self.issue_applied(m, out);
        }
    }

    /// The evacuating hosts a DRS pass tries again: those waiting for VMs to become movable
    /// or for a slot, and those refused for lack of room once that can have changed
    /// ([`maintenance::Refusal::lapsed`], which renews the others).
    fn evacuations_due(&mut self) -> Vec<usize> {
        let refused = self
            .hosts
            .iter()
            .any(|h| h.maint == Maint::Evacuating && matches!(h.leftover, Leftover::Refused(_)));
        let blocked = if refused {
            self.blocked_hosts()
        } else {
            Vec::new()
        };
        let mut due = Vec::new();
        for (i, h) in self.hosts.iter_mut().enumerate() {
            if h.maint != Maint::Evacuating {
                continue;
            }
            let zone = self.zones.get(i).map_or(0, |z| z.0 as usize);
            let now_due = match &mut h.leftover {
                Leftover::None => false,
                Leftover::Waiting => true,
                Leftover::Refused(r) => self.vms.as_ref().is_some_and(|v| {
                    r.lapsed(
                        &v.pool,
                        HostId(i as u32),
                        self.zone_hosts.get(zone).map_or(&[], Vec::as_slice),
                        &blocked,
                    )
                }),
            };
            if now_due {
                due.push(i);
            }
        }
        due
    }

    /// Tries the evacuations due again, then balances when DRS is on and the placement
    /// changed since the last balanced pass. Whether it had anything to do: an idle pass
    /// (no evacuation due, nothing to balance) changes nothing.
    fn drs_pass(&mut self, now: Time, out: &mut Vec<Command>) -> bool {
        // A queued maintenance whose host was not up when its turn came starts now.
        self.next_maintenance(now, out);
        let due = self.evacuations_due();
        let exceptions = self
            .vms
            .as_ref()
            .is_some_and(|v| !v.outside_zone.is_empty() || !v.beside_group.is_empty());
        if due.is_empty() && !exceptions && !(self.cfg.drs.enabled && self.drs_dirty) {
            return false;
        }
        for i in due {
            self.evacuate(now, i, out);
        }
        if exceptions {
            self.heal_exceptions(now, out);
        }
        if !self.cfg.drs.enabled || !self.drs_dirty {
            return true;
        }
        let in_flight = self
            .pending
            .values()
            .any(|f| matches!(f.pending, Pending::Migrate { .. }));
        if in_flight {
            return true;
        }
        if let Some(moves) = self.drs_moves() {
            self.issue_migrations(moves, out);
        }
        true
    }

    /// The moves of a DRS pass now that may start: the plan's, up to the first the role
    /// rule refuses against what is in flight with the moves before it; `None` without a
    /// pool. Marks DRS clean when the plan has no move.
    fn drs_moves(&mut self) -> Option<Vec<Migration>> {
        // A balanced pool has no move: known before the roles are looked up.
        let pool = &self.vms.as_ref()?.pool;
        if drs::balanced(drs::imbalance(pool), &self.cfg.drs) {
            self.drs_dirty = false;
            return Some(Vec::new());
        }
        let roles = self.roles();
        let plan = self.drs_plan(&roles)?;
        if plan.moves.is_empty() {
            self.drs_dirty = false;
            return Some(Vec::new());
        }
        let v = self.vms.as_ref()?;
        let mut issued: Vec<VmId> = v
            .phase
            .iter()
            .filter(|(_, p)| **p == VmPhase::Migrating)
            .filter_map(|(name, _)| v.ids.get(name).copied())
            .collect();
        let moves = plan
            .moves
            .into_iter()
            .take_while(|m| {
                let admitted = drs::admissible(&roles, &issued, m.vm);
                if admitted {
                    issued.push(m.vm);
                }
                admitted
            })
            .collect();
        Some(moves)
    }

    /// The DRS pass on the placement as it is now: only running VMs move, none off or onto
    /// a host that is blocked ([`Control::blocked_hosts`]); `None` without a pool.
    fn drs_plan(&self, roles: &drs::Roles) -> Option<drs::DrsPlan> {
        let blocked = self.blocked_hosts();
        let v = self.vms.as_ref()?;
        Some(drs::plan(
            &v.pool,
            &self.cfg.drs,
            roles,
            |id| {
                v.pool
                    .vm(id)
                    .is_some_and(|s| v.phase.get(&s.name) == Some(&VmPhase::Running))
                    && v.pool.host_of(id).is_some_and(|h| !blocked.contains(&h))
            },
            &blocked,
            &self.zones,
        ))
    }

    /// The control-plane members of the clusters this control plane manages.
    fn roles(&self) -> drs::Roles<'_> {
        let ids = self.vms.as_ref().map(|v| &v.ids);
        drs::Roles::of(self.clusters(), |name| {
            ids.and_then(|i| i.get(name)).copied()
        })
    }
}

/// Where one cluster stands ([`Control::cluster_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterState {
    /// Nodes the cluster has now (control plane and pools).
    pub nodes: u32,
    /// Of them, the node VMs running.
    pub running: u32,
    /// A creation, a scale or a rollout is under way or queued.
    pub busy: bool,
}

impl ClusterState {
    /// Built, every node running, nothing under way.
    pub fn ready(self) -> bool {
        self.nodes > 0 && self.running == self.nodes && !self.busy
    }
}

/// A host as the control plane sees it ([`Control::host_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HostState {
    /// Heard from, in service.
    Up,
    /// Heard from, in maintenance (evacuating, draining or maintained).
    Maintenance,
    /// Its heartbeats stopped; not yet declared failed.
    Silent,
    /// Declared failed; being fenced.
    Fencing,
    /// Failed: fenced, or known dead by the self-fence rule, or its fence failed.
    Failed,
}

impl std::fmt::Display for HostState {
    /// The state as the API reports it (`up`, `maintenance`, …: its serde name).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Maintenance => "maintenance",
            Self::Silent => "silent",
            Self::Fencing => "fencing",
            Self::Failed => "failed",
        })
    }
}
