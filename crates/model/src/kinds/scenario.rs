//! `Scenario`: what happens and what must be survived — duration, seeds, the headroom
//! rule, the hardware failure process (identical in both environments), the operations
//! timeline, what the owner requires of a design, and when a difference is material.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Duration;

/// The spec of a `Scenario`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Simulated time (default 365d).
    #[serde(default = "default_duration")]
    pub duration: Duration,
    /// Base seed; run i uses seed + i (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Runs per environment (default 32).
    #[serde(default = "default_runs")]
    pub runs: u32,
    /// The headroom rule both designs must meet, and what the owner requires of a design
    /// (a design that violates a declared requirement is disqualified).
    #[serde(default)]
    pub requirements: Requirements,
    /// The hardware failure process.
    #[serde(default)]
    pub failures: FailureModel,
    /// Planned operations.
    #[serde(default)]
    pub operations: Operations,
    /// The smallest relative difference that counts, by dimension key (`cost` for the
    /// priced total), as a fraction of the larger of the two means (default 0.05 for
    /// every dimension not listed; no source: a policy choice, set yours).
    #[serde(default)]
    pub materiality: BTreeMap<String, f64>,
    /// What the operator does when a drain is blocked (a PodDisruptionBudget allows no
    /// eviction): in the simulated year nobody answers, so the Scenario declares it.
    #[serde(default)]
    pub blocked_drain: BlockedDrain,
}

/// Materiality of a dimension not listed in `Scenario.spec.materiality`: a difference
/// under 5 % of the larger mean is "no material difference" (a policy choice).
pub const DEFAULT_MATERIALITY: f64 = 0.05;

impl ScenarioSpec {
    /// The materiality threshold of dimension `key` (a fraction of the larger mean).
    pub fn materiality_of(&self, key: &str) -> f64 {
        self.materiality
            .get(key)
            .copied()
            .unwrap_or(DEFAULT_MATERIALITY)
    }
}

/// The operator's response to a drain that a PodDisruptionBudget blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockedDrain {
    /// Evict anyway after this long (default 15m: Cluster API's `nodeDrainTimeout` is
    /// unset, wait forever, by default; 15 minutes is an assumption so a budget that can
    /// never be met cannot stall a rollout for the rest of the run).
    #[serde(default = "default_force_after")]
    pub force_after: Duration,
}

fn default_force_after() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for BlockedDrain {
    fn default() -> Self {
        Self {
            force_after: default_force_after(),
        }
    }
}

fn default_duration() -> Duration {
    Duration::from_days(365)
}
fn default_seed() -> u64 {
    1
}
fn default_runs() -> u32 {
    32
}

impl Default for ScenarioSpec {
    fn default() -> Self {
        Self {
            duration: default_duration(),
            seed: default_seed(),
            runs: default_runs(),
            requirements: Requirements::default(),
            failures: FailureModel::default(),
            operations: Operations::default(),
            materiality: BTreeMap::new(),
            blocked_drain: BlockedDrain::default(),
        }
    }
}

/// The headroom rule (survive `hostFailuresToTolerate` host failures while one host is in
/// maintenance and one upgrade surge is in progress), and the owner's requirements: limits
/// a design must meet or be disqualified (none by default).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirements {
    /// Host failures to survive (default 1).
    #[serde(default = "one")]
    pub host_failures_to_tolerate: u32,
    /// Hosts in maintenance at the same time (default 1).
    #[serde(default = "one")]
    pub hosts_in_maintenance: u32,
    /// Whether an upgrade surge must fit at the same time (default true).
    #[serde(default = "yes")]
    pub upgrade_surge: bool,
    /// Longest acceptable time to add a node to a cluster (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_to_add_node: Option<Duration>,
    /// Longest acceptable time to add a cluster like the first (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_to_add_cluster: Option<Duration>,
    /// Longest acceptable expected control-plane time without quorum per year, over all
    /// clusters (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_without_quorum: Option<Duration>,
    /// Lowest acceptable availability of any workload over the year, % (an SLO; none by
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_availability: Option<f64>,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

impl Default for Requirements {
    fn default() -> Self {
        Self {
            host_failures_to_tolerate: 1,
            hosts_in_maintenance: 1,
            upgrade_surge: true,
            max_time_to_add_node: None,
            max_time_to_add_cluster: None,
            max_time_without_quorum: None,
            min_availability: None,
        }
    }
}

/// A time-between-failures distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Distribution {
    /// Memoryless: constant hazard.
    #[default]
    Exponential,
    /// Weibull with `shape` (< 1: decreasing hazard, as LANL observed).
    Weibull,
}

/// Failures of one host class (or of all, as the default).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostFailures {
    /// Mean time between failures of one host (default 3y: "each machine crashes at least
    /// twice" a year counts software crashes; 2–4 % hardware failure rate per year, Dean
    /// 2009, REFERENCES.md §3, is 25–50 y; 3 years is between, an assumption).
    #[serde(default = "default_mtbf")]
    pub mtbf: Duration,
    /// The distribution of times between failures.
    #[serde(default)]
    pub distribution: Distribution,
    /// Weibull shape (default 0.7, a decreasing hazard as Schroeder & Gibson 2006 report).
    #[serde(default = "default_shape")]
    pub shape: f64,
    /// Mean time to repair (default 8h: next-business-day on-site repair is up to a day;
    /// H&P's worked example uses 1 h; LANL repairs range under 1 h to over a day).
    #[serde(default = "default_mttr")]
    pub repair_time: Duration,
}

fn default_mtbf() -> Duration {
    Duration::from_days(3 * 365)
}
fn default_shape() -> f64 {
    0.7
}
fn default_mttr() -> Duration {
    Duration::from_hours(8)
}

impl Default for HostFailures {
    fn default() -> Self {
        Self {
            mtbf: default_mtbf(),
            distribution: Distribution::Exponential,
            shape: default_shape(),
            repair_time: default_mttr(),
        }
    }
}

/// Rack-level (power) events.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RackFailures {
    /// Mean time between power events of one rack (default 20y: ~20 rack failures per year
    /// over ~1,800 machines ≈ 40 racks at Google, Dean 2008, is one per rack every 2 years
    /// for a young cluster; enterprise rooms fare better; an assumption).
    #[serde(default = "default_rack_mtbf")]
    pub mtbf: Duration,
    /// Time to restore (default 3h: "1–6 h back", same source).
    #[serde(default = "default_rack_mttr")]
    pub repair_time: Duration,
}

fn default_rack_mtbf() -> Duration {
    Duration::from_days(20 * 365)
}
fn default_rack_mttr() -> Duration {
    Duration::from_hours(3)
}

impl Default for RackFailures {
    fn default() -> Self {
        Self {
            mtbf: default_rack_mtbf(),
            repair_time: default_rack_mttr(),
        }
    }
}

/// The hardware failure process, the same in both environments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureModel {
    /// Failures of every host class not listed in `byClass`.
    #[serde(default)]
    pub hosts: HostFailures,
    /// Per host class overrides.
    #[serde(default)]
    pub by_class: BTreeMap<String, HostFailures>,
    /// Rack power events.
    #[serde(default)]
    pub racks: RackFailures,
}

/// Planned operations: recurring work plus one-off timeline steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operations {
    /// Kubernetes minor upgrades per cluster per year (default 3: upstream releases three
    /// minors a year).
    #[serde(default = "default_k8s_upgrades")]
    pub kubernetes_upgrades_per_year: u32,
    /// Node OS patching interval (default 30d: monthly).
    #[serde(default = "default_monthly")]
    pub os_patching_interval: Duration,
    /// Host firmware and hypervisor patching interval (default 30d: monthly).
    #[serde(default = "default_monthly")]
    pub host_patching_interval: Duration,
    /// Nodes the owner asks for per year, each waited for as long as the design takes to
    /// add a node (priced by `PriceSheet.spec.delayPerNodeHour`; default 12: one a month,
    /// an assumption).
    #[serde(default = "default_nodes_added")]
    pub nodes_added_per_year: u32,
    /// One-off steps.
    #[serde(default)]
    pub timeline: Vec<TimelineStep>,
}

fn default_nodes_added() -> u32 {
    12
}

fn default_k8s_upgrades() -> u32 {
    3
}
fn default_monthly() -> Duration {
    Duration::from_days(30)
}

impl Default for Operations {
    fn default() -> Self {
        Self {
            kubernetes_upgrades_per_year: default_k8s_upgrades(),
            os_patching_interval: default_monthly(),
            host_patching_interval: default_monthly(),
            nodes_added_per_year: default_nodes_added(),
            timeline: Vec::new(),
        }
    }
}

/// One planned operation at a point in simulated time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimelineStep {
    /// When, from the start of the run.
    pub at: Duration,
    /// What.
    pub action: TimelineAction,
    /// The cluster it applies to (all but `hostMaintenance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The node pool, for `scalePool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// New replica count, for `scalePool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Target version, for `upgradeKubernetes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The host, for `hostMaintenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Kinds of planned operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TimelineAction {
    /// Create the named cluster (declared in the input) at this time instead of at start.
    AddCluster,
    /// Change a pool's replicas.
    ScalePool,
    /// Roll the cluster to a new Kubernetes version.
    UpgradeKubernetes,
    /// Roll the cluster's nodes to a patched OS image.
    PatchOs,
    /// Take one host down for maintenance and return it.
    HostMaintenance,
}
