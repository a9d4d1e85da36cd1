//! The simulated world and the [`Driver`] over it.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use plinth_control::upgrade::staggered;
use plinth_control::{
    BootId, Command, CommandError, CommandId, CommandKind, Condition, ConditionChange, Control,
    ControlEvent, Driver, Observation, PoolName, Ready, Reason, Time, UpgradeKind,
};
use plinth_events::{
    Event, EvictionReason, Header, Hourly, LogDigest, PodName, RequestedBy, Source, UnbindReason,
};
use plinth_model::Resources;
use plinth_model::kinds::environment::{EnvironmentType, Fencing};
use plinth_model::kinds::scenario::TimelineAction;
use plinth_model::policy::{Scope, SpreadMode};
use plinth_placement::plan::DesignPlan;
use plinth_placement::pods::{LABEL_ZONE, NodeId, PodsError};
use serde::Serialize;

use crate::budget::{Budget, RateDriver};
use crate::failures::FailureStream;
use crate::faults::{FaultStream, Faults};
use crate::log::{Log, LogOutput, PodOrdinals};
use crate::setup::{Setup, SimError};
use crate::{Options, Run};

/// Container start and readiness once a pod is bound to a Ready node (an assumption:
/// image cached; no published figure).
pub const POD_START_MS: u64 = 30_000;
/// Latency of a Kubernetes API call (cordon, uncordon, drain request).
const API_MS: u64 = 1_000;
/// Spacing of hosts within a patching wave.
const PATCH_SPACING_MS: u64 = 3_600_000;
/// A drain whose next eviction would break a PodDisruptionBudget tries again after this
/// (`kubectl drain` retries every 5 s).
const DRAIN_RETRY_MS: u64 = 5_000;
/// One hour, the resolution of the `hourly` series.
const HOUR_MS: u64 = 3_600_000;
/// A year, for `kubernetesUpgradesPerYear`.
const YEAR_MS: u64 = 365 * 86_400_000;

/// The answer to command `id` with outcome `r`.
fn answer(id: CommandId, r: Result<(), CommandError>) -> Observation {
    match r {
        Ok(()) => Observation::CommandCompleted { id },
        Err(error) => Observation::CommandFailed { id, error },
    }
}

/// A command the simulated target declined or aborted with nothing changed.
fn refused(reason: String) -> CommandError {
    CommandError::Refused { reason }
}

#[derive(Clone, Debug)]
enum Ev {
    Crash {
        host: usize,
        clock: u64,
    },
    RackCrash {
        rack: usize,
    },
    Repaired {
        host: usize,
    },
    Deliver(Observation),
    Done {
        id: CommandId,
    },
    Evict {
        node: usize,
        epoch: u64,
    },
    PodsReady {
        node: usize,
        epoch: u64,
    },
    PodReady {
        pod: usize,
        epoch: u64,
    },
    Timeline {
        step: usize,
    },
    PatchWave {
        wave: u64,
    },
    Upgrade {
        cluster: String,
        kind: UpgradeKind,
        by: RequestedBy,
    },
    DrainRetry {
        node: usize,
        id: CommandId,
    },
    Hourly {
        hour: u64,
    },
    /// A host is cut off from the control plane (see [`crate::faults`]).
    Partition {
        host: usize,
    },
    /// Partition `cut` of `host` ends.
    Heal {
        host: usize,
        cut: u64,
    },
    /// `host`'s agent kills its VMs if partition `cut` still holds.
    SelfFence {
        host: usize,
        cut: u64,
    },
}

struct Entry {
    t: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.t, self.seq).cmp(&(o.t, o.seq))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Down {
    Crash,
    Fenced,
    Planned,
}

struct HostState {
    up: bool,
    down: Option<Down>,
    /// Incremented whenever the host goes down, so work begun before is known lost.
    epoch: u64,
    stream: FailureStream,
    /// Generation of the host's failure clock: a crash drawn before a repair is stale.
    clock: u64,
    /// Index into `failures` of the crash being handled.
    failure: Option<usize>,
    /// The partition cutting it off from the control plane, if any.
    cut: Option<u64>,
}

struct NodeState {
    /// Whether the node is part of its cluster (false once its VM is deleted or its
    /// server removed; the slot is reused if the name joins again).
    member: bool,
    ready: bool,
    unschedulable: bool,
    /// Counted as schedulable in its pool's [`PoolStat`].
    counted: bool,
    epoch: u64,
    used: Resources,
    pods: BTreeSet<usize>,
    grace_ms: u64,
}

struct PodState {
    node: Option<usize>,
    /// Its id in its cluster's scheduler while bound.
    sched: Option<plinth_placement::pods::PodId>,
    available: bool,
    down_since: u64,
    epoch: u64,
    cause: Option<usize>,
}

/// Schedulable nodes of one pool against its size, for capacity lost during upgrades.
#[derive(Clone, Debug, Default)]
struct PoolStat {
    /// Nodes the pool is meant to have.
    desired: u32,
    /// Member nodes that are Ready and not cordoned.
    schedulable: u32,
    /// Allocatable milli-CPU of one of its nodes.
    unit_cpu: u64,
    /// When the shortfall last changed.
    since: u64,
}

impl PoolStat {
    fn shortfall(&self) -> u64 {
        u64::from(self.desired.saturating_sub(self.schedulable))
    }

    /// Adds the shortfall held since the last change to `upgrade` (when one is running)
    /// and restarts the clock at `now`; returns the shortfall.
    fn settle(&mut self, upgrade: Option<&mut UpgradeAcc>, now: u64) -> u64 {
        let short = self.shortfall();
        if let Some(acc) = upgrade {
            let dt = u128::from(now.saturating_sub(self.since));
            acc.node_ms += u128::from(short) * dt;
            acc.cpu_ms += u128::from(short) * u128::from(self.unit_cpu) * dt;
        }
        self.since = now;
        short
    }
}

/// A rolling upgrade in progress: what it cost so far.
#[derive(Clone, Debug)]
struct UpgradeAcc {
    started: u64,
    node_ms: u128,
    cpu_ms: u128,
    current: u64,
    max: u64,
}

/// One cluster's etcd members as the world knows them.
#[derive(Clone, Debug)]
struct Quorum {
    cluster: String,
    replicas: u32,
    running: u32,
    lost: bool,
    /// False until a cluster created by `addCluster` is requested.
    active: bool,
    /// Its control plane is strictly spread over hosts (a member per host at most).
    strict: bool,
}

/// A drain waiting for evictions a PodDisruptionBudget does not allow yet.
#[derive(Clone, Debug)]
struct Draining {
    id: CommandId,
    blocked: bool,
    started: u64,
}

#[derive(Clone, Copy, Debug)]
struct Timings {
    /// How long each action takes: the control plane's expectation, one definition.
    deadlines: plinth_control::Deadlines,
    fence_failure: f64,
    fencing: Fencing,
}

struct InFlight {
    cmd: Command,
    ok: Result<(), CommandError>,
    /// Host epochs the command depends on, checked at completion.
    hosts: Vec<(usize, u64)>,
}

/// Recovery of one host failure, by phase (ms, from the crash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimFailure {
    /// Host or server.
    pub host: String,
    /// What took it down.
    pub cause: FailureCause,
    /// When it crashed (ground truth).
    pub crashed_at: u64,
    /// When it was repaired.
    pub repaired_at: Option<u64>,
    /// When the control plane declared it failed.
    pub declared_at: Option<u64>,
    /// When a fence succeeded.
    pub fenced_at: Option<u64>,
    /// When its VMs ran again (virtualized) or the server was back (bare metal): node Ready.
    pub nodes_ready_at: Option<u64>,
    /// When every pod it made unavailable was available again.
    pub pods_ready_at: Option<u64>,
    /// Pods it made unavailable.
    pub pods_hit: u32,
    #[serde(skip)]
    pods_remaining: u32,
}

/// What took a host down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureCause {
    /// The host itself crashed (its own failure stream).
    #[default]
    Host,
    /// Its rack lost power: every host of the rack went down together.
    Rack,
}

impl FailureCause {
    /// As the summary table names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Host => "host crash",
            Self::Rack => "rack power",
        }
    }
}

/// The recovery phases of a set of failures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phases {
    /// Detection: crash → failure declared.
    pub detect: PhaseStats,
    /// Fencing: declared → fenced.
    pub fence: PhaseStats,
    /// Crash → every node Ready again.
    pub nodes_ready: PhaseStats,
    /// Crash → every pod it hit available again.
    pub pods_ready: PhaseStats,
}

impl Phases {
    fn of(fs: &[&SimFailure]) -> Self {
        let each = |phase: fn(&SimFailure) -> Option<u64>| {
            PhaseStats::of(fs.iter().filter_map(|f| phase(f)))
        };
        Self {
            detect: each(|f| Some(f.declared_at? - f.crashed_at)),
            fence: each(|f| Some(f.fenced_at? - f.declared_at?)),
            nodes_ready: each(|f| Some(f.nodes_ready_at? - f.crashed_at)),
            pods_ready: each(|f| Some(f.pods_ready_at? - f.crashed_at)),
        }
    }

    /// Each phase with its name, as the summary table prints them.
    pub fn named(&self) -> [(&'static str, PhaseStats); 4] {
        [
            ("detect", self.detect),
            ("fence", self.fence),
            ("nodes Ready", self.nodes_ready),
            ("pods Ready", self.pods_ready),
        ]
    }
}

/// Count, mean and max of one recovery phase, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseStats {
    /// Failures that reached the phase's end.
    pub count: u32,
    /// Mean, seconds.
    pub mean_s: f64,
    /// Max, seconds.
    pub max_s: f64,
}

impl PhaseStats {
    fn of(values: impl Iterator<Item = u64>) -> Self {
        let v: Vec<u64> = values.collect();
        if v.is_empty() {
            return Self::default();
        }
        Self {
            count: v.len() as u32,
            mean_s: v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0,
            max_s: v.iter().copied().max().unwrap_or(0) as f64 / 1000.0,
        }
    }
}

/// What a run amounted to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `virtualized` or `bare-metal`.
    pub env: String,
    /// Seed.
    pub seed: u64,
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Hosts or servers.
    pub hosts: u32,
    /// VMs running at the start (virtualized).
    pub vms: u32,
    /// VMs no host could take at the start.
    pub vms_unplaced: u32,
    /// Kubernetes nodes.
    pub nodes: u32,
    /// Pods.
    pub pods: u32,
    /// Times a control-plane VM started or landed on a host already running a member of
    /// its etcd cluster whose placement group is strict over hosts, unrecorded: must be 0.
    pub anti_affinity_violations: u32,
    /// Times one did so as a recorded spread exception (HA restarted it beside its group,
    /// `ha.restartBesideGroup`, with a `besideGroup` condition on the VM).
    pub spread_exceptions: u32,
    /// Times a node VM started or landed on a host outside its node's zone (the
    /// `topology.kubernetes.io/zone` label, fixed when it joined), with zones declared,
    /// unrecorded: must be 0.
    pub zone_violations: u32,
    /// Times one did so as a recorded zone exception (HA restarted it outside its zone,
    /// `ha.restartOutsideZone`, with an `outsideZone` condition on the VM).
    pub zone_exceptions: u32,
    /// Node relabels: a node's `plinth.dev/host` (and rack) label changed to follow its VM.
    pub relabels: u32,
    /// Time nodes ran on a host other than the one their `plinth.dev/host` label names,
    /// summed over nodes, ms (open ones counted to the end): the window between a VM
    /// landing on another host and its node's relabel.
    pub topology_stale_ms: u64,
    /// The longest such window, ms.
    pub topology_stale_longest_ms: u64,
    /// Host crashes.
    pub host_failures: u32,
    /// Fences that failed.
    pub fences_failed: u32,
    /// Times a VM was started while another copy ran: must be 0.
    pub second_copies: u32,
    /// Live migrations completed.
    pub migrations: u32,
    /// Host maintenances completed.
    pub maintenances: u32,
    /// How long the oldest host maintenance still open at the end had been open, ms (0:
    /// none): a host left evacuating for good shows here.
    pub maintenance_open_longest_ms: u64,
    /// Pod evictions by the node lifecycle controller or drains.
    pub evictions: u32,
    /// Pod-minutes unavailable (bound to a node that is not Ready, starting, or pending).
    pub pod_minutes_unavailable: f64,
    /// Pods pending at the end.
    pub pods_pending_at_end: u32,
    /// Recovery phases over every failure.
    #[serde(flatten)]
    pub phases: Phases,
    /// Recovery phases by what caused the failure (those that happened).
    pub by_cause: BTreeMap<FailureCause, Phases>,
    /// Every failure.
    pub failures: Vec<SimFailure>,
    /// Conditions in force at the end, as text.
    pub conditions_at_end: Vec<String>,
    /// Lines in the event log (records, when the run wrote no lines:
    /// [`crate::LogOutput::records`]).
    pub log_lines: u64,
    /// SHA-256 of the event log's lines before its trailing `digest` line (the digest
    /// that line holds); `None` when the run wrote no lines, only typed records
    /// ([`crate::LogOutput::records`]).
    pub log_sha256: Option<LogDigest>,
}

/// The simulated world: a [`Driver`] over a virtual-time event queue.
pub struct World<'a> {
    s: Setup,
    now: u64,
    end: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Entry>>,
    hosts: Vec<HostState>,
    /// Host name → index. This map and the other name-keyed `HashMap`s are only looked up,
    /// never iterated, so their order cannot reach the event log.
    host_index: HashMap<String, usize>,
    /// Rack name, its hosts, its power-failure stream.
    racks: Vec<(String, Vec<usize>, FailureStream)>,
    vm_at: HashMap<String, usize>,
    /// The VMs running on each host (the index of `vm_at` by host).
    host_vms: Vec<BTreeSet<String>>,
    nodes: Vec<NodeState>,
    node_index: HashMap<String, usize>,
    pool_nodes: BTreeMap<PoolName, Vec<usize>>,
    /// Per cluster: the world's node index of each of its scheduler's node slots.
    slot_node: Vec<Vec<usize>>,
    pods: Vec<PodState>,
    /// Pending pods, by cluster index.
    pending: BTreeMap<usize, BTreeSet<usize>>,
    /// Per cluster: why its last pod found no node, in kube-scheduler's words.
    unschedulable: BTreeMap<usize, String>,
    inflight: BTreeMap<CommandId, InFlight>,
    fence_stream: FailureStream,
    seed: u64,
    faults: FaultStream,
    /// Partitions begun so far.
    cuts: u64,
    /// When the last agent answer is delivered: answers keep their order.
    last_answer: u64,
    failures: Vec<SimFailure>,
    log: Log<'a>,
    /// Events counted against each simulated day's budget.
    budget: Budget,
    /// What drives the step being taken.
    cause: RateDriver,
    /// Log lines already counted against the budget.
    charged: u64,
    /// Why the run stopped early, if it did.
    stopped: Option<SimError>,
    /// Each pod's ordinal within its workload, for `podBound`/`podUnbound` lines.
    pod_ordinals: PodOrdinals,
    unavailable_ms: u128,
    /// Per workload: pods available now, and pods desired.
    available: Vec<u32>,
    desired: Vec<u32>,
    /// No availability events while the starting state is built.
    quiet: bool,
    summary: Summary,
    heartbeat_ms: u64,
    timings: Timings,
    progress: Box<dyn FnMut(u64) + 'a>,
    last_progress: u64,
    pool_stats: BTreeMap<PoolName, PoolStat>,
    upgrades: BTreeMap<String, UpgradeAcc>,
    quorum: Vec<Quorum>,
    /// Control-plane VM (virtualized) → its cluster's index in `quorum`.
    cp_vm: HashMap<String, usize>,
    /// Control-plane server (bare metal) → its cluster's index in `quorum`.
    cp_server: BTreeMap<usize, usize>,
    /// Clusters requested by `addCluster` and not ready yet → when.
    cluster_requested: BTreeMap<String, u64>,
    /// New VMs' pools, from their CreateVm.
    vm_pool: HashMap<String, PoolName>,
    draining: BTreeMap<usize, Draining>,
    /// Hosts in a requested maintenance → when it was requested, and the pods made
    /// unavailable by it so far.
    maint_open: BTreeMap<usize, (u64, u32)>,
    /// Nodes running on a host other than the one their topology labels name → since when.
    label_stale: BTreeMap<usize, u64>,
    /// VMs with a recorded placement exception (an `outsideZone`, `besideGroup` or
    /// `outsideZoneBesideGroup` condition), by condition object (`vm/NAME`).
    exceptions: BTreeMap<String, Reason>,
    /// Running VMs' sizes plus the per-VM overhead (virtualized).
    vm_allocated: Resources,
    /// Running VirtualMachineSet VMs' sizes, by usage profile.
    vm_usage: Vec<(crate::setup::Usage, Resources)>,
    /// Requests of one pod, by workload.
    workload_requests: Vec<Resources>,
}

impl<'a> World<'a> {
    /// A world at time 0 in the state `setup` describes, its log kept in memory.
    pub fn new(setup: Setup, options: &Options, progress: impl FnMut(u64) + 'a) -> Self {
        Self::with_output(setup, options, LogOutput::memory(), progress)
    }

    /// A world at time 0 in the state `setup` describes, its log going to `output` as it
    /// is written.
    pub fn with_output(
        setup: Setup,
        options: &Options,
        output: LogOutput<'a>,
        progress: impl FnMut(u64) + 'a,
    ) -> Self {
        let seed = options.seed;
        let hosts: Vec<HostState> = setup
            .hosts
            .iter()
            .map(|h| HostState {
                up: true,
                down: None,
                epoch: 0,
                stream: FailureStream::new(seed, &h.class, h.index_in_class, h.failures),
                clock: 0,
                failure: None,
                cut: None,
            })
            .collect();
        let host_index = setup
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect();
        let estate = &setup.estate;
        let mut by_rack: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, h) in setup.hosts.iter().enumerate() {
            by_rack.entry(h.rack.as_str()).or_default().push(i);
        }
        let rack_model = estate.scenario.spec.failures.racks;
        let racks = by_rack
            .into_iter()
            .map(|(name, hosts)| {
                let model = plinth_model::kinds::scenario::HostFailures {
                    mtbf: rack_model.mtbf,
                    repair_time: rack_model.repair_time,
                    ..Default::default()
                };
                let stream = FailureStream::new(seed, &format!("rack:{name}"), 0, model);
                (name.to_owned(), hosts, stream)
            })
            .collect();
        let nodes: Vec<NodeState> = setup
            .nodes
            .iter()
            .map(|n| {
                let grace_ms = estate.clusters.get(n.cluster).map_or(350_000, |c| {
                    c.spec.kubernetes.node_monitor_grace_period.millis()
                        + c.spec.kubernetes.not_ready_toleration.millis()
                });
                NodeState {
                    member: true,
                    ready: true,
                    unschedulable: false,
                    counted: false,
                    epoch: 0,
                    used: Resources::ZERO,
                    pods: BTreeSet::new(),
                    grace_ms,
                }
            })
            .collect();
        let node_index: HashMap<String, usize> = setup
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let slot_node: Vec<Vec<usize>> = setup
            .schedulers
            .iter()
            .map(|sched| {
                let mut slots = Vec::new();
                for (id, node) in sched.nodes() {
                    let i = id.0 as usize;
                    if slots.len() <= i {
                        slots.resize(i + 1, usize::MAX);
                    }
                    if let Some(&n) = node_index.get(&node.name) {
                        slots[i] = n;
                    }
                }
                slots
            })
            .collect();
        let mut pool_nodes: BTreeMap<PoolName, Vec<usize>> = BTreeMap::new();
        for (i, n) in setup.nodes.iter().enumerate() {
            pool_nodes.entry(n.pool.clone()).or_default().push(i);
        }
        for v in pool_nodes.values_mut() {
            v.sort_by(|a, b| setup.nodes[*a].name.cmp(&setup.nodes[*b].name));
        }
        let heartbeat_ms = estate
            .virtualized
            .spec
            .ha
            .heartbeat_interval
            .millis()
            .max(1);
        let pods = setup
            .pods
            .iter()
            .map(|_| PodState {
                node: None,
                sched: None,
                available: false,
                down_since: 0,
                epoch: 0,
                cause: None,
            })
            .collect();
        let summary = Summary {
            env: match options.env {
                EnvironmentType::Virtualized => "virtualized",
                EnvironmentType::BareMetal => "bare-metal",
            }
            .into(),
            seed,
            duration_ms: options.duration,
            hosts: setup.hosts.len() as u32,
            vms: setup.vms.len() as u32,
            vms_unplaced: setup.unplaced.len() as u32,
            nodes: setup.nodes.len() as u32,
            pods: setup.pods.len() as u32,
            ..Summary::default()
        };
        let timings = Timings {
            deadlines: plinth_control::ControlConfig::virtualized(estate).deadlines,
            fence_failure: estate.virtualized.spec.ha.fence_failure_probability,
            // A bare-metal server is fenced through its BMC whatever the pool declares.
            fencing: match setup.env {
                EnvironmentType::Virtualized => estate.virtualized.spec.ha.fencing,
                EnvironmentType::BareMetal => Fencing::Bmc,
            },
        };
        let setup_workloads = setup.workloads.len();
        let mut desired = vec![0u32; setup_workloads];
        let mut workload_requests = vec![Resources::ZERO; setup_workloads];
        for p in &setup.pods {
            desired[p.workload as usize] += 1;
            workload_requests[p.workload as usize] = p.requests;
        }
        let mut pool_stats: BTreeMap<PoolName, PoolStat> = BTreeMap::new();
        for n in &setup.nodes {
            let st = pool_stats.entry(n.pool.clone()).or_default();
            st.desired += 1;
            st.unit_cpu = n.allocatable.cpu_millis;
        }
        let mut quorum = Vec::new();
        let mut cp_vm = HashMap::new();
        let mut cp_server = BTreeMap::new();
        for (i, cp) in setup.control_planes.iter().enumerate() {
            let policy = setup
                .estate
                .clusters
                .iter()
                .find(|c| c.name == cp.cluster)
                .map(|c| c.spec.control_plane.placement);
            quorum.push(Quorum {
                cluster: cp.cluster.clone(),
                replicas: cp.replicas,
                running: 0,
                lost: false,
                active: !cp.deferred,
                strict: policy
                    .is_some_and(|p| p.mode == SpreadMode::Strict && p.spread_over == Scope::Host),
            });
            for m in &cp.members {
                match setup.env {
                    EnvironmentType::Virtualized => {
                        cp_vm.insert(m.clone(), i);
                    }
                    EnvironmentType::BareMetal => {
                        if let Some(h) = setup.hosts.iter().position(|h| &h.name == m) {
                            cp_server.insert(h, i);
                            quorum[i].running += 1;
                        }
                    }
                }
            }
        }
        let mut w = Self {
            timings,
            fence_stream: FailureStream::new(seed, "fence", 0, estate.scenario.spec.failures.hosts),
            seed,
            faults: FaultStream::new(seed, Faults::default()),
            cuts: 0,
            last_answer: 0,
            vm_at: HashMap::new(),
            host_vms: vec![BTreeSet::new(); setup.hosts.len()],
            pool_stats,
            upgrades: BTreeMap::new(),
            quorum,
            cp_vm,
            cp_server,
            vm_pool: HashMap::new(),
            cluster_requested: BTreeMap::new(),
            draining: BTreeMap::new(),
            maint_open: BTreeMap::new(),
            label_stale: BTreeMap::new(),
            exceptions: BTreeMap::new(),
            vm_allocated: Resources::ZERO,
            vm_usage: Vec::new(),
            workload_requests,
            s: setup,
            now: 0,
            end: options.duration,
            seq: 0,
            queue: BinaryHeap::new(),
            hosts,
            host_index,
            racks,
            nodes,
            node_index,
            pool_nodes,
            slot_node,
            pods,
            pending: BTreeMap::new(),
            unschedulable: BTreeMap::new(),
            inflight: BTreeMap::new(),
            failures: Vec::new(),
            budget: Budget::new(output.events_per_day),
            log: Log::new(output),
            cause: RateDriver::HostFailures,
            charged: 0,
            stopped: None,
            pod_ordinals: PodOrdinals::default(),
            unavailable_ms: 0,
            available: vec![0; setup_workloads],
            desired,
            quiet: true,
            summary,
            heartbeat_ms,
            progress: Box::new(progress),
            last_progress: 0,
        };
        w.log.write(
            0,
            Event::Header(Header::new(
                options.input,
                seed,
                options.duration,
                options.env,
                Source::Simulation,
            )),
        );
        w.start();
        // The starting state is as large as the estate, not a rate: it is not charged.
        w.charged = w.log.lines();
        w
    }

    /// Turns on `faults` between the control plane and the host agents (virtualized
    /// hosts; see [`crate::faults`]).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = FaultStream::new(self.seed, faults);
        if self.s.env == EnvironmentType::Virtualized {
            for h in 0..self.hosts.len() {
                if let Some(t) = self.faults.time_to_partition() {
                    self.push(t, Ev::Partition { host: h });
                }
            }
        }
        self
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Entry {
            t,
            seq: self.seq,
            ev,
        }));
    }

    fn start(&mut self) {
        self.log.write(
            0,
            Event::Start {
                hosts: self.summary.hosts,
                vms: self.summary.vms,
                nodes: self.summary.nodes,
                pods: self.summary.pods,
                vms_unplaced: self.s.unplaced.iter().map(|v| v.as_str().into()).collect(),
            },
        );
        for i in 0..self.hosts.len() {
            let ttf = self.hosts[i].stream.time_to_failure();
            self.push(ttf, Ev::Crash { host: i, clock: 0 });
        }
        for r in 0..self.racks.len() {
            let ttf = self.racks[r].2.time_to_failure();
            self.push(ttf, Ev::RackCrash { rack: r });
        }
        for p in 0..self.pods.len() {
            self.mark_unavailable(p, None);
            let bound = self.s.pods[p]
                .initial
                .as_ref()
                .and_then(|(id, node)| Some((*id, *self.node_index.get(node)?)));
            if let Some((id, n)) = bound {
                self.pods[p].sched = Some(id);
                self.attach(p, n);
                self.mark_available(p);
            } else {
                let c = self.s.pods[p].cluster;
                self.pending.entry(c).or_default().insert(p);
            }
        }
        self.quiet = false;
        for w in 0..self.available.len() {
            self.log_availability(w);
        }
        let pending: usize = self.pending.values().map(BTreeSet::len).sum();
        if pending > 0 {
            let reason = self.pending_reason();
            self.log.write(
                0,
                Event::PodsPending {
                    pods: pending as u32,
                    reason: reason.into(),
                },
            );
        }
        self.quiet = true;
        let vms: Vec<(String, usize)> = self.s.vms.iter().map(|(v, h)| (v.clone(), *h)).collect();
        for (vm, h) in vms {
            self.vm_run(&vm, h);
        }
        for n in 0..self.nodes.len() {
            self.touch(n);
        }
        self.quiet = false;
        for q in 0..self.quorum.len() {
            self.check_quorum(q);
        }
        self.schedule_upgrades();
        self.push(0, Ev::Hourly { hour: 0 });
        let steps = self.s.estate.scenario.spec.operations.timeline.len();
        for step in 0..steps {
            let at = self.s.estate.scenario.spec.operations.timeline[step]
                .at
                .millis();
            self.push(at, Ev::Timeline { step });
        }
        let interval = self
            .s
            .estate
            .scenario
            .spec
            .operations
            .host_patching_interval
            .millis();
        if interval > 0 {
            self.push(interval, Ev::PatchWave { wave: 1 });
        }
    }

    // --- Kubernetes ---------------------------------------------------------------------

    fn mark_unavailable(&mut self, p: usize, cause: Option<usize>) {
        let pod = &mut self.pods[p];
        if pod.available {
            let w = self.s.pods[p].workload as usize;
            self.available[w] -= 1;
            self.log_availability(w);
        }
        let pod = &mut self.pods[p];
        if pod.available || pod.epoch == 0 {
            pod.available = false;
            pod.down_since = self.now;
            pod.cause = cause;
            if let Some(f) = cause {
                self.failures[f].pods_hit += 1;
                self.failures[f].pods_remaining += 1;
            }
        }
        pod.epoch += 1;
    }

    fn mark_available(&mut self, p: usize) {
        let now = self.now;
        let pod = &mut self.pods[p];
        if pod.available {
            return;
        }
        pod.available = true;
        self.unavailable_ms += u128::from(now - pod.down_since);
        if let Some(f) = pod.cause.take() {
            let r = &mut self.failures[f];
            r.pods_remaining = r.pods_remaining.saturating_sub(1);
            if r.pods_remaining == 0 {
                r.pods_ready_at = Some(now);
            }
        }
        let w = self.s.pods[p].workload as usize;
        self.available[w] += 1;
        self.log_availability(w);
    }

    /// Change-point series: a workload's available pods changed.
    fn log_availability(&mut self, w: usize) {
        if self.quiet {
            return;
        }
        self.log.write(
            self.now,
            Event::WorkloadAvailability {
                workload: self.s.workloads[w].as_str().into(),
                available: self.available[w],
                desired: self.desired[w],
            },
        );
    }

    /// Schedules pod `p` with its cluster's kube-scheduler (Ready, uncordoned nodes only)
    /// and binds it there; `None` leaves it unbound, the scheduler's reason kept for the log.
    fn place(&mut self, p: usize) -> Option<usize> {
        let c = self.s.pods[p].cluster;
        let template = Arc::clone(&self.s.pods[p].template);
        match self.s.schedulers[c].schedule_shared(&template) {
            Ok(b) => {
                let n = self.slot_node[c][b.node.0 as usize];
                self.pods[p].sched = Some(b.pod);
                self.attach(p, n);
                Some(n)
            }
            Err(PodsError::Unschedulable { explanation, .. }) => {
                self.unschedulable.insert(c, explanation.to_string());
                None
            }
            Err(e) => {
                self.unschedulable.insert(c, e.to_string());
                None
            }
        }
    }

    /// Why pods pend now: the scheduler's last reason in each cluster with pending pods.
    fn pending_reason(&self) -> String {
        let reasons: Vec<&str> = self
            .pending
            .iter()
            .filter(|(_, set)| !set.is_empty())
            .filter_map(|(c, _)| self.unschedulable.get(c).map(String::as_str))
            .collect();
        if reasons.is_empty() {
            "waiting for a node".to_owned()
        } else {
            reasons.join("; ")
        }
    }

    /// Records pod `p` as running on node `n` (already bound in the scheduler).
    fn attach(&mut self, p: usize, n: usize) {
        self.pods[p].node = Some(n);
        self.nodes[n].used += self.s.pods[p].requests;
        self.nodes[n].pods.insert(p);
        self.log_pod(p, n, None);
    }

    fn unbind(&mut self, p: usize, why: UnbindReason) {
        if let Some(n) = self.pods[p].node.take() {
            self.nodes[n].used = self.nodes[n].used.saturating_sub(&self.s.pods[p].requests);
            self.nodes[n].pods.remove(&p);
            self.log_pod(p, n, Some(why));
        }
        if let Some(id) = self.pods[p].sched.take() {
            let c = self.s.pods[p].cluster;
            // The pod is bound there: the world binds and unbinds in step with it.
            let _ = self.s.schedulers[c].remove_pod(id);
        }
    }

    /// A `podBound` line (`unbound` `None`) or a `podUnbound` line for pod `p` and node `n`.
    fn log_pod(&mut self, p: usize, n: usize, unbound: Option<UnbindReason>) {
        let pod = PodName {
            workload: self.s.workloads[self.s.pods[p].workload as usize]
                .as_str()
                .into(),
            ordinal: self.pod_ordinals.get(&self.s.pods, p),
        };
        let node = self.s.nodes[n].name.as_str().into();
        let event = match unbound {
            None => Event::PodBound { pod, node },
            Some(reason) => Event::PodUnbound { pod, node, reason },
        };
        self.log.write(self.now, event);
    }

    fn node_down(&mut self, n: usize, cause: Option<usize>) {
        if !self.nodes[n].ready {
            return;
        }
        self.nodes[n].ready = false;
        self.nodes[n].epoch += 1;
        self.touch(n);
        let pods: Vec<usize> = self.nodes[n].pods.iter().copied().collect();
        for &p in &pods {
            self.mark_unavailable(p, cause);
        }
        let epoch = self.nodes[n].epoch;
        let t = self.now + self.nodes[n].grace_ms;
        self.push(t, Ev::Evict { node: n, epoch });
        self.log.write(
            self.now,
            Event::NodeNotReady {
                node: self.s.nodes[n].name.as_str().into(),
                pods: pods.len() as u32,
            },
        );
    }

    fn node_up(&mut self, n: usize) {
        if self.nodes[n].ready || !self.nodes[n].member {
            return;
        }
        self.nodes[n].ready = true;
        self.nodes[n].epoch += 1;
        self.touch(n);
        let epoch = self.nodes[n].epoch;
        self.push(self.now + POD_START_MS, Ev::PodsReady { node: n, epoch });
        self.log.write(
            self.now,
            Event::NodeReady {
                node: self.s.nodes[n].name.as_str().into(),
            },
        );
        self.retry_pending(self.s.nodes[n].cluster);
    }

    fn retry_pending(&mut self, cluster: usize) {
        let Some(waiting) = self.pending.get(&cluster) else {
            return;
        };
        let waiting: Vec<usize> = waiting.iter().copied().collect();
        let mut placed = 0;
        for p in waiting {
            if self.place(p).is_some() {
                if let Some(set) = self.pending.get_mut(&cluster) {
                    set.remove(&p);
                }
                let epoch = self.pods[p].epoch;
                self.push(self.now + POD_START_MS, Ev::PodReady { pod: p, epoch });
                placed += 1;
            }
        }
        if placed > 0 {
            let cluster = self.s.estate.clusters[cluster].name.clone();
            self.log.write(
                self.now,
                Event::PodsScheduled {
                    cluster: cluster.into(),
                    pods: placed,
                },
            );
        }
    }

    /// Evicts the pods of node `n`: those with local volumes stay bound and wait for it,
    /// the others go wherever the scheduler finds room, or pend.
    fn evict(&mut self, n: usize, reason: EvictionReason) {
        let pods: Vec<usize> = self.nodes[n].pods.iter().copied().collect();
        let (mut moved, mut pending, mut local) = (0u32, 0u32, 0u32);
        for p in pods {
            if self.s.pods[p].local {
                local += 1;
                self.mark_unavailable(p, self.pods[p].cause);
                continue;
            }
            let cause = self.pods[p].cause;
            self.mark_unavailable(p, cause);
            self.unbind(p, UnbindReason::Evicted);
            self.summary.evictions += 1;
            match self.place(p) {
                Some(_) => {
                    let epoch = self.pods[p].epoch;
                    self.push(self.now + POD_START_MS, Ev::PodReady { pod: p, epoch });
                    moved += 1;
                }
                None => {
                    let c = self.s.pods[p].cluster;
                    self.pending.entry(c).or_default().insert(p);
                    pending += 1;
                }
            }
        }
        self.log.write(
            self.now,
            Event::PodsEvicted {
                node: self.s.nodes[n].name.as_str().into(),
                reason,
                rescheduled: moved,
                pending_for_capacity: pending,
                waiting_for_node: local,
            },
        );
    }

    // --- hosts --------------------------------------------------------------------------

    fn node_of_vm(&self, vm: &str) -> Option<usize> {
        self.node_index.get(vm).copied()
    }

    /// Takes host `h` down: its VMs (or its bare-metal node) die.
    fn host_down(&mut self, h: usize, why: Down, cause: Option<usize>) {
        if !self.hosts[h].up {
            return;
        }
        self.hosts[h].up = false;
        self.hosts[h].down = Some(why);
        self.hosts[h].epoch += 1;
        let dead: Vec<String> = self.host_vms[h].iter().cloned().collect();
        let mut nodes = Vec::new();
        for vm in dead {
            self.vm_stop(&vm);
            if let Some(n) = self.node_of_vm(&vm) {
                nodes.push(n);
            }
        }
        if self.s.env == EnvironmentType::BareMetal {
            let name = &self.s.hosts[h].name;
            if let Some(&n) = self.node_index.get(name) {
                nodes.push(n);
            }
            if let Some(&q) = self.cp_server.get(&h) {
                self.quorum[q].running = self.quorum[q].running.saturating_sub(1);
                self.check_quorum(q);
            }
        }
        for n in nodes {
            if why == Down::Planned && self.nodes[n].ready {
                let hit = self.nodes[n]
                    .pods
                    .iter()
                    .filter(|p| self.pods[**p].available)
                    .count() as u32;
                self.disrupted(h, hit);
            }
            self.node_down(n, cause);
        }
    }

    fn host_up(&mut self, h: usize) {
        if !self.hosts[h].up
            && let Some(&q) = self.cp_server.get(&h)
        {
            self.quorum[q].running += 1;
            self.check_quorum(q);
        }
        self.hosts[h].up = true;
        self.hosts[h].down = None;
        if self.s.env == EnvironmentType::BareMetal {
            let name = self.s.hosts[h].name.clone();
            if let Some(&n) = self.node_index.get(&name) {
                self.node_up(n);
            }
        }
    }

    fn rack_crash(&mut self, r: usize) {
        let (name, hosts, stream) = &mut self.racks[r];
        let (name, hosts) = (name.clone(), hosts.clone());
        let repair = stream.repair_time();
        let ttf = stream.time_to_failure();
        let up: Vec<usize> = hosts.into_iter().filter(|h| self.hosts[*h].up).collect();
        self.log.write(
            self.now,
            Event::RackFailed {
                rack: name.into(),
                hosts: up
                    .iter()
                    .map(|h| self.s.hosts[*h].name.as_str().into())
                    .collect(),
                repair_ms: repair,
            },
        );
        for h in up {
            let clock = self.hosts[h].clock;
            self.crash(h, clock, Some(repair));
        }
        self.push(self.now + repair + ttf, Ev::RackCrash { rack: r });
    }

    fn crash(&mut self, h: usize, clock: u64, repair: Option<u64>) {
        if clock != self.hosts[h].clock {
            return;
        }
        if !self.hosts[h].up {
            // Down already (maintenance): try again after a fresh draw.
            let ttf = self.hosts[h].stream.time_to_failure();
            self.push(self.now + ttf, Ev::Crash { host: h, clock });
            return;
        }
        let name = self.s.hosts[h].name.clone();
        self.failures.push(SimFailure {
            host: name.clone(),
            cause: if repair.is_some() {
                FailureCause::Rack
            } else {
                FailureCause::Host
            },
            crashed_at: self.now,
            ..SimFailure::default()
        });
        let f = self.failures.len() - 1;
        self.hosts[h].failure = Some(f);
        self.summary.host_failures += 1;
        let repair = repair.unwrap_or_else(|| self.hosts[h].stream.repair_time());
        self.log.write(
            self.now,
            Event::HostFailed {
                host: name.as_str().into(),
                repair_ms: repair,
                vms_lost: self.host_vms[h].iter().map(|v| v.as_str().into()).collect(),
            },
        );
        self.host_down(h, Down::Crash, Some(f));
        self.fall_silent(name);
        self.push(self.now + repair, Ev::Repaired { host: h });
    }

    fn repaired(&mut self, h: usize) {
        let name = self.s.hosts[h].name.clone();
        if let Some(f) = self.hosts[h].failure.take() {
            self.failures[f].repaired_at = Some(self.now);
            if self.s.env == EnvironmentType::BareMetal {
                self.failures[f].nodes_ready_at = Some(self.now);
            }
        }
        self.log.write(
            self.now,
            Event::HostRepaired {
                host: name.as_str().into(),
            },
        );
        self.host_up(h);
        let next_beat = self.now.div_ceil(self.heartbeat_ms) * self.heartbeat_ms;
        if self.hosts[h].cut.is_none() {
            self.connect(h, next_beat);
        }
        self.hosts[h].clock += 1;
        let clock = self.hosts[h].clock;
        let ttf = self.hosts[h].stream.time_to_failure();
        self.push(self.now + ttf, Ev::Crash { host: h, clock });
    }

    /// `host` stops heartbeating now: the transport reports one missed interval after
    /// its last heartbeat.
    fn fall_silent(&mut self, host: String) {
        let last_heard = self.now / self.heartbeat_ms * self.heartbeat_ms;
        self.push(
            last_heard + self.heartbeat_ms,
            Ev::Deliver(Observation::HeartbeatMissed {
                host,
                last_heard: Time(last_heard),
            }),
        );
    }

    /// Host `h`'s agent reaches the control plane at `t`: a heartbeat, then what it runs.
    fn connect(&mut self, h: usize, t: u64) {
        let heartbeat = Observation::Heartbeat {
            host: self.s.hosts[h].name.clone(),
            boot: self.boot(h),
        };
        self.push(t, Ev::Deliver(heartbeat));
        let inventory = self.inventory(h);
        self.push(t, Ev::Deliver(inventory));
    }

    /// The control plane restarted, losing `commands_lost` unsent commands: every agent
    /// that can reach it reconnects, with a heartbeat and its inventory.
    pub fn control_restarted(&mut self, commands_lost: usize) {
        self.log.write(
            self.now,
            Event::ControlPlaneRestarted {
                commands_lost: commands_lost as u32,
            },
        );
        for h in 0..self.hosts.len() {
            if self.hosts[h].up && self.hosts[h].cut.is_none() {
                self.connect(h, self.now);
            }
        }
    }

    /// A random partition of host `h` begins now (the fault model's), and the next one
    /// is drawn.
    fn partition(&mut self, h: usize) {
        let length = self.faults.partition_length();
        if let Some(next) = self.faults.time_to_partition() {
            self.push(self.now + length + next, Ev::Partition { host: h });
        }
        self.cut(h, length);
    }

    /// Cuts host `host` off from the control plane now for `ms` (a lab's fault); false if
    /// there is no such host.
    pub fn partition_for(&mut self, host: &str, ms: u64) -> bool {
        match self.host_index.get(host) {
            Some(&h) => {
                self.cut(h, ms);
                true
            }
            None => false,
        }
    }

    /// Ends host `host`'s partition now (a lab's repair); false if it has none.
    pub fn heal_now(&mut self, host: &str) -> bool {
        let Some(&h) = self.host_index.get(host) else {
            return false;
        };
        let Some(cut) = self.hosts[h].cut else {
            return false;
        };
        self.push(self.now, Ev::Heal { host: h, cut });
        true
    }

    /// Host `h` is cut off from the control plane now, for `length` ms.
    fn cut(&mut self, h: usize, length: u64) {
        if !self.hosts[h].up || self.hosts[h].cut.is_some() {
            return;
        }
        self.cuts += 1;
        let cut = self.cuts;
        self.hosts[h].cut = Some(cut);
        let name = self.s.hosts[h].name.clone();
        self.log.write(
            self.now,
            Event::HostPartitioned {
                host: name.as_str().into(),
            },
        );
        self.fall_silent(name);
        let self_fence = self
            .s
            .estate
            .virtualized
            .spec
            .ha
            .self_fence_timeout
            .millis();
        self.push(self.now + self_fence, Ev::SelfFence { host: h, cut });
        self.push(self.now + length, Ev::Heal { host: h, cut });
    }

    /// Partition `cut` of host `h` held for `selfFenceTimeout`: its agent kills its VMs.
    fn self_fence(&mut self, h: usize, cut: u64) {
        if self.hosts[h].cut != Some(cut) || !self.hosts[h].up {
            return;
        }
        let vms: Vec<String> = self.host_vms[h].iter().cloned().collect();
        self.log.write(
            self.now,
            Event::SelfFenced {
                host: self.s.hosts[h].name.as_str().into(),
                vms: vms.iter().map(|v| v.as_str().into()).collect(),
            },
        );
        for vm in vms {
            self.vm_stop(&vm);
            if let Some(n) = self.node_of_vm(&vm) {
                self.node_down(n, None);
            }
        }
    }

    fn heal(&mut self, h: usize, cut: u64) {
        if self.hosts[h].cut != Some(cut) {
            return;
        }
        self.hosts[h].cut = None;
        self.log.write(
            self.now,
            Event::PartitionHealed {
                host: self.s.hosts[h].name.as_str().into(),
            },
        );
        if self.hosts[h].up {
            self.connect(h, self.now);
        }
    }

    /// The hosts whose agent carries out `kind` (a partition loses it and its answer).
    fn agent_hosts(&self, kind: &CommandKind) -> Vec<usize> {
        let names: Vec<&str> = match kind {
            CommandKind::StartVm { host, .. }
            | CommandKind::CreateVm { host, .. }
            | CommandKind::StopVm { host, .. }
            | CommandKind::MaintainHost { host }
            | CommandKind::ReportInventory { host } => vec![host],
            CommandKind::DeleteVm { host, .. } => host.iter().map(String::as_str).collect(),
            CommandKind::MigrateVm { from, to, .. } => vec![from, to],
            _ => vec![],
        };
        names.iter().filter_map(|n| self.host_idx(n)).collect()
    }

    /// Whether a partition cuts the control plane off from an agent `kind` needs.
    fn cut_off(&self, kind: &CommandKind) -> bool {
        self.agent_hosts(kind)
            .iter()
            .any(|h| self.hosts[*h].cut.is_some())
    }

    /// Delivers an agent's answers through the fault model: each may be lost, delayed
    /// or duplicated; they arrive in the order they were sent.
    fn deliver_answers(&mut self, answers: Vec<Observation>) {
        for obs in answers {
            let fate = self.faults.answer();
            if fate.lost {
                continue;
            }
            let at = (self.now + fate.delay).max(self.last_answer);
            self.last_answer = at;
            if fate.duplicated {
                self.push(at, Ev::Deliver(obs.clone()));
            }
            self.push(at, Ev::Deliver(obs));
        }
    }

    /// Logs the outcome of command `id`.
    fn log_answer(&mut self, id: CommandId, r: &Result<(), CommandError>) {
        let event = match r {
            Ok(()) => Event::Completed { id },
            Err(error) => Event::Failed {
                id,
                reason: error.to_string().into(),
            },
        };
        self.log.write(self.now, event);
    }

    /// Host `h`'s current life: a host gets a new one each time it comes back up.
    fn boot(&self, h: usize) -> BootId {
        BootId(self.hosts[h].epoch)
    }

    /// What host `h`'s agent reports it runs.
    fn inventory(&self, h: usize) -> Observation {
        Observation::Inventory {
            host: self.s.hosts[h].name.clone(),
            boot: self.boot(h),
            vms: self.host_vms[h].iter().cloned().collect(),
        }
    }

    // --- nodes joining and leaving, drains ------------------------------------------------

    /// A VM runs on host `h` now: allocation, VM-set usage and etcd members follow.
    fn vm_run(&mut self, vm: &str, h: usize) {
        self.check_labels(vm, h);
        self.check_spread(vm, h);
        self.check_zone(vm, h);
        if let Some(before) = self.vm_at.insert(vm.to_owned(), h) {
            if before != h {
                self.host_vms[before].remove(vm);
                self.host_vms[h].insert(vm.to_owned());
            }
            return;
        }
        self.host_vms[h].insert(vm.to_owned());
        let (size, usage) = self.s.vm_size.get(vm).copied().unwrap_or_default();
        self.vm_allocated += size + self.vm_overhead();
        if let Some(u) = usage {
            match self.vm_usage.iter_mut().find(|(x, _)| *x == u) {
                Some((_, sum)) => *sum += size,
                None => self.vm_usage.push((u, size)),
            }
        }
        if let Some(&q) = self.cp_vm.get(vm) {
            self.quorum[q].running += 1;
            self.check_quorum(q);
        }
    }

    /// Counts a break of a strict control-plane spread: `vm`, a member, runs on `h` from
    /// now, where another member of its etcd cluster runs.
    fn check_spread(&mut self, vm: &str, h: usize) {
        let Some(&q) = self.cp_vm.get(vm) else {
            return;
        };
        let shared = self.quorum[q].strict
            && self.host_vms[h]
                .iter()
                .any(|other| other != vm && self.cp_vm.get(other) == Some(&q));
        if !shared {
            return;
        }
        if self.excepted(vm, Reason::is_beside_group) {
            self.summary.spread_exceptions += 1;
        } else {
            self.summary.anti_affinity_violations += 1;
        }
    }

    /// Whether VM `vm`'s condition records an exception `of` the kind asked.
    fn excepted(&self, vm: &str, of: fn(Reason) -> bool) -> bool {
        self.exceptions
            .get(&format!("vm/{vm}"))
            .is_some_and(|&reason| of(reason))
    }

    /// Counts a node VM `vm` running on `h` from now outside the zone its node's
    /// `topology.kubernetes.io/zone` label names, with zones declared: a zone exception
    /// when its condition records one, else a violation (the label, which never changes,
    /// would be false).
    fn check_zone(&mut self, vm: &str, h: usize) {
        if !self.s.estate.inventory.spec.declares_zones() {
            return;
        }
        let Some(n) = self.node_of_vm(vm) else {
            return;
        };
        let sched = &self.s.schedulers[self.s.nodes[n].cluster];
        let labelled = sched
            .node_id(&self.s.nodes[n].name)
            .and_then(|id| sched.node(id))
            .and_then(|node| node.labels.get(LABEL_ZONE));
        if labelled.is_none_or(|zone| *zone == self.s.hosts[h].zone) {
            return;
        }
        if self.excepted(vm, Reason::is_outside_zone) {
            self.summary.zone_exceptions += 1;
        } else {
            self.summary.zone_violations += 1;
        }
    }

    /// The host node `n`'s topology labels name (its scheduler's view), if it is a node.
    fn labelled_host(&self, n: usize) -> Option<&str> {
        let sched = &self.s.schedulers[self.s.nodes[n].cluster];
        let id = sched.node_id(&self.s.nodes[n].name)?;
        sched.node(id).map(|node| node.host.as_str())
    }

    /// VM `vm` runs on host `h` from now: if it is a node whose labels name another host,
    /// its labels are stale until the control plane relabels it.
    fn check_labels(&mut self, vm: &str, h: usize) {
        let Some(n) = self.node_of_vm(vm) else {
            return;
        };
        let stale = self
            .labelled_host(n)
            .is_some_and(|l| l != self.s.hosts[h].name);
        if stale {
            self.label_stale.entry(n).or_insert(self.now);
        } else {
            self.close_stale(n);
        }
    }

    /// Node `n`'s labels are true again (or it is gone): its stale window ends now.
    fn close_stale(&mut self, n: usize) {
        if let Some(since) = self.label_stale.remove(&n) {
            let ms = self.now - since;
            self.summary.topology_stale_ms += ms;
            self.summary.topology_stale_longest_ms = self.summary.topology_stale_longest_ms.max(ms);
        }
    }

    /// A VM stopped running (powered off, deleted, or lost with its host).
    fn vm_stop(&mut self, vm: &str) {
        let Some(h) = self.vm_at.remove(vm) else {
            return;
        };
        if let Some(n) = self.node_of_vm(vm) {
            self.close_stale(n);
        }
        self.host_vms[h].remove(vm);
        let (size, usage) = self.s.vm_size.get(vm).copied().unwrap_or_default();
        self.vm_allocated = self
            .vm_allocated
            .saturating_sub(&(size + self.vm_overhead()));
        if let Some(u) = usage
            && let Some((_, sum)) = self.vm_usage.iter_mut().find(|(x, _)| *x == u)
        {
            *sum = sum.saturating_sub(&size);
        }
        if let Some(&q) = self.cp_vm.get(vm) {
            self.quorum[q].running = self.quorum[q].running.saturating_sub(1);
            self.check_quorum(q);
        }
    }

    fn vm_overhead(&self) -> Resources {
        let o = &self.s.estate.virtualized.spec.per_vm_overhead;
        Resources::new(o.cpu.0, o.memory.0, 0)
    }

    /// The node of a VM that just started is Ready; a new VM's node joins its pool first.
    fn vm_node_up(&mut self, vm: &str) {
        let member = self.node_of_vm(vm).is_some_and(|n| self.nodes[n].member);
        if !member
            && let Some(pool) = self.vm_pool.get(vm).cloned()
            && let Some(&alloc) = self.s.pool_alloc.get(&pool)
        {
            self.add_node(vm, &pool, alloc);
        }
        if let Some(n) = self.node_of_vm(vm) {
            self.node_up(n);
        }
    }

    /// Logs `quorumLost` / `quorumRestored` when cluster `q`'s running etcd members cross
    /// a majority of its declared members.
    fn check_quorum(&mut self, q: usize) {
        if self.quiet || !self.quorum[q].active {
            return;
        }
        let st = &self.quorum[q];
        let has = st.running > st.replicas / 2;
        if has != st.lost {
            return;
        }
        self.quorum[q].lost = !has;
        let cluster = self.quorum[q].cluster.as_str().into();
        let event = if has {
            Event::QuorumRestored { cluster }
        } else {
            Event::QuorumLost { cluster }
        };
        self.log.write(self.now, event);
    }

    /// Node `n`'s schedulability may have changed: update its pool's count and, while its
    /// cluster is upgrading, the capacity the upgrade has cost so far.
    fn touch(&mut self, n: usize) {
        let st = &self.nodes[n];
        let sched = st.member && st.ready && !st.unschedulable;
        if sched == st.counted {
            return;
        }
        self.nodes[n].counted = sched;
        let node = &self.s.nodes[n];
        // kube-scheduler places nothing on a node that is NotReady (its taint) or cordoned.
        let _ = self.s.schedulers[node.cluster].set_unschedulable(&node.name, !sched);
        let cluster = self.s.estate.clusters[node.cluster].name.as_str();
        let Some(ps) = self.pool_stats.get_mut(&node.pool) else {
            return;
        };
        let before = ps.settle(self.upgrades.get_mut(cluster), self.now);
        if sched {
            ps.schedulable += 1;
        } else {
            ps.schedulable = ps.schedulable.saturating_sub(1);
        }
        let after = ps.shortfall();
        if let Some(acc) = self.upgrades.get_mut(cluster) {
            acc.current = (acc.current + after).saturating_sub(before);
            acc.max = acc.max.max(acc.current);
        }
    }

    /// The nodes a pool needs when a timeline step declares `declared` replicas: the same
    /// on a VM pool (one node VM per replica); on bare metal, the servers of the pool's
    /// class that the declared capacity and the pods need (the plan's formula), not one
    /// server per declared VM.
    fn nodes_for(&self, cluster: &str, pool: &str, declared: u32) -> u32 {
        match &self.s.design {
            DesignPlan::BareMetal(b) => b
                .problem
                .servers_for(&b.servers, cluster, pool, declared)
                .unwrap_or(declared),
            DesignPlan::Virtualized(_) => declared,
        }
    }

    /// The size pool `pool` of `cluster` is meant to have from now on (upgrade shortfalls
    /// are measured against it).
    fn set_pool_size(&mut self, cluster: &str, pool: &str, replicas: u32) {
        self.settle_pools(cluster);
        if let Some(ps) = self.pool_stats.get_mut(&PoolName::new(cluster, pool)) {
            ps.desired = replicas;
        }
        let current = self.settle_pools(cluster);
        if let Some(acc) = self.upgrades.get_mut(cluster) {
            acc.current = current;
            acc.max = acc.max.max(current);
        }
    }

    /// The pools of `cluster`.
    fn cluster_pools(&self, cluster: &str) -> Vec<PoolName> {
        self.pool_stats
            .range(PoolName::new(cluster, "")..)
            .take_while(|(k, _)| k.cluster == cluster)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Integrates every pool of `cluster` up to now.
    fn settle_pools(&mut self, cluster: &str) -> u64 {
        let mut current = 0;
        for key in self.cluster_pools(cluster) {
            let Some(ps) = self.pool_stats.get_mut(&key) else {
                continue;
            };
            current += ps.settle(self.upgrades.get_mut(cluster), self.now);
        }
        current
    }

    fn control_event(&mut self, e: ControlEvent) {
        match e {
            ControlEvent::UpgradeStarted {
                cluster,
                kind,
                nodes,
            } => {
                self.settle_pools(&cluster);
                let current = self.settle_pools(&cluster);
                self.upgrades.insert(
                    cluster.clone(),
                    UpgradeAcc {
                        started: self.now,
                        node_ms: 0,
                        cpu_ms: 0,
                        current,
                        max: current,
                    },
                );
                self.log.write(
                    self.now,
                    Event::UpgradeStarted {
                        cluster: cluster.into(),
                        kind,
                        nodes,
                    },
                );
            }
            ControlEvent::UpgradeFinished { cluster, kind } => {
                self.settle_pools(&cluster);
                let Some(acc) = self.upgrades.remove(&cluster) else {
                    return;
                };
                let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
                self.log.write(
                    self.now,
                    Event::UpgradeFinished {
                        cluster: cluster.into(),
                        kind,
                        duration_ms: self.now - acc.started,
                        node_ms_unavailable: clamp(acc.node_ms),
                        cpu_ms_lost: clamp(acc.cpu_ms),
                        max_nodes_unavailable: acc.max,
                    },
                );
            }
            ControlEvent::ClusterReady { cluster } => {
                let started = self.cluster_requested.remove(&cluster).unwrap_or(self.now);
                self.log.write(
                    self.now,
                    Event::ClusterReady {
                        cluster: cluster.as_str().into(),
                        duration_ms: self.now - started,
                    },
                );
                // From now on its pools' sizes and its etcd quorum are watched.
                let pools: Vec<(PoolName, Vec<usize>)> = self
                    .pool_nodes
                    .range(PoolName::new(cluster.as_str(), "")..)
                    .take_while(|(k, _)| k.cluster == cluster)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (key, members) in pools {
                    let schedulable = members.iter().filter(|n| self.nodes[**n].counted).count();
                    let unit_cpu = members
                        .first()
                        .map_or(0, |n| self.s.nodes[*n].allocatable.cpu_millis);
                    self.pool_stats.entry(key).or_insert(PoolStat {
                        desired: members.len() as u32,
                        schedulable: schedulable as u32,
                        unit_cpu,
                        since: self.now,
                    });
                }
                if let Some(q) = self.quorum.iter().position(|q| q.cluster == cluster) {
                    let st = &mut self.quorum[q];
                    st.active = true;
                    st.lost = st.running <= st.replicas / 2;
                    self.check_quorum(q);
                }
                self.deploy(&cluster);
            }
            ControlEvent::NodeReplaced {
                cluster,
                pool,
                old,
                new,
                method,
            } => {
                self.log.write(
                    self.now,
                    Event::NodeReplaced {
                        cluster: cluster.into(),
                        pool: pool.into(),
                        old: old.into(),
                        new: new.into(),
                        method,
                    },
                );
            }
        }
    }

    /// The workloads of a cluster created by `addCluster` are deployed: its pods are
    /// scheduled where they fit, or pend.
    fn deploy(&mut self, cluster: &str) {
        let Some(pods) = self.s.deferred_pods.remove(cluster) else {
            return;
        };
        let mut clusters = BTreeSet::new();
        for pod in pods {
            let w = pod.workload as usize;
            clusters.insert(pod.cluster);
            self.desired[w] += 1;
            self.workload_requests[w] = pod.requests;
            self.s.pods.push(pod);
            self.pods.push(PodState {
                node: None,
                sched: None,
                available: false,
                down_since: self.now,
                epoch: 0,
                cause: None,
            });
            let p = self.pods.len() - 1;
            self.mark_unavailable(p, None);
            let c = self.s.pods[p].cluster;
            self.pending.entry(c).or_default().insert(p);
        }
        for c in clusters {
            self.retry_pending(c);
        }
    }

    /// Node `name` joins `pool` (not Ready until its VM or server is up).
    fn add_node(&mut self, name: &str, pool: &PoolName, alloc: Resources) -> usize {
        let Some((cluster, template)) = self.s.templates.get(pool).cloned() else {
            return usize::MAX;
        };
        let grace_ms = self.s.estate.clusters.get(cluster).map_or(350_000, |c| {
            c.spec.kubernetes.node_monitor_grace_period.millis()
                + c.spec.kubernetes.not_ready_toleration.millis()
        });
        let n = match self.node_index.get(name) {
            Some(&n) => n,
            None => {
                self.s.nodes.push(crate::setup::SimNode {
                    name: name.to_owned(),
                    cluster,
                    pool: pool.clone(),
                    allocatable: alloc,
                });
                self.nodes.push(NodeState {
                    member: false,
                    ready: false,
                    unschedulable: false,
                    counted: false,
                    epoch: 0,
                    used: Resources::ZERO,
                    pods: BTreeSet::new(),
                    grace_ms,
                });
                let n = self.nodes.len() - 1;
                self.node_index.insert(name.to_owned(), n);
                n
            }
        };
        if self.nodes[n].member {
            return n;
        }
        // A shared spare server may have been a node of another cluster before.
        self.s.nodes[n].cluster = cluster;
        self.s.nodes[n].pool = pool.clone();
        self.s.nodes[n].allocatable = alloc;
        self.nodes[n].grace_ms = grace_ms;
        // It joins kube-scheduler's view NotReady, labelled with the host it runs on.
        let host = self.host_of_node(n).map(|h| &self.s.hosts[h]);
        let (host, rack, zone) = host.map_or(("", "", ""), |h| {
            (h.name.as_str(), h.rack.as_str(), h.zone.as_str())
        });
        let mut node = template.node(name, host, rack, zone);
        node.allocatable = alloc;
        node.unschedulable = true;
        if let Ok(NodeId(slot)) = self.s.schedulers[cluster].add_node(node) {
            let slots = &mut self.slot_node[cluster];
            if slots.len() <= slot as usize {
                slots.resize(slot as usize + 1, usize::MAX);
            }
            slots[slot as usize] = n;
        }
        let st = &mut self.nodes[n];
        st.member = true;
        st.ready = false;
        st.unschedulable = false;
        st.epoch += 1;
        let list = self.pool_nodes.entry(pool.clone()).or_default();
        let names = &self.s.nodes;
        let at = list.partition_point(|m| names[*m].name.as_str() < name);
        list.insert(at, n);
        self.log.write(
            self.now,
            Event::NodeAdded {
                node: name.into(),
                pool: pool.to_string().into(),
            },
        );
        n
    }

    /// Node `n` leaves its cluster: whatever still runs there is rescheduled or pends.
    fn remove_node(&mut self, n: usize) {
        if !self.nodes[n].member {
            return;
        }
        let pods: Vec<usize> = self.nodes[n].pods.iter().copied().collect();
        let (mut moved, mut pending) = (0u32, 0u32);
        for p in pods {
            let cause = self.pods[p].cause;
            self.mark_unavailable(p, cause);
            self.unbind(p, UnbindReason::NodeRemoved);
            if self.reschedule(p) {
                moved += 1;
            } else {
                pending += 1;
            }
        }
        let st = &mut self.nodes[n];
        st.ready = false;
        st.epoch += 1;
        self.touch(n);
        self.nodes[n].member = false;
        let node = &self.s.nodes[n];
        let _ = self.s.schedulers[node.cluster].remove_node(&node.name);
        let pool = self.s.nodes[n].pool.clone();
        if let Some(list) = self.pool_nodes.get_mut(&pool) {
            list.retain(|m| *m != n);
        }
        self.draining.remove(&n);
        self.log.write(
            self.now,
            Event::NodeRemoved {
                node: self.s.nodes[n].name.as_str().into(),
                pool: pool.to_string().into(),
                rescheduled: moved,
                pending_for_capacity: pending,
            },
        );
    }

    /// Binds pod `p` where the scheduler finds room (available after the container start),
    /// or leaves it pending; true if it was bound.
    fn reschedule(&mut self, p: usize) -> bool {
        self.summary.evictions += 1;
        match self.place(p) {
            Some(_) => {
                let epoch = self.pods[p].epoch;
                self.push(self.now + POD_START_MS, Ev::PodReady { pod: p, epoch });
                true
            }
            None => {
                let c = self.s.pods[p].cluster;
                self.pending.entry(c).or_default().insert(p);
                false
            }
        }
    }

    /// The host node `n` runs on, if any.
    fn host_of_node(&self, n: usize) -> Option<usize> {
        let name = &self.s.nodes[n].name;
        match self.s.env {
            EnvironmentType::Virtualized => self.vm_at.get(name).copied(),
            // A bare-metal node is its server, whenever it joined.
            EnvironmentType::BareMetal => self.host_index.get(name).copied(),
        }
    }

    fn open_maintenance(&mut self, h: usize) {
        if self.hosts[h].up {
            self.maint_open.entry(h).or_insert((self.now, 0));
        }
    }

    /// `pods` were made unavailable on host `h`: charge them to its maintenance, if any.
    fn disrupted(&mut self, h: usize, pods: u32) {
        if let Some((_, c)) = self.maint_open.get_mut(&h) {
            *c += pods;
        }
    }

    /// Cordons node `n` and starts evicting its pods; `id` is answered when none is left.
    fn start_drain(&mut self, n: usize, id: CommandId) {
        self.nodes[n].unschedulable = true;
        self.touch(n);
        // A drain sent again (the control plane timed the first out) goes on from where
        // the first began: `blockedDrain.forceAfter` counts from the first.
        let (started, blocked) = self
            .draining
            .get(&n)
            .map_or((self.now, false), |d| (d.started, d.blocked));
        self.draining.insert(
            n,
            Draining {
                id,
                blocked,
                started,
            },
        );
        self.drain_step(n);
    }

    /// How long a blocked drain waits before evicting anyway (`Scenario.spec.blockedDrain`).
    fn drain_force_after_ms(&self) -> u64 {
        self.s
            .estate
            .scenario
            .spec
            .blocked_drain
            .force_after
            .millis()
    }

    /// Evicts what the PodDisruptionBudgets allow (pods with local volumes stay bound and
    /// wait for the node); finishes the drain when nothing is left to evict, else tries
    /// again in [`DRAIN_RETRY_MS`] with a condition naming the budget.
    fn drain_step(&mut self, n: usize) {
        let Some(d) = self.draining.get(&n).cloned() else {
            return;
        };
        let pods: Vec<usize> = self.nodes[n].pods.iter().copied().collect();
        let (mut moved, mut pending, mut local, mut hit) = (0u32, 0u32, 0u32, 0u32);
        // The first budget that holds a pod back, and how many of its workload's pods it
        // holds.
        let mut blocked: Option<(usize, u32, String)> = None;
        let mut held = 0u32;
        // Pods evicted below their budgets once the drain was forced, and the first budget.
        let mut overridden: Option<(usize, u32, String)> = None;
        let mut forced_out = 0u32;
        // A drain still blocked by a PodDisruptionBudget after the Scenario's
        // `blockedDrain.forceAfter` evicts the rest anyway: nobody answers in a simulated
        // year, so the operator's response is declared.
        let force_after = self.drain_force_after_ms();
        let forced = self.now >= d.started + force_after;
        // A node VM is drained only to be deleted, and its disks go with it: pods with
        // local volumes are rebuilt elsewhere. A server keeps its data disks through a
        // reimage or maintenance, so its local pods wait for it.
        let keep_local = self.s.env == EnvironmentType::BareMetal;
        for p in pods {
            let pod = &self.pods[p];
            let is_local = keep_local && self.s.pods[p].local;
            if is_local && !pod.available {
                continue;
            }
            let w = self.s.pods[p].workload as usize;
            if pod.available {
                if let Some((min, pdb)) = &self.s.min_available[w]
                    && self.available[w] <= *min
                {
                    if !forced {
                        if blocked.get_or_insert_with(|| (w, *min, pdb.clone())).0 == w {
                            held += 1;
                        }
                        continue;
                    }
                    overridden.get_or_insert_with(|| (w, *min, pdb.clone()));
                    forced_out += 1;
                }
                hit += 1;
            }
            let cause = self.pods[p].cause;
            self.mark_unavailable(p, cause);
            if is_local {
                local += 1;
                continue;
            }
            self.unbind(p, UnbindReason::Drained);
            if self.reschedule(p) {
                moved += 1;
            } else {
                pending += 1;
            }
        }
        if let Some(h) = self.host_of_node(n) {
            self.disrupted(h, hit);
        }
        let name = self.s.nodes[n].name.clone();
        if moved + pending + local > 0 {
            self.log.write(
                self.now,
                Event::PodsEvicted {
                    node: name.as_str().into(),
                    reason: EvictionReason::Drain,
                    rescheduled: moved,
                    pending_for_capacity: pending,
                    waiting_for_node: local,
                },
            );
        }
        let object = format!("node/{name}");
        // Whether a condition on the node is to be cleared when the drain ends.
        let shown = d.blocked || overridden.is_some();
        if let Some((w, min, pdb)) = overridden {
            // The declared operator response, recorded: what was evicted below its budget.
            let c = Condition {
                object: object.clone(),
                reason: Reason::WaitingForDisruptionBudget,
                message: format!(
                    "draining: evicted {forced_out} pod(s) below their PodDisruptionBudget anyway after {} min (Scenario blockedDrain.forceAfter); the first: {} left below {min} available (PodDisruptionBudget {pdb})",
                    force_after / 60_000,
                    self.s.workloads[w],
                ),
                since: Time(self.now),
            };
            self.log.write(
                self.now,
                Event::Condition(Cow::Owned(ConditionChange::Set(c))),
            );
        }
        match blocked {
            Some((w, min, pdb)) => {
                if !shown {
                    let c = Condition {
                        object,
                        reason: Reason::WaitingForDisruptionBudget,
                        message: format!(
                            "draining: evicting {held} pod(s) of {} would leave fewer than {min} available (PodDisruptionBudget {pdb}); retrying every {} s, evicting anyway after {} min",
                            self.s.workloads[w],
                            DRAIN_RETRY_MS / 1000,
                            force_after / 60_000
                        ),
                        since: Time(self.now),
                    };
                    self.log.write(
                        self.now,
                        Event::Condition(Cow::Owned(ConditionChange::Set(c))),
                    );
                    if let Some(x) = self.draining.get_mut(&n) {
                        x.blocked = true;
                    }
                }
                self.push(
                    self.now + DRAIN_RETRY_MS,
                    Ev::DrainRetry { node: n, id: d.id },
                );
            }
            None => {
                if shown {
                    let c = ConditionChange::Cleared {
                        object,
                        at: Time(self.now),
                    };
                    self.log.write(self.now, Event::Condition(Cow::Owned(c)));
                }
                self.draining.remove(&n);
                self.push(self.now + API_MS, Ev::Done { id: d.id });
            }
        }
    }

    // --- operations schedule and hourly series -------------------------------------------

    /// The recurring rollouts: `kubernetesUpgradesPerYear` and `osPatchingInterval`, evenly
    /// spaced per cluster and staggered by cluster index ([`staggered`]).
    fn schedule_upgrades(&mut self) {
        let ops = &self.s.estate.scenario.spec.operations;
        let per_year = u64::from(ops.kubernetes_upgrades_per_year);
        let k8s = YEAR_MS.checked_div(per_year).unwrap_or(0);
        let os = ops.os_patching_interval.millis();
        let clusters: Vec<String> = self.quorum.iter().map(|q| q.cluster.clone()).collect();
        let n = clusters.len();
        for (i, cluster) in clusters.into_iter().enumerate() {
            for (interval, kind) in [(k8s, UpgradeKind::Kubernetes), (os, UpgradeKind::Os)] {
                for t in staggered(interval, i, n, self.end) {
                    self.push(
                        t,
                        Ev::Upgrade {
                            cluster: cluster.clone(),
                            kind,
                            by: RequestedBy::Schedule,
                        },
                    );
                }
            }
        }
    }

    /// One `hourly` line: capacity of hosts up, what is allocated on them, and what the
    /// workloads use at this hour of the day (see docs/architecture.md for the formula).
    fn hourly(&mut self, hour: u64) {
        let of_day = (hour % 24) as u8;
        let mut capacity = Resources::ZERO;
        let mut hosts_up = 0u32;
        for (i, h) in self.hosts.iter().enumerate() {
            if h.up {
                capacity += self.s.hosts[i].capacity;
                hosts_up += 1;
            }
        }
        let mut cpu_used = 0.0;
        let mut mem_used = 0.0;
        for (w, req) in self.workload_requests.iter().enumerate() {
            let f = self.s.workload_usage[w].at(of_day) * f64::from(self.available[w]);
            cpu_used += f * req.cpu_millis as f64;
            mem_used += f * req.memory_bytes as f64;
        }
        let allocated = match self.s.env {
            EnvironmentType::Virtualized => {
                for (u, size) in &self.vm_usage {
                    cpu_used += u.at(of_day) * size.cpu_millis as f64;
                    mem_used += u.at(of_day) * size.memory_bytes as f64;
                }
                cpu_used *= 1.0 + self.s.estate.virtualized.spec.performance_overhead.cpu;
                self.vm_allocated
            }
            EnvironmentType::BareMetal => {
                let mut a = Resources::ZERO;
                for (i, st) in self.nodes.iter().enumerate() {
                    if st.member && st.ready {
                        a += self.s.nodes[i].allocatable;
                    }
                }
                for (&h, _) in self.cp_server.iter() {
                    if self.hosts[h].up {
                        a += self.s.hosts[h].capacity;
                    }
                }
                a
            }
        };
        let pending: usize = self.pending.values().map(BTreeSet::len).sum();
        let line = Hourly {
            hour,
            cpu_capacity_milli: capacity.cpu_millis,
            mem_capacity_bytes: capacity.memory_bytes,
            cpu_allocated_milli: allocated.cpu_millis,
            mem_allocated_bytes: allocated.memory_bytes,
            cpu_used_milli: cpu_used.round() as u64,
            mem_used_bytes: mem_used.round() as u64,
            hosts_up,
            pods_pending: pending as u64,
        };
        self.log.write(self.now, Event::Hourly(line));
    }

    // --- commands -----------------------------------------------------------------------

    fn host_idx(&self, name: &str) -> Option<usize> {
        self.host_index.get(name).copied()
    }

    /// How long a live migration of `vm` takes: the control plane's expectation, one
    /// definition (pre-copy at the Environment's bandwidth, then the switch-over); none when
    /// pre-copy cannot converge.
    fn migration_ms(&self, vm: &str) -> Option<u64> {
        let d = &self.timings.deadlines;
        let bytes = self.s.vm_memory.get(vm).copied().unwrap_or(0);
        d.migration_converges().then(|| d.expected_migration(bytes))
    }

    fn begin(&mut self, cmd: &Command) -> (u64, Result<(), CommandError>, Vec<(usize, u64)>) {
        let tm = self.timings;
        let epoch = |w: &Self, h: usize| (h, w.hosts[h].epoch);
        match &cmd.kind {
            CommandKind::StartVm { vm, host } => {
                let Some(h) = self.host_idx(host) else {
                    return (0, Err(refused(format!("unknown host {host}"))), vec![]);
                };
                if let Some(&at) = self.vm_at.get(vm) {
                    if at == h {
                        return (0, Ok(()), vec![]);
                    }
                    self.summary.second_copies += 1;
                    self.log.write(
                        self.now,
                        Event::SecondCopy {
                            vm: vm.into(),
                            running_on: self.s.hosts[at].name.as_str().into(),
                            started_on: host.into(),
                        },
                    );
                }
                if !self.hosts[h].up {
                    return (API_MS, Err(CommandError::Unreachable), vec![]);
                }
                (tm.deadlines.vm_boot, Ok(()), vec![epoch(self, h)])
            }
            CommandKind::CreateVm { vm, host, pool } => {
                let Some(h) = self.host_idx(host) else {
                    return (0, Err(refused(format!("unknown host {host}"))), vec![]);
                };
                self.vm_pool.insert(vm.clone(), pool.clone());
                if let Some(&size) = self.s.vm_template.get(pool) {
                    self.s.vm_size.insert(vm.clone(), (size, None));
                    self.s.vm_memory.insert(vm.clone(), size.memory_bytes);
                }
                if pool.is_control_plane()
                    && let Some(q) = self.quorum.iter().position(|q| q.cluster == pool.cluster)
                {
                    self.cp_vm.insert(vm.clone(), q);
                }
                if !self.hosts[h].up {
                    return (API_MS, Err(CommandError::Unreachable), vec![]);
                }
                (
                    tm.deadlines.vm_clone + tm.deadlines.vm_boot,
                    Ok(()),
                    vec![epoch(self, h)],
                )
            }
            CommandKind::StopVm { host, .. } => {
                let h = self.host_idx(host);
                (
                    10_000,
                    Ok(()),
                    h.map(|h| vec![epoch(self, h)]).unwrap_or_default(),
                )
            }
            CommandKind::DeleteVm { .. } => (10_000, Ok(()), vec![]),
            CommandKind::RemoveNode { node } => {
                if let Some(&n) = self.node_index.get(node) {
                    self.remove_node(n);
                }
                (API_MS, Ok(()), vec![])
            }
            CommandKind::MigrateVm { vm, from, to } => {
                let (Some(f), Some(t)) = (self.host_idx(from), self.host_idx(to)) else {
                    return (0, Err(refused("unknown host".into())), vec![]);
                };
                match self.migration_ms(vm) {
                    Some(ms) => (ms, Ok(()), vec![epoch(self, f), epoch(self, t)]),
                    None => (
                        60_000,
                        Err(refused(
                            "pre-copy does not converge (dirty rate ≥ bandwidth)".into(),
                        )),
                        vec![],
                    ),
                }
            }
            CommandKind::FenceHost { host } => {
                let p = tm.fence_failure;
                // Drawn for every fence, so a rack's outage leaves the other draws as they were.
                let unconfirmed = self.fence_stream.chance(p);
                let Some(h) = self.host_idx(host) else {
                    return (0, Err(refused(format!("unknown host {host}"))), vec![]);
                };
                let state = &self.hosts[h];
                let ok = match tm.fencing {
                    // Only the host's agent can fence it: one down or cut off does not
                    // answer, and the driver knows its link is gone at once.
                    Fencing::Agent if !state.up || state.cut.is_some() => {
                        return (0, Err(CommandError::Unreachable), vec![]);
                    }
                    Fencing::Agent => Ok(()),
                    // A BMC in a rack without power answers nothing: the fence cannot be
                    // confirmed, and HA restarts the host's VMs by the known-dead rule.
                    Fencing::Bmc
                        if !state.up
                            && state
                                .failure
                                .is_some_and(|f| self.failures[f].cause == FailureCause::Rack) =>
                    {
                        Err(CommandError::Unreachable)
                    }
                    Fencing::Bmc if unconfirmed => Err(CommandError::OutcomeUnknown {
                        reason: "BMC did not confirm power-off".into(),
                    }),
                    Fencing::Bmc => Ok(()),
                };
                (tm.deadlines.fence, ok, vec![])
            }
            CommandKind::MaintainHost { host } => {
                let Some(h) = self.host_idx(host) else {
                    return (0, Err(refused(format!("unknown host {host}"))), vec![]);
                };
                if let Some(&n) = self.node_index.get(host) {
                    self.nodes[n].unschedulable = true;
                    self.touch(n);
                }
                self.host_down(h, Down::Planned, None);
                (tm.deadlines.reboot, Ok(()), vec![])
            }
            CommandKind::Cordon { node } => {
                if let Some(&n) = self.node_index.get(node) {
                    self.nodes[n].unschedulable = true;
                    self.touch(n);
                }
                (API_MS, Ok(()), vec![])
            }
            CommandKind::Uncordon { .. }
            | CommandKind::LabelNode { .. }
            | CommandKind::OutOfService { .. }
            | CommandKind::InService { .. } => (API_MS, Ok(()), vec![]),
            CommandKind::ReportInventory { host } => match self.host_idx(host) {
                Some(h) if self.hosts[h].up => (API_MS, Ok(()), vec![epoch(self, h)]),
                Some(_) => (API_MS, Err(CommandError::Unreachable), vec![]),
                None => (0, Err(refused(format!("unknown host {host}"))), vec![]),
            },
            // Drains are answered by `start_drain` when their last pod is out.
            CommandKind::Drain { .. } => (API_MS, Ok(()), vec![]),
            CommandKind::ProvisionServer { server, .. } | CommandKind::ReimageServer { server } => {
                let ms = if matches!(cmd.kind, CommandKind::ProvisionServer { .. }) {
                    tm.deadlines.install
                } else {
                    tm.deadlines.reimage
                };
                let Some(h) = self.host_idx(server) else {
                    return (0, Err(refused(format!("unknown server {server}"))), vec![]);
                };
                if matches!(self.hosts[h].down, Some(Down::Crash | Down::Fenced)) {
                    return (API_MS, Err(CommandError::Unreachable), vec![]);
                }
                self.host_down(h, Down::Planned, None);
                // A crash during the install or reimage fails it (the server's epoch).
                (ms, Ok(()), vec![epoch(self, h)])
            }
        }
    }

    /// Applies a finished command to the world; `Err` if it failed.
    fn complete(&mut self, f: InFlight) -> Result<(), CommandError> {
        f.ok.clone()?;
        for (h, e) in &f.hosts {
            if self.hosts[*h].epoch != *e {
                return Err(refused(format!("host {} was lost", self.s.hosts[*h].name)));
            }
        }
        match &f.cmd.kind {
            CommandKind::StartVm { vm, host } | CommandKind::CreateVm { vm, host, .. } => {
                let h = self.host_idx(host).unwrap_or(0);
                self.vm_run(vm, h);
                self.vm_node_up(vm);
            }
            CommandKind::StopVm { vm, .. } => {
                self.vm_stop(vm);
                if let Some(n) = self.node_of_vm(vm) {
                    self.node_down(n, None);
                }
            }
            CommandKind::DeleteVm { vm, .. } => {
                self.vm_stop(vm);
                self.cp_vm.remove(vm);
                if let Some(n) = self.node_of_vm(vm) {
                    self.remove_node(n);
                }
            }
            CommandKind::MigrateVm { vm, from, to } => {
                let (f, t) = (self.host_idx(from), self.host_idx(to));
                if self.vm_at.get(vm).copied() != f {
                    return Err(refused(format!("{vm} is not running on {from}")));
                }
                if let Some(t) = t {
                    self.vm_run(vm, t);
                }
                self.summary.migrations += 1;
            }
            CommandKind::FenceHost { host } => {
                if let Some(h) = self.host_idx(host)
                    && self.hosts[h].up
                {
                    self.host_down(h, Down::Fenced, None);
                    self.push(
                        self.now + self.timings.deadlines.reboot,
                        Ev::Repaired { host: h },
                    );
                }
            }
            CommandKind::MaintainHost { host } => {
                if let Some(h) = self.host_idx(host) {
                    let disrupted = self.maint_open.remove(&h).map(|(_, pods)| pods);
                    if let Some(pods) = disrupted {
                        self.log.write(
                            self.now,
                            Event::MaintenanceFinished {
                                host: host.into(),
                                pods_disrupted: pods,
                            },
                        );
                    }
                    if self.hosts[h].down == Some(Down::Planned) {
                        self.host_up(h);
                    } else if !self.hosts[h].up {
                        return Err(refused(format!("host {host} failed during maintenance")));
                    }
                }
                self.summary.maintenances += 1;
            }
            // The taint's removal changes nothing the simulator models: the node is Ready
            // again by then, and schedulable.
            CommandKind::OutOfService { node } => {
                if let Some(&n) = self.node_index.get(node)
                    && self.nodes[n].member
                    && !self.nodes[n].ready
                {
                    self.evict(n, EvictionReason::OutOfService);
                }
            }
            CommandKind::LabelNode { node, host } => {
                // A control-plane VM is a node the simulator schedules no pods on.
                if let (Some(&n), Some(h)) = (self.node_index.get(node), self.host_idx(host)) {
                    let (name, rack) = (&self.s.hosts[h].name, &self.s.hosts[h].rack);
                    let sched = &mut self.s.schedulers[self.s.nodes[n].cluster];
                    if sched.move_node(node, name, rack).is_ok() {
                        self.summary.relabels += 1;
                        self.touch(n);
                    }
                    if self.vm_at.get(node) == Some(&h) {
                        self.close_stale(n);
                    }
                }
            }
            CommandKind::Uncordon { node } => {
                if let Some(&n) = self.node_index.get(node) {
                    self.nodes[n].unschedulable = false;
                    self.touch(n);
                    self.retry_pending(self.s.nodes[n].cluster);
                }
            }
            CommandKind::ProvisionServer { server, pool } => {
                if let Some(h) = self.host_idx(server) {
                    if pool.is_control_plane() {
                        if let Some(q) = self.quorum.iter().position(|q| q.cluster == pool.cluster)
                        {
                            self.cp_server.insert(h, q);
                        }
                    } else {
                        let overhead = self.s.pool_alloc.get(pool).copied().unwrap_or_default();
                        let alloc = self.s.hosts[h].capacity.saturating_sub(&overhead);
                        self.add_node(server, pool, alloc);
                    }
                    self.host_up(h);
                }
            }
            CommandKind::ReimageServer { server } => {
                if let Some(h) = self.host_idx(server) {
                    self.host_up(h);
                    self.log.write(
                        self.now,
                        Event::Reimaged {
                            server: server.into(),
                            duration_ms: self.timings.deadlines.reimage,
                        },
                    );
                }
            }
            CommandKind::Cordon { .. }
            | CommandKind::InService { .. }
            | CommandKind::Drain { .. }
            | CommandKind::RemoveNode { .. }
            | CommandKind::ReportInventory { .. } => {}
        }
        Ok(())
    }

    fn process(&mut self, ev: Ev) -> Option<Observation> {
        match ev {
            Ev::Crash { host, clock } => self.crash(host, clock, None),
            Ev::RackCrash { rack } => self.rack_crash(rack),
            Ev::Repaired { host } => self.repaired(host),
            Ev::Deliver(obs) => {
                if let Observation::MaintenanceRequested { host } = &obs
                    && let Some(&h) = self.host_index.get(host)
                {
                    self.open_maintenance(h);
                }
                return Some(obs);
            }
            Ev::Done { id } => {
                let f = self.inflight.remove(&id)?;
                let inventory = match &f.cmd.kind {
                    CommandKind::ReportInventory { host } => self.host_idx(host),
                    _ => None,
                };
                let agent = !self.agent_hosts(&f.cmd.kind).is_empty();
                let cut_off = self.cut_off(&f.cmd.kind);
                let r = self.complete(f);
                self.log_answer(id, &r);
                if agent && (cut_off || self.faults.faults().any()) {
                    // The effect happened; the answer crosses the faulty network (and is
                    // lost if a partition cuts the agent off).
                    if !cut_off {
                        let mut answers = Vec::new();
                        if let (Ok(()), Some(h)) = (&r, inventory) {
                            answers.push(self.inventory(h));
                        }
                        answers.push(answer(id, r));
                        self.deliver_answers(answers);
                    }
                    return None;
                }
                if let (Ok(()), Some(h)) = (&r, inventory) {
                    // The report first, then the command's completion.
                    self.push(self.now, Ev::Deliver(answer(id, r)));
                    return Some(self.inventory(h));
                }
                return Some(answer(id, r));
            }
            Ev::Evict { node, epoch } => {
                if self.nodes[node].epoch == epoch && !self.nodes[node].ready {
                    self.evict(node, EvictionReason::NodeNotReady);
                }
            }
            Ev::PodsReady { node, epoch } => {
                if self.nodes[node].epoch == epoch {
                    let pods: Vec<usize> = self.nodes[node].pods.iter().copied().collect();
                    for p in pods {
                        self.mark_available(p);
                    }
                }
            }
            Ev::PodReady { pod, epoch } => {
                if self.pods[pod].epoch == epoch
                    && self.pods[pod].node.is_some_and(|n| self.nodes[n].ready)
                {
                    self.mark_available(pod);
                }
            }
            Ev::Upgrade { cluster, kind, by } => {
                self.log.write(
                    self.now,
                    Event::UpgradeRequested {
                        cluster: cluster.as_str().into(),
                        kind,
                        by,
                        version: None,
                    },
                );
                return Some(Observation::UpgradeRequested {
                    cluster,
                    upgrade: kind,
                });
            }
            Ev::DrainRetry { node, id } => {
                if self.draining.get(&node).is_some_and(|d| d.id == id) {
                    self.drain_step(node);
                }
            }
            Ev::Partition { host } => self.partition(host),
            Ev::Heal { host, cut } => self.heal(host, cut),
            Ev::SelfFence { host, cut } => self.self_fence(host, cut),
            Ev::Hourly { hour } => {
                self.hourly(hour);
                let next = (hour + 1) * HOUR_MS;
                if next <= self.end {
                    self.push(next, Ev::Hourly { hour: hour + 1 });
                }
            }
            Ev::Timeline { step } => {
                let s = self.s.estate.scenario.spec.operations.timeline[step].clone();
                if s.action == TimelineAction::HostMaintenance
                    && let Some(host) = s.host.clone()
                    && let Some(&h) = self.host_index.get(&host)
                {
                    self.log.write(
                        self.now,
                        Event::MaintenanceRequested {
                            host: host.as_str().into(),
                            by: RequestedBy::Timeline,
                        },
                    );
                    self.open_maintenance(h);
                    return Some(Observation::MaintenanceRequested { host });
                }
                if s.action == TimelineAction::AddCluster
                    && let Some(cluster) = s.cluster.clone()
                    && let Some(q) = self.quorum.iter().position(|q| q.cluster == cluster)
                    && !self.quorum[q].active
                    && !self.cluster_requested.contains_key(&cluster)
                {
                    self.log.write(
                        self.now,
                        Event::ClusterRequested {
                            cluster: cluster.as_str().into(),
                            by: RequestedBy::Timeline,
                        },
                    );
                    self.cluster_requested.insert(cluster.clone(), self.now);
                    return Some(Observation::ClusterRequested { cluster });
                }
                if s.action == TimelineAction::ScalePool
                    && let (Some(cluster), Some(pool), Some(declared)) =
                        (s.cluster.clone(), s.pool.clone(), s.replicas)
                    && self
                        .pool_stats
                        .contains_key(&PoolName::new(cluster.as_str(), pool.as_str()))
                {
                    let replicas = self.nodes_for(&cluster, &pool, declared);
                    self.log.write(
                        self.now,
                        Event::ScaleRequested {
                            cluster: cluster.as_str().into(),
                            pool: pool.as_str().into(),
                            replicas,
                            by: RequestedBy::Timeline,
                        },
                    );
                    self.set_pool_size(&cluster, &pool, replicas);
                    return Some(Observation::ScaleRequested {
                        cluster,
                        pool,
                        replicas,
                    });
                }
                let kind = match s.action {
                    TimelineAction::UpgradeKubernetes => Some(UpgradeKind::Kubernetes),
                    TimelineAction::PatchOs => Some(UpgradeKind::Os),
                    _ => None,
                };
                if let (Some(kind), Some(cluster)) = (kind, s.cluster.clone())
                    && self.quorum.iter().any(|q| q.cluster == cluster)
                {
                    self.log.write(
                        self.now,
                        Event::UpgradeRequested {
                            cluster: cluster.as_str().into(),
                            kind,
                            by: RequestedBy::Timeline,
                            version: s.version.as_deref().map(Cow::from),
                        },
                    );
                    return Some(Observation::UpgradeRequested {
                        cluster,
                        upgrade: kind,
                    });
                }
                self.log.write(
                    self.now,
                    Event::TimelineStepNotModelled {
                        action: s.action,
                        cluster: s.cluster.as_deref().map(Cow::from),
                        host: s.host.as_deref().map(Cow::from),
                    },
                );
            }
            Ev::PatchWave { wave } => {
                let interval = self
                    .s
                    .estate
                    .scenario
                    .spec
                    .operations
                    .host_patching_interval
                    .millis();
                let n = self.hosts.len() as u64;
                let spacing = PATCH_SPACING_MS.min(interval / n.max(1)).max(1);
                self.log.write(
                    self.now,
                    Event::PatchWave {
                        wave,
                        hosts: n as u32,
                    },
                );
                for i in 0..self.hosts.len() {
                    let host = self.s.hosts[i].name.clone();
                    self.push(
                        self.now + spacing * i as u64,
                        Ev::Deliver(Observation::MaintenanceRequested { host }),
                    );
                }
                self.push(self.now + interval, Ev::PatchWave { wave: wave + 1 });
            }
        }
        None
    }

    /// Ends the run: closes open unavailability, fills the summary, seals the log with its
    /// digest. A run stopped by its event budget, or whose log could not be written, is an
    /// error.
    pub fn finish(mut self, control: &Control) -> Result<Run, SimError> {
        if let Some(e) = self.stopped.take() {
            return Err(e);
        }
        self.now = self.end;
        for p in 0..self.pods.len() {
            if !self.pods[p].available {
                self.unavailable_ms += u128::from(self.end.saturating_sub(self.pods[p].down_since));
            }
        }
        // Join the control plane's view of each failure to the crash it followed: the
        // crash of that host between its last heartbeat and the declaration (a declared
        // failure with no crash was a partition).
        for rec in control.failures() {
            let (heard, declared) = (rec.last_heard.millis(), rec.declared_at.millis());
            if let Some(f) = self.failures.iter_mut().find(|f| {
                f.host == rec.host
                    && f.declared_at.is_none()
                    && (heard..=declared).contains(&f.crashed_at)
            }) {
                f.declared_at = Some(rec.declared_at.millis());
                f.fenced_at = rec.fenced_at.map(Time::millis);
                if self.s.env == EnvironmentType::Virtualized {
                    f.nodes_ready_at = rec.recovered_at.map(Time::millis);
                }
            }
        }
        let all: Vec<&SimFailure> = self.failures.iter().collect();
        self.summary.phases = Phases::of(&all);
        self.summary.by_cause = [FailureCause::Host, FailureCause::Rack]
            .into_iter()
            .filter_map(|cause| {
                let fs: Vec<&SimFailure> =
                    all.iter().copied().filter(|f| f.cause == cause).collect();
                (!fs.is_empty()).then(|| (cause, Phases::of(&fs)))
            })
            .collect();
        self.summary.failures = self.failures.clone();
        self.summary.fences_failed = control
            .failures()
            .iter()
            .map(|f| {
                f.fence_attempts
                    .saturating_sub(u32::from(f.fenced_at.is_some()))
            })
            .sum();
        self.summary.pod_minutes_unavailable = self.unavailable_ms as f64 / 60_000.0;
        self.summary.pods_pending_at_end = self.pending.values().map(|s| s.len() as u32).sum();
        self.summary.conditions_at_end = control.conditions().map(ToString::to_string).collect();
        for since in std::mem::take(&mut self.label_stale).into_values() {
            let ms = self.end.saturating_sub(since);
            self.summary.topology_stale_ms += ms;
            self.summary.topology_stale_longest_ms = self.summary.topology_stale_longest_ms.max(ms);
        }
        self.summary.maintenance_open_longest_ms = self
            .maint_open
            .values()
            .map(|(since, _)| self.end.saturating_sub(*since))
            .max()
            .unwrap_or(0);
        self.log.write(
            self.end,
            Event::End {
                host_failures: self.summary.host_failures,
                pod_minutes_unavailable: self.summary.pod_minutes_unavailable,
                second_copies: self.summary.second_copies,
            },
        );
        let log = self
            .log
            .finish()
            .map_err(|source| SimError::Log { source })?;
        self.summary.log_lines = log.lines;
        self.summary.log_sha256 = log.digest;
        Ok(Run {
            log: log.bytes,
            summary: self.summary,
        })
    }

    /// Counts `events` driven by `driver` against today's budget; false, with the reason
    /// kept for [`World::finish`], once the run must stop (over budget, or its log failed).
    fn within_budget(&mut self, driver: RateDriver, events: u64) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        if self.log.failed() {
            // The error itself comes out of the log when the run finishes.
            return false;
        }
        match self.budget.charge(self.now, driver, events) {
            None => true,
            Some(overrun) => {
                self.stopped = Some(SimError::EventBudget {
                    overrun,
                    limit: self.budget.limit(),
                });
                false
            }
        }
    }

    /// Counts the log lines written since the last count against the step that wrote
    /// them, then one step driven by `driver`.
    fn take_step(&mut self, driver: RateDriver) -> bool {
        let lines = self.log.lines();
        let written = lines - self.charged;
        self.charged = lines;
        let ok = self.within_budget(self.cause, written);
        self.cause = driver;
        ok && self.within_budget(driver, 1)
    }

    /// Adds a failure of `host` at `at` ms (a scenario's planned fault, on top of the
    /// random failure stream). Unknown hosts are ignored; returns whether it was scheduled.
    pub fn schedule_failure(&mut self, host: &str, at: u64) -> bool {
        match self.host_index.get(host) {
            Some(&h) => {
                let clock = self.hosts[h].clock;
                self.push(at, Ev::Crash { host: h, clock });
                true
            }
            None => false,
        }
    }

    /// The hosts (or servers), by name.
    pub fn host_names(&self) -> Vec<String> {
        self.s.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// The current virtual time, ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// When the next world event is due, if any.
    pub fn next_at(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse(e)| e.t)
    }

    /// The VMs running on `host` now (ground truth).
    pub fn running(&self, host: &str) -> Vec<String> {
        self.host_index
            .get(host)
            .map(|&h| self.host_vms[h].iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Times a VM was started while another copy of it ran.
    pub fn second_copies(&self) -> u64 {
        u64::from(self.summary.second_copies)
    }

    /// Nodes of `pool` that are Ready and schedulable now (ground truth).
    pub fn schedulable_nodes(&self, pool: &PoolName) -> u32 {
        self.pool_stats.get(pool).map_or(0, |p| p.schedulable)
    }

    /// Member nodes of `pool` now, Ready or not (ground truth).
    pub fn pool_members(&self, pool: &PoolName) -> Vec<&str> {
        self.pool_nodes.get(pool).map_or_else(Vec::new, |v| {
            v.iter().map(|n| self.s.nodes[*n].name.as_str()).collect()
        })
    }

    /// Control-plane members of `cluster` running now: VMs on a live host, or servers up.
    pub fn control_plane_running(&self, cluster: &str) -> Option<u32> {
        self.quorum
            .iter()
            .find(|q| q.cluster == cluster)
            .map(|q| q.running)
    }

    /// Where `vm` runs in the world (ground truth, for tests and metrics).
    pub fn vm_host(&self, vm: &str) -> Option<&str> {
        self.vm_at.get(vm).map(|h| self.s.hosts[*h].name.as_str())
    }
}

impl Driver for World<'_> {
    fn next(&mut self, wakeup: Option<Time>) -> Option<(Time, Observation)> {
        loop {
            let next_t = self.queue.peek().map(|Reverse(e)| e.t);
            if let Some(w) = wakeup {
                let w = w.millis().max(self.now);
                if w <= self.end && next_t.is_none_or(|t| w < t) {
                    self.now = w;
                    if !self.take_step(RateDriver::ControlPlane) {
                        return None;
                    }
                    return Some((Time(w), Observation::Timer));
                }
            }
            let Reverse(entry) = self.queue.pop()?;
            if entry.t > self.end {
                return None;
            }
            self.now = entry.t;
            if !self.take_step(entry.ev.driver()) {
                return None;
            }
            if self.now >= self.last_progress + 86_400_000 {
                self.last_progress = self.now;
                (self.progress)(self.now);
            }
            if let Some(obs) = self.process(entry.ev) {
                return Some((Time(self.now), obs));
            }
        }
    }

    fn apply(&mut self, now: Time, ready: Ready) {
        self.now = now.millis().max(self.now);
        for c in ready.conditions {
            match &c {
                ConditionChange::Set(set) if set.reason.is_exception() => {
                    self.exceptions.insert(set.object.clone(), set.reason);
                }
                ConditionChange::Set(Condition { object, .. })
                | ConditionChange::Cleared { object, .. } => {
                    self.exceptions.remove(object);
                }
            }
            self.log.write(self.now, Event::Condition(Cow::Owned(c)));
        }
        for e in ready.events {
            self.control_event(e);
        }
        for command in ready.commands {
            self.submit(command);
        }
    }
}

impl Ev {
    /// What drives this kind of step, for the event budget.
    fn driver(&self) -> RateDriver {
        match self {
            Self::Crash { .. } | Self::Repaired { .. } => RateDriver::HostFailures,
            Self::RackCrash { .. } => RateDriver::RackFailures,
            Self::Deliver(Observation::MaintenanceRequested { .. }) | Self::PatchWave { .. } => {
                RateDriver::Patching
            }
            Self::Upgrade { .. } => RateDriver::Upgrades,
            Self::Timeline { .. } => RateDriver::Timeline,
            Self::Deliver(_) | Self::Done { .. } | Self::DrainRetry { .. } => {
                RateDriver::ControlPlane
            }
            Self::Evict { .. } | Self::PodsReady { .. } | Self::PodReady { .. } => RateDriver::Pods,
            Self::Hourly { .. } => RateDriver::Hourly,
            Self::Partition { .. } | Self::Heal { .. } | Self::SelfFence { .. } => {
                RateDriver::NetworkFaults
            }
        }
    }
}

impl World<'_> {
    /// Starts carrying out `command` at the current time.
    fn submit(&mut self, command: Command) {
        self.log
            .write(self.now, Event::Command(Cow::Borrowed(&command)));
        let id = command.id;
        if let CommandKind::Drain { node } = &command.kind
            && let Some(&n) = self.node_index.get(node)
            && self.nodes[n].member
        {
            self.inflight.insert(
                id,
                InFlight {
                    cmd: command,
                    ok: Ok(()),
                    hosts: vec![],
                },
            );
            self.start_drain(n, id);
            return;
        }
        if self.cut_off(&command.kind) {
            // Lost on the way: the control plane times it out.
            return;
        }
        let (ms, ok, hosts) = self.begin(&command);
        self.inflight.insert(
            id,
            InFlight {
                cmd: command,
                ok,
                hosts,
            },
        );
        self.push(self.now + ms, Ev::Done { id });
    }
}
