//! Pods onto nodes with Kubernetes semantics: kube-scheduler's filters (resources, node
//! selector and affinity, taints, pod affinity and anti-affinity, topology spread, max pods)
//! and scores (LeastAllocated / MostAllocated, BalancedAllocation, InterPodAffinity,
//! PodTopologySpread, NodeAffinity, TaintToleration) with their default weights, DaemonSets,
//! and the failure domains that Kubernetes cannot see (nodes sharing a physical host).
//!
//! A [`Scheduler`] holds one cluster's nodes and bound pods and changes only through its
//! methods: schedule one pod, a workload's replicas, a DaemonSet; remove a pod or a node.
//! Every feasible node is filtered and scored for every pod (no sampling); ties break by node
//! name. No clock, no randomness, no I/O. A pod that fits nowhere gets an [`Explanation`] in
//! kube-scheduler's words: `0/24 nodes are available: 16 insufficient memory, 8 node(s) had
//! untolerated taint {node-role.kubernetes.io/control-plane: }`.
//!
//! Not modelled: pod priority and preemption, host ports, volumes, namespaces named in
//! affinity terms, `minDomains`, node inclusion policies other than the defaults, and the
//! scheduler's default spreading for pods that declare no constraints.

mod convert;
mod daemonset;
mod filter;
mod node;
mod pod;
mod report;
mod scheduler;
pub mod score;
mod topology;

use std::fmt;

use thiserror::Error;

use crate::Explanation;

pub use daemonset::DaemonSetOutcome;
pub use filter::{
    REASON_AFFINITY, REASON_ANTI_AFFINITY, REASON_CPU, REASON_DISK, REASON_EXISTING_ANTI_AFFINITY,
    REASON_MEMORY, REASON_NODE_AFFINITY, REASON_SPREAD, REASON_SPREAD_LABEL, REASON_TOO_MANY_PODS,
    REASON_UNSCHEDULABLE, node_affinity_matches, node_term_matches, tolerates,
};
pub use node::{
    CONTROL_PLANE_TAINT_KEY, DEFAULT_MAX_PODS, LABEL_HOST, LABEL_HOSTNAME, LABEL_RACK, LABEL_ZONE,
    Node, Taint, TaintEffect,
};
pub use pod::{
    LabelOperator, LabelSelector, NodeOperator, NodeRequirement, NodeSelectorTerm, PodAffinityTerm,
    PodTemplate, PreferredNodeTerm, Toleration, TolerationOperator, TopologySpreadConstraint,
    WeightedPodAffinityTerm, WhenUnsatisfiable,
};
pub use report::SharedFailureDomain;
pub use scheduler::{BatchOutcome, Binding, Evicted, Scheduler};
pub use score::ScoringStrategy;

/// Identifies a bound pod inside one [`Scheduler`]. Freed when the pod is removed or
/// evicted, and then reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodId(pub u32);

impl fmt::Display for PodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod#{}", self.0)
    }
}

/// Identifies a node slot inside one [`Scheduler`]: stable while the node is in the cluster;
/// a removed node's slot is reused by a node added later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// What can go wrong scheduling pods.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PodsError {
    /// No node passes the filters.
    #[error("pod of {owner} unschedulable: {explanation}")]
    Unschedulable {
        /// The pod's owner.
        owner: String,
        /// Per-node reasons, kube-scheduler style.
        explanation: Explanation,
    },
    /// The pod template breaks a Kubernetes validation rule.
    #[error("pod of {owner} is invalid: {reason}")]
    InvalidPod {
        /// The pod's owner.
        owner: String,
        /// What is wrong.
        reason: String,
    },
    /// A node of that name is already in the cluster.
    #[error("node {name} already exists")]
    DuplicateNode {
        /// The node name.
        name: String,
    },
    /// No node of that name is in the cluster.
    #[error("no node named {name}")]
    UnknownNode {
        /// The node name.
        name: String,
    },
    /// No pod with that id is bound.
    #[error("no bound pod {pod}")]
    UnknownPod {
        /// The pod id.
        pod: PodId,
    },
}
