//! Manifest scalars with units: byte sizes (`64Gi`, `1.5T`), CPU (`250m`, `2`), durations
//! (`50s`, `6h`, `365d`) and money. Each parses from what a user would write and keeps an
//! exact integer inside.

use std::borrow::Cow;
use std::fmt;

use kube_quantity::ParsedQuantity;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::units::{format_bytes, format_cpu};

/// Accepts a string or a number and hands its text to `parse`.
fn scalar_text<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
) -> Result<String, D::Error> {
    struct V(&'static str);
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V(expecting))
}

/// Largest quantity accepted, in base units: 2^50 (a PiB, or 10^12 cores' millicores
/// would be far beyond it too). Bounding every quantity at parse time keeps every sum of a
/// few of them far from `u64` overflow.
pub const MAX_QUANTITY: f64 = (1u64 << 50) as f64;

/// A Kubernetes quantity in base units as f64, or a message saying what was wrong.
pub fn parse_quantity(text: &str) -> Result<f64, String> {
    let q = ParsedQuantity::try_from(text)
        .map_err(|_| format!("`{text}` is not a quantity (examples: 64Mi, 1.5G, 250m, 2)"))?;
    q.to_bytes_f64()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= MAX_QUANTITY)
        .ok_or_else(|| format!("`{text}` is out of range (0 to 1Pi)"))
}

macro_rules! string_schema {
    ($ty:ty, $name:literal, $desc:literal, $pattern:literal) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": ["string", "number"], "description": $desc, "examples": [$pattern] })
            }
        }
    };
}

/// A size in bytes, written as a Kubernetes quantity: `64Gi`, `1.5T`, `512Mi`, `1073741824`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d, "a byte size such as 64Gi or 1.5T")?;
        let v = parse_quantity(&text).map_err(de::Error::custom)?;
        Ok(Self(v.round() as u64))
    }
}
impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_bytes(self.0))
    }
}
string_schema!(
    ByteSize,
    "ByteSize",
    "Bytes as a Kubernetes quantity (binary Ki Mi Gi Ti or decimal k M G T suffixes).",
    "64Gi"
);

/// CPU in millicores, written as a Kubernetes quantity: `250m`, `2`, `1.5`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cpu(pub u64);

impl<'de> Deserialize<'de> for Cpu {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d, "a CPU quantity such as 250m or 2")?;
        let v = parse_quantity(&text).map_err(de::Error::custom)?;
        Ok(Self((v * 1000.0).round() as u64))
    }
}
impl Serialize for Cpu {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_cpu(self.0))
    }
}
string_schema!(
    Cpu,
    "Cpu",
    "CPU as a Kubernetes quantity: cores (2, 1.5) or millicores (250m).",
    "250m"
);

/// A duration, written `50s`, `5m`, `6h`, `42d`, `1y` or combined (`1h 30m`); kept in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duration(pub u64);

impl Duration {
    /// Milliseconds.
    pub const fn millis(self) -> u64 {
        self.0
    }
    /// Whole seconds.
    pub const fn secs(self) -> u64 {
        self.0 / 1000
    }
    /// From seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(s * 1000)
    }
    /// From hours.
    pub const fn from_hours(h: u64) -> Self {
        Self(h * 3_600_000)
    }
    /// From days.
    pub const fn from_days(d: u64) -> Self {
        Self(d * 86_400_000)
    }
    /// In hours, fractional.
    pub fn as_hours_f64(self) -> f64 {
        self.0 as f64 / 3_600_000.0
    }
}

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            format!("`{text}` is not a duration ({e}); examples: 50s, 5m, 6h, 42d, 1y")
        })?;
        u64::try_from(d.as_millis())
            .map(Self)
            .map_err(|_| format!("`{text}` is too long"))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d, "a duration such as 50s, 6h or 42d")?;
        text.parse().map_err(de::Error::custom)
    }
}
impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
impl fmt::Display for Duration {
    /// Days, hours, minutes, seconds and milliseconds, largest first, zero parts left out:
    /// `42d`, `1h 30m`, `50s` — the form the parser reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1000, "s"),
            (1, "ms"),
        ];
        let mut rest = self.0;
        let mut first = true;
        for (size, unit) in units {
            let n = rest / size;
            rest %= size;
            if n > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{n}{unit}")?;
                first = false;
            }
        }
        Ok(())
    }
}
string_schema!(
    Duration,
    "Duration",
    "A duration: a number with a unit (ms, s, m, h, d, w, y), several may be combined.",
    "6h"
);

/// An amount of money in the PriceSheet's currency, kept in integer micro-units so sums are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Money(pub i64);

impl Money {
    /// Micro-units per currency unit.
    pub const MICROS: i64 = 1_000_000;
    /// Whole currency units, fractional.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::MICROS as f64
    }
    /// From whole currency units.
    pub const fn from_units(units: i64) -> Self {
        Self(units * Self::MICROS)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d, "an amount such as 12000 or 0.15")?;
        let v: f64 = text
            .replace('_', "")
            .parse()
            .map_err(|_| de::Error::custom(format!("`{text}` is not an amount of money")))?;
        if !v.is_finite() || v.abs() > 1e12 {
            return Err(de::Error::custom(format!("`{text}` is out of range")));
        }
        Ok(Self((v * Self::MICROS as f64).round() as i64))
    }
}
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}
impl JsonSchema for Money {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Money")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "description": "An amount in the PriceSheet's currency." })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn de<T: for<'de> Deserialize<'de>>(v: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(de::<ByteSize>(json!("64Mi")), Ok(ByteSize(64 << 20)));
        assert_eq!(de::<ByteSize>(json!("1.5G")), Ok(ByteSize(1_500_000_000)));
        assert_eq!(de::<ByteSize>(json!(1024)), Ok(ByteSize(1024)));
        assert!(de::<ByteSize>(json!("64 gigs")).is_err());
    }

    #[test]
    fn cpu() {
        assert_eq!(de::<Cpu>(json!("250m")), Ok(Cpu(250)));
        assert_eq!(de::<Cpu>(json!(2)), Ok(Cpu(2000)));
        assert_eq!(de::<Cpu>(json!(1.5)), Ok(Cpu(1500)));
    }

    #[test]
    fn durations() {
        assert_eq!(de::<Duration>(json!("50s")), Ok(Duration::from_secs(50)));
        assert_eq!(de::<Duration>(json!("365d")), Ok(Duration::from_days(365)));
        assert_eq!(
            de::<Duration>(json!("1h 30m")),
            Ok(Duration::from_secs(5400))
        );
        assert!(
            de::<Duration>(json!("soon"))
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn durations_print_as_they_parse() {
        assert_eq!(Duration::from_days(42).to_string(), "42d");
        assert_eq!(Duration::from_secs(5400).to_string(), "1h 30m");
        assert_eq!("1h 30m".parse::<Duration>(), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(de::<Money>(json!(0.15)), Ok(Money(150_000)));
        assert_eq!(de::<Money>(json!(12000)), Ok(Money::from_units(12000)));
    }
}
