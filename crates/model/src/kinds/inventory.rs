//! `Inventory`: what exists (hosts, racks) and what can be bought (host classes).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::{ByteSize, Duration};

/// The spec of an `Inventory`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InventorySpec {
    /// The catalogue of server models: what existing hosts are and what can be bought.
    pub host_classes: Vec<HostClass>,
    /// Racks: each is a power and failure domain.
    pub racks: Vec<Rack>,
    /// Hosts that exist today, by class and count or one by name.
    #[serde(default)]
    pub hosts: Vec<HostEntry>,
    /// The region every node is labelled with (`topology.kubernetes.io/region`); the
    /// Inventory's name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl InventorySpec {
    /// The agent address of each host that declares one, by host name.
    pub fn agents(&self) -> std::collections::BTreeMap<String, std::net::SocketAddr> {
        self.hosts
            .iter()
            .filter_map(|h| Some((h.name.clone()?, h.agent?)))
            .collect()
    }

    /// The zone of rack `r` (`topology.kubernetes.io/zone`): its declared `zone`, else the
    /// rack's own name.
    pub fn zone_of_rack(&self, r: usize) -> Option<&str> {
        self.racks
            .get(r)
            .map(|rack| rack.zone.as_deref().unwrap_or(&rack.name))
    }

    /// Whether any rack declares its `zone`: then maintenance and DRS keep every VM inside
    /// its host's declared zone, the racks that declare none sharing one. Zones that are
    /// only rack names label nodes but do not confine moves (a rack holds too few hosts to
    /// take its own evacuations without reserves the capacity plan does not make per rack).
    pub fn declares_zones(&self) -> bool {
        self.racks.iter().any(|r| r.zone.is_some())
    }
}

/// A server model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostClass {
    /// The class name hosts and prices refer to.
    pub name: String,
    /// CPU sockets.
    pub sockets: u32,
    /// Physical cores per socket.
    pub cores_per_socket: u32,
    /// Hardware threads per core (2 with SMT).
    #[serde(default = "default_threads_per_core")]
    pub threads_per_core: u32,
    /// Memory.
    pub memory: ByteSize,
    /// Local disks.
    #[serde(default)]
    pub disks: Vec<Disk>,
    /// Network bandwidth per host in Gbit/s (all ports together).
    #[serde(default = "default_nic_gbps")]
    pub nic_gbps: u32,
    /// Power draw.
    #[serde(default)]
    pub watts: Watts,
    /// Procurement lead time: order to racked and cabled.
    #[serde(default = "default_lead_time")]
    pub lead_time: Duration,
    /// Rack units one server takes (default 2; an assumption: two-socket servers with front
    /// drive bays are 1U or 2U), priced by the PriceSheet's `rackSpace`.
    #[serde(default = "default_rack_units")]
    pub rack_units: u32,
}

/// 2: SMT on, as shipped by every mainstream x86 server.
pub fn default_threads_per_core() -> u32 {
    2
}
/// 25 Gbit/s: a common server NIC today; an assumption, no published figure.
pub fn default_nic_gbps() -> u32 {
    25
}
/// 2U: an assumption (two-socket servers with front drive bays are 1U or 2U; set yours).
pub fn default_rack_units() -> u32 {
    2
}
/// 6 weeks: an assumption (no published figure in REFERENCES.md); set it from your vendor's quote.
pub fn default_lead_time() -> Duration {
    Duration::from_days(42)
}

impl HostClass {
    /// Physical cores.
    pub fn cores(&self) -> u32 {
        self.sockets.saturating_mul(self.cores_per_socket)
    }
    /// Hardware threads (what a hypervisor schedules vCPUs on).
    pub fn threads(&self) -> u32 {
        self.cores().saturating_mul(self.threads_per_core)
    }
    /// The whole server as one bundle: CPU as hardware threads × 1000, memory, local disk.
    pub fn capacity(&self) -> crate::Resources {
        crate::Resources::new(
            u64::from(self.threads()).saturating_mul(1000),
            self.memory.0,
            self.disk_bytes(),
        )
    }

    /// Total local disk bytes.
    pub fn disk_bytes(&self) -> u64 {
        self.disks
            .iter()
            .map(|d| d.capacity.0.saturating_mul(u64::from(d.count)))
            .sum()
    }
}

/// A disk model and how many a host has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Disk {
    /// `nvme`, `ssd` or `hdd`.
    pub kind: DiskKind,
    /// Capacity of one disk.
    pub capacity: ByteSize,
    /// How many.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// A disk technology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DiskKind {
    /// NVMe flash.
    Nvme,
    /// SATA/SAS flash.
    Ssd,
    /// Spinning disk.
    Hdd,
}

/// Power draw of one host.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Watts {
    /// At idle (default 225 W: SPECpower_ssj2008, Sun Netra X4250, 2009, REFERENCES.md §5;
    /// old, so set your own).
    pub idle: u32,
    /// At full load (default 296 W, same source).
    pub peak: u32,
}

/// SPECpower_ssj2008, Sun Netra X4250 (2009): idle 225 W, 100 % 296 W — the only concrete
/// example in REFERENCES.md §5; old, so set your own.
impl Default for Watts {
    fn default() -> Self {
        Self {
            idle: 225,
            peak: 296,
        }
    }
}

/// A rack: a power and failure domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rack {
    /// The rack name.
    pub name: String,
    /// The zone the rack belongs to (`topology.kubernetes.io/zone` of the nodes on its
    /// hosts); each rack is its own zone when unset. Once any rack declares one,
    /// maintenance evacuations and DRS keep VMs inside their zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// What a host is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HostRole {
    /// In service.
    #[default]
    Active,
    /// A cold spare: powered off, installed when a server must be replaced.
    Spare,
}

/// Hosts that exist: `count` hosts of a class (named `<rack>-<class>-<n>`), or one host by `name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEntry {
    /// One host's name; leave out to describe `count` hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host class.
    pub class: String,
    /// The rack the hosts stand in.
    pub rack: String,
    /// How many hosts (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// `active` (default) or `spare`.
    #[serde(default)]
    pub role: HostRole,
    /// Where this host's agent listens (`IP:port`), for `plinth run`; only with `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub agent: Option<std::net::SocketAddr>,
}
