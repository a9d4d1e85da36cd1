//! `VirtualMachineSet`: the estate's non-Kubernetes VMs (legacy applications). On a pool
//! they share hosts with node VMs; a bare-metal design needs a pool of their own for them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{RestartPriority, UsageProfile};
use crate::policy::{HostRule, PlacementPolicy};
use crate::quantity::ByteSize;

/// The spec of a `VirtualMachineSet`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmSetSpec {
    /// How many identical VMs.
    pub count: u32,
    /// vCPUs per VM.
    pub vcpu: u32,
    /// Memory per VM.
    pub memory: ByteSize,
    /// Disk per VM (default 50Gi).
    #[serde(default = "default_disk")]
    pub disk: ByteSize,
    /// How the VMs are spread (default soft over hosts).
    #[serde(default = "default_placement")]
    pub placement: PlacementPolicy,
    /// VM→host rules.
    #[serde(default)]
    pub host_rules: Vec<HostRule>,
    /// Restart priority after a host failure (default medium).
    #[serde(default)]
    pub restart_priority: RestartPriority,
    /// How much of its size a VM uses over a day.
    #[serde(default)]
    pub usage: UsageProfile,
}

fn default_disk() -> ByteSize {
    ByteSize(50 << 30)
}
fn default_placement() -> PlacementPolicy {
    PlacementPolicy::WORKER_DEFAULT
}
