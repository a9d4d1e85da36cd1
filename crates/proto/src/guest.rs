//! The contract between a host agent and the guest agent inside a node VM: the cloud-init
//! NoCloud seed the host writes, and the JSON lines both exchange over virtio-serial.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::network::{Ipv4Net, Reach};

/// The node OS image a VM boots when nothing names another: the first of the images
/// `plinth image build` makes, which VirtualMachineSets' VMs and `plinth calibrate` boot.
pub const DEFAULT_IMAGE: &str = "plinth-node";

/// The virtio-serial port name the guest agent talks on.
pub const PORT_NAME: &str = "org.plinth.guest";

/// The volume label of a NoCloud seed (cloud-init looks for it).
pub const SEED_LABEL: &str = "CIDATA";

/// The first line of a cloud-config user-data document.
pub const CLOUD_CONFIG_HEADER: &str = "#cloud-config\n";

/// What a node VM is told at first boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bootstrap {
    /// The Kubernetes node name (also the VM's hostname).
    pub node: String,
    /// The cluster the node joins.
    pub cluster: String,
    /// The Kubernetes version it runs.
    pub kubernetes_version: String,
    /// The kubeadm join configuration Plinth generated (YAML).
    pub join_config: String,
}

/// One file cloud-init writes (`write_files`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    /// Absolute path in the guest.
    pub path: String,
    /// Its content.
    pub content: String,
}

/// The `plinth` key of the user-data: the node's identity, for the guest agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeIdentity {
    /// The node name.
    pub node: String,
    /// The cluster.
    pub cluster: String,
    /// The Kubernetes version.
    pub kubernetes_version: String,
}

/// The user-data: a cloud-config document whose body is JSON (JSON is YAML, so cloud-init
/// reads it too). Keys are cloud-init's own, plus `plinth`, which cloud-init ignores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserData {
    /// The node name as hostname.
    pub hostname: String,
    /// Files to write before the commands run.
    pub write_files: Vec<WriteFile>,
    /// Shell commands run in order; the first failure stops the bootstrap.
    pub runcmd: Vec<String>,
    /// The node's identity.
    pub plinth: NodeIdentity,
}

/// The NoCloud `network-config`: netplan's version 2 shape, the subset Plinth writes (one
/// NIC matched by its MAC, its address, on-link routes). JSON, which is YAML, so cloud-init
/// reads it too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Always 2.
    pub version: u8,
    /// The NICs by the name they get.
    pub ethernets: BTreeMap<String, Ethernet>,
}

/// One NIC of a [`NetworkConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ethernet {
    /// Which NIC: the one with this MAC.
    #[serde(rename = "match")]
    pub matches: MacMatch,
    /// The name it is given.
    #[serde(rename = "set-name")]
    pub set_name: String,
    /// Its MTU: the overlay's (the underlay's less VXLAN's 50 bytes), so full-size frames
    /// fit the segment rather than being dropped on it.
    pub mtu: u32,
    /// Its addresses with their prefixes.
    pub addresses: Vec<Ipv4Net>,
    /// Routes through it.
    pub routes: Vec<Route>,
}

/// A NIC picked by MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacMatch {
    /// `02:00:…`, lower case.
    pub macaddress: String,
}

/// A route: `to` is reached directly on the NIC's link (`scope: link`, no gateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The destination.
    pub to: Ipv4Net,
    /// Always `link`.
    pub scope: String,
}

/// The name a node VM's NIC gets.
pub const NIC_NAME: &str = "eth0";

impl NetworkConfig {
    /// One NIC with MAC `mac`, address `address` and MTU `mtu`, and the pool's whole node
    /// address space `on_link` reached on its link.
    #[must_use]
    pub fn for_nic(mac: &str, address: Ipv4Net, on_link: Ipv4Net, mtu: u32) -> Self {
        let nic = Ethernet {
            matches: MacMatch {
                macaddress: mac.to_owned(),
            },
            set_name: NIC_NAME.to_owned(),
            mtu,
            addresses: vec![address],
            routes: vec![Route {
                to: on_link,
                scope: "link".to_owned(),
            }],
        };
        Self {
            version: 2,
            ethernets: BTreeMap::from([(NIC_NAME.to_owned(), nic)]),
        }
    }
}

/// The TCP port a guest agent answers on, at its node's address, with its node name (one
/// line): what a reachability check ([`ToGuest::Reach`]) connects to.
pub const ANSWER_PORT: u16 = 7702;

/// Where the kubeadm join configuration is written in the guest.
pub const JOIN_CONFIG_PATH: &str = "/etc/kubernetes/kubeadm-join.yaml";

impl UserData {
    /// The user-data Plinth writes for a node: the join configuration as a file, and a
    /// bootstrap command that checks it arrived (no kubelet can run here: `kubeadm join`
    /// would be the next command on a real node image).
    #[must_use]
    pub fn for_node(bootstrap: &Bootstrap) -> Self {
        Self {
            hostname: bootstrap.node.clone(),
            write_files: vec![WriteFile {
                path: JOIN_CONFIG_PATH.to_owned(),
                content: bootstrap.join_config.clone(),
            }],
            runcmd: vec![
                format!("test -s {JOIN_CONFIG_PATH}"),
                "hostname \"$(cat /etc/hostname)\"".to_owned(),
            ],
            plinth: NodeIdentity {
                node: bootstrap.node.clone(),
                cluster: bootstrap.cluster.clone(),
                kubernetes_version: bootstrap.kubernetes_version.clone(),
            },
        }
    }

    /// The document's bytes: the cloud-config header, then JSON.
    ///
    /// # Errors
    /// Never in practice (every field serializes); typed for the caller's `?`.
    pub fn to_document(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = CLOUD_CONFIG_HEADER.as_bytes().to_vec();
        serde_json::to_writer_pretty(&mut out, self)?;
        out.push(b'\n');
        Ok(out)
    }

    /// Parses a document written by [`UserData::to_document`].
    ///
    /// # Errors
    /// When the header is missing or the body is not this shape.
    pub fn from_document(bytes: &[u8]) -> Result<Self, UserDataError> {
        let body = bytes
            .strip_prefix(CLOUD_CONFIG_HEADER.as_bytes())
            .ok_or(UserDataError::NoHeader)?;
        serde_json::from_slice(body).map_err(UserDataError::Body)
    }
}

/// Why a user-data document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    /// It does not start with `#cloud-config`.
    #[error("user-data does not start with #cloud-config")]
    NoHeader,
    /// Its body is not Plinth's cloud-config.
    #[error("user-data body")]
    Body(#[source] serde_json::Error),
}

/// The NoCloud meta-data: the instance id and hostname, as cloud-init reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaData {
    /// The VM's name.
    pub instance_id: String,
    /// The node name.
    pub local_hostname: String,
}

impl MetaData {
    /// The YAML text (two `key: value` lines; values are quoted JSON strings, valid YAML).
    ///
    /// # Errors
    /// Never in practice; typed for the caller's `?`.
    pub fn to_document(&self) -> Result<String, serde_json::Error> {
        Ok(format!(
            "instance-id: {}\nlocal-hostname: {}\n",
            serde_json::to_string(&self.instance_id)?,
            serde_json::to_string(&self.local_hostname)?
        ))
    }

    /// Reads the two keys back from a document written by [`MetaData::to_document`].
    #[must_use]
    pub fn from_document(text: &str) -> Option<Self> {
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
                .and_then(|v| serde_json::from_str::<String>(v).ok())
        };
        Some(Self {
            instance_id: value("instance-id")?,
            local_hostname: value("local-hostname")?,
        })
    }
}

/// The file name of the NoCloud network configuration in the seed.
pub const NETWORK_CONFIG: &str = "network-config";

/// The SHA-256 of a payload, hex.
#[must_use]
pub fn checksum(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// From the host agent to the guest agent (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ToGuest {
    /// Answer with your status.
    Probe {
        /// Echoed.
        seq: u64,
    },
    /// Connect to [`ANSWER_PORT`] at `address` and answer with [`FromGuest::Reached`].
    Reach {
        /// Echoed.
        seq: u64,
        /// Where to connect.
        address: Ipv4Addr,
    },
    /// Run an overhead kernel and answer with [`FromGuest::Benched`].
    Bench {
        /// Echoed.
        seq: u64,
        /// Which.
        kernel: BenchKernel,
    },
}

/// An overhead kernel of `plinth calibrate`, run in a guest and on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BenchKernel {
    /// SHA-256 over a buffer that stays in cache.
    Cpu,
    /// Copies between buffers larger than any cache.
    Memory,
}

impl BenchKernel {
    /// Both, in order.
    pub const ALL: [Self; 2] = [Self::Cpu, Self::Memory];

    /// Its name on the command line (`plinth-guest bench cpu`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
        }
    }
}

/// From the guest agent to the host agent (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum FromGuest {
    /// The guest's status: sent once the bootstrap ran, and in answer to every probe.
    Status {
        /// The probe answered, or none when unsolicited.
        seq: Option<u64>,
        /// The status.
        status: GuestStatus,
    },
    /// The answer to a [`ToGuest::Bench`].
    Benched {
        /// The run's `seq`.
        seq: u64,
        /// The kernel's `kernel`.
        kernel: BenchKernel,
        /// MiB per second it got through.
        mib_per_second: f64,
    },
    /// The answer to a [`ToGuest::Reach`].
    Reached {
        /// The check's `seq`.
        seq: u64,
        /// The check's `address`: an answer is taken only for the check it names.
        address: Ipv4Addr,
        /// What answered, or why nothing did.
        reach: Reach,
    },
}

/// What the guest agent knows about its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestStatus {
    /// The node name from the seed's meta-data.
    pub node: String,
    /// The cluster from the user-data.
    pub cluster: String,
    /// SHA-256 of the user-data as the guest read it.
    pub payload_sha256: String,
    /// The bootstrap's result: exit status of the first failing command, 0 when all ran.
    pub payload_exit: i32,
    /// The node OS booted, its bootstrap data arrived and ran with exit 0, and the agent is
    /// live. No kubelet runs here: this is Plinth's "Ready" of a node VM.
    pub ready: bool,
    /// Why the NIC could not be brought up, if it could not (then the node is not ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_error: Option<String>,
    /// The node OS as it says itself: `/etc/os-release`'s `PRETTY_NAME`.
    pub os: String,
    /// The running kernel's release (`uname -r`).
    pub kernel: String,
}
