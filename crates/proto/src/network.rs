//! Per-cluster node networks: which network a node VM joins ([`NetworkOf`]), the overlay id
//! a network's segment carries ([`NetworkId`]), addresses with prefixes ([`Ipv4Net`]), and
//! the answer of a reachability check between node VMs ([`Reach`]).
//!
//! Each cluster's node VMs sit on their own layer-2 segment: a bridge per cluster on every
//! host, joined across hosts by a VXLAN overlay whose id is the network's. The control plane
//! says which network a VM joins; the host agents give each network its id and subnet the
//! first time any host needs it, and each VM an address in the subnet, on the storage every
//! host sees, so neither changes once given.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A VXLAN network identifier: one per cluster, 1 to 2^24 − 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct NetworkId(u32);

impl NetworkId {
    /// The largest id VXLAN carries.
    pub const MAX: u32 = (1 << 24) - 1;

    /// The id, when it is one VXLAN carries.
    #[must_use]
    pub fn new(id: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&id).then_some(Self(id))
    }

    /// The number.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for NetworkId {
    type Error = String;
    fn try_from(id: u32) -> Result<Self, String> {
        Self::new(id).ok_or_else(|| format!("network id {id} is not within 1..={}", Self::MAX))
    }
}

impl From<NetworkId> for u32 {
    fn from(id: NetworkId) -> Self {
        id.0
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An IPv4 address with a prefix length, written `10.64.16.5/20`: an interface's address,
/// or (with the host bits zero) a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// `addr/prefix`, when the prefix is at most 32.
    #[must_use]
    pub const fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        if prefix <= 32 {
            Some(Self { addr, prefix })
        } else {
            None
        }
    }

    /// The address.
    #[must_use]
    pub const fn addr(self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    #[must_use]
    pub const fn prefix(self) -> u8 {
        self.prefix
    }

    fn mask(self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The subnet the address is in (host bits zero).
    #[must_use]
    pub fn network(self) -> Self {
        Self {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    /// Whether `addr` is in this subnet.
    #[must_use]
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// How many addresses a host may take: all but the network's and the broadcast
    /// address (0 for a /31 or /32, which have none to lease).
    #[must_use]
    pub fn host_count(self) -> u32 {
        (!self.mask()).saturating_sub(1)
    }

    /// The `i`-th host address (0-based, after the network's own), with this prefix; `None`
    /// past [`Ipv4Net::host_count`].
    #[must_use]
    pub fn host(self, i: u32) -> Option<Self> {
        (i < self.host_count()).then(|| Self {
            addr: Ipv4Addr::from((u32::from(self.addr) & self.mask()) + 1 + i),
            prefix: self.prefix,
        })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX (e.g. 10.64.16.0/20)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        prefix
            .parse::<u8>()
            .ok()
            .and_then(|p| Self::new(addr, p))
            .ok_or_else(|| format!("{prefix:?} is not a prefix length of 0 to 32"))
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which network a node VM's one NIC joins: its cluster's, or its VirtualMachineSet's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum NetworkOf {
    /// The network of the cluster of this name.
    Cluster(String),
    /// The network of the VirtualMachineSet of this name.
    VmSet(String),
}

impl NetworkOf {
    /// A file name for the network (`cluster-apps`, `vmset-legacy`), when its name is one
    /// path component of ASCII letters, digits, `-`, `_` or `.` (not starting with `.`).
    #[must_use]
    pub fn key(&self) -> Option<String> {
        let (kind, name) = match self {
            Self::Cluster(n) => ("cluster", n),
            Self::VmSet(n) => ("vmset", n),
        };
        crate::VmName(name.clone())
            .is_valid()
            .then(|| format!("{kind}-{name}"))
    }
}

impl fmt::Display for NetworkOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cluster(n) => write!(f, "cluster {n}'s network"),
            Self::VmSet(n) => write!(f, "VirtualMachineSet {n}'s network"),
        }
    }
}

/// The answer to a reachability check from one node VM to an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase", deny_unknown_fields)]
pub enum Reach {
    /// A node's guest agent answered there: its node name, then its whole answer (a filler
    /// larger than one frame, so a path that drops full-size frames does not count).
    Answered {
        /// The node that answered.
        node: String,
    },
    /// Nothing on the VM's network took the connection: it timed out, or no host holds the
    /// address (no answer to ARP).
    Unreachable {
        /// What the guest saw.
        reason: String,
    },
    /// Something took or refused the connection, but no whole guest answer came.
    Refused {
        /// What the guest saw.
        reason: String,
    },
    /// The check was not made: the VM is not on this host, has no NIC, or its guest agent
    /// did not answer.
    NotChecked {
        /// Why.
        reason: String,
    },
}

/// The filler a guest agent sends after its node name (see [`Reach::Answered`]).
pub const ANSWER_FILLER_BYTES: usize = 16 * 1024;

/// The longest node name a guest's answer may carry.
pub const MAX_NODE_NAME: usize = 253;

/// The MAC address of a NIC leased `addr`: locally administered (`02:00`), then the address,
/// so it is unique wherever the address is.
#[must_use]
pub fn mac_of(addr: Ipv4Addr) -> String {
    let [a, b, c, d] = addr.octets();
    format!("02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_hand_out_host_addresses() {
        let net: Ipv4Net = "10.64.16.0/20".parse().expect("subnet");
        assert_eq!(net.host_count(), 4094);
        assert_eq!(
            net.host(0).map(|h| h.to_string()),
            Some("10.64.16.1/20".into())
        );
        assert_eq!(
            net.host(4093).map(|h| h.addr()),
            Some(Ipv4Addr::new(10, 64, 31, 254))
        );
        assert_eq!(net.host(4094), None);
        assert!(net.contains(Ipv4Addr::new(10, 64, 31, 255)));
        assert!(!net.contains(Ipv4Addr::new(10, 64, 32, 0)));
        let host: Ipv4Net = "10.64.17.9/20".parse().expect("address");
        assert_eq!(host.network(), net);
        for bad in [
            "10.64.16.0",
            "10.64.16.0/33",
            "10.64.16/20",
            "x/20",
            "10.64.16.0/-1",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&net).expect("json");
        assert_eq!(json, "\"10.64.16.0/20\"");
        assert_eq!(serde_json::from_str::<Ipv4Net>(&json).ok(), Some(net));
    }

    #[test]
    fn network_ids_are_what_vxlan_carries() {
        assert_eq!(NetworkId::new(0), None);
        assert_eq!(NetworkId::new(NetworkId::MAX + 1), None);
        assert!(serde_json::from_str::<NetworkId>("16777216").is_err());
        assert_eq!(
            serde_json::from_str::<NetworkId>("4096").ok(),
            NetworkId::new(4096)
        );
    }

    #[test]
    fn a_network_is_a_file_name_only_when_its_name_is_one() {
        assert_eq!(
            NetworkOf::Cluster("apps".into()).key().as_deref(),
            Some("cluster-apps")
        );
        assert_eq!(
            NetworkOf::VmSet("apps".into()).key().as_deref(),
            Some("vmset-apps")
        );
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert_eq!(NetworkOf::Cluster(bad.into()).key(), None, "{bad:?}");
        }
    }

    #[test]
    fn a_mac_follows_its_address() {
        assert_eq!(mac_of(Ipv4Addr::new(10, 64, 16, 5)), "02:00:0a:40:10:05");
    }
}
