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

/// A span of milliseconds as a person reads it (`950 ms`, `12.5 s`, `3 min 20 s`,
/// `2 h 5 min`, `3 d 4 h`): how condition messages say when something happens next, so
/// they read the same on the simulator's clock and on the wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub u64);

impl Span {
    /// From `now` until `later` (zero when `later` has passed).
    pub fn until(now: Time, later: Time) -> Self {
        Self(later.0.saturating_sub(now.0))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        let (s, m, h, d) = (ms / 1000, ms / 60_000, ms / 3_600_000, ms / 86_400_000);
        match ms {
            0..1_000 => write!(f, "{ms} ms"),
            1_000..60_000 => write!(f, "{:.1} s", ms as f64 / 1000.0),
            60_000..3_600_000 => write!(f, "{m} min {} s", s % 60),
            3_600_000..86_400_000 => write!(f, "{h} h {} min", m % 60),
            _ => write!(f, "{d} d {} h", h % 24),
        }
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        let shown: Vec<String> = [950, 12_500, 200_000, 7_500_000, 273_600_000]
            .map(|ms| Span(ms).to_string())
            .into();
        assert_eq!(
            shown,
            ["950 ms", "12.5 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"]
        );
        assert_eq!(Span::until(Time(10), Time(5)), Span(0));
    }
}
