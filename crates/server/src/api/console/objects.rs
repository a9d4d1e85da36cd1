//! What the views are drawn from: the stored objects read once, the reported ones decoded
//! into typed values, the desired ones assembled into the estate.

use plinth_model::Estate;
use serde::Deserialize;
use serde_json::Value;

use crate::ObjectsError;
use crate::kinds::{ObjectKey, Resource, Writer};
use crate::manifests::assemble;
use crate::objects::{Filter, Txn, desired};

/// An object's name.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Meta {
    /// The name.
    pub(crate) name: String,
}

/// A VM as the control plane reports it: a node VM or a VirtualMachineSet's.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Vm {
    /// Its name.
    pub(crate) metadata: Meta,
    /// What it belongs to.
    pub(crate) spec: Owner,
    /// Its phase and host.
    #[serde(default)]
    pub(crate) status: VmStatus,
}

/// What a VM belongs to: a pool of a cluster, or a VirtualMachineSet.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum Owner {
    /// A node VM.
    Pool {
        /// The cluster.
        cluster: String,
        /// The pool (`control-plane` or a node pool).
        pool: String,
    },
    /// A VM of the estate that is no Kubernetes node.
    Set {
        /// The VirtualMachineSet.
        #[serde(rename = "virtualMachineSet")]
        set: String,
    },
}

impl Owner {
    /// Whether this is pool `pool` of cluster `cluster`.
    pub(crate) fn is_pool(&self, cluster: &str, pool: &str) -> bool {
        matches!(self, Self::Pool { cluster: c, pool: p } if c == cluster && p == pool)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pool { cluster, pool } => write!(f, "{cluster}/{pool}"),
            Self::Set { set } => write!(f, "VirtualMachineSet {set}"),
        }
    }
}

/// Where a VM runs.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct VmStatus {
    /// `Pending`, `Starting`, `Running`, `Migrating`, `Unknown` or `Down`.
    #[serde(default)]
    pub(crate) phase: String,
    /// Its host, once placed.
    #[serde(default)]
    pub(crate) host: Option<String>,
}

/// A host as the control plane reports it.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Host {
    /// Its name.
    pub(crate) metadata: Meta,
    /// Its state.
    #[serde(default)]
    pub(crate) status: HostStatus,
}

/// A host's state.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct HostStatus {
    /// `up`, `maintenance`, `silent`, `fencing` or `failed`.
    #[serde(default)]
    pub(crate) state: Option<String>,
}

/// A condition of an object's status.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Condition {
    /// `Accepted`, `Ready`, `Progressing`, …
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// `True` or `False`.
    pub(crate) status: String,
    /// The short reason.
    #[serde(default)]
    pub(crate) reason: String,
    /// The details.
    #[serde(default)]
    pub(crate) message: String,
}

/// A Cluster's status.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClusterStatus {
    /// Its conditions.
    #[serde(default)]
    pub(crate) conditions: Vec<Condition>,
    /// Node VMs it should run.
    #[serde(default)]
    pub(crate) nodes: Option<u64>,
    /// Node VMs running.
    #[serde(default)]
    pub(crate) ready_nodes: Option<u64>,
}

/// A stored object's status: its conditions.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Conditions {
    /// Its conditions.
    #[serde(default)]
    pub(crate) conditions: Vec<Condition>,
}

/// A stored Inventory: its status (`HeadroomMet`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Inventory {
    /// Its status.
    #[serde(default)]
    pub(crate) status: Conditions,
}

/// A stored Cluster: its status (its spec is the estate's).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Cluster {
    /// Its name.
    pub(crate) metadata: Meta,
    /// Its status.
    #[serde(default)]
    pub(crate) status: ClusterStatus,
}

/// The object an event is about.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Involved {
    /// Its kind.
    #[serde(default)]
    pub(crate) kind: String,
    /// Its name.
    #[serde(default)]
    pub(crate) name: String,
}

/// An event.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    /// What it is about.
    #[serde(default)]
    pub(crate) involved_object: Involved,
    /// The short reason.
    #[serde(default)]
    pub(crate) reason: String,
    /// The details.
    #[serde(default)]
    pub(crate) message: String,
    /// `Normal` or `Warning`.
    #[serde(default, rename = "type")]
    pub(crate) severity: String,
    /// When, RFC 3339.
    #[serde(default)]
    pub(crate) event_time: String,
}

/// The objects the views show, read at one revision.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The estate the applied objects form, when they form a valid one.
    pub(crate) estate: Option<Estate>,
    /// Inventories, with their status.
    pub(crate) inventories: Vec<Inventory>,
    /// Clusters, with their status.
    pub(crate) clusters: Vec<Cluster>,
    /// Reported hosts.
    pub(crate) hosts: Vec<Host>,
    /// Reported node VMs.
    pub(crate) vms: Vec<Vm>,
    /// Events, oldest first.
    pub(crate) events: Vec<Event>,
}

/// The objects of `resource` among `all`, those that decode.
fn typed<T: for<'de> Deserialize<'de>>(all: &[(ObjectKey, Value)], resource: Resource) -> Vec<T> {
    all.iter()
        .filter(|(k, _)| k.resource == resource)
        .filter_map(|(_, v)| T::deserialize(v).ok())
        .collect()
}

impl Snapshot {
    /// Reads every object of `objects` once.
    ///
    /// # Errors
    /// A store error.
    pub(crate) fn read(objects: &mut Txn<'_>) -> Result<Self, ObjectsError> {
        let (all, _) = objects.list(&Filter::default())?;
        Ok(Self::of(&all))
    }

    /// The snapshot of `all` (every stored object, as the store lists them).
    pub(crate) fn of(all: &[(ObjectKey, Value)]) -> Self {
        let applied: Vec<(ObjectKey, Value)> = all
            .iter()
            .filter(|(k, _)| k.resource.info().writer == Writer::User)
            .map(|(k, v)| (k.clone(), desired(v)))
            .collect();
        let (estate, _) = assemble(&applied);
        Self {
            estate,
            inventories: typed(all, Resource::Inventory),
            clusters: typed(all, Resource::Cluster),
            hosts: typed(all, Resource::Host),
            vms: typed(all, Resource::VirtualMachine),
            events: typed(all, Resource::Event),
        }
    }

    /// The reported state of host `name`: `unknown` while the control plane reports no
    /// host, `outside` for a host of the Inventory its design does not use.
    pub(crate) fn host_state(&self, name: &str) -> &str {
        if self.hosts.is_empty() {
            return "unknown";
        }
        self.hosts
            .iter()
            .find(|h| h.metadata.name == name)
            .map_or("outside", |h| {
                h.status.state.as_deref().unwrap_or("unknown")
            })
    }
}

/// `bytes` in GiB, as a person reads it (`32 GiB`, `1.5 GiB`).
pub(crate) fn gib(bytes: u64) -> String {
    let g = bytes as f64 / f64::from(1u32 << 30);
    if g.fract() == 0.0 {
        format!("{g:.0} GiB")
    } else {
        format!("{g:.1} GiB")
    }
}
