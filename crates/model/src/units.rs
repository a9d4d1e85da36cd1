//! Physical quantities shared by every crate: CPU in millicores, memory and disk in bytes,
//! durations in milliseconds. Integers throughout, so arithmetic is exact and deterministic.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

use serde::{Deserialize, Serialize};

/// A bundle of the three resources placement reasons about.
///
/// CPU is in millicores (1 vCPU or 1 hardware thread = 1000), memory and disk in bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Disk in bytes.
    pub disk_bytes: u64,
}

impl Resources {
    /// No resources at all.
    pub const ZERO: Self = Self {
        cpu_millis: 0,
        memory_bytes: 0,
        disk_bytes: 0,
    };

    /// Builds a bundle from its three parts.
    pub const fn new(cpu_millis: u64, memory_bytes: u64, disk_bytes: u64) -> Self {
        Self {
            cpu_millis,
            memory_bytes,
            disk_bytes,
        }
    }

    /// True when every part of `self` is at most the same part of `capacity`.
    pub const fn fits_in(&self, capacity: &Self) -> bool {
        self.cpu_millis <= capacity.cpu_millis
            && self.memory_bytes <= capacity.memory_bytes
            && self.disk_bytes <= capacity.disk_bytes
    }

    /// Part-wise subtraction that stops at zero.
    pub const fn saturating_sub(&self, other: &Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            disk_bytes: self.disk_bytes.saturating_sub(other.disk_bytes),
        }
    }

    /// Part-wise multiplication by an integer count.
    pub const fn times(&self, n: u64) -> Self {
        Self {
            cpu_millis: self.cpu_millis.saturating_mul(n),
            memory_bytes: self.memory_bytes.saturating_mul(n),
            disk_bytes: self.disk_bytes.saturating_mul(n),
        }
    }

    /// Part-wise maximum.
    pub fn max_each(&self, other: &Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis.max(other.cpu_millis),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
            disk_bytes: self.disk_bytes.max(other.disk_bytes),
        }
    }
}

impl Add for Resources {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis.saturating_add(rhs.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(rhs.memory_bytes),
            disk_bytes: self.disk_bytes.saturating_add(rhs.disk_bytes),
        }
    }
}

impl AddAssign for Resources {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sub for Resources {
    type Output = Self;
    /// Saturating: a part never goes below zero.
    fn sub(self, rhs: Self) -> Self {
        self.saturating_sub(&rhs)
    }
}

impl fmt::Display for Resources {
    /// `4 CPU, 600Gi memory`, with `, 100Gi disk` when there is disk.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPU, {} memory",
            format_cpu(self.cpu_millis),
            format_bytes(self.memory_bytes)
        )?;
        if self.disk_bytes > 0 {
            write!(f, ", {} disk", format_bytes(self.disk_bytes))?;
        }
        Ok(())
    }
}

/// Formats millicores exactly, as Kubernetes writes quantities: whole cores as `2`, the
/// rest in millicores (`1500m`, `250m`) — never rounded, so a request and the capacity it
/// exceeds never print alike.
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{}", millis / 1000)
    } else {
        format!("{millis}m")
    }
}

/// Formats a byte count with the largest binary unit that keeps one decimal: `1.5Gi`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// Bytes in one GiB.
pub const GIB: u64 = 1 << 30;
/// Bytes in one MiB.
pub const MIB: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_in_is_part_wise() {
        let cap = Resources::new(4000, 8 * GIB, 100 * GIB);
        assert!(Resources::new(4000, 8 * GIB, 0).fits_in(&cap));
        assert!(!Resources::new(4001, 1, 0).fits_in(&cap));
        assert!(!Resources::new(0, 0, 101 * GIB).fits_in(&cap));
    }

    #[test]
    fn formatting_is_exact() {
        assert_eq!(format_cpu(1500), "1500m");
        assert_eq!(format_cpu(1999), "1999m");
        assert_eq!(format_cpu(250), "250m");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_bytes(3 * GIB / 2), "1.5Gi");
        assert_eq!(format_bytes(64 * MIB), "64Mi");
    }

    #[test]
    fn subtraction_saturates() {
        let a = Resources::new(1, 1, 1);
        let b = Resources::new(2, 0, 5);
        assert_eq!(a - b, Resources::new(0, 1, 0));
    }
}
