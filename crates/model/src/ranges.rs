//! The documented range of every number that drives the simulator's event rate, the size
//! of a plan or arithmetic on user quantities, and the check that reports a value outside
//! it at the field's own line and column, with the range and the reason.
//!
//! The ranges are wide enough for any real estate and narrow enough that no accepted
//! input makes a command exhaust memory, run for hours or overflow a sum: a host MTBF of
//! one second, a DRS interval of zero or `cores: 4294967295` are refused here rather than
//! found later as an abort, a hang or a saturated number. docs/manifests.md lists them.

use std::fmt;

use crate::diag::{Diagnostic, Diagnostics};
use crate::estate::Named;
use crate::kinds::calibration::CalibrationSpec;
use crate::kinds::cluster::{ClusterSpec, NodePool};
use crate::kinds::environment::{BareMetalSpec, VirtualizedSpec};
use crate::kinds::inventory::InventorySpec;
use crate::kinds::price_sheet::PriceSheetSpec;
use crate::kinds::scenario::{HostFailures, ScenarioSpec};
use crate::kinds::vm_set::VmSetSpec;
use crate::quantity::{ByteSize, Duration, Money};
use crate::source::Location;
use crate::units::format_bytes;

/// A value a range can bound and a message can show.
pub trait Bounded: Copy + PartialOrd {
    /// The value as a message shows it.
    fn show(self) -> String;
    /// False for values no range holds (NaN, infinities).
    fn is_number(self) -> bool {
        true
    }
}

impl Bounded for Duration {
    fn show(self) -> String {
        self.to_string()
    }
}

impl Bounded for u64 {
    fn show(self) -> String {
        self.to_string()
    }
}

impl Bounded for i64 {
    fn show(self) -> String {
        self.to_string()
    }
}

impl Bounded for f64 {
    fn show(self) -> String {
        self.to_string()
    }
    fn is_number(self) -> bool {
        self.is_finite()
    }
}

impl Bounded for ByteSize {
    fn show(self) -> String {
        format_bytes(self.0)
    }
}

impl Bounded for Money {
    fn show(self) -> String {
        self.as_f64().to_string()
    }
}

/// The least and greatest accepted value of a field, both included, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits<T> {
    /// The least accepted value.
    pub min: T,
    /// The greatest accepted value.
    pub max: T,
    /// Why the range is what it is, for the error's help.
    pub why: &'static str,
}

impl<T: Bounded> Limits<T> {
    /// Whether `value` is inside the range.
    pub fn contains(&self, value: T) -> bool {
        value.is_number() && self.min <= value && value <= self.max
    }
}

impl<T: Bounded> fmt::Display for Limits<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.min.show(), self.max.show())
    }
}

const fn days(n: u64) -> Duration {
    Duration::from_days(n)
}
const fn years(n: u64) -> Duration {
    Duration::from_days(365 * n)
}

/// Simulated time of one run, in a Scenario or `--duration`.
pub const RUN_DURATION: Limits<Duration> = Limits {
    min: Duration::from_secs(60),
    max: years(100),
    why: "a run shorter than a minute measures nothing; a run's hourly series is kept for the report (about 0.3 MB a year), so a run is at most a century",
};

/// Paired runs per environment, in a Scenario or `--seeds`.
pub const RUNS: Limits<u64> = Limits {
    min: 1,
    max: 1000,
    why: "the 95 % intervals stop narrowing long before 1,000 runs",
};

/// Simulated run-years one `compare` may hold: runs × duration.
pub const RUN_YEARS: Limits<u64> = Limits {
    min: 0,
    max: 200,
    why: "event logs are streamed, but each run's hourly series is kept until the report is built (about 0.6 MB a run-year for both designs) and a run-year takes about a second of CPU; 32 runs of a year, the default, is 32",
};

/// Mean time between failures of one host or one rack.
pub const MTBF: Limits<Duration> = Limits {
    min: days(1),
    max: years(10_000),
    why: "a server failing more than once a day is broken, not a failure model, and each failure is simulated event by event",
};

/// Time to repair a host or restore a rack.
pub const REPAIR: Limits<Duration> = Limits {
    min: Duration::from_secs(60),
    max: days(365),
    why: "a repair is at least a minute of work and ends within a year",
};

/// Weibull shape of the time between failures.
pub const WEIBULL_SHAPE: Limits<f64> = Limits {
    min: 0.1,
    max: 10.0,
    why: "field studies measure shapes from 0.3 to 1.5; below 0.1 nearly every interval is zero and failures arrive in storms",
};

/// Interval of recurring operations: OS and host patching.
pub const PATCHING_INTERVAL: Limits<Duration> = Limits {
    min: days(1),
    max: years(1000),
    why: "each patch round drains and restarts every node or host, which takes hours; a very long interval turns patching off",
};

/// Kubernetes minor upgrades per cluster per year.
pub const UPGRADES_PER_YEAR: Limits<u64> = Limits {
    min: 0,
    max: 12,
    why: "upstream releases three minors a year; a rolling upgrade of a whole cluster takes hours",
};

/// Time from the start of a run to a timeline step.
pub const TIMELINE_AT: Limits<Duration> = Limits {
    min: Duration(0),
    max: years(100),
    why: "a step after the longest run never happens",
};

/// Interval between two DRS passes.
pub const DRS_INTERVAL: Limits<Duration> = Limits {
    min: Duration::from_secs(60),
    max: days(30),
    why: "vSphere DRS runs every 5 minutes; each pass weighs every VM against every host",
};

/// Live migrations one DRS pass may start.
pub const DRS_MOVES: Limits<u64> = Limits {
    min: 0,
    max: 1000,
    why: "each move is a live migration that takes seconds to minutes",
};

/// How often hosts send heartbeats.
pub const HEARTBEAT: Limits<Duration> = Limits {
    min: Duration(100),
    max: Duration::from_hours(1),
    why: "every heartbeat of every host is simulated; vSphere HA sends one a second",
};

/// Timeouts and latencies of HA, provisioning and node lifecycle.
pub const LATENCY: Limits<Duration> = Limits {
    min: Duration(0),
    max: days(30),
    why: "a step of recovery or provisioning that takes longer than a month is an outage, not a latency",
};

/// A probability.
pub const PROBABILITY: Limits<f64> = Limits {
    min: 0.0,
    max: 1.0,
    why: "a probability",
};

/// A performance overhead: the fraction of a resource the hypervisor costs.
pub const OVERHEAD: Limits<f64> = Limits {
    min: 0.0,
    max: 0.99,
    why: "a fraction of the resource; 1 would leave nothing to the guest",
};

/// A CPU or memory overcommit ratio.
pub const OVERCOMMIT: Limits<f64> = Limits {
    min: 0.01,
    max: 64.0,
    why: "a ratio of virtual to physical capacity; 0 places nothing",
};

/// Live migration bandwidth in Gbit/s.
pub const MIGRATION_GBPS: Limits<f64> = Limits {
    min: 0.01,
    max: 10_000.0,
    why: "a migration at 0 Gbit/s never ends",
};

/// Guest memory dirtied per second, as a fraction of the migration bandwidth.
pub const DIRTY_RATE: Limits<f64> = Limits {
    min: 0.0,
    max: 0.99,
    why: "at a dirty rate of the bandwidth or more, pre-copy migration never converges",
};

/// The DRS imbalance threshold.
pub const DRS_THRESHOLD: Limits<f64> = Limits {
    min: 0.0,
    max: 1.0,
    why: "a difference of utilization between hosts",
};

/// Copies of each block in hyperconverged storage.
pub const REPLICATION: Limits<u64> = Limits {
    min: 1,
    max: 5,
    why: "vSAN and Ceph keep 1 to 5 copies",
};

/// Sockets of one server.
pub const SOCKETS: Limits<u64> = Limits {
    min: 1,
    max: 16,
    why: "the largest x86 servers have 16 sockets",
};

/// Cores of one socket.
pub const CORES_PER_SOCKET: Limits<u64> = Limits {
    min: 1,
    max: 1024,
    why: "the largest CPUs have a few hundred cores",
};

/// Hardware threads of one core.
pub const THREADS_PER_CORE: Limits<u64> = Limits {
    min: 1,
    max: 8,
    why: "SMT gives 1 to 8 threads a core",
};

/// Rack units of one server.
pub const RACK_UNITS: Limits<u64> = Limits {
    min: 1,
    max: 48,
    why: "a server takes 1U to a whole 48U rack",
};

/// Memory of one server.
pub const SERVER_MEMORY: Limits<ByteSize> = Limits {
    min: ByteSize(1 << 30),
    max: ByteSize(1 << 46),
    why: "servers have 1 GiB to 64 TiB",
};

/// Disks of one kind in one server.
pub const DISK_COUNT: Limits<u64> = Limits {
    min: 0,
    max: 1024,
    why: "a server holds at most a few hundred drives",
};

/// Capacity of one disk.
pub const DISK_CAPACITY: Limits<ByteSize> = Limits {
    min: ByteSize(0),
    max: ByteSize(1 << 50),
    why: "a drive holds at most a PiB",
};

/// Watts drawn by one server.
pub const WATTS: Limits<u64> = Limits {
    min: 0,
    max: 100_000,
    why: "a server draws at most a few kW",
};

/// NIC bandwidth of one server, Gbit/s.
pub const NIC_GBPS: Limits<u64> = Limits {
    min: 0,
    max: 10_000,
    why: "the fastest NICs are 800 Gbit/s",
};

/// Time to receive a server bought.
pub const LEAD_TIME: Limits<Duration> = Limits {
    min: Duration(0),
    max: years(10),
    why: "a purchase that takes a decade is not a plan",
};

/// Nodes of one pool or control plane, and a pool's bounds and surge.
pub const NODES: Limits<u64> = Limits {
    min: 0,
    max: 5000,
    why: "Kubernetes supports at most 5,000 nodes per cluster",
};

/// vCPUs of one node or VM.
pub const VCPU: Limits<u64> = Limits {
    min: 1,
    max: 1024,
    why: "no hypervisor gives one VM more than 1,024 vCPUs",
};

/// Memory or disk of one node or VM.
pub const VM_BYTES: Limits<ByteSize> = Limits {
    min: ByteSize(0),
    max: ByteSize(1 << 46),
    why: "no server has more than 64 TiB for one VM",
};

/// Pods one node may run.
pub const MAX_PODS: Limits<u64> = Limits {
    min: 1,
    max: 2500,
    why: "the kubelet's documented ceiling is far below 2,500 (110 by default)",
};

/// Pods per core on one node (0: no limit).
pub const PODS_PER_CORE: Limits<u64> = Limits {
    min: 0,
    max: 1000,
    why: "the kubelet's podsPerCore; 0 turns it off",
};

/// Replicas (or parallelism) of one workload.
pub const REPLICAS: Limits<i64> = Limits {
    min: 0,
    max: 150_000,
    why: "Kubernetes supports at most 150,000 pods per cluster",
};

/// VMs of one VirtualMachineSet.
pub const VM_COUNT: Limits<u64> = Limits {
    min: 0,
    max: 100_000,
    why: "an estate holds at most 100,000 hosts",
};

/// Years of a cost horizon or of depreciation.
pub const YEARS: Limits<u64> = Limits {
    min: 1,
    max: 50,
    why: "no server is kept in service for more than 50 years",
};

/// A price, per server, licence unit, kWh or hour.
pub const PRICE: Limits<Money> = Limits {
    min: Money(0),
    max: Money(1_000_000_000 * Money::MICROS),
    why: "a price is not negative, and a billion is far above any item of an estate",
};

/// Power usage effectiveness of the data centre.
pub const PUE: Limits<f64> = Limits {
    min: 1.0,
    max: 5.0,
    why: "PUE is facility power over IT power: never below 1, about 1.1 to 2 in practice",
};

/// A fraction of a whole (materiality, a support contract's share of the price).
pub const FRACTION: Limits<f64> = Limits {
    min: 0.0,
    max: 1.0,
    why: "a fraction of a whole",
};

/// A percentage.
pub const PERCENT: Limits<f64> = Limits {
    min: 0.0,
    max: 100.0,
    why: "a percentage",
};

/// Hours of labour per operation.
pub const HOURS: Limits<f64> = Limits {
    min: 0.0,
    max: 10_000.0,
    why: "zero or more; a year has 8,760 hours",
};

/// Reports values outside their range, at their field.
struct Fields<'a, S> {
    doc: &'a Named<S>,
    diags: &'a mut Diagnostics,
}

/// `/spec/failures/hosts/mtbf` as a message names it: `spec.failures.hosts.mtbf`.
pub(crate) fn field_name(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The error for `value` of the field at `pointer` outside `limits`, at `at`.
pub fn out_of_range<T: Bounded>(
    at: Location,
    field: &str,
    value: T,
    limits: &Limits<T>,
) -> Diagnostic {
    Diagnostic::error(
        at,
        format!(
            "`{field}` is {}, out of range: expected {limits}",
            value.show()
        ),
    )
    .with_help(limits.why)
}

impl<S> Fields<'_, S> {
    fn check<T: Bounded>(&mut self, pointer: &str, value: T, limits: &Limits<T>) {
        if !limits.contains(value) {
            self.diags.push(out_of_range(
                self.doc.at(pointer),
                &field_name(pointer),
                value,
                limits,
            ));
        }
    }

    fn count(&mut self, pointer: &str, value: u32, limits: &Limits<u64>) {
        self.check(pointer, u64::from(value), limits);
    }
}

fn host_failures<S>(f: &mut Fields<'_, S>, at: &str, h: &HostFailures) {
    f.check(&format!("{at}/mtbf"), h.mtbf, &MTBF);
    f.check(&format!("{at}/repairTime"), h.repair_time, &REPAIR);
    f.check(&format!("{at}/shape"), h.shape, &WEIBULL_SHAPE);
}

/// Checks a Scenario's run length, failure model, operations and weights.
pub fn scenario(doc: &Named<ScenarioSpec>, diags: &mut Diagnostics) {
    let s = &doc.spec;
    let mut f = Fields { doc, diags };
    f.check("/spec/duration", s.duration, &RUN_DURATION);
    f.count("/spec/runs", s.runs, &RUNS);
    host_failures(&mut f, "/spec/failures/hosts", &s.failures.hosts);
    for (class, h) in &s.failures.by_class {
        let at = crate::yaml::push_pointer("/spec/failures/byClass", class);
        host_failures(&mut f, &at, h);
    }
    f.check("/spec/failures/racks/mtbf", s.failures.racks.mtbf, &MTBF);
    f.check(
        "/spec/failures/racks/repairTime",
        s.failures.racks.repair_time,
        &REPAIR,
    );
    let o = &s.operations;
    f.count(
        "/spec/operations/nodesAddedPerYear",
        o.nodes_added_per_year,
        &NODES,
    );
    f.count(
        "/spec/operations/kubernetesUpgradesPerYear",
        o.kubernetes_upgrades_per_year,
        &UPGRADES_PER_YEAR,
    );
    f.check(
        "/spec/operations/osPatchingInterval",
        o.os_patching_interval,
        &PATCHING_INTERVAL,
    );
    f.check(
        "/spec/operations/hostPatchingInterval",
        o.host_patching_interval,
        &PATCHING_INTERVAL,
    );
    for (i, step) in o.timeline.iter().enumerate() {
        let at = format!("/spec/operations/timeline/{i}");
        f.check(&format!("{at}/at"), step.at, &TIMELINE_AT);
        if let Some(r) = step.replicas {
            f.count(&format!("{at}/replicas"), r, &NODES);
        }
    }
    for (key, m) in &s.materiality {
        let at = crate::yaml::push_pointer("/spec/materiality", key);
        f.check(&at, *m, &FRACTION);
    }
    let r = &s.requirements;
    if let Some(a) = r.min_availability {
        f.check("/spec/requirements/minAvailability", a, &PERCENT);
    }
    f.check(
        "/spec/blockedDrain/forceAfter",
        s.blocked_drain.force_after,
        &LATENCY,
    );
}

/// Checks a virtualized Environment's ratios, fractions, intervals and latencies.
pub fn virtualized(doc: &Named<VirtualizedSpec>, diags: &mut Diagnostics) {
    let e = &doc.spec;
    let mut f = Fields { doc, diags };
    f.check("/spec/overcommit/cpu", e.overcommit.cpu, &OVERCOMMIT);
    f.check("/spec/overcommit/memory", e.overcommit.memory, &OVERCOMMIT);
    f.count(
        "/spec/storage/replicationFactor",
        e.storage.replication_factor,
        &REPLICATION,
    );
    let o = &e.performance_overhead;
    for (key, v) in [
        ("cpu", o.cpu),
        ("memory", o.memory),
        ("disk", o.disk),
        ("network", o.network),
    ] {
        f.check(&format!("/spec/performanceOverhead/{key}"), v, &OVERHEAD);
    }
    let ha = &e.ha;
    f.check(
        "/spec/ha/heartbeatInterval",
        ha.heartbeat_interval,
        &HEARTBEAT,
    );
    for (key, d) in [
        ("failureDetectionTimeout", ha.failure_detection_timeout),
        ("selfFenceTimeout", ha.self_fence_timeout),
        ("selfFenceMargin", ha.self_fence_margin),
        ("fenceLatency", ha.fence_latency),
    ] {
        f.check(&format!("/spec/ha/{key}"), d, &LATENCY);
    }
    f.check(
        "/spec/ha/fenceFailureProbability",
        ha.fence_failure_probability,
        &PROBABILITY,
    );
    f.check("/spec/drs/threshold", e.drs.threshold, &DRS_THRESHOLD);
    f.check("/spec/drs/interval", e.drs.interval, &DRS_INTERVAL);
    f.count(
        "/spec/drs/maxMovesPerInterval",
        e.drs.max_moves_per_interval,
        &DRS_MOVES,
    );
    let t = &e.timings;
    f.check("/spec/timings/vmClone", t.vm_clone, &LATENCY);
    f.check("/spec/timings/vmBoot", t.vm_boot, &LATENCY);
    f.check(
        "/spec/timings/migrationGbps",
        t.migration_gbps,
        &MIGRATION_GBPS,
    );
    f.check("/spec/timings/dirtyRate", t.dirty_rate, &DIRTY_RATE);
    f.check(
        "/spec/timings/migrationSwitchover",
        t.migration_switchover,
        &LATENCY,
    );
}

/// Checks a Calibration's measured timings and overheads.
pub fn calibration(doc: &Named<CalibrationSpec>, diags: &mut Diagnostics) {
    let c = &doc.spec;
    let mut f = Fields { doc, diags };
    for (key, d) in [
        ("vmClone", c.vm_clone),
        ("vmBoot", c.vm_boot),
        ("vmBootP95", c.vm_boot_p95),
        ("fenceLatency", c.fence_latency),
        ("migration/switchover", c.migration.map(|m| m.switchover)),
    ] {
        if let Some(d) = d {
            f.check(&format!("/spec/{key}"), d, &LATENCY);
        }
    }
    if let Some(m) = c.migration {
        f.check("/spec/migration/gbps", m.gbps, &MIGRATION_GBPS);
    }
    if let Some(o) = c.overhead {
        for (key, v) in [
            ("cpu", Some(o.cpu)),
            ("memory", Some(o.memory)),
            ("disk", o.disk),
            ("network", o.network),
        ] {
            if let Some(v) = v {
                f.check(&format!("/spec/overhead/{key}"), v, &OVERHEAD);
            }
        }
    }
}

/// Checks a bare-metal Environment's lifecycle times.
pub fn bare_metal(doc: &Named<BareMetalSpec>, diags: &mut Diagnostics) {
    let e = &doc.spec;
    let mut f = Fields { doc, diags };
    for (key, d) in [
        ("osInstall", e.os_install),
        ("reimage", e.reimage),
        ("reboot", e.reboot),
        ("hardwareSwap", e.hardware_swap),
    ] {
        f.check(&format!("/spec/{key}"), d, &LATENCY);
    }
}

/// Checks every host class's hardware.
pub fn inventory(doc: &Named<InventorySpec>, diags: &mut Diagnostics) {
    let mut f = Fields { doc, diags };
    for (i, c) in doc.spec.host_classes.iter().enumerate() {
        let at = format!("/spec/hostClasses/{i}");
        f.count(&format!("{at}/sockets"), c.sockets, &SOCKETS);
        f.count(
            &format!("{at}/coresPerSocket"),
            c.cores_per_socket,
            &CORES_PER_SOCKET,
        );
        f.count(
            &format!("{at}/threadsPerCore"),
            c.threads_per_core,
            &THREADS_PER_CORE,
        );
        f.check(&format!("{at}/memory"), c.memory, &SERVER_MEMORY);
        f.count(&format!("{at}/nicGbps"), c.nic_gbps, &NIC_GBPS);
        f.count(&format!("{at}/watts/idle"), c.watts.idle, &WATTS);
        f.count(&format!("{at}/watts/peak"), c.watts.peak, &WATTS);
        f.check(&format!("{at}/leadTime"), c.lead_time, &LEAD_TIME);
        f.count(&format!("{at}/rackUnits"), c.rack_units, &RACK_UNITS);
        for (j, d) in c.disks.iter().enumerate() {
            f.count(&format!("{at}/disks/{j}/count"), d.count, &DISK_COUNT);
            f.check(
                &format!("{at}/disks/{j}/capacity"),
                d.capacity,
                &DISK_CAPACITY,
            );
        }
    }
}

fn pool<S>(f: &mut Fields<'_, S>, at: &str, p: &NodePool) {
    f.count(&format!("{at}/vcpu"), p.vcpu, &VCPU);
    f.check(&format!("{at}/memory"), p.memory, &VM_BYTES);
    f.check(&format!("{at}/disk"), p.disk, &VM_BYTES);
    f.count(&format!("{at}/replicas"), p.replicas, &NODES);
    if let Some(min) = p.min {
        f.count(&format!("{at}/min"), min, &NODES);
    }
    if let Some(max) = p.max {
        f.count(&format!("{at}/max"), max, &NODES);
    }
    f.count(&format!("{at}/maxPods"), p.max_pods, &MAX_PODS);
    f.count(
        &format!("{at}/podsPerCore"),
        p.pods_per_core,
        &PODS_PER_CORE,
    );
    f.count(
        &format!("{at}/upgrade/maxSurge"),
        p.upgrade.max_surge,
        &NODES,
    );
    f.count(
        &format!("{at}/upgrade/maxUnavailable"),
        p.upgrade.max_unavailable,
        &NODES,
    );
}

/// Checks a Cluster's node counts, sizes and node lifecycle timeouts.
pub fn cluster(doc: &Named<ClusterSpec>, diags: &mut Diagnostics) {
    let c = &doc.spec;
    let mut f = Fields { doc, diags };
    let cp = &c.control_plane;
    f.count("/spec/controlPlane/replicas", cp.replicas, &NODES);
    f.count("/spec/controlPlane/vcpu", cp.vcpu, &VCPU);
    f.check("/spec/controlPlane/memory", cp.memory, &VM_BYTES);
    f.check("/spec/controlPlane/disk", cp.disk, &VM_BYTES);
    for (i, p) in c.node_pools.iter().enumerate() {
        pool(&mut f, &format!("/spec/nodePools/{i}"), p);
    }
    let k = &c.kubernetes;
    for (key, d) in [
        ("nodeMonitorGracePeriod", k.node_monitor_grace_period),
        ("notReadyToleration", k.not_ready_toleration),
        ("machineHealthTimeout", k.machine_health_timeout),
    ] {
        f.check(&format!("/spec/kubernetes/{key}"), d, &LATENCY);
    }
}

/// Checks a VirtualMachineSet's count and size.
pub fn vm_set(doc: &Named<VmSetSpec>, diags: &mut Diagnostics) {
    let v = &doc.spec;
    let mut f = Fields { doc, diags };
    f.count("/spec/count", v.count, &VM_COUNT);
    f.count("/spec/vcpu", v.vcpu, &VCPU);
    f.check("/spec/memory", v.memory, &VM_BYTES);
    f.check("/spec/disk", v.disk, &VM_BYTES);
}

/// Checks a PriceSheet's horizon, prices, PUE and labour hours.
pub fn price_sheet(doc: &Named<PriceSheetSpec>, diags: &mut Diagnostics) {
    let p = &doc.spec;
    let mut f = Fields { doc, diags };
    f.count("/spec/horizonYears", p.horizon_years, &YEARS);
    f.check("/spec/defaultServerPrice", p.default_server_price, &PRICE);
    for (class, s) in &p.servers {
        let at = crate::yaml::push_pointer("/spec/servers", class);
        f.check(&format!("{at}/price"), s.price, &PRICE);
        f.count(
            &format!("{at}/depreciationYears"),
            s.depreciation_years,
            &YEARS,
        );
    }
    for (key, l) in [
        ("virtualizationLicence", &p.virtualization_licence),
        ("osLicence", &p.os_licence),
        (
            "kubernetesSubscription/virtualized",
            &p.kubernetes_subscription.virtualized,
        ),
        (
            "kubernetesSubscription/bareMetal",
            &p.kubernetes_subscription.bare_metal,
        ),
    ] {
        f.check(
            &format!("/spec/{key}/pricePerYear"),
            l.price_per_year,
            &PRICE,
        );
    }
    f.check("/spec/supportFraction", p.support_fraction, &FRACTION);
    f.check(
        "/spec/downtimePerWorkloadHour",
        p.downtime_per_workload_hour,
        &PRICE,
    );
    f.check("/spec/delayPerNodeHour", p.delay_per_node_hour, &PRICE);
    f.check("/spec/power/pricePerKwh", p.power.price_per_kwh, &PRICE);
    f.check("/spec/power/pue", p.power.pue, &PUE);
    f.check(
        "/spec/rackSpace/pricePerUnitPerYear",
        p.rack_space.price_per_unit_per_year,
        &PRICE,
    );
    f.check("/spec/labour/ratePerHour", p.labour.rate_per_hour, &PRICE);
    for (op, hours) in &p.labour.hours {
        let at = crate::yaml::push_pointer("/spec/labour/hours", op);
        f.check(&at, *hours, &HOURS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_include_both_ends_and_refuse_nan() {
        assert!(PROBABILITY.contains(0.0) && PROBABILITY.contains(1.0));
        assert!(!PROBABILITY.contains(f64::NAN) && !PROBABILITY.contains(1.5));
        assert_eq!(MTBF.to_string(), "1d to 3650000d");
    }

    #[test]
    fn field_names_read_as_paths() {
        assert_eq!(
            field_name("/spec/failures/hosts/mtbf"),
            "spec.failures.hosts.mtbf"
        );
        assert_eq!(
            field_name("/spec/servers/a~1b/price"),
            "spec.servers.a/b.price"
        );
    }
}
