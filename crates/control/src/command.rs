//! The vocabulary between the control plane and a driver: commands out, observations in,
//! and conditions that say why something waits.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// Identifies one command; a driver answers each id at most once (an answer may be lost:
/// the control plane times the command out at its deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandId(pub u64);

/// One life of a host: its agent counts its boots (kept on the host's disk; Linux's random
/// `/proc/sys/kernel/random/boot_id` cannot order lives). A message with a lower boot than
/// the last one heard is from the host's previous life and is ignored; a higher one means
/// the host rebooted, so nothing it ran before still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BootId(pub u64);

/// A node pool by name, as commands carry it and logs record it: `cluster/pool` on the
/// wire (`cluster/control-plane` for a control plane's members). Cluster and pool names are
/// DNS labels, so the one `/` separates them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolName {
    /// The cluster.
    pub cluster: String,
    /// The pool, or [`crate::upgrade::CONTROL_PLANE`].
    pub pool: String,
}

impl PoolName {
    /// Pool `pool` of `cluster`.
    pub fn new(cluster: impl Into<String>, pool: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            pool: pool.into(),
        }
    }

    /// Whether it names the control plane's members.
    pub fn is_control_plane(&self) -> bool {
        self.pool == crate::upgrade::CONTROL_PLANE
    }
}

impl fmt::Display for PoolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.pool)
    }
}

impl std::str::FromStr for PoolName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((cluster, pool))
                if !cluster.is_empty() && !pool.is_empty() && !pool.contains('/') =>
            {
                Ok(Self::new(cluster, pool))
            }
            _ => Err(format!("`{s}` is not a pool: expected `cluster/pool`")),
        }
    }
}

impl Serialize for PoolName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PoolName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a command failed. The kind decides what the control plane may assume afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "camelCase")]
pub enum CommandError {
    /// The target could not be reached; the command was not carried out.
    #[error("unreachable")]
    Unreachable,
    /// The target received the command and declined it, or it aborted with nothing
    /// changed; the reason is the target's.
    #[error("refused: {reason}")]
    Refused {
        /// The target's words.
        reason: String,
    },
    /// No answer came before the command's deadline (set by the control plane itself).
    /// It may or may not have taken effect.
    #[error("timed out")]
    TimedOut,
    /// The command was sent but the connection was lost before its answer: it may or may
    /// not have taken effect.
    #[error("outcome unknown: {reason}")]
    OutcomeUnknown {
        /// What the driver saw.
        reason: String,
    },
}

impl CommandError {
    /// True when the command certainly had no effect (it may be retried as it was);
    /// false when it may have taken effect, so the real state must be observed first.
    pub fn nothing_changed(&self) -> bool {
        matches!(self, Self::Unreachable | Self::Refused { .. })
    }
}

/// An action for the driver to carry out. Objects are named as in the manifests: hosts and
/// servers by inventory name, VMs and nodes by `<cluster>-<pool>-<i>` (a VM node and its
/// Kubernetes node share the name; on bare metal the node is named after its server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CommandKind {
    /// Boot `vm` on `host` (clone if needed); completes when its node is Ready.
    StartVm {
        /// VM name.
        vm: String,
        /// Target host.
        host: String,
    },
    /// Clone a new node VM of `pool` from its template onto `host` and boot it; completes
    /// when its node is Ready (the control plane's own VMs join etcd instead).
    CreateVm {
        /// VM name (= node name).
        vm: String,
        /// Target host.
        host: String,
        /// The pool it joins (the control plane's for a control-plane member).
        pool: PoolName,
    },
    /// Power `vm` off and delete it; its node leaves the cluster.
    DeleteVm {
        /// VM name.
        vm: String,
        /// The host it runs on, if the control plane knows one.
        host: Option<String>,
    },
    /// Power `vm` off on `host`.
    StopVm {
        /// VM name.
        vm: String,
        /// Host it runs on.
        host: String,
    },
    /// Live-migrate `vm`; completes at switch-over, fails if either host is lost.
    MigrateVm {
        /// VM name.
        vm: String,
        /// Source host.
        from: String,
        /// Target host.
        to: String,
    },
    /// Power `host` off through its BMC so none of its VMs can still run; may fail.
    FenceHost {
        /// Host name.
        host: String,
    },
    /// Maintain an emptied host or drained server (patch, reboot); completes when it is
    /// back and heartbeating.
    MaintainHost {
        /// Host or server name.
        host: String,
    },
    /// Mark a Kubernetes node unschedulable.
    Cordon {
        /// Node name.
        node: String,
    },
    /// Mark a Kubernetes node schedulable again.
    Uncordon {
        /// Node name.
        node: String,
    },
    /// Set a node's physical-topology labels (`plinth.dev/host`, `plinth.dev/rack`) to
    /// those of `host`, where its VM now runs (issued on every live migration and HA
    /// restart). Its zone label never changes: a node VM stays inside its zone.
    LabelNode {
        /// Node name (= its VM).
        node: String,
        /// The host its VM runs on.
        host: String,
    },
    /// Taint a node `node.kubernetes.io/out-of-service=nodeshutdown:NoExecute`: its machine
    /// is confirmed off (fenced, or known dead), so Kubernetes deletes its pods at once and
    /// detaches their volumes (non-graceful node shutdown) instead of waiting out the
    /// not-ready toleration; they start wherever they fit.
    OutOfService {
        /// Node name.
        node: String,
    },
    /// Remove the out-of-service taint: the node's VM or server runs again.
    InService {
        /// Node name.
        node: String,
    },
    /// Cordon a node and evict its pods (Kubernetes reschedules them where they fit).
    Drain {
        /// Node name.
        node: String,
    },
    /// Install an OS on a bare-metal server and join it as a node of `pool`.
    ProvisionServer {
        /// Server name.
        server: String,
        /// The pool it joins.
        pool: PoolName,
    },
    /// Delete a drained bare-metal node from its cluster and power its server off; the
    /// server becomes a spare.
    RemoveNode {
        /// Node (= server) name.
        node: String,
    },
    /// Reimage a bare-metal server in place (upgrades).
    ReimageServer {
        /// Server name.
        server: String,
    },
    /// Ask `host` which VMs it runs: answered by an [`Observation::Inventory`], then the
    /// command's completion.
    ReportInventory {
        /// Host name.
        host: String,
    },
}

impl CommandKind {
    /// The object the command acts on (used for ordering and conditions).
    pub fn object(&self) -> &str {
        match self {
            Self::StartVm { vm, .. }
            | Self::CreateVm { vm, .. }
            | Self::DeleteVm { vm, .. }
            | Self::StopVm { vm, .. }
            | Self::MigrateVm { vm, .. } => vm,
            Self::FenceHost { host }
            | Self::MaintainHost { host }
            | Self::ReportInventory { host } => host,
            Self::Cordon { node }
            | Self::Uncordon { node }
            | Self::Drain { node }
            | Self::LabelNode { node, .. }
            | Self::OutOfService { node }
            | Self::InService { node }
            | Self::RemoveNode { node } => node,
            Self::ProvisionServer { server, .. } | Self::ReimageServer { server } => server,
        }
    }
}

/// A command with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Answered by at most one `CommandCompleted` or `CommandFailed`.
    pub id: CommandId,
    /// When the control plane stops waiting for its answer and counts it timed out
    /// ([`crate::Deadlines::of`]). A driver gives whatever carries it out no later one.
    #[serde(default)]
    pub deadline: Time,
    /// What to do.
    #[serde(flatten)]
    pub kind: CommandKind,
}

/// What a driver tells the control plane, stamped with `now` by the `handle` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Observation {
    /// `host` was heard from. Drivers may coalesce a run of heartbeats: only the first one
    /// after a [`Observation::HeartbeatMissed`] must be delivered.
    Heartbeat {
        /// Host or server name.
        host: String,
        /// The life of the host that sent it.
        boot: BootId,
    },
    /// What `host` runs, reported by its agent when it connects and when asked
    /// ([`CommandKind::ReportInventory`]). The control plane reconciles it against where
    /// it wants each VM: a VM reported where it should not run is stopped, a VM missing
    /// from the host it should run on is started.
    Inventory {
        /// Host name.
        host: String,
        /// The life of the host that sent it.
        boot: BootId,
        /// The VMs it runs.
        vms: Vec<String>,
    },
    /// The driver's transport saw no heartbeat from `host` for one interval; it was last
    /// heard at `last_heard`. The failure is declared by the control plane, not the driver.
    HeartbeatMissed {
        /// Host or server name.
        host: String,
        /// The time of its last heartbeat.
        last_heard: Time,
    },
    /// A command finished.
    CommandCompleted {
        /// Its id.
        id: CommandId,
    },
    /// A command failed.
    CommandFailed {
        /// Its id.
        id: CommandId,
        /// Why, as the driver saw it.
        error: CommandError,
    },
    /// `next_wakeup` has passed.
    Timer,
    /// Desired state: put `host` into maintenance (evacuate, maintain, return).
    MaintenanceRequested {
        /// Host or server name.
        host: String,
    },
    /// Desired state: roll every node of `cluster` (control plane first, then its pools in
    /// order) to a new Kubernetes version or OS image. Queued behind a rollout in progress.
    UpgradeRequested {
        /// Cluster name.
        cluster: String,
        /// What changes.
        upgrade: UpgradeKind,
    },
    /// Desired state: create `cluster`, declared with empty pools (`PoolTopology::create`
    /// says what each gets): the control plane first, then the pools.
    ClusterRequested {
        /// Cluster name.
        cluster: String,
    },
    /// Desired state: node pool `pool` of `cluster` should have `replicas` nodes.
    ScaleRequested {
        /// Cluster name.
        cluster: String,
        /// Pool name.
        pool: String,
        /// Nodes wanted.
        replicas: u32,
    },
}

/// Everything one [`crate::Control::handle`] step produced, in the order a driver must
/// act on it: persist `conditions` and `events` (and, for a durable control plane, the
/// state they describe) *before* sending any of `commands` — raft-rs's rule: a command
/// sent whose cause was not persisted is repeated or lost after a crash.
#[must_use = "a step's commands must be carried out and its conditions and events kept"]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Records changed by the step, for a durable control plane's store
    /// ([`crate::Control::durable`]); empty otherwise. Written before `commands` are sent.
    pub writes: Vec<crate::store::Write>,
    /// Commands to carry out.
    pub commands: Vec<Command>,
    /// Conditions set or cleared, in order.
    pub conditions: Vec<ConditionChange>,
    /// Milestones reached, in order.
    pub events: Vec<ControlEvent>,
}

impl Ready {
    /// True when the step produced nothing.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
            && self.conditions.is_empty()
            && self.events.is_empty()
            && self.writes.is_empty()
    }
}

/// What a rolling upgrade changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UpgradeKind {
    /// The Kubernetes version.
    Kubernetes,
    /// The node OS image (patching).
    Os,
}

impl fmt::Display for UpgradeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kubernetes => "kubernetes",
            Self::Os => "os",
        })
    }
}

/// How a node was replaced during a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReplaceMethod {
    /// A new node (VM clone, or a spare server installed) joined before the old one left.
    Surge,
    /// The old node was drained and deleted first, then a new VM created (maxUnavailable).
    Recreate,
    /// The server was drained and reimaged in place.
    Reimage,
    /// Machine health remediation: a node not Ready for too long (and not restarted by
    /// HA) was replaced by a new one.
    Remediate,
}

/// Milestones the control plane reached, for the driver's event log (a real driver keeps
/// them as an audit trail). Conditions say why something waits; these say what happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum ControlEvent {
    /// A rolling upgrade of `cluster` began.
    #[serde(rename_all = "camelCase")]
    UpgradeStarted {
        /// Cluster.
        cluster: String,
        /// What it changes.
        kind: UpgradeKind,
        /// Nodes to replace or reimage, control plane included.
        nodes: u32,
    },
    /// Every node of `cluster` runs the new version or image.
    #[serde(rename_all = "camelCase")]
    UpgradeFinished {
        /// Cluster.
        cluster: String,
        /// What it changed.
        kind: UpgradeKind,
    },
    /// Every node of a cluster created by `ClusterRequested` is up.
    #[serde(rename_all = "camelCase")]
    ClusterReady {
        /// Cluster.
        cluster: String,
    },
    /// One node of a rollout is done.
    #[serde(rename_all = "camelCase")]
    NodeReplaced {
        /// Cluster.
        cluster: String,
        /// `control-plane` or the node pool.
        pool: String,
        /// The node that left (or was reimaged).
        old: String,
        /// The node that replaced it (the same name when reimaged in place).
        new: String,
        /// How.
        method: ReplaceMethod,
    },
}

/// Why an object is waiting, in words a user can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// A silent host has not been fenced, so its VMs must not start elsewhere.
    WaitingForFence,
    /// A host is silent; its VMs wait for the failure to be declared or the host to return.
    WaitingForHost,
    /// No host has room (capacity, placement group policy or admission reserve).
    WaitingForCapacity,
    /// A failed bare-metal server waits for its repair.
    WaitingForRepair,
    /// A host's maintenance waits for another host's evacuation to end.
    MaintenanceQueued,
    /// A host is being emptied for maintenance.
    Evacuating,
    /// A host is in maintenance.
    InMaintenance,
    /// A VM no other host may take stopped with its host for the host's maintenance (a
    /// planned disruption: no health check replaces it); it starts again where room
    /// returns first.
    StoppedForMaintenance,
    /// A cluster is being rolled to a new version or image.
    Upgrading,
    /// A drain waits: evicting the next pod would break a PodDisruptionBudget.
    WaitingForDisruptionBudget,
    /// A drain failed; what needed it (a rollout, a maintenance, a scale-down) waits and
    /// the drain is tried again with backoff. Nothing is deleted or powered off meanwhile.
    DrainFailed,
    /// A command failed and is tried again with backoff.
    Retrying,
    /// A command's outcome is unknown: where the VM runs is being asked of its hosts
    /// before anything else is done with it.
    Locating,
    /// A VM runs outside its zone (a zone exception): HA restarted it there because no
    /// host of its zone had room; it moves back when one has.
    OutsideZone,
    /// A VM runs beside a member of its strict placement group (a spread exception): HA
    /// restarted it there because no host the group allows had room; it moves apart when
    /// one has.
    BesideGroup,
    /// Both at once: HA restarted it outside its zone and beside a member of its strict
    /// placement group, as no host either rule allows had room; it moves when one has.
    OutsideZoneBesideGroup,
    /// HA restarts a VM whose host failed (the ladder's restart step); the message says
    /// where, why and what follows if it does not run.
    Restarting,
    /// The machine health check replaces a node that did not run again in time (the
    /// ladder's last step); set on the new node until it runs.
    Replacing,
}

impl Reason {
    /// Whether the condition records a placement exception HA made (outside its zone,
    /// beside its group, or both), healed by live migration.
    #[must_use]
    pub fn is_exception(self) -> bool {
        matches!(
            self,
            Self::OutsideZone | Self::BesideGroup | Self::OutsideZoneBesideGroup
        )
    }

    /// Whether the exception it records puts the VM outside its zone.
    #[must_use]
    pub fn is_outside_zone(self) -> bool {
        matches!(self, Self::OutsideZone | Self::OutsideZoneBesideGroup)
    }

    /// Whether the exception it records puts the VM beside a member of its group.
    #[must_use]
    pub fn is_beside_group(self) -> bool {
        matches!(self, Self::BesideGroup | Self::OutsideZoneBesideGroup)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WaitingForFence => "waiting for fence",
            Self::WaitingForHost => "waiting for host",
            Self::WaitingForCapacity => "waiting for capacity",
            Self::WaitingForRepair => "waiting for repair",
            Self::MaintenanceQueued => "maintenance queued",
            Self::Evacuating => "evacuating",
            Self::InMaintenance => "in maintenance",
            Self::StoppedForMaintenance => "stopped for maintenance",
            Self::Upgrading => "upgrading",
            Self::WaitingForDisruptionBudget => "waiting for disruption budget",
            Self::DrainFailed => "drain failed",
            Self::Retrying => "retrying",
            Self::Locating => "locating",
            Self::OutsideZone => "outside its zone",
            Self::BesideGroup => "beside its group",
            Self::OutsideZoneBesideGroup => "outside its zone, beside its group",
            Self::Restarting => "restarting",
            Self::Replacing => "replacing",
        })
    }
}

/// Why one object waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `vm/<name>`, `host/<name>`, `node/<name>`, `cluster/<name>` or
    /// `pool/<cluster>/<pool>`.
    pub object: String,
    /// The short reason.
    pub reason: Reason,
    /// The details: what was tried and what would unblock it.
    pub message: String,
    /// When it started waiting.
    pub since: Time,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.object, self.reason, self.message)
    }
}

/// A condition set or cleared, for the driver's event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum ConditionChange {
    /// Set (or replaced).
    Set(Condition),
    /// Cleared.
    Cleared {
        /// The object.
        object: String,
        /// When.
        at: Time,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool is `cluster/pool` on the wire, one way round and back; anything else is
    /// refused with what was expected.
    #[test]
    fn a_pool_name_is_cluster_slash_pool_on_the_wire() {
        let pool = PoolName::new("apps", "workers");
        assert_eq!(
            serde_json::to_string(&pool).expect("serialize"),
            "\"apps/workers\""
        );
        assert_eq!(
            serde_json::from_str::<PoolName>("\"apps/workers\"").expect("parse"),
            pool
        );
        assert!(PoolName::new("apps", crate::upgrade::CONTROL_PLANE).is_control_plane());
        for bad in ["apps", "/workers", "apps/", "a/b/c", ""] {
            let err = bad.parse::<PoolName>().expect_err(bad);
            assert!(err.contains("expected `cluster/pool`"), "{err}");
        }
    }
}
