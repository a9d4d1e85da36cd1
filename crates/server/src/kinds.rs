//! The resources the API serves: each kind `plinth validate` reads, and what the service
//! reports (VMs, hosts, events), with their group, version, plural and scope — the one
//! table URL paths, stored keys and the CLI's `get KIND` are read from.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Plinth's API group and version.
pub const PLINTH_GROUP_VERSION: &str = "plinth.dev/v1alpha1";

/// A resource of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Resource {
    /// The hosts and racks.
    Inventory,
    /// Timings, overheads, HA settings.
    Environment,
    /// A Kubernetes cluster and its node pools.
    Cluster,
    /// Plain VMs sharing the pool.
    VirtualMachineSet,
    /// What happens over time.
    Scenario,
    /// Prices.
    PriceSheet,
    /// Measured timings.
    Calibration,
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
    /// `batch/v1` Job.
    Job,
    /// `v1` Pod.
    Pod,
    /// `policy/v1` PodDisruptionBudget.
    PodDisruptionBudget,
    /// A node VM, reported by the control plane.
    VirtualMachine,
    /// A host of the pool as the control plane sees it, reported.
    Host,
    /// Something that happened to an object, reported.
    Event,
}

/// Who writes a resource's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Users, through `apply`, `PUT` and `DELETE`: desired state.
    User,
    /// The control plane: observed state, read-only through the API.
    ControlPlane,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    /// The resource.
    pub resource: Resource,
    /// `kind:` of its objects.
    pub kind: &'static str,
    /// API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// The path segment of its collection.
    pub plural: &'static str,
    /// Other names `plinth get` accepts.
    pub short: &'static [&'static str],
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Who writes it.
    pub writer: Writer,
}

impl Info {
    /// `apiVersion:` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The path prefix of its group and version: `/apis/GROUP/VERSION` or `/api/v1`.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The path of a collection (`namespace` only for a namespaced resource; `None` lists
    /// every namespace) or, with `name`, of one object.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut path = self.prefix();
        if let (true, Some(ns)) = (self.namespaced, namespace) {
            path.push_str("/namespaces/");
            path.push_str(ns);
        }
        path.push('/');
        path.push_str(self.plural);
        if let Some(name) = name {
            path.push('/');
            path.push_str(name);
        }
        path
    }
}

const fn plinth(
    resource: Resource,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    writer: Writer,
) -> Info {
    Info {
        resource,
        kind,
        group: "plinth.dev",
        version: "v1alpha1",
        plural,
        short,
        namespaced: false,
        writer,
    }
}

const fn workload(
    resource: Resource,
    kind: &'static str,
    group: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
) -> Info {
    Info {
        resource,
        kind,
        group,
        version: "v1",
        plural,
        short,
        namespaced: true,
        writer: Writer::User,
    }
}

/// Every resource, in the order `plinth get all` shows them.
pub const TABLE: [Info; 16] = [
    plinth(
        Resource::Inventory,
        "Inventory",
        "inventories",
        &["inventory"],
        Writer::User,
    ),
    plinth(
        Resource::Environment,
        "Environment",
        "environments",
        &["environment", "env"],
        Writer::User,
    ),
    plinth(
        Resource::Cluster,
        "Cluster",
        "clusters",
        &["cluster"],
        Writer::User,
    ),
    plinth(
        Resource::VirtualMachineSet,
        "VirtualMachineSet",
        "virtualmachinesets",
        &["virtualmachineset", "vmset"],
        Writer::User,
    ),
    plinth(
        Resource::Scenario,
        "Scenario",
        "scenarios",
        &["scenario"],
        Writer::User,
    ),
    plinth(
        Resource::PriceSheet,
        "PriceSheet",
        "pricesheets",
        &["pricesheet"],
        Writer::User,
    ),
    plinth(
        Resource::Calibration,
        "Calibration",
        "calibrations",
        &["calibration"],
        Writer::User,
    ),
    workload(
        Resource::Deployment,
        "Deployment",
        "apps",
        "deployments",
        &["deployment", "deploy"],
    ),
    workload(
        Resource::StatefulSet,
        "StatefulSet",
        "apps",
        "statefulsets",
        &["statefulset", "sts"],
    ),
    workload(
        Resource::DaemonSet,
        "DaemonSet",
        "apps",
        "daemonsets",
        &["daemonset", "ds"],
    ),
    workload(Resource::Job, "Job", "batch", "jobs", &["job"]),
    workload(Resource::Pod, "Pod", "", "pods", &["pod", "po"]),
    workload(
        Resource::PodDisruptionBudget,
        "PodDisruptionBudget",
        "policy",
        "poddisruptionbudgets",
        &["poddisruptionbudget", "pdb"],
    ),
    plinth(
        Resource::VirtualMachine,
        "VirtualMachine",
        "virtualmachines",
        &["virtualmachine", "vm", "vms"],
        Writer::ControlPlane,
    ),
    plinth(
        Resource::Host,
        "Host",
        "hosts",
        &["host"],
        Writer::ControlPlane,
    ),
    plinth(
        Resource::Event,
        "Event",
        "events",
        &["event", "ev"],
        Writer::ControlPlane,
    ),
];

impl Resource {
    /// Its row of the table.
    pub fn info(self) -> &'static Info {
        // The table lists every variant once, in declaration order.
        &TABLE[self as usize]
    }

    /// The resource of `kind` under `api_version`, as written in a manifest.
    pub fn of_kind(api_version: &str, kind: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|i| i.kind == kind && i.api_version() == api_version)
            .map(|i| i.resource)
    }

    /// The resource a user names on the command line: plural, singular, short name or
    /// kind, any case.
    pub fn named(word: &str) -> Option<Self> {
        let word = word.to_ascii_lowercase();
        TABLE
            .iter()
            .find(|i| {
                i.plural == word || i.kind.eq_ignore_ascii_case(&word) || i.short.contains(&&*word)
            })
            .map(|i| i.resource)
    }

    /// The resource served at `/apis/GROUP/VERSION/PLURAL` (or `/api/VERSION/PLURAL`).
    pub fn at(group: &str, version: &str, plural: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|i| i.group == group && i.version == version && i.plural == plural)
            .map(|i| i.resource)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info().plural)
    }
}

/// Where an object lives: its resource, the guest cluster a workload belongs to, its
/// namespace (empty for a cluster-scoped one) and name. Guest clusters have namespaces of
/// their own: `shop/storefront` of cluster prod and of cluster staging are two objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    /// Its resource.
    pub resource: Resource,
    /// The guest cluster of a workload (its `plinth.dev/cluster` label); empty for
    /// Plinth's own kinds and for a workload bound to none.
    #[serde(default)]
    pub cluster: String,
    /// Its namespace; empty when the resource is cluster-scoped.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a cluster-scoped object.
    pub fn global(resource: Resource, name: impl Into<String>) -> Self {
        Self {
            resource,
            cluster: String::new(),
            namespace: String::new(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.resource.info().kind;
        if self.namespace.is_empty() {
            write!(f, "{kind} {}", self.name)
        } else {
            write!(f, "{kind} {}/{}", self.namespace, self.name)?;
            if !self.cluster.is_empty() {
                write!(f, " of cluster {}", self.cluster)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_resource_at_its_own_index() {
        for (i, info) in TABLE.iter().enumerate() {
            assert_eq!(info.resource as usize, i, "{}", info.kind);
        }
    }

    #[test]
    fn names_paths_and_kinds_resolve() {
        assert_eq!(Resource::named("deploy"), Some(Resource::Deployment));
        assert_eq!(Resource::named("Clusters"), Some(Resource::Cluster));
        assert_eq!(
            Resource::of_kind("apps/v1", "StatefulSet"),
            Some(Resource::StatefulSet)
        );
        assert_eq!(Resource::of_kind("v1", "Deployment"), None);
        assert_eq!(Resource::at("", "v1", "pods"), Some(Resource::Pod));
        assert_eq!(
            Resource::Deployment.info().path(Some("shop"), Some("web")),
            "/apis/apps/v1/namespaces/shop/deployments/web"
        );
        assert_eq!(
            Resource::Cluster.info().path(None, None),
            "/apis/plinth.dev/v1alpha1/clusters"
        );
    }
}
