//! What each pool's new node VMs are given: size, node OS image, Kubernetes version, the
//! kubeadm join configuration Plinth generates for them and their cluster's network, all
//! from the estate; and what the VirtualMachineSets' VMs are made of.

use std::collections::BTreeMap;

use plinth_control::PoolName;
use plinth_control::upgrade::CONTROL_PLANE;
use plinth_model::Estate;
use plinth_proto::guest::{Bootstrap, DEFAULT_IMAGE};
use plinth_proto::network::NetworkOf;
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
    /// The node OS image its nodes boot (the Cluster's `osImage`).
    pub os_image: String,
    /// Whether its nodes are control-plane members.
    pub control_plane: bool,
}

/// The node VM templates of an estate, by the pool of the control plane's `CreateVm` (its
/// control plane's for control-plane members), and the sizes of its
/// VirtualMachineSets' VMs, by set.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    pools: BTreeMap<PoolName, PoolImage>,
    /// Each VirtualMachineSet: (members, vCPUs, memory MiB).
    sets: BTreeMap<String, (u32, u32, u32)>,
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
                PoolName::new(&c.name, CONTROL_PLANE),
                PoolImage {
                    cluster: c.name.clone(),
                    vcpus: cp.vcpu,
                    memory_mib: mib(cp.memory.0),
                    kubernetes_version: version.clone(),
                    os_image: c.spec.os_image.clone(),
                    control_plane: true,
                },
            );
            for p in &c.spec.node_pools {
                pools.insert(
                    PoolName::new(&c.name, &p.name),
                    PoolImage {
                        cluster: c.name.clone(),
                        vcpus: p.vcpu,
                        memory_mib: mib(p.memory.0),
                        kubernetes_version: version.clone(),
                        os_image: c.spec.os_image.clone(),
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
        Self { pools, sets }
    }

    /// The template of `pool`.
    pub fn get(&self, pool: &PoolName) -> Option<&PoolImage> {
        self.pools.get(pool)
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
            // A set names no image: its VMs boot the default one.
            image: DEFAULT_IMAGE.to_owned(),
            network: Some(NetworkOf::VmSet(set.to_owned())),
        })
    }

    /// The agent's spec of VM `vm` of `pool`, or `None` for an unknown pool.
    pub fn spec(&self, vm: &str, pool: &PoolName, secret: &[u8]) -> Option<VmSpec> {
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
            image: image.os_image.clone(),
            network: Some(NetworkOf::Cluster(image.cluster.clone())),
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
            os_image: "plinth-node".into(),
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
