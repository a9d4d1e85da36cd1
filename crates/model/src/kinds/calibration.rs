//! `Calibration`: timings and overheads measured on real hardware by Plinth's QEMU driver,
//! replacing documented defaults. Records the accelerator it was measured under.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Duration;

/// How the measured guest was run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Accelerator {
    /// Hardware virtualization: representative of production.
    Kvm,
    /// QEMU software emulation: many times slower; its overheads are not used for the
    /// performance dimension.
    Tcg,
}

/// The spec of a `Calibration`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalibrationSpec {
    /// The accelerator the measurements were taken under.
    pub accelerator: Accelerator,
    /// When and where it was measured (free text, for the report).
    #[serde(default)]
    pub description: String,
    /// Measured clone of a VM disk (qcow2 overlay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_clone: Option<Duration>,
    /// Measured boot to the guest agent's first heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_boot: Option<Duration>,
    /// Measured performance lost per resource, as fractions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<MeasuredOverhead>,
}

/// Fractions of performance lost in the guest compared with the host.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeasuredOverhead {
    /// CPU.
    pub cpu: f64,
    /// Memory.
    pub memory: f64,
    /// Disk.
    pub disk: f64,
    /// Network.
    pub network: f64,
}
