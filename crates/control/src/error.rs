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
    /// A host maintenance was planned on bare metal, where a server is one node.
    #[error(
        "maintenance plans move VMs off a host: a bare-metal server runs one node, drain that node instead"
    )]
    NoVmPool,
    /// No cluster has the name asked for.
    #[error("no cluster `{cluster}`; the clusters are: {}", known.join(", "))]
    UnknownCluster {
        /// The name asked for.
        cluster: String,
        /// The clusters that exist, in manifest order.
        known: Vec<String>,
    },
}
