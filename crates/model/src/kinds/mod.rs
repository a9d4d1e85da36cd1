//! The manifest kinds, one module each. Every spec is `deny_unknown_fields`, camelCase,
//! with explicit defaults whose source is written on the default function.

pub mod calibration;
pub mod cluster;
pub mod environment;
pub mod inventory;
pub mod price_sheet;
pub mod scenario;
pub mod vm_set;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `apiVersion` of every Plinth kind.
pub const API_VERSION: &str = "plinth.dev/v1alpha1";

/// The `metadata` of a Plinth document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The object's name: lower-case letters, digits and `-`, unique per kind.
    pub name: String,
    /// Free-form labels; `plinth.dev/cluster` binds a workload to a Cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A whole Plinth document: the envelope around one kind's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest<S> {
    /// Always `plinth.dev/v1alpha1`.
    pub api_version: String,
    /// The kind's name.
    pub kind: String,
    /// Name and labels.
    pub metadata: Metadata,
    /// The kind's content.
    pub spec: S,
}

/// Restart order after a host failure: higher first.
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
pub enum RestartPriority {
    /// Restarted last.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Restarted before medium.
    High,
    /// Restarted first (control planes).
    Highest,
}

/// Where a volume's data lives, which decides whether its pod can restart elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VolumeStorage {
    /// Replicated or network storage: the pod can restart on another node.
    Shared,
    /// A node's own disk: the pod waits for its node to come back.
    Local,
}

/// A usage profile: how much of its request a workload actually uses over a day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageProfile {
    /// Mean use outside the peak window, as a fraction of the request (default 0.3).
    #[serde(default = "default_usage_mean")]
    pub mean: f64,
    /// Use inside the peak window, as a fraction of the request (default 0.7).
    #[serde(default = "default_usage_peak")]
    pub peak: f64,
    /// The daily peak window, hours `HH-HH` (default `08-18`).
    #[serde(default = "default_peak_hours")]
    pub peak_hours: String,
}

/// 0.3: inside the 20–40 % cluster utilisation Google reports (REFERENCES.md §6,
/// Cheng et al. 2018) and above the 12–18 % of enterprise servers (NRDC 2014).
pub fn default_usage_mean() -> f64 {
    0.3
}
/// 0.7: no published figure; an assumption, kept an input.
pub fn default_usage_peak() -> f64 {
    0.7
}
/// Business hours; no published figure, an assumption.
pub fn default_peak_hours() -> String {
    "08-18".to_owned()
}

impl Default for UsageProfile {
    fn default() -> Self {
        Self {
            mean: default_usage_mean(),
            peak: default_usage_peak(),
            peak_hours: default_peak_hours(),
        }
    }
}

impl UsageProfile {
    /// Checks the fractions and parses the peak window into (start hour, end hour).
    pub fn peak_window(&self) -> Result<(u8, u8), String> {
        let bad = || {
            format!(
                "`{}` is not a daily window; write `HH-HH` such as `08-18`",
                self.peak_hours
            )
        };
        let (a, b) = self.peak_hours.split_once('-').ok_or_else(bad)?;
        let a: u8 = a.trim().parse().map_err(|_| bad())?;
        let b: u8 = b.trim().parse().map_err(|_| bad())?;
        if a > 24 || b > 24 {
            return Err(bad());
        }
        Ok((a, b))
    }
}
