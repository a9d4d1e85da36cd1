//! Failure domains Kubernetes cannot see: replicas of one workload on different nodes that
//! run on the same physical host.

use std::collections::BTreeMap;

use super::scheduler::Scheduler;

/// Replicas of one workload spread over several nodes that share one physical host: to
/// Kubernetes they look spread, but one host failure takes them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFailureDomain {
    /// The workload.
    pub owner: String,
    /// The physical host.
    pub host: String,
    /// The nodes on that host running replicas, by name.
    pub nodes: Vec<String>,
    /// How many replicas run on that host.
    pub pods: usize,
}

impl Scheduler {
    /// Every (workload, host) pair whose replicas sit on two or more nodes of one host,
    /// sorted by workload then host.
    pub fn shared_failure_domains(&self) -> Vec<SharedFailureDomain> {
        // (owner, host) → node name → replicas there
        let mut by_host: BTreeMap<(&str, &str), BTreeMap<&str, usize>> = BTreeMap::new();
        for (id, node) in self.nodes() {
            for pod in self.pods_on(id) {
                if let Some(t) = self.template(*pod) {
                    *by_host
                        .entry((&t.owner, &node.host))
                        .or_default()
                        .entry(&node.name)
                        .or_insert(0) += 1;
                }
            }
        }
        by_host
            .into_iter()
            .filter(|(_, nodes)| nodes.len() >= 2)
            .map(|((owner, host), nodes)| SharedFailureDomain {
                owner: owner.to_owned(),
                host: host.to_owned(),
                pods: nodes.values().sum(),
                nodes: nodes.into_keys().map(str::to_owned).collect(),
            })
            .collect()
    }
}
