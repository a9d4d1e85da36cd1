//! Typed identifiers: names are never built with `format!` and split again.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of a host, as in the Inventory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostName(pub String);

/// The name of a VM, unique in the pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmName(pub String);

impl VmName {
    /// Whether the name is safe as one path component and one QEMU id: 1 to 63 ASCII letters,
    /// digits, `-`, `_` or `.`, not starting with `.`.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let s = self.0.as_str();
        (1..=63).contains(&s.len())
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }
}

/// The id of a command, unique per control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub u64);

/// One life of a host agent's host: counted up each time the host (not the agent) starts, and
/// kept on the host's disk, so a message from a previous life can be told apart *and* ordered
/// (a random id, like the kernel's, cannot say which life is newer). All testbed namespaces
/// share one kernel, so the kernel's boot id could not serve anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BootId(pub u64);

impl BootId {
    /// The first life of a host.
    pub const FIRST: Self = Self(1);

    /// The life after this one.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

/// A VM's generation: raised by every change the host agent makes to it (create, start, stop).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Generation(pub u64);

impl Generation {
    /// The next generation.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(HostName, VmName, CommandId, BootId, Generation);
