//! Per-cluster node networks on one host (a VMware port group on an NSX segment, in
//! miniature): a bridge per cluster network, joined to the same network on every other host
//! by a VXLAN device with the network's id, and one TAP per VM (QEMU opens it) on its
//! network's bridge. Nothing routes between bridges, so a VM reaches only its own cluster's
//! VMs, on this host or any other.
//!
//! VXLAN floods to a multicast group per network id over the underlay (the interface the
//! agent listens on), so no host needs a list of its peers. With no underlay (an agent on
//! loopback) a network is its bridge alone: it spans this host only.
//!
//! Addresses are leased on the storage every host sees, so a VM keeps its address when it
//! restarts or moves: `networks/ID/vms/VM` holds a VM's address, and
//! `networks/ID/addresses/ADDRESS` (made with `O_EXCL`, so two hosts cannot take one
//! address) names its VM.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use plinth_proto::VmName;
use plinth_proto::network::{Ipv4Net, NetworkId, NetworkSpec};
use sha2::{Digest, Sha256};

use crate::error::AgentError;
use crate::tool::run;

/// The UDP port of VXLAN (IANA).
const VXLAN_PORT: &str = "4789";

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
    pub(crate) fn new(network: NetworkId, address: Ipv4Net) -> Self {
        Self {
            tap: format!("pltap{:08x}", u32::from(address.addr())),
            bridge: bridge_name(network),
            address,
        }
    }
}

fn bridge_name(network: NetworkId) -> String {
    format!("plbr{network}")
}

fn vxlan_name(network: NetworkId) -> String {
    format!("plvx{network}")
}

/// The multicast group network `id`'s VXLAN floods to: `239.` and the id's three bytes
/// (administratively scoped, one group per network, so a host hears only its networks).
fn group(id: NetworkId) -> Ipv4Addr {
    let [_, a, b, c] = id.get().to_be_bytes();
    Ipv4Addr::new(239, a, b, c)
}

/// The networks of this host.
#[derive(Debug)]
pub(crate) struct Networks {
    storage: PathBuf,
    underlay: Option<String>,
    building: tokio::sync::Mutex<()>,
}

impl Networks {
    /// Networks leased on `storage` and joined across hosts over `underlay` (none: on this
    /// host only).
    pub(crate) fn new(storage: &Path, underlay: Option<String>) -> Self {
        Self {
            storage: storage.join("networks"),
            underlay,
            building: tokio::sync::Mutex::new(()),
        }
    }

    fn dir(&self, network: NetworkId) -> PathBuf {
        self.storage.join(network.to_string())
    }

    fn vm_lease(&self, network: NetworkId, vm: &VmName) -> PathBuf {
        self.dir(network).join("vms").join(&vm.0)
    }

    fn address_claim(&self, network: NetworkId, address: Ipv4Addr) -> PathBuf {
        self.dir(network)
            .join("addresses")
            .join(address.to_string())
    }

    /// The address `vm` holds on `net`, if it has leased one.
    pub(crate) async fn leased(&self, vm: &VmName, net: &NetworkSpec) -> Option<Ipv4Net> {
        let text = tokio::fs::read_to_string(self.vm_lease(net.id, vm))
            .await
            .ok()?;
        text.trim()
            .parse::<Ipv4Net>()
            .ok()
            .filter(|a| a.network() == net.subnet.network())
    }

    /// The address `vm` holds on `net`, leased now if it has none: the first free one from
    /// a start the VM's name picks, so that VMs made in any order spread over the subnet.
    pub(crate) async fn lease(
        &self,
        vm: &VmName,
        net: &NetworkSpec,
    ) -> Result<Ipv4Net, AgentError> {
        if let Some(address) = self.leased(vm, net).await {
            return Ok(address);
        }
        let count = net.subnet.host_count();
        let no_room = || AgentError::Network {
            network: net.id,
            detail: format!("no free address in {} for {vm}", net.subnet),
        };
        if count == 0 {
            return Err(no_room());
        }
        let dir = self.dir(net.id);
        for sub in ["vms", "addresses"] {
            let path = dir.join(sub);
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(AgentError::file(&path))?;
        }
        let digest = Sha256::digest(vm.0.as_bytes());
        let start = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % count;
        for k in 0..count {
            let Some(address) = net.subnet.host((start + k) % count) else {
                continue;
            };
            let claim = self.address_claim(net.id, address.addr());
            let taken = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&claim)
                .await;
            let ours = match taken {
                Ok(_) => {
                    tokio::fs::write(&claim, &vm.0)
                        .await
                        .map_err(AgentError::file(&claim))?;
                    true
                }
                // Claimed by this VM before its lease was written (an agent that stopped
                // in between): it is still ours.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    tokio::fs::read_to_string(&claim)
                        .await
                        .is_ok_and(|o| o == vm.0)
                }
                Err(e) => return Err(AgentError::file(&claim)(e)),
            };
            if ours {
                let lease = self.vm_lease(net.id, vm);
                let staged = lease.with_extension("new");
                tokio::fs::write(&staged, address.to_string())
                    .await
                    .map_err(AgentError::file(&staged))?;
                tokio::fs::rename(&staged, &lease)
                    .await
                    .map_err(AgentError::file(&lease))?;
                tracing::info!(vm = %vm, network = %net.id, %address, "address leased");
                return Ok(address);
            }
        }
        Err(no_room())
    }

    /// Gives `vm`'s address on `net` back (a deleted VM).
    pub(crate) async fn release(&self, vm: &VmName, net: &NetworkSpec) {
        if let Some(address) = self.leased(vm, net).await {
            let claim = self.address_claim(net.id, address.addr());
            if tokio::fs::read_to_string(&claim)
                .await
                .is_ok_and(|o| o == vm.0)
            {
                let _ = tokio::fs::remove_file(&claim).await;
            }
        }
        let _ = tokio::fs::remove_file(self.vm_lease(net.id, vm)).await;
    }

    /// Makes network `id`'s bridge on this host, and its VXLAN device on the underlay, if
    /// they are not there yet.
    pub(crate) async fn build(&self, id: NetworkId) -> Result<(), AgentError> {
        let _one_at_a_time = self.building.lock().await;
        let bridge = bridge_name(id);
        if !exists(&bridge).await {
            ip(&["link", "add", &bridge, "type", "bridge"]).await?;
            ip(&["link", "set", &bridge, "up"]).await?;
        }
        let Some(underlay) = &self.underlay else {
            return Ok(());
        };
        let vxlan = vxlan_name(id);
        if !exists(&vxlan).await {
            let (vni, group) = (id.to_string(), group(id).to_string());
            ip(&[
                "link", "add", &vxlan, "type", "vxlan", "id", &vni, "group", &group, "dev",
                underlay, "dstport", VXLAN_PORT,
            ])
            .await?;
            ip(&["link", "set", &vxlan, "master", &bridge, "up"]).await?;
            tracing::info!(network = %id, %bridge, %vxlan, %group, %underlay, "network joined");
        }
        Ok(())
    }

    /// Puts a TAP QEMU opened on its network's bridge.
    pub(crate) async fn plug(&self, nic: &Nic) -> Result<(), AgentError> {
        ip(&["link", "set", &nic.tap, "master", &nic.bridge, "up"]).await
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
    fn names_fit_linux_interface_names() {
        let id = NetworkId::new(NetworkId::MAX).expect("id");
        let nic = Nic::new(id, "255.255.255.254/8".parse().expect("address"));
        for name in [&nic.tap, &nic.bridge, &vxlan_name(id)] {
            assert!(name.len() <= 15, "{name}");
        }
        assert_eq!(
            group(NetworkId::new(0x01_02_03).expect("id")),
            Ipv4Addr::new(239, 1, 2, 3)
        );
    }

    #[tokio::test]
    async fn leases_are_kept_unique_and_given_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let networks = Networks::new(dir.path(), None);
        let net = NetworkSpec {
            id: NetworkId::new(4096).expect("id"),
            subnet: "10.64.16.0/29".parse().expect("subnet"),
            on_link: "10.64.0.0/10".parse().expect("space"),
        };
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..6 {
            let vm = VmName(format!("apps-w-{i}"));
            let a = networks.lease(&vm, &net).await.expect("lease");
            assert!(net.subnet.contains(a.addr()) && a.prefix() == 29);
            assert!(seen.insert(a), "{a} twice");
            assert_eq!(networks.lease(&vm, &net).await.expect("again"), a, "stable");
        }
        let full = networks.lease(&VmName("apps-w-6".into()), &net).await;
        assert!(
            matches!(&full, Err(AgentError::Network { detail, .. }) if detail.contains("no free address")),
            "{full:?}"
        );
        networks.release(&VmName("apps-w-3".into()), &net).await;
        let reused = networks
            .lease(&VmName("apps-w-6".into()), &net)
            .await
            .expect("freed");
        assert!(seen.contains(&reused));
        // Another host's agent, on the same storage, sees the same leases.
        let other = Networks::new(dir.path(), None);
        assert_eq!(
            other.leased(&VmName("apps-w-6".into()), &net).await,
            Some(reused)
        );
    }
}
