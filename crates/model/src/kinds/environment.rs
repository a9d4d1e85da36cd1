//! `Environment`: platform policy and the platform's reaction times, one per type —
//! `virtualized` (a pool of hypervisor hosts) or `bareMetal` (one node per server).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{RestartPriority, VolumeStorage};
use crate::policy::PlacementStrategy;
use crate::quantity::{ByteSize, Cpu, Duration};

/// Which kind of platform an Environment describes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum EnvironmentType {
    /// Node VMs on a shared hypervisor pool.
    Virtualized,
    /// One node per physical server.
    BareMetal,
}

impl EnvironmentType {
    /// Both, in report order.
    pub const ALL: [Self; 2] = [Self::Virtualized, Self::BareMetal];

    /// The CLI spelling (`virtualized`, `bare-metal`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Virtualized => "virtualized",
            Self::BareMetal => "bare-metal",
        }
    }
}

/// The spec of a `virtualized` Environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualizedSpec {
    /// Always `virtualized`.
    #[serde(rename = "type")]
    pub kind: EnvironmentType,
    /// Overcommit ratios.
    #[serde(default)]
    pub overcommit: Overcommit,
    /// Per-host hypervisor reservation (reduces host capacity).
    #[serde(default = "default_hypervisor_reservation")]
    pub hypervisor_reservation: HostReservation,
    /// Hyperconverged storage reservation per host (reduces host capacity).
    #[serde(default)]
    pub storage: HyperconvergedStorage,
    /// Per-VM overhead (reduces host capacity per VM placed).
    #[serde(default = "default_per_vm_overhead")]
    pub per_vm_overhead: HostReservation,
    /// Hypervisor performance overhead per resource, as a fraction lost; scales a VM node's
    /// allocatable (never also counted as a host reservation).
    #[serde(default)]
    pub performance_overhead: PerformanceOverhead,
    /// `spread` (least allocated first, default) or `pack` (most allocated first).
    #[serde(default)]
    pub placement_strategy: PlacementStrategy,
    /// High availability.
    #[serde(default)]
    pub ha: HaPolicy,
    /// Distributed resource scheduling (rebalancing by live migration).
    #[serde(default)]
    pub drs: DrsPolicy,
    /// How long platform actions take.
    #[serde(default)]
    pub timings: VirtualizedTimings,
    /// Where pod volumes live unless a StorageClass or annotation says otherwise (default `shared`).
    #[serde(default = "shared")]
    pub volume_storage: VolumeStorage,
    /// Path of a `Calibration` document with measured timings and overheads, relative to
    /// this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
}

fn shared() -> VolumeStorage {
    VolumeStorage::Shared
}

/// CPU and memory overcommit ratios.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Overcommit {
    /// vCPUs per hardware thread (default 4.0: OpenStack Nova's `initial_cpu_allocation_ratio`
    /// and the "typical 4:1" of the vSphere design cookbook, REFERENCES.md §6).
    #[serde(default = "default_cpu_overcommit")]
    pub cpu: f64,
    /// Memory ratio (default 1.0, Nova's default: an OOM-killed node VM is data loss).
    #[serde(default = "default_memory_overcommit")]
    pub memory: f64,
}

fn default_cpu_overcommit() -> f64 {
    4.0
}
fn default_memory_overcommit() -> f64 {
    1.0
}

impl Default for Overcommit {
    fn default() -> Self {
        Self {
            cpu: default_cpu_overcommit(),
            memory: default_memory_overcommit(),
        }
    }
}

/// CPU (cores) and memory set aside on every host or per VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostReservation {
    /// CPU, in cores or millicores.
    #[serde(default)]
    pub cpu: Cpu,
    /// Memory.
    #[serde(default)]
    pub memory: ByteSize,
}

/// 2 cores and 8Gi per host: an assumption (no source in REFERENCES.md); measure your hypervisor.
fn default_hypervisor_reservation() -> HostReservation {
    HostReservation {
        cpu: Cpu(2000),
        memory: ByteSize(8 << 30),
    }
}
/// 256Mi per VM for QEMU and device emulation: an assumption (no source in REFERENCES.md).
fn default_per_vm_overhead() -> HostReservation {
    HostReservation {
        cpu: Cpu(0),
        memory: ByteSize(256 << 20),
    }
}

/// Hyperconverged storage: what its daemons take from each host, and how data is replicated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HyperconvergedStorage {
    /// CPU reserved per host (default 4 cores).
    #[serde(default = "default_storage_cpu")]
    pub cpu: Cpu,
    /// Memory reserved per host (default 32Gi).
    #[serde(default = "default_storage_memory")]
    pub memory: ByteSize,
    /// Copies of each block (default 2).
    #[serde(default = "default_replication")]
    pub replication_factor: u32,
}

/// 4 cores: an assumption (no source in REFERENCES.md).
fn default_storage_cpu() -> Cpu {
    Cpu(4000)
}
/// 32Gi: an assumption (no source in REFERENCES.md).
fn default_storage_memory() -> ByteSize {
    ByteSize(32 << 30)
}
fn default_replication() -> u32 {
    2
}

impl Default for HyperconvergedStorage {
    fn default() -> Self {
        Self {
            cpu: default_storage_cpu(),
            memory: default_storage_memory(),
            replication_factor: default_replication(),
        }
    }
}

/// Fraction of each resource's performance lost to the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PerformanceOverhead {
    /// CPU (default 0.023: tuned KVM Linpack −2.3 %, Felter et al. raw logs, REFERENCES.md §1).
    #[serde(default = "default_perf_cpu")]
    pub cpu: f64,
    /// Memory (default 0.013: STREAM Triad −1.3 %, same source).
    #[serde(default = "default_perf_memory")]
    pub memory: f64,
    /// Disk (default 0.49: fio 4K random read −49 % IOPS, same source; untuned virtio 2014).
    #[serde(default = "default_perf_disk")]
    pub disk: f64,
    /// Network (default 0.006: nuttcp 10 GbE throughput −0.6 %, same source).
    #[serde(default = "default_perf_network")]
    pub network: f64,
}

fn default_perf_cpu() -> f64 {
    0.023
}
fn default_perf_memory() -> f64 {
    0.013
}
fn default_perf_disk() -> f64 {
    0.49
}
fn default_perf_network() -> f64 {
    0.006
}

impl Default for PerformanceOverhead {
    fn default() -> Self {
        Self {
            cpu: default_perf_cpu(),
            memory: default_perf_memory(),
            disk: default_perf_disk(),
            network: default_perf_network(),
        }
    }
}

/// HA admission control: how capacity is held back so failed hosts' VMs can restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdmissionControl {
    /// Reserve F/N of cluster capacity for F host failures (vSphere's default policy).
    #[default]
    Percentage,
    /// Slot-based: enough slots survive the F largest hosts failing.
    Slots,
    /// F dedicated, idle failover hosts.
    FailoverHosts,
}

/// What can fence (power off) a silent host, so its VMs may start elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Fencing {
    /// The host's BMC (IPMI, Redfish): a power-off taking `fenceLatency` that fails with
    /// `fenceFailureProbability`, and cannot be done when the host's rack lost power.
    #[default]
    Bmc,
    /// Only the host's own agent (no BMC, as on `scripts/testbed`): a host that is silent
    /// because it crashed or is cut off cannot be fenced, so its VMs restart once its agent
    /// has surely killed them (last heard + heartbeat + `selfFenceTimeout` +
    /// `selfFenceMargin`). `fenceLatency` is then the agent's kill of its VMs, which a
    /// Calibration measures.
    Agent,
}

/// Host HA: detection, fencing and restart.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HaPolicy {
    /// Whether failed hosts' VMs restart elsewhere (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Admission control policy, sized from the Scenario's `hostFailuresToTolerate`.
    #[serde(default)]
    pub admission_control: AdmissionControl,
    /// Default restart priority of VMs that do not set one.
    #[serde(default)]
    pub default_restart_priority: RestartPriority,
    /// Heartbeat interval (default 1s, vSphere HA).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval: Duration,
    /// Silence after which a host is declared failed (default 15s, vSphere HA).
    #[serde(default = "default_detection")]
    pub failure_detection_timeout: Duration,
    /// A cut-off host kills its own VMs after this long (default 60s, Proxmox VE watchdog).
    #[serde(default = "default_self_fence")]
    pub self_fence_timeout: Duration,
    /// Added to `selfFenceTimeout` (and one heartbeat interval) before the VMs of a silent,
    /// unfenced host count as dead and restart elsewhere (default 10s): the agent's own
    /// check interval and clock drift. A lab on one machine may set it to 1s.
    #[serde(default = "default_self_fence_margin")]
    pub self_fence_margin: Duration,
    /// What fences a silent host (default `bmc`).
    #[serde(default)]
    pub fencing: Fencing,
    /// Time for a fence (power off via BMC, or the agent's kill under `fencing: agent`) to
    /// complete (default 10s; no published figure).
    #[serde(default = "default_fence_latency")]
    pub fence_latency: Duration,
    /// Chance a fence fails, e.g. the BMC lost power with the host (default 0.02; no
    /// published figure — apache/cloudstack PR #13589 shows the failure mode exists).
    #[serde(default = "default_fence_failure")]
    pub fence_failure_probability: f64,
    /// When the Inventory declares zones, a failed host's VMs restart on hosts of its zone.
    /// When none of them can take a VM: `true` (default) restarts it outside the zone,
    /// recorded as a zone exception (a `ZoneException` condition on the VM) and moved back
    /// into its zone by live migration once a host there has room; `false` leaves it down,
    /// with the reason, until one has.
    #[serde(default = "yes")]
    pub restart_outside_zone: bool,
    /// When no host a failed host's VM's strict (or `atMost`) placement group allows can
    /// take it (three control-plane VMs on three hosts, one failed): `false` (default)
    /// leaves it down, with the reason, until one can; `true` restarts it beside a member
    /// of its group, on the host with the fewest, recorded as a spread exception (a
    /// `besideGroup` condition on the VM) and moved apart by live migration once a host the
    /// group allows has room. An etcd member beside another survives the failure of every
    /// host but that one; a member left down survives none.
    #[serde(default)]
    pub restart_beside_group: bool,
}

fn yes() -> bool {
    true
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(1)
}
fn default_detection() -> Duration {
    Duration::from_secs(15)
}
fn default_self_fence() -> Duration {
    Duration::from_secs(60)
}
fn default_self_fence_margin() -> Duration {
    Duration::from_secs(10)
}
fn default_fence_latency() -> Duration {
    Duration::from_secs(10)
}
fn default_fence_failure() -> f64 {
    0.02
}

impl HaPolicy {
    /// The longest a VM of a failed host waits before HA restarts it elsewhere: the
    /// detection timeout, or, when the fence fails, until the host's own watchdog has
    /// surely killed it (its last heartbeat, the self-fence timeout and the margin).
    pub fn worst_restart_after(&self) -> Duration {
        let self_fenced = self
            .heartbeat_interval
            .millis()
            .saturating_add(self.self_fence_timeout.millis())
            .saturating_add(self.self_fence_margin.millis());
        Duration(self.failure_detection_timeout.millis().max(self_fenced))
    }

    /// When a failed host's VMs restart elsewhere if nothing goes wrong: once they are
    /// known dead, or, through a BMC, after the detection timeout and a fence if sooner.
    pub fn expected_restart_after(&self) -> Duration {
        let known_dead = self.worst_restart_after();
        match self.fencing {
            Fencing::Bmc => Duration(
                self.failure_detection_timeout
                    .millis()
                    .saturating_add(self.fence_latency.millis())
                    .min(known_dead.millis()),
            ),
            Fencing::Agent => known_dead,
        }
    }
}

impl Default for HaPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            admission_control: AdmissionControl::default(),
            default_restart_priority: RestartPriority::default(),
            heartbeat_interval: default_heartbeat(),
            failure_detection_timeout: default_detection(),
            self_fence_timeout: default_self_fence(),
            self_fence_margin: default_self_fence_margin(),
            fencing: Fencing::default(),
            fence_latency: default_fence_latency(),
            fence_failure_probability: default_fence_failure(),
            restart_outside_zone: true,
            restart_beside_group: false,
        }
    }
}

/// DRS: rebalancing by live migration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrsPolicy {
    /// Whether DRS runs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Imbalance that triggers moves: the standard deviation of per-host CPU demand/capacity
    /// (default 0.1; an assumption, vSphere does not publish its thresholds as numbers).
    #[serde(default = "default_drs_threshold")]
    pub threshold: f64,
    /// How often DRS looks (default 5m, vSphere DRS's cycle).
    #[serde(default = "default_drs_interval")]
    pub interval: Duration,
    /// Moves per interval at most (default 4).
    #[serde(default = "default_drs_moves")]
    pub max_moves_per_interval: u32,
}

fn default_drs_threshold() -> f64 {
    0.1
}
fn default_drs_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_drs_moves() -> u32 {
    4
}

impl Default for DrsPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: default_drs_threshold(),
            interval: default_drs_interval(),
            max_moves_per_interval: default_drs_moves(),
        }
    }
}

/// How long platform actions on VMs take.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualizedTimings {
    /// Linked clone of a node VM from its image (default 2m: the thin-clone anecdote in
    /// REFERENCES.md §2, hashicorp/terraform#3952).
    #[serde(default = "default_clone")]
    pub vm_clone: Duration,
    /// Boot to a Ready node (default 3m; no controlled measurement exists, REFERENCES.md §2
    /// bounds it by CI timeouts of 8–10 min; a Calibration file replaces it).
    #[serde(default = "default_boot")]
    pub vm_boot: Duration,
    /// Live-migration bandwidth per host in Gbit/s (default 10).
    #[serde(default = "default_migration_gbps")]
    pub migration_gbps: f64,
    /// Guest memory dirtied per second during migration, as a fraction of bandwidth
    /// (default 0.2); at ≥ 1 a migration never converges and falls back to restart.
    #[serde(default = "default_dirty")]
    pub dirty_rate: f64,
    /// The switch-over that ends a live migration: the last dirty pages and the device
    /// state sent while the VM is paused, and the target resumed (default 1s).
    #[serde(default = "default_switchover")]
    pub migration_switchover: Duration,
}

fn default_clone() -> Duration {
    Duration::from_secs(120)
}
fn default_boot() -> Duration {
    Duration::from_secs(180)
}
fn default_migration_gbps() -> f64 {
    10.0
}
fn default_dirty() -> f64 {
    0.2
}
fn default_switchover() -> Duration {
    Duration::from_secs(1)
}

impl Default for VirtualizedTimings {
    fn default() -> Self {
        Self {
            vm_clone: default_clone(),
            vm_boot: default_boot(),
            migration_gbps: default_migration_gbps(),
            dirty_rate: default_dirty(),
            migration_switchover: default_switchover(),
        }
    }
}

/// The spec of a `bareMetal` Environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BareMetalSpec {
    /// Always `bareMetal`.
    #[serde(rename = "type")]
    pub kind: EnvironmentType,
    /// OS install to a Ready node (default 45m: within Metal3's 50 m provisioning CI bound
    /// and the 3–20 min image write plus boot and first-boot scripts, REFERENCES.md §2).
    #[serde(default = "default_install")]
    pub os_install: Duration,
    /// Reimage in place for an upgrade (default 30m: Ironic's 1800 s deploy callback bound).
    #[serde(default = "default_reimage")]
    pub reimage: Duration,
    /// Reboot of a server (default 10m: BIOS POST and boot of a large server; an assumption).
    #[serde(default = "default_reboot")]
    pub reboot: Duration,
    /// Swap in a cold spare server, racking and cabling included (default 4h; an assumption).
    #[serde(default = "default_swap")]
    pub hardware_swap: Duration,
    /// Whether clusters may share servers (default false): `true` merges the clusters of one
    /// OS image and Kubernetes version into one cluster with a namespace each.
    #[serde(default)]
    pub share_servers: bool,
    /// Where pod volumes live unless a StorageClass or annotation says otherwise (default `local`).
    #[serde(default = "local")]
    pub volume_storage: VolumeStorage,
    /// Where each cluster's control plane runs.
    #[serde(default)]
    pub control_plane: BareMetalControlPlane,
    /// Who shares the spare servers that replace failed servers and carry upgrade surges.
    #[serde(default)]
    pub spares: SparePolicy,
}

/// The bare-metal spare-server policy: the Scenario's requirements say how many spares
/// (`hostFailuresToTolerate + upgradeSurge`; every worker pool keeps room for
/// `hostsInMaintenance` drained servers itself), the scope says per what.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SparePolicy {
    /// `estate` (default), `rack` or `cluster`.
    #[serde(default)]
    pub scope: SpareScope,
}

/// Per what the spare servers are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SpareScope {
    /// One set of spares per server class, shared by every cluster: remediation, rollout
    /// surges and pool growth take from it, and a server a cluster gives up returns to it.
    #[default]
    Estate,
    /// One set per rack and server class, shared by the clusters, so a replacement finds a
    /// spare near the server it replaces (every scope takes one in that server's zone
    /// first).
    Rack,
    /// Each cluster keeps its own: every worker pool is sized for the failures too, and the
    /// cluster has its own surge servers (of its largest pool's class).
    Cluster,
}

impl SpareScope {
    /// Whether the spares are shared by the clusters (estate or rack).
    pub fn shared(self) -> bool {
        self != Self::Cluster
    }
}

/// Where a bare-metal cluster's control plane runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BareMetalControlPlane {
    /// `dedicated` (default: servers of its own, as kubeadm's HA guide draws it) or
    /// `stacked` (members on the first worker pool's servers, which also run workloads, as
    /// many bare-metal clusters do).
    #[serde(default)]
    pub placement: ControlPlanePlacement,
}

/// Dedicated or stacked control-plane servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ControlPlanePlacement {
    /// Servers of its own.
    #[default]
    Dedicated,
    /// On the first worker pool's servers.
    Stacked,
}

fn local() -> VolumeStorage {
    VolumeStorage::Local
}
fn default_install() -> Duration {
    Duration::from_secs(45 * 60)
}
fn default_reimage() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_reboot() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_swap() -> Duration {
    Duration::from_hours(4)
}

/// The virtualized Environment used when the input has none.
pub fn default_virtualized() -> VirtualizedSpec {
    VirtualizedSpec {
        kind: EnvironmentType::Virtualized,
        overcommit: Overcommit::default(),
        hypervisor_reservation: default_hypervisor_reservation(),
        storage: HyperconvergedStorage::default(),
        per_vm_overhead: default_per_vm_overhead(),
        performance_overhead: PerformanceOverhead::default(),
        placement_strategy: PlacementStrategy::default(),
        ha: HaPolicy::default(),
        drs: DrsPolicy::default(),
        timings: VirtualizedTimings::default(),
        volume_storage: VolumeStorage::Shared,
        calibration: None,
    }
}

/// The bare-metal Environment used when the input has none.
pub fn default_bare_metal() -> BareMetalSpec {
    BareMetalSpec {
        kind: EnvironmentType::BareMetal,
        os_install: default_install(),
        reimage: default_reimage(),
        reboot: default_reboot(),
        hardware_swap: default_swap(),
        share_servers: false,
        control_plane: BareMetalControlPlane::default(),
        spares: SparePolicy::default(),
        volume_storage: VolumeStorage::Local,
    }
}

/// What every host sets aside before VMs: the hypervisor's plus the hyperconverged
/// storage's CPU and memory (performance overhead is separate: it shrinks a node VM's
/// allocatable instead, so nothing is counted twice).
pub fn host_reservation(spec: &VirtualizedSpec) -> HostReservation {
    HostReservation {
        cpu: Cpu(spec
            .hypervisor_reservation
            .cpu
            .0
            .saturating_add(spec.storage.cpu.0)),
        memory: ByteSize(
            spec.hypervisor_reservation
                .memory
                .0
                .saturating_add(spec.storage.memory.0),
        ),
    }
}
