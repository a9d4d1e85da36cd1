//! The event log's schema: one serde enum, [`Event`], shared by every writer (the
//! simulator now, the real QEMU driver later) and every reader (compare).
//!
//! A log is JSON Lines: one [`Record`] per line, `{"t":…,"event":"…",…}` — `t` is
//! milliseconds since the run's start, `event` the variant's camelCase name, then the
//! variant's fields in declaration order (read them by name). The first line is always a
//! [`Header`]: the format version, the Plinth version, the digest of the input, the seed,
//! the duration, the design and whether the log comes from a simulation or a real run, so
//! a reader can check a log belongs to the run it is read for ([`LogReader`]). The last
//! line is a [`Event::Digest`] of every line before it, so a log cut short or edited is
//! refused.
//!
//! Writers stream: a [`Sink`] takes each record as it is produced ([`LogWriter`] writes
//! it as a line; a reader's fold can take it typed), so no log is held whole in memory.
//!
//! This crate owns the schema and its line adapters over `io::Write` / `io::BufRead`; it
//! must not open files or know how a writer decides what to log. The rustdoc of each
//! variant is the reference for what it means and when it is written.

mod digest;
mod read;
mod write;

use std::borrow::Cow;
use std::io;

pub use digest::{InputDigest, LogDigest};
pub use plinth_control::{Command, CommandId, ConditionChange, ReplaceMethod, UpgradeKind};
pub use plinth_model::kinds::environment::EnvironmentType;
pub use plinth_model::kinds::scenario::TimelineAction;
pub use read::{Difference, Expected, LogReader};
use serde::{Deserialize, Serialize};
use thiserror::Error;
pub use write::{LogWriter, Sink};

/// The version of the format this crate writes and reads. Any change a reader of the
/// previous version would misread (a renamed or retyped field, a changed meaning) raises
/// it; a reader refuses logs of another version.
///
/// Version 2 added the trailing `digest` line ([`Event::Digest`]).
pub const FORMAT_VERSION: u32 = 2;

/// The Plinth version written into headers.
pub const PLINTH_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A log that cannot be written or read.
#[derive(Debug, Error)]
pub enum EventsError {
    /// A line could not be read.
    #[error("line {line}: cannot be read")]
    Io {
        /// 1-based line number.
        line: usize,
        /// The I/O error.
        source: io::Error,
    },
    /// A line is not an event of this format.
    #[error("line {line}: not an event of format version {FORMAT_VERSION}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The log does not start with a header.
    #[error(
        "line {line}: the log does not start with a `header` event (an empty log, or one \
         written before format version 1): write it again with this Plinth"
    )]
    NoHeader {
        /// The first line that is not blank (or 0 for an empty log).
        line: usize,
    },
    /// The log is of another format version.
    #[error(
        "line {line}: the log is in format version {found}; this Plinth reads version \
         {FORMAT_VERSION}: write it again with this Plinth"
    )]
    FormatVersion {
        /// The header's line.
        line: usize,
        /// The version the header names.
        found: u64,
    },
    /// The header contradicts the run the log is read for.
    #[error("line {line}: the log is for another run: {}", read::list(.differences))]
    Mismatch {
        /// The header's line.
        line: usize,
        /// Every field that differs.
        differences: Vec<Difference>,
    },
    /// An event is earlier than the one before it: the log was reordered or edited.
    #[error(
        "line {line}: event at {t} ms comes after one at {previous} ms: the log is out of order (reordered or edited)"
    )]
    OutOfOrder {
        /// 1-based line number.
        line: usize,
        /// The event's time, ms.
        t: u64,
        /// The previous event's time, ms.
        previous: u64,
    },
    /// An event is later than the run's end as the header states it.
    #[error("line {line}: event at {t} ms is after the run's end at {duration_ms} ms")]
    AfterEnd {
        /// 1-based line number.
        line: usize,
        /// The event's time, ms.
        t: u64,
        /// The header's duration, ms.
        duration_ms: u64,
    },
    /// An event could not be serialized.
    #[error("cannot serialize an event")]
    Serialize {
        /// The serialization error.
        source: serde_json::Error,
    },
    /// A line could not be written.
    #[error("cannot write an event")]
    Write {
        /// The I/O error.
        source: io::Error,
    },
    /// A digest is not 64 hex digits.
    #[error("`{text}` is not a SHA-256 digest (64 hex digits)")]
    Digest {
        /// What was found (an excerpt).
        text: String,
    },
    /// The log ends without its trailing `digest` line: it was cut short.
    #[error(
        "line {line}: the log ends without its `digest` line: it was cut short (or written by a run that stopped)"
    )]
    NoDigest {
        /// The last line read.
        line: usize,
    },
    /// The trailing digest does not match the lines before it: the log was edited.
    #[error(
        "line {line}: the log's lines do not match its digest: it was edited after it was written"
    )]
    DigestMismatch {
        /// The `digest` line.
        line: usize,
    },
    /// A line follows the trailing `digest` line.
    #[error("line {line}: a line follows the log's `digest` line (logs joined or appended to)")]
    AfterDigest {
        /// The line.
        line: usize,
    },
    /// The writer was asked for a line it does not write itself (a `digest`).
    #[error("a `digest` line is written by the log writer only, when the log is finished")]
    DigestRecord,
}

/// One line of a log: when, and what. [`Record::write_to`] writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record<'a> {
    /// Milliseconds since the run's start (virtual in a simulation, wall clock in a real
    /// run).
    pub t: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event<'a>,
}

impl<'a> Record<'a> {
    /// `event` at `t` ms.
    pub fn new(t: u64, event: Event<'a>) -> Self {
        Self { t, event }
    }

    /// Writes the record as one JSON line, newline included. The line is the record's
    /// `Serialize` output, written without serde's detour for `#[serde(flatten)]` through
    /// a map: `{"t":…,` and then the event's own object after its opening brace (an
    /// internally tagged enum always opens with its tag). `tests/round_trip.rs` checks
    /// the two agree for every variant.
    pub fn write_to(&self, mut out: impl io::Write) -> Result<(), EventsError> {
        let io_err = |source| EventsError::Write { source };
        write!(out, "{{\"t\":{},", self.t).map_err(io_err)?;
        serde_json::to_writer(SkipFirst::new(&mut out), &self.event)
            .map_err(|source| EventsError::Serialize { source })?;
        out.write_all(b"\n").map_err(io_err)
    }
}

/// A writer that drops the opening `{` of the object written through it, and refuses
/// anything else as its first byte.
struct SkipFirst<W> {
    out: W,
    skipped: bool,
}

impl<W> SkipFirst<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            skipped: false,
        }
    }
}

impl<W: io::Write> io::Write for SkipFirst<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.skipped {
            return self.out.write(buf);
        }
        match buf.split_first() {
            None => Ok(0),
            Some((b'{', rest)) => {
                // The brace counts as written only once the rest is.
                let n = self.out.write(rest)?;
                self.skipped = true;
                Ok(n + 1)
            }
            Some(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an event must serialize as a JSON object",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Where a log comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The deterministic simulator (`plinth simulate`, `plinth compare`).
    Simulation,
    /// A real estate driven by the control plane.
    RealRun,
}

/// The first line of every log: which run it records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header<'a> {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The writer's Plinth version ([`PLINTH_VERSION`]).
    pub plinth_version: Cow<'a, str>,
    /// The input the run was made from.
    pub input: InputDigest,
    /// Seed of every random stream (a real run records the seed its scenario named).
    pub seed: u64,
    /// How long the run is, ms.
    pub duration_ms: u64,
    /// Which design runs.
    pub design: EnvironmentType,
    /// Simulation or real run.
    pub source: Source,
}

impl Header<'static> {
    /// The header this Plinth writes for a run.
    pub fn new(
        input: InputDigest,
        seed: u64,
        duration_ms: u64,
        design: EnvironmentType,
        source: Source,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            plinth_version: Cow::Borrowed(PLINTH_VERSION),
            input,
            seed,
            duration_ms,
            design,
            source,
        }
    }
}

/// A pod, named by its workload and its ordinal among the workload's replicas (0, 1, …):
/// `{"workload":"shop/default/StatefulSet/db","ordinal":2}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodName<'a> {
    /// The workload, `cluster/namespace/Kind/name`.
    pub workload: Cow<'a, str>,
    /// Which replica.
    pub ordinal: u32,
}

/// Why pods were evicted from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EvictionReason {
    /// The node lifecycle controller: the node stayed not Ready past its grace period and
    /// toleration.
    NodeNotReady,
    /// A drain (cordon and evict, honouring PodDisruptionBudgets).
    Drain,
    /// The node was tainted out of service (its machine confirmed off): its pods were
    /// deleted at once, without waiting out the toleration.
    OutOfService,
}

/// Why a pod left its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnbindReason {
    /// Evicted by the node lifecycle controller (its node was not Ready for too long).
    Evicted,
    /// Evicted by a drain of its node.
    Drained,
    /// Its node left the cluster (VM deleted, server removed).
    NodeRemoved,
}

/// Who asked for an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestedBy {
    /// A recurring schedule of the Scenario (`kubernetesUpgradesPerYear`,
    /// `osPatchingInterval`).
    Schedule,
    /// A step of the Scenario's operations timeline.
    Timeline,
}

/// One `hourly` line: the estate at the instant t = hour × 1 h (formula in
/// docs/architecture.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hourly {
    /// Hours since the start.
    pub hour: u64,
    /// Physical CPU of the hosts up, milli-CPU (threads × 1000).
    pub cpu_capacity_milli: u64,
    /// Physical memory of the hosts up, bytes.
    pub mem_capacity_bytes: u64,
    /// CPU allocated on them, milli-CPU (VMs' vCPU, or Ready nodes' allocatable).
    pub cpu_allocated_milli: u64,
    /// Memory allocated on them, bytes.
    pub mem_allocated_bytes: u64,
    /// CPU the workloads use at this hour of the day, milli-CPU.
    pub cpu_used_milli: u64,
    /// Memory the workloads use, bytes.
    pub mem_used_bytes: u64,
    /// Hosts or servers up.
    pub hosts_up: u32,
    /// Pods pending.
    pub pods_pending: u64,
}

/// Everything a log records. Names are as in the manifests: hosts and servers by inventory
/// name, VMs and nodes `<cluster>-<pool>-<i>`, pools `cluster/pool`, workloads
/// `cluster/namespace/Kind/name`. Durations are milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event<'a> {
    /// The first line of every log, at t = 0.
    Header(Header<'a>),
    /// The starting state, at t = 0, right after the header.
    #[serde(rename_all = "camelCase")]
    Start {
        /// Hosts (virtualized) or servers (bare metal).
        hosts: u32,
        /// VMs placed at the start.
        vms: u32,
        /// Kubernetes nodes.
        nodes: u32,
        /// Pods.
        pods: u32,
        /// VMs no host could take.
        vms_unplaced: Vec<Cow<'a, str>>,
    },
    /// The last line, at t = duration.
    #[serde(rename_all = "camelCase")]
    End {
        /// Host crashes over the run.
        host_failures: u32,
        /// Pod-minutes unavailable over the run.
        pod_minutes_unavailable: f64,
        /// VMs started while another copy ran: must be 0.
        second_copies: u32,
    },
    /// A host crashed (ground truth, not the control plane's view).
    #[serde(rename_all = "camelCase")]
    HostFailed {
        /// The host.
        host: Cow<'a, str>,
        /// How long its repair takes.
        repair_ms: u64,
        /// The VMs that ran on it.
        vms_lost: Vec<Cow<'a, str>>,
    },
    /// A rack power event: every host of the rack that was up goes down (each then has
    /// its own `hostFailed`).
    #[serde(rename_all = "camelCase")]
    RackFailed {
        /// The rack.
        rack: Cow<'a, str>,
        /// Its hosts that were up.
        hosts: Vec<Cow<'a, str>>,
        /// How long the repair takes.
        repair_ms: u64,
    },
    /// A host's repair ended (or a fenced host was power-cycled back).
    HostRepaired {
        /// The host.
        host: Cow<'a, str>,
    },
    /// The control plane submitted a command: its `id`, `kind` (camelCase) and the kind's
    /// fields.
    Command(Cow<'a, Command>),
    /// A command completed.
    Completed {
        /// Its id.
        id: CommandId,
    },
    /// A command failed.
    Failed {
        /// Its id.
        id: CommandId,
        /// Why, as the driver saw it.
        reason: Cow<'a, str>,
    },
    /// A condition set (`change: set`, with `object`, `reason`, `message`, `since`) or
    /// cleared (`change: cleared`, with `object`, `at`): the control plane's, and the
    /// simulated Kubernetes' `node/<n>` `waitingForDisruptionBudget`.
    Condition(Cow<'a, ConditionChange>),
    /// A node's VM or server stopped.
    NodeNotReady {
        /// The node.
        node: Cow<'a, str>,
        /// Pods bound to it.
        pods: u32,
    },
    /// A node is Ready again (or for the first time).
    NodeReady {
        /// The node.
        node: Cow<'a, str>,
    },
    /// A node joined a pool (a new VM, an installed spare server).
    NodeAdded {
        /// The node.
        node: Cow<'a, str>,
        /// Its pool.
        pool: Cow<'a, str>,
    },
    /// A node left its pool (VM deleted, server removed).
    #[serde(rename_all = "camelCase")]
    NodeRemoved {
        /// The node.
        node: Cow<'a, str>,
        /// Its pool.
        pool: Cow<'a, str>,
        /// Pods bound elsewhere.
        rescheduled: u32,
        /// Pods left pending.
        pending_for_capacity: u32,
    },
    /// Pods evicted from a node in one step.
    #[serde(rename_all = "camelCase")]
    PodsEvicted {
        /// The node.
        node: Cow<'a, str>,
        /// By whom.
        reason: EvictionReason,
        /// Pods bound elsewhere.
        rescheduled: u32,
        /// Pods left pending.
        pending_for_capacity: u32,
        /// Pods with local volumes that stay bound and wait for the node.
        waiting_for_node: u32,
    },
    /// Pending pods of a cluster were bound when room appeared.
    PodsScheduled {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// How many.
        pods: u32,
    },
    /// At t = 0: pods no node can take.
    PodsPending {
        /// How many.
        pods: u32,
        /// Why, in the scheduler's words.
        reason: Cow<'a, str>,
    },
    /// A pod was bound to a node: at t = 0 one line per pod placed, then on every
    /// (re)scheduling.
    PodBound {
        /// The pod.
        pod: PodName<'a>,
        /// The node.
        node: Cow<'a, str>,
    },
    /// A pod was unbound from its node (pods with local volumes that wait for their node
    /// stay bound).
    PodUnbound {
        /// The pod.
        pod: PodName<'a>,
        /// The node it left.
        node: Cow<'a, str>,
        /// Why.
        reason: UnbindReason,
    },
    /// A workload's available pods changed (and every workload's count at t = 0).
    WorkloadAvailability {
        /// The workload.
        workload: Cow<'a, str>,
        /// Pods available.
        available: u32,
        /// Pods desired.
        desired: u32,
    },
    /// A host maintenance was asked for.
    MaintenanceRequested {
        /// The host.
        host: Cow<'a, str>,
        /// By whom.
        by: RequestedBy,
    },
    /// A host patching wave starts: one maintenance per host, spaced.
    PatchWave {
        /// Its number, from 1.
        wave: u64,
        /// Hosts it patches.
        hosts: u32,
    },
    /// A requested maintenance returned.
    #[serde(rename_all = "camelCase")]
    MaintenanceFinished {
        /// The host.
        host: Cow<'a, str>,
        /// Pods made unavailable by its drain or by the host going down (0 when live
        /// migration kept everything running).
        pods_disrupted: u32,
    },
    /// A rollout was asked for.
    UpgradeRequested {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// What changes.
        kind: UpgradeKind,
        /// By whom.
        by: RequestedBy,
        /// The target version, when a timeline step names one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<Cow<'a, str>>,
    },
    /// A rollout began (after any rollout of the cluster in progress).
    UpgradeStarted {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// What changes.
        kind: UpgradeKind,
        /// Nodes to replace or reimage, control plane included.
        nodes: u32,
    },
    /// One node of a rollout is done, or a node was remediated by machine health.
    NodeReplaced {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// `control-plane` or the pool's name.
        pool: Cow<'a, str>,
        /// The node that left (or was reimaged).
        old: Cow<'a, str>,
        /// The node that replaced it (= `old` when reimaged in place).
        new: Cow<'a, str>,
        /// How.
        method: ReplaceMethod,
    },
    /// A timeline `scalePool` step.
    ScaleRequested {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// The pool's name.
        pool: Cow<'a, str>,
        /// Nodes wanted.
        replicas: u32,
        /// By whom.
        by: RequestedBy,
    },
    /// A timeline `addCluster` step.
    ClusterRequested {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// By whom.
        by: RequestedBy,
    },
    /// Every node of an added cluster is up; its workloads are deployed.
    #[serde(rename_all = "camelCase")]
    ClusterReady {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// Since its request.
        duration_ms: u64,
    },
    /// A bare-metal reimage completed.
    #[serde(rename_all = "camelCase")]
    Reimaged {
        /// The server.
        server: Cow<'a, str>,
        /// How long it took.
        duration_ms: u64,
    },
    /// Every node of a cluster runs the new version or image. The shortfall of a worker
    /// pool is (nodes it had at the start − member nodes Ready and not cordoned), never
    /// below 0.
    #[serde(rename_all = "camelCase")]
    UpgradeFinished {
        /// The cluster.
        cluster: Cow<'a, str>,
        /// What changed.
        kind: UpgradeKind,
        /// From start to finish.
        duration_ms: u64,
        /// ∫ Σ shortfall dt over the rollout, node-ms.
        node_ms_unavailable: u64,
        /// ∫ Σ shortfall × one node's allocatable milli-CPU dt (core-hours lost =
        /// cpuMsLost / 1000 / 3.6e6).
        cpu_ms_lost: u64,
        /// The peak of Σ shortfall.
        max_nodes_unavailable: u64,
    },
    /// Fewer than a majority (`replicas / 2 + 1` of the declared members) of a cluster's
    /// control-plane members run.
    QuorumLost {
        /// The cluster.
        cluster: Cow<'a, str>,
    },
    /// A majority runs again.
    QuorumRestored {
        /// The cluster.
        cluster: Cow<'a, str>,
    },
    /// One per simulated hour, from hour 0 to the end.
    Hourly(Hourly),
    /// A timeline step the simulator does not carry out yet.
    TimelineStepNotModelled {
        /// The step's action.
        action: TimelineAction,
        /// Its cluster, if any.
        cluster: Option<Cow<'a, str>>,
        /// Its host, if any.
        host: Option<Cow<'a, str>>,
    },
    /// The control plane lost contact with a live host (a network partition): the host
    /// keeps running its VMs until its agent's self-fence timeout.
    #[serde(rename_all = "camelCase")]
    HostPartitioned {
        /// The host.
        host: Cow<'a, str>,
    },
    /// A partitioned host can reach the control plane again.
    #[serde(rename_all = "camelCase")]
    PartitionHealed {
        /// The host.
        host: Cow<'a, str>,
    },
    /// A partitioned host's agent killed its VMs after `selfFenceTimeout` without contact
    /// (Proxmox's watchdog rule), so the control plane may restart them elsewhere.
    #[serde(rename_all = "camelCase")]
    SelfFenced {
        /// The host.
        host: Cow<'a, str>,
        /// The VMs it killed.
        vms: Vec<Cow<'a, str>>,
    },
    /// The control plane crashed and was restored from its store; the commands of the
    /// step it was taking were never sent.
    #[serde(rename_all = "camelCase")]
    ControlPlaneRestarted {
        /// Commands lost with the crash.
        commands_lost: u32,
    },
    /// A VM was started while another copy of it ran: must never occur.
    #[serde(rename_all = "camelCase")]
    SecondCopy {
        /// The VM.
        vm: Cow<'a, str>,
        /// Where it ran.
        running_on: Cow<'a, str>,
        /// Where it was started.
        started_on: Cow<'a, str>,
    },
    /// The last line of every log, at the time of the record before it: the SHA-256 of
    /// every line before it, newlines included. Written by [`LogWriter::finish`] and
    /// checked (never yielded) by [`LogReader`].
    Digest {
        /// The digest.
        sha256: LogDigest,
    },
}
