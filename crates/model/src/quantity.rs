//! Manifest scalars with units: byte sizes (`64Gi`, `1.5T`), CPU (`250m`, `2`), durations
//! (`50s`, `6h`, `365d`) and money. Each parses from what a user would write and keeps an
//! exact integer inside.

use std::borrow::Cow;
use std::fmt;

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

/// Largest quantity a Plinth kind accepts, in base units: 2^50 (1Pi bytes, or 10^12
/// cores' millicores would be far beyond it too). Bounding Plinth's own sizes keeps every
/// sum of a few of them far from `u64` overflow. Workload requests are not bounded by
/// it: they parse as Kubernetes parses them ([`KubeQuantity`]).
pub const MAX_QUANTITY: u64 = 1 << 50;

/// The largest value Kubernetes gives a quantity: larger ones are capped at 2^63 - 1
/// (`resource.Quantity`).
pub const KUBERNETES_MAX: u64 = i64::MAX.unsigned_abs();

/// Why a text is not a quantity Kubernetes would accept as a resource amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not in Kubernetes' quantity syntax.
    #[error("`{text}` is not a quantity (examples: 250m or 2 CPU, 64Mi or 1.5G memory)")]
    Syntax {
        /// The text as written.
        text: String,
    },
    /// Negative: Kubernetes parses it, but no request, limit or size may be below zero.
    #[error("`{text}` is negative; a resource amount is 0 or more")]
    Negative {
        /// The text as written.
        text: String,
    },
    /// Above what a Plinth kind accepts.
    #[error("`{text}` is out of range (0 to 1Pi)")]
    OutOfRange {
        /// The text as written.
        text: String,
    },
}

/// A non-negative Kubernetes quantity, parsed exactly as `resource.ParseQuantity` parses
/// it: `<number><suffix>` where the number is `1`, `1.5`, `.5` or `5.` with an optional
/// sign, and the suffix is binary (`Ki Mi Gi Ti Pi Ei`), decimal (`n u m k M G T P E`) or
/// an exponent (`e3`, `E-2`). The value is kept exactly as decimal digits, so rounding
/// happens once, the way Kubernetes rounds: up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeQuantity {
    /// Significant decimal digits, most significant first, no leading zeros.
    digits: Vec<u8>,
    /// Power of ten the digits are scaled by: value = digits × 10^exponent.
    exponent: i64,
}

/// Decimal suffixes and their powers of ten.
const DECIMAL_SUFFIXES: [(&str, i64); 9] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// Binary suffixes and their powers of 1024.
const BINARY_SUFFIXES: [(&str, u32); 6] = [
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];

/// Splits `text` into its sign, its number and its suffix, or `None` when the number is
/// not `digits`, `digits.digits`, `digits.` or `.digits`.
fn split_number(text: &str) -> Option<(bool, &str, &str, &str)> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let int_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (int, rest) = rest.split_at(int_end);
    let (frac, suffix) = match rest.strip_prefix('.') {
        Some(after) => {
            let end = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            after.split_at(end)
        }
        None => ("", rest),
    };
    (!int.is_empty() || !frac.is_empty()).then_some((negative, int, frac, suffix))
}

/// A suffix as (power of ten, power of 1024), or `None` when Kubernetes knows no such suffix.
fn suffix_scale(suffix: &str) -> Option<(i64, u32)> {
    if suffix.is_empty() {
        return Some((0, 0));
    }
    if let Some((_, p)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((0, *p));
    }
    if let Some((_, p)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((*p, 0));
    }
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // An exponent beyond any i64 caps or vanishes the value alike at ±10^18.
    let magnitude = digits
        .parse::<i64>()
        .unwrap_or(i64::MAX / 4)
        .min(i64::MAX / 4);
    Some((
        if exponent.starts_with('-') {
            -magnitude
        } else {
            magnitude
        },
        0,
    ))
}

/// `digits` (most significant first) times 1024.
fn times_1024(digits: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(digits.len() + 4);
    let mut carry = 0u32;
    for d in digits.iter().rev() {
        let v = u32::from(*d) * 1024 + carry;
        out.push((v % 10) as u8);
        carry = v / 10;
    }
    while carry > 0 {
        out.push((carry % 10) as u8);
        carry /= 10;
    }
    out.reverse();
    out
}

impl std::str::FromStr for KubeQuantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, QuantityError> {
        let syntax = || QuantityError::Syntax {
            text: text.to_owned(),
        };
        let (negative, int, frac, suffix) = split_number(text).ok_or_else(syntax)?;
        let (power_of_ten, power_of_1024) = suffix_scale(suffix).ok_or_else(syntax)?;
        let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        for _ in 0..power_of_1024 {
            digits = times_1024(&digits);
        }
        let leading = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading);
        if negative && !digits.is_empty() {
            return Err(QuantityError::Negative {
                text: text.to_owned(),
            });
        }
        let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
        Ok(Self {
            digits,
            exponent: power_of_ten.saturating_sub(frac_len),
        })
    }
}

impl KubeQuantity {
    /// The value in units of 10^`scale`, rounded up and capped at 2^63 - 1.
    fn scaled_up(&self, scale: i64) -> u64 {
        if self.digits.is_empty() {
            return 0;
        }
        // Digits left of the point once the value is divided by 10^scale.
        let len = i64::try_from(self.digits.len()).unwrap_or(i64::MAX);
        let point = len.saturating_add(self.exponent).saturating_sub(scale);
        if point > 19 {
            return KUBERNETES_MAX;
        }
        let split = usize::try_from(point.clamp(0, len)).unwrap_or(0);
        let (int, frac) = self.digits.split_at(split);
        let mut value = int.iter().fold(0u128, |v, d| v * 10 + u128::from(*d));
        for _ in len..point {
            value *= 10;
        }
        if frac.iter().any(|d| *d != 0) {
            value += 1;
        }
        u64::try_from(value).map_or(KUBERNETES_MAX, |v| v.min(KUBERNETES_MAX))
    }

    /// The value in base units (bytes, cores), rounded up: Kubernetes' `Quantity.Value()`.
    pub fn value(&self) -> u64 {
        self.scaled_up(0)
    }

    /// The value in thousandths (millicores), rounded up: Kubernetes' `Quantity.MilliValue()`,
    /// so `0.0001` CPU is 1m.
    pub fn milli_value(&self) -> u64 {
        self.scaled_up(-3)
    }
}

/// A quantity of a Plinth kind in base units, or in thousandths when `milli`,
/// bounded by [`MAX_QUANTITY`] base units.
fn plinth_quantity(text: &str, milli: bool) -> Result<u64, QuantityError> {
    let q: KubeQuantity = text.parse()?;
    if q.value() > MAX_QUANTITY {
        return Err(QuantityError::OutOfRange {
            text: text.to_owned(),
        });
    }
    Ok(if milli { q.milli_value() } else { q.value() })
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
        plinth_quantity(&text, false)
            .map(Self)
            .map_err(de::Error::custom)
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
        plinth_quantity(&text, true)
            .map(Self)
            .map_err(de::Error::custom)
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

    fn kube(text: &str) -> Result<(u64, u64), QuantityError> {
        text.parse::<KubeQuantity>()
            .map(|q| (q.value(), q.milli_value()))
    }

    #[test]
    fn kubernetes_quantities_parse_as_kubernetes_parses_them() {
        assert_eq!(kube("1Ei"), Ok((1 << 60, KUBERNETES_MAX)));
        assert_eq!(kube("100m"), Ok((1, 100)), "Value() rounds 0.1 up to 1");
        assert_eq!(kube("1.5Gi"), Ok((3 << 29, (3 << 29) * 1000)));
        assert_eq!(kube("1e3"), Ok((1000, 1_000_000)));
        assert_eq!(kube("1E3"), Ok((1000, 1_000_000)));
        assert_eq!(kube("2.5e-1"), Ok((1, 250)));
        assert_eq!(kube(".5"), Ok((1, 500)));
        assert_eq!(kube("5."), Ok((5, 5000)));
        assert_eq!(kube("+2"), Ok((2, 2000)));
        assert_eq!(
            kube("0.3"),
            Ok((1, 300)),
            "exact: no float rounding to 301m"
        );
        assert_eq!(kube("1E"), Ok((10u64.pow(18), KUBERNETES_MAX)));
        assert_eq!(kube("-0"), Ok((0, 0)));
        assert_eq!(
            kube("1e99999999999999999999"),
            Ok((KUBERNETES_MAX, KUBERNETES_MAX))
        );
        assert_eq!(kube("1e-99999999999999999999"), Ok((1, 1)));
    }

    #[test]
    fn sub_milli_cpu_rounds_up_to_one_millicore() {
        assert_eq!(kube("0.0001").map(|(_, m)| m), Ok(1));
        assert_eq!(kube("100u").map(|(_, m)| m), Ok(1));
        assert_eq!(kube("1n").map(|(_, m)| m), Ok(1));
        assert_eq!(kube("1001u").map(|(_, m)| m), Ok(2));
        assert_eq!(kube("0").map(|(_, m)| m), Ok(0));
    }

    #[test]
    fn invalid_quantities_are_rejected_with_the_text() {
        for bad in [
            "", "Gi", "1.5.1", "1 Gi", "1gi", "1e", "1e3Gi", "1Ki3", ".", "inf", "nan", "1_000",
            "0x10",
        ] {
            assert_eq!(
                kube(bad),
                Err(QuantityError::Syntax { text: bad.into() }),
                "{bad:?}"
            );
        }
        assert_eq!(
            kube("-1").map_err(|e| e.to_string()),
            Err("`-1` is negative; a resource amount is 0 or more".into())
        );
        assert_eq!(
            kube("4 gigs").map_err(|e| e.to_string()),
            Err("`4 gigs` is not a quantity (examples: 250m or 2 CPU, 64Mi or 1.5G memory)".into())
        );
    }

    #[test]
    fn plinth_sizes_stay_bounded() {
        assert_eq!(de::<ByteSize>(json!("1Pi")), Ok(ByteSize(1 << 50)));
        assert!(
            de::<ByteSize>(json!("1Ei"))
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(de::<Cpu>(json!(0.0001)), Ok(Cpu(1)));
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
