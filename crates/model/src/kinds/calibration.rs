//! `Calibration`: timings and overheads measured on real hardware (`plinth calibrate`),
//! replacing the virtualized Environment's declared ones. Records the accelerator it was
//! measured under: timings count whatever it was, overheads only under KVM.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kinds::environment::{Fencing, HaPolicy, VirtualizedTimings};
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

impl std::fmt::Display for Accelerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        })
    }
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
    /// Measured clone of a VM disk (qcow2 overlay), the median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_clone: Option<Duration>,
    /// Measured boot to a Ready node, the median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_boot: Option<Duration>,
    /// The 95th percentile of the boots measured (reported; the median is what is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_boot_p95: Option<Duration>,
    /// Live migration, fitted against guest memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MeasuredMigration>,
    /// Measured fence of a host by its agent (it kills its VMs on request). It replaces
    /// `fenceLatency` only under `fencing: agent`: a BMC's power-off is another thing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_latency: Option<Duration>,
    /// Measured performance lost per resource, as fractions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<MeasuredOverhead>,
}

/// A live migration's time as a line fitted over guests of several sizes:
/// `switchover + memory × 8 / gbps`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeasuredMigration {
    /// The fit's slope as a bandwidth over guest memory, Gbit/s. An idle guest sends only
    /// the pages it touched, so this is higher than the wire's.
    pub gbps: f64,
    /// The fit's intercept: what a migration costs whatever the memory.
    pub switchover: Duration,
}

/// Fractions of performance lost in the guest compared with the host. One not measured is
/// the Environment's `performanceOverhead`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeasuredOverhead {
    /// CPU.
    pub cpu: f64,
    /// Memory.
    pub memory: f64,
    /// Disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<f64>,
    /// Network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<f64>,
}

impl CalibrationSpec {
    /// Puts the measured timings in place of `timings`' and `ha`'s; what each was and
    /// became, by field name, for the note that says so. A measured migration line already
    /// holds the pages sent again, so it sets `dirtyRate` to 0; a measured fence is the
    /// agent's, so it replaces `fenceLatency` only under `fencing: agent`.
    pub fn apply(
        &self,
        timings: &mut VirtualizedTimings,
        ha: &mut HaPolicy,
    ) -> Vec<(&'static str, String, String)> {
        let mut replaced = Vec::new();
        if let Some(m) = self.vm_clone {
            replace(&mut replaced, "vmClone", &mut timings.vm_clone, m);
        }
        if let Some(m) = self.vm_boot {
            replace(&mut replaced, "vmBoot", &mut timings.vm_boot, m);
        }
        if let (Fencing::Agent, Some(m)) = (ha.fencing, self.fence_latency) {
            replace(&mut replaced, "fenceLatency", &mut ha.fence_latency, m);
        }
        if let Some(m) = self.migration {
            let r = &mut replaced;
            replace(
                r,
                "migrationSwitchover",
                &mut timings.migration_switchover,
                m.switchover,
            );
            replace(r, "migrationGbps", &mut timings.migration_gbps, m.gbps);
            replace(r, "dirtyRate", &mut timings.dirty_rate, 0.0);
        }
        replaced
    }
}

/// Sets `field` to `measured` and records the change, when it is one.
fn replace<T: PartialEq + std::fmt::Display>(
    replaced: &mut Vec<(&'static str, String, String)>,
    name: &'static str,
    field: &mut T,
    measured: T,
) {
    if *field != measured {
        replaced.push((name, field.to_string(), measured.to_string()));
        *field = measured;
    }
}
