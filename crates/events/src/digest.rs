//! SHA-256 digests written as 64 lowercase hex digits: the one that ties a log to the
//! input it was made from ([`InputDigest`]) and the one that seals a log's lines
//! ([`LogDigest`]).

use std::fmt;
use std::str::FromStr;

use plinth_model::Input;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::EventsError;

/// SHA-256 of an input: the text of every source, in load order, each with the cluster
/// its workloads are bound to (`--cluster NAME=PATH`), if any. Source names (paths) are
/// left out, so the same files read from another directory give the same digest; their
/// order is kept, since it is the order of clusters and workloads in the estate.
///
/// The digest is of the input rather than of the loaded `Estate` because the estate has
/// no canonical serialization (it does not implement `Serialize`, and its locations carry
/// the source names). All zeros ([`InputDigest::default`]) stands for an estate built in
/// memory that no input holds (tests, benchmarks).
///
/// Written as 64 lowercase hex digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputDigest(pub [u8; 32]);

impl InputDigest {
    /// The digest of `input`.
    pub fn of(input: &Input) -> Self {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        for source in &input.sources {
            field(source.text.as_bytes());
            match input.bindings.get(&source.name) {
                Some(cluster) => {
                    field(b"bound");
                    field(cluster.as_bytes());
                }
                None => field(b"unbound"),
            }
        }
        Self(h.finalize().into())
    }
}

/// Display, parsing and serde as 64 lowercase hex digits, for a newtype over `[u8; 32]`.
macro_rules! hex_digest {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }

        impl FromStr for $t {
            type Err = EventsError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex(s)
                    .map(Self)
                    .ok_or_else(|| EventsError::Digest { text: excerpt(s) })
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_digest!(InputDigest);
hex_digest!(LogDigest);

/// SHA-256 of every line of a log before its trailing `digest` line, newlines included:
/// written last by [`crate::LogWriter`] and checked by [`crate::LogReader`], so a log cut
/// short, edited or reordered after it was written is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogDigest(pub [u8; 32]);

/// The running digest of a log's lines.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineHasher(Sha256);

impl LineHasher {
    /// Adds one line as written, newline included.
    pub(crate) fn add(&mut self, line: &[u8]) {
        self.0.update(line);
    }

    /// The digest of the lines so far.
    pub(crate) fn digest(&self) -> LogDigest {
        LogDigest(self.0.clone().finalize().into())
    }
}

/// 64 hex digits as 32 bytes.
fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// At most 80 characters of `s`, for an error message.
fn excerpt(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use plinth_model::SourceFile;

    use super::*;

    fn input(files: &[(&str, &str)]) -> Input {
        let mut i = Input::default();
        for (name, text) in files {
            i.add(SourceFile::new(*name, *text));
        }
        i
    }

    #[test]
    fn the_digest_follows_the_texts_and_bindings_not_the_paths() {
        let a = InputDigest::of(&input(&[("a/x.yaml", "x: 1"), ("a/y.yaml", "y: 2")]));
        let moved = InputDigest::of(&input(&[("b/x.yaml", "x: 1"), ("b/y.yaml", "y: 2")]));
        assert_eq!(a, moved);
        let edited = InputDigest::of(&input(&[("a/x.yaml", "x: 1"), ("a/y.yaml", "y: 3")]));
        assert_ne!(a, edited);
        // Concatenation does not collide: lengths are part of the digest.
        let joined = InputDigest::of(&input(&[("a/x.yaml", "x: 1y: 2")]));
        assert_ne!(a, joined);
        let mut bound = Input::default();
        bound.add(SourceFile::new("a/x.yaml", "x: 1"));
        bound.add_bound(SourceFile::new("a/y.yaml", "y: 2"), "shop");
        assert_ne!(a, InputDigest::of(&bound));
    }

    #[test]
    fn hex_round_trips_and_bad_hex_is_an_error() {
        let d = InputDigest::of(&input(&[("x", "x")]));
        let text = d.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<InputDigest>().ok(), Some(d));
        for bad in ["", "zz", &"g".repeat(64), &"é".repeat(32)] {
            assert!(bad.parse::<InputDigest>().is_err(), "{bad}");
            assert!(bad.parse::<LogDigest>().is_err(), "{bad}");
        }
        let long = "a".repeat(10_000);
        let err = long.parse::<LogDigest>().expect_err("too long").to_string();
        assert!(err.len() < 200, "{err}");
    }
}
