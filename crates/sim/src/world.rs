//! The simulated world and the [`Driver`] over it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use plinth_control::{
    Command, CommandId, CommandKind, ConditionChange, Control, Driver, Observation, Time,
};
use plinth_model::Resources;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::kinds::scenario::TimelineAction;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::failures::FailureStream;
use crate::log::Log;
use crate::setup::Setup;
use crate::{Options, Run};

/// Container start and readiness once a pod is bound to a Ready node (an assumption:
/// image cached; no published figure).
pub const POD_START_MS: u64 = 30_000;
/// Latency of a Kubernetes API call (cordon, uncordon, drain request).
const API_MS: u64 = 1_000;
/// Spacing of hosts within a patching wave.
const PATCH_SPACING_MS: u64 = 3_600_000;

#[derive(Clone, Debug)]
enum Ev {
    Crash { host: usize, clock: u64 },
    RackCrash { rack: usize },
    Repaired { host: usize },
    Deliver(Observation),
    Done { id: CommandId },
    Evict { node: usize, epoch: u64 },
    PodsReady { node: usize, epoch: u64 },
    PodReady { pod: usize, epoch: u64 },
    Timeline { step: usize },
    PatchWave { wave: u64 },
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
}

struct NodeState {
    ready: bool,
    unschedulable: bool,
    epoch: u64,
    used: Resources,
    pods: BTreeSet<usize>,
    grace_ms: u64,
}

struct PodState {
    node: Option<usize>,
    available: bool,
    down_since: u64,
    epoch: u64,
    cause: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
struct Timings {
    vm_boot: u64,
    fence: u64,
    fence_failure: f64,
    reboot: u64,
    install: u64,
    reimage: u64,
}

struct InFlight {
    cmd: Command,
    ok: Result<(), String>,
    /// Host epochs the command depends on, checked at completion.
    hosts: Vec<(usize, u64)>,
}

/// Recovery of one host failure, by phase (ms, from the crash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimFailure {
    /// Host or server.
    pub host: String,
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
    /// Pod evictions by the node lifecycle controller or drains.
    pub evictions: u32,
    /// Pod-minutes unavailable (bound to a node that is not Ready, starting, or pending).
    pub pod_minutes_unavailable: f64,
    /// Pods pending at the end.
    pub pods_pending_at_end: u32,
    /// Detection: crash → failure declared.
    pub detect: PhaseStats,
    /// Fencing: declared → fenced.
    pub fence: PhaseStats,
    /// Crash → every node Ready again.
    pub nodes_ready: PhaseStats,
    /// Crash → every pod it hit available again.
    pub pods_ready: PhaseStats,
    /// Every failure.
    pub failures: Vec<SimFailure>,
    /// Conditions in force at the end, as text.
    pub conditions_at_end: Vec<String>,
    /// Lines in the event log.
    pub log_lines: u64,
    /// SHA-256 of the event log, hex.
    pub log_sha256: String,
}

/// The simulated world: a [`Driver`] over a virtual-time event queue.
pub struct World<'a> {
    s: Setup,
    now: u64,
    end: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Entry>>,
    hosts: Vec<HostState>,
    host_index: BTreeMap<String, usize>,
    /// Rack name, its hosts, its power-failure stream.
    racks: Vec<(String, Vec<usize>, FailureStream)>,
    vm_at: BTreeMap<String, usize>,
    nodes: Vec<NodeState>,
    node_index: BTreeMap<String, usize>,
    pool_nodes: BTreeMap<String, Vec<usize>>,
    pods: Vec<PodState>,
    pending: BTreeMap<String, BTreeSet<usize>>,
    inflight: BTreeMap<CommandId, InFlight>,
    fence_stream: FailureStream,
    failures: Vec<SimFailure>,
    log: Log,
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
}

impl<'a> World<'a> {
    /// A world at time 0 in the state `setup` describes.
    pub fn new(setup: Setup, options: &Options, progress: impl FnMut(u64) + 'a) -> Self {
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
                let cluster = n.pool.split('/').next().unwrap_or_default();
                let grace_ms = estate.cluster(cluster).map_or(350_000, |c| {
                    c.spec.kubernetes.node_monitor_grace_period.millis()
                        + c.spec.kubernetes.not_ready_toleration.millis()
                });
                NodeState {
                    ready: true,
                    unschedulable: false,
                    epoch: 0,
                    used: Resources::ZERO,
                    pods: BTreeSet::new(),
                    grace_ms,
                }
            })
            .collect();
        let node_index: BTreeMap<String, usize> = setup
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let mut pool_nodes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
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
            vm_boot: estate.virtualized.spec.timings.vm_boot.millis(),
            fence: estate.virtualized.spec.ha.fence_latency.millis(),
            fence_failure: estate.virtualized.spec.ha.fence_failure_probability,
            reboot: estate.bare_metal.spec.reboot.millis(),
            install: estate.bare_metal.spec.os_install.millis(),
            reimage: estate.bare_metal.spec.reimage.millis(),
        };
        let setup_workloads = setup.workloads.len();
        let mut desired = vec![0u32; setup_workloads];
        for p in &setup.pods {
            desired[p.workload as usize] += 1;
        }
        let mut w = Self {
            timings,
            fence_stream: FailureStream::new(seed, "fence", 0, estate.scenario.spec.failures.hosts),
            vm_at: setup.vms.clone(),
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
            pods,
            pending: BTreeMap::new(),
            inflight: BTreeMap::new(),
            failures: Vec::new(),
            log: Log::default(),
            unavailable_ms: 0,
            available: vec![0; setup_workloads],
            desired,
            quiet: true,
            summary,
            heartbeat_ms,
            progress: Box::new(progress),
            last_progress: 0,
        };
        w.start();
        w
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
            "start",
            json!({"env": self.summary.env, "seed": self.summary.seed, "durationMs": self.end,
                   "hosts": self.summary.hosts, "vms": self.summary.vms, "nodes": self.summary.nodes,
                   "pods": self.summary.pods, "vmsUnplaced": self.s.unplaced}),
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
            if let Some(n) = self.schedule_pod(p) {
                self.bind(p, n);
                self.mark_available(p);
            } else {
                let pool = self.s.pods[p].pool.clone();
                self.pending.entry(pool).or_default().insert(p);
            }
        }
        self.quiet = false;
        for w in 0..self.available.len() {
            self.log_availability(w);
        }
        let pending: usize = self.pending.values().map(BTreeSet::len).sum();
        if pending > 0 {
            self.log.write(
                0,
                "podsPending",
                json!({"pods": pending, "reason": "waiting for capacity"}),
            );
        }
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
            "workloadAvailability",
            json!({"workload": self.s.workloads[w], "available": self.available[w], "desired": self.desired[w]}),
        );
    }

    /// The Ready, schedulable node of the pod's pool with most free room that fits it.
    fn schedule_pod(&self, p: usize) -> Option<usize> {
        let pod = &self.s.pods[p];
        let nodes = self.pool_nodes.get(&pod.pool)?;
        let mut best: Option<(u128, usize)> = None;
        for &n in nodes {
            let st = &self.nodes[n];
            if !st.ready || st.unschedulable {
                continue;
            }
            let alloc = self.s.nodes[n].allocatable;
            let free = alloc.saturating_sub(&st.used);
            if free.cpu_millis < pod.requests.cpu_millis
                || free.memory_bytes < pod.requests.memory_bytes
            {
                continue;
            }
            let score = u128::from(free.cpu_millis) * 1_000_000
                / u128::from(alloc.cpu_millis.max(1))
                + u128::from(free.memory_bytes) * 1_000_000 / u128::from(alloc.memory_bytes.max(1));
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, n));
            }
        }
        best.map(|(_, n)| n)
    }

    fn bind(&mut self, p: usize, n: usize) {
        self.pods[p].node = Some(n);
        self.nodes[n].used += self.s.pods[p].requests;
        self.nodes[n].pods.insert(p);
    }

    fn unbind(&mut self, p: usize) {
        if let Some(n) = self.pods[p].node.take() {
            self.nodes[n].used = self.nodes[n].used.saturating_sub(&self.s.pods[p].requests);
            self.nodes[n].pods.remove(&p);
        }
    }

    fn node_down(&mut self, n: usize, cause: Option<usize>) {
        if !self.nodes[n].ready {
            return;
        }
        self.nodes[n].ready = false;
        self.nodes[n].epoch += 1;
        let pods: Vec<usize> = self.nodes[n].pods.iter().copied().collect();
        for &p in &pods {
            self.mark_unavailable(p, cause);
        }
        let epoch = self.nodes[n].epoch;
        let t = self.now + self.nodes[n].grace_ms;
        self.push(t, Ev::Evict { node: n, epoch });
        let name = self.s.nodes[n].name.clone();
        self.log.write(
            self.now,
            "nodeNotReady",
            json!({"node": name, "pods": pods.len()}),
        );
    }

    fn node_up(&mut self, n: usize) {
        if self.nodes[n].ready {
            return;
        }
        self.nodes[n].ready = true;
        self.nodes[n].epoch += 1;
        let epoch = self.nodes[n].epoch;
        self.push(self.now + POD_START_MS, Ev::PodsReady { node: n, epoch });
        let name = self.s.nodes[n].name.clone();
        self.log.write(self.now, "nodeReady", json!({"node": name}));
        let pool = self.s.nodes[n].pool.clone();
        self.retry_pending(&pool);
    }

    fn retry_pending(&mut self, pool: &str) {
        let Some(waiting) = self.pending.get(pool) else {
            return;
        };
        let waiting: Vec<usize> = waiting.iter().copied().collect();
        let mut placed = 0;
        for p in waiting {
            if let Some(n) = self.schedule_pod(p) {
                self.bind(p, n);
                if let Some(set) = self.pending.get_mut(pool) {
                    set.remove(&p);
                }
                let epoch = self.pods[p].epoch;
                self.push(self.now + POD_START_MS, Ev::PodReady { pod: p, epoch });
                placed += 1;
            }
        }
        if placed > 0 {
            self.log.write(
                self.now,
                "podsScheduled",
                json!({"pool": pool, "pods": placed}),
            );
        }
    }

    /// Evicts the pods of node `n`: those with local volumes stay bound and wait for it,
    /// the others go wherever the scheduler finds room, or pend.
    fn evict(&mut self, n: usize, reason: &str) {
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
            self.unbind(p);
            self.summary.evictions += 1;
            match self.schedule_pod(p) {
                Some(to) => {
                    self.bind(p, to);
                    let epoch = self.pods[p].epoch;
                    self.push(self.now + POD_START_MS, Ev::PodReady { pod: p, epoch });
                    moved += 1;
                }
                None => {
                    let pool = self.s.pods[p].pool.clone();
                    self.pending.entry(pool).or_default().insert(p);
                    pending += 1;
                }
            }
        }
        let name = self.s.nodes[n].name.clone();
        self.log.write(
            self.now,
            "podsEvicted",
            json!({"node": name, "reason": reason, "rescheduled": moved,
                   "pendingForCapacity": pending, "waitingForNode": local}),
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
        let dead: Vec<String> = self
            .vm_at
            .iter()
            .filter(|(_, host)| **host == h)
            .map(|(v, _)| v.clone())
            .collect();
        for vm in dead {
            self.vm_at.remove(&vm);
            if let Some(n) = self.node_of_vm(&vm) {
                self.node_down(n, cause);
            }
        }
        if self.s.env == EnvironmentType::BareMetal {
            let name = &self.s.hosts[h].name;
            if let Some(&n) = self.node_index.get(name) {
                self.node_down(n, cause);
            }
        }
    }

    fn host_up(&mut self, h: usize) {
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
        let names: Vec<&str> = up.iter().map(|h| self.s.hosts[*h].name.as_str()).collect();
        self.log.write(
            self.now,
            "rackFailed",
            json!({"rack": name, "hosts": names, "repairMs": repair}),
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
            crashed_at: self.now,
            ..SimFailure::default()
        });
        let f = self.failures.len() - 1;
        self.hosts[h].failure = Some(f);
        self.summary.host_failures += 1;
        let repair = repair.unwrap_or_else(|| self.hosts[h].stream.repair_time());
        let lost: Vec<&String> = self
            .vm_at
            .iter()
            .filter(|(_, at)| **at == h)
            .map(|(v, _)| v)
            .collect();
        self.log.write(
            self.now,
            "hostFailed",
            json!({"host": name, "repairMs": repair, "vmsLost": lost}),
        );
        self.host_down(h, Down::Crash, Some(f));
        let last_heard = self.now / self.heartbeat_ms * self.heartbeat_ms;
        self.push(
            last_heard + self.heartbeat_ms,
            Ev::Deliver(Observation::HeartbeatMissed {
                host: name,
                last_heard: Time(last_heard),
            }),
        );
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
        self.log
            .write(self.now, "hostRepaired", json!({"host": name}));
        self.host_up(h);
        let next_beat = self.now.div_ceil(self.heartbeat_ms) * self.heartbeat_ms;
        self.push(
            next_beat,
            Ev::Deliver(Observation::Heartbeat { host: name }),
        );
        self.hosts[h].clock += 1;
        let clock = self.hosts[h].clock;
        let ttf = self.hosts[h].stream.time_to_failure();
        self.push(self.now + ttf, Ev::Crash { host: h, clock });
    }

    // --- commands -----------------------------------------------------------------------

    fn host_idx(&self, name: &str) -> Option<usize> {
        self.host_index.get(name).copied()
    }

    fn migration_ms(&self, vm: &str) -> Option<u64> {
        let t = &self.s.estate.virtualized.spec.timings;
        if t.dirty_rate >= 1.0 {
            return None;
        }
        let bytes = self.s.vm_memory.get(vm).copied().unwrap_or(0) as f64;
        let bits_per_ms = t.migration_gbps.max(0.001) * 1e6;
        // Pre-copy rounds form a geometric series: M/B × (1 + d + d² + …) = M/B / (1 − d).
        Some((bytes * 8.0 / bits_per_ms / (1.0 - t.dirty_rate)) as u64 + 1_000)
    }

    fn begin(&mut self, cmd: &Command) -> (u64, Result<(), String>, Vec<(usize, u64)>) {
        let tm = self.timings;
        let epoch = |w: &Self, h: usize| (h, w.hosts[h].epoch);
        match &cmd.kind {
            CommandKind::StartVm { vm, host } => {
                let Some(h) = self.host_idx(host) else {
                    return (0, Err(format!("unknown host {host}")), vec![]);
                };
                if let Some(&at) = self.vm_at.get(vm) {
                    if at == h {
                        return (0, Ok(()), vec![]);
                    }
                    self.summary.second_copies += 1;
                    self.log.write(
                        self.now,
                        "secondCopy",
                        json!({"vm": vm, "runningOn": self.s.hosts[at].name, "startedOn": host}),
                    );
                }
                if !self.hosts[h].up {
                    return (API_MS, Err(format!("host {host} is down")), vec![]);
                }
                (tm.vm_boot, Ok(()), vec![epoch(self, h)])
            }
            CommandKind::StopVm { host, .. } => {
                let h = self.host_idx(host);
                (
                    10_000,
                    Ok(()),
                    h.map(|h| vec![epoch(self, h)]).unwrap_or_default(),
                )
            }
            CommandKind::MigrateVm { vm, from, to } => {
                let (Some(f), Some(t)) = (self.host_idx(from), self.host_idx(to)) else {
                    return (0, Err("unknown host".into()), vec![]);
                };
                match self.migration_ms(vm) {
                    Some(ms) => (ms, Ok(()), vec![epoch(self, f), epoch(self, t)]),
                    None => (
                        60_000,
                        Err("pre-copy does not converge (dirty rate ≥ bandwidth)".into()),
                        vec![],
                    ),
                }
            }
            CommandKind::FenceHost { .. } => {
                let p = tm.fence_failure;
                let ok = if self.fence_stream.chance(p) {
                    Err("BMC did not confirm power-off".into())
                } else {
                    Ok(())
                };
                (tm.fence, ok, vec![])
            }
            CommandKind::MaintainHost { host } => {
                let Some(h) = self.host_idx(host) else {
                    return (0, Err(format!("unknown host {host}")), vec![]);
                };
                if let Some(&n) = self.node_index.get(host) {
                    self.nodes[n].unschedulable = true;
                }
                self.host_down(h, Down::Planned, None);
                (tm.reboot, Ok(()), vec![])
            }
            CommandKind::Cordon { node } => {
                if let Some(&n) = self.node_index.get(node) {
                    self.nodes[n].unschedulable = true;
                }
                (API_MS, Ok(()), vec![])
            }
            CommandKind::Uncordon { .. } => (API_MS, Ok(()), vec![]),
            CommandKind::Drain { node } => {
                if let Some(&n) = self.node_index.get(node) {
                    self.nodes[n].unschedulable = true;
                    let pods: Vec<usize> = self.nodes[n].pods.iter().copied().collect();
                    if !pods.is_empty() {
                        self.evict(n, "drain");
                    }
                }
                (API_MS, Ok(()), vec![])
            }
            CommandKind::ProvisionServer { server } | CommandKind::ReimageServer { server } => {
                let ms = if matches!(cmd.kind, CommandKind::ProvisionServer { .. }) {
                    tm.install
                } else {
                    tm.reimage
                };
                if let Some(h) = self.host_idx(server) {
                    self.host_down(h, Down::Planned, None);
                }
                (ms, Ok(()), vec![])
            }
        }
    }

    /// Applies a finished command to the world; `Err` if it failed.
    fn complete(&mut self, f: InFlight) -> Result<(), String> {
        f.ok.clone()?;
        for (h, e) in &f.hosts {
            if self.hosts[*h].epoch != *e {
                return Err(format!("host {} was lost", self.s.hosts[*h].name));
            }
        }
        match &f.cmd.kind {
            CommandKind::StartVm { vm, host } => {
                let h = self.host_idx(host).unwrap_or(0);
                self.vm_at.insert(vm.clone(), h);
                if let Some(n) = self.node_of_vm(vm) {
                    self.node_up(n);
                }
            }
            CommandKind::StopVm { vm, .. } => {
                self.vm_at.remove(vm);
                if let Some(n) = self.node_of_vm(vm) {
                    self.node_down(n, None);
                }
            }
            CommandKind::MigrateVm { vm, from, to } => {
                let (f, t) = (self.host_idx(from), self.host_idx(to));
                if self.vm_at.get(vm).copied() != f {
                    return Err(format!("{vm} is not running on {from}"));
                }
                if let Some(t) = t {
                    self.vm_at.insert(vm.clone(), t);
                }
                self.summary.migrations += 1;
            }
            CommandKind::FenceHost { host } => {
                if let Some(h) = self.host_idx(host)
                    && self.hosts[h].up
                {
                    self.host_down(h, Down::Fenced, None);
                    self.push(self.now + self.timings.reboot, Ev::Repaired { host: h });
                }
            }
            CommandKind::MaintainHost { host } => {
                if let Some(h) = self.host_idx(host) {
                    if self.hosts[h].down == Some(Down::Planned) {
                        self.host_up(h);
                    } else if !self.hosts[h].up {
                        return Err(format!("host {host} failed during maintenance"));
                    }
                }
                self.summary.maintenances += 1;
            }
            CommandKind::Uncordon { node } => {
                if let Some(&n) = self.node_index.get(node) {
                    self.nodes[n].unschedulable = false;
                    let pool = self.s.nodes[n].pool.clone();
                    self.retry_pending(&pool);
                }
            }
            CommandKind::ProvisionServer { server } | CommandKind::ReimageServer { server } => {
                if let Some(h) = self.host_idx(server) {
                    self.host_up(h);
                }
            }
            CommandKind::Cordon { .. } | CommandKind::Drain { .. } => {}
        }
        Ok(())
    }

    fn process(&mut self, ev: Ev) -> Option<Observation> {
        match ev {
            Ev::Crash { host, clock } => self.crash(host, clock, None),
            Ev::RackCrash { rack } => self.rack_crash(rack),
            Ev::Repaired { host } => self.repaired(host),
            Ev::Deliver(obs) => return Some(obs),
            Ev::Done { id } => {
                let f = self.inflight.remove(&id)?;
                let r = self.complete(f);
                return Some(match r {
                    Ok(()) => {
                        self.log.write(self.now, "completed", json!({"id": id.0}));
                        Observation::CommandCompleted { id }
                    }
                    Err(reason) => {
                        self.log
                            .write(self.now, "failed", json!({"id": id.0, "reason": reason}));
                        Observation::CommandFailed { id, reason }
                    }
                });
            }
            Ev::Evict { node, epoch } => {
                if self.nodes[node].epoch == epoch && !self.nodes[node].ready {
                    self.evict(node, "node not ready");
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
            Ev::Timeline { step } => {
                let s = self.s.estate.scenario.spec.operations.timeline[step].clone();
                if s.action == TimelineAction::HostMaintenance
                    && let Some(host) = s.host.clone()
                    && self.host_index.contains_key(&host)
                {
                    self.log.write(
                        self.now,
                        "maintenanceRequested",
                        json!({"host": host, "by": "timeline"}),
                    );
                    return Some(Observation::MaintenanceRequested { host });
                }
                self.log.write(
                    self.now,
                    "timelineStepNotModelled",
                    json!({"action": s.action, "cluster": s.cluster, "host": s.host}),
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
                self.log
                    .write(self.now, "patchWave", json!({"wave": wave, "hosts": n}));
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

    /// Ends the run: closes open unavailability, fills the summary, hashes the log.
    pub fn finish(mut self, control: &Control) -> Run {
        self.now = self.end;
        for p in 0..self.pods.len() {
            if !self.pods[p].available {
                self.unavailable_ms += u128::from(self.end.saturating_sub(self.pods[p].down_since));
            }
        }
        // Join the control plane's view of each failure (in order per host).
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for rec in control.failures() {
            let k = seen.entry(rec.host.as_str()).or_insert(0);
            let nth = *k;
            *k += 1;
            if let Some(f) = self
                .failures
                .iter_mut()
                .filter(|f| f.host == rec.host)
                .nth(nth)
            {
                f.declared_at = Some(rec.declared_at.millis());
                f.fenced_at = rec.fenced_at.map(Time::millis);
                if self.s.env == EnvironmentType::Virtualized {
                    f.nodes_ready_at = rec.recovered_at.map(Time::millis);
                }
            }
        }
        let fs = &self.failures;
        self.summary.detect = PhaseStats::of(
            fs.iter()
                .filter_map(|f| Some(f.declared_at? - f.crashed_at)),
        );
        self.summary.fence = PhaseStats::of(
            fs.iter()
                .filter_map(|f| Some(f.fenced_at? - f.declared_at?)),
        );
        self.summary.nodes_ready = PhaseStats::of(
            fs.iter()
                .filter_map(|f| Some(f.nodes_ready_at? - f.crashed_at)),
        );
        self.summary.pods_ready = PhaseStats::of(
            fs.iter()
                .filter_map(|f| Some(f.pods_ready_at? - f.crashed_at)),
        );
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
        self.log.write(
            self.end,
            "end",
            json!({"hostFailures": self.summary.host_failures, "podMinutesUnavailable": self.summary.pod_minutes_unavailable,
                   "secondCopies": self.summary.second_copies}),
        );
        self.summary.log_lines = self.log.lines;
        let digest = Sha256::digest(&self.log.buf);
        self.summary.log_sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        Run {
            log: self.log.buf,
            summary: self.summary,
        }
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
                    return Some((Time(w), Observation::Timer));
                }
            }
            let Reverse(entry) = self.queue.pop()?;
            if entry.t > self.end {
                return None;
            }
            self.now = entry.t;
            if self.now >= self.last_progress + 86_400_000 {
                self.last_progress = self.now;
                (self.progress)(self.now);
            }
            if let Some(obs) = self.process(entry.ev) {
                return Some((Time(self.now), obs));
            }
        }
    }

    fn submit(&mut self, now: Time, command: Command) {
        self.now = now.millis().max(self.now);
        let v = serde_json::to_value(&command).unwrap_or_default();
        self.log.write(self.now, "command", v);
        let (ms, ok, hosts) = self.begin(&command);
        let id = command.id;
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

    fn publish(&mut self, now: Time, changes: Vec<ConditionChange>) {
        for c in changes {
            let v = serde_json::to_value(&c).unwrap_or_default();
            self.log.write(now.millis(), "condition", v);
        }
    }
}
