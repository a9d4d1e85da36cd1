//! Nodes as the pod scheduler sees them: allocatable resources, labels, taints, pod limits,
//! and the physical host underneath.

use std::collections::BTreeMap;
use std::fmt;

use plinth_model::Resources;

/// The well-known label naming a node (`kubernetes.io/hostname`).
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The well-known label naming a node's zone (`topology.kubernetes.io/zone`); for a VM node,
/// the rack of its host.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// Plinth's label naming the physical host a node runs on (the hypervisor under a VM node,
/// the server itself on bare metal). It follows the node's VM on every live migration and
/// HA restart.
pub const LABEL_HOST: &str = "plinth.dev/host";
/// Plinth's label naming the rack of the node's physical host (a power domain).
pub const LABEL_RACK: &str = "plinth.dev/rack";
/// The taint kubeadm puts on control-plane nodes.
pub const CONTROL_PLANE_TAINT_KEY: &str = "node-role.kubernetes.io/control-plane";
/// The kubelet's default `maxPods`.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// What a taint does to pods that do not tolerate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintEffect {
    /// New pods are not scheduled onto the node.
    NoSchedule,
    /// The scheduler avoids the node when it can (a score, not a filter).
    PreferNoSchedule,
    /// New pods are not scheduled, and running ones are evicted.
    NoExecute,
}

impl TaintEffect {
    /// True for the effects that filter nodes (`NoSchedule`, `NoExecute`).
    pub const fn is_hard(self) -> bool {
        matches!(self, Self::NoSchedule | Self::NoExecute)
    }
}

/// A node taint: `key=value:effect`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value (may be empty).
    pub value: String,
    /// What the taint does.
    pub effect: TaintEffect,
}

impl Taint {
    /// A taint with the given key, value and effect.
    pub fn new(key: impl Into<String>, value: impl Into<String>, effect: TaintEffect) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    /// The `node-role.kubernetes.io/control-plane:NoSchedule` taint of control-plane nodes.
    pub fn control_plane() -> Self {
        Self::new(CONTROL_PLANE_TAINT_KEY, "", TaintEffect::NoSchedule)
    }
}

impl fmt::Display for Taint {
    /// kube-scheduler's form: `{key: value}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}: {}}}", self.key, self.value)
    }
}

/// A Kubernetes node: what it offers to pods and where it physically runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Node name (unique in the cluster; ties between equal scores break by it).
    pub name: String,
    /// The physical host the node runs on (a hypervisor for a VM node, the server itself
    /// for a bare-metal node). Nodes sharing a host share a failure domain.
    pub host: String,
    /// What pods may request in total (capacity minus kubelet and system reservations).
    pub allocatable: Resources,
    /// Node labels, including the topology labels [`LABEL_HOSTNAME`], [`LABEL_ZONE`] and
    /// [`LABEL_HOST`].
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    pub taints: Vec<Taint>,
    /// The kubelet's `maxPods` (default 110).
    pub max_pods: u32,
    /// The kubelet's `podsPerCore` (0 = off).
    pub pods_per_core: u32,
    /// CPU cores the kubelet counts for `podsPerCore` (defaults to allocatable CPU rounded up).
    pub cores: u32,
    /// Cordoned: no new pods (`spec.unschedulable`).
    pub unschedulable: bool,
}

impl Node {
    /// A schedulable node with the kubelet defaults, labelled with its hostname, zone and
    /// physical host.
    pub fn new(
        name: impl Into<String>,
        host: impl Into<String>,
        zone: impl Into<String>,
        allocatable: Resources,
    ) -> Self {
        let name = name.into();
        let mut labels = BTreeMap::new();
        let host = host.into();
        labels.insert(LABEL_HOSTNAME.to_owned(), name.clone());
        labels.insert(LABEL_ZONE.to_owned(), zone.into());
        labels.insert(LABEL_HOST.to_owned(), host.clone());
        Self {
            name,
            host,
            allocatable,
            labels,
            taints: Vec::new(),
            max_pods: DEFAULT_MAX_PODS,
            pods_per_core: 0,
            cores: allocatable
                .cpu_millis
                .div_ceil(1000)
                .try_into()
                .unwrap_or(u32::MAX),
            unschedulable: false,
        }
    }

    /// Adds (or replaces) a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a taint.
    pub fn with_taint(mut self, taint: Taint) -> Self {
        self.taints.push(taint);
        self
    }

    /// Marks the node as a control-plane node: the role label and the `NoSchedule` taint.
    pub fn control_plane(self) -> Self {
        self.with_label(CONTROL_PLANE_TAINT_KEY, "")
            .with_taint(Taint::control_plane())
    }

    /// Sets the kubelet's `maxPods` and `podsPerCore` (0 = off).
    pub fn with_pod_limits(mut self, max_pods: u32, pods_per_core: u32) -> Self {
        self.max_pods = max_pods;
        self.pods_per_core = pods_per_core;
        self
    }

    /// How many pods the kubelet admits: `maxPods`, lowered to `podsPerCore × cores` when
    /// `podsPerCore` is set.
    pub fn pod_limit(&self) -> u32 {
        if self.pods_per_core == 0 {
            self.max_pods
        } else {
            self.max_pods
                .min(self.pods_per_core.saturating_mul(self.cores))
        }
    }
}
