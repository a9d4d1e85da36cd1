//! Time as the control plane sees it: milliseconds since the driver's epoch (virtual time
//! in the simulator, wall-clock time since start in a real driver). The control plane never
//! reads a clock; every observation carries its `now`.

use std::fmt;
use std::ops::Add;

/// Milliseconds since the driver's epoch.
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
pub struct Time(pub u64);

impl Time {
    /// The epoch.
    pub const ZERO: Self = Self(0);

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// `self - earlier`, zero if `earlier` is later.
    pub const fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + ms`, saturating.
    pub const fn plus(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

impl Add<u64> for Time {
    type Output = Self;
    fn add(self, ms: u64) -> Self {
        self.plus(ms)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0 / 1000;
        write!(
            f,
            "{}d{:02}:{:02}:{:02}.{:03}",
            s / 86_400,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60,
            self.0 % 1000
        )
    }
}
