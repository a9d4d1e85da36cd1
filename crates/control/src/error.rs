//! What the control plane's planning questions refuse.

/// A question about an object the control plane does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No host of the pool has the name asked for.
    #[error("no host `{host}` in the pool; its hosts are: {}", known.join(", "))]
    UnknownHost {
        /// The name asked for.
        host: String,
        /// The hosts that exist, in the pool's order.
        known: Vec<String>,
    },
    /// A plan of VM moves (maintenance, upgrade, DRS) was asked of bare metal, where a
    /// server is one node.
    #[error(
        "{what} is planned on a virtualization pool; on bare metal a server runs one node: {instead}"
    )]
    NoVmPool {
        /// What was asked.
        what: &'static str,
        /// What to do on bare metal.
        instead: &'static str,
    },
    /// No cluster has the name asked for.
    #[error("no cluster `{cluster}`; the clusters are: {}", known.join(", "))]
    UnknownCluster {
        /// The name asked for.
        cluster: String,
        /// The clusters that exist, in manifest order.
        known: Vec<String>,
    },
    /// A Kubernetes version the version skew policy forbids.
    #[error("cluster {cluster} cannot be rolled to Kubernetes {to}: {reason}")]
    VersionSkew {
        /// The cluster.
        cluster: String,
        /// The version asked for.
        to: String,
        /// What the policy forbids.
        reason: plinth_model::version::SkewError,
    },
}
