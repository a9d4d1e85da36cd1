//! `Cluster`: one Kubernetes cluster's node infrastructure — control plane, node pools,
//! and the Kubernetes timings that decide how it reacts to a lost node.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::RestartPriority;
use crate::policy::{HostRule, PlacementPolicy};
use crate::quantity::{ByteSize, Cpu, Duration};

/// The pool name under which a cluster's control-plane members appear in commands, logs
/// and conditions (`cluster/control-plane`); no node pool may take it.
pub const CONTROL_PLANE_POOL: &str = "control-plane";

/// The label naming the node pool a node belongs to (`plinth.dev/pool`).
pub const POOL_LABEL: &str = "plinth.dev/pool";

/// The prefix of the names of a pool's node VMs: `{cluster}-{pool}-`, and `{cluster}-cp-`
/// for the control plane's members. Node `i` is the prefix followed by `i`.
pub fn node_prefix(cluster: &str, pool: &str) -> String {
    let pool = if pool == CONTROL_PLANE_POOL {
        "cp"
    } else {
        pool
    };
    format!("{cluster}-{pool}-")
}

/// The spec of a `Cluster`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// Kubernetes version, quoted: `"1.31.4"`.
    pub kubernetes_version: String,
    /// Node OS image, e.g. `ubuntu-22.04` or `flatcar-3975`.
    pub os_image: String,
    /// The control plane.
    pub control_plane: ControlPlane,
    /// Worker node pools.
    #[serde(default)]
    pub node_pools: Vec<NodePool>,
    /// Kubernetes' own reaction times.
    #[serde(default)]
    pub kubernetes: KubernetesTimings,
    /// Tenant this cluster belongs to (for isolation metrics); defaults to the cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The control plane: etcd and the API servers, one member per node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlane {
    /// Members (odd: 1, 3 or 5; default 3).
    #[serde(default = "default_cp_replicas")]
    pub replicas: u32,
    /// vCPUs of each control-plane VM (default 4).
    #[serde(default = "default_cp_vcpu")]
    pub vcpu: u32,
    /// Memory of each control-plane VM (default 16Gi).
    #[serde(default = "default_cp_memory")]
    pub memory: ByteSize,
    /// Disk of each control-plane VM (default 100Gi).
    #[serde(default = "default_cp_disk")]
    pub disk: ByteSize,
    /// How members are spread (default strict over hosts: etcd members never share a host).
    #[serde(default = "default_cp_placement")]
    pub placement: PlacementPolicy,
    /// VM→host rules.
    #[serde(default)]
    pub host_rules: Vec<HostRule>,
    /// Restart priority after a host failure (default highest).
    #[serde(default = "default_cp_priority")]
    pub restart_priority: RestartPriority,
}

fn default_cp_replicas() -> u32 {
    3
}
fn default_cp_vcpu() -> u32 {
    4
}
fn default_cp_memory() -> ByteSize {
    ByteSize(16 << 30)
}
fn default_cp_disk() -> ByteSize {
    ByteSize(100 << 30)
}
fn default_cp_placement() -> PlacementPolicy {
    PlacementPolicy::CONTROL_PLANE_DEFAULT
}
fn default_cp_priority() -> RestartPriority {
    RestartPriority::Highest
}

/// A pool of identical worker nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePool {
    /// The pool name, unique in the cluster.
    pub name: String,
    /// vCPUs per node VM (virtualized design only; a bare-metal node is a whole server).
    pub vcpu: u32,
    /// Memory per node VM (virtualized design only).
    pub memory: ByteSize,
    /// Disk per node VM (default 100Gi).
    #[serde(default = "default_pool_disk")]
    pub disk: ByteSize,
    /// Declared nodes; the pool gets more when its pods need them under the headroom rule.
    pub replicas: u32,
    /// Autoscaling lower bound (default: `replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// Autoscaling upper bound (default: `replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Node labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// kubelet `maxPods` (default 110, the kubelet default).
    #[serde(default = "default_max_pods")]
    pub max_pods: u32,
    /// kubelet `podsPerCore` (default 0: off).
    #[serde(default)]
    pub pods_per_core: u32,
    /// kubelet system and kube reservations.
    #[serde(default)]
    pub reserved: Reserved,
    /// Rolling upgrade strategy.
    #[serde(default)]
    pub upgrade: UpgradeStrategy,
    /// Restart priority after a host failure (default medium).
    #[serde(default)]
    pub restart_priority: RestartPriority,
    /// VM→host rules.
    #[serde(default)]
    pub host_rules: Vec<HostRule>,
    /// How nodes are spread (default soft over hosts).
    #[serde(default = "default_pool_placement")]
    pub placement: PlacementPolicy,
}

fn default_pool_disk() -> ByteSize {
    ByteSize(100 << 30)
}
/// The kubelet's own default `maxPods`.
pub fn default_max_pods() -> u32 {
    110
}
fn default_pool_placement() -> PlacementPolicy {
    PlacementPolicy::WORKER_DEFAULT
}

impl NodePool {
    /// The autoscaling bounds, defaulting to `replicas`.
    pub fn bounds(&self) -> (u32, u32) {
        let min = self.min.unwrap_or(self.replicas);
        (min, self.max.unwrap_or(self.replicas).max(min))
    }
}

/// A node taint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value.
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: TaintEffect,
}

/// A taint's effect, spelled as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TaintEffect {
    /// New pods without a toleration are not scheduled.
    NoSchedule,
    /// The scheduler avoids the node.
    PreferNoSchedule,
    /// Running pods without a toleration are evicted.
    NoExecute,
}

/// kubelet reservations, subtracted from a node's capacity to give its allocatable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reserved {
    /// `systemReserved` CPU (default 100m).
    #[serde(default = "default_reserved_cpu")]
    pub system_cpu: Cpu,
    /// `systemReserved` memory (default 512Mi).
    #[serde(default = "default_reserved_memory")]
    pub system_memory: ByteSize,
    /// `kubeReserved` CPU (default 100m).
    #[serde(default = "default_reserved_cpu")]
    pub kube_cpu: Cpu,
    /// `kubeReserved` memory (default 512Mi).
    #[serde(default = "default_reserved_memory")]
    pub kube_memory: ByteSize,
}

/// 100m: an assumption in the range managed services reserve; no source in REFERENCES.md.
fn default_reserved_cpu() -> Cpu {
    Cpu(100)
}
/// 512Mi: an assumption; no source in REFERENCES.md.
fn default_reserved_memory() -> ByteSize {
    ByteSize(512 << 20)
}

impl Reserved {
    /// System plus kube reservations, as one bundle (no disk).
    pub fn total(&self) -> crate::Resources {
        crate::Resources::new(
            self.system_cpu.0.saturating_add(self.kube_cpu.0),
            self.system_memory.0.saturating_add(self.kube_memory.0),
            0,
        )
    }
}

impl Default for Reserved {
    fn default() -> Self {
        Self {
            system_cpu: default_reserved_cpu(),
            system_memory: default_reserved_memory(),
            kube_cpu: default_reserved_cpu(),
            kube_memory: default_reserved_memory(),
        }
    }
}

/// How a pool is replaced during an upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeStrategy {
    /// Extra nodes created above the pool's size during a rollout (default 1, as Cluster API).
    #[serde(default = "one")]
    pub max_surge: u32,
    /// Nodes that may be unavailable during a rollout (default 0, as Cluster API).
    #[serde(default)]
    pub max_unavailable: u32,
}

fn one() -> u32 {
    1
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        Self {
            max_surge: 1,
            max_unavailable: 0,
        }
    }
}

/// Kubernetes' reaction times to a lost node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesTimings {
    /// `node-monitor-grace-period` (default 50s, Kubernetes ≥ 1.32, PR #126287).
    #[serde(default = "default_grace")]
    pub node_monitor_grace_period: Duration,
    /// `tolerationSeconds` of the default not-ready/unreachable tolerations (default 300s,
    /// DefaultTolerationSeconds admission plugin).
    #[serde(default = "default_toleration")]
    pub not_ready_toleration: Duration,
    /// Machine health check: replace a node not Ready for this long (default 5m, the
    /// Cluster API healthchecking doc's example).
    #[serde(default = "default_mhc")]
    pub machine_health_timeout: Duration,
}

fn default_grace() -> Duration {
    Duration::from_secs(50)
}
fn default_toleration() -> Duration {
    Duration::from_secs(300)
}
fn default_mhc() -> Duration {
    Duration::from_secs(300)
}

impl Default for KubernetesTimings {
    fn default() -> Self {
        Self {
            node_monitor_grace_period: default_grace(),
            not_ready_toleration: default_toleration(),
            machine_health_timeout: default_mhc(),
        }
    }
}
