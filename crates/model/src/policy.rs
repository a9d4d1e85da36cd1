//! Placement policy vocabulary shared by the manifests and the placement engine.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A failure domain level that members of a group are spread over.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// One physical host (hypervisor or server).
    #[default]
    Host,
    /// One rack, which is also a power and failure domain.
    Rack,
}

/// How firmly the members of a placement group are kept apart.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SpreadMode {
    /// At most one member per domain; placement fails rather than break it.
    Strict,
    /// Prefer one member per domain; co-locate only when nothing else fits.
    Soft,
    /// At most `maxPerDomain` members per domain (a hard limit).
    AtMost,
}

/// A placement group: how a set of VMs (a node pool, a control plane, a VM set) is spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementPolicy {
    /// The failure domain members are spread over.
    #[serde(default)]
    pub spread_over: Scope,
    /// Strict (hard, one per domain), soft (preferred) or atMost (hard, `maxPerDomain` per domain).
    pub mode: SpreadMode,
    /// With `mode: atMost`, how many members one domain may hold (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_domain: Option<u32>,
}

impl PlacementPolicy {
    /// Control planes: strict over hosts (etcd members never share a host).
    pub const CONTROL_PLANE_DEFAULT: Self = Self {
        spread_over: Scope::Host,
        mode: SpreadMode::Strict,
        max_per_domain: None,
    };
    /// Workers and VM sets: soft over hosts (spread when possible, never block placement).
    pub const WORKER_DEFAULT: Self = Self {
        spread_over: Scope::Host,
        mode: SpreadMode::Soft,
        max_per_domain: None,
    };

    /// The hard per-domain limit this policy imposes, if any.
    pub fn hard_limit(&self) -> Option<u32> {
        match self.mode {
            SpreadMode::Strict => Some(1),
            SpreadMode::Soft => None,
            SpreadMode::AtMost => Some(self.max_per_domain.unwrap_or(1).max(1)),
        }
    }
}

/// Whether a VM→host rule must hold or is only preferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RuleKind {
    /// The VM may run only on the listed hosts.
    Must,
    /// The VM prefers the listed hosts and may run elsewhere when they are full.
    Should,
}

/// A VM→host affinity rule: the members run (or prefer to run) on a named set of hosts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostRule {
    /// `must` or `should`.
    pub kind: RuleKind,
    /// Host names, or `rack:NAME` for every host of a rack.
    pub hosts: Vec<String>,
}

/// Where the placement engine puts a new VM among the hosts that fit it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PlacementStrategy {
    /// Least allocated first: more headroom per host, smaller blast radius, better HA.
    #[default]
    Spread,
    /// Most allocated first: fewer busy hosts, better utilization and power.
    Pack,
}
