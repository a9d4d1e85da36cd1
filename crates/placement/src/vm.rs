//! VMs, their placement groups and their VM→host rules, as compact indexed records.

use plinth_model::Resources;
use plinth_model::policy::{PlacementPolicy, RuleKind};

use crate::hosts::HostId;

/// Identifies a VM in a [`PoolState`](crate::PoolState); never reused after removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmId(pub u32);

impl VmId {
    /// The position in the state's VM table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a placement group in [`Pool::groups`](crate::Pool::groups).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct GroupId(pub u32);

/// A zone of the estate (`topology.kubernetes.io/zone`): one or more racks
/// ([`crate::designs::Zones`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZoneId(pub u32);

/// Index of a VM→host rule in [`Pool::rules`](crate::Pool::rules).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct RuleId(pub u32);

/// A placement group: members spread over hosts or racks, strictly, softly or at most N
/// per domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Name used in explanations (`placement group prod-cp already on host`).
    pub name: String,
    /// How members are spread.
    pub policy: PlacementPolicy,
}

/// A VM→host rule: members must (or should) run on one of `hosts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRuleSpec {
    /// Name used in explanations.
    pub name: String,
    /// `must` (hard) or `should` (preferred).
    pub kind: RuleKind,
    /// The allowed or preferred hosts (the caller expands `rack:NAME`).
    pub hosts: Vec<HostId>,
}

/// Order in which HA restarts the VMs of a failed host (vSphere's restart priorities).
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
    serde::Serialize,
    serde::Deserialize,
)]
pub enum RestartPriority {
    /// Never restarted by HA.
    Disabled,
    /// Restarted last.
    Lowest,
    /// Restarted after medium.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Restarted before medium.
    High,
    /// Restarted first (control planes).
    Highest,
}

/// A VM to place.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmSpec {
    /// Unique name; ties between equally large VMs break by it.
    pub name: String,
    /// vCPU (millis), guest memory and disk, before overcommit and overhead.
    pub demand: Resources,
    /// The placement group it belongs to.
    pub group: Option<GroupId>,
    /// The VM→host rule it is bound by.
    pub rule: Option<RuleId>,
    /// HA restart priority.
    pub restart_priority: RestartPriority,
}

impl VmSpec {
    /// A VM with no group, no rule and medium restart priority.
    pub fn new(name: impl Into<String>, demand: Resources) -> Self {
        Self {
            name: name.into(),
            demand,
            group: None,
            rule: None,
            restart_priority: RestartPriority::Medium,
        }
    }

    /// The same VM as a member of `group`.
    pub fn in_group(mut self, group: GroupId) -> Self {
        self.group = Some(group);
        self
    }

    /// The same VM bound by `rule`.
    pub fn with_rule(mut self, rule: RuleId) -> Self {
        self.rule = Some(rule);
        self
    }

    /// The same VM with restart priority `priority`.
    pub fn with_priority(mut self, priority: RestartPriority) -> Self {
        self.restart_priority = priority;
        self
    }
}
