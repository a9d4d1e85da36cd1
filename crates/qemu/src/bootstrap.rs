//! What each pool's new node VMs are given: size, Kubernetes version, the kubeadm join
//! configuration Plinth generates for them and their cluster's network, all from the
//! estate; and what the VirtualMachineSets' VMs are made of.

use std::collections::BTreeMap;

use plinth_control::upgrade::CONTROL_PLANE;
use plinth_model::Estate;
use std::net::Ipv4Addr;

use plinth_proto::guest::Bootstrap;
use plinth_proto::network::{Ipv4Net, NetworkId, NetworkSpec};
use plinth_proto::{VmName, VmSpec};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One pool's node VM template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolImage {
    /// The cluster.
    pub cluster: String,
    /// vCPUs of each VM.
    pub vcpus: u32,
    /// Memory of each VM, MiB.
    pub memory_mib: u32,
    /// The Kubernetes version its nodes run.
    pub kubernetes_version: String,
    /// Whether its nodes are control-plane members.
    pub control_plane: bool,
}

/// The node VM templates of an estate, by the `cluster/pool` key of the control plane's
/// `CreateVm` (`cluster/control-plane` for control-plane members), and the sizes of its
/// VirtualMachineSets' VMs, by set.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    pools: BTreeMap<(String, String), PoolImage>,
    /// Each VirtualMachineSet: (members, vCPUs, memory MiB).
    sets: BTreeMap<String, (u32, u32, u32)>,
    /// Each cluster's (and VirtualMachineSet's) network, by name.
    networks: BTreeMap<String, NetworkSpec>,
}

/// The address space of all node networks: on-link in every guest (see
/// [`NetworkSpec::on_link`]), cut into one subnet per cluster.
pub const NODE_SPACE: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(10, 64, 0, 0), 10) {
    Some(net) => net,
    None => unreachable!(),
};

/// The prefix of one cluster's subnet: a /20, 4,094 node addresses.
const CLUSTER_PREFIX: u8 = 20;

/// The first network id; a cluster's is this plus its subnet's slot.
const FIRST_NETWORK_ID: u32 = 4096;

/// One network per name: each takes the slot of [`NODE_SPACE`] its name hashes to, or the
/// next free one (names in order, so an estate always numbers its networks the same way, and
/// a cluster added later leaves the others' as they were unless it sorts before one that
/// moved off its own slot). Names past the space's 1,024 slots get none, and their VMs no NIC.
fn networks<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, NetworkSpec> {
    let slots = 1u32 << (CLUSTER_PREFIX - NODE_SPACE.prefix());
    let names: std::collections::BTreeSet<&str> = names.into_iter().collect();
    let mut taken = vec![false; slots as usize];
    let mut out = BTreeMap::new();
    for name in names {
        let digest = Sha256::digest(name.as_bytes());
        let start = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % slots;
        let Some(slot) = (0..slots)
            .map(|k| (start + k) % slots)
            .find(|&s| !taken[s as usize])
        else {
            tracing::warn!(%name, "no node network left: its VMs get no NIC");
            continue;
        };
        taken[slot as usize] = true;
        let base = u32::from(NODE_SPACE.addr()) + (slot << (32 - u32::from(CLUSTER_PREFIX)));
        let (Some(id), Some(subnet)) = (
            NetworkId::new(FIRST_NETWORK_ID + slot),
            Ipv4Net::new(Ipv4Addr::from(base), CLUSTER_PREFIX),
        ) else {
            continue;
        };
        out.insert(
            name.to_owned(),
            NetworkSpec {
                id,
                subnet,
                on_link: NODE_SPACE,
            },
        );
    }
    out
}

fn mib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX)
}

impl Pools {
    /// Every pool of every cluster of `estate`.
    pub fn of(estate: &Estate) -> Self {
        let mut pools = BTreeMap::new();
        for c in &estate.clusters {
            let version = c.spec.kubernetes_version.clone();
            let cp = &c.spec.control_plane;
            pools.insert(
                (c.name.clone(), CONTROL_PLANE.to_owned()),
                PoolImage {
                    cluster: c.name.clone(),
                    vcpus: cp.vcpu,
                    memory_mib: mib(cp.memory.0),
                    kubernetes_version: version.clone(),
                    control_plane: true,
                },
            );
            for p in &c.spec.node_pools {
                pools.insert(
                    (c.name.clone(), p.name.clone()),
                    PoolImage {
                        cluster: c.name.clone(),
                        vcpus: p.vcpu,
                        memory_mib: mib(p.memory.0),
                        kubernetes_version: version.clone(),
                        control_plane: false,
                    },
                );
            }
        }
        let sets = estate
            .vm_sets
            .iter()
            .map(|s| {
                let size = (s.spec.count, s.spec.vcpu, mib(s.spec.memory.0));
                (s.name.clone(), size)
            })
            .collect();
        let networks = networks(
            estate
                .clusters
                .iter()
                .map(|c| c.name.as_str())
                .chain(estate.vm_sets.iter().map(|s| s.name.as_str())),
        );
        Self {
            pools,
            sets,
            networks,
        }
    }

    /// The network of cluster (or VirtualMachineSet) `name`.
    pub fn network(&self, name: &str) -> Option<&NetworkSpec> {
        self.networks.get(name)
    }

    /// The template of `pool`, a `cluster/pool` key as the control plane sends it.
    pub fn get(&self, pool: &str) -> Option<&PoolImage> {
        let (cluster, name) = pool.split_once('/')?;
        self.pools.get(&(cluster.to_owned(), name.to_owned()))
    }

    /// Every VirtualMachineSet's VMs, as (VM, set), by set.
    pub fn set_members(&self) -> impl Iterator<Item = (String, &str)> {
        self.sets.iter().flat_map(|(set, &(count, _, _))| {
            (0..count).map(move |i| (format!("{set}-{i}"), set.as_str()))
        })
    }

    /// The agent's spec of `vm` when it is a VirtualMachineSet's member (`SET-i`, as the
    /// planning chain names them): the set's size; it joins no cluster, so its bootstrap
    /// names the set and carries no Kubernetes version or join configuration.
    pub fn set_member(&self, vm: &str) -> Option<VmSpec> {
        let (set, digits) = vm.rsplit_once('-')?;
        let index: u32 = digits.parse().ok()?;
        let &(count, vcpus, memory_mib) = self.sets.get(set)?;
        (index < count && index.to_string() == digits).then(|| VmSpec {
            name: VmName(vm.to_owned()),
            vcpus,
            memory_mib,
            bootstrap: Bootstrap {
                node: vm.to_owned(),
                cluster: set.to_owned(),
                kubernetes_version: String::new(),
                join_config: String::new(),
            },
            network: self.networks.get(set).copied(),
        })
    }

    /// The agent's spec of VM `vm` of `pool`, or `None` for an unknown pool.
    pub fn spec(&self, vm: &str, pool: &str, secret: &[u8]) -> Option<VmSpec> {
        let image = self.get(pool)?;
        Some(VmSpec {
            name: VmName(vm.to_owned()),
            vcpus: image.vcpus,
            memory_mib: image.memory_mib,
            bootstrap: Bootstrap {
                node: vm.to_owned(),
                cluster: image.cluster.clone(),
                kubernetes_version: image.kubernetes_version.clone(),
                join_config: join_config(image, vm, secret),
            },
            network: self.networks.get(&image.cluster).copied(),
        })
    }
}

/// kubeadm's `JoinConfiguration` (v1beta4), the fields Plinth sets.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinConfiguration<'a> {
    api_version: &'static str,
    kind: &'static str,
    node_registration: NodeRegistration<'a>,
    discovery: Discovery,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane: Option<JoinControlPlane>,
}

#[derive(Serialize)]
struct NodeRegistration<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Discovery {
    bootstrap_token: BootstrapToken,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapToken {
    api_server_endpoint: String,
    token: String,
    unsafe_skip_ca_verification: bool,
}

#[derive(Serialize)]
struct JoinControlPlane {}

/// The kubeadm join configuration of node `node` of `image`'s pool, as JSON (which is YAML,
/// so kubeadm reads it). The bootstrap token is derived from `secret` and the cluster, in
/// kubeadm's `[a-z0-9]{6}.[a-z0-9]{16}` form: the same for every node of a cluster.
pub fn join_config(image: &PoolImage, node: &str, secret: &[u8]) -> String {
    let config = JoinConfiguration {
        api_version: "kubeadm.k8s.io/v1beta4",
        kind: "JoinConfiguration",
        node_registration: NodeRegistration { name: node },
        discovery: Discovery {
            bootstrap_token: BootstrapToken {
                api_server_endpoint: format!("{}-api:6443", image.cluster),
                token: bootstrap_token(secret, &image.cluster),
                // No kube-apiserver runs here to pin a CA of (docs/run.md, "What Ready means").
                unsafe_skip_ca_verification: true,
            },
        },
        control_plane: image.control_plane.then_some(JoinControlPlane {}),
    };
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

fn bootstrap_token(secret: &[u8], cluster: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::new()
        .chain_update(secret)
        .chain_update(b"/")
        .chain_update(cluster.as_bytes())
        .finalize();
    let chars: String = digest
        .iter()
        .take(22)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("{}.{}", &chars[..6], &chars[6..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(control_plane: bool) -> PoolImage {
        PoolImage {
            cluster: "apps".into(),
            vcpus: 1,
            memory_mib: 192,
            kubernetes_version: "1.31.4".into(),
            control_plane,
        }
    }

    #[test]
    fn a_virtual_machine_sets_members_are_made_from_its_size() {
        let mut pools = Pools::default();
        pools.sets.insert("legacy-apps".into(), (2, 4, 16_384));
        let spec = pools.set_member("legacy-apps-1").expect("a member");
        assert_eq!((spec.vcpus, spec.memory_mib), (4, 16_384));
        assert_eq!(spec.bootstrap.cluster, "legacy-apps");
        for other in [
            "legacy-apps-2",
            "legacy-apps-01",
            "legacy-apps-",
            "legacy-1",
            "apps-workers-0",
        ] {
            assert_eq!(pools.set_member(other), None, "{other}");
        }
        let members: Vec<(String, &str)> = pools.set_members().collect();
        assert_eq!(
            members,
            [
                ("legacy-apps-0".to_owned(), "legacy-apps"),
                ("legacy-apps-1".to_owned(), "legacy-apps")
            ]
        );
    }

    #[test]
    fn every_cluster_gets_its_own_network_the_same_way_every_time() {
        let names = ["apps", "ci", "legacy-apps", "shop"];
        let nets = networks(names);
        assert_eq!(nets, networks(names.iter().rev().copied()), "order-free");
        let mut ids: Vec<u32> = nets.values().map(|n| n.id.get()).collect();
        ids.dedup();
        assert_eq!(ids.len(), names.len());
        for n in nets.values() {
            assert_eq!(n.subnet.prefix(), CLUSTER_PREFIX);
            assert_eq!(n.subnet.network(), n.subnet);
            assert!(NODE_SPACE.contains(n.subnet.addr()));
            assert!(
                nets.values()
                    .all(|o| o.id == n.id || !o.subnet.contains(n.subnet.addr()))
            );
        }
        // Every slot taken once, then no more.
        let many: Vec<String> = (0..1100).map(|i| format!("c{i}")).collect();
        let nets = networks(many.iter().map(String::as_str));
        assert_eq!(nets.len(), 1024);
        let subnets: std::collections::BTreeSet<Ipv4Net> =
            nets.values().map(|n| n.subnet).collect();
        assert_eq!(subnets.len(), 1024);
    }

    #[test]
    fn the_join_configuration_is_kubeadm_shaped_and_names_the_node() {
        let worker: serde_json::Value =
            serde_json::from_str(&join_config(&image(false), "apps-workers-0", b"s"))
                .expect("JSON");
        assert_eq!(worker["kind"], "JoinConfiguration");
        assert_eq!(worker["nodeRegistration"]["name"], "apps-workers-0");
        assert!(worker.get("controlPlane").is_none());
        let token = worker["discovery"]["bootstrapToken"]["token"]
            .as_str()
            .expect("token");
        let (id, secret) = token.split_once('.').expect("id.secret");
        assert_eq!((id.len(), secret.len()), (6, 16));
        assert!(
            token
                .bytes()
                .all(|b| b == b'.' || b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let member: serde_json::Value =
            serde_json::from_str(&join_config(&image(true), "apps-cp-0", b"s")).expect("JSON");
        assert!(member.get("controlPlane").is_some());
        assert_eq!(
            member["discovery"]["bootstrapToken"]["token"], token,
            "one token per cluster"
        );
    }
}
