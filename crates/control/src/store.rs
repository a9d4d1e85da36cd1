//! Durable state: a small keyed [`Store`] of versioned records that [`crate::Control`]
//! writes through, one record per object (host, VM, command in flight, command waiting
//! for its retry, cluster with its pools and rollout, failure, condition) plus one of
//! counters, so a step writes only what it changed and a restarted control plane loads
//! them back ([`crate::Control::restore`]).
//!
//! The trait is what `plinth serve` is to implement on SQLite and etcd (not built yet);
//! [`MemoryStore`] is the one the simulator and the tests use. Records are JSON and small: one above
//! [`MAX_RECORD_BYTES`] is refused (etcd refuses requests over 1.5 MiB).

use std::collections::BTreeMap;
use std::fmt;

use crate::command::CommandId;

/// The largest record a store accepts, bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// A record's key: the kind of object and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Counters: the next command id (unique across restarts), retry and health keys.
    Meta,
    /// A host or server, by name.
    Host(String),
    /// A VM the control plane places, by name.
    Vm(String),
    /// A command in flight.
    Command(CommandId),
    /// A failed command waiting for its next attempt.
    Retry(u64),
    /// A cluster with its pools, rollout and scale targets, by name.
    Cluster(String),
    /// A bare-metal spare server, by name.
    Spare(String),
    /// A host failure, by its index in [`crate::Control::failures`].
    Failure(u64),
    /// The condition of an object (`vm/NAME`, `host/NAME`, …).
    Condition(String),
}

impl Key {
    /// The key whose [`Display`](fmt::Display) form is `text`, for stores that keep keys as
    /// text; `None` for text no key prints as.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "meta" {
            return Some(Self::Meta);
        }
        let (kind, rest) = text.split_once('/')?;
        let number = || rest.parse::<u64>().ok();
        Some(match kind {
            "hosts" => Self::Host(rest.to_owned()),
            "vms" => Self::Vm(rest.to_owned()),
            "commands" => Self::Command(CommandId(number()?)),
            "retries" => Self::Retry(number()?),
            "clusters" => Self::Cluster(rest.to_owned()),
            "spares" => Self::Spare(rest.to_owned()),
            "failures" => Self::Failure(number()?),
            "conditions" => Self::Condition(rest.to_owned()),
            _ => return None,
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Meta => f.write_str("meta"),
            Self::Host(n) => write!(f, "hosts/{n}"),
            Self::Vm(n) => write!(f, "vms/{n}"),
            Self::Command(id) => write!(f, "commands/{}", id.0),
            Self::Retry(k) => write!(f, "retries/{k}"),
            Self::Cluster(n) => write!(f, "clusters/{n}"),
            Self::Spare(n) => write!(f, "spares/{n}"),
            Self::Failure(i) => write!(f, "failures/{i}"),
            Self::Condition(o) => write!(f, "conditions/{o}"),
        }
    }
}

/// A stored record and its version (1 when created, one more at each write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The version.
    pub version: u64,
    /// The record, JSON.
    pub value: Vec<u8>,
}

/// One change of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Which record.
    pub key: Key,
    /// Its new version: exactly one more than the stored one (1 for a new record).
    pub version: u64,
    /// The record, or `None` to delete it.
    pub value: Option<Vec<u8>>,
}

/// Why a store refused writes or a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed the record since this one read it.
    #[error("record {key} is at version {found}, the write expected {expected}")]
    Conflict {
        /// The record.
        key: String,
        /// The version the write built on.
        expected: u64,
        /// The version stored.
        found: u64,
    },
    /// A record over [`MAX_RECORD_BYTES`].
    #[error("record {key} is {bytes} bytes, over the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge {
        /// The record.
        key: String,
        /// Its size.
        bytes: usize,
    },
    /// A record that does not decode.
    #[error("record {key} does not decode")]
    Corrupt {
        /// The record.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A record that refers to an object the control plane does not know.
    #[error("record {key} refers to unknown {what}")]
    Unknown {
        /// The record.
        key: String,
        /// What is unknown.
        what: String,
    },
    /// The store itself failed (a disk, a database): nothing of the write was kept.
    #[error("the store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A keyed store of versioned records.
pub trait Store {
    /// Every record.
    fn load(&self) -> Result<BTreeMap<Key, Versioned>, StoreError>;

    /// Applies `writes` all or none: each must build on the stored version.
    fn write(&mut self, writes: &[Write]) -> Result<(), StoreError>;
}

/// A [`Store`] in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: BTreeMap<Key, Versioned>,
}

impl MemoryStore {
    /// Records stored.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<BTreeMap<Key, Versioned>, StoreError> {
        Ok(self.records.clone())
    }

    fn write(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        for w in writes {
            let found = self.records.get(&w.key).map_or(0, |r| r.version);
            if w.version != found + 1 {
                return Err(StoreError::Conflict {
                    key: w.key.to_string(),
                    expected: w.version.saturating_sub(1),
                    found,
                });
            }
            if let Some(v) = &w.value
                && v.len() > MAX_RECORD_BYTES
            {
                return Err(StoreError::TooLarge {
                    key: w.key.to_string(),
                    bytes: v.len(),
                });
            }
        }
        for w in writes {
            match &w.value {
                Some(value) => {
                    self.records.insert(
                        w.key.clone(),
                        Versioned {
                            version: w.version,
                            value: value.clone(),
                        },
                    );
                }
                None => {
                    self.records.remove(&w.key);
                }
            }
        }
        Ok(())
    }
}
