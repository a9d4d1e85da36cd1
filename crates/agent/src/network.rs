//! Per-cluster node networks on one host (a port group on an NSX segment, in miniature): a
//! bridge per network, joined to the same network on every other host by a VXLAN device
//! with the network's id, and one TAP per VM (QEMU opens it) on its network's bridge.
//! Nothing routes between bridges, and the host has no address on them, so a VM reaches only
//! its own network's VMs, on this host or any other.
//!
//! VXLAN floods to a multicast group per network id over the underlay (the interface the
//! agent listens on), so no host needs a list of its peers. With no underlay (an agent on
//! loopback) a network is its bridge alone: it spans this host only.
//!
//! What must not change once given lives on the storage every host sees, made with
//! `O_EXCL` so that two hosts never take one thing: a network's slot of [`NODE_SPACE`] (its
//! id and subnet), given the first time any host needs the network, and each VM's address in
//! it, given when the VM is created. A VM keeps its address when it restarts or moves; a
//! network keeps its id and subnet whatever other clusters come and go.
//!
//! ```text
//! networks/slots/<slot>            the network key holding the slot ("cluster-apps")
//! networks/<key>/slot              its slot
//! networks/<key>/addresses/<a.b.c.d>  the VM holding the address
//! networks/<key>/vms/<vm>          the VM's address, with its prefix
//! ```

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use plinth_proto::VmName;
use plinth_proto::network::{Ipv4Net, NetworkId, NetworkOf};
use sha2::{Digest, Sha256};

use crate::error::AgentError;
use crate::tool::run;

/// The address space of all node networks, cut into one subnet per network. A guest treats
/// all of it as on-link (there is no router between networks), so a packet to another
/// network's node is not stopped by a missing route: only the overlay keeps networks apart.
pub const NODE_SPACE: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(10, 64, 0, 0), 10) {
    Some(net) => net,
    None => panic!("a /10 is a prefix"),
};

/// The prefix of one network's subnet: a /20, 4,094 node addresses.
const NETWORK_PREFIX: u8 = 20;

/// How many networks [`NODE_SPACE`] holds: 1,024.
const SLOTS: u32 = 1 << (NETWORK_PREFIX - NODE_SPACE.prefix());

/// The first network id; a network's is this plus its slot.
const FIRST_ID: u32 = 4096;

/// The UDP port of VXLAN (IANA).
const VXLAN_PORT: &str = "4789";

/// What VXLAN over IPv4 adds to a frame: the MTU of a network is the underlay's less this.
const VXLAN_OVERHEAD: u32 = 50;

/// The MTU of a network with no underlay (a bridge on one host).
const LOCAL_MTU: u32 = 1500;

/// One network as this host builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    /// Its overlay id.
    pub(crate) id: NetworkId,
    /// The subnet its VMs' addresses are in.
    pub(crate) subnet: Ipv4Net,
}

impl Network {
    fn of_slot(slot: u32) -> Option<Self> {
        let base = u32::from(NODE_SPACE.addr()) + (slot << (32 - u32::from(NETWORK_PREFIX)));
        Some(Self {
            id: NetworkId::new(FIRST_ID + slot)?,
            subnet: Ipv4Net::new(Ipv4Addr::from(base), NETWORK_PREFIX)?,
        })
    }
}

/// The interfaces of one VM's NIC on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nic {
    /// The leased address, with the subnet's prefix.
    pub(crate) address: Ipv4Net,
    /// The TAP QEMU opens (`pltapXXXXXXXX`: the address in hex, unique where it is).
    pub(crate) tap: String,
    /// The network's bridge on this host.
    pub(crate) bridge: String,
}

impl Nic {
    pub(crate) fn new(network: &Network, address: Ipv4Net) -> Self {
        Self {
            tap: format!("pltap{:08x}", u32::from(address.addr())),
            bridge: bridge_name(network.id),
            address,
        }
    }
}

fn bridge_name(id: NetworkId) -> String {
    format!("plbr{id}")
}

fn vxlan_name(id: NetworkId) -> String {
    format!("plvx{id}")
}

/// The multicast group network `id`'s VXLAN floods to: `239.` and the id's three bytes
/// (administratively scoped, one group per network, so a host hears only its networks).
fn group(id: NetworkId) -> Ipv4Addr {
    let [_, a, b, c] = id.get().to_be_bytes();
    Ipv4Addr::new(239, a, b, c)
}

/// Where a search for a free number of `count` starts for `name`: spread by its hash, so
/// names claimed in any order rarely meet.
fn start_of(name: &str, count: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % count.max(1)
}

/// Claims for `owner` the first free of the numbers `0..count` from `start` on (wrapping),
/// each a file `dir/name(n)` holding its owner. A claim appears whole or not at all: the
/// owner is written to a file of this process first, which is then hard-linked to the
/// claim's name (`link` fails when the name exists, on every host sharing the directory), so
/// no other claimant ever reads a claim half-written. A number `owner` holds already is its
/// own (a restart cut its claimant short, or another host claimed it for the same owner).
async fn claim(
    dir: &Path,
    owner: &str,
    start: u32,
    count: u32,
    name: impl Fn(u32) -> String,
) -> Result<Option<u32>, AgentError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(AgentError::file(dir))?;
    let staged = dir.join(staged_name(owner));
    tokio::fs::write(&staged, owner)
        .await
        .map_err(AgentError::file(&staged))?;
    let mut claimed = Ok(None);
    for k in 0..count {
        let n = (start + k) % count;
        let path = dir.join(name(n));
        match tokio::fs::hard_link(&staged, &path).await {
            Ok(()) => claimed = Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if tokio::fs::read_to_string(&path)
                    .await
                    .is_ok_and(|o| o == owner)
                {
                    claimed = Ok(Some(n));
                }
            }
            Err(e) => claimed = Err(AgentError::file(&path)(e)),
        }
        if !matches!(claimed, Ok(None)) {
            break;
        }
    }
    let _ = tokio::fs::remove_file(&staged).await;
    claimed
}

/// A name for a file staged by this process: a dot file (no key or VM name starts with a
/// dot), unique among the process's tasks and the hosts sharing the directory (each host's
/// agent is its own process; on the testbed they share one kernel's process ids).
fn staged_name(of: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".{of}.{}.{n}", std::process::id())
}

/// Writes `text` to `path` by a rename, so a reader sees all of it or none. The staged file
/// is a dot file (no key or VM name starts with a dot) of this process.
async fn publish(path: &Path, text: &str) -> Result<(), AgentError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = path.with_file_name(staged_name(&file_name));
    tokio::fs::write(&staged, text)
        .await
        .map_err(AgentError::file(&staged))?;
    tokio::fs::rename(&staged, path)
        .await
        .map_err(AgentError::file(path))
}

/// The networks of this host.
#[derive(Debug)]
pub(crate) struct Networks {
    storage: PathBuf,
    underlay: Option<String>,
    /// The MTU of this host's networks: the underlay's less VXLAN's overhead.
    mtu: u32,
    building: tokio::sync::Mutex<()>,
}

impl Networks {
    /// Networks kept on `storage` and joined across hosts over `underlay` (none: on this
    /// host only).
    pub(crate) async fn new(storage: &Path, underlay: Option<String>) -> Self {
        let mtu = match &underlay {
            Some(dev) => {
                let path = Path::new("/sys/class/net").join(dev).join("mtu");
                tokio::fs::read_to_string(&path)
                    .await
                    .ok()
                    .and_then(|m| m.trim().parse::<u32>().ok())
                    .unwrap_or(LOCAL_MTU)
                    .saturating_sub(VXLAN_OVERHEAD)
            }
            None => LOCAL_MTU,
        };
        Self {
            storage: storage.join("networks"),
            underlay,
            mtu,
            building: tokio::sync::Mutex::new(()),
        }
    }

    /// The MTU a VM's NIC gets.
    pub(crate) fn mtu(&self) -> u32 {
        self.mtu
    }

    fn key(of: &NetworkOf) -> Result<String, AgentError> {
        of.key().ok_or_else(|| AgentError::BadNetwork {
            network: of.clone(),
            detail: "its name is not one path component".into(),
        })
    }

    /// `of`'s network, if it holds a slot: read only, for whatever looks a network up.
    pub(crate) async fn lookup(&self, of: &NetworkOf) -> Result<Option<Network>, AgentError> {
        let record = self.storage.join(Self::key(of)?).join("slot");
        let bad = |detail: String| AgentError::BadNetwork {
            network: of.clone(),
            detail,
        };
        let text = match tokio::fs::read_to_string(&record).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AgentError::file(&record)(e)),
        };
        let slot = text
            .trim()
            .parse::<u32>()
            .map_err(|e| bad(format!("{}: {e}", record.display())))?;
        Network::of_slot(slot)
            .map(Some)
            .ok_or_else(|| bad(format!("slot {slot} is past {SLOTS}")))
    }

    /// `of`'s network: the slot it holds, or the first free one from where its name hashes
    /// to, taken now. Only a VM's creation takes one.
    pub(crate) async fn resolve(&self, of: &NetworkOf) -> Result<Network, AgentError> {
        if let Some(net) = self.lookup(of).await? {
            return Ok(net);
        }
        let key = Self::key(of)?;
        let dir = self.storage.join(&key);
        let slots = self.storage.join("slots");
        let slot = claim(&slots, &key, start_of(&key, SLOTS), SLOTS, |n| {
            n.to_string()
        })
        .await?
        .ok_or_else(|| AgentError::BadNetwork {
            network: of.clone(),
            detail: format!("all {SLOTS} networks of {NODE_SPACE} are taken"),
        })?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(AgentError::file(&dir))?;
        publish(&dir.join("slot"), &slot.to_string()).await?;
        tracing::info!(network = %of, slot, "network given its slot");
        Network::of_slot(slot).ok_or_else(|| AgentError::BadNetwork {
            network: of.clone(),
            detail: format!("slot {slot} is past {SLOTS}"),
        })
    }

    fn vm_lease(&self, of: &NetworkOf, vm: &VmName) -> Result<PathBuf, AgentError> {
        Ok(self.storage.join(Self::key(of)?).join("vms").join(&vm.0))
    }

    /// The address `vm` holds on `of`'s network `net`, if it has leased one.
    pub(crate) async fn leased(
        &self,
        vm: &VmName,
        of: &NetworkOf,
        net: &Network,
    ) -> Option<Ipv4Net> {
        let text = tokio::fs::read_to_string(self.vm_lease(of, vm).ok()?)
            .await
            .ok()?;
        text.trim()
            .parse::<Ipv4Net>()
            .ok()
            .filter(|a| a.network() == net.subnet)
    }

    /// The address `vm` holds on `of`'s network `net`, leased now if it has none: the first
    /// free one from where its name hashes to.
    pub(crate) async fn lease(
        &self,
        vm: &VmName,
        of: &NetworkOf,
        net: &Network,
    ) -> Result<Ipv4Net, AgentError> {
        if let Some(address) = self.leased(vm, of, net).await {
            return Ok(address);
        }
        let count = net.subnet.host_count();
        let dir = self.storage.join(Self::key(of)?);
        let host = |n: u32| net.subnet.host(n);
        let claimed = claim(
            &dir.join("addresses"),
            &vm.0,
            start_of(&vm.0, count),
            count,
            |n| host(n).map(|h| h.addr().to_string()).unwrap_or_default(),
        )
        .await?;
        let address = claimed
            .and_then(host)
            .ok_or_else(|| AgentError::BadNetwork {
                network: of.clone(),
                detail: format!("no free address in {} for {vm}", net.subnet),
            })?;
        let lease = self.vm_lease(of, vm)?;
        let vms = dir.join("vms");
        tokio::fs::create_dir_all(&vms)
            .await
            .map_err(AgentError::file(&vms))?;
        publish(&lease, &address.to_string()).await?;
        tracing::info!(vm = %vm, network = %of, %address, "address leased");
        Ok(address)
    }

    /// Gives `vm`'s address on `of`'s network back (a deleted VM): its lease first, then
    /// the address's claim, so a crash in between leaves at worst an address unused, never
    /// a lease of an address another VM may take.
    pub(crate) async fn release(&self, vm: &VmName, of: &NetworkOf) {
        let (Ok(Some(net)), Ok(lease), Ok(key)) =
            (self.lookup(of).await, self.vm_lease(of, vm), Self::key(of))
        else {
            return;
        };
        let address = self.leased(vm, of, &net).await;
        let _ = tokio::fs::remove_file(lease).await;
        if let Some(address) = address {
            let claim = self
                .storage
                .join(key)
                .join("addresses")
                .join(address.addr().to_string());
            if tokio::fs::read_to_string(&claim)
                .await
                .is_ok_and(|o| o == vm.0)
            {
                let _ = tokio::fs::remove_file(&claim).await;
            }
        }
    }

    /// Makes network `net`'s bridge on this host, and its VXLAN device on the underlay, as
    /// they should be: made if missing, and (every time, as the steps are idempotent) up,
    /// joined, and with no address of the host's on them.
    pub(crate) async fn build(&self, net: &Network) -> Result<(), AgentError> {
        let _one_at_a_time = self.building.lock().await;
        let bridge = bridge_name(net.id);
        if !exists(&bridge).await {
            ip(&["link", "add", &bridge, "type", "bridge"]).await?;
        }
        ip(&["link", "set", &bridge, "addrgenmode", "none"]).await?;
        ip(&["link", "set", &bridge, "up"]).await?;
        let Some(underlay) = &self.underlay else {
            return Ok(());
        };
        let vxlan = vxlan_name(net.id);
        if !exists(&vxlan).await {
            let (vni, group) = (net.id.to_string(), group(net.id).to_string());
            ip(&[
                "link", "add", &vxlan, "type", "vxlan", "id", &vni, "group", &group, "dev",
                underlay, "dstport", VXLAN_PORT,
            ])
            .await?;
            tracing::info!(network = %net.id, %bridge, %vxlan, %group, %underlay, "network joined");
        }
        ip(&["link", "set", &vxlan, "addrgenmode", "none"]).await?;
        ip(&["link", "set", &vxlan, "master", &bridge, "up"]).await
    }

    /// Puts a TAP QEMU opened on its network's bridge, with the network's MTU and no address
    /// of the host's. Idempotent: a VM re-adopted after an agent restart is plugged again.
    pub(crate) async fn plug(&self, nic: &Nic) -> Result<(), AgentError> {
        let mtu = self.mtu.to_string();
        ip(&["link", "set", &nic.tap, "addrgenmode", "none"]).await?;
        ip(&[
            "link",
            "set",
            &nic.tap,
            "mtu",
            &mtu,
            "master",
            &nic.bridge,
            "up",
        ])
        .await
    }
}

async fn exists(link: &str) -> bool {
    run("ip", ["link", "show", link]).await.is_ok()
}

async fn ip(args: &[&str]) -> Result<(), AgentError> {
    run("ip", args).await.map(drop)
}

/// The interface that holds `addr` on this host (the underlay of an agent listening there),
/// from `ip -o -4 addr show`.
///
/// # Errors
/// When `ip` fails or no interface holds the address.
pub async fn interface_of(addr: Ipv4Addr) -> Result<String, AgentError> {
    let out = run("ip", ["-o", "-4", "addr", "show"]).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let held = fields.get(3)?.parse::<Ipv4Net>().ok()?;
            (held.addr() == addr).then(|| fields[1].to_owned())
        })
        .ok_or_else(|| AgentError::Tool {
            tool: "ip".into(),
            detail: format!("no interface holds {addr}: pass --underlay DEV"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_names_and_slots_fit_the_space() {
        let last = Network::of_slot(SLOTS - 1).expect("the last slot");
        let nic = Nic::new(&last, "255.255.255.254/8".parse().expect("address"));
        for name in [&nic.tap, &nic.bridge, &vxlan_name(last.id)] {
            assert!(name.len() <= 15, "{name}");
        }
        assert_eq!(last.subnet.to_string(), "10.127.240.0/20");
        assert!(NODE_SPACE.contains(last.subnet.addr()));
        assert_eq!(
            group(NetworkId::new(0x01_02_03).expect("id")),
            Ipv4Addr::new(239, 1, 2, 3)
        );
    }

    #[tokio::test]
    async fn networks_keep_their_slot_and_vms_their_address_whatever_else_comes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let networks = Networks::new(dir.path(), None).await;
        let apps = NetworkOf::Cluster("apps".into());
        let net = networks.resolve(&apps).await.expect("a network");
        // Other networks come and go; apps' stays, and none shares its slot.
        let mut others = std::collections::BTreeSet::new();
        for i in 0..40 {
            let other = networks
                .resolve(&NetworkOf::Cluster(format!("c{i}")))
                .await
                .expect("net");
            assert_ne!(other.id, net.id);
            assert!(others.insert(other.id), "{other:?} twice");
        }
        // A VirtualMachineSet named like a cluster has a network of its own.
        let set = networks
            .resolve(&NetworkOf::VmSet("apps".into()))
            .await
            .expect("net");
        assert_ne!(set.id, net.id);
        let other_host = Networks::new(dir.path(), None).await;
        assert_eq!(other_host.resolve(&apps).await.expect("again"), net);
        assert!(matches!(
            networks.resolve(&NetworkOf::Cluster("../etc".into())).await,
            Err(AgentError::BadNetwork { .. })
        ));

        let mut seen = std::collections::BTreeSet::new();
        for i in 0..6 {
            let vm = VmName(format!("apps-w-{i}"));
            let a = networks.lease(&vm, &apps, &net).await.expect("lease");
            assert!(net.subnet.contains(a.addr()) && a.prefix() == 20);
            assert!(seen.insert(a), "{a} twice");
            assert_eq!(
                networks.lease(&vm, &apps, &net).await.expect("again"),
                a,
                "stable"
            );
            assert_eq!(
                other_host.leased(&vm, &apps, &net).await,
                Some(a),
                "seen by every host"
            );
        }
        let gone = VmName("apps-w-3".into());
        let freed = networks.leased(&gone, &apps, &net).await.expect("leased");
        networks.release(&gone, &apps).await;
        assert_eq!(networks.leased(&gone, &apps, &net).await, None);
        let claim = dir
            .path()
            .join("networks/cluster-apps/addresses")
            .join(freed.addr().to_string());
        assert!(!claim.exists(), "the address is free again");

        // Looking a network up, or releasing a VM of one, never gives it a slot.
        let unknown = NetworkOf::Cluster("never-made".into());
        assert_eq!(networks.lookup(&unknown).await.expect("reads"), None);
        networks.release(&VmName("x".into()), &unknown).await;
        assert_eq!(networks.lookup(&unknown).await.expect("reads"), None);
        assert!(!dir.path().join("networks/cluster-never-made").exists());
        assert_eq!(networks.lookup(&apps).await.expect("reads"), Some(net));
    }

    /// Every host's agent starts the VMs of a new cluster at once: they must all find the
    /// one slot the first claimed, and distinct addresses in it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hosts_racing_for_a_new_network_agree_on_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let of = NetworkOf::Cluster("race".into());
        let mut tasks = tokio::task::JoinSet::new();
        for host in 0..3 {
            let storage = dir.path().to_owned();
            let of = of.clone();
            tasks.spawn(async move {
                let networks = Networks::new(&storage, None).await;
                let mut out = Vec::new();
                for i in 0..4 {
                    let vm = VmName(format!("race-{host}-{i}"));
                    let net = networks.resolve(&of).await.expect("resolves");
                    let address = networks.lease(&vm, &of, &net).await.expect("leases");
                    out.push((net, address));
                }
                out
            });
        }
        let all: Vec<(Network, Ipv4Net)> = tasks.join_all().await.into_iter().flatten().collect();
        let nets: std::collections::BTreeSet<NetworkId> = all.iter().map(|(n, _)| n.id).collect();
        assert_eq!(nets.len(), 1, "one network: {all:?}");
        let addresses: std::collections::BTreeSet<Ipv4Net> = all.iter().map(|(_, a)| *a).collect();
        assert_eq!(addresses.len(), 12, "distinct addresses: {all:?}");
        assert!(all.iter().all(|(n, a)| n.subnet.contains(a.addr())));
    }

    #[tokio::test]
    async fn a_full_subnet_is_an_error_not_a_second_lease() {
        let dir = tempfile::tempdir().expect("tempdir");
        let networks = Networks::new(dir.path(), None).await;
        let of = NetworkOf::Cluster("tiny".into());
        let net = Network {
            id: NetworkId::new(4096).expect("id"),
            subnet: "10.64.0.0/30".parse().expect("subnet"),
        };
        for i in 0..2 {
            networks
                .lease(&VmName(format!("t-{i}")), &of, &net)
                .await
                .expect("room for two");
        }
        let full = networks.lease(&VmName("t-2".into()), &of, &net).await;
        assert!(
            matches!(&full, Err(AgentError::BadNetwork { detail, .. }) if detail.contains("no free address")),
            "{full:?}"
        );
    }
}
